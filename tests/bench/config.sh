#!/usr/bin/env bash
# Parse + validate a config of 500 clients and 5,000 rules with the release
# binary: median wall time and mean CPU time of 20 runs, and peak RSS, beside
# the issue's goals. CPU time is the steadier figure on a busy machine.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release --quiet
bin=target/release/wgsplit
cfg=$(mktemp)
trap 'rm -f "$cfg"' EXIT
python3 tests/bench/gen_config.py 500 10 > "$cfg"
python3 - "$bin" "$cfg" <<'PY'
import resource, subprocess, sys, time
bin, cfg = sys.argv[1], sys.argv[2]
times = []
before = resource.getrusage(resource.RUSAGE_CHILDREN)
for _ in range(20):
    t = time.perf_counter()
    subprocess.run([bin, "-c", cfg, "config", "check"], check=True, stderr=subprocess.DEVNULL)
    times.append((time.perf_counter() - t) * 1000)
times.sort()
after = resource.getrusage(resource.RUSAGE_CHILDREN)
cpu = ((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)) / 20 * 1000
# ru_maxrss of children would count python's own pages before exec: ask time(1).
out = subprocess.run(["/usr/bin/time", "-f", "%M", bin, "-c", cfg, "config", "check"],
                     check=True, capture_output=True, text=True).stderr
rss = int(out.strip().splitlines()[-1]) / 1024
print(f"{'config check, 500 clients / 5,000 rules':42} {'wgsplit':>10} {'goal':>8} {'ratio':>7}")
print(f"{'time, median of 20 (ms)':42} {times[10]:>10.1f} {50:>8} {times[10]/50:>7.2f}")
print(f"{'CPU time, mean of 20 (ms)':42} {cpu:>10.1f} {50:>8} {cpu/50:>7.2f}")
print(f"{'peak RSS (MB)':42} {rss:>10.1f} {8:>8} {rss/8:>7.2f}")
PY
