#!/usr/bin/env bash
# Writes a wgsplit config with N clients × R CIDR rules (alternating proxy/direct,
# all distinct /24s per client) for the engine benchmarks.
# Usage: engine-genconf.sh WGSPLIT_BIN CLIENTS RULES SERVER_IF UPSTREAM_IF [CHANGE]
# CHANGE=1 moves client 0's first rule to another /24 (the one-rule change).
set -euo pipefail
bin=$1 clients=$2 rules=$3 sif=$4 uif=$5 change=${6:-0}
keyfile=${KEYFILE:-/tmp/wse-bench-keys.$clients}
if [ ! -s "$keyfile" ] || [ "$(wc -l < "$keyfile")" -lt $((clients + 3)) ]; then
    for _ in $(seq $((clients + 3))); do "$bin" genkey; done > "$keyfile"
fi
awk -v clients="$clients" -v rules="$rules" -v sif="$sif" -v uif="$uif" -v change="$change" '
{ key[NR - 1] = $0 }
END {
    printf "config server '\''server'\''\n\toption interface '\''%s'\''\n\toption address '\''10.8.0.1/16'\''\n", sif
    printf "\toption private_key '\''%s'\''\n\toption backend '\''userspace'\''\n\toption listen_port '\''51899'\''\n\n", key[0]
    printf "config upstream '\''u1'\''\n\toption interface '\''%s'\''\n\toption private_key '\''%s'\''\n", uif, key[1]
    printf "\tlist address '\''10.64.0.2/32'\''\n\toption public_key '\''%s'\''\n\toption endpoint '\''192.0.2.1:51820'\''\n\n", key[2]
    for (c = 0; c < clients; c++) {
        printf "config client '\''c%d'\''\n\toption private_key '\''%s'\''\n", c, key[c + 3]
        printf "\tlist address '\''10.8.%d.%d/32'\''\n\toption upstream '\''u1'\''\n\n", int((c + 2) / 250), (c + 2) % 250 + 1
        for (r = 0; r < rules; r++) {
            third = (r == 0 && c == 0 && change) ? 255 : r % 250
            printf "config rule\n\toption client '\''c%d'\''\n\toption action '\''%s'\''\n", c, (r % 2 ? "direct" : "proxy")
            printf "\tlist cidr '\''%d.%d.%d.0/24'\''\n\n", 20 + int(r / 250), c % 250, third
        }
    }
}' "$keyfile"
