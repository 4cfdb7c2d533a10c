#!/usr/bin/env bash
# Rule sources, measured side by side with `nft -f` in one run (issue 8):
#   1. loading US (DB-IP lite: ~64k IPv4 + 33k IPv6 ranges) into empty kernel sets;
#   2. an atomic update of those sets while a 1 kHz flow runs (misrouted packets);
#   3. domain categories (geosite.dat: netflix, google, category-ads-all) and a
#      1 M-name plain list: time and peak RSS;
#   4. kernel memory of the US + CN + RU sets (slab delta).
# Root (network namespaces). Usage: sudo tests/bench/sources.sh [runs]
set -uo pipefail
cd "$(dirname "$0")/../.."
. tests/lib/deps.sh
. tests/sources/lib.sh
[ "$(id -u)" = 0 ] || { echo "bench: needs root"; exit 1; }
RUNS=${1:-3}
wsl_data || exit 1
cargo build --release --quiet -p wgsplit || exit 1
BIN=$PWD/target/release/wgsplit
NS=wsl-b1
TMP=$(mktemp -d /tmp/wsl-bench.XXXXXX)
# wgsplit reads lists only in its folders: here the run's folder and the cached data.
export WGSPLIT_LIST_ROOTS="$TMP:$WSL_DBIP_DIR:$(dirname "$WSL_GEOIP_DAT"):$(dirname "$WSL_GEOSITE_DAT")"
PING_PID=
cleanup() {
    [ -n "$PING_PID" ] && kill "$PING_PID" 2>/dev/null
    # Whatever still runs in our namespace (a deleted namespace keeps its processes).
    local pid
    for pid in $(ip netns pids $NS 2>/dev/null); do kill "$pid" 2>/dev/null; done
    ip netns del $NS 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT
in_ns() { ip netns exec $NS "$@"; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
timed() { # out-file command... → appends "wall_seconds maxrss_kb cpu_seconds(user+sys)"
    local out=$1; shift
    /usr/bin/time -f "%e %M %U %S" -o "$TMP/time" "$@" > "$TMP/cmd.out" 2>&1 || { cat "$TMP/cmd.out" >&2; return 1; }
    awk '{printf "%s %s %.2f\n", $1, $2, $3 + $4}' "$TMP/time" >> "$out"
}
col() { awk -v c="$2" '{print $c}' "$1" | median; }
fresh_ns() { ip netns del $NS 2>/dev/null; ip netns add $NS; in_ns ip link set lo up; }

config() { # countries... (geoip from the mmdb, lists from geosite.dat)
    {
        printf "config server\n\toption address 10.9.0.1/24\n\toption private_key '4EqAuesGDDDllVFRw6LW42qz0RGOaO4UN+emBozZgU0='\n"
        printf "config geoip 'geoip'\n\toption path '%s'\n\toption dir '%s/lists'\n" "$GEO_SRC" "$TMP"
        printf "config client 'c'\n\tlist address '10.9.0.2/32'\n\toption public_key 'HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw='\n"
        printf "config rule\n\toption client 'c'\n\toption action 'block'\n"
        for cc in "$@"; do printf "\tlist geoip '%s'\n" "$cc"; done
        for c in netflix google category-ads-all; do
            printf "config list '%s'\n\toption path '%s'\n\toption format 'geosite'\n\toption category '%s'\n" \
                "${c//-/_}" "$WSL_GEOSITE_DAT" "$c"
        done
        printf "config list 'million'\n\toption path '%s/million.txt'\n" "$TMP"
    } > "$TMP/wgsplit"
}
empty_sets() { # countries...
    local cc
    { echo "table inet wgsplit {"
      for cc in "$@"; do
          echo "  set geo_${cc}_4 { type ipv4_addr; flags interval; }"
          echo "  set geo_${cc}_6 { type ipv6_addr; flags interval; }"
      done
      echo "}"; } | in_ns nft -f -
}
nft_file() { # country file → nft script loading the same ranges (what `nft -f` gets)
    python3 - "$1" "$2" <<'PY'
import sys
cc = sys.argv[2]
v4, v6 = [], []
for line in open(sys.argv[1]):
    line = line.strip()
    (v6 if ":" in line else v4).append(line)
print("table inet wgsplit {")
for fam, items in (("4", v4), ("6", v6)):
    print(f"  set geo_{cc}_{fam} {{ type ipv{fam}_addr; flags interval;")
    print("    elements = { " + ",\n".join(items) + " } }")
print("}")
PY
}

GEO_SRC=$WSL_DBIP_DIR/dbip-country-mmdb/dbip-country.mmdb
echo "=== 0. extract US, CN, RU from the 8 MB DB-IP mmdb (streaming, once per update)"
config us cn ru
: > "$TMP/extract"
for i in $(seq "$RUNS"); do
    rm -rf "$TMP/lists"
    timed "$TMP/extract" "$BIN" -c "$TMP/wgsplit" lists update --no-kernel
done
EXTRACT_S=$(col "$TMP/extract" 1) EXTRACT_KB=$(col "$TMP/extract" 2)
GEO_SRC=$WSL_GEOIP_DAT
config us cn ru
: > "$TMP/extract_dat"
for i in $(seq "$RUNS"); do
    rm -rf "$TMP/lists"
    timed "$TMP/extract_dat" "$BIN" -c "$TMP/wgsplit" lists update --no-kernel
done
DAT_S=$(col "$TMP/extract_dat" 1) DAT_KB=$(col "$TMP/extract_dat" 2)
DAT_MB=$(( $(stat -c %s "$WSL_GEOIP_DAT") / 1048576 ))
GEO_SRC=$WSL_DBIP_DIR/dbip-country-mmdb/dbip-country.mmdb
config us cn ru
rm -rf "$TMP/lists"
"$BIN" -c "$TMP/wgsplit" lists update --no-kernel > /dev/null 2>&1
echo "extract: ${EXTRACT_S}s, ${EXTRACT_KB} KB peak"

echo "=== 1. load US into empty kernel sets"
config us
nft_file "$TMP/lists/geo_us.txt" us > "$TMP/us.nft"
: > "$TMP/nft_load"; : > "$TMP/wsl_load"
for i in $(seq "$RUNS"); do
    fresh_ns
    timed "$TMP/nft_load" ip netns exec $NS nft -f "$TMP/us.nft"
    fresh_ns
    empty_sets us
    timed "$TMP/wsl_load" ip netns exec $NS "$BIN" -c "$TMP/wgsplit" lists load
    grep -q "geo_us_4: 63940 ranges" "$TMP/cmd.out" || { echo "load check failed"; cat "$TMP/cmd.out"; exit 1; }
done
NFT_S=$(col "$TMP/nft_load" 1) NFT_KB=$(col "$TMP/nft_load" 2) NFT_CPU=$(col "$TMP/nft_load" 3)
WSL_S=$(col "$TMP/wsl_load" 1) WSL_KB=$(col "$TMP/wsl_load" 2) WSL_CPU=$(col "$TMP/wsl_load" 3)

echo "=== 2. atomic update of geo_us_4/6 under a 1 kHz flow to a US address"
python3 - "$TMP/lists/geo_us.txt" "$TMP" <<'PY'
import ipaddress, random, sys
src, out = sys.argv[1], sys.argv[2]
rows = []
for line in open(src):
    a, _, b = line.strip().partition("-")
    rows.append((a, b or a))
flow = int(ipaddress.ip_address("8.8.8.8"))
random.seed(8)
a_rows, b_rows = [], []
for s, e in rows:
    a_rows.append((s, e))
    if ":" not in s and int(ipaddress.ip_address(s)) <= flow <= int(ipaddress.ip_address(e)):
        b_rows.append((s, str(ipaddress.ip_address(int(ipaddress.ip_address(e)) + 256))))
    elif random.random() < 0.05:
        continue
    else:
        b_rows.append((s, e))
for name, rs in (("a", a_rows), ("b", b_rows)):
    with open(f"{out}/{name}.csv", "w") as f:
        f.writelines(f"{s},{e},US\n" for s, e in rs)
    with open(f"{out}/{name}.nft", "w") as f:
        v4 = [f"{s}-{e}" for s, e in rs if ":" not in s]
        v6 = [f"{s}-{e}" for s, e in rs if ":" in s]
        f.write("flush set inet wgsplit geo_us_4\nflush set inet wgsplit geo_us_6\n")
        f.write("add element inet wgsplit geo_us_4 { " + ", ".join(v4) + " }\n")
        f.write("add element inet wgsplit geo_us_6 { " + ", ".join(v6) + " }\n")
PY
route_ns() {
    fresh_ns
    for l in up dir; do
        in_ns ip link add wsl-$l type veth peer name wsl-${l}x
        in_ns ip link set wsl-$l arp off up; in_ns ip link set wsl-${l}x up
    done
    in_ns ip route add default dev wsl-dir
    in_ns ip route add default dev wsl-up table 100
    in_ns ip rule add fwmark 0x3000000/0xff000000 lookup 100 priority 6000
    empty_sets us
    in_ns nft -f - <<'NFT'
table inet wgsplit {
    chain out {
        type route hook output priority mangle; policy accept;
        ip daddr @geo_us_4 meta mark set 0x3000000
        ip6 daddr @geo_us_6 meta mark set 0x3000000
    }
}
table inet wsl_count {
    counter up {}
    counter dir {}
    chain post {
        type filter hook postrouting priority 300; policy accept;
        oifname "wsl-up" ip daddr 8.8.8.8 counter name up
        oifname "wsl-dir" ip daddr 8.8.8.8 counter name dir
    }
}
NFT
}
counter() { in_ns nft -j list counter inet wsl_count "$1" | grep -o '"packets": [0-9]*' | grep -o '[0-9]*$'; }
ucfg() { sed -i "/^config geoip/,/^config client/{s|option path .*|option url 'file://$1'\n\toption format 'csv'|}" "$TMP/wgsplit"; }
: > "$TMP/nft_upd"; : > "$TMP/wsl_upd"; : > "$TMP/wsl_swap"
NFT_MIS=0 WSL_MIS=0 NFT_PKT=0 WSL_PKT=0
for tool in nft wsl; do
    route_ns
    config us
    cp "$TMP/a.csv" "$TMP/cur.csv"
    ucfg "$TMP/cur.csv"
    rm -rf "$TMP/lists"
    in_ns "$BIN" -c "$TMP/wgsplit" lists update > /dev/null 2>&1 || { echo "initial load failed"; exit 1; }
    # Not through in_ns: $! must be ping itself, not a subshell that outlives the kill.
    ip netns exec $NS ping -i 0.001 -W 0.01 8.8.8.8 > /dev/null 2>&1 &
    PING_PID=$!
    sleep 0.3
    for i in $(seq "$RUNS"); do
        for v in b a; do
            if [ $tool = nft ]; then
                timed "$TMP/nft_upd" ip netns exec $NS nft -f "$TMP/$v.nft"
            else
                cp "$TMP/$v.csv" "$TMP/cur.csv"
                timed "$TMP/wsl_upd" ip netns exec $NS "$BIN" -c "$TMP/wgsplit" lists update
                # "geo_us_4: N ranges (+a -d) in T ms (reading the set back: R ms)"
                sed -n 's/^geo_us_4: .* in \([0-9.]*\) ms (reading the set back: \([0-9.]*\) ms)/\1 \2/p' "$TMP/cmd.out" |
                    awk '{print $1 - $2, $2}' >> "$TMP/wsl_swap"
            fi
        done
    done
    sleep 0.2
    kill "$PING_PID"; wait "$PING_PID" 2>/dev/null; PING_PID=
    if [ $tool = nft ]; then NFT_MIS=$(counter dir) NFT_PKT=$(counter up); else WSL_MIS=$(counter dir) WSL_PKT=$(counter up); fi
done
NFTU_S=$(col "$TMP/nft_upd" 1) NFTU_KB=$(col "$TMP/nft_upd" 2) NFTU_CPU=$(col "$TMP/nft_upd" 3)
WSLU_S=$(col "$TMP/wsl_upd" 1) WSLU_KB=$(col "$TMP/wsl_upd" 2) WSLU_CPU=$(col "$TMP/wsl_upd" 3)
SWAP_MS=$(col "$TMP/wsl_swap" 1) READ_MS=$(col "$TMP/wsl_swap" 2)
DIFF=$(grep -o 'geo_us_4: [0-9]* ranges (+[0-9]* -[0-9]*)' "$TMP/cmd.out" | grep -o '(.*)')

echo "=== 3. domain categories and a 1 M-name list"
config us
python3 - "$TMP/million.txt" <<'PY'
import random, string, sys
random.seed(1)
tlds = ["com", "net", "org", "ru", "de", "io", "info"]
with open(sys.argv[1], "w") as f:
    for i in range(1_000_000):
        n = "".join(random.choices(string.ascii_lowercase + string.digits, k=random.randint(5, 14)))
        f.write(f"{n}{i % 97}.{random.choice(tlds)}\n")
PY
: > "$TMP/cats"; : > "$TMP/million"
for i in $(seq "$RUNS"); do
    timed "$TMP/cats" "$BIN" -c "$TMP/wgsplit" lists entries netflix google category_ads_all --count
    CATS_OUT=$(cat "$TMP/cmd.out")
    timed "$TMP/million" "$BIN" -c "$TMP/wgsplit" lists entries million --count
done
CATS_S=$(col "$TMP/cats" 1) CATS_KB=$(col "$TMP/cats" 2)
# Match rate through the resolver's matcher: 1 M queries, half subdomains of
# listed names, half unlisted names.
python3 - "$TMP/million.txt" "$TMP/queries.txt" <<'PY'
import random, sys
random.seed(2)
names = [l.strip() for l in open(sys.argv[1])]
with open(sys.argv[2], "w") as f:
    for i in range(1_000_000):
        if i % 2:
            f.write("www." + random.choice(names) + "\n")
        else:
            f.write(f"host{i}.unlisted{i % 1000}.example\n")
PY
: > "$TMP/match"
for i in $(seq "$RUNS"); do
    timed "$TMP/match" "$BIN" -c "$TMP/wgsplit" lists match "$TMP/queries.txt" million
    grep -o '[0-9.]* M names/s' "$TMP/cmd.out" | awk '{print $1}' >> "$TMP/match_rate"
    MATCH_OUT=$(grep matched "$TMP/cmd.out")
    MATCH_MEM=$(grep -o '([0-9]* KB)' "$TMP/cmd.out" | tr -d '()')
done
MATCH_RATE=$(median < "$TMP/match_rate") MATCH_KB=$(col "$TMP/match" 2)
MATCH_HITS=$(echo "$MATCH_OUT" | grep -o '[0-9]* of [0-9]* names')
MIL_S=$(col "$TMP/million" 1) MIL_KB=$(col "$TMP/million" 2)
CATS_N=$(echo "$CATS_OUT" | grep -o '[0-9]* entries' | awk '{s+=$1} END {print s}')

echo "=== 4. kernel memory of US + CN + RU"
config us cn ru
: > "$TMP/slab"
slab_kb() { awk '/^Slab:/ {print $2}' /proc/meminfo; }
for i in $(seq "$RUNS"); do
    fresh_ns
    empty_sets us cn ru
    sleep 1; before=$(slab_kb)
    in_ns "$BIN" -c "$TMP/wgsplit" lists load > /dev/null 2>&1
    sleep 1; after=$(slab_kb)
    echo $((after - before)) >> "$TMP/slab"
done
SLAB_KB=$(median < "$TMP/slab")
SETS=$(cat "$TMP"/lists/geo_{us,cn,ru}.txt | wc -l)

ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
cat <<TABLE

### Rule sources ($(date -u +%Y-%m-%d), $(nproc) cores, kernel $(uname -r), median of $RUNS)

| what | nft -f (baseline) | wgsplit | ratio | goal |
|---|---|---|---|---|
| load US (63,940 v4 + 33,418 v6 ranges): CPU time (user + sys, kernel work included) | ${NFT_CPU} s | ${WSL_CPU} s | $(ratio "$WSL_CPU" "$NFT_CPU") | ≤ 0.5 |
| load US: wall time (noisy on a shared machine) | ${NFT_S} s | ${WSL_S} s | $(ratio "$WSL_S" "$NFT_S") | ≤ 0.5 |
| load US: peak RSS | $((NFT_KB / 1024)) MB | $((WSL_KB / 1024)) MB | $(ratio "$WSL_KB" "$NFT_KB") | ≤ 0.25 |
| atomic update of US $DIFF: whole command, CPU | ${NFTU_CPU} s (flush + add all, one transaction) | ${WSLU_CPU} s (read CSV, diff from the last load, swap) | $(ratio "$WSLU_CPU" "$NFTU_CPU") | — |
| atomic update: whole command, wall | ${NFTU_S} s | ${WSLU_S} s | $(ratio "$WSLU_S" "$NFTU_S") | — |
| atomic update: the one-batch swap of geo_us_4 (diff applied) | — | ${SWAP_MS} ms (+ ${READ_MS} ms reading the set back) | — | — |
| atomic update: peak RSS | $((NFTU_KB / 1024)) MB | $((WSLU_KB / 1024)) MB | $(ratio "$WSLU_KB" "$NFTU_KB") | — |
| packets misrouted during $((2 * RUNS)) updates (1 kHz flow) | $NFT_MIS of $((NFT_MIS + NFT_PKT)) | $WSL_MIS of $((WSL_MIS + WSL_PKT)) | — | 0 |

| what | time | peak RSS |
|---|---|---|
| extract US + CN + RU from the DB-IP mmdb (8 MB) | ${EXTRACT_S} s | $((EXTRACT_KB / 1024)) MB |
| extract US + CN + RU from a v2fly geoip.dat of the same data (${DAT_MB} MB, streamed) | ${DAT_S} s | $((DAT_KB / 1024)) MB |
| geosite.dat: netflix + google + category-ads-all ($CATS_N entries) | ${CATS_S} s | $((CATS_KB / 1024)) MB |
| resolver matcher with those 1 M names loaded: 1 M queries ($MATCH_HITS matched; table $MATCH_MEM) | $MATCH_RATE M names/s | $((MATCH_KB / 1024)) MB (whole process) |
| plain list of 1,000,000 names (parse + check, streamed) | ${MIL_S} s ($(awk -v s="$MIL_S" 'BEGIN {printf "%.1f", 1 / s}') M names/s) | $((MIL_KB / 1024)) MB |
| kernel memory (slab) of US + CN + RU sets ($SETS ranges) | — | $((SLAB_KB / 1024)) MB ($(awk -v k="$SLAB_KB" -v n="$SETS" 'BEGIN {printf "%.0f", k * 1024 / n}') B/range) |
TABLE
