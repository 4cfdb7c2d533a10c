#!/usr/bin/env bash
# Post-image for the Raspberry Pi 4: an SD card image (boot vfat with the
# firmware, kernel and device tree; ext4 root) made with genimage.
set -euo pipefail
BOARD_DIR=$(cd "$(dirname "$0")" && pwd)
BINARIES_DIR=${BINARIES_DIR:-$1}
files=()
for f in "$BINARIES_DIR"/*.dtb "$BINARIES_DIR"/rpi-firmware/* "$BINARIES_DIR/Image"; do
	[ -e "$f" ] && files+=("${f#"$BINARIES_DIR"/}")
done
list=$(printf '\t\t\t"%s",\n' "${files[@]}")
awk -v l="$list" '{ if ($0 == "@BOOT_FILES@") print l; else print }' \
	"$BOARD_DIR/genimage.cfg.in" >"$BINARIES_DIR/genimage.cfg"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
rm -rf "$BUILD_DIR/genimage.tmp"
genimage --rootpath "$tmp" --tmppath "$BUILD_DIR/genimage.tmp" \
	--inputpath "$BINARIES_DIR" --outputpath "$BINARIES_DIR" \
	--config "$BINARIES_DIR/genimage.cfg"
