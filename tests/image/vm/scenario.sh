#!/bin/sh
# Inside the image: the split-routing scenario with real kernel WireGuard.
#
#   cli ns ──wgc0 (10.8.0.2)══╗
#    192.168.50.2             ║ WireGuard
#   router (this VM's own namespace, where wgsplit runs)
#    wg0 10.8.0.1 ═╝  wgs_up1 10.64.0.2 ══╗ WireGuard      r-wan 172.31.0.1 (WAN)
#                      r-up 172.30.0.1    ║                     │
#   up ns (a VPN provider): wgu0 10.64.0.1, NATs to 172.31.1.1  │
#   inet ns: 198.51.100.10 and 203.0.113.10 on lo, 172.31.1.2 ──┘ 172.31.0.2
#
# alice's rule sends 198.51.100.0/24 through upstream up1; everything else goes
# direct.  The internet's web server answers with the source address it sees:
# 172.31.1.1 = came out of the upstream, 10.8.0.2 or 172.31.0.1 = came out of
# the router's WAN.
. /test/lib.sh
CONF=/test/wgsplit.conf
K=/test/keys
PROXIED=198.51.100.10
DIRECT=203.0.113.10
UP_EXIT=172.31.1.1
TP_SECS=${TP_SECS:-5}
W() { wgsplit --config "$CONF" "$@"; }

sysctl -qw net.ipv4.ip_forward=1

# --- the world around the router -----------------------------------------
for n in cli up inet; do wsi-netns add $n; done
wsi-netns veth r-cli - cli0 cli
wsi-netns veth r-up - up0 up
wsi-netns veth r-wan - inet0 inet
wsi-netns veth up1 up inet1 inet
addr() { # addr NS DEV CIDR
    if [ "$1" = - ]; then ip addr add "$3" dev "$2" && ip link set "$2" up
    else in_ns "$1" ip addr add "$3" dev "$2" && in_ns "$1" ip link set "$2" up; fi
}
addr - r-cli 192.168.50.1/24
addr - r-up 172.30.0.1/24
addr - r-wan 172.31.0.1/24
ip route add default via 172.31.0.2
addr cli cli0 192.168.50.2/24
addr up up0 172.30.0.2/24
addr up up1 172.31.1.1/24
addr inet inet0 172.31.0.2/24
addr inet inet1 172.31.1.2/24
in_ns inet ip addr add $PROXIED/32 dev lo
in_ns inet ip addr add $DIRECT/32 dev lo
in_ns inet ip route add 10.8.0.0/24 via 172.31.0.1

# The client: everything through its tunnel to the router.
in_ns cli ip link add wgc0 type wireguard
in_ns cli wg set wgc0 private-key $K/client.key peer "$(cat $K/router.pub)" \
    endpoint 192.168.50.1:51820 allowed-ips 0.0.0.0/0
addr cli wgc0 10.8.0.2/32
in_ns cli ip route add default dev wgc0
# When the router's wg0 is made anew, the client still holds a session the new
# interface does not know, and WireGuard only re-handshakes after ~15 s of
# silence: start the client's peer afresh instead (as a phone would reconnect).
client_reconnect() {
    in_ns cli wg set wgc0 peer "$(cat $K/router.pub)" remove
    in_ns cli wg set wgc0 peer "$(cat $K/router.pub)" endpoint 192.168.50.1:51820 allowed-ips 0.0.0.0/0
    in_ns cli ip route replace default dev wgc0
}

# The upstream (a VPN provider): WireGuard in, NAT out to the internet.
in_ns up sysctl -qw net.ipv4.ip_forward=1
in_ns up ip route add default via 172.31.1.2
in_ns up ip link add wgu0 type wireguard
in_ns up wg set wgu0 private-key $K/upstream.key listen-port 51821 \
    peer "$(cat $K/routerup.pub)" allowed-ips 10.64.0.2/32,10.8.0.0/24
addr up wgu0 10.64.0.1/24
in_ns up ip route add 10.8.0.0/24 dev wgu0
in_ns up nft -f - <<'NFT'
table ip wsiup {
    chain post { type nat hook postrouting priority srcnat; policy accept; oifname "up1" masquerade; }
}
NFT

# The internet: a web server that tells who asked, and logs it.
mkdir -p /tmp/www/cgi-bin
cat >/tmp/www/cgi-bin/ip <<'CGI'
#!/bin/sh
a=${REMOTE_ADDR#[}; a=${a%]}; a=${a#::ffff:}
echo "$a $QUERY_STRING" >>/tmp/wsi-hits
printf 'Content-Type: text/plain\r\n\r\n%s\n' "$a"
CGI
chmod +x /tmp/www/cgi-bin/ip
: >/tmp/wsi-hits
in_ns inet httpd -p 80 -h /tmp/www

# fetch DEST [TIMEOUT]: the address the internet saw (busybox wget crashes on
# some architectures, so plain HTTP/1.0 over nc)
fetch() {
    printf 'GET /cgi-bin/ip?%s HTTP/1.0\r\n\r\n' "$1" |
        in_ns cli timeout "${2:-5}" nc "$1" 80 2>/dev/null | tr -d '\r' | tail -n 1
}
hits_for() { grep -c " $1\$" /tmp/wsi-hits; }
up_rx() { in_ns up wg show wgu0 transfer | awk '{s += $2} END {print s + 0}'; }

# throughput DEST: client -> DEST:5201 for TP_SECS seconds of sending; Mbit/s
# = bytes the receiver got / time until it got the last of them (bounded in
# time, not size, so a slow emulated CPU still finishes)
throughput() {
    rm -f /tmp/tp.bytes /tmp/tp.end
    # (busybox nc quits at EOF on its stdin: the receiver runs as -e PROG)
    in_ns inet nc -l -p 5201 -e sh -c 'wc -c >/tmp/tp.bytes; cut -d" " -f1 /proc/uptime >/tmp/tp.end' </dev/null &
    sp=$!
    usleep 300000
    t0=$(uptime_s)
    timeout "$TP_SECS" dd if=/dev/zero bs=16k 2>/dev/null | in_ns cli timeout $((TP_SECS + 30)) nc "$1" 5201
    i=0
    while [ ! -s /tmp/tp.end ] && [ $i -lt 300 ]; do usleep 100000; i=$((i + 1)); done
    kill $sp 2>/dev/null
    awk -v b="$(cat /tmp/tp.bytes 2>/dev/null)" -v a="$t0" -v e="$(cat /tmp/tp.end 2>/dev/null)" \
        'BEGIN { if (b + 0 < 1024 || e + 0 <= a + 0) print "0"; else printf "%.1f", b * 8 / (e - a) / 1e6 }'
}

# --- without wgsplit: the same tunnels set up by hand, a plain source rule, no
# nft ruleset on the router (the baseline for throughput) -------------------
manual_up() {
    ip link add wg0 type wireguard
    wg set wg0 private-key $K/router.key listen-port 51820 peer "$(cat $K/client.pub)" allowed-ips 10.8.0.2/32
    addr - wg0 10.8.0.1/24
    ip link add wgs_up1 type wireguard
    wg set wgs_up1 private-key $K/routerup.key peer "$(cat $K/upstream.pub)" \
        endpoint 172.30.0.2:51821 allowed-ips 0.0.0.0/0
    addr - wgs_up1 10.64.0.2/32
    ip rule add from 10.8.0.2 lookup 201 pref 5000
    ip route add default dev wgs_up1 table 201
}
manual_down() {
    ip rule del pref 5000
    ip route flush table 201
    ip link del wg0
    ip link del wgs_up1
}
manual_up
got=$(fetch $PROXIED 10)
check "harness: hand-made path reaches the internet through the upstream (seen as $got)" [ "$got" = $UP_EXIT ]
TP_BASE=$(throughput $PROXIED)
metric throughput_without_ruleset_mbit "$TP_BASE"
manual_down

# --- wgsplit apply / down --------------------------------------------------
check "wgsplit config check" W config check
check "wgsplit apply --dry-run prints a plan and changes nothing" \
    sh -c "W() { wgsplit --config $CONF \"\$@\"; }; W apply --dry-run >/tmp/plan && [ -s /tmp/plan ] && ! nft list table inet wgsplit >/dev/null 2>&1"
t=$(uptime_s)
check "wgsplit apply" W apply
metric apply_seconds "$(elapsed "$t")"
check "apply made table inet wgsplit" nft list table inet wgsplit
check "apply made wg0 and wgs_up1" sh -c 'ip link show wg0 && ip link show wgs_up1'
check "apply made a fwmark rule" sh -c 'ip rule | grep -q fwmark'
check "apply again is a no-op (idempotent)" W apply
check "wgsplit down" W down
check "down removed table, rules and interfaces" sh -c \
    '! nft list table inet wgsplit 2>/dev/null && ! ip rule | grep -q fwmark && ! ip link show wg0 2>/dev/null && ! ip link show wgs_up1 2>/dev/null'

# --- wgsplit daemon --------------------------------------------------------
ready() {
    nft list table inet wgsplit >/dev/null 2>&1 && ip rule | grep -q fwmark &&
        ip link show wg0 >/dev/null 2>&1 && ip -4 route show table all | grep -q 'dev wgs_up1'
}
t0=$(uptime_s)
wgsplit --config "$CONF" daemon >/tmp/wgsplit.log 2>&1 &
DPID=$!  # the daemon itself (not a subshell): RSS and SIGTERM are its own
i=0
while ! ready && [ $i -lt 600 ] && kill -0 $DPID 2>/dev/null; do usleep 50000; i=$((i + 1)); done
if ready; then
    metric daemon_start_to_ready_s "$(elapsed "$t0")"
    client_reconnect
    check "daemon brought routing up" true
else
    check "daemon brought routing up" sh -c "cat /tmp/wgsplit.log; false"
fi
daemon_checks() {
    check "daemon is running" sh -c "kill -0 $DPID && grep -q '^Name:.*wgsplit' /proc/$DPID/status"
    i=0
    while [ "$(fetch $PROXIED 2)" != $UP_EXIT ] && [ $i -lt 30 ]; do i=$((i + 1)); done
    metric daemon_start_to_first_proxied_reply_s "$(elapsed "$t0")"
    metric daemon_rss_kb "$(awk '/VmRSS/{print $2}' /proc/$DPID/status 2>/dev/null)"

    rx0=$(up_rx)
    got=$(fetch $PROXIED)
    check "proxied destination exits through the upstream (seen as $got)" [ "$got" = $UP_EXIT ]
    rx1=$(up_rx)
    check "proxied request crossed the upstream tunnel" [ "$rx1" -gt "$rx0" ]
    # Live peer data as wgsplit reads it from the kernel (WireGuard generic
    # netlink): alice's tunnel carried bytes and shook hands moments ago.
    W client list --json >/tmp/clients.json 2>&1
    check "client list: alice online, bytes received, handshake age from the kernel" sh -c \
        "grep -q '\"online\": true' /tmp/clients.json && grep -Eq '\"rx\": [1-9]' /tmp/clients.json &&
         grep -Eq '\"handshake_age\": [0-9]{1,3},?\$' /tmp/clients.json || { cat /tmp/clients.json; false; }"
    got=$(fetch $DIRECT)
    check "direct destination exits through the WAN, not the upstream (seen as $got)" \
        sh -c "[ '$got' = 10.8.0.2 ] || [ '$got' = 172.31.0.1 ]"
    rx2=$(up_rx)
    check "direct request did not touch the upstream tunnel" [ "$rx2" -le $((rx1 + 200)) ]

    TP_RULES=$(throughput $PROXIED)
    metric throughput_with_ruleset_mbit "$TP_RULES"
    metric daemon_rss_after_load_kb "$(awk '/VmRSS/{print $2}' /proc/$DPID/status 2>/dev/null)"
    check "throughput measured with and without ruleset" sh -c "[ '$TP_BASE' != 0 ] && [ '$TP_RULES' != 0 ]"

    # Kill switch 1: the upstream provider stops answering.
    in_ns up ip link set wgu0 down
    h0=$(hits_for $PROXIED)
    got=$(fetch $PROXIED 4)
    check "kill switch (upstream unreachable): proxied request gets nothing" [ -z "$got" ]
    check "kill switch (upstream unreachable): nothing reached the internet" [ "$(hits_for $PROXIED)" = "$h0" ]
    got=$(fetch $DIRECT)
    check "kill switch: direct traffic still flows" sh -c "[ '$got' = 10.8.0.2 ] || [ '$got' = 172.31.0.1 ]"
    in_ns up ip link set wgu0 up
    in_ns up ip route replace 10.8.0.0/24 dev wgu0  # went with the link

    # Kill switch 2: the router's upstream interface goes down, so its route leaves
    # the upstream's table; without a fallback the main table (WAN) would carry it.
    ip link set wgs_up1 down
    h0=$(grep -c " $PROXIED\$" /tmp/wsi-hits)
    got=$(fetch $PROXIED 4)
    leaks=$(grep " $PROXIED\$" /tmp/wsi-hits | tail -n +$((h0 + 1)) | grep -vc "^$UP_EXIT ")
    check "kill switch (upstream link down): no proxied packet leaked out the WAN (got '$got')" [ "$leaks" = 0 ]
    ip link set wgs_up1 up 2>/dev/null

}
if ready; then
    daemon_checks
else
    check "daemon traffic checks (not run: routing never came up)" false
fi

# --- stop -------------------------------------------------------------------
kill $DPID 2>/dev/null
i=0
while kill -0 $DPID 2>/dev/null && [ $i -lt 100 ]; do usleep 100000; i=$((i + 1)); done
check "daemon stops on SIGTERM" sh -c "! kill -0 $DPID 2>/dev/null"
W down >/dev/null 2>&1
check "after down nothing of wgsplit is left" sh -c \
    '! nft list table inet wgsplit 2>/dev/null && ! ip rule | grep -q fwmark && ! ip link show wg0 2>/dev/null'
# --- the firmware's own config: the web pages on the LAN side only ---------
# As the image ships it (board/common/rootfs-overlay/etc/config/wgsplit):
# started by the package's init script, which makes the server key at first
# boot. The router's client-facing side (r-cli) is the LAN and takes the LAN
# address the config names; r-wan is the WAN.
FW=/tmp/fw.conf
cp /test/firmware.conf $FW
UI=$(sed -n "s/^[[:space:]]*option ui_listen '\([^']*\)'.*/\1/p" $FW)
UI_ADDR=${UI%:*} UI_PORT=${UI##*:}
check "the firmware's config serves the pages on one LAN address ($UI)" \
    sh -c "[ -n '$UI_PORT' ] && [ '$UI_ADDR' != 0.0.0.0 ] && ! echo '$UI_ADDR' | grep -q ':'"
ip addr add "$UI_ADDR/24" dev r-cli
in_ns cli ip addr add "${UI_ADDR%.*}.2/24" dev cli0
# http NS HOST PATH: the response (status line, headers, body), HTTP/1.0 over nc
http() {
    printf 'GET %s HTTP/1.0\r\nHost: %s:%s\r\n\r\n' "$3" "$2" "$UI_PORT" |
        in_ns "$1" timeout 5 nc "$2" "$UI_PORT" 2>/dev/null | tr -d '\r'
}
fw_init() { WGSPLIT_CONFIG=$FW WGSPLIT_PIDFILE=/tmp/fw.pid WGSPLIT_LOGFILE=/tmp/fw.log /etc/init.d/S95wgsplit "$@"; }
check "S95wgsplit starts the firmware's config (first boot)" fw_init start
check "first boot put a key of this router's own in place of FIRSTBOOT" sh -c \
    "! grep -q \"private_key 'FIRSTBOOT'\" $FW && grep -Eq \"option private_key '[A-Za-z0-9+/]{43}='\" $FW"
i=0
while ! http cli "$UI_ADDR" / | grep -q '^HTTP/1.[01] 200' && [ $i -lt 60 ]; do usleep 500000; i=$((i + 1)); done
metric ui_first_answer_s "$(awk -v i=$i 'BEGIN{print i / 2}')"
http cli "$UI_ADDR" / >/tmp/ui.page
# The page is always sent gzipped (the daemon embeds only compressed assets),
# and this reader strips CRs: the status and type are what is checked here.
check "LAN: the page answers on http://$UI" sh -c \
    "grep -q '^HTTP/1.[01] 200' /tmp/ui.page && grep -qi '^Content-Type: text/html' /tmp/ui.page || { head -5 /tmp/ui.page; tail -5 /tmp/fw.log; false; }"
http cli "$UI_ADDR" /api/ui/state >/tmp/ui.state
check "LAN: first run, the setup is due (no default password)" grep -q '"setup_needed": *true' /tmp/ui.state
got=$(http inet 172.31.0.1 /)
check "WAN: no answer on the WAN address 172.31.0.1:$UI_PORT (got '$(echo "$got" | head -1)')" [ -z "$got" ]
# A WAN neighbour that routes the LAN address to the router (Linux answers for
# any of its addresses on any interface unless S95wgsplit's guard drops it).
in_ns inet ip route add "${UI_ADDR%.*}.0/24" via 172.31.0.1
got=$(http inet "$UI_ADDR" /)
check "WAN: no answer when a WAN neighbour routes $UI_ADDR to the router (got '$(echo "$got" | head -1)')" [ -z "$got" ]
in_ns inet ip route del "${UI_ADDR%.*}.0/24" via 172.31.0.1
check "S95wgsplit stop" fw_init stop
check "stop left nothing: no daemon table, no guard table" sh -c \
    '! nft list table inet wgsplit 2>/dev/null && ! nft list table inet wgsplit_ui 2>/dev/null'
ip addr del "$UI_ADDR/24" dev r-cli
in_ns cli ip addr del "${UI_ADDR%.*}.2/24" dev cli0

# The baseline once more (base, ruleset, base: the machine's noise shows).
manual_up
client_reconnect
got=$(fetch $PROXIED 10)
check "harness again after wgsplit down: hand-made path works (seen as $got)" [ "$got" = $UP_EXIT ]
if [ "$got" != $UP_EXIT ]; then
    echo "--- router state"; ip rule; ip -4 route show table all | grep -v '^local\|^broadcast'
    wg show all latest-handshakes; in_ns up wg show all latest-handshakes; in_ns cli wg show all latest-handshakes
    nft list ruleset | head -30; in_ns up ip -4 route
    sysctl net.ipv4.ip_forward net.ipv4.conf.all.rp_filter net.ipv4.conf.all.src_valid_mark
fi
metric throughput_without_ruleset_again_mbit "$(throughput $PROXIED)"
manual_down

echo "--- wgsplit daemon log (tail) ---"
tail -20 /tmp/wgsplit.log
for n in cli up inet; do wsi-netns del $n; done
finish
