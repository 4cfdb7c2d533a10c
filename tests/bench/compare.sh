#!/usr/bin/env bash
# Two builds of wgsplit side by side in one run: BASE_REV (default b6ad7db, the main
# before the layering refactor of issue #13) against the current tree, on the two
# measures the issue names for "no behaviour change":
#
#   1. a one-rule change in the daemon: two daemons (one per build, each in a
#      network namespace of its own, both loaded with 250 clients × 200 CIDR rules
#      from tests/bench/engine-genconf.sh, as engine.sh does) get their config file
#      replaced in turn; each logs what the change cost it (plan + kernel, the
#      kernel part, engine CPU, building the desired state, reading the config).
#   2. the resolver's server CPU per cache miss (as fast as each build answers,
#      and again at an equal offered load, WSHC_MISS_QPS) and per cache hit: both builds'
#      `dns-serve` in one namespace with the same stub upstream (the current
#      tree's daemon/examples/dns_stub.rs), a fixed number of unique-name
#      (miss) and warmed (hit) queries from dnsperf; the server's utime + stime
#      from /proc (which includes the kernel's work on its behalf) divided by the
#      queries answered. Servers pinned to CPU 1, dnsperf and the stub to CPU 0.
#
# Interleaved: every round measures base then current or current then base (the
# order swapped each round), and each measure's verdict is taken on the per-round
# ratios current/base (their median, and their range). The machine this was
# written on is a shared, noisy 2-core box: a burst of someone else's load lands
# on one sample of a pair, which is why pairs, not two separate runs, are compared.
#
# Builds: BASE_REV in a temporary detached git worktree under /tmp (removed on
# exit), the current tree in place, both with CARGO_TARGET_DIR=$TARGET (below) so
# dependencies are built once; the base binary is kept there by commit id, so a
# second run does not rebuild it.
#
# The measuring part takes /tmp/wgsplit-suites.lock itself (it uses the kernel's nft
# and namespaces, as the suites do), after the builds, so a build does not hold the
# other suites up; wrapped in `flock /tmp/wgsplit-suites.lock` it sees the lock held
# by its caller and does not take it again.
#
# Usage: sudo tests/bench/compare.sh [BASE_REV]
#   environment: WSHC_ROUNDS (daemon changes per build, default 21),
#                WSHC_DNS_ROUNDS (default 7), WSHC_MISSES (per load, default 30000), WSHC_MISS_QPS (default 10000),
#                WSHC_HITS (per load, default 200000), WSHC_PREFIX (netns and
#                interface prefix, default wshc-), WSHC_SWAP_PORTS=1 (the current
#                tree's resolver started first and on port 53; see below),
#                WSHC_NO_LOCK=1 (see the lock below).
set -euo pipefail
cd "$(dirname "$0")/../.."
[ "$(id -u)" = 0 ] || { echo "compare: run as root"; exit 1; }
BASE_REV=${1:-b6ad7db}
ROUNDS=${WSHC_ROUNDS:-21}
DNS_ROUNDS=${WSHC_DNS_ROUNDS:-7}
MISSES=${WSHC_MISSES:-30000}
HITS=${WSHC_HITS:-200000}
# The misses again at a fixed rate both builds sustain (dnsperf -Q): the load
# above is as fast as each build goes, so each build is measured at its own rate,
# and on 2 cores the CPU per query then also depends on how often the stub and
# dnsperf (sharing CPU 0) sleep and must be woken (IPIs, charged to the sender).
MISS_QPS=${WSHC_MISS_QPS:-10000}
P=${WSHC_PREFIX:-wshc-}
# A ratio within this of 1 is "within noise" even when the rounds' range misses 1.
NOISE_BAND=0.10
# Bounds on every wait (tenths of a second).
WAIT_START_TENTHS=900
WAIT_CHANGE_TENTHS=300
TARGET=/tmp/wgsplit-compare-target
LOCK=/tmp/wgsplit-suites.lock
WAIT_LOCK_SECONDS=2400
. tests/lib/deps.sh
. tests/lib/netns.sh
. tests/lib/bench_dns.sh
install_deps >/dev/null

TMP=$(mktemp -d "/tmp/${P}compare.XXXXXX")
export WGSPLIT_LIST_ROOTS=$TMP   # wgsplit reads lists only in its folders (the base ignores it)
BASE_WT=""
PIDS=()
NS_E_BASE=${P}ea NS_E_CUR=${P}eb NS_D=${P}d
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    netns_remove "$NS_E_BASE" "$NS_E_CUR" "$NS_D"
    rm -f /var/run/wireguard/"$P"*.sock /var/run/wireguard/"$P"*.name
    rm -rf "$TMP" /dev/shm/"$P"state-*
    if [ -n "$BASE_WT" ]; then
        git worktree remove --force "$BASE_WT" 2>/dev/null || rm -rf "$BASE_WT"
        git worktree prune
    fi
}
trap cleanup EXIT

# --- builds ---------------------------------------------------------------------
# One build at a time in the shared target directory: a second run's base build
# would overwrite the release binary between this run's build and its copy.
mkdir -p "$TARGET"
exec 8> "$TARGET/.compare-build.lock"
flock 8
base_sha=$(git rev-parse --verify "$BASE_REV^{commit}")
cur_label="$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- daemon Cargo.toml Cargo.lock || echo '+uncommitted')"
BASE_BIN=$TARGET/bins/$base_sha/wgsplit
if [ ! -x "$BASE_BIN" ]; then
    echo "compare: building $BASE_REV ($base_sha) in a temporary worktree"
    BASE_WT=$(mktemp -d "/tmp/wgsplit-compare-base.XXXXXX")
    git worktree add --quiet --detach "$BASE_WT" "$base_sha"
    (cd "$BASE_WT" && CARGO_TARGET_DIR=$TARGET cargo build --release --quiet --bin wgsplit)
    mkdir -p "$(dirname "$BASE_BIN")"
    cp "$TARGET/release/wgsplit" "$BASE_BIN.new" && mv "$BASE_BIN.new" "$BASE_BIN"
fi
echo "compare: building the current tree ($cur_label)"
CARGO_TARGET_DIR=$TARGET cargo build --release --quiet --bin wgsplit --example dns_stub
# Copied out: the next base build in the same target directory overwrites these.
CUR_BIN=$TMP/wgsplit-current STUB=$TMP/dns_stub
cp "$TARGET/release/wgsplit" "$CUR_BIN"
cp "$TARGET/release/examples/dns_stub" "$STUB"
exec 8>&-

# The suites' lock, unless a process above this one (`flock LOCK …`) holds it already.
lock_held_above() {
    local p=$PPID
    while [ "$p" -gt 1 ]; do
        # a flock(1) process (its program name, not a shell whose script mentions it)
        if [ "$(head -zn1 "/proc/$p/cmdline" 2>/dev/null | tr -d '\0' | xargs -0 basename 2>/dev/null)" = flock ] &&
            tr '\0' '\n' < "/proc/$p/cmdline" | grep -qxF "$LOCK"; then
            return 0
        fi
        p=$(awk '/^PPid:/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 1)
    done
    return 1
}
# WSHC_NO_LOCK=1: measure without the lock (its namespaces and links carry
# WSHC_PREFIX, so they clash with no suite's), when suites hold it for long and
# their load is an acceptable noise for ratios taken round by round.
if [ -z "${WSHC_NO_LOCK:-}" ] && ! lock_held_above; then
    echo "compare: waiting for $LOCK (other suites and benches)"
    exec 9> "$LOCK"
    flock -w $WAIT_LOCK_SECONDS 9 || { echo "compare: $LOCK still held after $WAIT_LOCK_SECONDS s"; exit 1; }
fi
measure_start=$SECONDS
declare -A R # R[measure_who] = "v1 v2 …", one value per round, rounds in order

# --- 1. one-rule change in the daemon ---------------------------------------------
echo "compare: daemon one-rule change, $ROUNDS rounds (at $((SECONDS - measure_start)) s, load average $(cut -d' ' -f1-3 /proc/loadavg))"
export WG_SUDO=true
KEYS=$TMP/keys
for who in base cur; do
    if [ $who = base ]; then ns=$NS_E_BASE bin=$BASE_BIN tag=a; else ns=$NS_E_CUR bin=$CUR_BIN tag=b; fi
    d=$TMP/e-$who
    mkdir -p "$d/run"
    ip netns add "$ns"
    ip netns exec "$ns" ip link set lo up
    # Interface names differ per daemon: userspace WireGuard's sockets are host-wide.
    KEYFILE=$KEYS tests/bench/engine-genconf.sh "$CUR_BIN" 250 200 "${P}${tag}wg" "${P}${tag}u" > "$d/full.conf"
    KEYFILE=$KEYS tests/bench/engine-genconf.sh "$CUR_BIN" 250 200 "${P}${tag}wg" "${P}${tag}u" 1 > "$d/changed.conf"
    cp "$d/full.conf" "$d/live.conf"
    # The engine's record on a tmpfs, as on a router (see engine.sh).
    WGSPLIT_STATE_DIR=/dev/shm/${P}state-$who WGSPLIT_RUN_DIR=$d/run WGSPLIT_API_TOKEN_FILE=$d/api.token \
        ip netns exec "$ns" "$bin" -c "$d/live.conf" daemon > "$d/daemon.log" 2>&1 &
    PIDS+=($!)
done
for who in base cur; do
    log=$TMP/e-$who/daemon.log
    for _ in $(seq $WAIT_START_TENTHS); do grep -q 'start: applied' "$log" && break; sleep 0.1; done
    grep -q 'start: applied' "$log" || { echo "compare: the $who daemon did not start:"; tail -20 "$log"; exit 1; }
done
sleep 3 # let the first periodic checks pass
applied() { grep -c 'config change: applied' "$TMP/e-$1/daemon.log" || true; }
for i in $(seq "$ROUNDS"); do
    if [ $((i % 2)) = 1 ]; then order="base cur"; else order="cur base"; fi
    for who in $order; do
        d=$TMP/e-$who
        conf=$d/changed.conf; [ $((i % 2)) = 0 ] && conf=$d/full.conf
        cp "$conf" "$d/live.conf.new" && mv "$d/live.conf.new" "$d/live.conf"
        for _ in $(seq $WAIT_CHANGE_TENTHS); do [ "$(applied "$who")" -ge "$i" ] && break; sleep 0.1; done
        [ "$(applied "$who")" -ge "$i" ] || { echo "compare: the $who daemon did not apply change $i:"; tail -20 "$d/daemon.log"; exit 1; }
    done
done
for who in base cur; do
    lines=$(grep 'config change: applied' "$TMP/e-$who/daemon.log")
    R[plan_kernel_$who]=$(echo "$lines" | sed -n 's/.*applied [0-9]* changes in \([0-9.]*\) ms.*/\1/p' | xargs)
    R[kernel_$who]=$(echo "$lines" | sed -n 's/.*(kernel \([0-9.]*\) ms.*/\1/p' | xargs)
    R[engine_cpu_$who]=$(echo "$lines" | sed -n 's/.*requests, cpu \([0-9.]*\) ms.*/\1/p' | xargs)
    R[desired_$who]=$(echo "$lines" | sed -n 's/.*built in \([0-9.]*\) ms.*/\1/p' | xargs)
    R[read_$who]=$(echo "$lines" | sed -n 's/.*read and compiled in \([0-9.]*\) ms.*/\1/p' | xargs)
    R[requests_$who]=$(echo "$lines" | sed -n 's/.*, \([0-9]*\) netlink requests.*/\1/p' | sort -u | xargs)
    R[ops_$who]=$(echo "$lines" | sed -n 's/.*applied \([0-9]*\) changes.*/\1/p' | sort -u | xargs)
done
for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
PIDS=()
netns_remove "$NS_E_BASE" "$NS_E_CUR"

# --- 2. resolver CPU per miss and per hit ------------------------------------------
echo "compare: resolver CPU per miss ($MISSES) and per hit ($HITS), $DNS_ROUNDS rounds (at $((SECONDS - measure_start)) s, load average $(cut -d' ' -f1-3 /proc/loadavg))"
ip netns add "$NS_D"
N=(ip netns exec "$NS_D")
if [ "$(nproc)" -ge 2 ] && command -v taskset > /dev/null; then SRV=(taskset -c 1) CLI=(taskset -c 0); else SRV=() CLI=(); fi
bench_dns_router "$NS_D" "$TMP"
# Unique names per server and round (every one a miss, its address into the set),
# and 100 names for hits, warmed first.
python3 - "$TMP" "$DNS_ROUNDS" "$MISSES" <<'EOF'
import sys
d, rounds, misses = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for r in range(rounds):
    for who in ("base", "cur"):
        with open(f"{d}/miss_{who}{r}.txt", "w") as f:
            f.writelines(f"m{i}.{who}{r}.bench.example A\n" for i in range(misses))
        with open(f"{d}/missq_{who}{r}.txt", "w") as f:
            f.writelines(f"q{i}.{who}{r}.bench.example A\n" for i in range(misses))
with open(f"{d}/hit.txt", "w") as f:
    f.writelines(f"h{i}.bench.example A\n" for i in range(100))
EOF
"${N[@]}" "${CLI[@]}" "$STUB" 10.99.0.53:53 2 > "$TMP/stub.out" &
PIDS+=($!)
# WSHC_SWAP_PORTS=1 gives the base the second port (a check that the port, or which
# server is started first, does not bias the comparison).
if [ -n "${WSHC_SWAP_PORTS:-}" ]; then
    declare -A PORT=([base]=5353 [cur]=53) DPID=()
    SERVER_ORDER="cur base"
else
    declare -A PORT=([base]=53 [cur]=5353) DPID=()
    SERVER_ORDER="base cur"
fi
# dnsperf is one client: a resolver with the per-client rate limit (#18) has it
# lifted, as dns.sh does. The base commit here predates the flag; for a newer base
# set WSHC_BASE_DNS_ARGS the same way.
read -r -a BASE_DNS_ARGS <<< "${WSHC_BASE_DNS_ARGS:-}"
read -r -a CUR_DNS_ARGS <<< "${WSHC_CUR_DNS_ARGS:---client-rate 1000000}"
for who in $SERVER_ORDER; do
    if [ "$who" = base ]; then bin=$BASE_BIN; extra=("${BASE_DNS_ARGS[@]}"); else bin=$CUR_BIN; extra=("${CUR_DNS_ARGS[@]}"); fi
    "${N[@]}" "${SRV[@]}" "$bin" -c "$TMP/dns.conf" dns-serve "${extra[@]}" --listen "10.8.0.1:${PORT[$who]}" --stats "$TMP/stats-$who.json" 2> "$TMP/dns-$who.err" &
    DPID[$who]=$!; PIDS+=($!)
done
for who in base cur; do
    for _ in $(seq 50); do grep -q listening "$TMP/dns-$who.err" && break; sleep 0.1; done
    grep -q listening "$TMP/dns-$who.err" || { echo "compare: the $who resolver did not start:"; cat "$TMP/dns-$who.err"; exit 1; }
done
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# dns_load WHO FILE TIMES [dnsperf args] → "server CPU µs per answered query" and "answered"
dns_load() {
    local c0 c1 out
    c0=$(cpu_ticks "${DPID[$1]}")
    out=$("${N[@]}" "${CLI[@]}" dnsperf -s 10.8.0.1 -p "${PORT[$1]}" -a 10.8.0.2 -d "$2" -n "$3" -q 200 -t 2 "${@:4}" 2>&1)
    c1=$(cpu_ticks "${DPID[$1]}")
    echo "$out" | awk -v t=$((c1 - c0)) -v hz="$(getconf CLK_TCK)" '
        /Queries completed/ {n = $3} END {printf "%.2f %d\n", (n ? t * 1e6 / hz / n : 0), n}'
}
hit_times=$(( (HITS + 99) / 100 ))
for who in base cur; do dns_load "$who" "$TMP/hit.txt" 1 > /dev/null; done
for r in $(seq 0 $((DNS_ROUNDS - 1))); do
    if [ $((r % 2)) = 0 ]; then order="base cur"; else order="cur base"; fi
    for who in $order; do
        read -r c n < <(dns_load "$who" "$TMP/miss_$who$r.txt" 1)
        R[miss_cpu_$who]+="$c "; R[miss_n_$who]+="$n "
        read -r c n < <(dns_load "$who" "$TMP/missq_$who$r.txt" 1 -Q "$MISS_QPS")
        R[missq_cpu_$who]+="$c "; R[missq_n_$who]+="$n "
        read -r c n < <(dns_load "$who" "$TMP/hit.txt" "$hit_times")
        R[hit_cpu_$who]+="$c "; R[hit_n_$who]+="$n "
    done
    echo "  round $((r + 1)): µs per miss ${R[miss_cpu_base]}| ${R[miss_cpu_cur]}; per hit ${R[hit_cpu_base]}| ${R[hit_cpu_cur]}(base | current so far)"
done
for who in base cur; do kill -USR1 "${DPID[$who]}"; done
sleep 0.5
set_errors() { python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); print(s["set_elements"], s["set_errors"])' "$TMP/stats-$1.json"; }

# --- the table -----------------------------------------------------------------------
for k in "${!R[@]}"; do echo "$k ${R[$k]}"; done > "$TMP/results"
echo
echo "base $BASE_REV ($(git rev-parse --short "$base_sha")) vs current $cur_label; $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) at the end (a shared machine: other builds and benches ran alongside); measuring took $((SECONDS - measure_start)) s"
python3 - "$TMP/results" "$NOISE_BAND" <<'EOF'
import statistics as s, sys
R = {}
for line in open(sys.argv[1]):
    k, *v = line.split()
    R[k] = v
band = float(sys.argv[2])
rows = [
    ("daemon one-rule change: plan + kernel, ms", "plan_kernel"),
    ("  of it the kernel, ms", "kernel"),
    ("  engine CPU, ms", "engine_cpu"),
    ("  building the desired state, ms", "desired"),
    ("  reading and compiling the config, ms", "read"),
    ("resolver: server CPU per miss, µs", "miss_cpu"),
    ("  the same at an equal offered load, µs", "missq_cpu"),
    ("resolver: server CPU per hit, µs", "hit_cpu"),
]
table = [("measure", "base", "current", "current/base", "of medians", "per round", "verdict")]
for label, key in rows:
    a = [float(x) for x in R.get(key + "_base", [])]
    b = [float(x) for x in R.get(key + "_cur", [])]
    r = [y / x for x, y in zip(a, b) if x > 0]
    if not r:
        table.append((label, "-", "-", "-", "-", "-", "NO DATA"))
        continue
    m = s.median(r)
    if abs(m - 1) <= band:
        verdict = "within noise"
    elif min(r) <= 1.0 <= max(r):
        verdict = "within noise (spread covers 1.0)"
    else:
        verdict = "SLOWER" if m > 1 else "faster"
    ma, mb = s.median(a), s.median(b)
    table.append((label, f"{ma:.2f}", f"{mb:.2f}", f"{m:.3f}", f"{mb / ma:.3f}" if ma else "-",
                  f"{min(r):.2f} to {max(r):.2f}", verdict))
w = [max(len(row[i]) for row in table) for i in range(7)]
for n, row in enumerate(table):
    print("| " + " | ".join(c.ljust(w[i]) if i in (0, 6) else c.rjust(w[i]) for i, c in enumerate(row)) + " |")
    if n == 0:
        print("|" + "|".join("-" * (x + 2) for x in w) + "|")
EOF
echo
echo "medians of $ROUNDS daemon changes per build / $DNS_ROUNDS resolver rounds; current/base is the median of the per-round"
echo "ratios, 'of medians' the current median over the base median, 'per round' the ratios' range; 'within noise': the median"
echo "ratio is within ±${NOISE_BAND#0.} % of 1, or the range covers 1.0."
echo "daemon: changes per apply ${R[ops_base]} | ${R[ops_cur]}, netlink requests ${R[requests_base]} | ${R[requests_cur]} (base | current)"
echo "daemon, per change (base | current):"
for k in plan_kernel kernel engine_cpu desired read; do echo "  $k ms: ${R[${k}_base]} | ${R[${k}_cur]}"; done
echo "resolver, queries answered per load: misses ${R[miss_n_base]}| ${R[miss_n_cur]}; at $MISS_QPS q/s ${R[missq_n_base]}| ${R[missq_n_cur]}; hits ${R[hit_n_base]}| ${R[hit_n_cur]}"
echo "resolver, set elements and set errors: base $(set_errors base), current $(set_errors cur)"
