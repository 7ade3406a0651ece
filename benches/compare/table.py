#!/usr/bin/env python3
"""Prints the table of docs/performance.md from the last `cargo bench --bench compare` run:
the median of each benchmark (criterion's estimates.json) and its ratio to the floor."""
import json
import pathlib
import sys

ROOT = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "target/criterion")
ROWS = [
    ("verify", "ed25519_dalek_verify_strict", "verify"),
    ("verify", "scopekey_cold", "verify"),
    ("verify", "scopekey_cached", "verify"),
    ("verify", "jsonwebtoken_eddsa", "verify"),
    ("verify", "pasetors_v4_public", "verify"),
    ("verify", "biscuit_verify_authorize", "verify"),
    ("mint", "ed25519_dalek_sign", "mint"),
    ("mint", "scopekey_mint", "mint"),
    ("check", "scopeset_allows_32", None),
    ("check", "revocation_lookup_1m", None),
    ("check", "tower_layer_oneshot", None),
]
FLOORS = {"verify": ("verify", "ed25519_dalek_verify_strict"), "mint": ("mint", "ed25519_dalek_sign")}


def median(group, name):
    path = ROOT / group / name / "new" / "estimates.json"
    return json.loads(path.read_text())["median"]["point_estimate"]


print("| group | benchmark | median | ratio to the floor |")
print("|---|---|---:|---:|")
for group, name, floor in ROWS:
    ns = median(group, name)
    shown = f"{ns / 1000:,.2f} µs" if ns >= 1000 else f"{ns:,.1f} ns"
    ratio = ""
    if floor:
        f = median(*FLOORS[floor])
        ratio = f"{ns / f:.3f}×" if ns >= f / 10 else f"1/{f / ns:,.0f}"
    print(f"| {group} | `{name}` | {shown} | {ratio} |")
