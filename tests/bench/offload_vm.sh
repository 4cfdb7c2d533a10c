#!/usr/bin/env bash
# Throughput with fw4's software flow offloading off and on, side by side, in
# one run: inside the aarch64 image under QEMU (Debian's kernel has flowtables;
# the CI host's does not), wgsplit applied, a client's TCP stream through its
# WireGuard tunnel to a direct destination (B) and to one its rule sends
# through upstream up1 (A). Offloading on = tests/lib/fw4_flowtable.sh's table
# over wg0, the WAN and wgs_up1. Rounds alternate off/on (3 each) so the
# machine's drift hits both; the medians and the ratio on/off are printed.
# TCG emulates the CPU: the absolute Mbit/s are far below real hardware's,
# the ratio is the figure.
#   tests/bench/offload_vm.sh [ARCH]     (default aarch64; root; ~5 min)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
A=${1:-aarch64}
# shellcheck source=image/lib/arch.sh
source image/lib/arch.sh
wgs_arch "$A"
[ -f "target/cross/wgsplit-$RUST_TARGET" ] || image/cross-build.sh --no-readme "$RUST_TARGET"
FIX=$(mktemp -d /tmp/wsi-bench.XXXXXX)
trap 'rm -rf "$FIX"' EXIT
tests/image/make-fixture.sh "$FIX"
OUT=target/image/bench-$A
image/build-image.sh "$A" --test-dir "$FIX" --config "$FIX/wgsplit.conf" --out "$OUT" >/dev/null
rc=0
image/boot.sh "$A" --dir "$OUT" --test offload \
    --append "wsi.bench=1" --timeout 900 >/dev/null 2>&1 || rc=$?
LOG=$OUT/console-offload.log
checks=$(tr -d '\r' <"$LOG" | sed -n 's/^WSI-SUMMARY //p')
echo "in-VM checks: ${checks:-none} (exit $rc)"
python3 - "$LOG" <<'PY'
import re, statistics, sys
v = {}
for line in open(sys.argv[1], errors="replace"):
    m = re.match(r"WSI-METRIC bench_([a-z]+)_(on|off)_(\d)_mbit=([0-9.]+)", line.strip())
    if m:
        v.setdefault((m[1], m[2]), []).append(float(m[4]))
if not v:
    sys.exit("no bench figures in the log")
head = ("flow", "offload off", "offload on", "on/off")
print(f"{head[0]:<36} {head[1]:>11} {head[2]:>10} {head[3]:>7}   rounds off | on (Mbit/s)")
names = {"direct": "direct (out the WAN), TCP", "upstream": "through upstream up1 (marked), TCP"}
for path in ("direct", "upstream"):
    off, on = v.get((path, "off"), []), v.get((path, "on"), [])
    if not off or not on:
        continue
    mo, mn = statistics.median(off), statistics.median(on)
    ratio = mn / mo if mo else float("nan")
    rounds = " ".join(map(str, off)) + " | " + " ".join(map(str, on))
    print(f"{names[path]:<36} {mo:>11.2f} {mn:>10.2f} {ratio:>6.2f}x   {rounds}")
PY
