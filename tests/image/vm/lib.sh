# shellcheck shell=sh
# Helpers for scripts that run inside the booted image (busybox sh).
WSI_PASS=0 WSI_FAIL=0
check() { # check NAME CMD...: run CMD, report
    name=$1; shift
    if out=$("$@" 2>&1); then
        WSI_PASS=$((WSI_PASS + 1)); echo "WSI-CHECK ok   $name"
    else
        WSI_FAIL=$((WSI_FAIL + 1)); echo "WSI-CHECK FAIL $name"; echo "$out" | sed 's/^/    | /' | head -40
    fi
}
metric() { echo "WSI-METRIC $1=$2"; }
uptime_s() { cut -d' ' -f1 /proc/uptime; }
# elapsed START: seconds since START (an uptime_s value), 2 decimals
elapsed() { awk -v a="$1" -v b="$(uptime_s)" 'BEGIN{printf "%.2f", b-a}'; }
finish() { echo "WSI-SUMMARY $WSI_PASS passed, $WSI_FAIL failed"; [ "$WSI_FAIL" = 0 ]; }
in_ns() { wsi-netns exec "$@"; }
