#!/usr/bin/env python3
"""The REST API over real HTTP on 127.0.0.1: auth, every resource, bad input
(400 naming the field, nothing written), concurrency, limits.

Usage: api_test.py WGSPLIT_BINARY      (standard library only)
"""
import hashlib
import http.client
import json
import os
import re
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

BIN = os.path.abspath(sys.argv[1])
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
failures = []
checks = 0


def check(cond, what):
    global checks
    checks += 1
    if not cond:
        failures.append(what)
        print(f"  FAIL {what}")


class Api:
    def __init__(self, addr, token):
        self.host, port = addr.rsplit(":", 1)
        self.port = int(port)
        self.token = token

    def call(self, method, path, body=None, token="default", headers=None, ctype="application/json"):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        h = dict(headers or {})
        if token == "default":
            token = self.token
        if token is not None:
            h["Authorization"] = f"Bearer {token}"
        data = None
        if body is not None:
            data = body if isinstance(body, (bytes, str)) else json.dumps(body)
            if isinstance(data, str):
                data = data.encode()
            if ctype:
                h["Content-Type"] = ctype
        conn.request(method, path, body=data, headers=h)
        r = conn.getresponse()
        raw = r.read()
        conn.close()
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = None
        return r.status, parsed, raw, r


def main():
    tmp = tempfile.mkdtemp(prefix="wsa-api-")
    cfg = os.path.join(tmp, "wgsplit")
    shutil.copy(os.path.join(ROOT, "examples/wgsplit.conf"), cfg)
    env = dict(os.environ, WGSPLIT_API_TOKEN_FILE=os.path.join(tmp, "tok/api.token"),
               WGSPLIT_RUN_DIR=os.path.join(tmp, "run"))
    proc = subprocess.Popen([BIN, "-c", cfg, "api", "--listen", "127.0.0.1:0"], env=env,
                            stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stderr.readline()
        m = re.search(r"http://(\S+)", line)
        if not m:
            print("API did not start:", line, proc.stderr.read())
            sys.exit(1)
        token_file = env["WGSPLIT_API_TOKEN_FILE"]
        token = open(token_file).read().strip()
        api = Api(m.group(1), token)
        run(api, cfg, tmp, token_file, env)
        print("- SIGTERM (procd's stop): a clean shutdown, status 0")
        proc.terminate()
        rc = proc.wait(timeout=10)
        rest = proc.stderr.read()
        check(rc == 0 and "API stopped (SIGTERM)" in rest, f"exit status {rc}, stderr {rest!r}")
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=10)
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"api: {checks - len(failures)}/{checks} checks passed")
    sys.exit(1 if failures else 0)


def digest(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def run(api, cfg, tmp, token_file, env):
    print("- token and auth")
    mode = stat.S_IMODE(os.stat(token_file).st_mode)
    check(mode == 0o600, f"token file mode {oct(mode)}")
    check(len(api.token) == 64, "token is 256 bits of hex")
    s, doc, _, _ = api.call("GET", "/api/openapi.json", token=None)
    check(s == 200 and doc["openapi"].startswith("3."), "OpenAPI served without a token")
    for path in ["/api/status", "/api/clients", "/metrics", "/api/config", "/api/clients/alice/config"]:
        s, body, _, r = api.call("GET", path, token=None)
        check(s == 401 and r.getheader("WWW-Authenticate") == "Bearer", f"{path} without token -> {s}")
        s, _, _, _ = api.call("GET", path, token="0" * 64)
        check(s == 401, f"{path} with a wrong token -> {s}")
    s, _, _, _ = api.call("GET", "/api/status", token=api.token[:-1])
    check(s == 401, "a token prefix is refused")
    s, _, _, _ = api.call("GET", "/api/status", token=None, headers={"Authorization": f"Basic {api.token}"})
    check(s == 401, "another scheme is refused")
    before = digest(cfg)
    s, _, _, _ = api.call("POST", "/api/clients", {"name": "mallory"}, token=None)
    check(s == 401 and digest(cfg) == before, "a write without token changes nothing")

    print("- session cookie")
    s, _, _, r = api.call("POST", "/api/session", {"token": api.token}, token=None)
    cookie = (r.getheader("Set-Cookie") or "").split(";")[0]
    check(s == 200 and cookie.startswith("wgsplit_session="), "session made with the token")
    check("HttpOnly" in (r.getheader("Set-Cookie") or ""), "session cookie is HttpOnly")
    s, _, _, _ = api.call("GET", "/api/status", token=None, headers={"Cookie": cookie})
    check(s == 200, "the session authorizes")
    s, _, _, _ = api.call("POST", "/api/session", {"token": "nope"}, token=None)
    check(s == 401, "a session needs the right token")
    s, _, _, _ = api.call("POST", "/api/reload", token=None, headers={"Cookie": cookie})
    check(s == 403, f"a write by cookie without Origin -> {s}")
    s, _, _, _ = api.call("POST", "/api/reload", token=None,
                          headers={"Cookie": cookie, "Origin": "http://evil.example"})
    check(s == 403, f"a write by cookie from another origin -> {s}")
    s, _, _, _ = api.call("POST", "/api/reload", token=None,
                          headers={"Cookie": cookie, "Origin": f"http://{api.host}:{api.port}"})
    check(s == 200, f"a write by cookie from the API's own origin -> {s}")
    s, _, _, _ = api.call("DELETE", "/api/session", token=None, headers={"Cookie": cookie})
    s, _, _, _ = api.call("GET", "/api/status", token=None, headers={"Cookie": cookie})
    check(s == 401, "a deleted session is gone")

    print("- clients")
    s, st, _, _ = api.call("GET", "/api/status")
    check(s == 200 and st["clients"]["total"] == 3 and st["clients"]["expired"] == 0, f"status {st}")
    s, c, _, r = api.call("POST", "/api/clients", {"name": "dave", "upstream": "us1", "psk": True, "quota": "10G"})
    check(s == 201, f"add client -> {s} {c}")
    check(c and c["address"] == ["10.8.0.5/32", "fd42:8::5/128"], f"addresses {c and c['address']}")
    check(c and "private_key" not in c and c.get("psk") is True and c["state"] == "enabled", "client view hides keys")
    s, text, raw, r = api.call("GET", "/api/clients/dave/config")
    conf = raw.decode()
    check(s == 200 and "PrivateKey = " in conf and "PresharedKey = " in conf
          and "Endpoint = vpn.example.org:51820" in conf, "config rendered")
    check(r.getheader("Content-Type").startswith("text/plain"), "config is text/plain")
    s, _, raw, r = api.call("GET", "/api/clients/dave/config?split=1")
    check(s == 200 and b"AllowedIPs = 10.8.0.0/24, fd42:8::/64" in raw, f"split config {raw[-120:]}")
    s, _, svg, r = api.call("GET", "/api/clients/dave/qr.svg")
    check(s == 200 and svg.startswith(b"<svg") and r.getheader("Content-Type") == "image/svg+xml", "QR SVG")
    s, _, png, r = api.call("GET", "/api/clients/dave/qr.png")
    check(s == 200 and png[:8] == b"\x89PNG\r\n\x1a\n", "QR PNG")
    if shutil.which("zbarimg"):
        path = os.path.join(tmp, "qr.png")
        open(path, "wb").write(png)
        out = subprocess.run(["zbarimg", "--raw", "-q", path], capture_output=True).stdout.decode()
        check(out.rstrip("\n") == conf.rstrip("\n"), "the PNG QR decodes to the config")
    s, lst, _, _ = api.call("GET", "/api/clients")
    check(s == 200 and [x["name"] for x in lst] == ["alice", "bob", "carol", "dave"], "list clients")
    s, c, _, _ = api.call("PATCH", "/api/clients/dave", {"enabled": False, "description": "phone"})
    check(s == 200 and c["state"] == "disabled" and c["description"] == "phone", "patch disables")
    s, c, _, _ = api.call("POST", "/api/clients/dave/enable")
    s, c, _, _ = api.call("GET", "/api/clients/dave")
    check(s == 200 and c["state"] == "enabled", "enable")
    s, c, _, _ = api.call("PATCH", "/api/clients/dave", {"expires": "2020-01-01"})
    check(s == 200 and c["state"] == "expired", "expired client shown as expired")
    s, c, _, _ = api.call("PATCH", "/api/clients/dave", {"expires": None, "name": "david"})
    check(s == 200 and c["name"] == "david" and c["state"] == "enabled", "rename by patch")
    s, _, _, _ = api.call("GET", "/api/clients/dave")
    check(s == 404, "old name is gone")

    print("- bad input: 400 names the field, nothing written")
    before = digest(cfg)
    bad = [
        ({"name": "bad name"}, "bad name.name"),
        ({"name": "x1", "default": "sideways"}, "default"),
        ({"name": "x1", "address": ["10.9.0.5/32"]}, "x1.address"),
        ({"name": "x1", "address": ["10.8.0.2/32"]}, "x1.address"),
        ({"name": "x1", "upstream": "nope"}, "x1.upstream"),
        ({"name": "x1", "expires": "2026-02-30"}, "x1.expires"),
        ({"name": "x1", "quota": "lots"}, "x1.quota"),
        ({"name": "x1", "colour": "red"}, "colour"),
        ({"name": 5}, "name"),
        ({}, "name"),
    ]
    for body, field in bad:
        s, e, _, _ = api.call("POST", "/api/clients", body)
        paths = [p["path"] for p in (e or {}).get("problems", [])]
        check(s == 400 and field in paths, f"POST {body} -> {s} {paths} (want {field})")
    s, e, _, _ = api.call("POST", "/api/clients", b"{not json")
    check(s == 400 and e["problems"][0]["path"] == "body", f"invalid JSON -> {s} {e}")
    s, e, _, _ = api.call("PATCH", "/api/clients/alice", {"enabled": "yes"})
    check(s == 400 and e["problems"][0]["path"] == "alice.enabled", f"patch type error {e}")
    s, e, _, _ = api.call("PATCH", "/api/clients/alice", {"address": ["10.8.0.3/32"]})
    check(s == 400 and "overlaps" in e["error"], f"patch overlap {e}")
    s, _, _, _ = api.call("POST", "/api/clients", {"name": "x2"}, ctype="text/plain")
    check(s == 415, f"non-JSON content type -> {s}")
    check(digest(cfg) == before, "the config file is unchanged after bad input")
    s, _, _, _ = api.call("POST", "/api/clients", {"name": "alice"})
    check(s == 409, "duplicate name -> 409")
    s, _, _, _ = api.call("GET", "/api/clients/nobody")
    check(s == 404, "unknown client -> 404")
    s, _, _, _ = api.call("PUT", "/api/clients/alice", {})
    check(s == 405, f"wrong method -> {s}")
    s, _, _, _ = api.call("GET", "/api/nothing")
    check(s == 404, "unknown route -> 404")
    big = socket.create_connection((api.host, api.port))
    big.sendall(f"POST /api/clients HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {api.token}\r\n"
                "Content-Type: application/json\r\nContent-Length: 2000000\r\n\r\n".encode())
    big.settimeout(10)
    head = big.recv(200).decode(errors="replace")
    big.close()
    check(head.startswith("HTTP/1.1 413"), f"body over 1 MiB -> {head[:20]!r}")
    check(digest(cfg) == before, "still unchanged")

    print("- upstreams")
    provider = open(os.path.join(ROOT, "tests/api/provider.conf")).read()
    s, u, _, _ = api.call("POST", "/api/upstreams/import?name=se1&on_down=failover&failover=us1",
                          provider, ctype="text/plain")
    check(s == 201 and u["interface"] == "wgs_se1" and u["on_down"] == "failover", f"import {s} {u}")
    check(u and any("PostUp" in n for n in u["notes"]), "import notes the ignored PostUp")
    check(u and "private_key" not in u, "upstream view hides its key")
    s, e, _, _ = api.call("POST", "/api/upstreams/import?name=se2", provider + "\n[Peer]\nPublicKey = x\n",
                          ctype="text/plain")
    check(s == 400 and "[Peer] sections" in e["error"], "two peers refused")
    s, u, _, _ = api.call("PATCH", "/api/upstreams/se1", {"on_down": "direct", "failover": None})
    check(s == 200 and u["on_down"] == "direct", f"patch upstream {s} {u}")
    s, e, _, _ = api.call("PATCH", "/api/upstreams/se1", {"on_down": "failover"})
    check(s == 400 and e["problems"][0]["path"] == "se1.failover", f"failover needs a target {e}")
    s, e, _, _ = api.call("DELETE", "/api/upstreams/us1")
    check(s == 409 and "client alice" in e["error"], "an upstream in use is kept")
    s, _, _, _ = api.call("POST", "/api/upstreams/se1/disable")
    s, u, _, _ = api.call("GET", "/api/upstreams/se1")
    check(s == 200 and u["enabled"] is False and u["used_by"] == [], "disable upstream")
    s, _, _, _ = api.call("DELETE", "/api/upstreams/se1")
    check(s == 200, "delete unused upstream")
    s, u, _, _ = api.call("POST", "/api/upstreams", {"name": "x", "endpoint": "nohost"})
    paths = [p["path"] for p in u.get("problems", [])]
    check(s == 400 and {"x.endpoint", "x.private_key", "x.public_key", "x.address"} <= set(paths),
          f"every problem of a bad upstream {paths}")

    print("- rules")
    s, r, _, _ = api.call("POST", "/api/rules?position=0",
                          {"client": "david", "action": "proxy", "domain": ["example.com"], "cidr": ["192.0.2.0/24"]})
    check(s == 201 and r["index"] == 0, f"add rule {s} {r}")
    s, e, _, _ = api.call("POST", "/api/rules", {"client": "david", "action": "proxy", "cidr": ["1.2.3.4/33"]})
    check(s == 400 and e["problems"][0]["field"] == "cidr", f"bad cidr {e}")
    s, e, _, _ = api.call("POST", "/api/rules", {"client": "carol", "action": "proxy", "cidr": ["1.2.3.4"]})
    check(s == 400 and e["problems"][0]["field"] == "upstream", f"proxy without upstream {e}")
    s, r, _, _ = api.call("PATCH", "/api/rules/0", {"action": "block"})
    check(s == 200 and r["action"] == "block", "patch rule")
    s, lst, _, _ = api.call("GET", "/api/rules")
    check(s == 200 and lst[0]["client"] == "david" and len(lst) == 4, "list rules")
    s, _, _, _ = api.call("DELETE", "/api/rules/0")
    s, lst, _, _ = api.call("GET", "/api/rules")
    check(len(lst) == 3, "delete rule")
    s, _, _, _ = api.call("GET", "/api/rules/99")
    check(s == 404, "unknown rule -> 404")

    print("- whole config, metrics, explain")
    s, full, _, _ = api.call("GET", "/api/config")
    check(s == 200 and full["server"]["address"] == "10.8.0.1/24", "export")
    full["clients"][0]["address"] = ["10.99.0.2/32"]
    before = digest(cfg)
    s, e, _, _ = api.call("PUT", "/api/config", full)
    check(s == 400 and digest(cfg) == before, "bad whole config refused, nothing written")
    full["clients"][0]["address"] = ["10.8.0.2/32"]
    s, _, _, r = api.call("GET", "/api/config")
    etag = r.getheader("ETag")
    check(s == 200 and etag and etag.startswith('"'), f"the config has an ETag {etag}")
    s, _, _, r = api.call("PATCH", "/api/clients/alice", {"description": "x"}, headers={"If-Match": etag})
    check(s == 200 and r.getheader("ETag") not in (None, etag), f"PATCH with the current ETag -> {s}")
    s, e, _, _ = api.call("PUT", "/api/config", full, headers={"If-Match": etag})
    check(s == 409 and "If-Match" in e["error"], f"PUT with a stale ETag -> {s}")
    s, _, _, _ = api.call("PUT", "/api/config", full)
    check(s == 200, "good whole config accepted")
    s, _, raw, r = api.call("GET", "/metrics")
    text = raw.decode()
    check(s == 200 and 'wgsplit_client_active{client="alice"} 1' in text
          and 'wgsplit_upstream_state{upstream="us1",state="unknown"} 1' in text
          and "wgsplit_api_requests_total{code=\"401\"}" in text, "metrics")
    s, _, _, _ = api.call("GET", "/api/explain?client=alice")
    check(s == 400, "explain needs dest")
    s, e, _, _ = api.call("GET", "/api/explain?client=alice&dest=198.51.100.7%3A443%2Ftcp")
    check(s == 200 and e["rule"]["position"] == 1 and "us1" in json.dumps(e["goes"]), f"explain {s} {e}")
    s, e, _, _ = api.call("GET", "/api/explain?client=alice&dest=www.netflix.com")
    check(s == 200 and e["rule"]["position"] == 1, f"explain a domain {e}")
    s, e, _, _ = api.call("GET", "/api/explain?client=alice&dest=1.2.3.4%2Fsctp")
    check(s == 400 and e["problems"][0]["path"] == "dest", f"explain bad dest {e}")
    s, _, _, _ = api.call("GET", "/api/explain?client=nobody&dest=1.2.3.4")
    check(s == 404, "explain for an unknown client")
    # The API answers as `wgsplit explain --json` does (the live state: the
    # kernel's sets, the health record), for addresses in every form, and in
    # the shape the OpenAPI document gives.
    shape = doc["components"]["schemas"]["Explanation"]
    for dest in ["198.51.100.7:443/tcp", "www.netflix.com", "fd42:8::99", "[2001:db8::1]",
                 "[2001:db8::1]:443", "[2001:db8::1]:443/udp"]:
        s, e, _, _ = api.call("GET", "/api/explain?client=alice&dest=" + urllib.parse.quote(dest, safe=""))
        cli = subprocess.run([BIN, "-c", cfg, "explain", "--json", "alice", dest],
                             capture_output=True, text=True, env=env)
        check(s == 200 and cli.returncode == 0 and e == json.loads(cli.stdout),
              f"API explain of {dest} = the CLI's: {e} vs {cli.stdout}{cli.stderr}")
        check(s == 200 and set(e) == set(shape["properties"]) == set(shape["required"])
              and (e["rule"] is None or set(e["rule"]) == set(shape["properties"]["rule"]["properties"])),
              f"explain of {dest} in the documented shape: {sorted(e)}")
        check(s == 200 and e["live"] is True, f"explain of {dest} from the live state")
    print("- dns_guard per client")
    for schema in ["Client", "NewClient"]:
        check("dns_guard" in doc["components"]["schemas"][schema]["properties"], f"{schema} documents dns_guard")
    s, c, _, _ = api.call("POST", "/api/clients", {"name": "guardless", "dns_guard": False})
    check(s == 201 and c["dns_guard"] is False, f"a client added with the guard off: {s} {c}")
    s, c, _, _ = api.call("PATCH", "/api/clients/guardless", {"dns_guard": None})
    check(s == 200 and "dns_guard" not in c, f"the guard back on by patch: {c}")
    s, c, _, _ = api.call("PATCH", "/api/clients/guardless", {"dns_guard": "no"})
    check(s == 400, f"dns_guard must be a boolean: {s}")
    s, _, _, _ = api.call("DELETE", "/api/clients/guardless")
    check(s in (200, 204), "remove it")

    print("- every documented GET answers")
    for path, ops in doc["paths"].items():
        if "get" not in ops:
            continue
        name = "us1" if path.startswith("/api/upstreams") else "alice"
        url = path.replace("{name}", name).replace("{id}", "0")
        if url == "/api/explain":
            url += "?client=alice&dest=1.2.3.4"
        s, _, _, _ = api.call("GET", url)
        ok_codes = {200, 503} if url.endswith("/history") else {200}
        if url.startswith("/api/dl/"):
            ok_codes = {404}  # a one-time link never made
        check(s in ok_codes, f"GET {url} -> {s}")

    print("- a one-time link: once, then 404")
    s, link, _, _ = api.call("POST", "/api/clients/alice/link")
    check(s == 201 and link.get("expires_in") == 3600, f"link: {s} {link}")
    if s == 201:
        first = api.call("GET", link["path"])
        check(first[0] == 200, f"first use -> {first[0]}")
        check(api.call("GET", link["path"])[0] == 404, "second use -> 404")

    print("- concurrency")
    results = []

    def adder(i):
        s, c, _, _ = api.call("POST", "/api/clients", {"name": f"c{i}"})
        results.append((s, tuple(c["address"]) if s == 201 else c))

    threads = [threading.Thread(target=adder, args=(i,)) for i in range(30)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ok = [a for s, a in results if s == 201]
    check(len(ok) == 30, f"30 concurrent adds: {[r for r in results if r[0] != 201][:3]}")
    check(len(set(ok)) == 30, "no two clients share an address")
    chk = subprocess.run([BIN, "-c", cfg, "config", "check"], capture_output=True, text=True, env=env)
    check(chk.returncode == 0 and "34 clients" in chk.stderr, f"config valid after the race: {chk.stderr}")

    print("- a stalled body does not stop the others")
    stall = socket.create_connection((api.host, api.port))
    stall.sendall(f"POST /api/clients HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {api.token}\r\n"
                  "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{".encode())
    t0 = time.time()
    for _ in range(10):
        s, _, _, _ = api.call("GET", "/api/status")
        check(s == 200, "status while a body stalls")
    check(time.time() - t0 < 5, f"served in {time.time() - t0:.1f}s while a body stalls")
    stall.close()


if __name__ == "__main__":
    main()
