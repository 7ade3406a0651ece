#!/usr/bin/env bash
# The fuzz step of .ci/run: builds fuzz/ on the stable toolchain with libFuzzer's sanitizer-coverage
# flags (fuzz/README.md, "Without nightly"; no cargo-fuzz, no nightly, nothing to download but
# crates) and runs every target for a fixed budget from the committed seeds in fuzz/seeds/<target>/.
# A crash, a hang or an out-of-memory input fails the step, naming the target and the artifact.
#
#   bash .ci/fuzz.sh                              # every target, 30 s each
#   SCOPEKEY_FUZZ_SECONDS=300 bash .ci/fuzz.sh scope   # one target, longer
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

seconds="${SCOPEKEY_FUZZ_SECONDS:-30}"
# A fixed libFuzzer seed and a fresh working corpus: two runs of one commit explore alike.
seed="${SCOPEKEY_FUZZ_SEED:-1}"
if [ "$#" -gt 0 ]; then targets=("$@"); else targets=(token_decoder jwt paserk scope signed_claims); fi

# An explicit --target keeps the instrumentation out of build scripts and proc-macros.
triple="$(rustc -vV | sed -n 's/^host: //p')"
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions"

if ! cargo metadata --locked --format-version 1 >/dev/null; then
  echo "fuzz: fuzz/Cargo.lock is out of date with fuzz/Cargo.toml or crates/scopekey; refresh it with" >&2
  echo "fuzz:   cd fuzz && cp ../Cargo.lock Cargo.lock && cargo metadata --format-version 1 >/dev/null" >&2
  echo "fuzz: (keeps the main workspace's versions, adds the fuzz-only crates) and commit it" >&2
  exit 1
fi
cargo build --release --bins --locked --target "$triple"

bin="target/$triple/release"
failed=()
for t in "${targets[@]}"; do
  work="target/ci-corpus/$t"
  log="target/ci-fuzz-$t.log"
  rm -rf "$work"
  mkdir -p "$work" "artifacts/$t"
  rc=0
  "$bin/$t" "$work" "seeds/$t" -max_total_time="$seconds" -seed="$seed" -max_len=9000 \
    -timeout=25 -rss_limit_mb=2048 -artifact_prefix="artifacts/$t/" -print_final_stats=1 \
    >"$log" 2>&1 || rc=$?
  runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")"
  # A crash while loading the seeds leaves no `cov:` line; that must not end the script here.
  cov="$({ grep -o 'cov: [0-9]*' "$log" || true; } | tail -n 1 | cut -d' ' -f2)"
  if [ "$rc" = 0 ]; then
    echo "fuzz: $t: no crash in ${runs:-?} executions (${seconds} s, cov ${cov:-?}, corpus $(ls "$work" | wc -l) new inputs)"
  else
    tail -n 40 "$log" >&2
    artifact="$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)"
    echo "fuzz: FAILED: target $t exited $rc; artifact: fuzz/${artifact:-<none written; see fuzz/$log>}" >&2
    if [ -n "$artifact" ]; then
      echo "fuzz: replay: cd fuzz && $bin/$t $artifact   (full log: fuzz/$log)" >&2
    fi
    failed+=("$t")
  fi
done

if [ "${#failed[@]}" -gt 0 ]; then
  echo "fuzz: FAILED: ${failed[*]}" >&2
  exit 1
fi
