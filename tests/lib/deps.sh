#!/bin/bash
# Shared dependency installer: `. tests/lib/deps.sh; install_deps` installs
# everything the test suites need on a fresh Debian machine. Each suite adds
# its own install_deps_<suite> function below and a line to install_deps.

# apt_install PKG... : install the Debian packages that are missing.
apt_install() {
	local missing=() p
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	if [ -z "${_DEPS_APT_UPDATED:-}" ]; then
		# a partly failing update (one foreign-arch index) still leaves usable lists
		DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 || echo "deps: apt-get update reported errors, going on" >&2
		_DEPS_APT_UPDATED=1
	fi
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

# ensure_cmd CMD PKG: install PKG unless CMD is already on PATH (node and npm
# may come from elsewhere than Debian's packages).
ensure_cmd() {
	command -v "$1" >/dev/null 2>&1 || apt_install "$2"
}

# OpenWrt package tests (tests/openwrt): script linting, nft syntax checks.
install_deps_openwrt() {
	apt_install shellcheck nftables python3 gzip tar busybox
}

# LuCI app tests (tests/luci): node for the form walk, Chromium for rendering,
# playwright-core from npm into tests/luci/node_modules (see tests/luci/run.sh).
install_deps_luci() {
	ensure_cmd node nodejs || return 1
	ensure_cmd npm npm || return 1
	apt_install chromium chromium-driver fonts-dejavu-core python3 gettext
}

install_deps() {
	install_deps_openwrt
	install_deps_luci
}
