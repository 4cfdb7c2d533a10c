#!/usr/bin/env python3
"""Markdown tables from an image test run (for tests/bench/RESULTS.md).

    tests/image/report.py [target/image/metrics.tsv] [target/cross/sizes.tsv]
"""

import sys
from collections import defaultdict

metrics_path = sys.argv[1] if len(sys.argv) > 1 else "target/image/metrics.tsv"
sizes_path = sys.argv[2] if len(sys.argv) > 2 else "target/cross/sizes.tsv"

GOAL = {"mipsel-unknown-linux-musl": (2.0 * 1024 * 1024, 800 * 1024)}


def mb(b):
    return f"{int(b) / 1048576:.2f} MB"


def kb(b):
    return f"{int(b) / 1024:.0f} KB"


print("| target | stripped | xz -9e | goal |")
print("|---|---|---|---|")
for line in open(sizes_path):
    t, s, x = line.split()
    goal = ""
    if t in GOAL:
        gs, gx = GOAL[t]
        goal = f"≤ 2.00 MB {'met' if int(s) <= gs else 'missed'}; ≤ 800 KB xz {'met' if int(x) <= gx else 'missed'}"
    print(f"| `{t}` | {mb(s)} | {kb(x)} | {goal} |")
print()

m = defaultdict(dict)
for line in open(metrics_path):
    parts = line.rstrip("\n").split("\t")
    if len(parts) == 3:
        m[parts[0]][parts[1]] = parts[2]
archs = [a for a in ("aarch64", "armv7", "mipsel", "x86_64") if a in m]
rows = [
    ("kernel start → /init (guest clock)", "smoke_kernel_to_init_s", "s"),
    ("boot + smoke test + power-off (host wall)", "smoke_wall_s", "s"),
    ("scenario VM, whole run (host wall)", "scenario_wall_s", "s"),
    ("`wgsplit apply` (first, from nothing)", "apply_seconds", "s"),
    ("daemon start → routing ready", "daemon_start_to_ready_s", "s"),
    ("daemon start → first proxied reply", "daemon_start_to_first_proxied_reply_s", "s"),
    ("daemon RSS after start", "daemon_rss_kb", "KB"),
    ("daemon RSS after traffic", "daemon_rss_after_load_kb", "KB"),
    ("client → upstream → internet, no ruleset (before)", "throughput_without_ruleset_mbit", "Mbit/s"),
    ("same, wgsplit ruleset loaded", "throughput_with_ruleset_mbit", "Mbit/s"),
    ("same, no ruleset (after)", "throughput_without_ruleset_again_mbit", "Mbit/s"),
]
print("| | " + " | ".join(archs) + " |")
print("|---|" + "---|" * len(archs))
for label, key, unit in rows:
    vals = [m[a].get(key, "—") or "—" for a in archs]
    print(f"| {label} ({unit}) | " + " | ".join(vals) + " |")
ratio = []
for a in archs:
    try:
        base = (float(m[a]["throughput_without_ruleset_mbit"]) + float(m[a]["throughput_without_ruleset_again_mbit"])) / 2
        ratio.append(f"{float(m[a]['throughput_with_ruleset_mbit']) / base:.2f}" if base > 0 else "—")
    except (KeyError, ValueError):
        ratio.append("—")
print("| with ruleset ÷ mean without | " + " | ".join(ratio) + " |")
