//! Slowing down guessing: failed client authentications counted per (client, source), in a
//! bounded table. A pair over the limit is refused without its secret being checked until
//! its window ends; other sources of the same client are untouched, so no flood can lock a
//! client out. When the table is full of live entries, new pairs go untracked rather than
//! refused (the hash concurrency bound still limits them).

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

/// The failure table.
#[derive(Debug)]
pub(crate) struct Throttle {
    limit: u32,
    window: Duration,
    capacity: usize,
    table: Mutex<HashMap<(String, Source), Entry>>,
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

    /// `Some(wait)` when `client` from `source` is over the limit.
    pub(crate) fn check(&self, client: &str, source: Source) -> Option<Duration> {
        let now = Instant::now();
        let table = self
            .table
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let entry = table.get(&(bounded(client), source))?;
        let elapsed = now.saturating_duration_since(entry.since);
        (entry.failures >= self.limit && elapsed < self.window).then(|| self.window - elapsed)
    }

    /// Counts a failure.
    pub(crate) fn failed(&self, client: &str, source: Source) {
        let now = Instant::now();
        let mut table = self
            .table
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let key = (bounded(client), source);
        if !table.contains_key(&key) && table.len() >= self.capacity {
            let window = self.window;
            table.retain(|_, e| now.saturating_duration_since(e.since) < window);
            if table.len() >= self.capacity {
                return;
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

    /// Forgets the failures of a pair that authenticated.
    pub(crate) fn succeeded(&self, client: &str, source: Source) {
        let mut table = self
            .table
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        table.remove(&(bounded(client), source));
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
    fn failures_throttle_one_pair_only() {
        let t = Throttle::new(3, Duration::from_secs(60), 100);
        for _ in 0..3 {
            assert!(t.check("ci", ip("10.0.0.1")).is_none());
            t.failed("ci", ip("10.0.0.1"));
        }
        assert!(t.check("ci", ip("10.0.0.1")).is_some());
        // Another source, another client, the same host's /64, a mapped address.
        assert!(t.check("ci", ip("10.0.0.2")).is_none());
        assert!(t.check("other", ip("10.0.0.1")).is_none());
        assert!(t.check("ci", ip("::ffff:10.0.0.1")).is_some());
        t.failed("ci", ip("2001:db8::1"));
        t.failed("ci", ip("2001:db8::2"));
        t.failed("ci", ip("2001:db8::3"));
        assert!(t.check("ci", ip("2001:db8::ffff")).is_some());
        assert!(t.check("ci", ip("2001:db8:0:1::1")).is_none());
        t.succeeded("ci", ip("10.0.0.1"));
        assert!(t.check("ci", ip("10.0.0.1")).is_none());
    }

    #[test]
    fn a_full_table_tracks_no_new_pairs_and_forgets_expired_ones() {
        let t = Throttle::new(1, Duration::from_millis(50), 2);
        t.failed("a", ip("10.0.0.1"));
        t.failed("b", ip("10.0.0.1"));
        t.failed("c", ip("10.0.0.1"));
        assert!(
            t.check("c", ip("10.0.0.1")).is_none(),
            "untracked when full"
        );
        assert!(t.check("a", ip("10.0.0.1")).is_some());
        std::thread::sleep(Duration::from_millis(60));
        t.failed("c", ip("10.0.0.1"));
        assert!(
            t.check("c", ip("10.0.0.1")).is_some(),
            "expired entries make room"
        );
    }
}
