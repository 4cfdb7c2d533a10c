# shellcheck shell=bash
# Host packages for the router builds and the image tests (Debian 12, run as root).
# Sourced by image/cross-build.sh, image/build-image.sh and tests/image/run.sh.
# Every function is safe to re-run: it installs only what is missing.

WGS_APT=(apt-get -o DPkg::Lock::Timeout=1800 -o Acquire::Retries=3 -y -q)

wgs_apt_updated=0
wgs_apt_update() {
    if [ "$wgs_apt_updated" = 0 ]; then
        # A half-synced mirror index for one architecture must not stop us.
        DEBIAN_FRONTEND=noninteractive "${WGS_APT[@]}" update >/dev/null 2>&1 ||
            echo "warning: apt-get update reported errors (continuing)" >&2
        wgs_apt_updated=1
    fi
}

# wgs_add_arch ARCH...: enable Debian multiarch for ARCH (arm64, armhf, mipsel).
wgs_add_arch() {
    local a changed=0
    for a in "$@"; do
        [ "$a" = "$(dpkg --print-architecture)" ] && continue
        if ! dpkg --print-foreign-architectures | grep -qx "$a"; then
            dpkg --add-architecture "$a"
            changed=1
        fi
    done
    [ "$changed" = 1 ] && wgs_apt_updated=0
    return 0
}

# wgs_apt_install PKG...: install the packages not yet installed.
wgs_apt_install() {
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    [ "${#missing[@]}" = 0 ] && return 0
    echo "installing: ${missing[*]}" >&2
    wgs_apt_update || return 1
    DEBIAN_FRONTEND=noninteractive "${WGS_APT[@]}" install --no-install-recommends "${missing[@]}" >/dev/null
}

# wgs_deb_src: make `apt-get source` work (deb-src lines for the configured suites).
wgs_deb_src() {
    local f=/etc/apt/sources.list.d/wgsplit-deb-src.sources
    if ! grep -rqs '^Types:.*deb-src\|^deb-src' /etc/apt/sources.list /etc/apt/sources.list.d/; then
        local uri
        uri=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null)
        [ -n "$uri" ] || uri=$(awk '$1=="deb"{print $2; exit}' /etc/apt/sources.list 2>/dev/null)
        printf 'Types: deb-src\nURIs: %s\nSuites: bookworm\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
            "$uri" >"$f"
        wgs_apt_updated=0
    fi
}

# wgs_rustup_nightly: nightly toolchain with rust-src (for -Zbuild-std).
wgs_rustup_nightly() {
    rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal >&2
    rustup component list --toolchain nightly --installed | grep -q '^rust-src' ||
        rustup component add rust-src --toolchain nightly >&2
}

# wgs_rustup_target TARGET: stable std for TARGET.
wgs_rustup_target() {
    rustup target list --installed | grep -qx "$1" || rustup target add "$1" >&2
}
