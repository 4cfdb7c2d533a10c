#!/usr/bin/env bash
# Clients, upstreams and the REST API: the CLI on a scratch config, then the API
# over real HTTP on 127.0.0.1 (tests/api/api_test.py). No root needed.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --quiet
BIN=$PWD/target/debug/wgsplit
TMP=$(mktemp -d /tmp/wsa-cli.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
export WGSPLIT_API_TOKEN_FILE=$TMP/none/api.token WGSPLIT_RUN_DIR=$TMP/run
CFG=$TMP/wgsplit
# An interface name that exists nowhere: the CLI's live apply must find nothing to apply to.
sed "s/option interface 'wg0'/option interface 'wsa-none0'/" examples/wgsplit.conf > "$CFG"
fail=0
ok() { echo "  ok   $1"; }
bad() { echo "  FAIL $1"; fail=1; }
expect() { # expect "what" command...   (must succeed)
    local what=$1; shift
    if out=$("$@" 2>&1); then ok "$what"; else bad "$what: $out"; fi
}
refuse() { # refuse "what" "message part" command...   (must fail and say it)
    local what=$1 msg=$2; shift 2
    if out=$("$@" 2>&1); then bad "$what: succeeded"; elif [[ $out == *"$msg"* ]]; then ok "$what"; else bad "$what: $out"; fi
}
w() { "$BIN" -c "$CFG" "$@"; }

echo "- CLI"
expect "client add" w client add dave --upstream us1 --psk --quota 10G
grep -q "list address '10.8.0.5/32'" "$CFG" && ok "next free address" || bad "next free address"
expect "conf renders" bash -c "'$BIN' -c '$CFG' client conf dave | grep -q '^PresharedKey = '"
refuse "bad name" "is not a name" w client add "bad name"
refuse "taken name" "already used by an upstream" w client add us1
refuse "bad --default" "is not one of" w client add x --default sideways
refuse "outside the pool" "outside the server pool" w client add x --address 10.9.0.9/32
refuse "unknown client" "no client named" w client conf nobody
expect "qr svg" bash -c "'$BIN' -c '$CFG' client qr dave --format svg | grep -q '^<svg'"
expect "qr png" w client qr dave --format png -o "$TMP/dave.png"
if command -v zbarimg >/dev/null; then
    if [ "$(zbarimg --raw -q "$TMP/dave.png" 2>/dev/null)" = "$(w client conf dave)" ]; then ok "PNG decodes to the config"; else bad "PNG decode"; fi
fi
expect "disable" w client disable dave
grep -A8 "'dave'" "$CFG" | grep -q "option enabled '0'" && ok "disabled in the file" || bad "disabled in the file"
expect "dns guard off" w client set dave --dns-guard off
grep -A12 "'dave'" "$CFG" | grep -q "option dns_guard '0'" && ok "dns_guard '0' written" || bad "dns_guard '0' written"
expect "dns guard on" w client set dave --dns-guard on
grep -A12 "'dave'" "$CFG" | grep -q "dns_guard" && bad "dns_guard back to the default" || ok "dns_guard back to the default"
refuse "bad --dns-guard" "is not one of: on, off" w client set dave --dns-guard maybe
expect "rename" w client rename dave david
expect "set expiry" w client set david --expires 2020-01-01
# grep reads it all (no -q): under pipefail, wgsplit must not meet a closed pipe.
w client list | grep "^david .*expired" >/dev/null && ok "expired shown" || bad "expired shown: $(w client list)"
w client list | grep -E "^alice +10\.8\.0\.2/32,fd42:8::2/128 " >/dev/null && ok "client list shows IPv6 too" || bad "client list IPv6: $(w client list)"
expect "upstream import" w upstream import se1 tests/api/provider.conf --on-down failover --failover us1
w upstream show se1 | grep '"on_down": "failover"' >/dev/null && ok "import options kept" || bad "import options"
refuse "upstream in use" "still used by client alice" w upstream remove us1
refuse "two peers" "2 [Peer] sections" bash -c "cat tests/api/provider.conf tests/api/provider.conf | '$BIN' -c '$CFG' upstream import se2 -"
expect "remove client" w client remove david
expect "config still valid" w config check

echo "- API over HTTP"
python3 tests/api/api_test.py "$BIN" || fail=1

echo "- end to end in network namespaces (root)"
if [ "$(id -u)" -eq 0 ]; then
    bash tests/api/e2e.sh "$BIN" 2>&1 | grep -v "got unsupported info" || fail=1
else
    echo "  skipped: needs root"
fi
exit $fail
