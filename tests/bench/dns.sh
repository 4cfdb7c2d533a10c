#!/usr/bin/env bash
# The resolver against the OpenWrt way (dnsmasq + nftset=), side by side, one run:
# same machine, same stub upstream (daemon/examples/dns_stub.rs: a distinct address
# per name, TTL 300), same names, dnsperf as the client, in a netns of its own (wsd-b).
# The loads alternate between the two servers for ROUNDS rounds (the order swapped
# every round) and the table shows medians, so a noisy machine hits both alike;
# each load also reports the server's own CPU time per query (utime + stime from
# /proc, which includes the kernel's work on its behalf): a measure that does
# not depend on how much of the machine the server got.
#
#   miss qps      unique names, every query goes upstream and its address into a set
#   hit qps       100 names, warmed; twice: unthrottled (on 2 cores dnsperf,
#                 not the server, is the bottleneck there: both servers answer
#                 what dnsperf can send) and with each server limited to the
#                 same share of a CPU (THROTTLE %, a cgroup CPU quota with a
#                 10 ms period), so that the server is the bottleneck, as on a
#                 router whose CPU is slow and whose LAN clients are not. Both
#                 rows show the server's and dnsperf's CPU use during the load
#                 (a bottleneck shows as its quota, or ~100 %).
#   latency       p50/p99 of misses at a fixed 2000 qps (dnsperf -v per-query times),
#                 and of the stub asked directly (what the resolver adds is the difference)
#   RSS           after the loads, each started with the same 100,000-name list
#   insert        answer received → element in the kernel (the resolver's own counter)
#   matcher       1,000,000 names: lookups/s and bytes/name (dns_matcher_bench)
#
# With two CPUs or more, the two servers run pinned to CPU 1 and dnsperf and the
# stub to CPU 0 (taskset), so the load generator does not compete with the
# server it measures (on 2 cores, unpinned cache-hit runs mostly measured
# dnsperf and the kernel's loopback work, not the server).
#
# Usage: sudo tests/bench/dns.sh [SECONDS per load, default 8] [ROUNDS, default 3]
#                               [THROTTLE, % of one CPU per server, default 30]
#   WGSPLIT_BENCH_BIN / WGSPLIT_BENCH_STUB=PATH: that wgsplit binary / dns_stub instead of
#   target/release's (e.g. another commit's, as tests/bench/compare.sh builds them).
set -euo pipefail
cd "$(dirname "$0")/../.."
[ "$(id -u)" = 0 ] || { echo "needs root"; exit 1; }
SECS=${1:-8}
ROUNDS=${2:-3}
THROTTLE=${3:-30}
PERIOD=10000 # µs: short, so a throttled server answers in bursts of ≤ 10 ms
cargo build --release --quiet --bin wgsplit --example dns_stub --example dns_matcher_bench
BIN=${WGSPLIT_BENCH_BIN:-$PWD/target/release/wgsplit}
STUB=${WGSPLIT_BENCH_STUB:-$PWD/target/release/examples/dns_stub}
TMP=$(mktemp -d /tmp/wsd-bench.XXXXXX)
export WGSPLIT_LIST_ROOTS=$TMP   # wgsplit reads lists only in its folders
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    ip netns del wsd-b 2>/dev/null || true
    for g in "${CGS[@]}"; do rmdir "$g" 2>/dev/null || true; done
    rm -rf "$TMP"
}
# CPU quotas: a group per server (cgroup v1 cpu controller or cgroup v2).
CGS=()
if [ -w /sys/fs/cgroup/cpu/cgroup.procs ] && [ -e /sys/fs/cgroup/cpu/cpu.cfs_quota_us ]; then
    CGV=1 CGROOT=/sys/fs/cgroup/cpu
elif [ -e /sys/fs/cgroup/cgroup.subtree_control ] && grep -qw cpu /sys/fs/cgroup/cgroup.controllers; then
    CGV=2 CGROOT=/sys/fs/cgroup
    grep -qw cpu /sys/fs/cgroup/cgroup.subtree_control || echo +cpu > /sys/fs/cgroup/cgroup.subtree_control
else
    CGV=0
fi
trap cleanup EXIT
ip netns del wsd-b 2>/dev/null || true
ip netns add wsd-b
N="ip netns exec wsd-b"
if [ "$(nproc)" -ge 2 ] && command -v taskset > /dev/null; then
    SRV="taskset -c 1" CLI="taskset -c 0"
else
    SRV="" CLI=""
fi
$N ip link set lo up
for a in 10.8.0.1/32 10.8.0.2/32 10.99.0.53/32; do $N ip addr add $a dev lo; done

# Names: 100k in the list (what RSS is measured with), misses and hits under bench.example.
python3 - "$TMP" "$ROUNDS" "$SECS" <<'EOF'
import sys
d = sys.argv[1]
with open(f"{d}/small.txt", "w") as f, open(f"{d}/dnsmasq-small.conf", "w") as g:
    f.write("bench.example\n")
    g.write("nftset=/bench.example/4#inet#wgsplit#dm4\n")
with open(f"{d}/big.txt", "w") as f, open(f"{d}/dnsmasq-big.conf", "w") as g:
    f.write("bench.example\n")
    g.write("nftset=/bench.example/4#inet#wgsplit#dm4\n")
    for i in range(100_000):
        f.write(f"site{i}.list{i % 97}.example\n")
        g.write(f"nftset=/site{i}.list{i % 97}.example/4#inet#wgsplit#dm4\n")
rounds, secs = int(sys.argv[2]), int(sys.argv[3])
per = min(600_000, max(100_000, secs * 50_000))
files = [f"{w}{r}" for r in range(rounds) for w in ("ours", "dm", "lat_ours", "lat_dm")]
for who in files + ["lat_stub", "big_ours", "big_dm"]:
    with open(f"{d}/miss_{who}.txt", "w") as f:
        for i in range(per if not who.startswith("lat") else 12_000):
            f.write(f"m{i}.{who}.bench.example A\n")
with open(f"{d}/hit.txt", "w") as f:
    for i in range(100):
        f.write(f"h{i}.bench.example A\n")
EOF

$N nft -f - <<'EOF'
table inet wgsplit {
    set alice_r0_dns4 { type ipv4_addr; flags timeout; }
    set alice_r0_dns6 { type ipv6_addr; flags timeout; }
    set dm4 { type ipv4_addr; flags timeout; timeout 1h; }
}
EOF
KEY=yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=
for size in small big; do
cat > "$TMP/wgsplit-$size" <<EOF
config server 'server'
	option address '10.8.0.1/24'
	option private_key '$KEY'
	list dns_server '10.99.0.53'
config client 'alice'
	option public_key 'xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg='
	list address '10.8.0.2/32'
config rule
	option client 'alice'
	option action 'direct'
	list list 'big'
config list 'big'
	option path '$TMP/$size.txt'
EOF
done

$N $CLI "$STUB" 10.99.0.53:53 2 > "$TMP/stub.out" &
PIDS+=($!)
start() { # start small|big: both servers, each with that list
    # dnsperf is one client: its rate limit (200 q/s) is lifted far above any load
    # here, so the limiter's work is measured but never limits.
    $N $SRV "$BIN" -c "$TMP/wgsplit-$1" dns-serve --listen 10.8.0.1:53 --stats "$TMP/stats.json" \
        --client-rate 100000000 2> "$TMP/ours.err" &
    OURS=$!; PIDS+=($OURS)
    $N $SRV dnsmasq -k --no-resolv --no-hosts --server=10.99.0.53 --listen-address=10.8.0.1 --port=5300 \
        --bind-interfaces --cache-size=10000 --conf-file="$TMP/dnsmasq-$1.conf" --pid-file= --user=root \
        --log-facility=- 2> "$TMP/dnsmasq.err" &
    DM=$!; PIDS+=($DM)
    sleep 2
    grep -q listening "$TMP/ours.err" || { cat "$TMP/ours.err"; exit 1; }
}
stop() { kill $OURS $DM; wait $OURS $DM 2>/dev/null || true; }
start small
if [ "$CGV" != 0 ]; then
    for who in ours dm; do
        g=$CGROOT/wsd-b-$who
        mkdir -p "$g"; CGS+=("$g")
        if [ $who = ours ]; then echo $OURS > "$g/cgroup.procs"; else echo $DM > "$g/cgroup.procs"; fi
    done
fi
limit() { # limit ours|dm PERCENT|max: the server's CPU quota
    local g=$CGROOT/wsd-b-$1
    if [ "$CGV" = 1 ]; then
        echo $PERIOD > "$g/cpu.cfs_period_us"
        if [ "$2" = max ]; then echo -1; else echo $((PERIOD * $2 / 100)); fi > "$g/cpu.cfs_quota_us"
    elif [ "$CGV" = 2 ]; then
        if [ "$2" = max ]; then echo "max $PERIOD"; else echo "$((PERIOD * $2 / 100)) $PERIOD"; fi > "$g/cpu.max"
    fi
}
throttled() { # throttled ours|dm: periods the quota ran out in, so far
    if [ "$CGV" = 1 ]; then awk '/^nr_throttled/ {print $2}' "$CGROOT/wsd-b-$1/cpu.stat"
    elif [ "$CGV" = 2 ]; then awk '/^nr_throttled/ {print $2}' "$CGROOT/wsd-b-$1/cpu.stat"
    else echo 0; fi
}

cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }   # utime + stime, clock ticks
# CPU % = CPU time over dnsperf's run time (the load itself: after it dnsperf may
# wait up to -t 2 s for queries the server dropped, idle, like the server).
perf() { # perf PORT FILE PID [extra dnsperf args] → "qps cpu_us_per_query server_cpu% dnsperf_cpu%"
    local c0 c1 out
    c0=$(cpu "$3")
    out=$($N $CLI /usr/bin/time -f 'TIME %e %U %S' dnsperf -s 10.8.0.1 -p "$1" -a 10.8.0.2 -d "$2" -l "$SECS" -q 200 -t 2 "${@:4}" 2>&1)
    c1=$(cpu "$3")
    echo "$out" | awk -v t=$((c1 - c0)) -v hz="$(getconf CLK_TCK)" '
        /Queries completed/ {n = $3} /Queries per second/ {q = int($4)}
        /Run time/ {e = $4} /^TIME/ {u = $3 + $4}
        END {printf "%d %.1f %.0f %.0f\n", q, (n ? t * 1e6 / hz / n : 0), (e ? 100 * t / hz / e : 0), (e ? 100 * u / e : 0)}'
}
lat() { # lat PORT FILE → "p50 p99" in µs, misses at 2000 qps
    $N $CLI dnsperf -s "$3" -p "$1" -a 10.8.0.2 -d "$2" -l 5 -Q 2000 -t 2 -v 2>/dev/null |
        awk '/^> NOERROR/ {print $NF * 1e6}' | sort -n |
        awk '{a[NR]=$1} END {if (NR == 0) {print "- -"; exit} printf "%d %d\n", a[int(NR*0.5)+1], a[int(NR*0.99)+1]}'
}
rss() { awk '/VmRSS/ {printf "%.1f", $2/1024}' /proc/$1/status; }
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR % 2 ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2)}'; }

echo "load: ${SECS}s per run, $ROUNDS rounds alternating, ${SRV:+servers pinned to CPU 1, dnsperf to CPU 0, }dnsperf -q 200 from 10.8.0.2 (client alice); load average: $(cut -d' ' -f1-3 /proc/loadavg)"
perf 53 "$TMP/hit.txt" "$OURS" -n 1 > /dev/null; perf 5300 "$TMP/hit.txt" "$DM" -n 1 > /dev/null
declare -A R
for r in $(seq 0 $((ROUNDS - 1))); do
    # Swap who goes first every round.
    if [ $((r % 2)) = 0 ]; then order="ours dm"; else order="dm ours"; fi
    for who in $order; do
        if [ $who = ours ]; then port=53 pid=$OURS; else port=5300 pid=$DM; fi
        read -r q c < <(perf $port "$TMP/miss_$who$r.txt" $pid)
        R[miss_$who]+="$q "; R[misscpu_$who]+="$c "
        read -r q c su cu < <(perf $port "$TMP/hit.txt" $pid)
        R[hit_$who]+="$q "; R[hitcpu_$who]+="$c "; R[hitsrv_$who]+="$su "; R[hitcli_$who]+="$cu "
        if [ "$CGV" != 0 ]; then
            t0=$(throttled $who)
            limit $who "$THROTTLE"
            read -r q c su cu < <(perf $port "$TMP/hit.txt" $pid)
            limit $who max
            R[thit_$who]+="$q "; R[thitcpu_$who]+="$c "; R[thitsrv_$who]+="$su "; R[thitcli_$who]+="$cu "
            R[thr_$who]+="$(($(throttled $who) - t0)) "
        fi
        read -r p50 p99 < <(lat $port "$TMP/miss_lat_$who$r.txt" 10.8.0.1)
        R[p50_$who]+="$p50 "; R[p99_$who]+="$p99 "
    done
    echo "  round $((r + 1)): miss ${R[miss_ours]}/ ${R[miss_dm]}; hit ${R[hit_ours]}/ ${R[hit_dm]}; throttled hit ${R[thit_ours]:-}/ ${R[thit_dm]:-}(wgsplit / dnsmasq so far)"
done
med() { echo "${R[$1]}" | median; }
# Per-round ratios too: the median of ratios is the steadiest comparison.
ratios() { # ratios A B → median of A_i / B_i
    python3 -c "import sys, statistics as s; a=[float(x) for x in sys.argv[1].split()]; b=[float(x) for x in sys.argv[2].split()]; print(f'{s.median(x / y for x, y in zip(a, b) if y):.2f}')" "${R[$1]}" "${R[$2]}"
}
miss_ours=$(med miss_ours); miss_dm=$(med miss_dm); hit_ours=$(med hit_ours); hit_dm=$(med hit_dm)
p50_ours=$(med p50_ours); p50_dm=$(med p50_dm); p99_ours=$(med p99_ours); p99_dm=$(med p99_dm)
read -r p50_stub p99_stub < <(lat 53 "$TMP/miss_lat_stub.txt" 10.99.0.53 2>/dev/null || echo "- -")
kill -USR1 $OURS; sleep 0.5
read -r ins50 ins99 set_el set_err < <(python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); print(s["insert_p50_us"], s["insert_p99_us"], s["set_elements"], s["set_errors"])' "$TMP/stats.json")
dm_elems=$($N nft -j list set inet wgsplit dm4 | python3 -c 'import json,sys; print(sum(len(i.get("set",{}).get("elem",[])) for i in json.load(sys.stdin)["nftables"]))')
our_elems=$($N nft -j list set inet wgsplit alice_r0_dns4 | python3 -c 'import json,sys; print(sum(len(i.get("set",{}).get("elem",[])) for i in json.load(sys.stdin)["nftables"]))')
stop
# RSS: both restarted with the 100,000-name list, then under the same miss load.
start big
read -r big_ours _ < <(perf 53 "$TMP/miss_big_ours.txt" $OURS)
read -r big_dm _ < <(perf 5300 "$TMP/miss_big_dm.txt" $DM)
rss_ours=$(rss $OURS); rss_dm=$(rss $DM)
stop
matcher=$("$PWD/target/release/examples/dns_matcher_bench" 1000000 2>&1)

echo
row() { printf "| %-40s | %16s | %16s | %7s | %-14s |\n" "$@"; }
row measure "wgsplit (median)" "dnsmasq+nftset" ratio goal
printf "|%s|%s|%s|%s|%s|\n" "$(printf -- '-%.0s' {1..42})" "$(printf -- '-%.0s' {1..18})" "$(printf -- '-%.0s' {1..18})" "$(printf -- '-%.0s' {1..9})" "$(printf -- '-%.0s' {1..16})"
row "cache-miss qps" "$miss_ours" "$miss_dm" "$(ratios miss_ours miss_dm)" "≥ 2×"
row "cache-hit qps, unthrottled (dnsperf-bound)" "$hit_ours" "$hit_dm" "$(ratios hit_ours hit_dm)" ""
row "  CPU % during it: server / dnsperf" "$(med hitsrv_ours) / $(med hitcli_ours)" "$(med hitsrv_dm) / $(med hitcli_dm)" "" ""
if [ "$CGV" != 0 ]; then
    row "cache-hit qps, server at $THROTTLE % of a CPU" "$(med thit_ours)" "$(med thit_dm)" "$(ratios thit_ours thit_dm)" "≥ 1×"
    row "  CPU % during it: server / dnsperf" "$(med thitsrv_ours) / $(med thitcli_ours)" "$(med thitsrv_dm) / $(med thitcli_dm)" "" ""
    row "  server CPU µs per hit, throttled" "$(med thitcpu_ours)" "$(med thitcpu_dm)" "$(ratios thitcpu_ours thitcpu_dm)" "(lower is better)"
fi
row "server CPU µs per miss" "$(med misscpu_ours)" "$(med misscpu_dm)" "$(ratios misscpu_ours misscpu_dm)" "(lower is better)"
row "server CPU µs per hit" "$(med hitcpu_ours)" "$(med hitcpu_dm)" "$(ratios hitcpu_ours hitcpu_dm)" "(lower is better)"
# What one CPU second of the server answers: the throughput where the server,
# not dnsperf, is the bottleneck (on 2 cores dnsperf saturates first on hits).
cap() { python3 -c "import sys; print(f'{1e6 / float(sys.argv[1]):.0f}' if float(sys.argv[1]) else '-')" "$1"; }
row "cache-hit capacity, q per server CPU-s" "$(cap "$(med hitcpu_ours)")" "$(cap "$(med hitcpu_dm)")" "$(ratios hitcpu_dm hitcpu_ours)" "≥ 1×"
row "cache-miss capacity, q per server CPU-s" "$(cap "$(med misscpu_ours)")" "$(cap "$(med misscpu_dm)")" "$(ratios misscpu_dm misscpu_ours)" "≥ 2×"
row "miss latency p50 µs (stub: $p50_stub)" "$p50_ours" "$p50_dm" "$(ratios p50_ours p50_dm)" "≤ 1×"
row "miss latency p99 µs (stub: $p99_stub)" "$p99_ours" "$p99_dm" "$(ratios p99_ours p99_dm)" "≤ 1×"
row "RSS MB after load, 100k-name list" "$rss_ours" "$rss_dm" "$(python3 -c "print(f'{$rss_ours/$rss_dm:.2f}')")" "≤ 1.5×"
row "cache-miss qps, 100k-name list" "$big_ours" "$big_dm" "$(python3 -c "print(f'{$big_ours/max($big_dm,1):.2f}')")" ""
row "set elements after the runs" "$our_elems" "$dm_elems" "" ""
row "answer → element in kernel p50/p99" "$ins50/$ins99 µs" "-" "" "p99 < 100 µs"
echo
echo "per round (wgsplit | dnsmasq): miss ${R[miss_ours]}| ${R[miss_dm]}; hit ${R[hit_ours]}| ${R[hit_dm]}; throttled hit ${R[thit_ours]:-}| ${R[thit_dm]:-}; periods throttled ${R[thr_ours]:-}| ${R[thr_dm]:-}; p50 ${R[p50_ours]}| ${R[p50_dm]}; p99 ${R[p99_ours]}| ${R[p99_dm]}"
udp_drops=$($N awk '/^Udp:/ {if (seen) {for (i = 1; i <= NF; i++) if (h[i] == "RcvbufErrors") print $i; exit} seen = 1; for (i = 1; i <= NF; i++) h[i] = $i}' /proc/net/snmp)
echo "UDP datagrams dropped for a full receive buffer in the netns (all loads): $udp_drops"
echo "resolver: set elements inserted $set_el, set errors $set_err; load average now: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "matcher (1,000,000 names): $matcher"
