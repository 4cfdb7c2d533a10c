#!/usr/bin/env bash
# Runs tests/luci/run.sh as one suite of tests/run.sh.
set -euo pipefail
exec bash "$(dirname "$0")/../luci/run.sh"
