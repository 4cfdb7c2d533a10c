#!/bin/sh
# Post-image for the QEMU twins: write start-qemu.sh next to the images.
#   $1 = BINARIES_DIR, $2 = machine (from BR2_ROOTFS_POST_SCRIPT_ARGS)
set -e
BINARIES_DIR=$1
MACHINE=$2
NET="-netdev user,id=wan -device virtio-net-pci,netdev=wan"
case "$MACHINE" in
aarch64) QEMU="qemu-system-aarch64 -M virt -cpu cortex-a53 -m 256"; KERNEL=Image; CONSOLE=ttyAMA0 ;;
armv7) QEMU="qemu-system-arm -M virt -cpu cortex-a15 -m 256"; KERNEL=zImage; CONSOLE=ttyAMA0 ;;
mipsel) QEMU="qemu-system-mipsel -M malta -m 256"; KERNEL=vmlinux; CONSOLE=ttyS0
	NET="-netdev user,id=wan -device pcnet,netdev=wan" ;;
x86_64) QEMU="qemu-system-x86_64 -M q35 -m 256"; KERNEL=bzImage; CONSOLE=ttyS0 ;;
*) echo "post-image: unknown machine '$MACHINE'" >&2; exit 1 ;;
esac
cat >"$BINARIES_DIR/start-qemu.sh" <<SH
#!/bin/sh
# Boot the wgsplit $MACHINE image (serial console; Ctrl-A X quits).
cd "\$(dirname "\$0")"
exec $QEMU -nographic $NET \\
    -kernel $KERNEL -initrd rootfs.cpio.gz \\
    -append "console=$CONSOLE rdinit=/sbin/init" "\$@"
SH
chmod +x "$BINARIES_DIR/start-qemu.sh"
