#!/usr/bin/env python3
"""Long flows for the offloading test (tests/engine/offload.sh).

serve PORT ADDR...    TCP echo on [::]:PORT, UDP echo on ADDR:PORT for each
                      ADDR (so each answer leaves from the address asked), forever.
tcp HOST PORT BYTES   sends BYTES over one connection while reading the echo;
                      prints the bytes echoed back.
udp HOST PORT COUNT MODE
                      one socket, one flow: COUNT datagrams, paced; prints how
                      many came back. MODE reply-first: the first datagram is
                      answered before the next is sent (the flow is offloaded
                      from the server's reply); client-first: five go out before
                      any answer is read (offloaded from the client's packet).
"""

import select
import socket
import sys
import threading
import time


def serve(port, addrs):
    def udp_echo(udp):
        while True:
            data, peer = udp.recvfrom(2048)
            udp.sendto(data, peer)

    for addr in addrs:
        udp = socket.socket(family(addr), socket.SOCK_DGRAM)
        udp.bind((addr, port))
        threading.Thread(target=udp_echo, args=(udp,), daemon=True).start()
    tcp = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    tcp.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    tcp.bind(("::", port))
    tcp.listen(16)

    def tcp_echo(conn):
        with conn:
            while True:
                data = conn.recv(65536)
                if not data:
                    return
                conn.sendall(data)

    while True:
        conn, _ = tcp.accept()
        threading.Thread(target=tcp_echo, args=(conn,), daemon=True).start()


def family(host):
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def tcp(host, port, total):
    s = socket.socket(family(host), socket.SOCK_STREAM)
    s.settimeout(5)
    try:
        s.connect((host, port))
    except OSError as e:
        print(f"connect: {e}", file=sys.stderr)
        print(0)
        return

    def send():
        chunk = b"x" * 16384
        left = total
        try:
            while left > 0:
                n = min(left, len(chunk))
                s.sendall(chunk[:n])
                left -= n
        except OSError:
            pass

    threading.Thread(target=send, daemon=True).start()
    got = 0
    try:
        while got < total:
            data = s.recv(65536)
            if not data:
                break
            got += len(data)
    except OSError as e:
        print(f"after {got} bytes: {e}", file=sys.stderr)
    print(got)


def udp(host, port, count, mode):
    s = socket.socket(family(host), socket.SOCK_DGRAM)
    s.connect((host, port))
    payload = b"y" * 1000
    got = 0

    def drain(wait):
        """Waits up to `wait` s for an answer, then takes every one waiting."""
        nonlocal got
        while select.select([s], [], [], wait)[0]:
            try:
                s.recv(2048)
                got += 1
            except OSError:
                return
            wait = 0

    sent = 0
    if mode == "reply-first":
        s.send(payload)
        sent = 1
        drain(2.0)
    else:
        for _ in range(5):
            s.send(payload)
            sent += 1
    while sent < count:
        s.send(payload)
        sent += 1
        time.sleep(0.001)
        drain(0)
    while got < sent:
        before = got
        drain(1.0)
        if got == before:
            break
    print(got)


def main():
    cmd = sys.argv[1]
    if cmd == "serve":
        serve(int(sys.argv[2]), sys.argv[3:])
    elif cmd == "tcp":
        tcp(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    elif cmd == "udp":
        udp(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])


if __name__ == "__main__":
    main()
