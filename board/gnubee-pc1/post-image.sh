#!/bin/sh
# Post-image for the GnuBee GB-PC1 (MT7621): one U-Boot image holding the
# kernel (with the initramfs root filesystem in it) and, appended to it, the
# board's device tree (CONFIG_MIPS_RAW_APPENDED_DTB: in Linux 6.12 no option
# builds an MT7621 tree into the kernel, and the stock U-Boot passes none),
# LZMA-compressed as OpenWrt's ramips images are (the stock U-Boot's
# decompressor), loaded at the SoC's load address (arch/mips/ralink/Platform).
set -e
BINARIES_DIR=${BINARIES_DIR:-$1}
KBIN=$BINARIES_DIR/vmlinux.bin
DTB=$BINARIES_DIR/mt7621-gnubee-gb-pc1.dtb
for f in "$KBIN" "$DTB"; do
	test -f "$f" || { echo "post-image: no $f" >&2; exit 1; }
done
# The entry point is the kernel ELF's (kernel_entry), as the kernel's own
# uImage target takes it.
VMLINUX=
for f in "$BUILD_DIR"/linux-*/vmlinux; do
	case "$f" in */linux-headers-*) ;; *) [ -f "$f" ] && VMLINUX=$f ;; esac
done
test -n "$VMLINUX" || { echo "post-image: no vmlinux under $BUILD_DIR" >&2; exit 1; }
ENTRY=$(LC_ALL=C readelf -h "$VMLINUX" | sed -n 's/^ *Entry point address: *0x\(ffffffff\)\{0,1\}\([0-9a-f]*\)$/0x\2/p')
test -n "$ENTRY" || { echo "post-image: no entry point in $VMLINUX" >&2; exit 1; }
W=$BINARIES_DIR/gnubee-pc1.work
cat "$KBIN" "$DTB" >"$W"
"${HOST_DIR:+$HOST_DIR/bin/}xz" --format=lzma -9 -c "$W" >"$W.lzma"
mkimage -A mips -O linux -T kernel -C lzma -a 0x80001000 -e "$ENTRY" \
	-n "wgsplit GnuBee GB-PC1" -d "$W.lzma" "$BINARIES_DIR/gnubee-pc1-wgsplit.bin"
rm -f "$W" "$W.lzma"
cat <<MSG
GnuBee GB-PC1 image: $BINARIES_DIR/gnubee-pc1-wgsplit.bin
Copy it as gnubee.bin to a FAT-formatted USB stick or SD card; the stock
U-Boot loads it from there. LAN (web pages): ethblack, http://192.168.1.1:8080
MSG
