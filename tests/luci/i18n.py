#!/usr/bin/env python3
"""Translation catalogue of luci-app-wgsplit.

  i18n.py scan        rewrite po/templates/wgsplit.pot from the JS sources
  i18n.py check       fail if the .pot is stale, or a .po misses/has extra msgids
                      or breaks a %-format placeholder

Strings are the first argument of _('…') / N_(…) calls (single or double
quoted, JS escapes), plus the menu titles, as LuCI's i18n-scan does.
"""
import json
import pathlib
import re
import shutil
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2] / "luci-app"
POT = ROOT / "po/templates/wgsplit.pot"
CALL = re.compile(r"""(?<![\w.])N?_\(\s*('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")""")


def js_unescape(lit):
    body = lit[1:-1]
    out, i = [], 0
    while i < len(body):
        c = body[i]
        if c == "\\" and i + 1 < len(body):
            n = body[i + 1]
            out.append({"n": "\n", "t": "\t", "\\": "\\", "'": "'", '"': '"'}.get(n, n))
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def scan():
    found = {}
    for p in sorted((ROOT / "htdocs").rglob("*.js")):
        for m in CALL.finditer(p.read_text()):
            found.setdefault(js_unescape(m.group(1)), p.relative_to(ROOT))
    for p in sorted((ROOT / "root/usr/share/luci/menu.d").glob("*.json")):
        for node in json.loads(p.read_text()).values():
            if "title" in node:
                found.setdefault(node["title"], p.relative_to(ROOT))
    return found


def po_quote(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t") + '"'


def po_unquote(s):
    s = s.strip()[1:-1]
    return re.sub(r'\\(.)', lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), s)


def write_pot(found):
    lines = ['msgid ""', 'msgstr "Content-Type: text/plain; charset=UTF-8"', ""]
    for msgid in sorted(found):
        lines += [f"#: {found[msgid]}", f"msgid {po_quote(msgid)}", 'msgstr ""', ""]
    POT.write_text("\n".join(lines))


def parse_po(path):
    entries, cur, key = {}, {}, None
    for raw in path.read_text().splitlines() + [""]:
        line = raw.strip()
        if not line:
            if "msgid" in cur:
                entries[cur["msgid"]] = cur.get("msgstr", "")
            cur, key = {}, None
        elif line.startswith("#"):
            continue
        elif line.startswith("msgid "):
            key = "msgid"
            cur[key] = po_unquote(line[6:])
        elif line.startswith("msgstr "):
            key = "msgstr"
            cur[key] = po_unquote(line[7:])
        elif line.startswith('"') and key:
            cur[key] += po_unquote(line)
        else:
            raise ValueError(f"{path}: cannot parse line: {raw}")
    entries.pop("", None)
    return entries


FMT = re.compile(r"%(?:\d+\$)?[-+ 0#]*\d*(?:\.\d+)?[a-zA-Z%]")


def check(found):
    problems = []
    if not POT.exists() or set(parse_po(POT)) != set(found):
        problems.append(f"{POT.relative_to(ROOT)} is stale: run tests/luci/i18n.py scan")
    for po in sorted((ROOT / "po").glob("*/wgsplit.po")):
        tr = parse_po(po)
        name = po.relative_to(ROOT)
        for msgid in sorted(set(found) - set(tr)):
            problems.append(f"{name}: missing {msgid!r}")
        for msgid in sorted(set(tr) - set(found)):
            problems.append(f"{name}: obsolete {msgid!r}")
        for msgid, msgstr in tr.items():
            if msgid in found and msgstr and sorted(FMT.findall(msgid)) != sorted(FMT.findall(msgstr)):
                problems.append(f"{name}: placeholders differ in {msgid!r} -> {msgstr!r}")
            # LuCI's String.format takes arguments in order only (no %1$s):
            # a translation keeps the English order of its placeholders
            if msgid in found and re.search(r"%\d+\$", msgstr):
                problems.append(f"{name}: LuCI has no numbered placeholders: {msgstr!r}")
            if msgid in found and not msgstr:
                problems.append(f"{name}: untranslated {msgid!r}")
        if shutil.which("msgfmt"):
            r = subprocess.run(["msgfmt", "-c", "-o", "/dev/null", str(po)], capture_output=True, text=True)
            if r.returncode != 0:
                problems.append(f"{name}: msgfmt -c: {r.stderr.strip()}")
    return problems


if __name__ == "__main__":
    found = scan()
    if sys.argv[1:] == ["scan"]:
        write_pot(found)
        print(f"{len(found)} strings -> {POT}")
    elif sys.argv[1:] == ["check"]:
        probs = check(found)
        for p in probs:
            print(p)
        sys.exit(1 if probs else 0)
    else:
        print(__doc__)
        sys.exit(2)
