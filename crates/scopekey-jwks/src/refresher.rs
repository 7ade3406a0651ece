//! [`RemoteKeySet`]: the ring, the background refresher and the rate-limited refresh on demand.

use crate::config::RemoteKeySetConfig;
use crate::error::RemoteKeySetError;
use crate::fetch::{self, Fetched};
use scopekey::KeyRing;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use time::OffsetDateTime;
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

/// A [`KeyRing`] kept current from a JWKS URL (see the [crate](crate) documentation).
///
/// Give [`ring`](Self::ring) to [`Verifier::with_key_ring`](scopekey::Verifier::with_key_ring);
/// call [`refresh`](Self::refresh) (or hand a [`RefreshHandle`] to `scopekey-tower`'s
/// `RefreshingAuthLayer`) when a token is refused as
/// [`UnknownKey`](scopekey::VerifyErrorKind::UnknownKey). Dropping it stops the refresher: the
/// ring keeps its last keys and goes stale at its bound.
#[derive(Debug)]
pub struct RemoteKeySet {
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

/// Refreshes a [`RemoteKeySet`] on demand, from anywhere (cheap to clone): what a tower layer or
/// an extractor holds.
#[derive(Debug, Clone)]
pub struct RefreshHandle {
    shared: Arc<Shared>,
}

/// How a [`RemoteKeySet`] is doing: what [`RemoteKeySet::status`] returns.
#[derive(Debug, Clone)]
pub struct RemoteKeySetStatus {
    fetches: u64,
    last_success: Option<OffsetDateTime>,
    last_error: Option<RemoteKeySetError>,
    last_failure: Option<OffsetDateTime>,
    refresh_interval: Duration,
    keys: usize,
    fresh_until: Option<OffsetDateTime>,
}

impl RemoteKeySetStatus {
    /// Fetches made so far, the first one included, successful or not.
    pub fn fetches(&self) -> u64 {
        self.fetches
    }

    /// When the last good copy was fetched (by the [clock](RemoteKeySetConfig::clock)).
    pub fn last_success(&self) -> Option<OffsetDateTime> {
        self.last_success
    }

    /// Why the latest fetch failed; `None` once one has succeeded since.
    pub fn last_error(&self) -> Option<&RemoteKeySetError> {
        self.last_error.as_ref()
    }

    /// When a fetch last failed, even if one has succeeded since.
    pub fn last_failure(&self) -> Option<OffsetDateTime> {
        self.last_failure
    }

    /// The wait before the next scheduled fetch chosen after the last success: the response's
    /// `max-age` within the configured bounds.
    pub fn refresh_interval(&self) -> Duration {
        self.refresh_interval
    }

    /// How many keys the ring holds.
    pub fn keys(&self) -> usize {
        self.keys
    }

    /// From when, without another successful fetch, verification fails closed.
    pub fn fresh_until(&self) -> Option<OffsetDateTime> {
        self.fresh_until
    }
}

#[derive(Debug)]
struct Shared {
    config: RemoteKeySetConfig,
    client: fetch::Client,
    ring: Arc<KeyRing>,
    state: Mutex<State>,
    /// Tells the refresher to look at the schedule again.
    wake: Notify,
    /// Bumped after every fetch: what callers of `refresh` wait for.
    done: watch::Sender<u64>,
    stopped: AtomicBool,
}

#[derive(Debug)]
struct State {
    /// When the latest fetch started: the rate limit counts from there.
    last_attempt: Instant,
    next_due: Instant,
    in_flight: bool,
    /// A refresh asked for, allowed by the rate limit: fetch now.
    requested: bool,
    /// A refresh asked for within the interval: fetch as soon as the rate limit allows.
    pending: bool,
    status: RemoteKeySetStatus,
}

impl RemoteKeySet {
    /// Fetches the JWKS once and starts the refresher (a task on the current tokio runtime).
    ///
    /// # Errors
    /// [`RemoteKeySetError`] when the HTTP client cannot be built or the first fetch fails:
    /// unreachable, a status other than 200, a body over
    /// [`MAX_JWKS_LEN`](scopekey::jwks::MAX_JWKS_LEN), or a JWKS that is empty, malformed or
    /// holds a key that is not a public Ed25519 verification key.
    ///
    /// # Panics
    /// Outside a tokio runtime, as `tokio::spawn` does.
    pub async fn start(config: RemoteKeySetConfig) -> Result<Self, RemoteKeySetError> {
        let client = fetch::client(&config)?;
        let started = Instant::now();
        let Fetched { keys, max_age } = fetch::fetch(&client, &config).await?;
        let now = config.clock.now();
        let interval = config.interval_for(max_age);
        let fresh_until = fresh_until(now, config.max_staleness);
        let status = RemoteKeySetStatus {
            fetches: 1,
            last_success: Some(now),
            last_error: None,
            last_failure: None,
            refresh_interval: interval,
            keys: keys.len(),
            fresh_until: Some(fresh_until),
        };
        let ring = Arc::new(KeyRing::new(keys));
        ring.set_fresh_until(Some(fresh_until));
        let shared = Arc::new(Shared {
            config,
            client,
            ring,
            state: Mutex::new(State {
                last_attempt: started,
                next_due: started + interval,
                in_flight: false,
                requested: false,
                pending: false,
                status,
            }),
            wake: Notify::new(),
            done: watch::Sender::new(0),
            stopped: AtomicBool::new(false),
        });
        let task = tokio::spawn(run(shared.clone()));
        Ok(Self { shared, task })
    }

    /// The ring of keys, for [`Verifier::with_key_ring`](scopekey::Verifier::with_key_ring).
    pub fn ring(&self) -> &Arc<KeyRing> {
        &self.shared.ring
    }

    /// A handle that refreshes this key set, for a layer or an extractor.
    pub fn handle(&self) -> RefreshHandle {
        RefreshHandle {
            shared: self.shared.clone(),
        }
    }

    /// Asks for a fetch now, for a token whose key id the ring does not know, and waits for it.
    /// Returns whether a fetch finished meanwhile (the ring may hold new keys): `false` when
    /// the rate limit allows none yet (one is then made as soon as it does, without waiting).
    /// Concurrent callers share one fetch.
    pub async fn refresh(&self) -> bool {
        match self.shared.ask() {
            Some(rx) => self.shared.wait(rx).await,
            None => false,
        }
    }

    /// Waits for the next fetch to finish, whatever starts it.
    pub async fn next_fetch(&self) {
        let mut rx = self.shared.done.subscribe();
        let _ = rx.changed().await;
    }

    /// How the key set is doing: fetches, the last success and error, the interval.
    pub fn status(&self) -> RemoteKeySetStatus {
        let mut status = self.shared.lock().status.clone();
        status.fresh_until = self.shared.ring.fresh_until();
        status
    }

    /// The JWKS URL followed.
    pub fn url(&self) -> &str {
        self.shared.config.url()
    }
}

impl Drop for RemoteKeySet {
    fn drop(&mut self) {
        self.shared.stopped.store(true, Ordering::Release);
        self.task.abort();
        // Releases whoever waits for a fetch that will not come.
        self.shared.done.send_modify(|g| *g = g.wrapping_add(1));
    }
}

impl RefreshHandle {
    /// As [`RemoteKeySet::refresh`], as a `'static` future: `move || handle.refresh()` is a
    /// `scopekey_tower::KeyRefresh`. The fetch is asked for (or joined) when this is called,
    /// not when the future is first polled.
    pub fn refresh(&self) -> impl Future<Output = bool> + Send + 'static + use<> {
        let shared = self.shared.clone();
        let asked = shared.ask();
        async move {
            match asked {
                Some(rx) => shared.wait(rx).await,
                None => false,
            }
        }
    }

    /// Whether the [`RemoteKeySet`] it came from was dropped (refreshes then do nothing).
    pub fn is_stopped(&self) -> bool {
        self.shared.stopped.load(Ordering::Acquire)
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Asks for a fetch, now: joins the one in flight, or asks the refresher for one if the
    /// rate limit allows (else marks one to be made as soon as it does). Returns what to wait on,
    /// or `None` when there is nothing to wait for.
    fn ask(&self) -> Option<watch::Receiver<u64>> {
        if self.stopped.load(Ordering::Acquire) {
            return None;
        }
        // Before looking at the state: a fetch that ends after the look is then seen.
        let rx = self.done.subscribe();
        let wait = {
            let mut s = self.lock();
            if s.in_flight {
                true
            } else if Instant::now() >= s.last_attempt + self.config.min_refresh {
                s.requested = true;
                true
            } else {
                s.pending = true;
                false
            }
        };
        self.wake.notify_one();
        wait.then_some(rx)
    }

    /// Waits for the fetch `ask` joined or asked for.
    async fn wait(&self, mut rx: watch::Receiver<u64>) -> bool {
        // The fetch has its own timeout; this only bounds the wait if the refresher is gone.
        let bound = self.config.timeout + Duration::from_secs(1);
        let finished = matches!(tokio::time::timeout(bound, rx.changed()).await, Ok(Ok(())));
        finished && !self.stopped.load(Ordering::Acquire)
    }

    /// Records a fetch's outcome: a good set replaces the ring's (if it differs) and moves its
    /// staleness bound; a failure keeps both and is noted in the status.
    fn apply(&self, outcome: Result<Fetched, RemoteKeySetError>) {
        let now = self.config.clock.now();
        let mut s = self.lock();
        match outcome {
            Ok(Fetched { keys, max_age }) => {
                let interval = self.config.interval_for(max_age);
                let count = keys.len();
                // Unchanged keys keep the ring's version, and so the grant cache.
                if *self.ring.snapshot() != keys {
                    self.ring.replace(keys);
                    tracing::info!(url = %self.config.url, keys = count, "remote key set changed");
                }
                self.ring
                    .set_fresh_until(Some(fresh_until(now, self.config.max_staleness)));
                s.next_due = s.last_attempt + interval;
                s.status.last_success = Some(now);
                s.status.last_error = None;
                s.status.refresh_interval = interval;
                s.status.keys = count;
            }
            Err(error) => {
                tracing::warn!(
                    url = %self.config.url,
                    %error,
                    "the JWKS could not be refreshed; the last good key set is kept"
                );
                s.next_due = s.last_attempt + self.config.retry_after_failure();
                s.status.last_error = Some(error);
                s.status.last_failure = Some(now);
            }
        }
        s.in_flight = false;
        // Under the lock, so that `refresh` sees either a fetch in flight or its end.
        self.done.send_modify(|g| *g = g.wrapping_add(1));
    }
}

/// The refresher: sleeps until a fetch is due or asked for, fetches, records.
async fn run(shared: Arc<Shared>) {
    loop {
        let due = {
            let s = shared.lock();
            if s.requested {
                None
            } else if s.pending {
                Some(s.next_due.min(s.last_attempt + shared.config.min_refresh))
            } else {
                Some(s.next_due)
            }
        };
        if let Some(due) = due
            && Instant::now() < due
        {
            tokio::select! {
                () = tokio::time::sleep_until(due) => {}
                () = shared.wake.notified() => {}
            }
            continue;
        }
        {
            let mut s = shared.lock();
            s.in_flight = true;
            s.requested = false;
            s.pending = false;
            s.last_attempt = Instant::now();
            s.status.fetches += 1;
        }
        let outcome = fetch::fetch(&shared.client, &shared.config).await;
        shared.apply(outcome);
    }
}

/// The staleness bound of a copy fetched at `now`.
fn fresh_until(now: OffsetDateTime, bound: Duration) -> OffsetDateTime {
    let bound = time::Duration::try_from(bound).unwrap_or(time::Duration::MAX);
    now.saturating_add(bound)
}
