# shellcheck shell=bash disable=SC2034  # variables for the caller
# wgs_arch ARCH: the Debian architecture, kernel flavour, Rust target and QEMU
# machine of one image architecture (TCG; see FIELD-NOTES for the timings).
wgs_arch() {
    QEMU_ARGS=(-nographic -no-reboot -nic none -m 512)
    KAPPEND=
    case "$1" in
    aarch64)
        DEB_ARCH=arm64 KFLAVOUR=arm64 KIMAGE=vmlinuz RUST_TARGET=aarch64-unknown-linux-musl
        QEMU_PKG=qemu-system-arm QEMU_BIN=qemu-system-aarch64 CONSOLE=ttyAMA0
        QEMU_ARGS+=(-M virt -cpu cortex-a53)
        ;;
    armv7)
        DEB_ARCH=armhf KFLAVOUR=armmp KIMAGE=vmlinuz RUST_TARGET=armv7-unknown-linux-musleabihf
        QEMU_PKG=qemu-system-arm QEMU_BIN=qemu-system-arm CONSOLE=ttyAMA0
        QEMU_ARGS+=(-M virt -cpu cortex-a15)
        ;;
    mipsel)
        DEB_ARCH=mipsel KFLAVOUR=4kc-malta KIMAGE=vmlinuz RUST_TARGET=mipsel-unknown-linux-musl
        QEMU_PKG=qemu-system-mips QEMU_BIN=qemu-system-mipsel CONSOLE=ttyS0
        # no display: without -vga none malta wants the cirrus VGA ROM (Debian's seabios)
        QEMU_ARGS=(-nographic -no-reboot -nic none -m 256 -M malta -vga none)
        ;;
    x86_64)
        DEB_ARCH=amd64 KFLAVOUR=amd64 KIMAGE=vmlinuz RUST_TARGET=x86_64-unknown-linux-musl
        QEMU_PKG=qemu-system-x86 QEMU_BIN=qemu-system-x86_64 CONSOLE=ttyS0
        QEMU_ARGS+=(-cpu max -bios /usr/share/qemu/qboot.rom)
        # under TCG the TSC calibrates badly and guest time runs fast
        KAPPEND="clocksource=hpet tsc=unstable"
        ;;
    *)
        echo "unknown architecture '$1' (aarch64, armv7, mipsel, x86_64)" >&2
        return 1
        ;;
    esac
    QEMU_ARGS=("$QEMU_BIN" "${QEMU_ARGS[@]}")
}
