#!/usr/bin/env bash
# Out of descriptors (RLIMIT_NOFILE lowered with prlimit, many connections held): the accept
# loop backs off and the API answers once they close.
# After each attack: the process lives, the API answers within 1 s, RSS under
# its bound (see http_attack.py). No root: the API alone on 127.0.0.1:18482.
# Usage: http_emfile.sh WGSPLIT_BINARY
set -euo pipefail
# http_attack.py stops the daemon it started (also on SIGTERM) and removes its files.
exec timeout 100 python3 "$(dirname "$0")/http_attack.py" emfile "${1:?usage: $0 WGSPLIT_BINARY}" 18482
