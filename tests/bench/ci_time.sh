#!/usr/bin/env bash
# What line coverage costs the test command: per-suite wall seconds of
# `tests/run.sh` plain (WGSPLIT_COVERAGE=0) beside instrumented
# (WGSPLIT_COVERAGE=1), the totals and the ratio.
#
#   sudo tests/bench/ci_time.sh                     both runs, one after the other
#                                                   (each as it comes: run it on a
#                                                   clean clone for CI's figure)
#   tests/bench/ci_time.sh PLAIN.log COVERAGE.log   the table from two logs kept
#                                                   earlier, every line of each
#                                                   prefixed by the epoch second
#                                                   it was printed at
#
# A suite's time runs from its "=== name" line to the next one (the last, to
# the "suites: N passed" line); the first row is the set-up before the first
# suite (apt, llvm-19 for the instrumented run). Set CI=1 as CI does (the image
# suite then boots two architectures, not four).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)

stamp() { while IFS= read -r line; do printf '%(%s)T %s\n' -1 "$line"; done; }

if [ $# -eq 2 ]; then
    plain=$1 cov=$2
else
    [ "$(id -u)" -eq 0 ] || { echo "ci_time: the suites need root" >&2; exit 1; }
    out=$ROOT/target/ci-time
    mkdir -p "$out"
    plain=$out/plain.log cov=$out/coverage.log
    for kind in plain coverage; do
        log=$out/$kind.log
        c=0
        [ $kind = coverage ] && c=1
        { date +%s | sed 's/$/ start/'; WGSPLIT_COVERAGE=$c bash "$ROOT/tests/run.sh" 2>&1 | stamp; } >"$log" || true
        echo "ci_time: $kind run logged in $log" >&2
    done
fi

# seconds per suite: "name<TAB>seconds", in order, then "total<TAB>seconds".
per_suite() {
    awk '
        NR == 1 { start = $1; last = $1; name = "(set-up)" }
        / === / || /^[0-9]+ === / {
            if ($2 == "===") {
                t[name] += $1 - last; if (!(name in seen)) { seen[name] = 1; order[n++] = name }
                name = substr($0, index($0, "=== ") + 4); last = $1
            }
        }
        / suites: [0-9]+ passed/ {
            t[name] += $1 - last; if (!(name in seen)) { seen[name] = 1; order[n++] = name }
            total = $1 - start; result = substr($0, index($0, "suites:"))
        }
        END {
            for (i = 0; i < n; i++) printf "%s\t%d\n", order[i], t[order[i]]
            printf "total\t%d\n", total; printf "result\t%s\n", result
        }' "$1"
}

# Rows in the instrumented run's order (it has one suite more: coverage).
awk -F'\t' '
    NR == FNR { plain[$1] = $2; next }
    { order[n++] = $1; cov[$1] = $2 }
    END {
        printf "%-28s %10s %12s %8s %7s\n", "suite", "plain (s)", "coverage (s)", "extra", "ratio"
        for (i = 0; i < n; i++) {
            name = order[i]
            if (name == "result") continue
            p = (name in plain) ? plain[name] : "-"
            extra = (p != "-") ? sprintf("%+d", cov[name] - p) : "-"
            ratio = (p != "-" && p > 0) ? sprintf("%.2f", cov[name] / p) : "-"
            printf "%-28s %10s %12s %8s %7s\n", name, p, cov[name], extra, ratio
        }
        printf "plain:    %s\ncoverage: %s\n", plain["result"], cov["result"]
    }' <(per_suite "$plain") <(per_suite "$cov")
