#!/usr/bin/env bash
# Heap allocations per DNS cache miss, two builds side by side: uprobes on glibc's
# malloc, realloc and posix_memalign (tokio's task cells, aligned to 128 bytes,
# take that one) counted by `perf stat` while dnsperf sends unique names (every
# one a miss whose answer goes into an nft set), divided by the answers. Counts,
# not times: the same on a busy machine. Also the sizes posix_memalign was asked
# for (a miss's task cell; past ~1 KiB glibc takes its large-chunk path).
#
# Usage: sudo tests/bench/miss_allocs.sh BASE_BIN [CURRENT_BIN]
#   CURRENT_BIN defaults to target/release/wgsplit (built here); BASE_BIN is any
#   wgsplit binary, e.g. tests/bench/compare.sh's cached base build
#   (/tmp/wgsplit-compare-target/bins/<commit>/wgsplit) or a copy of a release
#   build of another commit. Environment: WSMA_MISSES (default 20000).
set -euo pipefail
cd "$(dirname "$0")/../.."
[ "$(id -u)" = 0 ] || { echo "miss_allocs: run as root"; exit 1; }
[ $# -ge 1 ] || { sed -n 2,14p "$0"; exit 2; }
BASE=$1
MISSES=${WSMA_MISSES:-20000}
. tests/lib/deps.sh
. tests/lib/bench_dns.sh
install_deps >/dev/null
command -v perf >/dev/null || wgs_apt_install linux-perf
cargo build --release --quiet --bin wgsplit --example dns_stub
CUR=${2:-target/release/wgsplit}
LIBC=$(ldd "$CUR" | awk '/libc.so/ {print $3}')
[ -n "$LIBC" ] || { echo "miss_allocs: $CUR is not linked to glibc"; exit 1; }
NS=wsma-d
TMP=$(mktemp -d /tmp/wgsplit/miss_allocs.XXXXXX 2>/dev/null || { mkdir -p /tmp/wgsplit; mktemp -d /tmp/wgsplit/miss_allocs.XXXXXX; })
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    perf probe -q -d 'wsma:*' 2>/dev/null || true
    ip netns del "$NS" 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT
perf probe -q -d 'wsma:*' 2>/dev/null || true
perf probe -q -x "$LIBC" --add 'wsma:malloc=malloc'
perf probe -q -x "$LIBC" --add 'wsma:realloc=realloc'
perf probe -q -x "$LIBC" --add 'wsma:memalign=posix_memalign size=%dx:u64'
ip netns add "$NS"
N=(ip netns exec "$NS")
bench_dns_router "$NS" "$TMP"
"${N[@]}" target/release/examples/dns_stub 10.99.0.53:53 2 > /dev/null &
PIDS+=($!)
# measure WHO BIN → "mallocs reallocs memaligns per miss" and the memalign sizes
measure() {
    local who=$1 bin=$2 pid
    WGSPLIT_LIST_ROOTS=$TMP "${N[@]}" "$bin" -c "$TMP/dns.conf" dns-serve --client-rate 1000000 \
        --listen 10.8.0.1:53 > /dev/null 2> "$TMP/$who.err" &
    pid=$!; PIDS+=("$pid")
    for _ in $(seq 50); do grep -q listening "$TMP/$who.err" && break; sleep 0.1; done
    python3 -c "import sys; sys.stdout.writelines(f'm{i}.$who.bench.example A\n' for i in range($MISSES))" > "$TMP/$who.txt"
    perf stat -x, -e wsma:malloc,wsma:realloc,wsma:memalign -p "$pid" -o "$TMP/$who.stat" &
    local stat=$!
    perf record -q -e wsma:memalign -p "$pid" -o "$TMP/$who.data" > /dev/null 2>&1 &
    local rec=$!
    sleep 1
    "${N[@]}" dnsperf -s 10.8.0.1 -a 10.8.0.2 -d "$TMP/$who.txt" -n 1 -q 200 -t 2 > "$TMP/$who.perf" 2>&1
    kill -INT "$stat" "$rec"; wait "$stat" "$rec" 2>/dev/null || true
    kill "$pid"; wait "$pid" 2>/dev/null || true
    local n
    n=$(awk '/Queries completed/ {print $3}' "$TMP/$who.perf")
    awk -F, -v n="$n" '/wsma:/ {c[$3] = $1} END {printf "%.1f %.1f %.2f %d\n", c["wsma:malloc"] / n, c["wsma:realloc"] / n, c["wsma:memalign"] / n, n}' "$TMP/$who.stat"
    perf script -i "$TMP/$who.data" -F trace 2>/dev/null | sed -n 's/.*size=\([0-9]*\).*/\1/p' | sort -n | uniq -c | sort -rn | head -3 |
        awk '{printf "%s B x%s  ", $2, $1}' > "$TMP/$who.sizes"
}
read -r bm br ba bn < <(measure base "$BASE")
read -r cm cr ca cn < <(measure cur "$CUR")
printf '\n%-34s %10s %10s %8s\n' "per cache miss" base current ratio
printf '%-34s %10s %10s %8s\n' "malloc" "$bm" "$cm" "$(python3 -c "print(f'{$cm/$bm:.2f}')")"
printf '%-34s %10s %10s %8s\n' "realloc" "$br" "$cr" "$(python3 -c "print(f'{$cr/$br:.2f}' if $br else '-')")"
printf '%-34s %10s %10s %8s\n' "posix_memalign (task cells)" "$ba" "$ca" "$(python3 -c "print(f'{$ca/$ba:.2f}' if $ba else '-')")"
printf '%-34s %10s %10s\n' "misses answered" "$bn" "$cn"
echo "posix_memalign sizes, base:    $(cat "$TMP/base.sizes")"
echo "posix_memalign sizes, current: $(cat "$TMP/cur.sizes")"
