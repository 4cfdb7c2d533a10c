#!/usr/bin/env bash
# explain from the live state (issue #19) agrees with the source address the
# whoami server sees: a country rule (a GeoIP set), a DNS-learned address (with
# its time left), a CIDR rule, the client's default, and with up1 down by its
# health check: `on_down failover` (up2) and `block` (nothing); the daemon's
# GET /api/explain answers each the same as `explain --json`. Real kernel,
# network namespaces (tests/engine/guard_topology.sh). Root only. ~40 s.
set -uo pipefail
cd "$(dirname "$0")/../.."
. tests/lib/guard_test.sh explain
export WGSPLIT_LIST_ROOTS="$WSE_DIR"
export WGSPLIT_RUN_DIR="$WSE_DIR/run"
export WGSPLIT_API_TOKEN_FILE="$WSE_DIR/run/api.token"
explain() { # client dest field → the field of `explain --json`
    wgsplit_r explain --json "$1" "$2" | python3 -c "import json,sys; print(json.load(sys.stdin)$3)"
}
goes() { explain "$1" "$2" "['goes']"; }
# The API's answer and the CLI's, the same JSON (the seconds a learned element
# has left may tick between the two asks).
same_json() { python3 -c '
import json, re, sys
a, b = (re.sub(r"\d+ s left", "N s left", x) for x in sys.argv[1:3])
print("same" if json.loads(a) == json.loads(b) else f"API {a} CLI {b}")' "$1" "$2" 2>&1; }
api_agrees() { # client dest
    local api cli
    api=$(in_ns $R curl -s -H "Authorization: Bearer $(cat "$WGSPLIT_API_TOKEN_FILE")" -G \
        --data-urlencode "client=$1" --data-urlencode "dest=$2" http://127.0.0.1:8274/api/explain)
    cli=$(wgsplit_r explain --json "$1" "$2")
    check "GET /api/explain $1 $2 = explain --json" same "$(same_json "$api" "$cli")"
}
matched() { explain "$1" "$2" "['rule']['matched']"; }
exit_of() { # source address seen → the way it took
    case $1 in
        "$UP1_EXIT4") echo "upstream up1" ;; "$UP2_EXIT4") echo "upstream up2" ;;
        "$WAN4") echo direct ;; -) echo block ;; *) echo "?$1" ;;
    esac
}
agree() { # label client dest-ip expected-way
    local seen way
    seen=$(whoami "$2" "$3" 8080)
    for i in $(seq 12); do [ "$(exit_of "$seen")" = "$4" ] && break; sleep 0.25; seen=$(whoami "$2" "$3" 8080); done
    way=$(goes "$(client_of "$2")" "$3")
    check "$1: the server sees $4" "$4" "$(exit_of "$seen")"
    check "$1: explain says so" "$4" "${way%% (*}"
    api_agrees "$(client_of "$2")" "$3"
}
client_of() { case $1 in wsgd-c1) echo alice ;; wsgd-c2) echo bob ;; *) echo carol ;; esac; }

trap topo_down EXIT
topo_up || exit 1
# up1's and up2's resolvers inside their tunnels (the health probe asks them too).
printf 'b.test A %s 60\n' $SRV_B4 > "$WSE_DIR/up.zone"
for n in 1 2; do
    in_ns wsgd-up$n $DNSTOOL stub --listen 10.6$((3 + n)).0.1:53 --zone "$WSE_DIR/up.zone" --log "$WSE_DIR/up$n.log" >/dev/null 2>&1 &
done
# Country "us" is server A; alice: geoip us → up1, b.test → up2, the rest direct.
mkdir -p "$WSE_DIR/geo"
printf '%s/32\n' $SRV_A4 > "$WSE_DIR/geo/us.txt"
write_alice() {
    sed -i -e "/^config upstream 'up1'/a\\	list dns '10.64.0.1'\n	option on_down 'failover'\n	option failover 'up2'" \
           -e "/^config upstream 'up2'/a\\	list dns '10.65.0.1'" "$WSE_DIR/wgsplit.conf"
    sed -i '/^# alice/,/^# bob/{/^config rule/,/^$/d}' "$WSE_DIR/wgsplit.conf"
    cat >> "$WSE_DIR/wgsplit.conf" <<CONF

config geoip 'geoip'
	option format 'dir'
	option path '$WSE_DIR/geo'
	option dir '$WSE_DIR/geo-out'
	option update_hours '0'

config rule
	option client 'alice'
	option action 'proxy'
	list geoip 'us'

config rule
	option client 'alice'
	option action 'proxy'
	option upstream 'up2'
	list domain 'b.test'
CONF
}
write_alice
WGSPLIT_HEALTH_EVERY=1 in_ns $R "$WSE_BIN" --config "$WSE_DIR/wgsplit.conf" daemon >"$WSE_DIR/daemon.log" 2>&1 &
for i in $(seq 50); do in_ns $R nft list set inet wgsplit geo_us_4 2>/dev/null | grep -q "$SRV_A4" && break; sleep 0.2; done
for c in 1 2; do wait_tunnel wsgd-c$c || echo "tunnel of wsgd-c$c not up"; done

echo "--- rules, from the live state"
agree "alice → A (country rule)" wsgd-c1 $SRV_A4 "upstream up1"
check "alice → A: the element of the country set is named" "geoip US (set geo_us_4, element $SRV_A4)" "$(matched alice $SRV_A4)"
agree "alice → B before any question (default)" wsgd-c1 $SRV_B4 direct
in_ns wsgd-c1 $DNSTOOL q 10.8.0.1:5353 b.test A >/dev/null
agree "alice → B after asking b.test (DNS-learned)" wsgd-c1 $SRV_B4 "upstream up2"
check "alice → B: the learned element is named with its time left" yes \
    "$(matched alice $SRV_B4 | grep -Eq '^learned from DNS \(set alice_r1_dns4, [0-9]+ s left\)$' && echo yes)"
agree "bob → B (CIDR rule, direct)" wsgd-c2 $SRV_B4 direct
agree "bob → A (his default, up2)" wsgd-c2 $SRV_A4 "upstream up2"
check "explain takes [v6]" "upstream up2" "$(goes bob "[$SRV_A6]")"
check "explain takes [v6]:port" "upstream up2" "$(goes bob "[$SRV_A6]:8080")"
check "explain takes v6" "upstream up2" "$(goes bob "$SRV_A6")"
for d in "[$SRV_A6]" "[$SRV_A6]:8080" "$SRV_A6" "[$SRV_A6]:8080/tcp"; do api_agrees bob "$d"; done

echo "--- up1 down by its health check"
for p in $(ip netns pids wsgd-up1); do
    [ "$(tr '\0' ' ' < /proc/$p/cmdline 2>/dev/null)" = "boringtun-cli wsgd-u1s " ] && kill "$p"
done
for i in $(seq 40); do grep -q '"state": "down"' "$WGSPLIT_RUN_DIR/health.json" 2>/dev/null && break; sleep 0.5; done
check "the daemon records up1 down" yes "$(grep -q '"state": "down"' "$WGSPLIT_RUN_DIR/health.json" 2>/dev/null && echo yes)"
agree "on_down failover: alice → A" wsgd-c1 $SRV_A4 "upstream up2"
check "explain names the failover" "upstream up2 (failover: upstream up1 is down)" "$(goes alice $SRV_A4)"
check "the API names the failover" "upstream up2 (failover: upstream up1 is down)" \
    "$(in_ns $R curl -s -H "Authorization: Bearer $(cat "$WGSPLIT_API_TOKEN_FILE")" \
        "http://127.0.0.1:8274/api/explain?client=alice&dest=$SRV_A4" | python3 -c 'import json,sys; print(json.load(sys.stdin)["goes"])')"
sed -i -e "s/option on_down 'failover'/option on_down 'block'/" -e "/option failover 'up2'/d" "$WSE_DIR/wgsplit.conf"
agree "on_down block: alice → A" wsgd-c1 $SRV_A4 block
check "explain names the kill switch" "block (upstream up1 is down: kill switch)" "$(goes alice $SRV_A4)"

echo
if [ $fails -eq 0 ]; then echo "explain: all checks passed"; else echo "explain: $fails checks failed"; fi
[ $fails -eq 0 ]
