#!/usr/bin/env python3
"""A stub DNS server and a DNS client for the resolver tests (stdlib only).

stub  --listen IP:PORT --zone FILE --log FILE [--delay MS] [--silent]
      Zone lines: NAME TYPE VALUE TTL  (TYPE: A, AAAA, CNAME). Answers follow
      CNAMEs within the zone. Unknown names: NXDOMAIN with a SOA (negative TTL 30).
      Every question is appended to the log as "NAME TYPE". UDP and TCP.
q     [--tcp] [--src IP] SERVER[:PORT] NAME [TYPE]
      Prints "RCODE" then one "TYPE VALUE TTL" line per answer record.
raw   SERVER[:PORT] HEX    sends raw bytes over UDP, prints the answer in hex or "timeout".
flood [--src IP] --qps N --secs S SERVER[:PORT] SUFFIX
      Sends A queries for unique names (NNNNNNNN.SUFFIX) at N a second for S seconds,
      reads nothing, prints "sent COUNT SECONDS". (dnsperf slows to a crawl when
      nothing is answered: every query times out and is tracked.)
"""
import os
import socket
import struct
import sys
import threading
import time

TYPES = {"A": 1, "CNAME": 5, "SOA": 6, "AAAA": 28}
NAMES = {v: k for k, v in TYPES.items()}
RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}


def enc_name(name):
    out = b""
    for label in name.rstrip(".").split("."):
        if label:
            out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def read_name(buf, pos):
    labels, jumped, end = [], False, None
    for _ in range(64):
        n = buf[pos]
        if n == 0:
            pos += 1
            break
        if n & 0xC0 == 0xC0:
            if not jumped:
                end = pos + 2
            jumped = True
            pos = ((n & 0x3F) << 8) | buf[pos + 1]
            continue
        labels.append(buf[pos + 1:pos + 1 + n].decode(errors="replace"))
        pos += 1 + n
    return ".".join(labels).lower(), (end if jumped else pos)


def hostport(text, default=53):
    if text.count(":") == 1:
        h, p = text.split(":")
        return h, int(p)
    return text, default


def split_addr(text):
    if text.startswith("["):
        h, p = text[1:].split("]:")
        return h, int(p)
    return hostport(text)


def rdata(rtype, value):
    if rtype == 1:
        return socket.inet_pton(socket.AF_INET, value)
    if rtype == 28:
        return socket.inet_pton(socket.AF_INET6, value)
    return enc_name(value)


def stub(args):
    listen = zone = log = None
    delay, silent = 0.0, False
    it = iter(args)
    for a in it:
        if a == "--listen":
            listen = split_addr(next(it))
        elif a == "--zone":
            zone = next(it)
        elif a == "--log":
            log = next(it)
        elif a == "--delay":
            delay = int(next(it)) / 1000
        elif a == "--silent":
            silent = True
    records = {}
    for line in open(zone):
        w = line.split()
        if len(w) == 4 and not line.startswith("#"):
            records.setdefault(w[0].lower().rstrip("."), []).append((TYPES[w[1]], w[2], int(w[3])))
    lock = threading.Lock()

    def answer(req):
        (qid, flags, qd) = struct.unpack("!HHH", req[:6])
        name, pos = read_name(req, 12)
        qtype, qclass = struct.unpack("!HH", req[pos:pos + 4])
        with lock, open(log, "a") as f:
            f.write(f"{name} {NAMES.get(qtype, qtype)}\n")
        question = req[12:pos + 4]
        ans = []
        cur, seen = name, 0
        while cur in records and seen < 8:
            seen += 1
            recs = records[cur]
            cn = [r for r in recs if r[0] == 5]
            if cn and qtype != 5:
                ans.append((cur, 5, cn[0][1], cn[0][2]))
                cur = cn[0][1].lower().rstrip(".")
                continue
            ans += [(cur, t, v, ttl) for (t, v, ttl) in recs if t == qtype]
            break
        rcode = 0 if (ans or name in records) else 3
        body, ns = b"", b""
        for (owner, t, v, ttl) in ans:
            rd = rdata(t, v)
            body += enc_name(owner) + struct.pack("!HHIH", t, 1, ttl, len(rd)) + rd
        nscount = 0
        if not ans:
            soa = enc_name("stub") + enc_name("hostmaster.stub") + struct.pack("!IIIII", 1, 60, 60, 60, 30)
            ns = enc_name(name.split(".", 1)[-1] if "." in name else name) + struct.pack("!HHIH", 6, 1, 300, len(soa)) + soa
            nscount = 1
        hdr = struct.pack("!HHHHHH", qid, 0x8180 | (flags & 0x0100) | rcode, 1, len(ans), nscount, 0)
        return hdr + question + body + ns

    fam = socket.AF_INET6 if ":" in listen[0] else socket.AF_INET
    u = socket.socket(fam, socket.SOCK_DGRAM)
    u.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    u.bind(listen)
    t = socket.socket(fam, socket.SOCK_STREAM)
    t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    t.bind(listen)
    t.listen(16)

    def tcp_loop():
        while True:
            c, _ = t.accept()
            try:
                n = struct.unpack("!H", c.recv(2))[0]
                req = b""
                while len(req) < n:
                    req += c.recv(n - len(req))
                if not silent:
                    r = answer(req)
                    c.sendall(struct.pack("!H", len(r)) + r)
            except Exception:
                pass
            c.close()

    threading.Thread(target=tcp_loop, daemon=True).start()
    print("ready", flush=True)
    while True:
        req, src = u.recvfrom(4096)
        if silent:
            with lock, open(log, "a") as f:
                f.write("(silent)\n")
            continue
        try:
            r = answer(req)
        except Exception:
            continue
        if delay:
            threading.Timer(delay, lambda r=r, src=src: u.sendto(r, src)).start()
        else:
            u.sendto(r, src)


def query(args):
    tcp = "--tcp" in args
    src = None
    if "--src" in args:
        i = args.index("--src")
        src = args[i + 1]
        args = args[:i] + args[i + 2:]
    args = [a for a in args if a != "--tcp"]
    server = split_addr(args[0])
    name = args[1]
    qtype = TYPES[args[2]] if len(args) > 2 else 1
    qid = int(time.time() * 1000) & 0xFFFF
    req = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + enc_name(name) + struct.pack("!HH", qtype, 1)
    fam = socket.AF_INET6 if ":" in server[0] else socket.AF_INET
    t0 = time.monotonic()
    if tcp:
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.settimeout(6)
        if src:
            s.bind((src, 0))
        s.connect(server)
        s.sendall(struct.pack("!H", len(req)) + req)
        n = struct.unpack("!H", s.recv(2))[0]
        resp = b""
        while len(resp) < n:
            resp += s.recv(n - len(resp))
    else:
        # DNSTOOL_TRIES sends the query again after each DNSTOOL_TRY_MS, as a
        # stub resolver does when a datagram is lost (default: one try, 6 s).
        tries = int(os.environ.get("DNSTOOL_TRIES", "1"))
        s = socket.socket(fam, socket.SOCK_DGRAM)
        s.settimeout(int(os.environ.get("DNSTOOL_TRY_MS", "6000")) / 1000)
        if src:
            s.bind((src, 0))
        resp = None
        for attempt in range(1, tries + 1):
            s.sendto(req, server)
            try:
                resp, _ = s.recvfrom(4096)
                break
            except socket.timeout:
                continue
        if resp is None:
            print("TIMEOUT")
            return
        if os.environ.get("DNSTOOL_TIME") and tries > 1:
            sys.stderr.write(f"tries {attempt}\n")
    if os.environ.get("DNSTOOL_TIME"):
        sys.stderr.write(f"{int((time.monotonic() - t0) * 1000)}\n")
    (rid, flags, qd, an, ns, ar) = struct.unpack("!HHHHHH", resp[:12])
    assert rid == qid, "id mismatch"
    print(RCODES.get(flags & 0xF, flags & 0xF) + (" TC" if flags & 0x0200 else ""))
    _, pos = read_name(resp, 12)
    pos += 4
    for _ in range(an):
        owner, pos = read_name(resp, pos)
        t, c, ttl, rdlen = struct.unpack("!HHIH", resp[pos:pos + 10])
        pos += 10
        rd = resp[pos:pos + rdlen]
        if t == 1:
            v = socket.inet_ntop(socket.AF_INET, rd)
        elif t == 28:
            v = socket.inet_ntop(socket.AF_INET6, rd)
        elif t == 5:
            v = read_name(resp, pos)[0]
        else:
            v = rd.hex()
        print(NAMES.get(t, t), v, ttl)
        pos += rdlen


def raw(args):
    server = split_addr(args[0])
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(1)
    s.sendto(bytes.fromhex(args[1]), server)
    try:
        print(s.recvfrom(4096)[0].hex())
    except socket.timeout:
        print("timeout")


def flood(args):
    src, qps, secs, rest = None, 1000, 1.0, []
    it = iter(args)
    for a in it:
        if a == "--src":
            src = next(it)
        elif a == "--qps":
            qps = int(next(it))
        elif a == "--secs":
            secs = float(next(it))
        else:
            rest.append(a)
    server = split_addr(rest[0])
    s = socket.socket(socket.AF_INET6 if ":" in server[0] else socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
    if src:
        s.bind((src, 0))
    # One packet, its ID and the 8 digits of its first label rewritten per query.
    pkt = bytearray(struct.pack("!HHHHHH", 0, 0x0100, 1, 0, 0, 0) + enc_name("00000000." + rest[1]) + struct.pack("!HH", 1, 1))
    sent, t0 = 0, time.monotonic()
    while True:
        now = time.monotonic() - t0
        if now >= secs:
            break
        due = min(int(qps * now) - sent, 2000)
        for _ in range(due):
            pkt[0:2] = (sent & 0xFFFF).to_bytes(2, "big")
            pkt[13:21] = b"%08d" % sent
            try:
                s.sendto(pkt, server)
            except OSError:
                pass
            sent += 1
        if due <= 0:
            time.sleep(0.001)
    print(f"sent {sent} {time.monotonic() - t0:.2f}")


if __name__ == "__main__":
    {"stub": stub, "q": query, "raw": raw, "flood": flood}[sys.argv[1]](sys.argv[2:])
