//! Slowing down guessing: failed client authentications counted per source (over every
//! client) and per client (over every source, with ten times the limit), in one bounded
//! table. A request whose source or client is over its limit is refused without a full
//! secret check until the window ends — unless the client's secret is one this instance has
//! already verified (the store's cheap confirmation), so a client that authenticated before
//! is never locked out by others' failures. When the table is full of live entries, new keys
//! go untracked rather than refused (the hash concurrency bound still limits them).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Where a request came from, coarsened: an IPv4 address, or the /64 of an IPv6 address (one
/// host usually holds a whole /64). `None` when the server was not given peer addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Source(Option<[u8; 16]>);

impl Source {
    pub(crate) fn of(ip: Option<IpAddr>) -> Self {
        Self(ip.map(|ip| match ip.to_canonical() {
            IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
            IpAddr::V6(v6) => {
                let mut o = v6.octets();
                o[8..].fill(0);
                o
            }
        }))
    }
}

#[derive(Debug)]
struct Entry {
    failures: u32,
    since: Instant,
}

/// What failures are counted against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Client(String),
    Source([u8; 16]),
}

/// A client over every source may fail this many times the per-source limit.
const CLIENT_FACTOR: u32 = 10;

/// The failure table.
#[derive(Debug)]
pub(crate) struct Throttle {
    limit: u32,
    window: Duration,
    capacity: usize,
    table: Mutex<HashMap<Key, Entry>>,
}

impl Throttle {
    pub(crate) fn new(limit: u32, window: Duration, capacity: usize) -> Self {
        Self {
            limit,
            window,
            capacity,
            table: Mutex::new(HashMap::new()),
        }
    }

    /// `Some(wait)` when `client` or `source` is over its limit.
    pub(crate) fn check(&self, client: &str, source: Source) -> Option<Duration> {
        let now = Instant::now();
        let table = self
            .table
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.keys(client, source)
            .filter_map(|(key, limit)| {
                let entry = table.get(&key)?;
                let elapsed = now.saturating_duration_since(entry.since);
                (entry.failures >= limit && elapsed < self.window).then(|| self.window - elapsed)
            })
            .max()
    }

    /// The keys a request counts against, each with its limit: the source (when known) and
    /// the client.
    fn keys(&self, client: &str, source: Source) -> impl Iterator<Item = (Key, u32)> {
        let by_source = source.0.map(|s| (Key::Source(s), self.limit));
        let by_client = (
            Key::Client(bounded(client)),
            self.limit.saturating_mul(CLIENT_FACTOR),
        );
        by_source.into_iter().chain(std::iter::once(by_client))
    }

    /// Counts a failure.
    pub(crate) fn failed(&self, client: &str, source: Source) {
        let now = Instant::now();
        let mut table = self
            .table
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for (key, _) in self.keys(client, source) {
            if !table.contains_key(&key) && table.len() >= self.capacity {
                let window = self.window;
                table.retain(|_, e| now.saturating_duration_since(e.since) < window);
                if table.len() >= self.capacity {
                    continue;
                }
            }
            let entry = table.entry(key).or_insert(Entry {
                failures: 0,
                since: now,
            });
            if now.saturating_duration_since(entry.since) >= self.window {
                *entry = Entry {
                    failures: 0,
                    since: now,
                };
            }
            entry.failures = entry.failures.saturating_add(1);
        }
    }

    /// Forgets the failures counted against a client that authenticated (its source's stay).
    pub(crate) fn succeeded(&self, client: &str) {
        let mut table = self
            .table
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        table.remove(&Key::Client(bounded(client)));
    }
}

/// Client ids as keys: at most 256 bytes (longer ids are never registered anyway).
fn bounded(client: &str) -> String {
    let mut end = client.len().min(256);
    while !client.is_char_boundary(end) {
        end -= 1;
    }
    client[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Source {
        Source::of(Some(s.parse().unwrap()))
    }

    #[test]
    fn failures_throttle_the_source_and_at_ten_times_the_rate_the_client() {
        let t = Throttle::new(3, Duration::from_secs(60), 100);
        for _ in 0..3 {
            assert!(t.check("ci", ip("10.0.0.1")).is_none());
            t.failed("ci", ip("10.0.0.1"));
        }
        // The source is over its limit, for every client; the same host's mapped address and
        // the same IPv6 /64 count as one source.
        assert!(t.check("ci", ip("10.0.0.1")).is_some());
        assert!(t.check("other", ip("10.0.0.1")).is_some());
        assert!(t.check("ci", ip("::ffff:10.0.0.1")).is_some());
        assert!(t.check("ci", ip("10.0.0.2")).is_none());
        for _ in 0..3 {
            t.failed("x", ip("2001:db8::1"));
        }
        assert!(t.check("y", ip("2001:db8::ffff")).is_some());
        assert!(t.check("y", ip("2001:db8:0:1::1")).is_none());
        // The client over every source: 30 failures from 30 sources.
        for i in 0..30 {
            t.failed("target", ip(&format!("192.0.2.{i}")));
        }
        assert!(t.check("target", ip("198.51.100.1")).is_some());
        assert!(t.check("bystander", ip("198.51.100.1")).is_none());
        t.succeeded("target");
        assert!(t.check("target", ip("198.51.100.1")).is_none());
        // Without peer addresses only the client is counted.
        let unknown = Source::of(None);
        for _ in 0..3 {
            t.failed("z", unknown);
        }
        assert!(t.check("w", unknown).is_none());
    }

    #[test]
    fn a_full_table_tracks_no_new_keys_and_forgets_expired_ones() {
        let t = Throttle::new(1, Duration::from_millis(50), 2);
        t.failed("a", Source::of(None));
        t.failed("b", Source::of(None));
        t.failed("c", Source::of(None));
        assert!(
            t.check("c", Source::of(None)).is_none(),
            "untracked when full"
        );
        assert!(
            t.check("a", Source::of(None)).is_none(),
            "a client may fail 10 times"
        );
        for _ in 0..9 {
            t.failed("a", Source::of(None));
        }
        assert!(t.check("a", Source::of(None)).is_some());
        std::thread::sleep(Duration::from_millis(60));
        for _ in 0..10 {
            t.failed("c", Source::of(None));
        }
        assert!(
            t.check("c", Source::of(None)).is_some(),
            "expired entries make room"
        );
    }
}
