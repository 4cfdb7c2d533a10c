#!/bin/sh
# Post-image for the GnuBee GB-PC1 (MT7621): one U-Boot image holding the
# kernel, its built-in device tree and the initramfs root filesystem.
set -e
BINARIES_DIR=${BINARIES_DIR:-$1}
test -f "$BINARIES_DIR/uImage" || { echo "post-image: no uImage in $BINARIES_DIR" >&2; exit 1; }
cp "$BINARIES_DIR/uImage" "$BINARIES_DIR/gnubee-pc1-wgsplit.bin"
cat <<MSG
GnuBee GB-PC1 image: $BINARIES_DIR/gnubee-pc1-wgsplit.bin
Copy it as gnubee.bin to a FAT-formatted USB stick or SD card; the stock
U-Boot loads it from there.
MSG
