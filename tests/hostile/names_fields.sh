#!/usr/bin/env bash
# Attack: names that reach nft text, netlink or a shell. Every name field
# (section names of clients, upstreams, rules and lists; interface names;
# every reference to another section; country codes, which become set names)
# given a '"', a ';' or a space — by UCI and by JSON import — must be refused
# by `config check` / `config import` naming that field, with nothing
# written; and the planned nft text never carries such a name. Files only.
set -uo pipefail
BIN=$(realpath "${1:-target/debug/wgsplit}")
cd "$(dirname "$0")/../.."
TMP=$(mktemp -d /tmp/wshl-names.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
export WGSPLIT_LIST_ROOTS=$TMP
cp examples/wgsplit.conf "$TMP/wgsplit"
cat >> "$TMP/wgsplit" <<CFG

config list 'office'
	option path '$TMP/office.txt'
	option format 'cidr'
CFG
printf '192.0.2.0/24\n' > "$TMP/office.txt"
if ! out=$("$BIN" -c "$TMP/wgsplit" config check 2>&1); then
    echo "  FAIL the base config is not valid: $out"; exit 1
fi
"$BIN" -c "$TMP/wgsplit" config export > "$TMP/base.json"
python3 - "$BIN" "$TMP" <<'PY'
import copy, hashlib, json, os, subprocess, sys
bin, tmp = sys.argv[1], sys.argv[2]
cfg_path = os.path.join(tmp, "wgsplit")
base = json.load(open(os.path.join(tmp, "base.json")))
uci_base = open(cfg_path).read()
digest = lambda: hashlib.sha256(open(cfg_path, "rb").read()).hexdigest()
before = digest()
fails = 0
def ok(m): print("  ok   " + m)
def bad(m):
    global fails
    fails += 1
    print("  FAIL " + m)

# (JSON location, the option named in the problem). The problem path is
# `<section>.<option>`; for a renamed section the section is the bad name.
def at(c, where):
    kind, i = where
    return c["server"] if kind == "server" else c[kind][i]
fields = [
    (("server", 0), "interface"),
    (("upstreams", 0), "interface"),
    (("upstreams", 0), "name"),
    (("upstreams", 1), "failover"),
    (("clients", 0), "name"),
    (("clients", 0), "upstream"),
    (("rules", 0), "name"),
    (("rules", 0), "client"),
    (("rules", 0), "upstream"),
    (("rules", 0), "list"),
    (("rules", 0), "geoip"),
    (("lists", 0), "name"),
]
values = ['x";drop#', "a;b", "a b", "wg0 ", "x\"y"]
for where, option in fields:
    for v in values:
        c = copy.deepcopy(base)
        sec = at(c, where)
        sec[option] = [v] if option in ("list", "geoip") else v
        f = os.path.join(tmp, "in.json")
        json.dump(c, open(f, "w"))
        r = subprocess.run([bin, "-c", cfg_path, "config", "import", f], capture_output=True, text=True)
        out = r.stdout + r.stderr
        named = [l for l in out.splitlines() if f".{option}:" in l and (option != "name" or v in l)]
        label = f"{where[0]}[{where[1]}].{option} = {v!r}"
        if r.returncode == 0:
            bad(f"{label}: imported")
        elif not named:
            bad(f"{label}: refused without naming {option}: {out.strip()[:200]}")
        elif digest() != before:
            bad(f"{label}: the config file changed")
        else:
            ok(f"{label}: refused by import ({named[0].strip()[:90]})")
        if digest() != before:  # keep the cases apart
            open(cfg_path, "w").write(uci_base)

# UCI: the same through config check, for options holding names.
uci_fields = [
    ("\toption interface 'wg0'", "\toption interface '{}'", "server.interface"),
    ("\toption interface 'wgs_us1'", "\toption interface '{}'", "us1.interface"),
    ("\toption failover 'us1'", "\toption failover '{}'", "eu1.failover"),
    ("\toption upstream 'us1'", "\toption upstream '{}'", "alice.upstream"),
]
for old, new, field in uci_fields:
    for v in values:
        text = uci_base.replace(old, new.format(v.replace("'", "")), 1)
        assert text != uci_base, old
        f = os.path.join(tmp, "bad.uci")
        open(f, "w").write(text)
        r = subprocess.run([bin, "-c", f, "config", "check"], capture_output=True, text=True)
        out = r.stdout + r.stderr
        if r.returncode != 0 and f"{field}:" in out:
            ok(f"UCI {field} = {v!r}: refused by config check")
        else:
            bad(f"UCI {field} = {v!r}: {out.strip()[:200] or 'accepted'}")
        # The plan is never made from it.
        r = subprocess.run([bin, "-c", f, "apply", "--dry-run"], capture_output=True, text=True)
        if r.returncode == 0 or "drop#" in r.stdout:
            bad(f"UCI {field} = {v!r}: apply --dry-run planned it")
# Section names in UCI are refused by the parser, by line.
for v in ['x";drop#', "a;b", "a b"]:
    text = uci_base.replace("config client 'alice'", f"config client '{v}'", 1)
    f = os.path.join(tmp, "bad.uci")
    open(f, "w").write(text)
    r = subprocess.run([bin, "-c", f, "config", "check"], capture_output=True, text=True)
    if r.returncode != 0 and "section name" in r.stderr:
        ok(f"UCI section name {v!r}: refused ({r.stderr.strip()[:70]})")
    else:
        bad(f"UCI section name {v!r}: {r.stderr.strip()[:200] or 'accepted'}")
sys.exit(1 if fails else 0)
PY
