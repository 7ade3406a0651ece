//! Multi-core scaling (issue #23 point 3): cold verification and cached authorization, each on 1
//! and then 2 threads sharing one verifier (so one revocation list and, for the cached path, one
//! grant cache), for the same time; the ratio of the throughputs is the scaling. The cached path
//! is measured twice: both threads cycling through the same 64 tokens (the grants' reference
//! counts and the cache shards' locks shared), and each thread on 32 tokens of its own.
//!
//! `cargo bench --bench scaling` from the workspace root (`-- --seconds N` per measurement,
//! default 2). A steady harness, not criterion: the 1- and 2-thread measurements alternate over
//! five rounds and each keeps its median, so a burst of load from another tenant of the virtual
//! machine lands on one round, not on one side. Run it on an otherwise idle machine with at least
//! two cores: a second thread cannot scale on a core something else is using.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

mod common;
use common::*;

/// Operations per second of `op` on `threads` threads for `time`: each thread calls `op` with
/// its number in the index's high half and a running count in the low half, in batches of 64
/// between looks at the stop flag.
fn throughput(threads: usize, time: Duration, op: &(dyn Fn(usize) + Sync)) -> f64 {
    let stop = AtomicBool::new(false);
    let done = AtomicU64::new(0);
    let started = Instant::now();
    std::thread::scope(|s| {
        for t in 0..threads {
            let (stop, done) = (&stop, &done);
            s.spawn(move || {
                // The thread's number in the high half, a running count in the low half.
                let mut i = t << 32;
                let mut n = 0_u64;
                while !stop.load(Ordering::Relaxed) {
                    for _ in 0..64 {
                        op(i);
                        i += 1;
                    }
                    n += 64;
                }
                done.fetch_add(n, Ordering::Relaxed);
            });
        }
        std::thread::sleep(time);
        stop.store(true, Ordering::Relaxed);
    });
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    // `cargo test --benches` runs this without `--bench`: nothing to measure then.
    if !args.iter().any(|a| a == "--bench") {
        eprintln!("scaling: run with `cargo bench --bench scaling`");
        return;
    }
    let seconds: f64 = args
        .iter()
        .position(|a| a == "--seconds")
        .map_or(2.0, |i| args[i + 1].parse().unwrap());
    let time = Duration::from_secs_f64(seconds);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("scaling: {cores} cores available, {seconds} s per measurement, 5 rounds");

    let f = fixture();
    // Every token of the pool verified once, so the cached path runs from the cache.
    for t in &f.tokens {
        f.cached.verify(t).unwrap();
    }
    // The pool's tokens in turn, the two threads half the pool apart.
    let shared = |i: usize| (i >> 32) * (POOL / 2) + (i & 0xffff_ffff);
    // Each thread its own half of the pool (as requests of different consumers).
    let own = |i: usize| (i >> 32) * (POOL / 2) + (i & 0xffff_ffff) % (POOL / 2);
    let cold = |i: usize| {
        let grant = f
            .cold
            .verify(black_box(&f.tokens[shared(i) % POOL]))
            .unwrap();
        black_box(grant);
    };
    let cached = |i: usize| {
        let grant = f
            .cached
            .verify(black_box(&f.tokens[shared(i) % POOL]))
            .unwrap();
        grant.authorize(&f.resource, &f.action).unwrap();
    };
    let cached_own = |i: usize| {
        let grant = f
            .cached
            .verify(black_box(&f.tokens[own(i) % POOL]))
            .unwrap();
        grant.authorize(&f.resource, &f.action).unwrap();
    };
    let ops: [(&str, &(dyn Fn(usize) + Sync)); 3] = [
        ("cold verification", &cold),
        (
            "cached authorization, both threads on all 64 tokens",
            &cached,
        ),
        (
            "cached authorization, each thread on 32 tokens of its own",
            &cached_own,
        ),
    ];
    for (name, op) in ops {
        let (mut one, mut two) = (Vec::new(), Vec::new());
        for _ in 0..5 {
            one.push(throughput(1, time, op));
            two.push(throughput(2, time, op));
        }
        let (one, two) = (median(one), median(two));
        println!(
            "{name}: 1 thread {:.0}/s ({:.2} µs each), 2 threads {:.0}/s: scaling {:.2}x",
            one,
            1e6 / one,
            two,
            two / one
        );
    }
}
