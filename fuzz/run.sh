#!/bin/sh
# run.sh - make fuzz: runs libFuzzer harnesses one after the other and sums them up.
#
#   run.sh SRCDIR BINDIR OUTDIR NAME...
#
# For each NAME: BINDIR/fuzz_NAME runs for $FUZZ_SECONDS (default 60) over a fresh copy of
# SRCDIR/corpus/NAME in OUTDIR/NAME/corpus (the source tree is never written), with
# SRCDIR/NAME.dict when there is one and any extra libFuzzer flags in $FUZZ_ARGS. Crashes, leaks
# and timeouts go to OUTDIR/NAME/ (crash-*, leak-*, timeout-*), the output to OUTDIR/NAME/log.
# Prints one line per harness (seconds run, executions, executions per second and new corpus
# units as libFuzzer's final stats give them, files in the corpus copy before and after) and
# fails if any harness found something.
set -u
srcdir=$1 bindir=$2 outdir=$3
shift 3
seconds=${FUZZ_SECONDS:-60}
failed=0
printf '%-18s %6s %10s %8s %9s %10s  %s\n' harness secs execs exec/s new-units corpus result
for name in "$@"; do
    prog=$bindir/fuzz_$name
    dir=$outdir/$name
    if [ ! -x "$prog" ]; then
        echo "$prog: not built" >&2
        failed=1
        continue
    fi
    rm -rf "$dir"
    mkdir -p "$dir/corpus"
    cp "$srcdir/corpus/$name"/* "$dir/corpus/" 2>/dev/null
    seeds=$(find "$dir/corpus" -type f | wc -l)
    dict=
    [ -f "$srcdir/$name.dict" ] && dict=-dict=$srcdir/$name.dict
    start=$(date +%s)
    # shellcheck disable=SC2086 # FUZZ_ARGS is a list of flags
    "$prog" -max_total_time="$seconds" -timeout=10 -print_final_stats=1 \
        -artifact_prefix="$dir/" $dict ${FUZZ_ARGS:-} "$dir/corpus" >"$dir/log" 2>&1
    rc=$?
    secs=$(($(date +%s) - start))
    stat() { sed -n "s/^stat::$1: *//p" "$dir/log" | tail -n 1; }
    execs=$(stat number_of_executed_units)
    rate=$(stat average_exec_per_sec)
    units=$(stat new_units_added)
    size="$seeds->$(find "$dir/corpus" -type f | wc -l)"
    found=$(find "$dir" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'leak-*' \
        -o -name 'timeout-*' -o -name 'oom-*' \) | head -n 1)
    if [ "$rc" -eq 0 ] && [ -z "$found" ]; then
        result=ok
    else
        result="FAILED (exit $rc) ${found:-see $dir/log}"
        failed=1
    fi
    printf '%-18s %6s %10s %8s %9s %10s  %s\n' "$name" "$secs" "${execs:-?}" "${rate:-?}" \
        "${units:-?}" "$size" "$result"
done
if [ "$failed" -ne 0 ]; then
    echo "make fuzz: a harness failed; reproducers and reports are in $outdir/<name>/" >&2
fi
exit "$failed"
