#!/usr/bin/env bash
# Image tests, runnable alone on a fresh Debian 12 machine (as root):
#   1. lint of the Buildroot external tree (board/), offline, plus broken
#      copies that the lint must reject (tests/image/lint_test.sh), and the
#      package's init script in a namespace (tests/image/initscript.sh);
#   2. static cross builds of wgsplit for the image architectures;
#   3. per architecture: build the initramfs image (Debian kernel + busybox +
#      wgsplit), boot it under QEMU (TCG) and run, inside, the smoke test
#      (kernel WireGuard, nf_tables sets, policy routing, the binary) and the
#      split-routing scenario (tests/image/vm/scenario.sh, with the firmware's
#      own config: the web pages on the LAN address only); on the first
#      architecture only (the kernel's netfilter is the same code on each; one
#      run keeps CI within minutes), fw4's flow offloading with wgsplit
#      (tests/image/vm/offload.sh, ~110 s on aarch64 under TCG).
#
#   tests/image/run.sh [ARCH...]        ARCH: aarch64 armv7 mipsel x86_64
#
# Default architectures: $WGSPLIT_IMAGE_ARCHS, else "aarch64 mipsel" under CI
# (one ARM, one MIPS: keeps CI within minutes) and all four otherwise.
# Metrics go to target/image/metrics.tsv; the last line is 'N passed, M failed'.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT" || exit 2
# shellcheck source=image/lib/arch.sh
source image/lib/arch.sh
# shellcheck source=tests/lib/deps.sh
if [ -f tests/lib/deps.sh ]; then source tests/lib/deps.sh; fi
if declare -F install_deps_image >/dev/null; then
    install_deps_image
else
    # shellcheck source=image/lib/host-deps.sh
    source image/lib/host-deps.sh
    wgs_apt_install wireguard-tools python3 cpio kmod xz-utils binutils file
fi

if [ $# -gt 0 ]; then
    ARCHS="$*"
elif [ -n "${WGSPLIT_IMAGE_ARCHS:-}" ]; then
    ARCHS=$WGSPLIT_IMAGE_ARCHS
elif [ "${CI:-}" = true ]; then
    ARCHS="aarch64 mipsel"
else
    ARCHS="aarch64 armv7 mipsel x86_64"
fi

PASS=0 FAIL=0
ok() { PASS=$((PASS + 1)); echo "ok   $*"; }
fail() { FAIL=$((FAIL + 1)); echo "FAIL $*"; }
OUT=$ROOT/target/image
mkdir -p "$OUT"
METRICS=$OUT/metrics.tsv
: >"$METRICS"
metric() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >>"$METRICS"; }

# --- 1. Buildroot external tree ------------------------------------------------
echo "== board/ lint"
if python3 tests/image/lint_board.py board >"$OUT/lint.log" 2>&1; then
    ok "board/ lint ($(tail -1 "$OUT/lint.log"))"
else
    fail "board/ lint"; grep -v '^ok' "$OUT/lint.log" | sed 's/^/    /'
fi
# broken copies the lint must reject, each for the reason it names
if bash tests/image/lint_test.sh >"$OUT/lint-test.log" 2>&1; then
    ok "board/ lint rejects broken trees ($(tail -1 "$OUT/lint-test.log"))"
else
    fail "board/ lint rejects broken trees"; grep -v '^ok' "$OUT/lint-test.log" | sed 's/^/    /'
fi

# the package's busybox init script against the debug binary, in a namespace
if bash tests/image/initscript.sh >"$OUT/initscript.log" 2>&1; then
    ok "S95wgsplit behaves like the OpenWrt service ($(tail -1 "$OUT/initscript.log"))"
else
    fail "S95wgsplit behaves like the OpenWrt service"; grep -v '^ok' "$OUT/initscript.log" | sed 's/^/    /'
fi

# --- 2. cross builds --------------------------------------------------------------
TARGETS=()
for a in $ARCHS; do
    wgs_arch "$a" || exit 2
    TARGETS+=("$RUST_TARGET")
done
echo "== cross builds: ${TARGETS[*]}"
t0=$(date +%s)
if image/cross-build.sh --no-readme "${TARGETS[@]}" >"$OUT/cross-build.log" 2>&1; then
    ok "cross builds (${TARGETS[*]}) in $(($(date +%s) - t0)) s"
else
    fail "cross builds"; tail -30 "$OUT/cross-build.log" | sed 's/^/    /'
fi
for t in "${TARGETS[@]}"; do
    bin=target/cross/wgsplit-$t
    if [ -f "$bin" ] && file "$bin" | grep -Eq 'statically linked|static-pie linked'; then
        ok "$t: static binary ($(stat -c %s "$bin") bytes)"
    else
        fail "$t: static binary at $bin"
    fi
done
while IFS=$'\t' read -r t s x; do
    metric "$t" stripped_bytes "$s"
    metric "$t" xz_bytes "$x"
done <target/cross/sizes.tsv

# --- 3. images, boots, in-image tests ----------------------------------------------
FIX=$OUT/fixture
rm -rf "$FIX"
tests/image/make-fixture.sh "$FIX"

# run_vm ARCH TEST TIMEOUT: boot, count the WSI-CHECK lines, keep the metrics
run_vm() {
    local a=$1 test=$2 to=$3 log rc
    log=$OUT/$a/console-$test.log
    image/boot.sh "$a" --test "$test" --timeout "$to" >/dev/null 2>&1
    rc=$?
    if [ ! -s "$log" ]; then
        fail "$a/$test: no console output"
        return
    fi
    local n_ok n_fail
    n_ok=$(tr -d '\r' <"$log" | grep -c '^WSI-CHECK ok')
    n_fail=$(tr -d '\r' <"$log" | grep -c '^WSI-CHECK FAIL')
    PASS=$((PASS + n_ok))
    FAIL=$((FAIL + n_fail))
    tr -d '\r' <"$log" | awk -v a="$a/$test" '
        /^WSI-CHECK ok/ { sub(/^WSI-CHECK ok +/, ""); print "ok   " a ": " $0 }
        /^WSI-CHECK FAIL/ { sub(/^WSI-CHECK FAIL +/, ""); print "FAIL " a ": " $0; show = 1; next }
        /^    \| / && show { print; next }
        { show = 0 }'
    case "$rc" in
    0) ok "$a/$test: VM ran it and powered off" ;;
    124) fail "$a/$test: VM timed out after ${to}s" ;;
    125) fail "$a/$test: VM stopped without a result" ;;
    *) [ "$n_fail" -gt 0 ] || fail "$a/$test: exit $rc" ;;
    esac
    tr -d '\r' <"$log" | sed -n 's/^WSI-METRIC \([a-z_0-9]*\)=\(.*\)$/\1\t\2/p' |
        while IFS=$'\t' read -r k v; do metric "$a" "$k" "$v"; done
    local init wall
    init=$(tr -d '\r' <"$log" | sed -n 's/^WSI-INIT uptime=\([0-9.]*\).*/\1/p' | head -1)
    wall=$(sed -n 's/^WSI-HOST .*wall=\([0-9.]*\).*/\1/p' "$log" | tail -1)
    metric "$a" "${test}_kernel_to_init_s" "$init"
    metric "$a" "${test}_wall_s" "$wall"
}

for a in $ARCHS; do
    wgs_arch "$a"
    echo "== $a image"
    if image/build-image.sh "$a" --test-dir "$FIX" --config "$FIX/wgsplit.conf" >"$OUT/build-image-$a.log" 2>&1; then
        ok "$a: image built ($(du -k "$OUT/$a/initramfs.cpio" | cut -f1) KB initramfs)"
    else
        fail "$a: image build"; tail -20 "$OUT/build-image-$a.log" | sed 's/^/    /'
        continue
    fi
    run_vm "$a" smoke 180
    run_vm "$a" scenario 420
    # WGSPLIT_IMAGE_OFFLOAD_ARCHS: where the offload test runs (default: the
    # first architecture; "none" skips it)
    case " ${WGSPLIT_IMAGE_OFFLOAD_ARCHS:-${ARCHS%% *}} " in
    *" $a "*) run_vm "$a" offload 480 ;;
    esac
done

echo "== metrics ($METRICS)"
column -t -s $'\t' "$METRICS" 2>/dev/null || cat "$METRICS"
echo "$PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
