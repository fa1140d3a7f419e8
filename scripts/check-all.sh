#!/bin/sh
# check-all.sh: install what is missing, build twice (plain, and with AddressSanitizer +
# UndefinedBehaviorSanitizer), run `make check` in both and the web-server matrix
# (`make check-servers`) in the plain tree, and print "N passed, N failed".
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/scripts/install-deps.sh" || exit 1

status=0
for variant in plain sanitizers; do
    dir="$top/build"
    opts=
    if [ "$variant" = sanitizers ]; then
        dir="$top/build-asan"
        opts=--enable-sanitizers
    fi
    echo "== $variant build ($dir)"
    # shellcheck disable=SC2086
    "$top/scripts/build.sh" "$dir" $opts || { status=1; continue; }
    rm -rf "$dir/tests/asan"
    make -C "$dir" -j"$(nproc)" check >"$dir/check.out" 2>&1 || status=1
    grep -E '^(FAIL|ERROR|XPASS):|^# (TOTAL|PASS|SKIP|FAIL|ERROR)' "$dir/check.out"
    if [ "$variant" = plain ]; then
        echo "== web-server matrix ($dir)"
        make -C "$dir" check-servers >"$dir/servers.out" 2>&1 || status=1
        grep -E '^(FAIL|ERROR|XPASS):|^# (TOTAL|PASS|SKIP|FAIL|ERROR)' "$dir/servers.out"
    fi
done

passed=0
failed=0
for log in "$top/build/test-suite.log" "$top/build/servers-suite.log" "$top/build-asan/test-suite.log"; do
    [ -f "$log" ] || { failed=$((failed + 1)); continue; }
    p=$(sed -n 's/^# PASS: *//p' "$log")
    f=$(sed -n 's/^# FAIL: *//p' "$log")
    e=$(sed -n 's/^# ERROR: *//p' "$log")
    x=$(sed -n 's/^# XPASS: *//p' "$log")
    passed=$((passed + ${p:-0}))
    failed=$((failed + ${f:-0} + ${e:-0} + ${x:-0}))
done
[ "$failed" -eq 0 ] || status=1
echo "$passed passed, $failed failed"
exit $status
