//! [`SummarizingSink`]: repeated decisions folded into exact summaries per interval.

use crate::key::KeyId;
use crate::scope::{Action, Resource};
use crate::token::audit::{AuditError, AuditErrorKind, AuditEvent, AuditKind, AuditSink, Touched};
use crate::token::claims::{Environment, FamilyId, TokenId};
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::Duration;

/// Limits and interval of a [`SummarizingSink`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SummaryConfig {
    interval: Duration,
    max_tokens: usize,
    max_touched: usize,
    max_samples: usize,
    max_pending: usize,
}

impl Default for SummaryConfig {
    /// Summaries every 10 s; 10,000 tokens, 32 resources per token and 8 samples per reason
    /// tracked one by one; 20,000 summaries (two full windows) waiting for a busy inner sink.
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(10),
            max_tokens: 10_000,
            max_touched: 32,
            max_samples: 8,
            max_pending: 20_000,
        }
    }
}

impl SummaryConfig {
    /// How often summaries are handed to the inner sink (default 10 s, at least 10 ms).
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval.max(Duration::from_millis(10));
        self
    }

    /// How many distinct tokens one interval tracks one by one (default 10,000).
    pub fn max_tokens(mut self, n: usize) -> Self {
        self.max_tokens = n;
        self
    }

    /// How many distinct resource/action pairs one token's summary lists (default 32).
    pub fn max_touched(mut self, n: usize) -> Self {
        self.max_touched = n;
        self
    }

    /// How many sample subjects, key ids and client addresses a refusal summary lists, and how
    /// many client addresses a token summary lists (default 8).
    pub fn max_samples(mut self, n: usize) -> Self {
        self.max_samples = n;
        self
    }

    /// How many summaries may wait for a busy inner sink before this sink fails closed
    /// (default 20,000). A summary lists at most [`max_touched`](Self::max_touched) resources
    /// of at most 1 KiB each, so this also bounds the bytes held.
    pub fn max_pending(mut self, n: usize) -> Self {
        self.max_pending = n.max(1);
        self
    }
}

/// An [`AuditSink`] that folds repeated decisions into exact summaries per interval.
///
/// A service verifies the same token on request after request, and an attacker can send
/// garbage as fast as the network carries it. Written one event per decision, either fills
/// any durable sink faster than it drains, and a full sink fails closed: load would become an
/// outage. This sink keeps, for the current interval, one record per token (its `verified`,
/// `authorized` and `denied` counts, first and last use, and the resources and actions it
/// touched) and one per refusal reason (count, first and last, a few sample subjects and key
/// ids), and hands the inner sink one summary event per record when the interval ends. Every
/// other event (issued, revoked, refreshed, reuse detected) goes to the inner sink at once.
///
/// Bounds, and what happens at each:
/// - **tokens per interval** ([`SummaryConfig::max_tokens`]): tokens beyond it are counted
///   together in one [`AuditKind::OtherTokensUsed`] event; counts stay exact.
/// - **resources per token** ([`SummaryConfig::max_touched`]): further ones count only in the
///   token's totals.
/// - **refusal reasons**: one record per [`VerifyErrorKind`](crate::VerifyErrorKind), a fixed set; the
///   samples are capped at [`SummaryConfig::max_samples`].
/// - **summaries waiting for the inner sink** ([`SummaryConfig::max_pending`]): a sink that
///   answers [`AuditErrorKind::Busy`] gets them again at the next interval; past the bound,
///   or as soon as the sink answers [`AuditErrorKind::Unavailable`], this sink fails closed
///   (every decision it is asked to record is refused) until the inner sink takes the backlog.
///
/// So no number of requests makes a valid one fail: a busy sink delays summaries, and only a
/// sink that is down (or busy for longer than the pending bound allows) refuses decisions.
///
/// ```
/// use scopekey::audit::{AuditKind, MemorySink, SummarizingSink, SummaryConfig};
/// use scopekey::{Issuer, KeySet, SigningKey, TokenRequest, Verifier, VerifierConfig};
/// use std::sync::Arc;
///
/// let key = SigningKey::generate()?;
/// let keys = KeySet::single(key.public_key().clone());
/// let issuer = Issuer::new(key, "https://auth.example", "production".parse()?)?;
/// let trail = Arc::new(MemorySink::new());
/// let summaries = Arc::new(SummarizingSink::new(trail.clone(), SummaryConfig::default())?);
/// let verifier = Verifier::new(
///     keys,
///     VerifierConfig::new("https://auth.example", "https://api.example", "production".parse()?),
/// )?
/// .with_audit(summaries.clone());
///
/// let minted = issuer.issue(&TokenRequest::new("ci", "https://api.example", "projects:read".parse()?))?;
/// for _ in 0..1000 {
///     verifier.verify(minted.token().as_str())?;
/// }
/// summaries.flush()?; // otherwise at the end of the interval
/// let events = trail.events();
/// assert_eq!(events.len(), 1);
/// assert!(matches!(events[0].kind, AuditKind::TokenUsed { verified: 1000, .. }));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct SummarizingSink {
    shared: Arc<Shared>,
}

struct Shared {
    inner: Arc<dyn AuditSink>,
    config: SummaryConfig,
    window: Mutex<Window>,
    /// Summaries taken from a window and not yet accepted by the inner sink; the lock also
    /// serialises deliveries, so summaries reach the inner sink in order.
    pending: Mutex<VecDeque<AuditEvent>>,
    /// Set while the inner sink is down, or busy past `max_pending`: decisions are refused.
    failing: AtomicBool,
    /// Tells the flusher thread to stop.
    stop: Arc<(Mutex<bool>, Condvar)>,
}

#[derive(Default)]
struct Window {
    tokens: HashMap<TokenId, TokenUse>,
    others: Option<Totals>,
    refusals: Vec<Refusals>,
}

#[derive(Clone)]
struct Span {
    first: String,
    last: String,
}

impl Span {
    fn new(at: &str) -> Self {
        Self {
            first: at.to_owned(),
            last: at.to_owned(),
        }
    }

    fn extend(&mut self, at: &str) {
        // RFC 3339 UTC times of one format order as text.
        if at > self.last.as_str() {
            self.last.clear();
            self.last.push_str(at);
        }
        if at < self.first.as_str() {
            self.first.clear();
            self.first.push_str(at);
        }
    }
}

struct Totals {
    span: Span,
    verified: u64,
    authorized: u64,
    denied: u64,
}

impl Totals {
    fn new(at: &str) -> Self {
        Self {
            span: Span::new(at),
            verified: 0,
            authorized: 0,
            denied: 0,
        }
    }

    fn count(&mut self, decision: Decision<'_>) {
        match decision {
            Decision::Verified => self.verified += 1,
            Decision::Authorized(..) => self.authorized += 1,
            Decision::Denied(..) => self.denied += 1,
        }
    }
}

struct TokenUse {
    totals: Totals,
    sub: Option<String>,
    kid: Option<KeyId>,
    env: Option<Environment>,
    fam: Option<FamilyId>,
    touched: HashMap<(Resource, Action), (u64, u64)>,
    clients: Vec<IpAddr>,
}

struct Refusals {
    reason: &'static str,
    count: u64,
    span: Span,
    subjects: Vec<String>,
    key_ids: Vec<KeyId>,
    clients: Vec<IpAddr>,
}

/// Adds the client address of `event`'s request to `samples`, keeping at most `max` distinct.
fn sample_client(samples: &mut Vec<IpAddr>, event: &AuditEvent, max: usize) {
    if let Some(client) = event.request.as_ref().and_then(|r| r.client)
        && samples.len() < max
        && !samples.contains(&client)
    {
        samples.push(client);
    }
}

#[derive(Clone, Copy)]
enum Decision<'a> {
    Verified,
    Authorized(&'a Resource, &'a Action),
    Denied(&'a Resource, &'a Action),
}

impl SummarizingSink {
    /// Summarizes into `inner`, handing it summaries every [`SummaryConfig::interval`] from a
    /// background thread (stopped when the last clone of this sink is dropped, after a last
    /// delivery).
    ///
    /// # Errors
    /// [`AuditError`] when the background thread cannot be started.
    pub fn new(inner: Arc<dyn AuditSink>, config: SummaryConfig) -> Result<Self, AuditError> {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let shared = Arc::new(Shared {
            inner,
            config,
            window: Mutex::new(Window::default()),
            pending: Mutex::new(VecDeque::new()),
            failing: AtomicBool::new(false),
            stop: stop.clone(),
        });
        let weak = Arc::downgrade(&shared);
        std::thread::Builder::new()
            .name("scopekey-audit-summaries".into())
            .spawn(move || flusher(&weak, &stop, config.interval))
            .map_err(|e| {
                AuditError::new("summaries", format!("cannot start the summary thread: {e}"))
            })?;
        Ok(Self { shared })
    }

    /// Ends the current interval now: hands every summary (and any still waiting) to the inner
    /// sink, in order.
    ///
    /// # Errors
    /// The inner sink's error when it did not take them all; those it did not take are kept
    /// and offered again at the next interval.
    pub fn flush(&self) -> Result<(), AuditError> {
        self.shared.flush()
    }

    /// How many summaries are waiting for the inner sink.
    pub fn pending(&self) -> usize {
        lock(&self.shared.pending).len()
    }

    /// Whether the sink refuses decisions because the inner sink is down (or busy past
    /// [`SummaryConfig::max_pending`]).
    pub fn is_failing(&self) -> bool {
        self.shared.failing.load(Ordering::Acquire)
    }
}

impl fmt::Debug for SummarizingSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // One lock at a time: `flush` takes `pending` then `window`, so holding `window` while
        // waiting for `pending` here could deadlock with it.
        let (tokens, reasons) = {
            let window = lock(&self.shared.window);
            (window.tokens.len(), window.refusals.len())
        };
        let pending = self.pending();
        f.debug_struct("SummarizingSink")
            .field("inner", &self.shared.inner)
            .field("config", &self.shared.config)
            .field("tokens", &tokens)
            .field("refusal_reasons", &reasons)
            .field("pending", &pending)
            .field("failing", &self.is_failing())
            .finish()
    }
}

impl AuditSink for SummarizingSink {
    fn record(&self, event: &AuditEvent) -> Result<(), AuditError> {
        let decision = match &event.kind {
            AuditKind::Verified => Decision::Verified,
            AuditKind::Authorized { resource, action } => Decision::Authorized(resource, action),
            AuditKind::Denied { resource, action } => Decision::Denied(resource, action),
            AuditKind::Refused { reason } => {
                self.shared.check_failing()?;
                self.shared.refused(reason, event);
                return Ok(());
            }
            _ => return self.shared.inner.record(event),
        };
        let Some(jti) = &event.jti else {
            // A decision about no known token is not repeated by the same token: as it is.
            return self.shared.inner.record(event);
        };
        self.shared.check_failing()?;
        self.shared.decided(jti, decision, event);
        Ok(())
    }
}

impl Shared {
    fn check_failing(&self) -> Result<(), AuditError> {
        if self.failing.load(Ordering::Acquire) {
            return Err(AuditError::new(
                "summaries",
                "the inner audit sink is not taking summaries, so decisions are refused until it does",
            ));
        }
        Ok(())
    }

    fn decided(&self, jti: &TokenId, decision: Decision<'_>, event: &AuditEvent) {
        let max_tokens = self.config.max_tokens;
        let mut window = lock(&self.window);
        let window = &mut *window;
        if !window.tokens.contains_key(jti) {
            if window.tokens.len() >= max_tokens {
                let others = window
                    .others
                    .get_or_insert_with(|| Totals::new(&event.time));
                others.span.extend(&event.time);
                others.count(decision);
                return;
            }
            window.tokens.insert(
                jti.clone(),
                TokenUse {
                    totals: Totals::new(&event.time),
                    sub: event.sub.clone(),
                    kid: event.kid.clone(),
                    env: event.env.clone(),
                    fam: event.fam.clone(),
                    touched: HashMap::new(),
                    clients: Vec::new(),
                },
            );
        }
        let Some(entry) = window.tokens.get_mut(jti) else {
            return;
        };
        sample_client(&mut entry.clients, event, self.config.max_samples);
        entry.totals.span.extend(&event.time);
        entry.totals.count(decision);
        if entry.kid.is_none() {
            entry.kid.clone_from(&event.kid);
        }
        let (resource, action, allowed) = match decision {
            Decision::Verified => return,
            Decision::Authorized(r, a) => (r, a, true),
            Decision::Denied(r, a) => (r, a, false),
        };
        let key = (resource.clone(), action.clone());
        if !entry.touched.contains_key(&key) && entry.touched.len() >= self.config.max_touched {
            return;
        }
        let counts = entry.touched.entry(key).or_default();
        if allowed {
            counts.0 += 1;
        } else {
            counts.1 += 1;
        }
    }

    fn refused(&self, reason: &'static str, event: &AuditEvent) {
        let max = self.config.max_samples;
        let mut window = lock(&self.window);
        let refusals = match window.refusals.iter().position(|r| r.reason == reason) {
            Some(i) => &mut window.refusals[i],
            None => {
                window.refusals.push(Refusals {
                    reason,
                    count: 0,
                    span: Span::new(&event.time),
                    subjects: Vec::new(),
                    key_ids: Vec::new(),
                    clients: Vec::new(),
                });
                let last = window.refusals.len() - 1;
                &mut window.refusals[last]
            }
        };
        refusals.count += 1;
        refusals.span.extend(&event.time);
        sample_client(&mut refusals.clients, event, max);
        if let Some(sub) = &event.sub
            && refusals.subjects.len() < max
            && !refusals.subjects.contains(sub)
        {
            refusals.subjects.push(sub.clone());
        }
        if let Some(kid) = &event.kid
            && refusals.key_ids.len() < max
            && !refusals.key_ids.contains(kid)
        {
            refusals.key_ids.push(kid.clone());
        }
    }

    fn flush(&self) -> Result<(), AuditError> {
        let mut pending = lock(&self.pending);
        let window = std::mem::take(&mut *lock(&self.window));
        pending.extend(window.into_events());
        while let Some(event) = pending.front() {
            // A sink that panics is a sink that failed: the summaries stay queued, decisions are
            // refused (fail closed), and the flusher thread lives on to retry.
            let recorded =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.inner.record(event)))
                    .unwrap_or_else(|_| {
                        Err(AuditError::new(
                            "summaries",
                            "the inner audit sink panicked",
                        ))
                    });
            match recorded {
                Ok(()) => {
                    pending.pop_front();
                }
                Err(e) => {
                    let fail =
                        e.kind() != AuditErrorKind::Busy || pending.len() > self.config.max_pending;
                    if fail {
                        self.failing.store(true, Ordering::Release);
                    }
                    return Err(e);
                }
            }
        }
        self.failing.store(false, Ordering::Release);
        Ok(())
    }
}

impl Window {
    /// The window's summaries: refusals first, then each token (oldest first use first), then
    /// the tokens counted together.
    fn into_events(self) -> Vec<AuditEvent> {
        let mut events = Vec::with_capacity(self.refusals.len() + self.tokens.len() + 1);
        for r in self.refusals {
            events.push(AuditEvent::bare_at(
                r.span.last.clone(),
                AuditKind::RefusedSummary {
                    reason: r.reason,
                    count: r.count,
                    first: r.span.first,
                    last: r.span.last,
                    sample_subjects: r.subjects,
                    sample_key_ids: r.key_ids,
                    sample_clients: r.clients,
                },
            ));
        }
        let mut tokens: Vec<(TokenId, TokenUse)> = self.tokens.into_iter().collect();
        tokens.sort_by(|a, b| a.1.totals.span.first.cmp(&b.1.totals.span.first));
        for (jti, used) in tokens {
            let mut touched: Vec<Touched> = used
                .touched
                .into_iter()
                .map(|((resource, action), (authorized, denied))| Touched {
                    resource,
                    action,
                    authorized,
                    denied,
                })
                .collect();
            touched.sort_by(|a, b| {
                (a.resource.as_str(), a.action.as_str())
                    .cmp(&(b.resource.as_str(), b.action.as_str()))
            });
            let t = used.totals;
            let mut event = AuditEvent::bare_at(
                t.span.last.clone(),
                AuditKind::TokenUsed {
                    first_use: t.span.first,
                    last_use: t.span.last,
                    verified: t.verified,
                    authorized: t.authorized,
                    denied: t.denied,
                    touched,
                    clients: used.clients,
                },
            );
            event.jti = Some(jti);
            event.sub = used.sub;
            event.kid = used.kid;
            event.env = used.env;
            event.fam = used.fam;
            events.push(event);
        }
        if let Some(t) = self.others {
            events.push(AuditEvent::bare_at(
                t.span.last.clone(),
                AuditKind::OtherTokensUsed {
                    first_use: t.span.first,
                    last_use: t.span.last,
                    verified: t.verified,
                    authorized: t.authorized,
                    denied: t.denied,
                },
            ));
        }
        events
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        let (stopped, wake) = &*self.stop;
        *lock(stopped) = true;
        wake.notify_all();
        // The last delivery; what the inner sink refuses now cannot be offered again.
        let _ = self.flush();
    }
}

/// Hands summaries to the inner sink every `interval` until the sink is dropped.
fn flusher(shared: &Weak<Shared>, stop: &(Mutex<bool>, Condvar), interval: Duration) {
    let (stopped, wake) = stop;
    let mut guard = lock(stopped);
    loop {
        // The stop flag is checked before waiting too: a stop signalled before the wait began
        // (or by this very thread, dropping the last clone) ends the thread at once.
        if *guard {
            return;
        }
        guard = match wake.wait_timeout(guard, interval) {
            Ok((g, _)) => g,
            Err(poisoned) => poisoned.into_inner().0,
        };
        if *guard {
            return;
        }
        drop(guard);
        match shared.upgrade() {
            // A failed delivery is kept and retried at the next interval; `failing` tells.
            Some(shared) => drop(shared.flush()),
            None => return,
        }
        guard = lock(stopped);
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every update leaves the state consistent before anything that could panic.
    m.lock().unwrap_or_else(|p| p.into_inner())
}
