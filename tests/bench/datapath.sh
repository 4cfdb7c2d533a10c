#!/usr/bin/env bash
# Data-path cost of the engine's ruleset, side by side in one run (root; network
# namespaces wse-d*): iperf3 over plain veth, client ─ router ─ server, through
# four routers that stand side by side for the whole run:
#   base      no ruleset (no connection tracking either)
#   ours      the engine's ruleset for 500 clients × 200 rules (100k set elements)
#   fw4       OpenWrt's default firewall (tests/bench/fw4-default.nft: conntrack,
#             lan → wan accepted and masqueraded): what every OpenWrt router runs
#   fw4+ours  both tables
# Nothing is loaded or flushed between rounds, so rounds can be short and many:
# each round runs the four once, in an order that rotates and reverses from round
# to round (a neighbour's burst or a warming cache lands on every side alike), and
# gives one ratio ours/base and one fw4+ours/fw4. The table shows the median of
# those ratios with their quartiles, so the noise is in plain sight.
#
# Two packet sizes: iperf3 as it comes (the kernel sends 64 KB GSO super-packets:
# one ruleset pass per 64 KB), and with GSO/TSO off on the client (one pass per
# 1500-byte packet: what a router forwarding decrypted WireGuard traffic pays).
# Where `perf` works, the share of the router path's CPU samples spent in nf_tables
# and connection tracking is printed too: a bound on what the ruleset can cost.
#
# Usage: sudo tests/bench/datapath.sh [ROUNDS, default 15] [SECONDS per run, default 2]
# (WGSPLIT_BENCH_BIN=another binary; DP_LEARNED=1: see below)
set -euo pipefail
cd "$(dirname "$0")/../.."
[ "$(id -u)" = 0 ] || { echo "bench: run as root"; exit 1; }
WGSPLIT_APT_PACKAGES="${WGSPLIT_APT_PACKAGES:-} ethtool"
. tests/lib/deps.sh
. tests/lib/netns.sh
install_deps >/dev/null
rounds=${1:-15}
secs=${2:-2}
[ -n "${WSE_BENCH_NO_BUILD:-}${WGSPLIT_BENCH_BIN:-}" ] || cargo build --release --quiet -p wgsplit
BIN=${WGSPLIT_BENCH_BIN:-$PWD/target/release/wgsplit} # as engine.sh
W=$(mktemp -d /tmp/wse-dp.XXXXXX)
KINDS="base ours fw4 fw4ours"
NS=""
for k in $KINDS; do NS="$NS wse-dc-$k wse-dr-$k wse-ds-$k"; done
NS="$NS wse-dgen"

cleanup() {
    # shellcheck disable=SC2086 # the list is meant to split
    netns_remove $NS
    rm -rf "$W"
}
trap cleanup EXIT
cleanup
mkdir -p "$W"
for ns in $NS; do ip netns add "$ns"; ip netns exec "$ns" ip link set lo up; done

echo "bench: data path, generating the ruleset of 500 clients × 200 rules"
KEYFILE=$W/keys tests/bench/engine-genconf.sh "$BIN" 500 200 wse-dgwg wse-dgu > "$W/dp.conf"
# DP_LEARNED=1: the measured client (c0) also has a domain rule whose learned set
# holds the server, so each new connection runs that rule (with the refresh of
# #19, `update @set`, where the binary has it).
[ -z "${DP_LEARNED:-}" ] || printf "config rule\n\toption client 'c0'\n\toption action 'proxy'\n\tlist domain 'bench.test'\n" >> "$W/dp.conf"
# The client's router side (wse-dr) plays the WireGuard server interface.
ip netns exec wse-dgen "$BIN" -c "$W/dp.conf" apply --dry-run --nft-script \
    | sed 's/"wse-dgwg"/"wse-dr"/g' > "$W/ours.nft"
elements=$(awk '/^add element/ {n += gsub(/, /, "&") + 1} END {print n}' "$W/ours.nft")
# Each kind: the same addresses in its own three namespaces. Interface names are
# per namespace, so every router sees its client side as "wse-dr".
for k in $KINDS; do
    c=wse-dc-$k r=wse-dr-$k s=wse-ds-$k
    ip link add wse-dc netns "$c" type veth peer name wse-dr netns "$r"
    ip link add wse-ds netns "$s" type veth peer name wse-dr2 netns "$r"
    ip -n "$c" addr add 10.8.0.3/16 dev wse-dc
    ip -n "$r" addr add 10.8.0.1/16 dev wse-dr
    ip -n "$r" addr add 10.9.0.1/24 dev wse-dr2
    ip -n "$s" addr add 10.9.0.2/24 dev wse-ds
    ip -n "$c" link set wse-dc up; ip -n "$r" link set wse-dr up
    ip -n "$r" link set wse-dr2 up; ip -n "$s" link set wse-ds up
    ip -n "$c" route add 10.9.0.0/24 via 10.8.0.1
    ip -n "$s" route add 10.8.0.0/16 via 10.9.0.1
    ip netns exec "$r" sysctl -qw net.ipv4.ip_forward=1
    case $k in
        ours) ip netns exec "$r" nft -f "$W/ours.nft" ;;
        fw4) ip netns exec "$r" nft -f tests/bench/fw4-default.nft ;;
        fw4ours) ip netns exec "$r" nft -f tests/bench/fw4-default.nft; ip netns exec "$r" nft -f "$W/ours.nft" ;;
    esac
    case $k in ours | fw4ours) [ -z "${DP_LEARNED:-}" ] ||
        ip netns exec "$r" nft add element inet wgsplit c0_r200_dns4 '{ 10.9.0.2 timeout 1h }' ;;
    esac
    # Pinned (server on CPU 1, client on CPU 0): on 2 cores an unpinned pair
    # migrates and the same set-up moves 10–20 Gbit/s between runs.
    ip netns exec "$s" iperf3 -s -D -A 1 >/dev/null
done
sleep 0.5

iperf() { # kind → Mbit/s received
    ip netns exec "wse-dc-$1" iperf3 -c 10.9.0.2 -A 0 -t "$secs" -J 2>/dev/null | python3 -c '
import json, sys
print(round(json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"] / 1e6))'
}
gso() { # on|off: segmentation offloads of every client
    local k
    for k in $KINDS; do ip netns exec "wse-dc-$k" ethtool -K wse-dc tso "$1" gso "$1" >/dev/null; done
}

declare -A S
last() { awk '{print $NF}' <<< "$1"; }
run_rounds() { # label rounds
    local label=$1 n=$2 r k order
    local -a kinds
    read -ra kinds <<< "$KINDS"
    for r in $(seq 0 $((n - 1))); do
        order=()
        for i in 0 1 2 3; do order+=("${kinds[$(((i + r) % 4))]}"); done
        if [ $((r % 2)) = 1 ]; then order=("${order[3]}" "${order[2]}" "${order[1]}" "${order[0]}"); fi
        for k in "${order[@]}"; do S[$label.$k]+="$(iperf "$k") "; done
        printf '  %s round %d/%d: base %s ours %s fw4 %s fw4+ours %s\n' "$label" $((r + 1)) "$n" \
            "$(last "${S[$label.base]}")" "$(last "${S[$label.ours]}")" \
            "$(last "${S[$label.fw4]}")" "$(last "${S[$label.fw4ours]}")"
    done
}

# Where the data path's CPU goes while one router carries a flow, from perf's
# samples (cpu-clock; this machine has no hardware counters) of the flow's own
# contexts: iperf3, the softirq threads and softirqs taken while idle.
# → "nf_tables% conntrack% busy%", shares of all those samples; "-" without perf.
nf_share() { # kind
    if ! command -v perf >/dev/null || ! perf stat -e cpu-clock true >/dev/null 2>&1; then
        echo "- - -"
        return
    fi
    ip netns exec "wse-dc-$1" iperf3 -c 10.9.0.2 -A 0 -t $((secs + 2)) >/dev/null 2>&1 &
    local ip=$!
    sleep 1
    perf record -a -e cpu-clock -F 4000 -o "$W/perf.data" -- sleep "$secs" >/dev/null 2>&1
    wait $ip || true
    perf report -i "$W/perf.data" --no-children --comms iperf3,swapper,ksoftirqd/0,ksoftirqd/1 \
        --percentage relative --sort sym --stdio 2>/dev/null | awk '
        /^ +[0-9.]+%/ {p = $1 + 0; s = $NF
            if (s ~ /(safe_halt|cpu_idle|default_idle|intel_idle|acpi_idle|poll_idle)/) idle += p
            else if (s ~ /^(nft_do_chain|__nft_|nft_[a-z0-9_]*(eval|lookup)|nft_meta_|nf_hook_slow)/) nft += p
            else if (s ~ /^(nf_conntrack|__nf_conntrack|nf_ct_|__nf_ct_|ipv4_conntrack|nf_nat_|hash_conntrack|nf_confirm|__nf_confirm|nf_checksum|nf_ip_checksum)/) ct += p}
        END {printf "%.2f %.2f %.1f\n", nft, ct, 100 - idle}'
}

echo "bench: $rounds rounds × 4 routers × ${secs}s, GSO on (load average $(cut -d' ' -f1-3 /proc/loadavg))"
gso on
run_rounds gso "$rounds"
share_gso=""; for k in $KINDS; do share_gso+="$(nf_share "$k") "; done
prounds=$(((rounds + 1) / 2))
echo "bench: $prounds rounds × 4 routers × ${secs}s, GSO/TSO off on the clients (1500-byte packets)"
gso off
run_rounds pkt "$prounds"
share_pkt=""; for k in $KINDS; do share_pkt+="$(nf_share "$k") "; done
marked=$(ip netns exec wse-dr-ours conntrack -L 2>/dev/null | grep -c 'mark=16777216' || true)

python3 - "$elements" "$rounds" "$prounds" "$secs" "$share_gso" "$share_pkt" "$marked" \
    "${S[gso.base]}" "${S[gso.ours]}" "${S[gso.fw4]}" "${S[gso.fw4ours]}" \
    "${S[pkt.base]}" "${S[pkt.ours]}" "${S[pkt.fw4]}" "${S[pkt.fw4ours]}" <<'EOF'
import statistics as st, sys
elements, rounds, prounds, secs, share_gso, share_pkt, marked = sys.argv[1:8]
runs = [[int(x) for x in a.split()] for a in sys.argv[8:16]]
def q(v):
    v = sorted(v)
    qs = st.quantiles(v, n=4) if len(v) > 1 else [v[0]] * 3
    return qs[0], st.median(v), qs[2]
def ratios(a, b):
    return [100 * x / y for x, y in zip(a, b) if y]
print()
with open("/proc/loadavg") as f:
    load = " ".join(f.read().split()[:3])
print(f"== Kernel engine: data path (iperf3 over veth through the router; four routers standing side by side; load average {load}) ==")
print(f"| packets | rounds × s | no ruleset Mbit/s | engine ruleset ({elements} elements) Mbit/s | ratio, median of per-round ratios [quartiles] | fw4 default Mbit/s | fw4 + engine Mbit/s | ratio [quartiles] | goal |")
print("|---|---|---|---|---|---|---|---|---|")
for name, off, n in (("64 KB GSO (iperf3 default)", 0, rounds), ("1500 B, GSO/TSO off", 4, prounds)):
    base, ours, fw4, both = runs[off:off + 4]
    lo, m, hi = q(ratios(ours, base))
    flo, fm, fhi = q(ratios(both, fw4))
    print(f"| {name} | {n} × {secs} | {st.median(base):.0f} | {st.median(ours):.0f} | "
          f"**{m:.1f}%** [{lo:.1f}–{hi:.1f}] | {st.median(fw4):.0f} | {st.median(both):.0f} | "
          f"**{fm:.1f}%** [{flo:.1f}–{fhi:.1f}] | ≥ 97% |")
if share_gso.split()[0] != "-":
    print()
    print("Where the data path's CPU goes while one router carries a flow (perf cpu-clock samples of")
    print("the flow's contexts; shares of the busy samples, i.e. what forwarding costs, not idle time):")
    print("| packets | router | nf_tables (rule evaluation, hooks) | conntrack + nat | busy share of samples |")
    print("|---|---|---|---|---|")
    for name, s in (("64 KB GSO", share_gso), ("1500 B", share_pkt)):
        v = s.split()
        for i, k in enumerate(("no ruleset", "engine ruleset", "fw4 default", "fw4 + engine")):
            nft, ct, busy = (float(x) for x in v[3 * i:3 * i + 3])
            print(f"| {name} | {k} | {100 * nft / busy:.1f}% | {100 * ct / busy:.1f}% | {busy:.0f}% |")
print(f"conntrack entries carrying the direct mark in the engine's router: {marked}")
print("samples (Mbit/s, in run order per kind):")
for i, label in enumerate(("gso base", "gso ours", "gso fw4", "gso fw4+ours", "pkt base", "pkt ours", "pkt fw4", "pkt fw4+ours")):
    print(f"  {label}: {' '.join(map(str, runs[i]))}")
EOF
