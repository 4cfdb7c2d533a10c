#!/usr/bin/env bash
# Attack: a config editor turns `lists update` into a root file write or read.
# A list's path at /etc/rc.local, outside wgsplit's folders, through a symlink
# (file or folder), over a file wgsplit did not write; a file:// URL reading
# outside the allowed folders (directly or through a symlink); a secret's
# line echoed back in an error. Each must be refused with the field named,
# and no byte written where the attacker pointed.
# Runs as any user, on files only (no network).
set -uo pipefail
BIN=$(realpath "${1:-target/debug/wgsplit}")
TMP=$(mktemp -d /tmp/wshl-files.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
ROOT=$TMP/root            # wgsplit's folder for this test
export WGSPLIT_LIST_ROOTS=$ROOT
mkdir -p "$ROOT/lists" "$ROOT/src" "$TMP/victim" "$TMP/outside"
fails=0
ok() { echo "  ok   $1"; }
bad() { echo "  FAIL $1"; fails=$((fails + 1)); }

# A v2fly list whose payload is a shell command: if it lands as rc.local it runs at boot.
# (A valid v2fly list: the regexp is kept as written, a shell runs it.)
printf 'domain:example.com\nregexp:$(touch${IFS}/tmp/wshl-pwned)\n' > "$ROOT/src/payload.txt"
printf 'root:$6$SECRET-HASH-LINE:19000:0:99999:7:::\n' > "$TMP/outside/shadow"
printf '#!/bin/sh\nexit 0\n' > "$TMP/victim/rc.local"
touch -d '2020-01-01' "$TMP/victim/rc.local"
fingerprint() { stat -c '%s %Y %i' "$1" 2>/dev/null; sha256sum "$1" 2>/dev/null | cut -c1-16; }
VICTIM_BEFORE=$(fingerprint "$TMP/victim/rc.local")
victim_untouched() {
    [ "$(fingerprint "$TMP/victim/rc.local")" = "$VICTIM_BEFORE" ] && [ ! -e /tmp/wshl-pwned ]
}

config() { # list path, url → $TMP/wgsplit
    cat > "$TMP/wgsplit" <<CFG
config server
	option address 10.9.0.1/24
	option private_key '4EqAuesGDDDllVFRw6LW42qz0RGOaO4UN+emBozZgU0='
config geoip 'geoip'
	option path '$ROOT/src/none-ipv4.csv'
	option format 'csv'
	option dir '$ROOT/state'
	option update_hours '0'
config list 'evil'
	option path '$1'
	option format 'v2fly'
	option url '$2'
CFG
}
printf '1.0.0.0,1.0.0.255,US\n' > "$ROOT/src/none-ipv4.csv"

refused_by_check() { # what, field, path, url [update: run lists update too]
    config "$3" "$4"
    local out
    if out=$("$BIN" -c "$TMP/wgsplit" config check 2>&1); then
        bad "$1: config check accepted it"
    elif [[ $out != *"$2"* ]]; then
        bad "$1: config check did not name $2: $out"
    else
        ok "$1: config check refuses ($(grep -m1 -o "$2.*" <<<"$out" | cut -c1-90))"
    fi
    # And lists update (which reads the config the same way) writes nothing.
    # Not for targets on this machine's /etc: an old binary would really write there.
    [ "${5:-}" = update ] || return
    "$BIN" -c "$TMP/wgsplit" lists update --no-kernel >/dev/null 2>&1
    victim_untouched && ok "$1: nothing written" || bad "$1: the victim changed"
}

refused_by_update() { # what, words expected in the error, path, url
    config "$3" "$4"
    local out
    if ! out=$("$BIN" -c "$TMP/wgsplit" config check 2>&1); then
        bad "$1: config check refused what only the update can see: $out"
    fi
    if out=$("$BIN" -c "$TMP/wgsplit" lists update --no-kernel 2>&1); then
        bad "$1: lists update accepted it"
    elif [[ $out != *"list evil"* || $out != *"$2"* ]]; then
        bad "$1: the error does not name list evil / '$2': $out"
    else
        ok "$1: lists update refuses ($(grep -m1 -o "list evil.*" <<<"$out" | cut -c1-110))"
    fi
    victim_untouched && ok "$1: nothing written" || bad "$1: the victim changed"
}

echo "--- config check: paths and file:// URLs outside wgsplit's folders"
refused_by_check "path /etc/rc.local" "evil.path" /etc/rc.local "file://$ROOT/src/payload.txt"
refused_by_check "path outside the folders" "evil.path" "$TMP/victim/rc.local" "file://$ROOT/src/payload.txt" update
refused_by_check "path climbing out with .." "evil.path" "$ROOT/lists/../../victim/rc.local" "file://$ROOT/src/payload.txt" update
refused_by_check "file:///etc/shadow" "evil.url" "$ROOT/lists/evil.txt" "file:///etc/shadow"
refused_by_check "file:// outside the folders" "evil.url" "$ROOT/lists/evil.txt" "file://$TMP/outside/shadow" update
[ ! -e "$ROOT/lists/evil.txt" ] && ok "no list file was made from a refused URL" || bad "evil.txt written"

echo "--- lists update: what only the file system shows"
ln -s "$TMP/victim/rc.local" "$ROOT/lists/link.txt"
refused_by_update "path is a symlink to the victim" "symbolic link" "$ROOT/lists/link.txt" "file://$ROOT/src/payload.txt"
[ -L "$ROOT/lists/link.txt" ] && ok "the symlink is left as it was" || bad "the symlink was replaced"
ln -s "$TMP/victim" "$ROOT/linked-dir"
refused_by_update "path in a symlinked folder" "outside" "$ROOT/linked-dir/rc.local" "file://$ROOT/src/payload.txt"
printf 'mine.example\n' > "$ROOT/lists/manual.txt"
MANUAL=$(fingerprint "$ROOT/lists/manual.txt")
refused_by_update "path over a file wgsplit did not write" "not written by wgsplit" "$ROOT/lists/manual.txt" "file://$ROOT/src/payload.txt"
[ "$(fingerprint "$ROOT/lists/manual.txt")" = "$MANUAL" ] && ok "that file is unchanged" || bad "manual.txt changed"
ln -s "$TMP/outside/shadow" "$ROOT/src/shadow-link"
refused_by_update "file:// through a symlink to a secret" "leads outside" "$ROOT/lists/evil.txt" "file://$ROOT/src/shadow-link"
[ ! -e "$ROOT/lists/evil.txt" ] && ok "the secret was not copied" || bad "the secret was copied into the lists folder"

echo "--- a list's bad line is reported without its text"
cp "$TMP/outside/shadow" "$ROOT/src/secret.txt"
config "$ROOT/lists/secret.txt" "file://$ROOT/src/secret.txt"
sed -i "s/format 'v2fly'/format 'cidr'/" "$TMP/wgsplit"
out=$("$BIN" -c "$TMP/wgsplit" lists update --no-kernel 2>&1)
show=$("$BIN" -c "$TMP/wgsplit" lists show 2>&1; cat "$ROOT/state/state.json" 2>/dev/null)
if [[ "$out$show" == *SECRET* || "$out$show" == *root:* ]]; then
    bad "the error quotes the file: $(grep -m1 -o '.*SECRET.*' <<<"$out$show")"
elif [[ $out == *"list evil"* ]]; then
    ok "refused without quoting it ($(grep -m1 -o 'list evil.*' <<<"$out" | cut -c1-100))"
else
    bad "a secret as a cidr list was not refused: $out"
fi

echo "--- the legitimate path still works"
config "$ROOT/lists/good.txt" "file://$ROOT/src/payload.txt"
sed -i "s/payload.txt/good.txt/; s/format 'v2fly'/format 'domains'/" "$TMP/wgsplit"
printf 'example.com\nexample.org\n' > "$ROOT/src/good.txt"
if out=$("$BIN" -c "$TMP/wgsplit" lists update --no-kernel 2>&1) && [ -f "$ROOT/lists/good.txt" ] && [ ! -L "$ROOT/lists/good.txt" ]; then
    ok "a list inside the folder is downloaded ($(grep -m1 'list evil' <<<"$out"))"
else
    bad "a good list failed: $out"
fi
printf 'example.com\nexample.org\nexample.net\n' > "$ROOT/src/good.txt"
if "$BIN" -c "$TMP/wgsplit" lists update --no-kernel >/dev/null 2>&1 && grep -q example.net "$ROOT/lists/good.txt"; then
    ok "and replaced by the next update (a file wgsplit wrote)"
else
    bad "the second update of a good list failed"
fi
left=$(find "$ROOT" -name '*.part' | wc -l)
[ "$left" = 0 ] && ok "no part files left behind" || bad "$left part files left"
exit $((fails > 0))
