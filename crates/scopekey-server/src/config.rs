//! What the service is configured with, checked once when it is built.

use scopekey::Environment;
use std::time::Duration;

/// The most audiences one service issues for.
pub const MAX_AUDIENCES: usize = 16;

/// The largest request body an endpoint reads (16 KiB); a larger one is refused unread.
pub const MAX_BODY_LEN: usize = 16 * 1024;

/// Why a service could not be built.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ServerErrorKind {
    /// The configuration is invalid (the message says which setting).
    Config,
    /// The store could not be read or written while setting up.
    Store,
}

/// A service that could not be built.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ServerError {
    kind: ServerErrorKind,
    message: String,
}

impl ServerError {
    pub(crate) fn new(kind: ServerErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    /// Why, for matching.
    pub fn kind(&self) -> ServerErrorKind {
        self.kind
    }
}

fn config(message: impl Into<String>) -> ServerError {
    ServerError::new(ServerErrorKind::Config, message)
}

/// The token service's settings: who it is (issuer URL, environment), which audiences it
/// issues for, how long its tokens live, and how hard it pushes back on guessing.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub(crate) issuer: String,
    pub(crate) audiences: Vec<String>,
    pub(crate) environment: Environment,
    pub(crate) access_ttl: Duration,
    pub(crate) failure_limit: u32,
    pub(crate) failure_window: Duration,
    pub(crate) max_tracked_sources: usize,
    pub(crate) hash_concurrency: usize,
    pub(crate) hash_queue: usize,
    pub(crate) allow_broad: bool,
    pub(crate) refresh_tokens: bool,
    pub(crate) refresh_ttl: Duration,
    pub(crate) family_lifetime: Duration,
}

impl ServerConfig {
    /// A service that is `issuer` (an `https://` origin, or `http://` on a loopback host for
    /// development: no path, query or fragment), issuing for `audience` (the default audience;
    /// add more with [`ServerConfig::audience`]) in `environment`.
    ///
    /// Defaults: access tokens live 15 minutes; after 10 failed client authentications from
    /// one source for one client within a minute, that pair is answered `429` until the
    /// minute is over; at most 4,096 such pairs are tracked; two client-secret hashes run at
    /// once, with at most 64 waiting.
    ///
    /// # Errors
    /// [`ServerErrorKind::Config`] for an issuer that is not such a URL or an empty audience.
    pub fn new(
        issuer: impl Into<String>,
        audience: impl Into<String>,
        environment: Environment,
    ) -> Result<Self, ServerError> {
        let issuer = issuer.into();
        check_issuer(&issuer)?;
        Self {
            issuer: issuer.trim_end_matches('/').to_owned(),
            audiences: Vec::new(),
            environment,
            access_ttl: Duration::from_secs(15 * 60),
            failure_limit: 10,
            failure_window: Duration::from_secs(60),
            max_tracked_sources: 4096,
            hash_concurrency: 2,
            hash_queue: 64,
            allow_broad: false,
            refresh_tokens: false,
            refresh_ttl: Duration::from_secs(24 * 3600),
            family_lifetime: Duration::from_secs(7 * 86_400),
        }
        .audience(audience)
    }

    /// Also issues for `audience` (requested with the RFC 8707 `resource` parameter).
    ///
    /// # Errors
    /// [`ServerErrorKind::Config`] for an empty or overlong audience, one given twice, or more
    /// than [`MAX_AUDIENCES`].
    pub fn audience(mut self, audience: impl Into<String>) -> Result<Self, ServerError> {
        let audience = audience.into();
        if audience.is_empty() || audience.len() > 256 || audience.chars().any(char::is_control) {
            return Err(config(
                "an audience is 1 to 256 characters, without control characters",
            ));
        }
        if self.audiences.contains(&audience) {
            return Err(config(format!("audience {audience:?} is given twice")));
        }
        if self.audiences.len() == MAX_AUDIENCES {
            return Err(config(format!("at most {MAX_AUDIENCES} audiences")));
        }
        self.audiences.push(audience);
        Ok(self)
    }

    /// How long an access token lives (default 15 minutes; 1 second to 24 hours).
    ///
    /// # Errors
    /// [`ServerErrorKind::Config`] outside that range.
    pub fn access_ttl(mut self, ttl: Duration) -> Result<Self, ServerError> {
        if ttl < Duration::from_secs(1) || ttl > Duration::from_secs(86_400) {
            return Err(config("the access token lifetime is 1 s to 24 h"));
        }
        self.access_ttl = ttl;
        Ok(self)
    }

    /// After `limit` failed client authentications for one client from one source (an IPv4
    /// address or an IPv6 /64) within `window`, that client is answered `429 Too Many
    /// Requests` from that source, without its secret being checked, until the window ends.
    /// Other sources of the same client are not affected, so a flood cannot lock a client
    /// out. At most `max_tracked` pairs are tracked; when the table is full of live entries,
    /// new pairs go untracked (the hash concurrency bound still applies to them).
    ///
    /// # Errors
    /// [`ServerErrorKind::Config`] for a zero limit, window or table size.
    pub fn failure_throttle(
        mut self,
        limit: u32,
        window: Duration,
        max_tracked: usize,
    ) -> Result<Self, ServerError> {
        if limit == 0 || window.is_zero() || max_tracked == 0 {
            return Err(config(
                "the failure throttle needs a limit, a window and a size",
            ));
        }
        self.failure_limit = limit;
        self.failure_window = window;
        self.max_tracked_sources = max_tracked;
        Ok(self)
    }

    /// At most `concurrent` client-secret checks (argon2id, 19 MiB and tens of milliseconds
    /// each) run at once, with at most `queued` more waiting; beyond that a request is
    /// answered `503` with `Retry-After` (default 2 and 64).
    ///
    /// # Errors
    /// [`ServerErrorKind::Config`] for zero concurrency.
    pub fn hash_concurrency(
        mut self,
        concurrent: usize,
        queued: usize,
    ) -> Result<Self, ServerError> {
        if concurrent == 0 {
            return Err(config(
                "at least one client-secret check must be able to run",
            ));
        }
        self.hash_concurrency = concurrent;
        self.hash_queue = queued;
        Ok(self)
    }

    /// Whether broad scopes (a `*` action or segment) within a consumer's ceiling are issued
    /// when asked for (default: no, as `mint` needs `--allow-broad`). The read-only default
    /// scope never includes them.
    pub fn allow_broad(mut self, allow: bool) -> Self {
        self.allow_broad = allow;
        self
    }

    /// Whether `client_credentials` answers also carry a refresh token, and the
    /// `refresh_token` grant is served (default: no). RFC 6749 §4.4.3 says a client
    /// credentials answer SHOULD NOT carry one: the client can always authenticate again.
    /// Turn it on for clients that are to keep a session that an operator can end as a whole
    /// (a refresh family) and that must not present their credentials every 15 minutes.
    ///
    /// # Security
    /// Refresh tokens rotate on every use; a used one presented again revokes its whole
    /// family (RFC 9700 §4.14). Every exchange authenticates the client as the token
    /// endpoint always does, and the family ends after [`ServerConfig::refresh_lifetimes`]
    /// however often it was rotated. Token exchange answers never carry a refresh token (a
    /// child must not outlive its parent).
    pub fn refresh_tokens(mut self, enable: bool) -> Self {
        self.refresh_tokens = enable;
        self
    }

    /// How long one refresh token lives (default 24 hours, 1 s to 30 days) and how long a
    /// family may be rotated from its first token on (default 7 days, 1 s to 90 days); after
    /// that the client authenticates with `client_credentials` again.
    ///
    /// # Errors
    /// [`ServerErrorKind::Config`] outside those ranges.
    pub fn refresh_lifetimes(
        mut self,
        refresh_ttl: Duration,
        family_lifetime: Duration,
    ) -> Result<Self, ServerError> {
        let second = Duration::from_secs(1);
        if refresh_ttl < second || refresh_ttl > scopekey::refresh::MAX_REFRESH_TTL {
            return Err(config("the refresh token lifetime is 1 s to 30 days"));
        }
        if family_lifetime < second || family_lifetime > Duration::from_secs(90 * 86_400) {
            return Err(config("the refresh family lifetime is 1 s to 90 days"));
        }
        self.refresh_ttl = refresh_ttl;
        self.family_lifetime = family_lifetime;
        Ok(self)
    }

    /// The issuer URL (`iss`), without a trailing `/`.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The audiences, the default first.
    pub fn audiences(&self) -> &[String] {
        &self.audiences
    }

    /// The environment tokens are issued in.
    pub fn environment(&self) -> &Environment {
        &self.environment
    }

    /// The URL of an endpoint at `path` (starting with `/`).
    pub(crate) fn endpoint(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }
}

fn check_issuer(issuer: &str) -> Result<(), ServerError> {
    let bad = |why: &str| config(format!("issuer {issuer:?}: {why}"));
    if issuer.len() > 256 {
        return Err(bad("longer than 256 characters"));
    }
    let url = url::Url::parse(issuer).map_err(|e| bad(&e.to_string()))?;
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("an issuer URL has no query or fragment (RFC 8414)"));
    }
    if url.path() != "/" {
        // RFC 8414 §3 would put the metadata under /.well-known/…/PATH; the router serves it
        // at the root, so an issuer is a bare origin.
        return Err(bad(
            "an issuer URL here is an origin without a path (https://host[:port])",
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("an issuer URL has no user or password"));
    }
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(a)) => a.is_loopback(),
        Some(url::Host::Ipv6(a)) => a.is_loopback(),
        None => false,
    };
    match url.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        "http" => Err(bad(
            "use https:// (http:// only on a loopback host, for development)",
        )),
        _ => Err(bad("an issuer is an https:// URL")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Environment {
        "test".parse().unwrap()
    }

    #[test]
    fn issuers_are_https_urls_or_loopback_http() {
        for ok in [
            "https://auth.example",
            "https://auth.example/",
            "http://127.0.0.1:8080",
            "http://localhost:1",
        ] {
            assert!(ServerConfig::new(ok, "api", env()).is_ok(), "{ok}");
        }
        for bad in [
            "auth.example",
            "https://auth.example/tenant",
            "http://auth.example",
            "https://a.example/?x=1",
            "https://a.example/tenant",
            "https://a.example/#f",
            "https://u:p@a.example",
            "ftp://a.example",
        ] {
            let e = ServerConfig::new(bad, "api", env()).unwrap_err();
            assert_eq!(e.kind(), ServerErrorKind::Config, "{bad}");
            assert!(e.to_string().contains("issuer"), "{e}");
        }
        assert_eq!(
            ServerConfig::new("https://a.example/", "api", env())
                .unwrap()
                .endpoint("/x"),
            "https://a.example/x"
        );
    }

    #[test]
    fn audiences_are_bounded_and_distinct() {
        let c = ServerConfig::new("https://a.example", "api", env()).unwrap();
        assert!(c.clone().audience("api").is_err());
        assert!(c.clone().audience("").is_err());
        let mut c = c;
        for i in 1..MAX_AUDIENCES {
            c = c.audience(format!("api{i}")).unwrap();
        }
        assert!(c.clone().audience("one-too-many").is_err());
        assert_eq!(c.audiences()[0], "api");
    }
}
