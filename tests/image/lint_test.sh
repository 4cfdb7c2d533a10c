#!/usr/bin/env bash
# The board/ lint must pass on board/ and fail, saying why, on broken copies:
# each case breaks one rule the way the Buildroot tree once broke it (issue
# #16) and names the words the lint's failure must contain. Offline, < 5 s.
#   tests/image/lint_test.sh            prints ok/FAIL lines and 'N passed, M failed'
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
LINT=$ROOT/tests/image/lint_board.py
PASS=0 FAIL=0
ok() { PASS=$((PASS + 1)); echo "ok   $*"; }
fail() { FAIL=$((FAIL + 1)); echo "FAIL $*"; }
WORK=$(mktemp -d /tmp/wsbr-lint.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

if out=$(python3 "$LINT" "$ROOT/board" 2>&1); then
    ok "lint passes on board/ ($(tail -1 <<<"$out"))"
else
    fail "lint passes on board/"; grep -v '^ok' <<<"$out" | sed 's/^/    /'
fi

# expect_fail NAME EXPECTED EDIT: copy board/, run EDIT (a shell snippet, in
# the copy) and require the lint to fail with a line (not an "ok" one)
# containing EXPECTED. LINT_ENV: assignments put before the lint's command.
expect_fail() {
    local name=$1 expected=$2 edit=$3 copy=$WORK/$RANDOM out
    cp -a "$ROOT/board" "$copy"
    (cd "$copy" && eval "$edit") || { fail "$name: the edit did not apply"; return; }
    if out=$(${LINT_ENV:-} python3 "$LINT" "$copy" 2>&1); then
        fail "$name: the lint passed"
    elif out=$(grep -v '^ok ' <<<"$out") && grep -qF -- "$expected" <<<"$out"; then
        ok "$name: rejected ($(grep -F -- "$expected" <<<"$out" | head -1 | sed 's/^ *//'))"
    else
        fail "$name: rejected, but no line says '$expected'"; grep -v '^ok' <<<"$out" | sed 's/^/    /'
    fi
}
Q=configs/wgsplit_qemu_x86_64_defconfig
# grep first: an edit that matches nothing must not pass as a rejected copy
expect_fail "a select of a symbol only 2026.02 has" \
    "BR2_PACKAGE_NFTABLES_JSON: not in Buildroot 2025.02.16: package/wgsplit/Config.in" \
    'grep -q "select BR2_PACKAGE_NFTABLES " package/wgsplit/Config.in &&
     sed -i "s/^\(\tselect BR2_PACKAGE_NFTABLES\) .*/&\n\tselect BR2_PACKAGE_NFTABLES_JSON/" package/wgsplit/Config.in'
expect_fail "a misspelt symbol in a defconfig" \
    "BR2_PACKAGE_NFTABLE: not in Buildroot 2025.02.16, 2026.02.3: configs/wgsplit_qemu_x86_64_defconfig" \
    "echo BR2_PACKAGE_NFTABLE=y >>$Q"
expect_fail "a depends on a symbol neither release has" \
    "BR2_TOOLCHAIN_HAS_THREADZ: not in Buildroot 2025.02.16, 2026.02.3: package/wgsplit/Config.in" \
    'grep -q "depends on BR2_TOOLCHAIN_HAS_THREADS$" package/wgsplit/Config.in &&
     sed -i "s/depends on BR2_TOOLCHAIN_HAS_THREADS$/depends on BR2_TOOLCHAIN_HAS_THREADZ/" package/wgsplit/Config.in'
expect_fail "a symbol 2025.02 has but 2026.02 keeps only as legacy" \
    "BR2_KERNEL_HEADERS_5_4: legacy (removed) in Buildroot 2026.02.3" \
    "echo BR2_KERNEL_HEADERS_5_4=y >>$Q"
expect_fail "a symbol legacy in both releases" \
    "BR2_BINFMT_FLAT_SHARED: legacy (removed) in Buildroot 2025.02.16, 2026.02.3" \
    "echo BR2_BINFMT_FLAT_SHARED=y >>$Q"
expect_fail "the latest kernel instead of a pinned one" \
    "kernel pinned" \
    "grep -q CUSTOM_VERSION $Q && sed -i '/CUSTOM_VERSION/d' $Q && echo BR2_LINUX_KERNEL_LATEST_VERSION=y >>$Q"
expect_fail "a kernel older than WireGuard in tree" \
    "has WireGuard and concatenated interval sets in tree" \
    "grep -q '6.12.91' $Q && sed -i 's/\"6.12.91\"/\"5.4.280\"/' $Q"
expect_fail "the full arm64 defconfig for the QEMU twin" \
    "QEMU twin uses a small kernel config" \
    "sed -i '/CUSTOM_CONFIG/d' configs/wgsplit_qemu_aarch64_virt_defconfig &&
     printf 'BR2_LINUX_KERNEL_USE_DEFCONFIG=y\nBR2_LINUX_KERNEL_DEFCONFIG=\"defconfig\"\n' >>configs/wgsplit_qemu_aarch64_virt_defconfig"
expect_fail "a C++ toolchain on a board that installs the prebuilt binary" \
    "wgsplit_qemu_mips32r2el_malta_defconfig: no C++ toolchain" \
    "echo BR2_TOOLCHAIN_BUILDROOT_CXX=y >>configs/wgsplit_qemu_mips32r2el_malta_defconfig"
expect_fail "no C++ on a musl board building from source (the package would vanish)" \
    "wgsplit_qemu_x86_64_defconfig: C++ toolchain on" \
    "grep -q CXX $Q && sed -i '/CXX/d' $Q"
expect_fail "a kernel option the daemon does not use" \
    "fragment forces nothing the daemon does not use" \
    "echo CONFIG_NFT_LIMIT=y >>common/linux-wgsplit.fragment"
expect_fail "a second list of kernel options in the package" \
    "one list" \
    "sed -i 's/^define WGSPLIT_LINUX_CONFIG_FIXUPS$/&\n\t\$(call KCONFIG_ENABLE_OPT,CONFIG_NFT_LIMIT)/' package/wgsplit/wgsplit.mk && grep -q NFT_LIMIT package/wgsplit/wgsplit.mk"
expect_fail "a board/board/… path" \
    "board/board/" \
    "mkdir -p board/common && cp common/post-build.sh board/common/ &&
     sed -i 's|WGSPLIT_PATH)/common/post-build.sh|WGSPLIT_PATH)/board/common/post-build.sh|' $Q && grep -q board/common $Q"
expect_fail "a defconfig naming a missing script" \
    "(missing)" \
    "sed -i 's|common/post-build.sh|common/no-such-script.sh|' configs/*_defconfig"
O=common/rootfs-overlay/etc
expect_fail "a private key in the image's config (every device would share it)" \
    "ships no private key" \
    "grep -q FIRSTBOOT $O/config/wgsplit && sed -i \"s|'FIRSTBOOT'|'4EqAuesGDDDllVFRw6LW42qz0RGOaO4UN+emBozZgU0='|\" $O/config/wgsplit"
expect_fail "the web pages on every interface, WAN included" \
    "serves the pages on one LAN address" \
    "grep -q 192.168.1.1:8080 $O/config/wgsplit && sed -i 's/192.168.1.1:8080/0.0.0.0:8080/' $O/config/wgsplit"
expect_fail "no web pages in the image" \
    "ships /etc/config/wgsplit" \
    "rm $O/config/wgsplit"
expect_fail "a sysctl.d file nothing applies (no forwarding on the router)" \
    "something applies its /etc/sysctl.d" \
    "rm $O/init.d/S02sysctl"
mkdir -p "$WORK/empty"
LINT_ENV="env WGSPLIT_BR_SYMBOLS=$WORK/empty" expect_fail "no symbol lists to check against" \
    "symbol lists of Buildroot 2025.02.16 found" true
# The tree as issue #16 found it (before the fix): the lint fails it, naming the
# 2025.02-only symbol. Needs that commit in the clone (a shallow one lacks it).
BEFORE=f0d466b
if git -C "$ROOT" cat-file -e "$BEFORE^{commit}" 2>/dev/null; then
    mkdir -p "$WORK/before" && git -C "$ROOT" archive "$BEFORE" board | tar -x -C "$WORK/before"
    if out=$(python3 "$LINT" "$WORK/before/board" 2>&1); then
        fail "the tree of $BEFORE (issue #16): the lint passed"
    elif grep -q 'BR2_PACKAGE_NFTABLES_JSON: not in Buildroot 2025.02.16' <<<"$out"; then
        ok "the tree of $BEFORE (issue #16): rejected ($(tail -1 <<<"$out"), NFTABLES_JSON named)"
    else
        fail "the tree of $BEFORE: rejected without naming NFTABLES_JSON"
    fi
else
    echo "note: commit $BEFORE not in this clone; the before-the-fix case is not run"
fi
echo "$PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
