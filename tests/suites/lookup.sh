#!/usr/bin/env bash
# Host-name endpoints never stall the daemon (tests/lib/lookup_ns.sh): its
# namespace's resolver is silent (getaddrinfo takes 10 s) and an upstream's
# endpoint is a host name. The daemon must serve its API within 3 s of starting,
# apply a new upstream with another such name without waiting for its lookup,
# give a peer whose name does resolve (the namespace's hosts file) its address
# once the lookup lands, and log the failed lookup. Root only. ~20 s.
set -uo pipefail
cd "$(dirname "$0")/../.."
if [ "$(id -u)" != 0 ]; then echo "lookup: needs root (network namespaces)"; exit 1; fi
cargo build --quiet -p wgsplit || exit 1
. tests/lib/netns.sh
. tests/lib/lookup_ns.sh
export PATH="$HOME/.cargo/bin:$PATH" WG_SUDO=true
export WG_USERSPACE_IMPLEMENTATION="${WG_USERSPACE_IMPLEMENTATION:-boringtun-cli}"
fails=0
check() { # name expected actual
    if [ "$2" = "$3" ]; then echo "ok   $1"; else echo "FAIL $1: expected '$2', got '$3'"; fails=$((fails + 1)); fi
}
trap lk_down EXIT

lk_up "$PWD/target/debug/wgsplit"; up=$?
check "the API answers" 0 "$up"
echo "     API up ${LK_API_MS} ms after start (a synchronous lookup held the start 10 s)"
check "the API answers within 3 s of start" yes "$([ "$LK_API_MS" -lt 3000 ] && echo yes)"
check "up1's link was made at start" yes "$(lk_has_link "${LK_IF}a" && echo yes)"
# The premise: the namespace's resolver is silent, and its hosts file is read.
timeout 2 ip netns exec "$LK_NS" getent ahosts slow9.wslk.test >/dev/null; rc=$?
check "the namespace's resolver is silent (getent still waits after 2 s)" 124 "$rc"
check "a name in the namespace's hosts file resolves" 192.0.2.77 \
    "$(ip netns exec "$LK_NS" getent ahosts fast.wslk.test | awk 'NR==1{print $1}')"

# A new upstream with another silent name: the re-apply must not wait for it.
lk_import b slow2.wslk.test; rc=$?
echo "     the new upstream applied ${LK_APPLY_MS} ms after the import"
check "the re-apply made its link within 2 s (its lookup still runs)" yes \
    "$([ $rc = 0 ] && [ "$LK_APPLY_MS" -lt 2000 ] && echo yes)"
slow_if=$LK_LAST_IF
t0=$(lk_ms); code=$(lk_api); t_call=$(( $(lk_ms) - t0 ))
check "the API answers while the lookups hang (${t_call} ms)" yes "$([ "$code" = 200 ] && [ "$t_call" -lt 1000 ] && echo yes)"
check "its peer has no endpoint yet" "" "$(lk_endpoint_of "$slow_if")"

# A name that resolves: its peer gets the address when the lookup lands.
lk_import c fast.wslk.test
got=
for _ in $(seq 80); do
    got=$(lk_endpoint_of "$LK_LAST_IF")
    [ -n "$got" ] && break
    sleep 0.1
done
check "a resolving name's peer got its endpoint when the lookup landed" 192.0.2.77:51820 "$got"

# up1's lookup fails after the resolver's 10 s: the monitor logs it, nothing waited.
line="upstream up1: cannot resolve slow1.wslk.test; keeping the last address"
for _ in $(seq 150); do
    grep -q "$line" "$LK_TMP/daemon.log" && break
    sleep 0.1
done
check "the failed lookup is logged" yes "$(grep -q "$line" "$LK_TMP/daemon.log" && echo yes)"
check "up1's peer has no endpoint" "" "$(lk_endpoint_of "${LK_IF}a")"
check "the daemon is still serving" 200 "$(lk_api)"

if [ $fails -ne 0 ]; then echo "--- daemon log (tail)"; grep -v "got unsupported info" "$LK_TMP/daemon.log" | tail -40; fi
if [ $fails -eq 0 ]; then echo "lookup: all checks passed"; else echo "lookup: $fails checks failed"; fi
[ $fails -eq 0 ]
