//! [`RemoteKeySetConfig`]: where the key set comes from and how often it is fetched.

use crate::error::{RemoteKeySetError, RemoteKeySetErrorKind};
use scopekey::{Clock, SystemClock};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// How a [`RemoteKeySet`](crate::RemoteKeySet) follows a JWKS URL. Every knob has a default
/// that is safe as is:
///
/// | knob | default | what it does |
/// |---|---|---|
/// | [`min_refresh_interval`](Self::min_refresh_interval) | 30 s | at most one fetch per interval, whatever triggers it (the rate limit on unknown key ids) |
/// | [`refresh_interval`](Self::refresh_interval) | 5 min | how often to fetch when the response names no `Cache-Control: max-age` |
/// | [`max_refresh_interval`](Self::max_refresh_interval) | 1 h | the longest a `max-age` may stretch the wait between fetches |
/// | [`retry_interval`](Self::retry_interval) | 30 s | the wait before the next scheduled fetch after one failed (within the minimum and maximum intervals) |
/// | [`max_staleness`](Self::max_staleness) | 24 h | how old the last good copy may grow before verification fails closed |
/// | [`timeout`](Self::timeout) | 10 s | one fetch, from connecting to the last byte of the body |
/// | [`clock`](Self::clock) | the system clock | what the staleness bound is measured with |
///
/// ```
/// use scopekey_jwks::RemoteKeySetConfig;
/// use std::time::Duration;
///
/// let config = RemoteKeySetConfig::new("https://auth.example/.well-known/jwks.json")?
///     .min_refresh_interval(Duration::from_secs(60))?
///     .max_staleness(Duration::from_secs(6 * 3600))?;
/// # let _ = config;
/// # Ok::<(), scopekey_jwks::RemoteKeySetError>(())
/// ```
#[derive(Clone)]
pub struct RemoteKeySetConfig {
    pub(crate) url: url::Url,
    pub(crate) min_refresh: Duration,
    pub(crate) refresh: Duration,
    pub(crate) max_refresh: Duration,
    pub(crate) retry: Duration,
    pub(crate) max_staleness: Duration,
    pub(crate) timeout: Duration,
    pub(crate) clock: Arc<dyn Clock>,
}

impl RemoteKeySetConfig {
    /// Follows the JWKS at `url`.
    ///
    /// # Errors
    /// [`RemoteKeySetErrorKind::InvalidConfig`] for a URL that does not parse, one with
    /// credentials (`user:password@`) or a fragment, or one that is not `https`: plain `http`
    /// is accepted only for a loopback host (`127.0.0.1`, `[::1]`, `localhost`), for tests and
    /// a token service on the same machine.
    ///
    /// # Security
    /// The key set decides which tokens verify: fetched over plain HTTP from another host, it
    /// could be replaced by anyone on the path.
    pub fn new(url: &str) -> Result<Self, RemoteKeySetError> {
        let url = url::Url::parse(url)
            .map_err(|e| invalid(format!("the JWKS URL does not parse: {e}")))?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(invalid("the JWKS URL may not carry credentials".into()));
        }
        if url.fragment().is_some() {
            return Err(invalid("the JWKS URL may not have a fragment".into()));
        }
        let loopback = match url.host() {
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            None => false,
        };
        match url.scheme() {
            "https" if url.host().is_some() => {}
            "http" if loopback => {}
            "http" => {
                return Err(invalid(
                    "the JWKS URL must be https (plain http only for a loopback host)".into(),
                ));
            }
            _ => return Err(invalid("the JWKS URL must be an https URL".into())),
        }
        Ok(Self {
            url,
            min_refresh: Duration::from_secs(30),
            refresh: Duration::from_secs(300),
            max_refresh: Duration::from_secs(3600),
            retry: Duration::from_secs(30),
            max_staleness: Duration::from_secs(24 * 3600),
            timeout: Duration::from_secs(10),
            clock: Arc::new(SystemClock),
        })
    }

    /// The shortest time between two fetches (default 30 s), whatever asks for them: the
    /// schedule, a `max-age` shorter than this, `no-cache`, a failed fetch's retry, or tokens
    /// with unknown key ids. A flood of unknown key ids costs one fetch per interval.
    ///
    /// # Errors
    /// [`RemoteKeySetErrorKind::InvalidConfig`] for zero, or more than the
    /// [maximum interval](Self::max_refresh_interval).
    pub fn min_refresh_interval(mut self, interval: Duration) -> Result<Self, RemoteKeySetError> {
        if interval.is_zero() || interval > self.max_refresh {
            return Err(invalid(format!(
                "the minimum refresh interval must be above zero and at most the maximum ({} s)",
                self.max_refresh.as_secs()
            )));
        }
        self.min_refresh = interval;
        Ok(self)
    }

    /// How long to wait between fetches when the response has no `Cache-Control: max-age`
    /// (default 5 min), kept within the minimum and maximum intervals.
    pub fn refresh_interval(mut self, interval: Duration) -> Self {
        self.refresh = interval;
        self
    }

    /// The longest wait between fetches (default 1 h): a longer `max-age` is cut to it.
    ///
    /// # Errors
    /// [`RemoteKeySetErrorKind::InvalidConfig`] below the
    /// [minimum interval](Self::min_refresh_interval), or above 366 days.
    pub fn max_refresh_interval(mut self, interval: Duration) -> Result<Self, RemoteKeySetError> {
        if interval < self.min_refresh || interval > MAX_BOUND {
            return Err(invalid(
                "the maximum refresh interval must be at least the minimum and at most 366 days"
                    .into(),
            ));
        }
        self.max_refresh = interval;
        Ok(self)
    }

    /// The wait before the next scheduled fetch after a failed one (default 30 s), kept within
    /// the minimum and maximum intervals. An unknown key id may still ask for one sooner, within the
    /// rate limit.
    pub fn retry_interval(mut self, interval: Duration) -> Self {
        self.retry = interval;
        self
    }

    /// How old the last good copy may grow (default 24 h): once no fetch has succeeded for
    /// this long, every verification with the key set fails with
    /// [`VerifyErrorKind::KeysStale`](scopekey::VerifyErrorKind::KeysStale), until a fetch
    /// succeeds again. Measured in whole seconds of the [clock](Self::clock).
    ///
    /// # Errors
    /// [`RemoteKeySetErrorKind::InvalidConfig`] below 1 s or above 366 days.
    ///
    /// # Security
    /// The bound is how long a key withdrawn at the issuer (a leaked key, removed from its JWKS)
    /// can still verify here while the issuer cannot be reached.
    pub fn max_staleness(mut self, bound: Duration) -> Result<Self, RemoteKeySetError> {
        if bound.as_secs() == 0 || bound > MAX_BOUND {
            return Err(invalid(
                "the staleness bound must be at least 1 s and at most 366 days".into(),
            ));
        }
        self.max_staleness = bound;
        Ok(self)
    }

    /// The time one fetch may take, from connecting to the last byte (default 10 s).
    ///
    /// # Errors
    /// [`RemoteKeySetErrorKind::InvalidConfig`] for zero or more than 10 min.
    pub fn timeout(mut self, timeout: Duration) -> Result<Self, RemoteKeySetError> {
        if timeout.is_zero() || timeout > Duration::from_secs(600) {
            return Err(invalid(
                "the fetch timeout must be above zero and at most 10 min".into(),
            ));
        }
        self.timeout = timeout;
        Ok(self)
    }

    /// Measures the staleness bound with `clock` (default the system clock). Give the verifier
    /// the same clock ([`VerifierConfig::clock`](scopekey::VerifierConfig::clock)): the bound
    /// is a second of that clock.
    pub fn clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The wait after a failed fetch, within the configured bounds.
    pub(crate) fn retry_after_failure(&self) -> Duration {
        self.retry.clamp(self.min_refresh, self.max_refresh)
    }

    /// The URL followed.
    pub fn url(&self) -> &str {
        self.url.as_str()
    }

    /// The wait after a successful fetch whose response asked for `max_age` (`None`: none
    /// named), within the configured bounds.
    pub(crate) fn interval_for(&self, max_age: Option<Duration>) -> Duration {
        max_age
            .unwrap_or(self.refresh)
            .clamp(self.min_refresh, self.max_refresh)
    }
}

impl fmt::Debug for RemoteKeySetConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteKeySetConfig")
            .field("url", &self.url.as_str())
            .field("min_refresh", &self.min_refresh)
            .field("refresh", &self.refresh)
            .field("max_refresh", &self.max_refresh)
            .field("retry", &self.retry)
            .field("max_staleness", &self.max_staleness)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// The longest interval or bound accepted: long enough for any deployment, short enough that
/// no instant computed from it overflows.
const MAX_BOUND: Duration = Duration::from_secs(366 * 86_400);

fn invalid(message: String) -> RemoteKeySetError {
    RemoteKeySetError::new(RemoteKeySetErrorKind::InvalidConfig, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_https_or_loopback_http() {
        for ok in [
            "https://auth.example/.well-known/jwks.json",
            "http://127.0.0.1:8080/jwks",
            "http://[::1]/jwks",
            "http://localhost/jwks",
        ] {
            assert!(RemoteKeySetConfig::new(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://auth.example/jwks",
            "http://10.0.0.1/jwks",
            "ftp://auth.example/jwks",
            "https://user:pw@auth.example/jwks",
            "https://auth.example/jwks#keys",
            "not a url",
            "file:///etc/jwks.json",
        ] {
            let e = RemoteKeySetConfig::new(bad).unwrap_err();
            assert_eq!(e.kind(), RemoteKeySetErrorKind::InvalidConfig, "{bad}");
        }
    }

    #[test]
    fn intervals_are_checked_and_max_age_kept_within_them() {
        let c = RemoteKeySetConfig::new("https://auth.example/jwks").unwrap();
        assert!(c.clone().min_refresh_interval(Duration::ZERO).is_err());
        assert!(
            c.clone()
                .min_refresh_interval(Duration::from_secs(7200))
                .is_err()
        );
        assert!(
            c.clone()
                .max_refresh_interval(Duration::from_secs(1))
                .is_err()
        );
        assert!(c.clone().max_staleness(Duration::from_millis(500)).is_err());
        assert!(c.clone().timeout(Duration::ZERO).is_err());
        assert!(c.clone().timeout(Duration::MAX).is_err());
        assert!(c.clone().max_refresh_interval(Duration::MAX).is_err());
        assert!(c.clone().max_staleness(Duration::MAX).is_err());
        assert_eq!(
            c.clone()
                .retry_interval(Duration::MAX)
                .retry_after_failure(),
            Duration::from_secs(3600)
        );
        assert_eq!(c.retry_after_failure(), Duration::from_secs(30));
        assert_eq!(c.interval_for(None), Duration::from_secs(300));
        assert_eq!(
            c.interval_for(Some(Duration::ZERO)),
            Duration::from_secs(30)
        );
        assert_eq!(
            c.interval_for(Some(Duration::from_secs(120))),
            Duration::from_secs(120)
        );
        assert_eq!(
            c.interval_for(Some(Duration::from_secs(86_400))),
            Duration::from_secs(3600)
        );
    }
}
