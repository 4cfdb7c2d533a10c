# shellcheck shell=bash
# Installs what the tests need on a fresh Debian machine. Sourced by tests/run.sh,
# tests/demo.sh and the suites; each step is skipped when already satisfied.
# Suites add their packages to WGSPLIT_APT_PACKAGES (one place, one apt-get call).

WGSPLIT_APT_PACKAGES="${WGSPLIT_APT_PACKAGES:-} nftables iproute2 iperf3 iputils-ping
  dnsmasq-base dnsperf conntrack wireguard-tools socat netcat-openbsd procps psmisc
  python3 zbar-tools"

install_deps() {
    # shellcheck disable=SC2086 # the package list is meant to split
    _deps_apt $WGSPLIT_APT_PACKAGES
    # A userspace WireGuard for hosts whose kernel has no wireguard module.
    if ! command -v boringtun-cli >/dev/null 2>&1 && [ ! -x "$HOME/.cargo/bin/boringtun-cli" ]; then
        echo "deps: installing boringtun-cli"
        cargo install --quiet --locked boringtun-cli --version 0.7.1
    fi
    export PATH="$HOME/.cargo/bin:$PATH"
    rustup component add clippy rustfmt >/dev/null 2>&1 || true
}

# OpenWrt package and LuCI app tests (tests/openwrt, tests/luci).
WGSPLIT_APT_PACKAGES="$WGSPLIT_APT_PACKAGES shellcheck busybox python3 gettext chromium chromium-driver fonts-dejavu-core fonts-wqy-microhei"

# Only what one of those suites needs, so each runs alone quickly.
_deps_apt() {
    local missing=() pkg
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "deps: installing ${missing[*]}" >&2
    # a partly failing update (e.g. one foreign-architecture index) still leaves usable lists
    apt-get update -qq >&2 || echo "deps: apt-get update reported errors, going on" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
install_deps_openwrt() {
    _deps_apt shellcheck nftables python3 busybox iproute2 iputils-ping
}
install_deps_luci() {
    # node and npm may come from elsewhere than Debian's packages
    command -v node >/dev/null 2>&1 || _deps_apt nodejs
    command -v npm >/dev/null 2>&1 || _deps_apt npm
    _deps_apt chromium chromium-driver fonts-dejavu-core fonts-wqy-microhei python3 gettext
}

# Image tests (tests/image/run.sh): QEMU, the cross toolchains, Debian's kernels
# for other architectures and the musl sysroots are installed (and cached) by
# image/cross-build.sh and image/build-image.sh themselves; this is the rest.
install_deps_image() {
    # shellcheck source=image/lib/host-deps.sh
    source "$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/image/lib/host-deps.sh"
    wgs_apt_install wireguard-tools python3 cpio kmod xz-utils binutils file
    # tests/image/initscript.sh: the init script under busybox, nft and ip in a namespace
    wgs_apt_install busybox nftables iproute2
}

# Fuzzing (tests/fuzz.sh, tests/suites/fuzz.sh). cargo-fuzz builds with nightly-only
# flags (-Zsanitizer=address, coverage instrumentation), so a nightly toolchain is
# needed; the same unpinned `nightly` the image build installs, so one download
# serves both. libfuzzer-sys compiles libFuzzer's C++ sources: a C++ compiler.
WGSPLIT_FUZZ_CARGO_FUZZ_VERSION=0.13.2
install_deps_fuzz() {
    export PATH="$HOME/.cargo/bin:$PATH"
    # Each step returns its failure: callers test this function with `if`, where
    # set -e does not reach inside it.
    command -v c++ >/dev/null 2>&1 || _deps_apt g++ || return 1
    if ! rustup run nightly rustc --version >/dev/null 2>&1; then
        echo "deps: installing the nightly toolchain" >&2
        rustup toolchain install nightly --profile minimal >&2 || return 1
    fi
    if ! command -v cargo-fuzz >/dev/null 2>&1; then
        echo "deps: installing cargo-fuzz $WGSPLIT_FUZZ_CARGO_FUZZ_VERSION" >&2
        cargo install --quiet --locked cargo-fuzz --version "$WGSPLIT_FUZZ_CARGO_FUZZ_VERSION" || return 1
    fi
}
