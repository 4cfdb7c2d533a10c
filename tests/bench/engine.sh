#!/usr/bin/env bash
# Kernel engine benchmarks, side by side (root; network namespaces wse-b*):
#   1. control plane: full apply of 250 clients × 200 CIDR rules from nothing, a
#      second apply, and a one-rule change — wgsplit vs the naive way (one `nft`
#      process per element, as shell-script tools do; measured on a sample and
#      extrapolated, as printed).
#   2. data path: iperf3 over veth through the router namespace with the engine's
#      ruleset loaded (100k set elements) vs no ruleset.
# Usage: sudo tests/bench/engine.sh [--quick]   (--quick: smaller sample, shorter iperf)
#   WGSPLIT_BENCH_BIN=PATH: measure that binary instead of building target/release/wgsplit
#   (tests/bench/compare.sh builds another commit's).
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ "$(id -u)" != 0 ]; then echo "bench: run as root"; exit 1; fi
WGSPLIT_APT_PACKAGES="${WGSPLIT_APT_PACKAGES:-} strace"
. tests/lib/deps.sh
. tests/lib/netns.sh
install_deps >/dev/null
quick=${1:-}
[ -n "${WSE_BENCH_NO_BUILD:-}${WGSPLIT_BENCH_BIN:-}" ] || cargo build --release --quiet -p wgsplit
BIN=${WGSPLIT_BENCH_BIN:-$PWD/target/release/wgsplit}
W=/tmp/wse-bench
NS="wse-bench wse-bnft wse-bnaive"
# The record of what the engine wrote lives in /run, a tmpfs on OpenWrt: keep it
# on a tmpfs here too (renames on ext4 start writeback, which no router pays).
STATE=$W/state; [ -d /dev/shm ] && STATE=/dev/shm/wse-bench-state
export WG_SUDO=true WGSPLIT_STATE_DIR=$STATE

cleanup() {
    # shellcheck disable=SC2086 # the list is meant to split
    netns_remove $NS
    rm -f /var/run/wireguard/wse-b*.sock /var/run/wireguard/wse-b*.name
    rm -rf "$W" "$STATE"
}
trap cleanup EXIT
cleanup
mkdir -p "$W"
for ns in $NS; do ip netns add "$ns"; ip netns exec "$ns" ip link set lo up; done
now_ms() { date +%s%N | awk '{printf "%.1f", $1 / 1e6}'; }
field() { sed -n "s/.*$1 \([0-9.]*\).*/\1/p"; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

echo "bench: generating 250 clients × 200 CIDR rules"
GEN=tests/bench/engine-genconf.sh
KEYFILE=$W/keys $GEN "$BIN" 250 200 wse-bwg0 wse-bu1 > $W/full.conf
KEYFILE=$W/keys $GEN "$BIN" 250 200 wse-bwg0 wse-bu1 1 > $W/changed.conf
KEYFILE=$W/keys $GEN "$BIN" 250 200 wse-bwg1 wse-bu2 > $W/full-nft.conf

apply_in() { # ns conf → the "applied:" line, then " wall <ms>" (whole process)
    local t0 out
    t0=$(now_ms)
    out=$(ip netns exec "$1" "$BIN" -c "$2" apply | tail -1)
    echo "$out wall $(awk -v a="$t0" -v b="$(now_ms)" 'BEGIN {printf "%.1f", b - a}')"
}

echo "bench: full apply (wgsplit)"
full=$(apply_in wse-bench $W/full.conf); full_wall=$(echo "$full" | field wall)
# Ranges in the clients' CIDR sets (as nft lists them, one entry per range).
elements=$(ip netns exec wse-bench nft -j list table inet wgsplit | python3 -c '
import json, sys
items = json.load(sys.stdin)["nftables"]
print(sum(len(i["set"].get("elem", [])) for i in items
          if "set" in i and i["set"]["name"].endswith(("_v4", "_v6"))))')
again=$(apply_in wse-bench $W/full.conf); again_wall=$(echo "$again" | field wall)
# The one-rule change, paired: each sample is one wgsplit apply (the rule moved,
# then back) right next to the naive change of one element in the same loaded
# table (nft delete + nft add), so a burst of load lands on both; the ratio is
# the median of the per-pair ratios.
naive_one() { # → ms of one naive delete + add
    local t0
    t0=$(now_ms)
    ip netns exec wse-bench nft delete element inet wgsplit c7_r0_up_u1_v4 '{ 20.7.0.0/24 }'
    ip netns exec wse-bench nft add element inet wgsplit c7_r0_up_u1_v4 '{ 20.7.0.0/24 }'
    awk -v a="$t0" -v b="$(now_ms)" 'BEGIN {printf "%.1f", b - a}'
}
samples=9; [ "$quick" = --quick ] && samples=3
echo "bench: one-rule change, wgsplit and naive in turn, $samples pairs"
ch_eng=() ch_kern=() ch_wall=() ch_cpu=() loaded=() pair=()
for i in $(seq $samples); do
    conf=$W/changed.conf; [ $((i % 2)) = 0 ] && conf=$W/full.conf
    out=$(apply_in wse-bench $conf)
    ch_eng+=("$(echo "$out" | field 'changes in')"); ch_kern+=("$(echo "$out" | field 'kernel')")
    ch_cpu+=("$(echo "$out" | field 'cpu')")
    ch_wall+=("$(echo "$out" | field wall)")
    loaded+=("$(naive_one)")
    pair+=("$(awk -v a="${loaded[-1]}" -v b="${ch_eng[-1]}" 'BEGIN {printf "%.1f", a / b}')")
done
ch_eng_m=$(printf '%s\n' "${ch_eng[@]}" | median)
ch_kern_m=$(printf '%s\n' "${ch_kern[@]}" | median)
ch_wall_m=$(printf '%s\n' "${ch_wall[@]}" | median)
ch_cpu_m=$(printf '%s\n' "${ch_cpu[@]}" | median)
ch_req=$(echo "$out" | sed -n 's/.*; \([0-9]*\) netlink.*/\1/p')
naive_change=$(printf '%s\n' "${loaded[@]}" | median)
pair_m=$(printf '%s\n' "${pair[@]}" | median)
pair_lo=$(printf '%s\n' "${pair[@]}" | sort -n | head -1)

echo "bench: one-rule change through the daemon (config file replaced), 5 samples"
cp $W/full.conf $W/live.conf
ip netns exec wse-bench "$BIN" -c $W/live.conf daemon >$W/daemon.log 2>&1 &
dpid=$!
for i in $(seq 100); do grep -q starting $W/daemon.log && break; sleep 0.1; done
sleep 3
for i in 1 2 3 4 5; do
    conf=$W/changed.conf; [ $((i % 2)) = 0 ] && conf=$W/full.conf
    cp $conf $W/live.conf.new && mv $W/live.conf.new $W/live.conf
    for j in $(seq 100); do [ "$(grep -c 'config change: applied' $W/daemon.log)" -ge $i ] && break; sleep 0.1; done
done
kill -TERM $dpid; wait $dpid || true
d_eng=$(grep 'config change: applied' $W/daemon.log | field 'changes in' | median)
d_kern=$(grep 'config change: applied' $W/daemon.log | field 'kernel' | median)
d_des=$(grep 'config change: applied' $W/daemon.log | field 'built in' | median)
d_cpu=$(grep 'config change: applied' $W/daemon.log | sed -n 's/.*requests, cpu \([0-9.]*\) ms.*/\1/p' | median)
d_dcpu=$(grep 'config change: applied' $W/daemon.log | sed -n 's/.*built in [0-9.]* ms, cpu \([0-9.]*\) ms.*/\1/p' | median)
d_req=$(grep 'config change: applied' $W/daemon.log | tail -1 | sed -n 's/.*, \([0-9]*\) netlink.*/\1/p')
d_read=$(grep 'config change: applied' $W/daemon.log | sed -n 's/.*read and compiled in \([0-9.]*\) ms.*/\1/p' | median)
d_total=$(awk -v a="$d_read" -v b="$d_des" -v c="$d_eng" 'BEGIN {printf "%.1f", a + b + c}')

echo "bench: full apply with every element through nft -f (for comparison)"
nftonly=$(WGSPLIT_NFT_ONLY=1 apply_in wse-bnft $W/full-nft.conf)

# The naive way: one nft process per element.
sample=2000; [ "$quick" = --quick ] && sample=300
echo "bench: naive, $sample nft processes into an empty interval set"
ip netns exec wse-bnaive nft -f - <<'EOF'
add table inet naive
add chain inet naive c
add set inet naive m { type ipv4_addr; flags interval; }
EOF
t0=$(now_ms)
for i in $(seq 0 $((sample - 1))); do
    ip netns exec wse-bnaive nft add element inet naive m "{ 20.$((i / 250)).$((i % 250)).0/24 }"
done
naive_per=$(awk -v a="$t0" -v b="$(now_ms)" -v n="$sample" 'BEGIN {printf "%.2f", (b - a) / n}')
naive_sends=$(ip netns exec wse-bnaive strace -f -e trace=sendmsg,sendto -o $W/strace.txt \
    nft add element inet naive m '{ 99.0.0.0/24 }' && grep -c 'sendmsg\|sendto' $W/strace.txt)
full_ms=$(echo "$full" | field 'changes in')
full_cpu=$(echo "$full" | field 'cpu')
full_req=$(echo "$full" | sed -n 's/.*; \([0-9]*\) netlink.*/\1/p')
naive_full=$(awk -v p="$naive_per" -v n="$elements" 'BEGIN {printf "%.0f", p * n}')
cat <<EOF

machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) at the end (other jobs share it)
== Kernel engine: control plane (250 clients × 200 CIDR rules = $elements map elements) ==
| job | wgsplit | naive (one nft process per element) | ratio |
|---|---|---|---|
| full apply from nothing (engine time) | $full_ms ms (cpu $full_cpu ms + nft process) | $naive_full ms (${naive_per} ms × $elements, extrapolated from $sample) | $(awk -v a="$naive_full" -v b="$full_ms" 'BEGIN {printf "%.0f×", a / b}') |
| full apply, whole process (wall) | $full_wall ms | — | |
| full apply, all elements through nft -f instead | $(echo "$nftonly" | field 'changes in') ms | | |
| netlink requests, full apply | $full_req | ≥ $((elements * 3)) (3 per element; strace: $naive_sends netlink sends per nft process) | |
| second apply (no changes) | $(echo "$again" | field 'changes in') ms, wall $again_wall ms | — | |
| one-rule change, engine time (median of $samples) | $ch_eng_m ms (kernel part $ch_kern_m ms; cpu $ch_cpu_m ms) | $naive_change ms (nft delete + nft add in the loaded table) | **${pair_m}×** (median of per-pair ratios; lowest pair ${pair_lo}×) |
| one-rule change, whole process incl. config parse (wall) | $ch_wall_m ms | | |
| one-rule change in the daemon: plan + kernel (median of 5; vs the naive median) | $d_eng ms (kernel $d_kern ms; cpu $d_cpu ms; $d_req netlink requests) | $naive_change ms | $(awk -v a="$naive_change" -v b="$d_eng" 'BEGIN {printf "%.0f×", a / b}') |
| … plus building the desired state from the parsed config | $d_des ms (cpu $d_dcpu ms) | | |
| … plus reading and compiling the config file (4.3 MB, 50,000 rule sections) | $d_read ms | | |
| one-rule change in the daemon, end to end (the three above) | $d_total ms | $naive_change ms | $(awk -v a="$naive_change" -v b="$d_total" 'BEGIN {printf "%.1f×", a / b}') |
| netlink requests, one-rule change | $ch_req | ≥ 6 | |

EOF

# The data path: four routers standing side by side (tests/bench/datapath.sh).
[ "$quick" = --quick ] && dp_rounds=3 || dp_rounds=15
WSE_BENCH_NO_BUILD=1 tests/bench/datapath.sh "$dp_rounds"
