#!/usr/bin/env bash
# Attack: a hostile list server. An endless (or merely huge) download must be
# cut at the source's size cap while it runs, not after filling the router's
# tmpfs; a file that is not the one pinned by `sha256` must be refused. Either
# way nothing is written where the list lives. The server is python on
# 127.0.0.1 (loopback only), counting what it managed to send.
set -uo pipefail
BIN=$(realpath "${1:-target/debug/wgsplit}")
TMP=$(mktemp -d /tmp/wshl-dl.XXXXXX)
SERVER_PID=
cleanup() {
    [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT
ROOT=$TMP/root
export WGSPLIT_LIST_ROOTS=$ROOT
mkdir -p "$ROOT/lists" "$ROOT/state"
printf '1.0.0.0,1.0.0.255,US\n' > "$ROOT/none-ipv4.csv"
fails=0
ok() { echo "  ok   $1"; }
bad() { echo "  FAIL $1"; fails=$((fails + 1)); }

# /trickle: a byte a second; /endless: 64 KB lines of domains, up to 400 MB, no Content-Length; /list: a
# small good list. The bytes actually sent are written to sent-<path>.
cat > "$TMP/serve.py" <<'PY'
import http.server, os, sys, time
out = sys.argv[1]
class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        sent = 0
        try:
            if self.path == "/trickle":
                # A byte a second for two minutes: never idle long enough
                # for a read timeout, never done.
                for b in b"a.example\n" * 12:
                    self.wfile.write(bytes([b]))
                    self.wfile.flush()
                    sent += 1
                    time.sleep(1)
            elif self.path == "/endless":
                chunk = b"".join(b"d%07d.example.com\n" % i for i in range(3400))
                while sent < 400 << 20:
                    self.wfile.write(chunk)
                    sent += len(chunk)
            else:
                data = b"example.com\nexample.org\n"
                self.wfile.write(data)
                sent = len(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
        with open(os.path.join(out, "sent-" + self.path.strip("/")), "w") as f:
            f.write(str(sent))
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
with open(os.path.join(out, "port"), "w") as f:
    f.write(str(s.server_address[1]))
s.serve_forever()
PY
python3 "$TMP/serve.py" "$TMP" &
SERVER_PID=$!
for _ in $(seq 50); do [ -s "$TMP/port" ] && break; sleep 0.1; done
PORT=$(cat "$TMP/port")

config() { # url, extra list options
    cat > "$TMP/wgsplit" <<CFG
config server
	option address 10.9.0.1/24
	option private_key '4EqAuesGDDDllVFRw6LW42qz0RGOaO4UN+emBozZgU0='
config geoip 'geoip'
	option path '$ROOT/none-ipv4.csv'
	option format 'csv'
	option dir '$ROOT/state'
	option update_hours '0'
config list 'big'
	option path '$ROOT/lists/big.txt'
	option url '$1'
$2
CFG
}

echo "--- an endless download against max_size 1M"
config "http://127.0.0.1:$PORT/endless" "	option max_size '1M'"
start=$(date +%s%N)
out=$(timeout 60 "$BIN" -c "$TMP/wgsplit" lists update --no-kernel 2>&1)
took=$(( ($(date +%s%N) - start) / 1000000 ))
for _ in $(seq 100); do [ -s "$TMP/sent-endless" ] && break; sleep 0.1; done
sent=$(cat "$TMP/sent-endless" 2>/dev/null || echo 0)
if [[ $out == *"list big"*"larger than 1048576 bytes"* ]]; then
    ok "refused naming the list and the cap ($(grep -m1 -o 'list big.*' <<<"$out" | cut -c1-90))"
else
    bad "not refused for its size: $out"
fi
# The cap holds while downloading: the server got to send the cap plus what
# the socket buffers held (a few MB on loopback), not 400 MB.
[ "$sent" -gt 0 ] && [ "$sent" -lt $((32 << 20)) ] && ok "the download was cut while running: $((sent >> 10)) KiB sent of 400 MiB, in $took ms" ||
    bad "the server sent $((sent >> 20)) MiB before the cap was applied ($took ms)"
[ ! -e "$ROOT/lists/big.txt" ] && ok "no list file written" || bad "big.txt written ($(stat -c %s "$ROOT/lists/big.txt") bytes)"
left=$(find "$ROOT" -name '*.part' -o -name '*.download' | wc -l)
[ "$left" = 0 ] && ok "no partial download left" || bad "$left partial downloads left"

echo "--- the default cap without max_size"
config "http://127.0.0.1:$PORT/endless" ""
rm -f "$TMP/sent-endless"
out=$(timeout 60 "$BIN" -c "$TMP/wgsplit" lists update --no-kernel 2>&1)
for _ in $(seq 100); do [ -s "$TMP/sent-endless" ] && break; sleep 0.1; done
sent=$(cat "$TMP/sent-endless" 2>/dev/null || echo 0)
if [[ $out == *"larger than $((32 << 20)) bytes"* ]] && [ "$sent" -lt $((64 << 20)) ] && [ ! -e "$ROOT/lists/big.txt" ]; then
    ok "cut at the default 32 MiB ($((sent >> 20)) MiB sent)"
else
    bad "default cap: sent $((sent >> 20)) MiB: $out"
fi

echo "--- a download that trickles (a byte a second) against a 3 s deadline"
# The tools' own timeouts are idle timeouts (wget, uclient-fetch -T 60): a
# server that never pauses that long holds the update, and with it the lists
# service, for ever. WGSPLIT_DOWNLOAD_SECONDS shortens the 600 s deadline.
config "http://127.0.0.1:$PORT/trickle" ""
start=$(date +%s%N)
out=$(WGSPLIT_DOWNLOAD_SECONDS=3 timeout 30 "$BIN" -c "$TMP/wgsplit" lists update --no-kernel 2>&1)
took=$(( ($(date +%s%N) - start) / 1000000 ))
if [ "$took" -lt 10000 ] && [[ $out == *"list big"*"3 s"* ]] && [ ! -e "$ROOT/lists/big.txt" ]; then
    ok "cut at the deadline after $took ms, nothing written ($(grep -m1 -o 'did not finish.*' <<<"$out" | cut -c1-60))"
else
    bad "a trickling download ran $took ms (deadline 3 s): $(tail -c 300 <<<"$out")"
fi

echo "--- sha256 pin"
good=$(printf 'example.com\nexample.org\n' | sha256sum | cut -d' ' -f1)
wrong=$(printf 'something else' | sha256sum | cut -d' ' -f1)
config "http://127.0.0.1:$PORT/list" "	option sha256 '$wrong'"
out=$("$BIN" -c "$TMP/wgsplit" lists update --no-kernel 2>&1)
if [[ $out == *"list big"*"sha256"* ]] && [ ! -e "$ROOT/lists/big.txt" ]; then
    ok "a mismatch is refused, nothing written ($(grep -m1 -o 'sha256 is.*' <<<"$out" | cut -c1-40)…)"
else
    bad "a mismatching file was accepted: $out"
fi
config "http://127.0.0.1:$PORT/list" "	option sha256 'not-hex'"
out=$("$BIN" -c "$TMP/wgsplit" config check 2>&1)
[[ $out == *"big.sha256"* ]] && ok "config check names a malformed pin" || bad "malformed pin: $out"
config "http://127.0.0.1:$PORT/list" "	option sha256 '${good^^}'"
if out=$("$BIN" -c "$TMP/wgsplit" lists update --no-kernel 2>&1) && [ -f "$ROOT/lists/big.txt" ]; then
    ok "the pinned file is accepted (hex in either case)"
else
    bad "the pinned file was refused: $out"
fi
config "http://127.0.0.1:$PORT/list" "	option max_size '1G'"
out=$("$BIN" -c "$TMP/wgsplit" config check 2>&1)
[[ $out == *"big.max_size"* ]] && ok "max_size above the hard maximum is refused by config check" || bad "max_size 1G: $out"
exit $((fails > 0))
