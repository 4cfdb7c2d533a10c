#!/usr/bin/env bash
# Assemble a bootable initramfs firmware image for one architecture.
#
#   image/build-image.sh ARCH [--bin PATH] [--test-dir DIR] [--config FILE] [--out DIR] [--no-install]
#
# ARCH: aarch64 | armv7 | mipsel | x86_64
#
# The image is Debian 12's kernel for that architecture (it carries wireguard.ko
# and the nf_tables modules), busybox-static, the static `wgsplit` (default:
# target/cross/wgsplit-<rust target> from image/cross-build.sh), Debian's `wg`
# and `nft` with the shared libraries they need (for tests and for looking
# around; wgsplit itself needs neither), and image/rootfs/init.
# The Buildroot images' rootfs overlay (board/common/rootfs-overlay) comes
# along: the firmware's /etc/config/wgsplit (web pages on the LAN address,
# server key made at first boot), sysctl settings and their init script.
# Files of --test-dir land in /test; --config replaces /etc/config/wgsplit.
#
# Output in $OUT (default target/image/ARCH): kernel, initramfs.cpio,
# qemu.args (the machine to boot it on; see image/boot.sh).
# Downloads are cached in $WGSPLIT_IMAGE_CACHE (default /var/cache/wgsplit-image).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=image/lib/host-deps.sh
source "$ROOT/image/lib/host-deps.sh"
# shellcheck source=image/lib/arch.sh
source "$ROOT/image/lib/arch.sh"

[ $# -ge 1 ] || { sed -n '2,18p' "$0"; exit 2; }
ARCH=$1; shift
wgs_arch "$ARCH" || exit 2
BIN='' TEST_DIR='' CONFIG='' INSTALL=1
OUT=$ROOT/target/image/$ARCH
while [ $# -gt 0 ]; do
    case "$1" in
    --bin) BIN=$2; shift ;;
    --test-dir) TEST_DIR=$2; shift ;;
    --config) CONFIG=$2; shift ;;
    --out) OUT=$2; shift ;;
    --no-install) INSTALL=0 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
[ -n "$BIN" ] || BIN=$ROOT/target/cross/wgsplit-$RUST_TARGET
[ -f "$BIN" ] || { echo "no wgsplit binary at $BIN (run image/cross-build.sh $RUST_TARGET)" >&2; exit 1; }

CACHE=${WGSPLIT_IMAGE_CACHE:-/var/cache/wgsplit-image}
DEBS=$CACHE/debs/$DEB_ARCH
mkdir -p "$DEBS" "$OUT"
log() { printf '[image %s %s] %s\n' "$ARCH" "$(date +%H:%M:%S)" "$*" >&2; }

# Debian packages taken into the image: the kernel, busybox, and the userland
# programs wg and nft with the libraries they link.
PKGS=(busybox-static wireguard-tools nftables libnftables1 libnftnl11 libmnl0
    libjansson4 libgmp10 libxtables12 libedit2 libbsd0 libmd0 libtinfo6 libc6)

if [ "$INSTALL" = 1 ]; then
    wgs_add_arch "$DEB_ARCH"
    wgs_apt_install "$QEMU_PKG" cpio kmod xz-utils python3 binutils
fi

fetch_debs() {
    # The kernel flavour's metapackage names the current ABI package.
    local kpkg
    kpkg=$(apt-cache depends "linux-image-$KFLAVOUR:$DEB_ARCH" 2>/dev/null |
        awk '/Depends: linux-image-[0-9]/{print $2; exit}')
    if [ -z "$kpkg" ]; then
        wgs_apt_updated=0
        wgs_apt_update
        kpkg=$(apt-cache depends "linux-image-$KFLAVOUR:$DEB_ARCH" |
            awk '/Depends: linux-image-[0-9]/{print $2; exit}')
    fi
    [ -n "$kpkg" ] || { echo "cannot resolve linux-image-$KFLAVOUR:$DEB_ARCH" >&2; return 1; }
    kpkg=${kpkg%:*}
    local want=("$kpkg" "${PKGS[@]}") p missing=()
    for p in "${want[@]}"; do
        compgen -G "$DEBS/${p}_*.deb" >/dev/null || missing+=("$p:$DEB_ARCH")
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        log "downloading ${missing[*]}"
        (cd "$DEBS" && apt-get download -q "${missing[@]}" >/dev/null 2>&1) || {
            wgs_apt_updated=0
            wgs_apt_update
            (cd "$DEBS" && apt-get download -q "${missing[@]}" >/dev/null)
        }
    fi
    echo "$kpkg"
}

KPKG=$(fetch_debs)
STAGE=$CACHE/stage/$DEB_ARCH
if [ ! -f "$STAGE/.done" ] || [ "$(cat "$STAGE/.done")" != "$KPKG ${PKGS[*]}" ]; then
    log "unpacking $KPKG and userland packages"
    rm -rf "$STAGE" && mkdir -p "$STAGE"
    for p in "$KPKG" "${PKGS[@]}"; do
        dpkg -x "$(compgen -G "$DEBS/${p}_*.deb" | sort -V | tail -1)" "$STAGE"
    done
    # The package leaves modules.dep to its postinst: make it here.
    kv=$(basename "$(compgen -G "$STAGE/lib/modules/*" | head -1)")
    depmod -b "$STAGE" "$kv"
    echo "$KPKG ${PKGS[*]}" >"$STAGE/.done"
fi
KVER=$(basename "$(compgen -G "$STAGE/lib/modules/*" | head -1)")

WORK=$OUT/rootfs
rm -rf "$WORK" && mkdir -p "$WORK"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,run,tmp,etc/config,root,lib/modules,test,var}
ln -s ../run "$WORK/var/run"
ln -s ../sbin/wgsplit "$WORK/usr/bin/wgsplit"  # where Buildroot's package puts it

# Kernel modules: the closure of what wgsplit and the tests need, in load order.
MODS=(wireguard veth nf_tables nft_ct nft_nat nft_chain_nat nft_masq nft_redir
    nft_reject_inet nft_fib_inet nft_fib_ipv4 nft_fib_ipv6 nft_limit nft_quota
    nft_numgen nf_conntrack nf_nat nfnetlink tun dummy
    nf_flow_table nf_flow_table_inet nft_flow_offload nft_objref)  # fw4's offloading, named counters (tests/image/vm/offload.sh)
python3 - "$STAGE/lib/modules/$KVER" "$WORK" "${MODS[@]}" >"$WORK/etc/modules.order" <<'PY'
import os, shutil, sys
mdir, root, wanted = sys.argv[1], sys.argv[2], sys.argv[3:]
deps, byname = {}, {}
for line in open(os.path.join(mdir, "modules.dep")):
    mod, _, rest = line.partition(":")
    deps[mod] = rest.split()
    byname[os.path.basename(mod).split(".ko")[0].replace("-", "_")] = mod
# "softdep X pre: Y" (libcrc32c needs the crc32c provider first); Y may be an alias.
alias, pre = {}, {}
for line in open(os.path.join(mdir, "modules.alias")):
    f = line.split()
    if len(f) == 3 and f[0] == "alias":
        alias.setdefault(f[1].replace("-", "_"), []).append(f[2].replace("-", "_"))
for line in open(os.path.join(mdir, "modules.softdep")):
    f = line.split()
    if len(f) > 3 and f[0] == "softdep" and f[2] == "pre:":
        pre[f[1].replace("-", "_")] = [w for w in f[3:] if not w.endswith(":")]
def resolve(name):
    """All modules that may provide NAME (an alias can have several, e.g. a
    CPU-specific crc32c and the generic one: take them all, generic first)."""
    name = name.replace("-", "_")
    if name in byname:
        return [byname[name]]
    cands = sorted(alias.get(name, []), key=lambda m: (not m.endswith("_generic"), m))
    return [byname[c] for c in cands if c in byname]
order, seen = [], set()
def visit(m):
    if m in seen:
        return
    seen.add(m)
    for d in deps[m]:
        visit(d)
    for p in pre.get(os.path.basename(m).split(".ko")[0].replace("-", "_"), []):
        for r in resolve(p):
            visit(r)
    order.append(m)
for w in wanted:
    if w in byname:
        visit(byname[w])
    else:
        print(f"note: {w} is not a module here (built in or absent)", file=sys.stderr)
for m in order:
    if m.endswith((".xz", ".zst", ".gz")):
        raise SystemExit(f"compressed module {m}: not handled")
    dst = os.path.join(root, "lib/modules", os.path.basename(m))
    shutil.copy2(os.path.join(mdir, m), dst)
    print(os.path.basename(m))
PY
log "$(wc -l <"$WORK/etc/modules.order") modules, kernel $KVER"

# The kernel must have built in what we do not load as modules.
KCONF=$STAGE/boot/config-$KVER
for opt in CONFIG_IPV6 CONFIG_IP_MULTIPLE_TABLES CONFIG_IPV6_MULTIPLE_TABLES CONFIG_NET_NS \
    CONFIG_NF_CONNTRACK_MARK CONFIG_NF_TABLES_INET CONFIG_BLK_DEV_INITRD; do
    grep -q "^$opt=y" "$KCONF" || { echo "kernel $KVER lacks $opt=y" >&2; exit 1; }
done

cp "$STAGE/boot/$KIMAGE-$KVER" "$OUT/kernel"

# Userland.
cp "$STAGE/bin/busybox" "$WORK/bin/busybox"
ln -s busybox "$WORK/bin/sh"
install -m 0755 "$BIN" "$WORK/usr/sbin/wgsplit"
python3 "$ROOT/image/lib/elfcopy.py" "$STAGE" "$WORK" usr/bin/wg usr/sbin/nft >/dev/null
install -m 0755 "$ROOT/image/rootfs/init" "$WORK/init"
install -m 0755 "$ROOT/image/rootfs/wsi-netns" "$WORK/bin/wsi-netns"
# The Buildroot package's init script, so the image exercises it too.
install -D -m 0755 "$ROOT/board/package/wgsplit/S95wgsplit" "$WORK/etc/init.d/S95wgsplit"
mkdir -p "$WORK/var/log"
cp -a "$ROOT/board/common/rootfs-overlay/." "$WORK/"
chmod 0700 "$WORK/etc/config"  # as board/common/post-build.sh leaves it
echo "wgsplit-$ARCH" >"$WORK/etc/hostname"
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$WORK/etc/passwd"
printf 'root:x:0:\n' >"$WORK/etc/group"
printf '127.0.0.1 localhost\n::1 localhost\n' >"$WORK/etc/hosts"
: >"$WORK/etc/resolv.conf"
if [ -n "$CONFIG" ]; then
    install -m 0600 "$CONFIG" "$WORK/etc/config/wgsplit"
fi
if [ -n "$TEST_DIR" ]; then
    cp -a "$TEST_DIR"/. "$WORK/test/"
fi
printf '%s\n' "$ARCH" >"$WORK/etc/wgsplit-image-arch"

(cd "$WORK" && find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc --owner=0:0) >"$OUT/initramfs.cpio"
rm -rf "$WORK"
printf '%s\n' "${QEMU_ARGS[@]}" >"$OUT/qemu.args"
echo "$KVER" >"$OUT/kernel.version"
log "image: $OUT (kernel $(du -h "$OUT/kernel" | cut -f1), initramfs $(du -h "$OUT/initramfs.cpio" | cut -f1))"
