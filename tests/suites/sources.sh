#!/usr/bin/env bash
# Rule sources (GeoIP and domain categories) against real data and the real
# kernel: DB-IP lite country (npm, cached), geosite.dat built from
# shared/data/domain-list-community. In a network namespace of our own:
# a country rule sends a US address through the "upstream" link and others
# direct; updates swap the set while a flow runs without one packet changing
# path; corrupt, truncated or shrunk files are refused and the old data stays.
set -uo pipefail
cd "$(dirname "$0")/../.."
. tests/lib/deps.sh
. tests/sources/lib.sh
if [ "$(id -u)" != 0 ]; then echo "sources: needs root (network namespaces)"; exit 1; fi
wsl_data || { echo "FAIL test data"; exit 1; }
cargo build --quiet -p wgsplit || exit 1
BIN=$PWD/target/debug/wgsplit
NS=wsl-s1
TMP=$(mktemp -d /tmp/wsl-src.XXXXXX)
# wgsplit keeps lists only in its folders: this run's folder stands for them.
export WGSPLIT_LIST_ROOTS=$TMP
PING_PID= HTTP_PID=
cleanup() {
    [ -n "$PING_PID" ] && kill "$PING_PID" 2>/dev/null
    [ -n "$HTTP_PID" ] && kill "$HTTP_PID" 2>/dev/null
    # Whatever still runs in our namespace (a deleted namespace keeps its processes).
    local pid
    for pid in $(ip netns pids $NS 2>/dev/null); do kill "$pid" 2>/dev/null; done
    ip netns del $NS 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT

fails=0
ok() { echo "ok   $1"; }
bad() { echo "FAIL $1"; fails=$((fails + 1)); }
check() { if [ "$2" = "$3" ]; then ok "$1"; else bad "$1: expected '$2', got '$3'"; fi; }
in_ns() { ip netns exec $NS "$@"; }
w() { in_ns "$BIN" -c "$TMP/wgsplit" "$@"; }
counter() { in_ns nft -j list counter inet wsl_count "$1" | grep -o '"packets": [0-9]*' | grep -o '[0-9]*$'; }
set_ranges() { # set → number of ranges the kernel holds
    in_ns nft -j list set inet wgsplit "$1" | python3 -c '
import json, sys
d = json.load(sys.stdin)["nftables"]
s = [x["set"] for x in d if "set" in x][0]
print(len(s.get("elem", [])))'
}
state_field() { python3 -c "import json,sys; s=json.load(open('$TMP/lists/state.json')); print($1)"; }

echo "--- real data: readers agree (mmdb = CSV, geosite.dat = source lists)"
if WSL_DBIP_DIR=$WSL_DBIP_DIR WSL_GEOSITE_DAT=$WSL_GEOSITE_DAT WSL_DLC_DATA=$WSL_DLC_DATA WSL_GEOIP_DAT=$WSL_GEOIP_DAT \
    cargo test --quiet -p wgsplit --test sources_data -- --nocapture 2>&1 | tee "$TMP/data.log" | grep -q "test result: ok. 2 passed"; then
    ok "mmdb = CSV = geoip.dat for us, cn, ru, de; geosite.dat = v2fly source lists"
    grep -E "^(us|cn|ru|de):|entries|^(mmdb|csv|geoip.dat):" "$TMP/data.log" | sed 's/^/     /'
else
    bad "real-data readers"; cat "$TMP/data.log"
fi

echo "--- namespace: two exits, a geo rule"
ip netns add $NS
in_ns ip link set lo up
# veth pairs (the dummy module may be absent); NOARP so nothing waits for a neighbour.
for l in up dir; do
    in_ns ip link add wsl-$l type veth peer name wsl-${l}x
    in_ns ip link set wsl-$l arp off up
    in_ns ip link set wsl-${l}x up
done
in_ns ip addr add 192.0.2.1/24 dev wsl-dir
in_ns ip addr add 198.51.100.1/24 dev wsl-up
in_ns ip -6 addr add 2001:db8:1::1/64 dev wsl-dir nodad
in_ns ip -6 addr add 2001:db8:2::1/64 dev wsl-up nodad
in_ns ip route add default dev wsl-dir
in_ns ip -6 route add default dev wsl-dir
in_ns ip route add default dev wsl-up table 100
in_ns ip -6 route add default dev wsl-up table 100
in_ns ip rule add fwmark 0x3000000/0xff000000 lookup 100 priority 6000
in_ns ip -6 rule add fwmark 0x3000000/0xff000000 lookup 100 priority 6000
# The sets as the engine creates them (empty), and a rule reading them.
in_ns nft -f - <<'NFT'
table inet wgsplit {
    set geo_us_4 { type ipv4_addr; flags interval; }
    set geo_us_6 { type ipv6_addr; flags interval; }
    chain out {
        type route hook output priority mangle; policy accept;
        ip daddr @geo_us_4 meta mark set 0x3000000
        ip6 daddr @geo_us_6 meta mark set 0x3000000
    }
}
table inet wsl_count {
    counter us_up {}
    counter us_dir {}
    counter ru_up {}
    counter ru_dir {}
    chain post {
        type filter hook postrouting priority 300; policy accept;
        oifname "wsl-up" ip daddr 8.8.8.8 counter name us_up
        oifname "wsl-dir" ip daddr 8.8.8.8 counter name us_dir
        oifname "wsl-up" ip6 daddr 2001:4800::1 counter name us_up
        oifname "wsl-dir" ip6 daddr 2001:4800::1 counter name us_dir
        oifname "wsl-up" ip daddr 77.88.8.8 counter name ru_up
        oifname "wsl-dir" ip daddr 77.88.8.8 counter name ru_dir
    }
}
NFT
write_config() { # geoip url, format
    cat > "$TMP/wgsplit" <<CFG
config server
	option address 10.9.0.1/24
	option private_key '4EqAuesGDDDllVFRw6LW42qz0RGOaO4UN+emBozZgU0='
config geoip 'geoip'
	option url '$1'
	option format '$2'
	option dir '$TMP/lists'
config client 'c'
	list address '10.9.0.2/32'
	option public_key 'HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw='
config rule
	option client 'c'
	option action 'block'
	list geoip 'us'
config list 'netflix'
	option path '$TMP/lists/geosite.dat'
	option format 'geosite'
	option category 'netflix'
	option url 'file://$TMP/src/geosite.dat'
config list 'ads'
	option path '$TMP/lists/geosite.dat'
	option format 'geosite'
	option category 'category-ads-all@ads'
	option url 'file://$TMP/src/geosite.dat'
config list 'blocked'
	option path '$TMP/lists/blocked.conf'
	option format 'dnsmasq'
	option url 'file://$TMP/src/blocked.conf'
CFG
}
mkdir -p "$TMP/src"
cp "$WSL_DBIP_DIR/dbip-country-mmdb/dbip-country.mmdb" "$TMP/src/"
cp "$WSL_GEOSITE_DAT" "$TMP/src/geosite.dat"
python3 - "$WSL_DLC_DATA" > "$TMP/src/blocked.conf" <<'PY'
import sys, os
d = sys.argv[1]
for name in sorted(os.listdir(d))[:200]:
    for line in open(os.path.join(d, name), encoding="utf-8"):
        w = line.split("#")[0].split()
        if w and ":" not in w[0] and "." in w[0]:
            print(f"nftset=/{w[0]}/4#inet#fw4#blocked")
PY
write_config "file://$TMP/src/dbip-country.mmdb" mmdb

echo "--- lists update: download (file://), extract only what the rules use, load the kernel"
if out=$(w lists update 2>&1); then ok "lists update"; else bad "lists update: $out"; fi
echo "$out" | sed 's/^/     /'
check "only the used country is kept" "blocked.conf geo_us.loaded geo_us.txt geosite.dat loaded.json state.json" \
    "$(ls "$TMP/lists" | sort | tr '\n' ' ' | sed 's/ $//')"
check "what the kernel holds is a hard link to the extract (no extra space)" "$(stat -c %i "$TMP/lists/geo_us.txt")" \
    "$(stat -c %i "$TMP/lists/geo_us.loaded")"
check "the mmdb download is not kept (no path)" "0" "$(ls "$TMP/lists" | grep -c mmdb)"
check "geo_us_4 holds DB-IP's US IPv4 ranges" "63940" "$(set_ranges geo_us_4)"
check "geo_us_6 holds DB-IP's US IPv6 ranges" "33418" "$(set_ranges geo_us_6)"
check "state: geoip ok" "True" "$(state_field 's["geoip"]["ok"]')"
check "state: netflix entries" "28" "$(state_field 's["lists"]["netflix"]["entries"]')"
size=$(stat -c %s "$TMP/lists/geosite.dat")
check "geosite.dat kept with only the used categories ($size of $(stat -c %s "$WSL_GEOSITE_DAT") bytes)" "yes" \
    "$([ "$size" -lt 200000 ] && echo yes)"
cats=$(w lists entries netflix ads --count 2>&1)
check "the pruned file gives the same entries" "28 761" "$(echo "$cats" | grep -o '[0-9]* entries' | awk '{print $1}' | paste -sd' ')"

echo "--- downloads over HTTP from 127.0.0.1 in the namespace (wget, then curl alone)"
ip netns exec $NS python3 -m http.server 8718 --bind 127.0.0.1 --directory "$TMP/src" >/dev/null 2>&1 &
HTTP_PID=$!
for i in $(seq 50); do in_ns bash -c 'echo > /dev/tcp/127.0.0.1/8718' 2>/dev/null && break; sleep 0.1; done
mkdir -p "$TMP/only-curl" && ln -sf "$(command -v curl)" "$TMP/only-curl/curl"
for tool in wget curl; do
    write_config "http://127.0.0.1:8718/dbip-country.mmdb" mmdb
    if [ $tool = wget ]; then
        out=$(w lists update 2>&1)
    else
        out=$(PATH=$TMP/only-curl in_ns "$BIN" -c "$TMP/wgsplit" lists update 2>&1)
    fi
    check "http download with $tool" "True 63940" \
        "$(state_field 's["geoip"]["ok"]') $(state_field 's["geoip"]["countries"]["us"][0]')"
done
write_config "http://127.0.0.1:8718/missing.mmdb" mmdb
w lists update >/dev/null 2>&1
check "an HTTP 404 is a failed update, the data stays" "False 63940" \
    "$(state_field 's["geoip"]["ok"]') $(set_ranges geo_us_4)"
kill $HTTP_PID 2>/dev/null; wait $HTTP_PID 2>/dev/null; HTTP_PID=

echo "--- a country rule: US through the upstream, RU direct"
in_ns ping -c 3 -i 0.2 -W 0.2 8.8.8.8 >/dev/null 2>&1
in_ns ping -c 3 -i 0.2 -W 0.2 77.88.8.8 >/dev/null 2>&1
in_ns ping -6 -c 3 -i 0.2 -W 0.2 2001:4800::1 >/dev/null 2>&1
check "8.8.8.8 and 2001:4800::1 (US, by DB-IP) left by the upstream" "6 0" "$(counter us_up) $(counter us_dir)"
check "77.88.8.8 (RU) left direct" "0 3" "$(counter ru_up) $(counter ru_dir)"

echo "--- atomic updates while a flow runs"
# Two versions of the US data: B grows the range holding 8.8.8.8 (so the flow's
# own range is deleted and re-added) and drops/adds others.
python3 - "$TMP/lists/geo_us.txt" "$TMP/src" <<'PY'
import ipaddress, sys, random
src, out = sys.argv[1], sys.argv[2]
rows = []
for line in open(src):
    line = line.strip()
    a, _, b = line.partition("-")
    b = b or a
    rows.append((int(ipaddress.ip_address(a)), int(ipaddress.ip_address(b)), ":" in a))
v4 = [r for r in rows if not r[2]]
v6 = [r for r in rows if r[2]]
flow = int(ipaddress.ip_address("8.8.8.8"))
random.seed(8)
def write(name, ranges):
    with open(f"{out}/{name}", "w") as f:
        for s, e, _ in ranges:
            ip = ipaddress.ip_address
            f.write(f"{ip(s)},{ip(e)},US\n")
write("a-ipv4.csv", v4 + v6)
b = []
for s, e, fam in v4:
    if s <= flow <= e:
        b.append((s, e + 256, fam))   # grown: the flow's range changes
    elif random.random() < 0.1:
        continue                        # dropped
    else:
        b.append((s, e, fam))
write("b-ipv4.csv", b + v6)
write("shrunk-ipv4.csv", v4[: len(v4) // 3] + v6)
PY
write_config "file://$TMP/src/a-ipv4.csv" csv
w lists update >/dev/null 2>&1
in_ns nft reset counters table inet wsl_count >/dev/null
# Not through in_ns: $! must be ping itself, not a subshell that outlives the kill.
ip netns exec $NS ping -i 0.002 -W 0.01 8.8.8.8 >/dev/null 2>&1 &
PING_PID=$!
sleep 0.3
swaps=0 changed=0
for i in 1 2 3 4 5 6; do
    for v in b a; do
        cp "$TMP/src/$v-ipv4.csv" "$TMP/src/cur-ipv4.csv"
        write_config "file://$TMP/src/cur-ipv4.csv" csv
        out=$(w lists update 2>&1) && swaps=$((swaps + 1))
        [[ $out =~ geo_us_4:\ [0-9]+\ ranges\ \(\+[1-9] ]] && changed=$((changed + 1))
    done
done
sleep 0.2
kill "$PING_PID"; wait "$PING_PID" 2>/dev/null; PING_PID=
check "12 updates applied, each changing geo_us_4" "12 12" "$swaps $changed"
up=$(counter us_up) dir=$(counter us_dir)
echo "     flow packets: $up through the upstream, $dir direct"
check "no packet of the flow took the direct path during the swaps" "0" "$dir"
[ "$up" -gt 100 ] && ok "the flow ran throughout ($up packets)" || bad "flow too short: $up packets"

echo "--- bad files are refused; the old data stays (kernel, extract, lists)"
write_config "file://$TMP/src/dbip-country.mmdb" mmdb
w lists update >/dev/null 2>&1
before_sum=$(sha256sum "$TMP/lists/geo_us.txt" | cut -d' ' -f1)
before_set=$(set_ranges geo_us_4)
refuse_update() { # what, source file, format
    write_config "file://$2" "$3"
    if out=$(w lists update 2>&1); then bad "$1 accepted: $out"; return; fi
    local now_sum; now_sum=$(sha256sum "$TMP/lists/geo_us.txt" | cut -d' ' -f1)
    if [ "$now_sum" = "$before_sum" ] && [ "$(set_ranges geo_us_4)" = "$before_set" ] &&
       [ "$(state_field 's["geoip"]["ok"]')" = False ]; then
        ok "$1 refused ($(state_field 's["geoip"]["error"]' | cut -c1-70))"
    else
        bad "$1: data changed"
    fi
}
head -c 4000000 "$TMP/src/dbip-country.mmdb" > "$TMP/src/truncated.mmdb"
refuse_update "truncated mmdb" "$TMP/src/truncated.mmdb" mmdb
head -c 3000000 /dev/urandom > "$TMP/src/garbage.mmdb"
refuse_update "random bytes as mmdb" "$TMP/src/garbage.mmdb" mmdb
refuse_update "a shrunk country (a third of its ranges)" "$TMP/src/shrunk-ipv4.csv" csv
refuse_update "a missing file" "$TMP/src/nothing.mmdb" mmdb
show=$(w lists show 2>&1)
check "lists show reports the failure" "yes" "$([[ $show == *FAILED* ]] && echo yes)"
gs_before=$(sha256sum "$TMP/lists/geosite.dat" | cut -d' ' -f1)
head -c 1000000 "$WSL_GEOSITE_DAT" > "$TMP/src/geosite.dat"
write_config "file://$TMP/src/dbip-country.mmdb" mmdb
w lists update >/dev/null 2>&1
check "truncated geosite.dat refused, old copy kept" "$gs_before False" \
    "$(sha256sum "$TMP/lists/geosite.dat" | cut -d' ' -f1) $(state_field 's["lists"]["netflix"]["ok"]')"
check "geoip recovers with a good file" "True" "$(state_field 's["geoip"]["ok"]')"

echo "--- end to end through the engine: alice's geoip rule (tests/engine/topology.sh)"
# The engine's topology (clients, router, two WireGuard upstreams, an
# "internet"); alice's rule for server A becomes `geoip us`, with a country
# database in which only server A's addresses are US. The daemon applies the
# config and its rule-sources service loads the country sets.
geo_e2e() {
    . tests/engine/topology.sh
    export PATH="$HOME/.cargo/bin:$PATH"
    install_deps >/dev/null 2>&1
    trap 'cleanup; topo_down' EXIT
    topo_up >/dev/null 2>&1 || { bad "engine topology did not come up"; return; }
    mkdir -p "$WSE_DIR/geo"
    printf '%s\n' "1.0.0.0,1.0.0.255,US" "$SRV_A4,$SRV_A4,US" "$SRV_B4,$SRV_B4,DE" \
        "fd00:5e::100,fd00:5e::100,US" > "$WSE_DIR/geo/countries.csv"
    python3 - "$WSE_DIR/wgsplit.conf" "$SRV_A4" "$SRV_A6" "$WSE_DIR/geo" <<'PY'
import sys
path, a4, a6, geo = sys.argv[1:]
text = open(path).read()
text = text.replace(f"\tlist cidr '{a4}'\n\tlist cidr '{a6}'\n", "\tlist geoip 'us'\n", 1)
text += f"\nconfig geoip 'geoip'\n\toption path '{geo}/countries.csv'\n\toption dir '{geo}/lists'\n"
open(path, "w").write(text)
PY
    grep -q "list geoip 'us'" "$WSE_DIR/wgsplit.conf" || { bad "could not rewrite alice's rule"; return; }
    export WGSPLIT_LIST_ROOTS="$TMP:$WSE_DIR/geo"
    in_ns wse-router "$WSE_BIN" --config "$WSE_DIR/wgsplit.conf" daemon > "$WSE_DIR/daemon.log" 2>&1 &
    local daemon=$! got i
    for i in $(seq 60); do
        got=$(in_ns wse-router nft list set inet wgsplit geo_us_4 2>/dev/null | grep -c "$SRV_A4")
        [ "$got" = 1 ] && break
        sleep 0.25
    done
    check "the daemon loaded geo_us_4 (server A's address)" "1" "$got"
    wait_tunnel wse-c1 || true
    for i in $(seq 24); do
        got=$(whoami wse-c1 $SRV_A4 8080); [ "$got" = "$UP1_EXIT4" ] && break; sleep 0.25
    done
    check "alice → server A (US) goes through up1" "$UP1_EXIT4" "$got"
    check "alice → server A6 (US) goes through up1" "$UP1_EXIT6_SEEN" "$(whoami wse-c1 $SRV_A6 8080)"
    check "alice → server B (DE) goes direct" "$WAN4" "$(whoami wse-c1 $SRV_B4 8080)"
    kill "$daemon" 2>/dev/null; wait "$daemon" 2>/dev/null
    grep -q "geo_us_4" "$WSE_DIR/daemon.log" || sed 's/^/     daemon| /' "$WSE_DIR/daemon.log" | tail -20
}
if [ -f tests/engine/topology.sh ]; then geo_e2e; else bad "no engine topology (tests/engine/topology.sh)"; fi

echo
[ $fails -eq 0 ] && echo "sources: all ok" || echo "sources: $fails failed"
[ $fails -eq 0 ]
