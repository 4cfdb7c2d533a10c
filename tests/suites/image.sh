#!/usr/bin/env bash
# Runs tests/image/run.sh as one suite of tests/run.sh.
set -euo pipefail
exec bash "$(dirname "$0")/../image/run.sh"
