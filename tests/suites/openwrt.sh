#!/usr/bin/env bash
# Runs tests/openwrt/run.sh as one suite of tests/run.sh.
set -euo pipefail
exec bash "$(dirname "$0")/../openwrt/run.sh"
