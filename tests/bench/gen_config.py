#!/usr/bin/env python3
"""Writes a large valid wgsplit config: N clients with R rules each (UCI on stdout).

Usage: gen_config.py CLIENTS RULES_PER_CLIENT [UPSTREAMS]
"""
import base64
import os
import sys


def key():
    return base64.b64encode(os.urandom(32)).decode()


def main():
    clients = int(sys.argv[1])
    per_client = int(sys.argv[2])
    upstreams = int(sys.argv[3]) if len(sys.argv) > 3 else 4
    out = [
        "config server 'server'",
        "\toption address '10.0.0.1/16'",
        "\toption address6 'fd42::1/64'",
        f"\toption private_key '{key()}'",
        "",
    ]
    for u in range(upstreams):
        out += [
            f"config upstream 'up{u}'",
            f"\toption private_key '{key()}'",
            f"\toption public_key '{key()}'",
            f"\tlist address '10.{200 + u}.0.2/32'",
            f"\toption endpoint '192.0.2.{u + 1}:51820'",
            "",
        ]
    for c in range(clients):
        host = c + 2
        out += [
            f"config client 'c{c}'",
            f"\toption public_key '{key()}'",
            f"\tlist address '10.0.{host // 256}.{host % 256}/32'",
            f"\tlist address 'fd42::{host:x}/128'",
            f"\toption upstream 'up{c % upstreams}'",
            "",
        ]
        for r in range(per_client):
            action = ("proxy", "direct", "block")[r % 3]
            out += [
                "config rule",
                f"\toption client 'c{c}'",
                f"\toption action '{action}'",
                f"\tlist domain 'site{r}.example'",
                f"\tlist domain '*.cdn{r}.example'",
                f"\tlist cidr '{(r * 7) % 223 + 1}.{r % 256}.{c % 256}.0/24'",
                "\tlist port 'tcp:443'",
                "",
            ]
    sys.stdout.write("\n".join(out))


if __name__ == "__main__":
    main()
