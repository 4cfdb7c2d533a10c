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
		DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 || return 1
		_DEPS_APT_UPDATED=1
	fi
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

# OpenWrt package tests (tests/openwrt): script linting, nft syntax checks.
install_deps_openwrt() {
	apt_install shellcheck nftables python3 gzip tar binutils
}

# LuCI app tests (tests/luci): node for the form walk, Chromium for rendering,
# playwright-core from npm into tests/luci/node_modules (see tests/luci/run.sh).
install_deps_luci() {
	apt_install nodejs npm chromium chromium-driver fonts-dejavu-core python3
}

install_deps() {
	install_deps_openwrt
	install_deps_luci
}
