#!/usr/bin/env bash
# Runs every fuzz target for a bounded time (default 60 s each), seeded with the
# config corpus. Usage: tests/fuzz.sh [SECONDS]. Needs the nightly toolchain.
set -euo pipefail
cd "$(dirname "$0")/../daemon"
seconds=${1:-60}
export PATH="$HOME/.cargo/bin:$PATH"
rustup toolchain list | grep -q nightly || rustup toolchain install nightly --profile minimal
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
corpus=$(mktemp -d)
trap 'rm -rf "$corpus"' EXIT
failed=0
for target in $(cargo +nightly fuzz list); do
    mkdir -p "$corpus/$target"
    case $target in
        uci_parse)
            for f in tests/fixtures/config/*/*.uci; do
                cp "$f" "$corpus/$target/$(basename "$(dirname "$f")")-$(basename "$f")"
            done ;;
        json_import)
            for f in tests/fixtures/config/good/*.uci; do
                ../target/release/wgsplit -c "$f" config export > "$corpus/$target/$(basename "$f").json" 2>/dev/null || true
            done ;;
        dns_request)
            # A query (A, with EDNS) and a query+answer pair, as seeds.
            printf '\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x01\x03www\x07netflix\x03com\x00\x00\x01\x00\x01\x00\x00\x29\x04\xd0\x00\x00\x00\x00\x00\x00' > "$corpus/$target/query"
            printf '\x21\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x01a\x03ads\x07example\x00\x00\x01\x00\x01\x12\x34\x81\x80\x00\x01\x00\x01\x00\x00\x00\x00\x01a\x03ads\x07example\x00\x00\x01\x00\x01\xc0\x0c\x00\x01\x00\x01\x00\x00\x01\x2c\x00\x04\x01\x02\x03\x04' > "$corpus/$target/pair" ;;
    esac
    echo "=== fuzz $target for ${seconds}s"
    if cargo +nightly fuzz run "$target" "$corpus/$target" -- -max_total_time="$seconds" -max_len=4096 \
        >"$corpus/$target.log" 2>&1; then
        grep -E '^(#[0-9]+|Done)' "$corpus/$target.log" | tail -2
    else
        failed=1
        grep -vE '^ +([0-9]+: | at )' "$corpus/$target.log" | tail -40
    fi
done
exit $failed
