#!/usr/bin/env python3
"""Writes the committed seed corpus of the fuzz targets (daemon/fuzz/corpus/<target>/).

A handful of small, valid (and a few nearly valid) inputs per target, so a short
CI run starts where the parsers do real work instead of spending its seconds
discovering the input format. tests/fuzz.sh copies these to a scratch folder
before each run, so fuzzing never grows the committed files.

Usage (from anywhere): python3 daemon/fuzz/corpus/generate.py [WGSPLIT_BINARY]
The binary (default target/debug/wgsplit, build it first) turns the good config
fixtures into JSON for json_import. The output is deterministic: re-running it
on an unchanged tree leaves git status clean. Every seed stays under the
4096-byte -max_len that tests/fuzz.sh gives libFuzzer (longer seeds would be cut).
"""
import os
import shutil
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
FIXTURES = os.path.join(REPO, "daemon", "tests", "fixtures", "config")
MAX_LEN = 4096


def reset(target):
    d = os.path.join(HERE, target)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    return d


def put(d, name, data):
    if isinstance(data, str):
        data = data.encode()
    assert len(data) <= MAX_LEN, f"{name}: {len(data)} bytes is over -max_len {MAX_LEN}"
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def fixtures():
    for kind in ("good", "bad"):
        for name in sorted(os.listdir(os.path.join(FIXTURES, kind))):
            yield kind, name, os.path.join(FIXTURES, kind, name)


def uci_parse():
    d = reset("uci_parse")
    for kind, name, path in fixtures():
        with open(path, "rb") as f:
            put(d, f"{kind}-{name}", f.read())


def json_import(binary):
    d = reset("json_import")
    for kind, name, path in fixtures():
        if kind != "good":
            continue
        out = subprocess.run([binary, "-c", path, "config", "export"],
                             check=True, capture_output=True).stdout
        put(d, f"good-{name[:-4]}.json", out)
    # Well-formed JSON that import or check must refuse.
    put(d, "bad-empty.json", "{}\n")
    put(d, "bad-unknown-field.json",
        '{"server": {"address": "10.9.0.1/24", "private_key": '
        '"4EqAuesGDDDllVFRw6LW42qz0RGOaO4UN+emBozZgU0=", "colour": "blue"}}\n')
    put(d, "bad-types.json",
        '{"server": {"address": ["10.9.0.1/24"], "private_key": 7}, "clients": {"a": null}}\n')


# --- DNS messages (RFC 1035) -------------------------------------------------

def qname(name):
    out = b""
    for label in name.split("."):
        if label:
            out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def header(qid, flags, qd=1, an=0, ns=0, ar=0):
    return struct.pack(">HHHHHH", qid, flags, qd, an, ns, ar)


OPT = b"\0" + struct.pack(">HHIH", 41, 1232, 0, 0)  # EDNS0, 1232-byte UDP limit
OPT_COOKIE = b"\0" + struct.pack(">HHIH", 41, 4096, 0x8000, 12) + struct.pack(">HH", 10, 8) + b"\x01" * 8


def query(qid, name, qtype, opt=OPT):
    return header(qid, 0x0100, ar=1 if opt else 0) + qname(name) + struct.pack(">HH", qtype, 1) + opt


def rr(owner, rtype, ttl, rdata):
    return owner + struct.pack(">HHIH", rtype, 1, ttl, len(rdata)) + rdata


def pair(name, qtype, answer_rrs, flags=0x8180, authority=b"", ns=0):
    """The dns_request layout: byte 0 is the split point, data[..cut] the query and
    data[cut..] the upstream's answer. The cut byte is also the query ID's high byte,
    so the ID is chosen to make it equal the query's length."""
    probe = query(0, name, qtype)
    qid = len(probe) << 8 | 0x34
    assert len(probe) < 256
    q = query(qid, name, qtype)
    question = qname(name) + struct.pack(">HH", qtype, 1)
    body = b"".join(answer_rrs)
    a = header(qid, flags, an=len(answer_rrs), ns=ns, ar=1) + question + body + authority + OPT
    return q + a


PTR_Q = b"\xc0\x0c"  # a compression pointer to the question's name


def dns_request(target="dns_request"):
    """Also the seeds of dns_oracle, which reads the same layout."""
    d = reset(target)
    put(d, "query-a-edns", query(0x1234, "www.netflix.com", 1))
    put(d, "query-aaaa-plain", query(0x2345, "ipv6.example.org", 28, opt=b""))
    put(d, "query-https-cookie", query(0x3456, "svc.example", 65, opt=OPT_COOKIE))
    # Names the fuzz target's config blocks: exact, suffix (*.a), full (=b).
    put(d, "query-blocked-exact", query(0x4567, "ads.example", 1))
    put(d, "query-blocked-suffix", query(0x5678, "deep.x.a", 28))
    put(d, "query-blocked-full", query(0x6789, "b", 1))
    put(d, "query-mixed-case", query(0x789A, "WwW.ExAmPlE.CoM", 1))
    put(d, "query-truncated", query(0x89AB, "cut.example", 1)[:20])
    put(d, "pair-a", pair("a.ads.example", 1, [rr(PTR_Q, 1, 300, bytes([1, 2, 3, 4]))]))
    put(d, "pair-aaaa-two", pair("v6.example", 28, [
        rr(PTR_Q, 28, 60, bytes.fromhex("20010db8000000000000000000000001")),
        rr(PTR_Q, 28, 60, bytes.fromhex("20010db8000000000000000000000002")),
    ]))
    # A CNAME chain through compressed names, then the address.
    # The CNAME's target starts after the header, the question and the first
    # record's fixed part (pointer, type, class, TTL, length).
    cname = qname("edge.cdn.example")
    target = 12 + len(qname("www.example.com")) + 4 + 12
    put(d, "pair-cname-chain", pair("www.example.com", 1, [
        rr(PTR_Q, 5, 3600, cname),
        rr(struct.pack(">H", 0xC000 | target), 1, 20, bytes([93, 184, 216, 34])),
    ]))
    soa = qname("ns.example") + qname("host.example") + struct.pack(">IIIII", 1, 7200, 900, 1209600, 300)
    put(d, "pair-nxdomain-soa", pair("missing.example", 1, [], flags=0x8183,
                                     authority=rr(b"\xc0\x14", 6, 300, soa), ns=1))
    put(d, "pair-servfail", pair("broken.example", 28, [], flags=0x8182))


# --- Rule-source files ---------------------------------------------------------

def mmdb_ctrl(kind, size):
    assert size < 29
    return bytes([kind << 5 | size]) if kind <= 7 else bytes([size, kind - 7])


def mmdb_str(s):
    return mmdb_ctrl(2, len(s)) + s.encode()


def mmdb_uint(kind, v):
    b = v.to_bytes(4, "big").lstrip(b"\0")
    return mmdb_ctrl(kind, len(b)) + b


def mmdb_v4(nets, records, record_size=24):
    """An IPv4 MaxMind DB: nets are (network, prefix length, record index)."""
    nodes = [[None, None, None, None]]  # left kid, right kid, left data, right data
    for net, plen, rec in nets:
        n = 0
        for depth in range(plen):
            bit = (net >> (31 - depth)) & 1
            if depth + 1 == plen:
                nodes[n][2 + bit] = rec
            else:
                if nodes[n][bit] is None:
                    nodes.append([None, None, None, None])
                    nodes[n][bit] = len(nodes) - 1
                n = nodes[n][bit]
    offsets, data = [], b""
    for r in records:
        offsets.append(len(data))
        data += r
    count = len(nodes)
    tree = b""
    for node in nodes:
        for side in (0, 1):
            if node[side] is not None:
                v = node[side]
            elif node[2 + side] is not None:
                v = count + 16 + offsets[node[2 + side]]
            else:
                v = count
            tree += v.to_bytes(record_size // 8, "big")
    meta = (mmdb_ctrl(7, 4) + mmdb_str("node_count") + mmdb_uint(6, count)
            + mmdb_str("record_size") + mmdb_uint(5, record_size)
            + mmdb_str("ip_version") + mmdb_uint(5, 4)
            + mmdb_str("database_type") + mmdb_str("seed"))
    return tree + b"\0" * 16 + data + b"\xab\xcd\xefMaxMind.com" + meta


def ip4(s):
    a, b, c, d = (int(x) for x in s.split("."))
    return a << 24 | b << 16 | c << 8 | d


def source_readers():
    d = reset("source_readers")
    dbip = [mmdb_ctrl(7, 1) + mmdb_str("country_code") + mmdb_str(cc) for cc in ("US", "DE")]
    put(d, "mmdb-dbip", mmdb_v4([(ip4("8.8.8.0"), 24, 0), (ip4("5.9.0.0"), 16, 1),
                                 (ip4("128.0.0.0"), 2, 0)], dbip))
    geoip2 = (mmdb_ctrl(7, 2) + mmdb_str("continent") + mmdb_ctrl(7, 1) + mmdb_str("code")
              + mmdb_str("EU") + mmdb_str("country") + mmdb_ctrl(7, 2)
              + mmdb_str("geoname_id") + mmdb_uint(6, 2921044)
              + mmdb_str("iso_code") + mmdb_str("DE"))
    put(d, "mmdb-geoip2", mmdb_v4([(ip4("77.88.0.0"), 18, 0)], [geoip2]))
    # The old crash artifact (fuzz/artifacts/source_readers/crash-ae8e…): a bare
    # metadata marker with a broken map. Kept as a regression seed.
    put(d, "mmdb-regression-marker-only",
        bytes.fromhex("0a68abcdef4d61784d696e642e636f6dffff000020000aff"))
    csv = "1.0.0.0,1.0.0.255,AU\n8.8.8.0,8.8.8.255,US\n2001:db8::,2001:db8::ffff,DE\n16777216,16777471,au\n10.0.0.0,10.255.255.255,ZZ\n"
    put(d, "csv-ranges", csv)
    put(d, "nets-plain", "# comment\n1.2.3.0/24\n10.0.0.1\n192.168.0.0-192.168.1.255\n2001:db8::/32\n\n")
    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(tmp, "in.csv"), "w") as f:
            f.write("1.0.0.0,1.0.0.255,AU\n8.8.8.0,8.8.9.255,US\n2001:db8::,2001:db8::ffff,DE\n")
        out = os.path.join(tmp, "geoip.dat")
        subprocess.run([sys.executable, os.path.join(REPO, "tests", "sources", "build_geoipdat.py"),
                        out, os.path.join(tmp, "in.csv")], check=True)
        with open(out, "rb") as f:
            put(d, "geoip-dat", f.read())
        data = os.path.join(tmp, "data")
        os.makedirs(data)
        lists = {
            "netflix": "netflix.com\nfull:www.netflix.net\nkeyword:nflx\nregexp:^nf[0-9]+\\.example$\n",
            "ads": "doubleclick.net @ads\ntracker.example @ads\nclean.example\n",
            "category-ads-all": "include:ads @ads\nextra-ads.example @ads\n",
        }
        for name, text in lists.items():
            with open(os.path.join(data, name), "w") as f:
                f.write(text)
        out = os.path.join(tmp, "geosite.dat")
        subprocess.run([sys.executable, os.path.join(REPO, "tests", "sources", "build_geosite.py"),
                        data, out, "ads", "category-ads-all", "netflix"], check=True)
        with open(out, "rb") as f:
            put(d, "geosite-dat", f.read())


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else os.path.join(REPO, "target", "debug", "wgsplit")
    uci_parse()
    json_import(binary)
    dns_request()
    dns_request("dns_oracle")
    source_readers()


if __name__ == "__main__":
    main()
