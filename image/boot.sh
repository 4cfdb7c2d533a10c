#!/usr/bin/env bash
# Boot an image made by image/build-image.sh under QEMU (TCG), console on stdio.
#
#   image/boot.sh ARCH [--test NAME] [--timeout SECONDS] [--append "KERNEL ARGS"] [--dir DIR]
#
# With --test NAME the image runs /test/NAME.sh and powers off; the exit status
# of this script is that of the test (parsed from "WSI-EXIT rc=N" on the
# console), 124 on timeout, 125 when the VM stopped without reporting.
# Without --test you get a shell on the console (Ctrl-A X quits QEMU).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=image/lib/arch.sh
source "$ROOT/image/lib/arch.sh"
[ $# -ge 1 ] || { sed -n '2,10p' "$0"; exit 2; }
ARCH=$1; shift
wgs_arch "$ARCH" || exit 2
DIR=$ROOT/target/image/$ARCH TEST='' TIMEOUT=300 APPEND=''
while [ $# -gt 0 ]; do
    case "$1" in
    --test) TEST=$2; shift ;;
    --timeout) TIMEOUT=$2; shift ;;
    --append) APPEND=$2; shift ;;
    --dir) DIR=$2; shift ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
mapfile -t QARGS <"$DIR/qemu.args"
CMDLINE="console=$CONSOLE panic=-1 quiet loglevel=3 $KAPPEND $APPEND"
[ -z "$TEST" ] || CMDLINE="$CMDLINE wgsplit.test=$TEST"
if [ -z "$TEST" ]; then
    exec "${QARGS[@]}" -kernel "$DIR/kernel" -initrd "$DIR/initramfs.cpio" -append "$CMDLINE"
fi
LOG=$DIR/console-$TEST.log
start=$(date +%s.%N)
set +e
# WGSPLIT_QEMU_NICE=-10: give the VM priority over other work for measurements
${WGSPLIT_QEMU_NICE:+nice -n "$WGSPLIT_QEMU_NICE"} timeout --foreground -k 5 "$TIMEOUT" "${QARGS[@]}" -kernel "$DIR/kernel" -initrd "$DIR/initramfs.cpio" \
    -append "$CMDLINE" </dev/null 2>&1 | tee "$LOG" | sed -u "s/^/[$ARCH] /"
qrc=${PIPESTATUS[0]}
set -e
end=$(date +%s.%N)
wall=$(awk -v a="$start" -v b="$end" 'BEGIN{printf "%.2f", b-a}')
echo "WSI-HOST arch=$ARCH test=$TEST wall=$wall qemu_rc=$qrc" | tee -a "$LOG"
[ "$qrc" != 124 ] || exit 124
rc=$(tr -d '\r' <"$LOG" | sed -n 's/^WSI-EXIT rc=\([0-9]*\).*/\1/p' | tail -1)
[ -n "$rc" ] || exit 125
exit "$rc"
