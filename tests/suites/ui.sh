#!/usr/bin/env bash
# Runs tests/ui/run.sh (the daemon's web pages in Chromium) as one suite of tests/run.sh.
set -euo pipefail
exec bash "$(dirname "$0")/../ui/run.sh"
