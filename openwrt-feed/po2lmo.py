#!/usr/bin/env python3
"""Compile a gettext .po file into LuCI's binary .lmo catalog, for build-ipk.sh.

  po2lmo.py INPUT.po OUTPUT.lmo

The .lmo layout LuCI reads (luci-base's lmo loader):
  strings   every translation (and the header's Plural-Forms value), each
            padded with NULs to a multiple of 4 bytes, in .po order;
  index     one 16-byte record per string, sorted by key: key hash, value
            id (plural index + 1; 0 for the Plural-Forms record), offset,
            length - big-endian uint32s;
  trailer   the index's offset, big-endian uint32.
Keys are Paul Hsieh's SuperFastHash of the msgid (with "ctx\\1" in front for
msgctxt and "\\2N" after for plural form N), seeded with its length. As in
LuCI's own compiler, strings keep escapes other than \\" and \\\\ verbatim, and a
translation equal to its msgid is left out.
"""
import struct
import sys


def sfh_hash(data: bytes, init: int) -> int:
    """SuperFastHash over bytes, 32-bit; trailing odd bytes are read as signed chars."""
    m = 0xFFFFFFFF
    h = init & m
    n = len(data)
    if n == 0:
        return 0
    rem = n & 3
    i = 0
    for _ in range(n >> 2):
        h = (h + (data[i] | data[i + 1] << 8)) & m
        tmp = (((data[i + 2] | data[i + 3] << 8) << 11) ^ h) & m
        h = ((h << 16) ^ tmp) & m
        i += 4
        h = (h + (h >> 11)) & m

    def sc(b):
        return b - 256 if b > 127 else b

    if rem == 3:
        h = (h + (data[i] | data[i + 1] << 8)) & m
        h ^= (h << 16) & m
        h ^= (sc(data[i + 2]) << 18) & m
        h = (h + (h >> 11)) & m
    elif rem == 2:
        h = (h + (data[i] | data[i + 1] << 8)) & m
        h ^= (h << 11) & m
        h = (h + (h >> 17)) & m
    elif rem == 1:
        h = (h + sc(data[i])) & m
        h ^= (h << 10) & m
        h = (h + (h >> 1)) & m

    h ^= (h << 3) & m
    h = (h + (h >> 5)) & m
    h ^= (h << 4) & m
    h = (h + (h >> 17)) & m
    h ^= (h << 25) & m
    h = (h + (h >> 6)) & m
    return h


def po_string(line: str) -> bytes:
    """The text between the first pair of double quotes; \\" and \\\\ unescaped, other escapes kept."""
    start = line.index('"') + 1
    out, i = [], start
    while i < len(line):
        c = line[i]
        if c == "\\" and i + 1 < len(line):
            nxt = line[i + 1]
            out.append(nxt if nxt in '"\\' else c + nxt)
            i += 2
            continue
        if c == '"':
            break
        out.append(c)
        i += 1
    return "".join(out).encode()


def parse(text: str):
    """[(ctxt, msgid, msgid_plural, {n: msgstr})] in file order."""
    msgs, cur, field = [], None, None

    def flush():
        if cur and (cur["id"] is not None or cur["str"]):
            msgs.append(cur)

    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("msgctxt "):
            flush()
            cur, field = {"ctxt": b"", "id": None, "plural": None, "str": {}}, "ctxt"
            cur["ctxt"] = po_string(line)
        elif line.startswith("msgid "):
            if cur is None or cur["id"] is not None or cur["str"]:
                flush()
                cur = {"ctxt": None, "id": None, "plural": None, "str": {}}
            field = "id"
            cur["id"] = po_string(line)
        elif line.startswith("msgid_plural "):
            field = "plural"
            cur["plural"] = po_string(line)
        elif line.startswith("msgstr"):
            n = int(line[7:line.index("]")]) if line.startswith("msgstr[") else 0
            field = ("str", n)
            cur["str"][n] = po_string(line)
        elif line.startswith('"') and cur is not None and field is not None:
            if isinstance(field, tuple):
                cur["str"][field[1]] += po_string(line)
            else:
                cur[field] += po_string(line)
    flush()
    return msgs


def compile_lmo(text: str) -> bytes:
    strings, index = bytearray(), []

    def put(key_id, val_id, value):
        index.append((key_id, val_id, len(strings), len(value)))
        strings.extend(value + b"\0" * ((4 - len(value) % 4) % 4))

    for m in parse(text):
        if m["id"] == b"" and m["ctxt"] is None:
            # the header: only its Plural-Forms value is kept
            for field in m["str"].get(0, b"").split(b"\\n"):
                if field.lower().startswith(b"plural-forms: "):
                    put(0, 0, field[14:])
                    break
            continue
        for n in sorted(m["str"]):
            val = m["str"][n]
            if not val:
                continue
            key = m["id"]
            if m["ctxt"] is not None:
                key = m["ctxt"] + b"\1" + key
            if m["plural"] is not None:
                key += b"\2" + str(n).encode()
            key_id = sfh_hash(key, len(key))
            if key_id != sfh_hash(val, len(val)):
                put(key_id, (max(m["str"]) if m["plural"] is not None else 0) + 1, val)

    if not strings:
        return b""
    out = bytearray(strings)
    for rec in sorted(index, key=lambda r: r[0]):
        out += struct.pack(">IIII", *rec)
    out += struct.pack(">I", len(strings))
    return bytes(out)


def main(argv):
    if len(argv) != 3:
        print(__doc__.split("\n\n")[0], file=sys.stderr)
        return 2
    data = compile_lmo(open(argv[1], encoding="utf-8").read())
    if not data:
        print(f"po2lmo: nothing to write for {argv[1]}", file=sys.stderr)
        return 1
    with open(argv[2], "wb") as f:
        f.write(data)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
