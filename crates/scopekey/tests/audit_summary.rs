//! The summarizing audit sink: load cannot turn the audit trail into an outage, and the trail's
//! counts stay exact.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use scopekey::audit::{
    AuditError, AuditErrorKind, AuditEvent, AuditKind, AuditSink, MemorySink, SummarizingSink,
    SummaryConfig,
};
use scopekey::{
    Action, Issuer, KeySet, Resource, SigningKey, TokenRequest, Verifier, VerifierConfig,
    VerifyErrorKind,
};
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const ISS: &str = "https://auth.example";
const AUD: &str = "https://api.example";

/// A sink that takes `delay` per event, and can be told to answer busy or down.
#[derive(Debug, Default)]
struct SlowSink {
    delay: Duration,
    /// 0: accepting, 1: busy, 2: down.
    mode: AtomicU8,
    calls: AtomicUsize,
    events: Mutex<Vec<AuditEvent>>,
}

impl SlowSink {
    fn new(delay: Duration) -> Arc<Self> {
        Arc::new(Self {
            delay,
            ..Self::default()
        })
    }

    fn set(&self, mode: u8) {
        self.mode.store(mode, Ordering::SeqCst);
    }

    fn events(&self) -> Vec<AuditEvent> {
        self.events.lock().unwrap().clone()
    }
}

impl AuditSink for SlowSink {
    fn record(&self, event: &AuditEvent) -> Result<(), AuditError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        std::thread::sleep(self.delay);
        match self.mode.load(Ordering::SeqCst) {
            0 => {
                self.events.lock().unwrap().push(event.clone());
                Ok(())
            }
            1 => Err(AuditError::busy("slow", "backlog full")),
            _ => Err(AuditError::new("slow", "disk gone")),
        }
    }
}

struct World {
    issuer: Issuer,
    verifier: Verifier,
    summaries: Arc<SummarizingSink>,
}

fn world(inner: Arc<dyn AuditSink>, config: SummaryConfig) -> World {
    let key = SigningKey::generate().unwrap();
    let keys = KeySet::single(key.public_key().clone());
    let issuer = Issuer::new(key, ISS, "production".parse().unwrap()).unwrap();
    let summaries = Arc::new(SummarizingSink::new(inner, config).unwrap());
    let verifier = Verifier::new(
        keys,
        VerifierConfig::new(ISS, AUD, "production".parse().unwrap()),
    )
    .unwrap()
    .with_audit(summaries.clone());
    World {
        issuer,
        verifier,
        summaries,
    }
}

impl World {
    fn mint(&self, subject: &str, scopes: &str) -> String {
        self.issuer
            .issue(&TokenRequest::new(subject, AUD, scopes.parse().unwrap()))
            .unwrap()
            .token()
            .as_str()
            .to_owned()
    }
}

/// Sums of the summary events: (refusals per reason, verified, authorized, denied).
fn totals(events: &[AuditEvent]) -> (Vec<(&'static str, u64)>, u64, u64, u64) {
    let (mut refused, mut verified, mut authorized, mut denied) = (Vec::new(), 0, 0, 0);
    for e in events {
        match &e.kind {
            AuditKind::RefusedSummary { reason, count, .. } => {
                match refused.iter_mut().find(|(r, _)| r == reason) {
                    Some((_, n)) => *n += count,
                    None => refused.push((*reason, *count)),
                }
            }
            AuditKind::TokenUsed {
                verified: v,
                authorized: a,
                denied: d,
                ..
            }
            | AuditKind::OtherTokensUsed {
                verified: v,
                authorized: a,
                denied: d,
                ..
            } => {
                verified += v;
                authorized += a;
                denied += d;
            }
            _ => {}
        }
    }
    refused.sort();
    (refused, verified, authorized, denied)
}

#[test]
fn a_million_malformed_tokens_through_a_slow_sink_then_a_valid_token_verifies() {
    // 2 ms per event: written one by one, the million refusals would take over half an hour.
    let slow = SlowSink::new(Duration::from_millis(2));
    let w = world(
        slow.clone(),
        SummaryConfig::default().interval(Duration::from_millis(50)),
    );
    let oversized = format!("v4.public.{}", "A".repeat(9000));
    let garbage = [
        "v4.public.not*base64",
        "v3.public.AAAA",
        "",
        oversized.as_str(),
    ];
    let started = Instant::now();
    for i in 0..1_000_000 {
        let refused = w.verifier.verify(garbage[i % garbage.len()]).unwrap_err();
        assert_ne!(refused.kind(), VerifyErrorKind::AuditUnavailable);
    }
    let token = w.mint("importer", "projects:read");
    let grant = w.verifier.verify(&token).unwrap();
    assert_eq!(grant.subject(), "importer");
    w.summaries.flush().unwrap();
    let events = slow.events();
    let (refused, verified, _, _) = totals(&events);
    let sum: u64 = refused.iter().map(|(_, n)| n).sum();
    assert_eq!(sum, 1_000_000, "{refused:?}");
    assert_eq!(refused.len(), 3, "{refused:?}"); // malformed, unsupported_format, oversized
    assert_eq!(verified, 1);
    // Bounded by distinct facts: a few summaries per interval, not a million events.
    let intervals = started.elapsed().as_millis() / 50 + 2;
    assert!(
        (events.len() as u128) <= intervals * 4,
        "{} events in {intervals} intervals",
        events.len()
    );
}

#[test]
fn a_busy_sink_delays_summaries_and_refuses_nothing() {
    let slow = SlowSink::new(Duration::ZERO);
    let w = world(
        slow.clone(),
        SummaryConfig::default().interval(Duration::from_secs(3600)),
    );
    let token = w.mint("ci", "projects:read");
    slow.set(1);
    for round in 0..3 {
        for _ in 0..1000 {
            w.verifier.verify(&token).unwrap();
        }
        let e = w.summaries.flush().unwrap_err();
        assert_eq!(e.kind(), AuditErrorKind::Busy);
        assert!(!w.summaries.is_failing());
        assert_eq!(w.summaries.pending(), round + 1);
    }
    slow.set(0);
    w.summaries.flush().unwrap();
    assert_eq!(w.summaries.pending(), 0);
    let events = slow.events();
    assert_eq!(events.len(), 3);
    assert_eq!(totals(&events).1, 3000);
}

#[test]
fn busy_past_the_pending_bound_fails_closed_until_the_sink_drains() {
    let slow = SlowSink::new(Duration::ZERO);
    let w = world(
        slow.clone(),
        SummaryConfig::default()
            .interval(Duration::from_secs(3600))
            .max_pending(2),
    );
    slow.set(1);
    let tokens: Vec<String> = (0..3).map(|i| w.mint(&format!("c{i}"), "a:read")).collect();
    for t in &tokens {
        w.verifier.verify(t).unwrap();
    }
    // Three summaries wait; the bound is two.
    assert_eq!(
        w.summaries.flush().unwrap_err().kind(),
        AuditErrorKind::Busy
    );
    assert!(w.summaries.is_failing());
    let refused = w.verifier.verify(&tokens[0]).unwrap_err();
    assert_eq!(refused.kind(), VerifyErrorKind::AuditUnavailable);
    slow.set(0);
    w.summaries.flush().unwrap();
    assert!(!w.summaries.is_failing());
    w.verifier.verify(&tokens[0]).unwrap();
    w.summaries.flush().unwrap();
    assert_eq!(totals(&slow.events()).1, 4);
}

#[test]
fn a_down_sink_fails_closed_and_recovers() {
    let slow = SlowSink::new(Duration::ZERO);
    let w = world(
        slow.clone(),
        SummaryConfig::default().interval(Duration::from_secs(3600)),
    );
    let token = w.mint("ci", "projects:read");
    w.verifier.verify(&token).unwrap();
    slow.set(2);
    assert_eq!(
        w.summaries.flush().unwrap_err().kind(),
        AuditErrorKind::Unavailable
    );
    assert!(w.summaries.is_failing());
    // Valid and invalid tokens alike are refused while the trail cannot be written.
    assert_eq!(
        w.verifier.verify(&token).unwrap_err().kind(),
        VerifyErrorKind::AuditUnavailable
    );
    assert_eq!(
        w.verifier.verify("garbage").unwrap_err().kind(),
        VerifyErrorKind::AuditUnavailable
    );
    slow.set(0);
    w.summaries.flush().unwrap();
    w.verifier.verify(&token).unwrap();
    w.summaries.flush().unwrap();
    // Nothing was lost: the first verification's summary was kept and delivered.
    assert_eq!(totals(&slow.events()).1, 2);
}

#[test]
fn summaries_name_each_token_and_what_it_touched() {
    let memory = Arc::new(MemorySink::new());
    let w = world(
        memory.clone(),
        SummaryConfig::default().interval(Duration::from_secs(3600)),
    );
    let token = w.mint("importer", "projects/1:read");
    let project = Resource::from_segments(["projects", "1"]).unwrap();
    for _ in 0..3 {
        let grant = w.verifier.verify(&token).unwrap();
        grant.authorize(&project, &Action::read()).unwrap();
    }
    let grant = w.verifier.verify(&token).unwrap();
    grant.authorize(&project, &Action::delete()).unwrap_err();
    // Issued, revoked and the like are not summarized: `issued` is not on this verifier, so
    // nothing reached the inner sink yet.
    assert!(memory.events().is_empty());
    w.summaries.flush().unwrap();
    let events = memory.events();
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!(e.sub.as_deref(), Some("importer"));
    assert_eq!(
        e.jti.as_ref().map(|j| j.to_string()),
        Some(grant.claims().token_id().to_string())
    );
    assert!(e.kid.is_some());
    let AuditKind::TokenUsed {
        verified,
        authorized,
        denied,
        touched,
        first_use,
        last_use,
        clients,
    } = &e.kind
    else {
        panic!("{e:?}");
    };
    assert_eq!((*verified, *authorized, *denied), (4, 3, 1));
    assert!(first_use <= last_use);
    let shown: Vec<String> = touched
        .iter()
        .map(|t| format!("{}:{} {}/{}", t.resource, t.action, t.authorized, t.denied))
        .collect();
    assert_eq!(shown, ["projects/1:delete 0/1", "projects/1:read 3/0"]);
    // No HTTP layer described these requests: no client addresses.
    assert!(clients.is_empty());
    let json = e.to_json();
    assert!(json.contains(r#""event":"token_used""#), "{json}");
}

#[test]
fn tokens_beyond_the_bound_are_counted_together_exactly() {
    let memory = Arc::new(MemorySink::new());
    let w = world(
        memory.clone(),
        SummaryConfig::default()
            .interval(Duration::from_secs(3600))
            .max_tokens(2)
            .max_touched(1),
    );
    let res = Resource::from_segments(["a"]).unwrap();
    for i in 0..5 {
        let t = w.mint(&format!("c{i}"), "a:read b:read");
        let g = w.verifier.verify(&t).unwrap();
        g.authorize(&res, &Action::read()).unwrap();
        g.authorize(&Resource::from_segments(["b"]).unwrap(), &Action::read())
            .unwrap();
    }
    w.summaries.flush().unwrap();
    let events = memory.events();
    let names: Vec<&str> = events.iter().map(|e| e.kind.name()).collect();
    assert_eq!(names, ["token_used", "token_used", "other_tokens_used"]);
    assert_eq!(totals(&events), (vec![], 5, 10, 0));
    for e in &events[..2] {
        let AuditKind::TokenUsed {
            touched,
            authorized,
            ..
        } = &e.kind
        else {
            panic!()
        };
        // One pair listed (max_touched), both counted.
        assert_eq!((touched.len(), *authorized), (1, 2));
    }
}

#[test]
fn refusal_summaries_sample_subjects_and_pass_other_events_through() {
    let memory = Arc::new(MemorySink::new());
    let w = world(
        memory.clone(),
        SummaryConfig::default()
            .interval(Duration::from_secs(3600))
            .max_samples(2),
    );
    // Signed, then refused (another audience): the subject is known.
    for i in 0..4 {
        let t = w
            .issuer
            .issue(&TokenRequest::new(
                format!("c{}", i % 3),
                "https://other.example",
                "a:read".parse().unwrap(),
            ))
            .unwrap();
        assert_eq!(
            w.verifier.verify(t.token().as_str()).unwrap_err().kind(),
            VerifyErrorKind::WrongAudience
        );
    }
    w.summaries.flush().unwrap();
    let events = memory.events();
    assert_eq!(events.len(), 1);
    let AuditKind::RefusedSummary {
        reason,
        count,
        sample_subjects,
        ..
    } = &events[0].kind
    else {
        panic!("{:?}", events[0]);
    };
    assert_eq!((*reason, *count), ("wrong_audience", 4));
    assert_eq!(sample_subjects, &["c0", "c1"]);

    // Anything but a decision goes to the inner sink at once.
    let bare = AuditEvent::bare(time::OffsetDateTime::now_utc(), AuditKind::Verified);
    w.summaries.record(&bare).unwrap(); // no jti: nothing to fold it into
    assert_eq!(memory.events().len(), 2);
}

#[test]
fn summaries_arrive_without_being_flushed() {
    let memory = Arc::new(MemorySink::new());
    let w = world(
        memory.clone(),
        SummaryConfig::default().interval(Duration::from_millis(20)),
    );
    let token = w.mint("ci", "projects:read");
    w.verifier.verify(&token).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while memory.events().is_empty() {
        assert!(Instant::now() < deadline, "no summary after 10 s");
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(totals(&memory.events()).1, 1);
}

#[test]
fn dropping_the_sink_delivers_the_last_window() {
    let memory = Arc::new(MemorySink::new());
    let w = world(
        memory.clone(),
        SummaryConfig::default().interval(Duration::from_secs(3600)),
    );
    let token = w.mint("ci", "projects:read");
    w.verifier.verify(&token).unwrap();
    drop(w);
    assert_eq!(totals(&memory.events()).1, 1);
}

#[test]
fn concurrent_decisions_are_counted_exactly() {
    let memory = Arc::new(MemorySink::new());
    let w = Arc::new(world(
        memory.clone(),
        SummaryConfig::default().interval(Duration::from_millis(10)),
    ));
    let token = Arc::new(w.mint("ci", "projects:read"));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (w, token) = (w.clone(), token.clone());
            std::thread::spawn(move || {
                for _ in 0..5000 {
                    w.verifier.verify(&token).unwrap();
                    w.verifier.verify("v4.public.x").unwrap_err();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    w.summaries.flush().unwrap();
    let (refused, verified, _, _) = totals(&memory.events());
    assert_eq!(verified, 20_000);
    assert_eq!(refused, vec![("malformed", 20_000)]);
}

/// Formatting the sink (as `Debug` of a verifier, a grant or an extractor does, say in a
/// `tracing` span) while summaries are delivered never deadlocks.
#[test]
fn debug_while_flushing_never_deadlocks() {
    let memory = Arc::new(MemorySink::new());
    let w = Arc::new(world(
        memory.clone(),
        SummaryConfig::default().interval(Duration::from_millis(10)),
    ));
    let token = w.mint("ci", "projects:read");
    let (done, finished) = std::sync::mpsc::channel();
    let worker = {
        let w = w.clone();
        std::thread::spawn(move || {
            let formatter = {
                let w = w.clone();
                std::thread::spawn(move || {
                    for _ in 0..5_000 {
                        assert!(format!("{:?}", w.summaries).contains("SummarizingSink"));
                    }
                })
            };
            for _ in 0..500 {
                w.verifier.verify(&token).unwrap();
                w.summaries.flush().unwrap();
            }
            formatter.join().unwrap();
            done.send(()).unwrap();
        })
    };
    finished
        .recv_timeout(Duration::from_secs(120))
        .expect("Debug and flush deadlocked");
    worker.join().unwrap();
    assert_eq!(totals(&memory.events()).1, 500);
}

/// Summaries keep a bounded sample of the client addresses the requests came from.
#[test]
fn summaries_sample_the_clients_of_the_requests() {
    use scopekey::audit::RequestContext;
    let memory = Arc::new(MemorySink::new());
    let w = world(memory.clone(), SummaryConfig::default().max_samples(3));
    let token = w.mint("app", "projects:read");
    for i in 0..10u8 {
        let client = std::net::IpAddr::from([192, 0, 2, i % 5]);
        let request = RequestContext::new("GET", "/projects/{id}").client(client);
        w.verifier
            .verify_for_request(&token, None, request.clone())
            .unwrap();
        let _ = w
            .verifier
            .verify_for_request("v4.public.garbage", None, request)
            .unwrap_err();
    }
    w.summaries.flush().unwrap();
    let events = memory.events();
    let mut seen = 0;
    for e in &events {
        let clients = match &e.kind {
            AuditKind::TokenUsed {
                clients, verified, ..
            } => {
                assert_eq!(*verified, 10);
                clients
            }
            AuditKind::RefusedSummary {
                sample_clients,
                count,
                ..
            } => {
                assert_eq!(*count, 10);
                sample_clients
            }
            _ => continue,
        };
        seen += 1;
        let shown: Vec<String> = clients.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["192.0.2.0", "192.0.2.1", "192.0.2.2"], "{e:?}");
    }
    assert_eq!(seen, 2, "{events:?}");
}

/// A sink that panics while `broken` is set, and records otherwise.
#[derive(Debug, Default)]
struct PanickySink {
    broken: std::sync::atomic::AtomicBool,
    inner: MemorySink,
}

impl AuditSink for PanickySink {
    fn record(&self, event: &AuditEvent) -> Result<(), AuditError> {
        if self.broken.load(Ordering::SeqCst) {
            panic!("a sink bug");
        }
        self.inner.record(event)
    }
}

/// An inner sink that panics is a failing sink: decisions fail closed, the summaries wait, and
/// the background thread survives to deliver them once the sink works again.
#[test]
fn a_panicking_sink_fails_closed_and_the_flusher_survives() {
    let sink = Arc::new(PanickySink::default());
    sink.broken.store(true, Ordering::SeqCst);
    let w = world(
        sink.clone(),
        SummaryConfig::default().interval(Duration::from_millis(20)),
    );
    let token = w.mint("ci", "projects:read");
    w.verifier.verify(&token).unwrap();
    let e = w.summaries.flush().unwrap_err();
    assert_eq!(e.kind(), AuditErrorKind::Unavailable, "{e}");
    assert!(w.summaries.is_failing());
    assert_eq!(
        w.verifier.verify(&token).unwrap_err().kind(),
        VerifyErrorKind::AuditUnavailable
    );
    // Let the flusher thread hit the panic on its own a few times.
    std::thread::sleep(Duration::from_millis(100));
    sink.broken.store(false, Ordering::SeqCst);
    let deadline = Instant::now() + Duration::from_secs(10);
    while w.summaries.is_failing() {
        assert!(Instant::now() < deadline, "the flusher never delivered");
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(totals(&sink.inner.events()).1, 1);
    w.verifier.verify(&token).unwrap();
}
