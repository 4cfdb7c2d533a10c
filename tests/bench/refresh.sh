#!/usr/bin/env bash
# The data-path cost of the learned-route refresh (#19), beside today's rule
# without it, in one run (root; network namespaces wse-r*). Two routers stand
# side by side, each with the engine's ruleset for 500 clients × 200 rules
# (tests/bench/engine-genconf.sh, as datapath.sh) plus a domain rule for the
# measured client whose learned set holds the server (DP_LEARNED in datapath.sh):
#   refresh  the rule as the engine writes it:
#            `ip daddr @S update @S { ip daddr timeout 86400s } goto …`
#   lookup   the same ruleset with the `update` clause cut out: the rule as main
#            had it (`ip daddr @S goto …`), the set lookup alone
# The refresh runs once per new connection (only a flow's first packet walks
# the client's chain), so the workload is new connections, not bulk bytes: a
# client opens and resets TCP connections to the server as fast as it can
# (SYN, SYN-ACK, ACK, RST). Rounds alternate the order of the two routers; the
# table gives connections/s (median, and the median of per-round ratios with
# quartiles) and, from perf's cpu-clock samples of the workload's contexts,
# nf_tables' share of the forwarding CPU (what datapath.sh prints) per router.
#
# Usage: sudo tests/bench/refresh.sh [ROUNDS, default 8] [SECONDS per run, default 3]
# (WGSPLIT_BENCH_BIN=another binary)
set -euo pipefail
cd "$(dirname "$0")/../.."
[ "$(id -u)" = 0 ] || { echo "bench: run as root"; exit 1; }
. tests/lib/netns.sh
rounds=${1:-8}
secs=${2:-3}
[ -n "${WGSPLIT_BENCH_BIN:-}" ] || cargo build --quiet -p wgsplit
BIN=${WGSPLIT_BENCH_BIN:-$PWD/target/debug/wgsplit} # the ruleset is the same from either build
W=$(mktemp -d /tmp/wse-rf.XXXXXX)
KINDS="lookup refresh"
NS="wse-rgen"
for k in $KINDS; do NS="$NS wse-rc-$k wse-rr-$k wse-rs-$k"; done
cleanup() {
    # shellcheck disable=SC2086 # the list is meant to split
    netns_remove $NS
    rm -rf "$W"
}
trap cleanup EXIT
cleanup
mkdir -p "$W"
for ns in $NS; do ip netns add "$ns"; ip netns exec "$ns" ip link set lo up; done

echo "bench: generating the ruleset of 500 clients × 200 rules + a learned-set rule for c0"
KEYFILE=$W/keys tests/bench/engine-genconf.sh "$BIN" 500 200 wse-rgwg wse-rgu > "$W/rf.conf"
printf "config rule\n\toption client 'c0'\n\toption action 'proxy'\n\tlist domain 'bench.test'\n" >> "$W/rf.conf"
ip netns exec wse-rgen "$BIN" -c "$W/rf.conf" apply --dry-run --nft-script \
    | sed 's/"wse-rgwg"/"wse-rr"/g' > "$W/refresh.nft"
set4=c0_r200_dns4
grep -q "ip daddr @$set4 update @$set4 { ip daddr timeout [0-9]*s }" "$W/refresh.nft" \
    || { echo "bench: the binary writes no refresh for $set4"; exit 1; }
sed -E 's/ update @([a-z0-9_]+) \{ (ip6?) daddr timeout [0-9]+s \}//' "$W/refresh.nft" > "$W/lookup.nft"
grep -q "ip daddr @$set4 goto" "$W/lookup.nft" || { echo "bench: lookup ruleset not made"; exit 1; }
cat > "$W/conn.py" <<'PY'
import ctypes, socket, struct, sys, time
# A command name of its own (PR_SET_NAME): perf's samples are counted by it,
# and other python3 processes on the machine are not ours.
ctypes.CDLL(None).prctl(15, b"wsrconn", 0, 0, 0)
end = time.time() + float(sys.argv[1])
n = 0
rst = struct.pack("ii", 1, 0)
while time.time() < end:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, rst)  # RST: no TIME_WAIT, no port run-out
    try:
        s.connect(("10.9.0.2", 5001))
        n += 1
    except OSError:
        pass
    s.close()
print(round(n / float(sys.argv[1])))
PY
cat > "$W/srv.py" <<'PY'
import ctypes, socket, struct
ctypes.CDLL(None).prctl(15, b"wsrsrv", 0, 0, 0)
l = socket.socket()
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("10.9.0.2", 5001))
l.listen(4096)
while True:
    c, _ = l.accept()
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    c.close()
PY
for k in $KINDS; do
    c=wse-rc-$k r=wse-rr-$k s=wse-rs-$k
    ip link add wse-rc netns "$c" type veth peer name wse-rr netns "$r"
    ip link add wse-rs netns "$s" type veth peer name wse-rr2 netns "$r"
    ip -n "$c" addr add 10.8.0.3/16 dev wse-rc
    ip -n "$r" addr add 10.8.0.1/16 dev wse-rr
    ip -n "$r" addr add 10.9.0.1/24 dev wse-rr2
    ip -n "$s" addr add 10.9.0.2/24 dev wse-rs
    ip -n "$c" link set wse-rc up; ip -n "$r" link set wse-rr up
    ip -n "$r" link set wse-rr2 up; ip -n "$s" link set wse-rs up
    ip -n "$c" route add 10.9.0.0/24 via 10.8.0.1
    ip -n "$s" route add 10.8.0.0/16 via 10.9.0.1
    ip netns exec "$r" sysctl -qw net.ipv4.ip_forward=1
    ip netns exec "$r" nft -f "$W/$k.nft"
    ip netns exec "$r" nft add element inet wgsplit $set4 '{ 10.9.0.2 timeout 1h }'
    ip netns exec "$s" taskset -c 1 python3 "$W/srv.py" &
done
sleep 0.5
conn() { ip netns exec "wse-rc-$1" taskset -c 0 python3 "$W/conn.py" "$secs"; }

declare -A S
for r in $(seq 0 $((rounds - 1))); do
    if [ $((r % 2)) = 0 ]; then order="lookup refresh"; else order="refresh lookup"; fi
    for k in $order; do S[$k]+="$(conn "$k") "; done
    printf '  round %d/%d: lookup %s refresh %s connections/s\n' $((r + 1)) "$rounds" \
        "$(awk '{print $NF}' <<< "${S[lookup]}")" "$(awk '{print $NF}' <<< "${S[refresh]}")"
done

# nf_tables' share of the forwarding CPU while a router carries the workload,
# counted as datapath.sh counts it ("nf_tables% conntrack% busy%"; "-" without perf).
nf_share() { # kind
    if ! command -v perf >/dev/null || ! perf stat -e cpu-clock true >/dev/null 2>&1; then
        echo "- - -"
        return
    fi
    conn "$1" >/dev/null &
    local p=$!
    sleep 0.5
    perf record -a -e cpu-clock -F 4000 -o "$W/perf.data" -- sleep $((secs - 1)) >/dev/null 2>&1
    wait $p || true
    perf report -i "$W/perf.data" --no-children --comms wsrconn,wsrsrv,swapper,ksoftirqd/0,ksoftirqd/1 \
        --percentage relative --sort sym --stdio 2>/dev/null | awk '
        /^ +[0-9.]+%/ {p = $1 + 0; s = $NF
            if (s ~ /(safe_halt|cpu_idle|default_idle|intel_idle|acpi_idle|poll_idle)/) idle += p
            else if (s ~ /^(nft_do_chain|__nft_|nft_[a-z0-9_]*(eval|lookup|update)|nft_dynset|nft_meta_|nf_hook_slow)/) nft += p
            else if (s ~ /^(nf_conntrack|__nf_conntrack|nf_ct_|__nf_ct_|ipv4_conntrack|nf_nat_|hash_conntrack|nf_confirm|__nf_confirm|nf_checksum|nf_ip_checksum)/) ct += p}
        END {if (nft + ct + idle == 0) print "- - -"; else printf "%.2f %.2f %.1f\n", nft, ct, 100 - idle}'
}
# Twice each, in the order lookup refresh refresh lookup; a record without
# samples of the workload (perf started late on a loaded machine) is left out.
declare -A P
for k in lookup refresh refresh lookup; do
    v=$(nf_share "$k")
    [ "${v%% *}" = - ] || P[$k]+="$v;"
done
mean3() { # "a b c;a b c;" → the means, or "- - -"
    python3 -c '
import sys
rows = [[float(x) for x in r.split()] for r in sys.argv[1].split(";") if r.strip()]
print(" ".join(f"{sum(c) / len(c):.2f}" for c in zip(*rows)) if rows else "- - -")' "${1:-}"
}
shares="$(mean3 "${P[lookup]:-}") $(mean3 "${P[refresh]:-}")"
echo "  perf (nf_tables% conntrack% busy%): lookup ${P[lookup]:-none} refresh ${P[refresh]:-none}"
refreshed=$(ip netns exec wse-rr-refresh nft list set inet wgsplit $set4 | grep -o 'expires [0-9hdm]*' | head -1)

python3 - "$rounds" "$secs" "$shares" "$refreshed" "${S[lookup]}" "${S[refresh]}" <<'EOF'
import statistics as st, sys
rounds, secs, shares, refreshed = sys.argv[1:5]
lookup, refresh = ([int(x) for x in a.split()] for a in sys.argv[5:7])
ratios = sorted(100 * r / l for r, l in zip(refresh, lookup) if l)
qs = st.quantiles(ratios, n=4) if len(ratios) > 1 else [ratios[0]] * 3
with open("/proc/loadavg") as f:
    load = " ".join(f.read().split()[:3])
print()
print(f"== The learned-route refresh (#19) beside the lookup alone: new TCP connections through the router, two routers side by side; load average {load} ==")
print("| router | connections/s (median) | refresh/lookup, median of per-round ratios [quartiles] | nf_tables share of the forwarding CPU | conntrack + nat | busy |")
print("|---|---|---|---|---|---|")
v = shares.split()
for i, (name, runs) in enumerate((("lookup (main's rule)", lookup), ("refresh (update @set)", refresh))):
    nft, ct, busy = v[3 * i:3 * i + 3]
    share = "-" if nft == "-" else f"{100 * float(nft) / float(busy):.1f}%"
    cshare = "-" if ct == "-" else f"{100 * float(ct) / float(busy):.1f}%"
    ratio = f"**{st.median(ratios):.1f}%** [{qs[0]:.1f}–{qs[2]:.1f}]" if i else "100%"
    print(f"| {name} | {st.median(runs)} | {ratio} | {share} | {cshare} | {busy}% |")
print(f"{rounds} rounds × {secs} s; the learned element in the refresh router after the run: {refreshed} (set to 1 h before it, so a refresh shows as about a day)")
print("samples (connections/s, in run order):")
print("  lookup: " + " ".join(map(str, lookup)))
print("  refresh: " + " ".join(map(str, refresh)))
EOF
