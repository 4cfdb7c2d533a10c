#!/usr/bin/env bash
# Cross-origin writes by session cookie (also empty-body ones) refused; If-Match: a stale
# ETag is a 409, no If-Match still works; a 500 never quotes the file it failed on.
# After each attack: the process lives, the API answers within 1 s, RSS under
# its bound (see http_attack.py). No root: the API alone on 127.0.0.1:18483.
# Usage: http_origin.sh WGSPLIT_BINARY
set -euo pipefail
# http_attack.py stops the daemon it started (also on SIGTERM) and removes its files.
exec timeout 100 python3 "$(dirname "$0")/http_attack.py" origin "${1:?usage: $0 WGSPLIT_BINARY}" 18483
