#!/usr/bin/env bash
# Static, stripped `wgsplit` binaries for router CPUs, from a fresh Debian 12 machine.
#
#   image/cross-build.sh [--no-install] [--no-readme] [--out DIR] [TARGET...]
#
# TARGETs (default: all five):
#   aarch64-unknown-linux-musl       stable std (rustup target)
#   x86_64-unknown-linux-musl        stable std (rustup target)
#   armv7-unknown-linux-musleabihf   nightly -Zbuild-std, Debian musl-dev:armhf
#   mipsel-unknown-linux-musl        nightly -Zbuild-std, soft-float musl built here
#   mips-unknown-linux-musl          nightly -Zbuild-std, soft-float musl built here
#
# Every target links with rust-lld against a musl "self-contained" directory in
# the toolchain's sysroot (crt objects, libc.a, libunwind.a, empty crtbegin/crtend),
# the same layout rustup ships for tier-2 musl targets.  What is slow to make
# (musl and LLVM libunwind for MIPS) is cached in $WGSPLIT_CROSS_CACHE
# (default /var/cache/wgsplit-cross).
#
# Output: $OUT/wgsplit-<target> (default target/cross/) and $OUT/sizes.tsv;
# unless --no-readme, the size table in README.md between the sizes markers.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=image/lib/host-deps.sh
source "$ROOT/image/lib/host-deps.sh"

CACHE=${WGSPLIT_CROSS_CACHE:-/var/cache/wgsplit-cross}
OUT=$ROOT/target/cross
TARGET_DIR=${WGSPLIT_CROSS_TARGET_DIR:-$ROOT/target/cross-build}
INSTALL=1
README=1
ALL_TARGETS=(aarch64-unknown-linux-musl armv7-unknown-linux-musleabihf
    mipsel-unknown-linux-musl mips-unknown-linux-musl x86_64-unknown-linux-musl)
TARGETS=()
while [ $# -gt 0 ]; do
    case "$1" in
    --no-install) INSTALL=0 ;;
    --no-readme) README=0 ;;
    --out) OUT=$2; shift ;;
    -h | --help) sed -n '2,22p' "$0"; exit 0 ;;
    -*) echo "unknown option $1" >&2; exit 2 ;;
    *) TARGETS+=("$1") ;;
    esac
    shift
done
[ "${#TARGETS[@]}" -gt 0 ] || TARGETS=("${ALL_TARGETS[@]}")
mkdir -p "$CACHE" "$OUT"

log() { printf '[cross %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# Size tuning for the build-std (nightly) targets: no unwinding machinery, no
# panic location strings, std without backtrace symbolisation and with its
# size-optimised algorithms, and `#[derive(Debug)]` printing only the type or
# variant name (-Zfmt-debug=shallow: -250 KB on mipsel; wgsplit prints `{:?}`
# only of field-less enums, whose output is unchanged).  Override with
# WGSPLIT_NIGHTLY_RUSTFLAGS / WGSPLIT_BUILD_STD_FEATURES to measure the difference.
NIGHTLY_RUSTFLAGS=${WGSPLIT_NIGHTLY_RUSTFLAGS:--Zunstable-options -Cpanic=immediate-abort -Zlocation-detail=none -Zfmt-debug=shallow}
BUILD_STD_FEATURES=${WGSPLIT_BUILD_STD_FEATURES-optimize_for_size}

is_nightly() {
    case "$1" in
    armv7-* | mips*) return 0 ;;
    *) return 1 ;;
    esac
}

# Debian cross gcc that matches a target (used to compile empty crt objects and
# as the source of binutils).
gnu_triple() {
    case "$1" in
    armv7-*) echo arm-linux-gnueabihf ;;
    mipsel-*) echo mipsel-linux-gnu ;;
    mips-*) echo mips-linux-gnu ;;
    aarch64-*) echo aarch64-linux-gnu ;;
    x86_64-*) echo x86_64-linux-gnu ;;
    esac
}

install_host() {
    local pkgs=(xz-utils binutils) need_nightly=0 t
    for t in "${TARGETS[@]}"; do
        case "$t" in
        armv7-*) pkgs+=(gcc-arm-linux-gnueabihf musl-dev:armhf); need_nightly=1 ;;
        mipsel-*) pkgs+=(gcc-mipsel-linux-gnu clang dpkg-dev make); need_nightly=1 ;;
        mips-*) pkgs+=(gcc-mips-linux-gnu clang dpkg-dev make); need_nightly=1 ;;
        aarch64-* | x86_64-*) wgs_rustup_target "$t" ;;
        *) echo "unknown target $t" >&2; exit 2 ;;
        esac
    done
    case " ${pkgs[*]} " in *" musl-dev:armhf "*) wgs_add_arch armhf ;; esac
    case " ${pkgs[*]} " in *" dpkg-dev "*) wgs_deb_src ;; esac
    wgs_apt_install "${pkgs[@]}"
    [ "$need_nightly" = 0 ] || wgs_rustup_nightly
}

# --- musl + LLVM libunwind for MIPS (Rust's MIPS musl targets are soft-float,
# Debian's musl-dev:mipsel is hard-float) ------------------------------------

musl_source() {
    local src=$CACHE/src
    if ! compgen -G "$src/musl-*/configure" >/dev/null; then
        log "fetching Debian's musl source package"
        rm -rf "$src" && mkdir -p "$src"
        (cd "$src" && apt-get source -q musl >/dev/null 2>&1) || {
            wgs_apt_updated=0 && wgs_apt_update && (cd "$src" && apt-get source -q musl >/dev/null)
        }
    fi
    compgen -G "$src/musl-*/configure" | head -1 | xargs dirname
}

# build_mips_sysroot TARGET DIR: musl (static, soft-float, mips32r2) and
# libunwind.a into DIR/{lib,include}.
build_mips_sysroot() {
    local t=$1 dir=$2 gnu endian src b
    gnu=$(gnu_triple "$t")
    [ "${t%%-*}" = mipsel ] && endian=-EL || endian=-EB
    src=$(musl_source)
    b=$CACHE/build-musl-$t
    log "building musl for $t (soft-float, mips32r2)"
    rm -rf "$b" "$dir.tmp" && cp -a "$src" "$b"
    (cd "$b" &&
        CROSS_COMPILE="$gnu-" CC="$gnu-gcc" CFLAGS="-Os -msoft-float -march=mips32r2 -fno-pic" \
            ./configure --target="${t%%-*}-linux-musl" --prefix=/ --disable-shared >/dev/null &&
        make -j"$(nproc)" >/dev/null &&
        make install DESTDIR="$dir.tmp" >/dev/null)
    rm -rf "$b"

    log "building LLVM libunwind for $t with clang"
    local uw ob cf
    uw=$(rustc +nightly --print sysroot)/lib/rustlib/src/rust/src/llvm-project/libunwind
    ob=$CACHE/build-unwind-$t
    rm -rf "$ob" && mkdir -p "$ob"
    cf=(--target="${t%%-*}-linux-musl" "$endian" -march=mips32r2 -msoft-float -Os
        -nostdinc -isystem "$dir.tmp/include" -isystem "$(clang -print-resource-dir)/include"
        -I "$uw/include" -D_LIBUNWIND_IS_NATIVE_ONLY -D_LIBUNWIND_DISABLE_VISIBILITY_ANNOTATIONS
        -DNDEBUG -funwind-tables -fno-exceptions -fvisibility=hidden -fno-pic)
    local f
    for f in UnwindLevel1.c UnwindLevel1-gcc-ext.c Unwind-sjlj.c; do
        clang "${cf[@]}" -std=c99 -c "$uw/src/$f" -o "$ob/${f%.*}.o"
    done
    for f in UnwindRegistersRestore.S UnwindRegistersSave.S; do
        clang "${cf[@]}" -c "$uw/src/$f" -o "$ob/${f%.*}.o"
    done
    clang "${cf[@]}" -x c++ -std=c++17 -nostdinc++ -fno-rtti -c "$uw/src/libunwind.cpp" -o "$ob/libunwind.o"
    "$gnu-ar" rcs "$dir.tmp/lib/libunwind.a" "$ob"/*.o
    rm -rf "$ob" "$dir"
    mv "$dir.tmp" "$dir"
}

# install_self_contained TARGET: crt objects, libc.a, libunwind.a and empty
# crtbegin/crtend into <nightly sysroot>/lib/rustlib/TARGET/lib/self-contained.
install_self_contained() {
    local t=$1 gnu sc lib
    gnu=$(gnu_triple "$t")
    sc=$(rustc +nightly --print sysroot)/lib/rustlib/$t/lib/self-contained
    mkdir -p "$sc"
    case "$t" in
    armv7-*)
        lib=/usr/lib/arm-linux-musleabihf
        cp "$lib"/{crt1.o,crti.o,crtn.o,rcrt1.o,Scrt1.o,libc.a} "$sc/"
        # Debian's cross libgcc_eh.a provides the _Unwind_* symbols for ARM EHABI.
        cp "$(arm-linux-gnueabihf-gcc -print-file-name=libgcc_eh.a)" "$sc/libunwind.a"
        ;;
    mips*)
        local sr=$CACHE/sysroot-$t
        [ -f "$sr/lib/libc.a" ] && [ -f "$sr/lib/libunwind.a" ] || build_mips_sysroot "$t" "$sr"
        cp "$sr"/lib/{crt1.o,crti.o,crtn.o,rcrt1.o,Scrt1.o,libc.a,libunwind.a} "$sc/"
        ;;
    esac
    local o
    for o in crtbegin crtend crtbeginS crtendS crtbeginT; do
        # shellcheck disable=SC2046  # an empty flag must vanish
        [ -f "$sc/$o.o" ] || "$gnu-gcc" -c -x c /dev/null -o "$sc/$o.o" $([ "${t%%-*}" = armv7 ] || echo -msoft-float)
    done
}

build_target() {
    local t=$1 env_t bin
    env_t=$(echo "$t" | tr 'a-z-' 'A-Z_')
    log "building $t"
    # MIPS links a non-PIE static executable anyway: non-PIC code drops the GOT
    # indirections (-12% on mipsel) at no cost in ASLR.
    local extra=
    case "$t" in mips*) extra="-Crelocation-model=static" ;; esac
    if is_nightly "$t"; then
        install_self_contained "$t"
        env "CARGO_TARGET_${env_t}_LINKER=rust-lld" \
            "CARGO_TARGET_${env_t}_RUSTFLAGS=-Ctarget-feature=+crt-static $NIGHTLY_RUSTFLAGS $extra" \
            cargo +nightly build --release --locked -p wgsplit --target "$t" --target-dir "$TARGET_DIR" \
            -Zbuild-std=std,panic_abort "-Zbuild-std-features=$BUILD_STD_FEATURES" >&2
    else
        env "CARGO_TARGET_${env_t}_LINKER=rust-lld" \
            "CARGO_TARGET_${env_t}_RUSTFLAGS=-Ctarget-feature=+crt-static" \
            cargo build --release --locked -p wgsplit --target "$t" --target-dir "$TARGET_DIR" >&2
    fi
    bin=$OUT/wgsplit-$t
    cp "$TARGET_DIR/$t/release/wgsplit" "$bin"
    case "$t" in
    mips*)
        # rust-lld keeps a ~200 KB .pdr (procedure descriptors, unused at run time).
        "$(gnu_triple "$t")-objcopy" -R .pdr -R .comment "$bin"
        ;;
    esac
    # It must be a static executable for the target.
    if file "$bin" | grep -q 'dynamically linked'; then
        echo "error: $bin is dynamically linked" >&2
        file "$bin" >&2
        exit 1
    fi
}

human() { awk -v b="$1" 'BEGIN { if (b >= 1048576) printf "%.2f MB", b/1048576; else printf "%d KB", b/1024 }'; }

write_sizes() {
    local tsv=$OUT/sizes.tsv t bin s x
    : >"$tsv.new"
    # Keep rows of targets not rebuilt in this run.
    for t in "${ALL_TARGETS[@]}"; do
        bin=$OUT/wgsplit-$t
        [ -f "$bin" ] || continue
        s=$(stat -c %s "$bin")
        x=$(xz -9e -T1 -c "$bin" | wc -c)
        printf '%s\t%s\t%s\n' "$t" "$s" "$x" >>"$tsv.new"
    done
    mv "$tsv.new" "$tsv"
    cat "$tsv" >&2
    [ "$README" = 1 ] || return 0
    local table rev
    rev=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')
    table=$(
        echo "| target | stripped | xz -9e | toolchain |"
        echo "|---|---|---|---|"
        while IFS=$'\t' read -r t s x; do
            is_nightly "$t" && tc="nightly, build-std" || tc=stable
            echo "| \`$t\` | $(human "$s") ($s B) | $(human "$x") ($x B) | $tc |"
        done <"$tsv"
        echo
        echo "Measured by \`image/cross-build.sh\` at commit $rev, $(rustc +nightly --version 2>/dev/null | cut -d' ' -f2-)."
    )
    python3 - "$ROOT/README.md" "$table" <<'PY'
import sys, re
path, table = sys.argv[1], sys.argv[2]
s = open(path).read()
b, e = "<!-- sizes:begin -->", "<!-- sizes:end -->"
if b in s and e in s:
    s = s[: s.index(b) + len(b)] + "\n" + table + "\n" + s[s.index(e):]
    open(path, "w").write(s)
else:
    print("README.md has no sizes markers; table not written", file=sys.stderr)
PY
}

[ "$INSTALL" = 0 ] || install_host
for t in "${TARGETS[@]}"; do
    build_target "$t"
done
write_sizes
log "done: ${TARGETS[*]} -> $OUT"
