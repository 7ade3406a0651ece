//! Leak-scanner throughput on plain text with no tokens (the common case: a large repository).
//!
//! Run with `cargo bench --bench scan`. The result is in
//! `target/criterion/scan/plain_text_16mib/new/estimates.json`; criterion prints the throughput.
#![allow(missing_docs, clippy::unwrap_used)] // criterion's macros generate undocumented items

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use scopekey_cli::scan::{ScanResult, Scanner};
use std::hint::black_box;

fn plain_text(len: usize) -> Vec<u8> {
    // Log-like lines that mention the format but hold no token.
    let lines: [&[u8]; 4] = [
        b"2030-01-01T00:00:00Z INFO request served in 3 ms, path=/projects/42 status=200\n",
        b"fn main() { let v4 = \"public\"; println!(\"{v4}\"); } // v4.public docs\n",
        b"{\"user\":\"alice\",\"scope\":\"projects:read\",\"note\":\"rotated keys on Tuesday\"}\n",
        b"Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor.\n",
    ];
    let mut out = Vec::with_capacity(len);
    let mut i = 0;
    while out.len() < len {
        out.extend_from_slice(lines[i % lines.len()]);
        i += 1;
    }
    out.truncate(len);
    out
}

fn scan(c: &mut Criterion) {
    let data = plain_text(16 * 1024 * 1024);
    let scanner = Scanner::new(None);
    let mut group = c.benchmark_group("scan");
    group.throughput(Throughput::Bytes(data.len() as u64));
    group.sample_size(20);
    group.bench_function("plain_text_16mib", |b| {
        b.iter(|| {
            let result = scanner.scan_reader("bench", black_box(&data[..])).unwrap();
            assert!(matches!(result, ScanResult::Text(ref f) if f.is_empty()));
        })
    });
    group.finish();
}

criterion_group!(benches, scan);
criterion_main!(benches);
