#!/usr/bin/env bash
# Slow-loris: twice the connection cap sending their heads a byte at a time; the API keeps
# answering, and unfinished heads are closed at the head timeout.
# After each attack: the process lives, the API answers within 1 s, RSS under
# its bound (see http_attack.py). No root: the API alone on 127.0.0.1:18481.
# Usage: http_slowloris.sh WGSPLIT_BINARY
set -euo pipefail
# http_attack.py stops the daemon it started (also on SIGTERM) and removes its files.
exec timeout 100 python3 "$(dirname "$0")/http_attack.py" slowloris "${1:?usage: $0 WGSPLIT_BINARY}" 18481
