#!/usr/bin/env bash
# Runs tests/ui/run.sh (the daemon's web pages in Chromium) and tests/ui/side.sh
# (pages on a LAN address refuse the WAN side) as one suite of tests/run.sh.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
rc=0
bash tests/ui/run.sh || rc=1
bash tests/ui/side.sh || rc=1
exit $rc
