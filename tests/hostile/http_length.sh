#!/usr/bin/env bash
# Declared body lengths: huge (the old server died allocating them), over a route's limit,
# never sent; chunked bodies, oversized and malformed heads. Each without and with the
# token.
# After each attack: the process lives, the API answers within 1 s, RSS under
# its bound (see http_attack.py). No root: the API alone on 127.0.0.1:18480.
# Usage: http_length.sh WGSPLIT_BINARY
set -euo pipefail
# http_attack.py stops the daemon it started (also on SIGTERM) and removes its files.
exec timeout 100 python3 "$(dirname "$0")/http_attack.py" length "${1:?usage: $0 WGSPLIT_BINARY}" 18480
