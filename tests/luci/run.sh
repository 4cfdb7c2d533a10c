#!/bin/bash
# luci-app-wgsplit tests:
#   1. translations: the .pot matches the sources, zh_Hans and ru cover it
#   2. validation: the stand-in's datatype engine behaves as LuCI's (validation.test.js)
#   3. schema: every option the forms write is documented and accepted by
#      `wgsplit config check` (node, LuCI stand-in)
#   4. messages: the CLI's errors and config check lines read in ru and zh_Hans
#   5. browser: every page in headless Chromium, screenshots in tests/out/luci/,
#      add-client/rule/import/explain flows against a recorded uci/ubus stand-in
#   optional, with LuCI's code from a checkout (not in this repository):
#      LUCI_VALIDATION_JS=…/validation.js  the stand-in's datatypes against LuCI's, case by case
#      LUCI_RESOURCES=…/luci-base/htdocs/luci-static/resources  the pages under LuCI's own JS
#
#   tests/luci/run.sh          (WGSPLIT_BIN=path to use a given binary for config check)
# Ends with 'N passed, M failed'; exits non-zero on any failure.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
# shellcheck source=tests/lib/deps.sh
. tests/lib/deps.sh
install_deps_luci || { echo "0 passed, 1 failed"; exit 1; }

if [ ! -d tests/luci/node_modules/playwright-core ]; then
	(cd tests/luci && npm ci --no-audit --no-fund --loglevel=error) >&2 \
		|| { echo "npm ci failed"; echo "0 passed, 1 failed"; exit 1; }
fi
mkdir -p tests/out/luci

# the schema test checks the forms against `wgsplit config check`: have a binary
if [ -z "${WGSPLIT_BIN:-}" ] && [ ! -x target/release/wgsplit ] && [ ! -x target/debug/wgsplit ]; then
	cargo build -p wgsplit >&2 || echo "luci tests: cargo build failed; config check tests will be skipped" >&2
fi
# the newer of the two builds: a release binary left from an older tree must not
# stand in for the CLI the pages call today (client history, overview, …)
if [ -z "${WGSPLIT_BIN:-}" ]; then
	newest=$(ls -t target/release/wgsplit target/debug/wgsplit 2>/dev/null | head -n 1 || true)
	[ -n "$newest" ] && export WGSPLIT_BIN=$PWD/$newest
fi

total_pass=0
total_fail=0
# run NAME CMD...: show its output, add up its closing 'N passed, M failed'
run() {
	local name=$1 out rc p f
	shift
	echo "== $name"
	out=$("$@" 2>&1)
	rc=$?
	printf '%s\n' "$out" | sed '$d'
	read -r p f < <(printf '%s\n' "$out" | sed -n 's/^\([0-9]\+\) passed, \([0-9]\+\) failed.*/\1 \2/p' | tail -n 1)
	if [ -z "${p:-}" ]; then
		p=0
		f=1
		printf '%s\n' "$out" | tail -n 1
	fi
	[ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && f=1
	echo "$name: $p passed, $f failed"
	total_pass=$((total_pass + p))
	total_fail=$((total_fail + f))
}

i18n() {
	if python3 tests/luci/i18n.py check; then echo "1 passed, 0 failed"; else echo "0 passed, 1 failed"; return 1; fi
}

run i18n i18n
run validation node tests/luci/validation.test.js
# against LuCI's own validation.js when LUCI_VALIDATION_JS names one (a skip otherwise)
run real-validation node tests/luci/real-validation.test.js
run schema node tests/luci/schema.test.js
run messages node tests/luci/messages.test.js
run browser node tests/luci/browser.test.js
# the pages under LuCI's own JavaScript when LUCI_RESOURCES names luci-base's resources (a skip otherwise)
run real-luci node tests/luci/real-luci.test.js

echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
