#!/usr/bin/env python3
"""HTTP attacks on the API, run by the tests/hostile/http_*.sh scripts.

Usage: http_attack.py SCENARIO WGSPLIT_BINARY PORT   (standard library only)

Starts `wgsplit api --listen 127.0.0.1:PORT` on a scratch config (no root),
runs one scenario's attacks, each unauthenticated and with the token, and after
each checks that the process lives, that the API answers within LIVE_WITHIN
seconds, and that its VmRSS stays under RSS_BOUND_KB. Prints `  ok   …` /
`  FAIL …` lines; exits 1 on any failure. Every loop is bounded in count and time.
"""
import json
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

# The bound the daemon's RSS must stay under during and after any attack here.
# The API holds at most 64 connections (16 KiB head buffer, a 512 KiB stack
# each, touched a little) and 4 MiB of bodies at once; the debug build idles
# at about 8.5 MiB and peaks near 13 MiB under these attacks.
RSS_BOUND_KB = 32 * 1024
# After an attack, a request with the token must be answered within this.
LIVE_WITHIN = 1.0
# The server's bounds, as in daemon/src/api/server.rs and http.rs.
CONN_CAP = 64
HEAD_TIMEOUT = 5.0
MAX_WRITE_BODY = 64 * 1024

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
failures = []


def ok(what):
    print(f"  ok   {what}", flush=True)


def fail(what):
    failures.append(what)
    print(f"  FAIL {what}", flush=True)


def check(cond, what):
    (ok if cond else fail)(what)
    return cond


class Target:
    def __init__(self, binary, port):
        self.tmp = tempfile.mkdtemp(prefix="wsha-http-")
        self.cfg = os.path.join(self.tmp, "wgsplit")
        shutil.copy(os.path.join(ROOT, "examples/wgsplit.conf"), self.cfg)
        env = dict(os.environ, WGSPLIT_API_TOKEN_FILE=os.path.join(self.tmp, "tok/api.token"),
                   WGSPLIT_RUN_DIR=os.path.join(self.tmp, "run"))
        self.addr = ("127.0.0.1", port)
        self.log = open(os.path.join(self.tmp, "stderr"), "w+")
        self.proc = subprocess.Popen([binary, "-c", self.cfg, "api", "--listen", f"127.0.0.1:{port}"],
                                     env=env, stderr=self.log, stdout=subprocess.DEVNULL)
        deadline = time.time() + 10
        while time.time() < deadline and not os.path.exists(env["WGSPLIT_API_TOKEN_FILE"]):
            time.sleep(0.05)
        time.sleep(0.2)
        self.token = open(env["WGSPLIT_API_TOKEN_FILE"]).read().strip()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def rss_kb(self):
        try:
            with open(f"/proc/{self.proc.pid}/status") as f:
                m = re.search(r"VmRSS:\s+(\d+)", f.read())
                return int(m.group(1)) if m else 0
        except OSError:
            return -1

    def threads(self):
        try:
            with open(f"/proc/{self.proc.pid}/status") as f:
                m = re.search(r"Threads:\s+(\d+)", f.read())
                return int(m.group(1)) if m else 0
        except OSError:
            return -1

    def connect(self, timeout=5.0):
        s = socket.create_connection(self.addr, timeout=timeout)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return s

    def request(self, raw, timeout=5.0):
        """Sends raw bytes, returns (status, whole answer) or (None, error)."""
        try:
            s = self.connect(timeout)
            s.sendall(raw)
            data = b""
            deadline = time.time() + timeout
            while time.time() < deadline:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
            s.close()
        except OSError as e:
            return None, str(e).encode()
        m = re.match(rb"HTTP/1\.[01] (\d+)", data)
        return (int(m.group(1)) if m else None), data

    def head(self, method, path, token=True, extra="", length=None):
        # One request per connection, so an answer ends where the connection does.
        h = f"{method} {path} HTTP/1.1\r\nHost: {self.addr[0]}:{self.addr[1]}\r\nConnection: close\r\n"
        if token:
            h += f"Authorization: Bearer {self.token}\r\n"
        if length is not None:
            h += f"Content-Type: application/json\r\nContent-Length: {length}\r\n"
        return (h + extra + "\r\n").encode()

    def alive(self, after):
        """The process lives, answers with the token in time, and its RSS is bounded."""
        if not check(self.proc.poll() is None, f"{after}: the process is alive"):
            self.log.seek(0)
            print("    stderr:", self.log.read()[-500:])
            return
        t0 = time.time()
        status, _ = self.request(self.head("GET", "/api/status"), timeout=LIVE_WITHIN + 2)
        took = time.time() - t0
        check(status == 200 and took <= LIVE_WITHIN,
              f"{after}: the API answers ({status}) in {took * 1000:.0f} ms (<= {LIVE_WITHIN * 1000:.0f})")
        rss = self.rss_kb()
        check(0 < rss <= RSS_BOUND_KB, f"{after}: RSS {rss} kB <= {RSS_BOUND_KB} kB")


def close_all(socks):
    for s in socks:
        try:
            s.close()
        except OSError:
            pass


def open_many(t, count, first=b"", timeout=2.0):
    socks = []
    deadline = time.time() + 10
    for _ in range(count):
        if time.time() > deadline:
            break
        try:
            s = t.connect(timeout)
            if first:
                s.sendall(first)
            socks.append(s)
        except OSError:
            break
    return socks


def scenario_length(t):
    """Declared lengths: huge, over the route's limit, never sent; a chunked body."""
    for auth in (False, True):
        who = "with token" if auth else "no token"
        for method, path in (("GET", "/api/openapi.json"), ("POST", "/api/clients"),
                             ("PUT", "/api/config"), ("POST", "/api/session")):
            status, _ = t.request(t.head(method, path, auth, length=99999999999), timeout=3)
            want = {413} if path in ("/api/openapi.json", "/api/session") or auth else {401}
            check(status in want, f"{who}: {method} {path} declaring 99999999999 bytes -> {status} (want {want})")
        t.alive(f"huge lengths, {who}")
        # The old server read the body before it looked at the token.
        t0 = time.time()
        status, _ = t.request(t.head("POST", "/api/clients", auth, length=MAX_WRITE_BODY), timeout=3)
        took = time.time() - t0
        if auth:
            check(status is None or status == 408 or took >= 2.5,
                  f"{who}: a body within the limit is waited for ({status} after {took:.1f}s)")
        else:
            check(status == 401 and took < 1,
                  f"{who}: the token is checked before the body ({status} in {took:.2f}s)")
        # Connections declaring 50 MB and sending nothing held every worker.
        socks = open_many(t, 8, t.head("POST", "/api/clients", auth, length=50_000_000))
        socks += open_many(t, 8, t.head("PUT", "/api/config", auth, length=900_000))
        time.sleep(0.3)
        t.alive(f"{len(socks)} connections declaring big bodies and sending nothing, {who}")
        close_all(socks)
        status, _ = t.request(t.head("POST", "/api/clients", auth, "Transfer-Encoding: chunked\r\n"), timeout=3)
        check(status == 411, f"{who}: a chunked body -> {status}")
        status, _ = t.request(t.head("GET", "/api/status", auth, "X: " + "a" * 20000 + "\r\n"), timeout=3)
        check(status == 431, f"{who}: a 20 kB header -> {status}")
        status, _ = t.request(t.head("GET", "/api/status", auth, "X: y\r\n" * 100), timeout=3)
        check(status == 431, f"{who}: 100 headers -> {status}")
        tls_hello = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + os.urandom(500)
        status, _ = t.request(tls_hello + b"\r\n\r\n", timeout=3)
        check(status == 400, f"{who}: binary junk -> {status}")
        t.alive(f"malformed heads, {who}")
    # 1 MB of body at the limit of PUT /api/config, many at once: the body
    # budget answers 503 to some rather than hold them all.
    body = b"{" + b" " * (900_000 - 2) + b"}"
    socks = []
    for _ in range(12):
        try:
            s = t.connect()
            s.sendall(t.head("PUT", "/api/config", True, length=len(body)) + body[:-1])
            socks.append(s)
        except OSError:
            break
    time.sleep(0.5)
    t.alive(f"{len(socks)} bodies of 900 kB held one byte short")
    close_all(socks)


def scenario_slowloris(t):
    """Heads sent a byte at a time from twice as many connections as the cap."""
    for auth in (False, True):
        who = "with token" if auth else "no token"
        line = t.head("GET", "/api/status", auth, "X-Padding: " + "a" * 200 + "\r\n")
        socks = open_many(t, 2 * CONN_CAP, line[:10])
        check(len(socks) >= CONN_CAP, f"{who}: {len(socks)} slow connections opened")
        # Trickle a byte to each every 0.5 s for 3 s; the API must keep answering.
        sent, worst = 10, 0.0
        for _ in range(6):
            for s in socks:
                try:
                    s.send(line[sent:sent + 1])
                except OSError:
                    pass
            sent += 1
            t0 = time.time()
            status, _ = t.request(t.head("GET", "/api/status"), timeout=3)
            worst = max(worst, time.time() - t0 if status == 200 else 99)
            time.sleep(0.5)
        check(worst <= LIVE_WITHIN,
              f"{who}: during the slow-loris the API answered, slowest in {worst * 1000:.0f} ms")
        rss = t.rss_kb()
        check(0 < rss <= RSS_BOUND_KB, f"{who}: RSS {rss} kB during the slow-loris")
        # One thread per connection, at most CONN_CAP of them (+ main, accept,
        # and a few evicted ones on their way out).
        threads = t.threads()
        check(0 < threads <= CONN_CAP + 6, f"{who}: {threads} threads with {len(socks)} connections (cap {CONN_CAP})")
        t.alive(f"slow-loris, {who} (connections still open)")
        close_all(socks)
        # Heads never finished: each is closed within the head timeout.
        socks = open_many(t, 8, line[:20])
        time.sleep(HEAD_TIMEOUT + 1)
        closed = 0
        for s in socks:
            s.settimeout(0.5)
            try:
                closed += s.recv(100).startswith(b"HTTP/1.1 408") or 0
            except OSError:
                pass
        check(closed == len(socks),
              f"{who}: {closed}/{len(socks)} unfinished heads answered 408 within {HEAD_TIMEOUT:.0f} s")
        close_all(socks)
        t.alive(f"unfinished heads, {who}")


def scenario_emfile(t):
    """Out of descriptors: the accept loop must back off and carry on."""
    nofile = 40
    r = subprocess.run(["prlimit", f"--pid={t.proc.pid}", f"--nofile={nofile}:{nofile}"],
                       capture_output=True, text=True)
    if not check(r.returncode == 0, f"RLIMIT_NOFILE of the daemon lowered to {nofile}"):
        print("    ", r.stderr)
        return
    for auth in (False, True):
        who = "with token" if auth else "no token"
        socks = open_many(t, 120, t.head("GET", "/api/status", auth, length=None)[:-2])
        time.sleep(1.0)
        ok(f"{who}: {len(socks)} connections held open with the daemon at {nofile} descriptors")
        close_all(socks)
        time.sleep(0.3)
        t.log.seek(0)
        check("Too many open files" in t.log.read(), f"{who}: the daemon met EMFILE (its log says so)")
        t.alive(f"EMFILE, {who}")
    # The process itself is still fine: a write works too (it opens files).
    status, _ = t.request(t.head("POST", "/api/clients/alice/disable", True), timeout=3)
    check(status == 200, f"a write after EMFILE -> {status}")


def scenario_origin(t):
    """A cookie alone must not authorise a cross-origin write; If-Match guards
    edits; an error never quotes the file it failed on."""
    body = json.dumps({"token": t.token}).encode()
    status, raw = t.request(t.head("POST", "/api/session", False, length=len(body)) + body)
    m = re.search(rb"Set-Cookie: (wgsplit_session=[0-9a-f]+)", raw)
    if not check(status == 200 and m, f"session made ({status})"):
        return
    cookie = f"Cookie: {m.group(1).decode()}\r\n"
    host = f"{t.addr[0]}:{t.addr[1]}"
    for extra, what, want in (
        ("Origin: http://evil.example\r\n", "from another origin", 403),
        ("", "with neither Origin nor Referer", 403),
        ("Origin: null\r\n", "from Origin: null", 403),
        ("Referer: http://evil.example/x\r\n", "with a foreign Referer", 403),
        (f"Origin: http://{host}\r\n", "from the same origin", 200),
        (f"Referer: http://{host}/cgi-bin/luci\r\n", "with a same-origin Referer", 200),
    ):
        status, _ = t.request(t.head("POST", "/api/clients/alice/disable", False, cookie + extra))
        check(status == want, f"empty-body POST by cookie {what} -> {status} (want {want})")
    patch = b'{"description": "x"}'
    status, _ = t.request(t.head("PATCH", "/api/clients/alice", False, cookie + "Origin: http://evil.example\r\n",
                                 length=len(patch)) + patch)
    check(status == 403, f"PATCH by cookie from another origin -> {status}")
    status, _ = t.request(t.head("GET", "/api/status", False, cookie + "Origin: http://evil.example\r\n"))
    check(status == 200, f"a read by cookie from anywhere is still answered -> {status}")
    t.alive("cross-origin writes")

    # The config replaced by another file (as a symlink to /etc/shadow would):
    # the parser's message quotes its first line; the answer must not.
    saved = open(t.cfg).read()
    secret = "root:$6$wshaSECRETHASH:19000:0:99999:7:::"
    with open(t.cfg, "w") as f:
        f.write(secret + "\n")
    for method, path in (("GET", "/api/status"), ("GET", "/api/config"), ("POST", "/api/clients/alice/enable")):
        status, raw = t.request(t.head(method, path))
        check(status == 500 and b"wshaSECRETHASH" not in raw,
              f"{method} {path} on a foreign file -> {status}, its contents not quoted")
    with open(t.cfg, "w") as f:
        f.write(saved)

    # If-Match: the ETag of GET /api/config guards PUT and PATCH.
    status, raw = t.request(t.head("GET", "/api/config"))
    m = re.search(rb"ETag: (\"[0-9a-f]{16}\")", raw)
    if not check(status == 200 and m, "GET /api/config sends an ETag"):
        return
    tag = m.group(1).decode()
    full = raw.split(b"\r\n\r\n", 1)[1]
    first = b'{"description": "first"}'
    status, raw = t.request(t.head("PATCH", "/api/clients/bob", True, f"If-Match: {tag}\r\n", len(first)) + first)
    m = re.search(rb"ETag: (\"[0-9a-f]{16}\")", raw)
    check(status == 200 and m and m.group(1).decode() != tag, f"PATCH with the current ETag -> {status}, new ETag")
    status, raw = t.request(t.head("PUT", "/api/config", True, f"If-Match: {tag}\r\n", len(full)) + full)
    check(status == 409, f"PUT of the stale snapshot with its old ETag -> {status} (want 409)")
    status, raw = t.request(t.head("GET", "/api/clients/bob"))
    check(b'"first"' in raw, "the concurrent change survived")
    weak = f"If-Match: W/{tag}\r\n"
    status, _ = t.request(t.head("PATCH", "/api/clients/bob", True, weak, len(first)) + first)
    check(status == 409, f"a weak ETag never matches -> {status}")
    status, _ = t.request(t.head("PATCH", "/api/clients/bob", True, "If-Match: *\r\n", len(first)) + first)
    check(status == 200, f"If-Match: * -> {status}")
    status, _ = t.request(t.head("PATCH", "/api/clients/bob", True, length=len(first)) + first)
    check(status == 200, f"no If-Match (old clients) -> {status}")


SCENARIOS = {
    "length": scenario_length,
    "slowloris": scenario_slowloris,
    "emfile": scenario_emfile,
    "origin": scenario_origin,
}


def main():
    scenario, binary, port = sys.argv[1], os.path.abspath(sys.argv[2]), int(sys.argv[3])
    # Our own descriptors must not run out first (the slow-loris opens 128).
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(max(soft, 4096), hard), hard))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    signal.signal(signal.SIGALRM, lambda *_: (fail("the scenario took over 90 s"), sys.exit(1)))
    signal.alarm(90)
    t = Target(binary, port)
    try:
        t.alive("start")
        SCENARIOS[scenario](t)
        t.alive("the end")
    finally:
        t.stop()
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
