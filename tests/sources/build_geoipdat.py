#!/usr/bin/env python3
"""Builds a v2fly-style geoip.dat from ip-location-db `start,end,CC` CSV files.

Test-data tool: an encoder independent of the Rust reader. Each range becomes
the CIDRs covering it, as geoip.dat stores them. Usage:
build_geoipdat.py OUT CSV... (countries in file order of first appearance).
"""
import ipaddress
import sys


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


def main():
    out, csvs = sys.argv[1], sys.argv[2:]
    countries = {}
    for path in csvs:
        for line in open(path):
            s, e, cc = line.strip().split(",")[:3]
            if len(cc) != 2 or cc == "ZZ":
                continue
            a, b = ipaddress.ip_address(s), ipaddress.ip_address(e)
            body = countries.setdefault(cc, bytearray())
            for net in ipaddress.summarize_address_range(a, b):
                cidr = field_bytes(1, net.network_address.packed) + field_uint(2, net.prefixlen)
                body += field_bytes(2, cidr)
    with open(out + ".tmp", "wb") as f:
        for cc, cidrs in countries.items():
            f.write(field_bytes(1, field_bytes(1, cc.encode()) + bytes(cidrs)))
    import os
    os.replace(out + ".tmp", out)


if __name__ == "__main__":
    main()
