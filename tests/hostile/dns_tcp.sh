#!/usr/bin/env bash
# ok never fails, so `test && ok || bad` is an if/else; cleanup runs from the trap.
# shellcheck disable=SC2015,SC2317
# Attack: strangers and stuck TCP clients against the resolver (`wgsplit dns-serve`).
#
#   wshdt-c: alice 10.8.0.2 (client), a LAN host 192.168.77.20 (on the dns_listen
#            network), a stranger 172.16.5.5 (neither) ── wshdt-r: resolver on
#            10.8.0.1 and 192.168.77.1 ── wshdt-w: WAN resolver stub 10.99.0.53
#
# What must hold:
#   - the LAN host (dns_listen network) is answered; the stranger gets REFUSED, no
#     bigger than its query, at most REFUSED_RATE (20) a second together, and
#     nothing is asked upstream for it;
#   - TCP: with TCP_MAX_CONNECTIONS (64) open, the next connection is closed at once
#     and UDP is still answered; a client that sends 1,000 queries and reads no
#     answer is cut off after TCP_WRITE (5 s); idle connections are closed after
#     TCP_IDLE (10 s); then TCP answers again.
#
# Usage: dns_tcp.sh WGSPLIT_BINARY   (root; nft, python3)
set -uo pipefail
BIN=$(readlink -f "${1:?usage: dns_tcp.sh WGSPLIT_BINARY}")
cd "$(dirname "$0")/../.." || exit 1
if [ "$(id -u)" != 0 ]; then echo "  skip dns_tcp: needs root"; exit 0; fi
TOOL=(python3 "$PWD/tests/dns/dnstool.py")
TMP=$(mktemp -d /tmp/wshdt.XXXXXX)
fail=0
ok() { echo "  ok   $1"; }
bad() { echo "  FAIL $1"; fail=1; }
. tests/lib/hostile_dns.sh
trap hostile_cleanup EXIT
hostile_dns_topology wshdt 10.99.0.53/24 10.8.0.2/24 192.168.77.20/24 172.16.5.5/24
ip -n wshdt-r addr add 192.168.77.1/24 dev wshdt-srv
ip -n wshdt-r route add 172.16.5.0/24 dev wshdt-srv

{
    echo "lan.example A 198.51.100.1 3600"
    # An answer of ~700 bytes: what a client that does not read lets pile up.
    for i in $(seq 1 40); do echo "big.example A 198.51.100.$i 3600"; done
} > "$TMP/zone"
ip netns exec wshdt-w "${TOOL[@]}" stub --listen 10.99.0.53:53 --zone "$TMP/zone" --log "$TMP/wan.log" > "$TMP/stub.out" 2>&1 &
PIDS+=($!)
hostile_config 1 "list dns_listen '192.168.77.1'" > "$TMP/wgsplit"
ip netns exec wshdt-r "$BIN" -c "$TMP/wgsplit" dns-serve --stats "$TMP/stats.json" 2> "$TMP/resolver.err" &
RPID=$!
PIDS+=("$RPID")
q() { ip netns exec wshdt-c "${TOOL[@]}" q "${@:3}" --src "$1" "$2" lan.example A 2> /dev/null | head -1; }
for _ in $(seq 50); do
    [ "$(q 10.8.0.2 10.8.0.1)" = NOERROR ] && break
    sleep 0.1
done
stat() { kill -USR1 $RPID; sleep 0.3; python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$TMP/stats.json" "$1"; }

echo "- who gets answers"
[ "$(q 192.168.77.20 192.168.77.1)" = NOERROR ] && ok "a host on the dns_listen network is answered" || bad "LAN host not answered"
[ "$(q 172.16.5.5 192.168.77.1)" = REFUSED ] && ok "a stranger gets REFUSED" || bad "stranger: $(q 172.16.5.5 192.168.77.1)"
[ "$(q 172.16.5.5 10.8.0.1 --tcp)" = REFUSED ] && ok "a stranger gets REFUSED over TCP" || bad "stranger over TCP"
# A spray of 1,000 queries from the stranger in ~1 s: few replies, none bigger than its query.
read -r replies bigger < <(ip netns exec wshdt-c python3 - << 'EOF'
import socket, struct, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("172.16.5.5", 0))
s.setblocking(False)
q = struct.pack("!HHHHHH", 7, 0x0100, 1, 0, 0, 1) + b"\x03big\x07example\x00" + struct.pack("!HH", 1, 1)
q += b"\x00" + struct.pack("!HHIH", 41, 4096, 0, 0)  # EDNS: a 4096-byte answer allowed
n = bigger = 0
for i in range(1000):
    s.sendto(q, ("10.8.0.1", 53))
    time.sleep(0.001)
end = time.time() + 1
while time.time() < end:
    try:
        r = s.recv(4096)
        n += 1
        bigger += len(r) > len(q)
    except BlockingIOError:
        time.sleep(0.01)
print(n, bigger)
EOF
)
[ "${replies:-999}" -le 60 ] && [ "${bigger:-1}" = 0 ] && ok "1,000 spoofable queries from a stranger: $replies replies (REFUSED_RATE 20/s), none bigger than the query" ||
    bad "stranger spray: $replies replies, $bigger bigger than the query"
[ "$(grep -c '^big.example' "$TMP/wan.log")" = 0 ] && ok "nothing asked upstream for the stranger" || bad "the stranger's names were asked upstream"

echo "- TCP: a client that does not read, a full house, idle connections"
# 1 writer that never reads + 63 idle = 64 open; the 65th is closed at once.
ip netns exec wshdt-c python3 - "$TMP" << 'EOF' &
import os, socket, struct, sys, time
d = sys.argv[1]
q = struct.pack("!HHHHHH", 9, 0x0100, 1, 0, 0, 0) + b"\x03big\x07example\x00" + struct.pack("!HH", 1, 1)
w = socket.socket()
w.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
w.bind(("10.8.0.2", 0))
w.connect(("10.8.0.1", 53))
w.sendall((struct.pack("!H", len(q)) + q) * 1000)
idle = []
for i in range(63):
    s = socket.socket()
    s.bind(("10.8.0.2", 0))
    s.connect(("10.8.0.1", 53))
    idle.append(s)
time.sleep(0.5)
extra = socket.socket()
extra.bind(("10.8.0.2", 0))
extra.connect(("10.8.0.1", 53))
extra.settimeout(2)
t = time.time()
try:
    closed = extra.recv(1) == b""
except (socket.timeout, ConnectionResetError) as e:
    closed = isinstance(e, ConnectionResetError)
open(f"{d}/extra", "w").write(f"{int(closed)} {int((time.time() - t) * 1000)}\n")
time.sleep(14)  # hold everything; the resolver must cut them
EOF
PIDS+=($!)
# The client writes "extra" once its 64 are open and the 65th was tried; the
# clock starts then (a loaded machine may take seconds to start python).
for _ in $(seq 100); do [ -s "$TMP/extra" ] && break; sleep 0.1; done
t0=$SECONDS
estab() { ip netns exec wshdt-r ss -Htn state established '( sport = :53 )' | wc -l; }
read -r closed ms < "$TMP/extra" 2> /dev/null
[ "${closed:-0}" = 1 ] && ok "connection 65 closed at once (${ms} ms), $(stat tcp_rejected) rejected" || bad "connection 65 was not closed (${closed:-?})"
n=$(estab)
[ "$n" -le 64 ] && ok "$n TCP connections open (TCP_MAX_CONNECTIONS 64)" || bad "$n TCP connections open"
[ "$(q 10.8.0.2 10.8.0.1)" = NOERROR ] && ok "UDP answered meanwhile" || bad "UDP not answered with TCP full"
# The writer is cut after TCP_WRITE (5 s): one fewer after 7 s, before the idle ones go.
while [ $((SECONDS - t0)) -lt 7 ]; do sleep 0.2; done
n=$(estab)
[ "$n" -le 63 ] && ok "the client that reads nothing was cut off ($n left after 7 s)" || bad "writer not cut off after 7 s ($n open)"
while [ $((SECONDS - t0)) -lt 12 ]; do sleep 0.2; done
n=$(estab)
[ "$n" = 0 ] && ok "idle connections closed after TCP_IDLE (none left after 12 s)" || bad "$n idle connections still open after 12 s"
[ "$(q 10.8.0.2 10.8.0.1 --tcp)" = NOERROR ] && ok "TCP answers again" || bad "TCP does not answer again"
kill -0 $RPID 2> /dev/null && ok "the resolver is alive" || bad "the resolver died"
[ $fail = 0 ] || { echo "--- resolver log"; tail -5 "$TMP/resolver.err"; }
exit $fail
