# Installs what the tests need on a fresh Debian machine. Sourced by tests/run.sh,
# tests/demo.sh and the suites; each step is skipped when already satisfied.
# Suites add their packages to WGSPLIT_APT_PACKAGES (one place, one apt-get call).

WGSPLIT_APT_PACKAGES="${WGSPLIT_APT_PACKAGES:-} nftables iproute2 iperf3 iputils-ping
  dnsmasq-base dnsperf conntrack wireguard-tools socat netcat-openbsd procps psmisc
  python3"

install_deps() {
    local missing=()
    for pkg in $WGSPLIT_APT_PACKAGES; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "deps: installing ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
    # A userspace WireGuard for hosts whose kernel has no wireguard module.
    if ! command -v boringtun-cli >/dev/null 2>&1 && [ ! -x "$HOME/.cargo/bin/boringtun-cli" ]; then
        echo "deps: installing boringtun-cli"
        cargo install --quiet --locked boringtun-cli --version 0.7.1
    fi
    export PATH="$HOME/.cargo/bin:$PATH"
    rustup component add clippy rustfmt >/dev/null 2>&1 || true
}
