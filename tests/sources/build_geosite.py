#!/usr/bin/env python3
"""Builds a v2fly geosite.dat from a domain-list-community `data` folder.

Test-data tool (an independent encoder, so the Rust reader is checked against
something it did not write). Usage: build_geosite.py DATA_DIR OUT [CATEGORY...]
(no categories: every file). Includes and their @attr / @-attr filters are
resolved here, as upstream's builder does; attributes are kept on each domain.
"""
import os
import sys

KINDS = {"keyword": 0, "regexp": 1, "domain": 2, "full": 3}


def varint(v):
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def field_bytes(num, data):
    return varint(num << 3 | 2) + varint(len(data)) + data


def field_uint(num, v):
    return varint(num << 3) + varint(v)


def parse(data_dir, name, stack=()):
    """Entries of list `name` as [(kind, value, attrs)], includes resolved."""
    if name in stack:
        raise SystemExit(f"include cycle at {name}")
    out = []
    includes = []
    with open(os.path.join(data_dir, name), encoding="utf-8") as f:
        for raw in f:
            line = raw.strip()
            # A comment starts at '#' at the line start or after a space.
            cut = [i for i, c in enumerate(line) if c == "#" and (i == 0 or line[i - 1].isspace())]
            if cut:
                line = line[: cut[0]].strip()
            if not line:
                continue
            words = line.split()
            if words[0].startswith("include:"):
                filters = []
                for w in words[1:]:
                    a = w[1:]
                    filters.append((a[1:], False) if a.startswith("-") else (a, True))
                includes.append((words[0][len("include:"):].lower(), filters))
                continue
            kind, _, value = words[0].partition(":")
            if not value:
                kind, value = "domain", words[0]
            attrs = [w[1:].lower() for w in words[1:] if w.startswith("@")]
            if kind in ("domain", "full", "keyword"):
                value = value.lower()
            out.append((kind, value, attrs))
    for target, filters in includes:
        for kind, value, attrs in parse(data_dir, target, stack + (name,)):
            if all((a in attrs) == want for a, want in filters):
                out.append((kind, value, attrs))
    return out


def encode(name, entries):
    body = field_bytes(1, name.upper().encode())
    seen = set()
    for kind, value, attrs in entries:
        key = (kind, value)
        if key in seen:
            continue
        seen.add(key)
        d = field_uint(1, KINDS[kind]) + field_bytes(2, value.encode())
        for a in attrs:
            d += field_bytes(3, field_bytes(1, a.encode()) + field_uint(2, 1))
        body += field_bytes(2, d)
    return field_bytes(1, body)


def main():
    data_dir, out = sys.argv[1], sys.argv[2]
    names = sys.argv[3:] or sorted(os.listdir(data_dir))
    with open(out + ".tmp", "wb") as f:
        for name in names:
            f.write(encode(name, parse(data_dir, name)))
    os.replace(out + ".tmp", out)


if __name__ == "__main__":
    main()
