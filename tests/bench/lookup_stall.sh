#!/usr/bin/env bash
# A silent resolver against the daemon, two builds side by side in one run
# (tests/lib/lookup_ns.sh: getaddrinfo takes 10 s in the namespace, upstream up1's
# endpoint is a host name): how long from start until the API answers, and from
# `upstream import` of another host-name upstream until the daemon made its link.
# BASE_BIN: a baseline binary (e.g. main's target/debug/wgsplit before the
# background lookups, copied aside); the current tree's debug build is the other.
# Root; run it as a suite: `flock /tmp/wgsplit-suites.lock bash tests/bench/lookup_stall.sh BIN`.
set -uo pipefail
cd "$(dirname "$0")/../.."
BASE=${1:?usage: lookup_stall.sh BASE_BIN}
[ "$(id -u)" = 0 ] || { echo "needs root"; exit 1; }
cargo build --quiet -p wgsplit || exit 1
. tests/lib/netns.sh
. tests/lib/lookup_ns.sh
export PATH="$HOME/.cargo/bin:$PATH" WG_SUDO=true
export WG_USERSPACE_IMPLEMENTATION="${WG_USERSPACE_IMPLEMENTATION:-boringtun-cli}"
trap lk_down EXIT
declare -A api apply
for which in base current; do
    bin=$BASE; [ $which = current ] && bin=$PWD/target/debug/wgsplit
    lk_up "$bin" || echo "$which: the API did not answer in 15 s"
    api[$which]=$LK_API_MS
    lk_import b slow2.wslk.test || echo "$which: no link in 15 s"
    apply[$which]=$LK_APPLY_MS
    lk_down
done
ratio() { python3 -c "print(f'{$1 / max($2, 1):.1f}x')"; }
printf '%-44s %10s %10s %8s\n' "silent resolver (10 s per lookup)" "base ms" "current ms" "base/cur"
printf '%-44s %10s %10s %8s\n' "start -> API answers" "${api[base]}" "${api[current]}" "$(ratio "${api[base]}" "${api[current]}")"
printf '%-44s %10s %10s %8s\n' "import host-name upstream -> its link made" "${apply[base]}" "${apply[current]}" "$(ratio "${apply[base]}" "${apply[current]}")"
echo "base: $BASE"
