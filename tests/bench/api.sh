#!/usr/bin/env bash
# Clients and API at scale, in a namespace of its own: a server with 1,000 peers
# (boringtun), then
#   - `wgsplit client add` / `client remove` of one client, applied live
#     (CLI wall time, and the engine's own apply time), goal < 20 ms;
#   - `wgsplit status`, `client list` and GET /api/status for 1,000 clients,
#     goal < 50 ms;
#   - the API under 50 concurrent connections: p50/p99 latency.
# Prints one table beside the goals. Usage: sudo tests/bench/api.sh [CLIENTS]
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-1000}
cargo build --release --quiet
BIN=$PWD/target/release/wgsplit
DIR=$(mktemp -d /tmp/wsa-bench.XXXXXX)
NS=wsa-bench
export WG_SUDO=true WG_USERSPACE_IMPLEMENTATION=boringtun-cli PATH="$HOME/.cargo/bin:$PATH"
export WGSPLIT_RUN_DIR=$DIR/run WGSPLIT_API_TOKEN_FILE=$DIR/api.token
API_PID=
cleanup() {
    [ -n "$API_PID" ] && kill "$API_PID" 2>/dev/null
    local pid
    if [ -e /var/run/netns/$NS ]; then
        for pid in $(ip netns pids $NS 2>/dev/null); do kill "$pid" 2>/dev/null; done
        sleep 0.3
        for pid in $(ip netns pids $NS 2>/dev/null); do kill -9 "$pid" 2>/dev/null; done
        ip netns del $NS
    fi
    rm -f /var/run/wireguard/wsa-bwg0.sock /var/run/wireguard/wsa-bwg0.name
    rm -rf "$DIR"
}
trap cleanup EXIT
ip netns add $NS
ip netns exec $NS ip link set lo up

python3 - "$DIR/wgsplit" "$N" "$("$BIN" genkey)" <<'PY'
import base64, os, sys
path, n, key = sys.argv[1], int(sys.argv[2]), sys.argv[3]
out = [f"""config server 'server'
\toption interface 'wsa-bwg0'
\toption address '10.8.0.1/16'
\toption private_key '{key}'
\toption endpoint '198.51.100.2'
\toption backend 'userspace'
\toption dns_port '5353'
"""]
for i in range(n):
    pub = base64.b64encode(os.urandom(32)).decode()
    out.append(f"config client 'c{i}'\n\toption public_key '{pub}'\n"
               f"\tlist address '10.8.{(i + 2) // 256}.{(i + 2) % 256}/32'\n")
open(path, "w").write("\n".join(out))
PY
w() { ip netns exec $NS "$BIN" --config "$DIR/wgsplit" "$@"; }

echo "bench: bringing up a server with $N peers"
t0=$(date +%s%N)
w apply >/dev/null
echo "bench: first apply (interface + $N peers + nft) took $(( ($(date +%s%N) - t0) / 1000000 )) ms"
peers=$(ip netns exec $NS wg show wsa-bwg0 peers | wc -l)
[ "$peers" -eq "$N" ] || { echo "bench: expected $N peers, found $peers"; exit 1; }

python3 - "$BIN" "$DIR" "$NS" "$N" <<'PY'
import json, os, re, statistics, subprocess, sys, threading, time, http.client
BIN, DIR, NS, N = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
cfg = os.path.join(DIR, "wgsplit")

def w(*args):
    t = time.perf_counter()
    p = subprocess.run(["ip", "netns", "exec", NS, BIN, "--config", cfg, *args],
                       capture_output=True, text=True)
    ms = (time.perf_counter() - t) * 1000
    if p.returncode != 0:
        sys.exit(f"bench: {' '.join(args)}: {p.stderr}")
    return ms, p.stdout + p.stderr

def peers():
    out = subprocess.run(["ip", "netns", "exec", NS, "wg", "show", "wsa-bwg0", "dump"],
                         capture_output=True, text=True, check=True).stdout.splitlines()[1:]
    return {l.split("\t")[0]: l.split("\t")[3] for l in out}  # key -> allowed ips

before = peers()
add_wall, add_apply, rm_wall, rm_apply, ops = [], [], [], [], set()
for i in range(10):
    ms, out = w("client", "add", f"x{i}")
    m = re.search(r"applied: (\d+) changes in ([\d.]+) ms", out)
    if not m:
        sys.exit(f"bench: no live apply: {out}")
    add_wall.append(ms); add_apply.append(float(m.group(2))); ops.add(int(m.group(1)))
    ms, out = w("client", "remove", f"x{i}")
    m = re.search(r"applied: (\d+) changes in ([\d.]+) ms", out)
    rm_wall.append(ms); rm_apply.append(float(m.group(2))); ops.add(int(m.group(1)))
after = peers()
untouched = before == after

def med(v): return statistics.median(v)
status = [w("status", "--json")[0] for _ in range(10)]
listing = [w("client", "list")[0] for _ in range(10)]

# The API, alone, in the namespace.
api = subprocess.Popen(["ip", "netns", "exec", NS, BIN, "--config", cfg, "api", "--listen", "127.0.0.1:0"],
                       stderr=subprocess.PIPE, text=True)
try:
    line = api.stderr.readline()
    host, port = re.search(r"http://([\d.]+):(\d+)", line).groups()
    token = open(os.path.join(DIR, "api.token")).read().strip()

    def get(path, conn=None):
        c = conn or http.client.HTTPConnection(host, int(port), timeout=30)
        t = time.perf_counter()
        c.request("GET", path, headers={"Authorization": f"Bearer {token}"})
        r = c.getresponse(); r.read()
        return (time.perf_counter() - t) * 1000, r.status

    # Run the load from inside the namespace: a helper process there.
    load = r'''
import http.client, sys, threading, time, json
host, port, token, path, conns, per = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6])
lat, errs = [], []
lock = threading.Lock()
def worker():
    c = http.client.HTTPConnection(host, port, timeout=60)
    mine = []
    for _ in range(per):
        t = time.perf_counter()
        try:
            c.request("GET", path, headers={"Authorization": "Bearer " + token})
            r = c.getresponse(); r.read()
            if r.status != 200: errs.append(r.status)
        except Exception as e:
            errs.append(str(e)); c = http.client.HTTPConnection(host, port, timeout=60)
        mine.append((time.perf_counter() - t) * 1000)
    with lock: lat.extend(mine)
t0 = time.perf_counter()
ts = [threading.Thread(target=worker) for _ in range(conns)]
[t.start() for t in ts]; [t.join() for t in ts]
wall = time.perf_counter() - t0
lat.sort()
print(json.dumps({"p50": lat[len(lat)//2], "p99": lat[int(len(lat)*0.99)], "n": len(lat), "errors": len(errs), "rps": len(lat)/wall}))
'''
    def run_load(path, conns=50, per=20):
        p = subprocess.run(["ip", "netns", "exec", NS, "python3", "-c", load, host, port, token, path,
                            str(conns), str(per)], capture_output=True, text=True, check=True)
        return json.loads(p.stdout)

    single = []
    for _ in range(10):
        p = subprocess.run(["ip", "netns", "exec", NS, "python3", "-c",
                            "import http.client,sys,time;c=http.client.HTTPConnection(sys.argv[1],int(sys.argv[2]));"
                            "t=time.perf_counter();c.request('GET','/api/status',headers={'Authorization':'Bearer '+sys.argv[3]});"
                            "r=c.getresponse();r.read();print((time.perf_counter()-t)*1000)", host, port, token],
                           capture_output=True, text=True, check=True)
        single.append(float(p.stdout))
    status_load = run_load("/api/status")
    client_load = run_load("/api/clients/c500")
finally:
    api.terminate(); api.wait()

# The same add/remove with the daemon running (how a router runs it): the CLI
# writes the config and asks the daemon to re-apply; the daemon plans against
# what it applied last (no kernel read) over its long-lived sockets.
daemon = subprocess.Popen(["ip", "netns", "exec", NS, BIN, "--config", cfg, "daemon"],
                          stderr=subprocess.PIPE, text=True)
applied_lines = []
def collect():
    for line in daemon.stderr:
        applied_lines.append(line)
threading.Thread(target=collect, daemon=True).start()
def wait_for(pattern, since, timeout=10.0):
    end = time.time() + timeout
    while time.time() < end:
        for line in applied_lines[since:]:
            m = re.search(pattern, line)
            if m:
                return m
        time.sleep(0.005)
    sys.exit(f"bench: daemon never logged {pattern!r}: {''.join(applied_lines[-20:])}")
d_add_wall, d_add_apply, d_rm_wall, d_rm_apply = [], [], [], []
try:
    wait_for(r"API listening", 0, 30)
    applied = r"(?:re-apply request|config change): applied (\d+) changes in ([\d.]+) ms"
    for i in range(10):
        for verb, wall, apply in (("add", d_add_wall, d_add_apply), ("remove", d_rm_wall, d_rm_apply)):
            since = len(applied_lines)
            ms, out = w("client", verb, f"y{i}")
            if "daemon applies" not in out:
                sys.exit(f"bench: the CLI did not hand the change to the daemon: {out}")
            m = wait_for(applied, since)
            wall.append(ms); apply.append(float(m.group(2)))
finally:
    daemon.terminate(); daemon.wait()

rows = [
    (f"client add, {N} peers: engine apply (ms, median of 10)", med(add_apply), 20),
    (f"client add: whole CLI run (ms, median)", med(add_wall), 20),
    (f"client remove: engine apply (ms, median)", med(rm_apply), 20),
    (f"client remove: whole CLI run (ms, median)", med(rm_wall), 20),
    (f"with the daemon running: client add, daemon's apply (ms, median)", med(d_add_apply), 20),
    (f"with the daemon running: client add, CLI run (ms, median)", med(d_add_wall), 20),
    (f"with the daemon running: client remove, daemon's apply (ms, median)", med(d_rm_apply), 20),
    (f"with the daemon running: client remove, CLI run (ms, median)", med(d_rm_wall), 20),
    (f"status --json, {N} clients (ms, median of 10)", med(status), 50),
    (f"client list, {N} clients (ms, median of 10)", med(listing), 50),
    (f"GET /api/status, {N} clients (ms, median of 10)", med(single), 50),
    (f"GET /api/status, 50 concurrent: p50 (ms)", status_load["p50"], 50),
    (f"GET /api/status, 50 concurrent: p99 (ms)", status_load["p99"], 50),
    (f"GET /api/clients/NAME, 50 concurrent: p50 (ms)", client_load["p50"], 50),
    (f"GET /api/clients/NAME, 50 concurrent: p99 (ms)", client_load["p99"], 50),
]
print(f"{'Clients and API':68} {'wgsplit':>9} {'goal':>6} {'ratio':>6}")
for name, v, goal in rows:
    print(f"{name:68} {v:>9.1f} {goal:>6} {v/goal:>6.2f}")
print(f"changes per add/remove: {sorted(ops)} (one peer + one nft transaction); "
      f"the other {N} peers unchanged: {'yes' if untouched else 'NO'}")
print(f"load: {status_load['n']} + {client_load['n']} requests, errors {status_load['errors'] + client_load['errors']}, "
      f"{status_load['rps']:.0f} / {client_load['rps']:.0f} requests/s")
PY
