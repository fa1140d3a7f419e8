#!/bin/bash
# bench/overhead.sh - per-request overhead of oai-fcgi behind lighttpd, measured with wrk.
#
# Renders etc/lighttpd.conf (scripts/render-lighttpd-conf.sh, PROCS=1, a free port on 127.0.0.1,
# a temp RUNDIR), starts `lighttpd -D -f`, and runs `wrk -t2 -c16 -d5s` against:
#   static   a file of the same size as the /healthz body, served by lighttpd itself (baseline)
#   healthz  GET /healthz
#   status   GET /status
#   test     POST /proxy/gcp/claude/v1/chat/completions with the SillyTavern test message
# and prints req/s, latency p50/p99 and the CPU time the gateway process (and lighttpd) spent per
# request (from /proc/<pid>/stat), so the gateway's own cost is visible next to the baseline.
#
#   bench/overhead.sh [--duration 5s] [--bin PATH] [--callgrind]
#
# --callgrind also runs one CGI-mode request of each kind under valgrind --tool=callgrind and
# prints the instruction count (whole process: start-up + request), a figure independent of load.
# Only 127.0.0.1 is used. Every step is bounded by `timeout`; the temp dir and every process
# started here are removed on exit. Installs wrk with apt-get when it is missing.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
bin=${OAI_BIN:-$root/build/oai-fcgi}
duration=5s
callgrind=0
while [ $# -gt 0 ]; do
    case $1 in
    --callgrind) callgrind=1 ;;
    --duration) duration=${2:?}; shift ;;
    --bin) bin=${2:?}; shift ;;
    -h | --help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "overhead.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
[ -x "$bin" ] || { echo "overhead.sh: gateway binary not found: $bin (cd build && make oai-fcgi)" >&2; exit 2; }
lighttpd=$(command -v lighttpd || echo /usr/sbin/lighttpd)
[ -x "$lighttpd" ] || { echo "overhead.sh: lighttpd is not installed" >&2; exit 2; }
if ! command -v wrk >/dev/null 2>&1; then
    echo "overhead.sh: installing wrk" >&2
    timeout 300 apt-get install -y wrk >/dev/null 2>&1 ||
        { timeout 120 apt-get update >/dev/null 2>&1 && timeout 300 apt-get install -y wrk >/dev/null 2>&1; } ||
        { echo "overhead.sh: cannot install wrk" >&2; exit 2; }
fi
if [ "$callgrind" = 1 ] && ! command -v valgrind >/dev/null 2>&1; then
    echo "overhead.sh: --callgrind needs valgrind" >&2; exit 2
fi

rundir=$(mktemp -d "${TMPDIR:-/tmp}/oai-bench-ovh.XXXXXX")
lpid=
gwpids=
cleanup() {
    set +e
    [ -n "$lpid" ] && kill "$lpid" 2>/dev/null
    for _ in 1 2 3 4 5 6 7 8 9 10; do
        [ -n "$lpid" ] && kill -0 "$lpid" 2>/dev/null || break
        sleep 0.2
    done
    [ -n "$lpid" ] && kill -9 "$lpid" 2>/dev/null
    for p in $gwpids; do kill "$p" 2>/dev/null; done
    sleep 0.2
    for p in $gwpids; do kill -9 "$p" 2>/dev/null; done
    rm -rf "$rundir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

port=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
base="http://127.0.0.1:$port"
body='{"model":"m","messages":[{"role":"user","content":"Hi"}]}'

# Baseline file: same size as the /healthz body ("ok\n"), served by lighttpd without the gateway.
printf 'ok\n' >"$rundir/static.txt"
# fastcgi.server is mounted at "/"; this conditional takes the one static URL away from it.
extra='$HTTP["url"] == "/static.txt" { fastcgi.server = () }'
HOST=127.0.0.1 PORT=$port RUNDIR=$rundir BIN=$bin STATE_PATH=$rundir/state.db PROCS=1 EXTRA=$extra \
    "$root/scripts/render-lighttpd-conf.sh" "$root/etc/lighttpd.conf" >"$rundir/lighttpd.conf"
"$lighttpd" -tt -f "$rundir/lighttpd.conf" >/dev/null

env -i PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin LANG=C.UTF-8 \
    "$lighttpd" -D -f "$rundir/lighttpd.conf" >"$rundir/lighttpd.out" 2>&1 &
lpid=$!
up=0
for _ in $(seq 50); do
    if [ "$(curl -s -m 2 "$base/healthz" 2>/dev/null)" = ok ]; then up=1; break; fi
    sleep 0.1
done
if [ "$up" != 1 ]; then
    echo "overhead.sh: lighttpd/gateway did not come up" >&2
    cat "$rundir/lighttpd.out" "$rundir/lighttpd-error.log" >&2 2>/dev/null || true
    exit 1
fi
gwpids=$(pgrep -P "$lpid" || true)
gwpid=$(echo "$gwpids" | head -n1)
[ -n "$gwpid" ] || { echo "overhead.sh: no gateway process under lighttpd" >&2; exit 1; }

# Sanity: each target answers what it should before it is measured.
[ "$(curl -s -m 5 "$base/static.txt")" = ok ] || { echo "overhead.sh: static baseline not served by lighttpd" >&2; exit 1; }
curl -s -m 5 "$base/status" | grep -q '"endpoints"' || { echo "overhead.sh: /status is not the info JSON" >&2; exit 1; }
curl -s -m 5 -H 'Content-Type: application/json' --data "$body" "$base/proxy/gcp/claude/v1/chat/completions" |
    grep -q 'Hello!' || { echo "overhead.sh: the test message was not answered" >&2; exit 1; }

# wrk script: optional POST body, and a machine-readable summary line.
cat >"$rundir/wrk.lua" <<'EOF'
local body = os.getenv("WRK_BODY")
if body and body ~= "" then
  wrk.method = "POST"
  wrk.body = body
  wrk.headers["Content-Type"] = "application/json"
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %d %.1f %.1f %d %d\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout, e.status))
end
EOF

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
tck=$(getconf CLK_TCK)

printf 'oai-fcgi overhead under lighttpd: wrk -t2 -c16 -d%s, %s CPUs, 1 gateway process\n' "$duration" "$(nproc)"
printf '%-8s %10s %9s %9s %13s %13s %7s\n' target 'req/s' 'p50 ms' 'p99 ms' 'gw CPU us/req' 'lt CPU us/req' errors
bad=0
run() { # name path [body]
    local name=$1 url=$base$2 out g0 g1 l0 l1
    g0=$(cpu_ticks "$gwpid"); l0=$(cpu_ticks "$lpid")
    out=$(WRK_BODY=${3:-} timeout 60 wrk -t2 -c16 -d"$duration" -s "$rundir/wrk.lua" "$url" 2>&1) ||
        { echo "overhead.sh: wrk failed for $name: $out" >&2; bad=1; return; }
    g1=$(cpu_ticks "$gwpid"); l1=$(cpu_ticks "$lpid")
    echo "$out" | awk -v name="$name" -v gc=$((g1 - g0)) -v lc=$((l1 - l0)) -v tck="$tck" '
        /^RESULT/ { n = $2; dur = $3; rps = n / (dur / 1e6); errs = $6 + $7
            printf "%-8s %10.0f %9.3f %9.3f %13.1f %13.1f %7d\n", name, rps, $4 / 1000, $5 / 1000,
                gc / tck * 1e6 / n, lc / tck * 1e6 / n, errs
            printf "JSON {\"target\":\"%s\",\"requests\":%d,\"req_s\":%.0f,\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"gw_cpu_us_per_req\":%.1f,\"lighttpd_cpu_us_per_req\":%.1f,\"errors\":%d}\n",
                name, n, rps, $4 / 1000, $5 / 1000, gc / tck * 1e6 / n, lc / tck * 1e6 / n, errs > "/dev/stderr"
            exit (errs > 0) }' 2>>"$rundir/results.json" || bad=1
}
run static /static.txt
run healthz /healthz
run status /status
run test /proxy/gcp/claude/v1/chat/completions "$body"
sed 's/^JSON //' "$rundir/results.json"
[ "$(curl -s -m 5 "$base/healthz")" = ok ] || { echo "overhead.sh: gateway no longer answers /healthz after the runs" >&2; bad=1; }
if ! kill -0 "$gwpid" 2>/dev/null; then echo "overhead.sh: the gateway process $gwpid died during the runs" >&2; bad=1; fi
printf 'gateway threads after the runs: %s\n' "$(awk '/^Threads:/ {print $2}' "/proc/$gwpid/status" 2>/dev/null)"

if [ "$callgrind" = 1 ]; then
    echo
    echo "callgrind: one CGI-mode request per process (instructions, start-up included)"
    cgi() { # method uri [body]
        local b=${3:-}
        printf '%s' "$b" | env -i PATH=/usr/bin:/bin LANG=C.UTF-8 STATE_PATH="$rundir/cgi-state.db" GATEWAY_INTERFACE=CGI/1.1 \
            SERVER_PROTOCOL=HTTP/1.1 REQUEST_METHOD="$1" REQUEST_URI="$2" SCRIPT_NAME= PATH_INFO="$2" \
            QUERY_STRING= SERVER_NAME=127.0.0.1 SERVER_PORT="$port" HTTP_HOST="127.0.0.1:$port" \
            REMOTE_ADDR=127.0.0.1 REQUEST_SCHEME=http CONTENT_TYPE=application/json \
            CONTENT_LENGTH=${#b} "${@:4}"
    }
    printf '%-8s %14s\n' request instructions
    # process start-up and exit alone (no config, no SQLite, no request), for scale
    out=$(timeout 120 valgrind --tool=callgrind --callgrind-out-file="$rundir/cg.version" "$bin" --version 2>&1 >/dev/null) || true
    printf '%-8s %14s\n' --version "$(echo "$out" | awk '/Collected :/ {print $NF}')"
    for spec in "healthz GET /healthz" "status GET /status" "test POST /proxy/gcp/claude/v1/chat/completions"; do
        set -- $spec
        name=$1 method=$2 uri=$3
        b=; [ "$method" = POST ] && b=$body
        # warm-up run (creates the SQLite schema) so every measured run does the same work
        cgi "$method" "$uri" "$b" "$bin" >/dev/null 2>&1 || true
        out=$(cgi "$method" "$uri" "$b" timeout 120 valgrind --tool=callgrind \
            --callgrind-out-file="$rundir/cg.$name" "$bin" 2>&1 >"$rundir/cg.$name.stdout") || true
        ir=$(echo "$out" | awk '/Collected :/ {print $NF}')
        head -n1 "$rundir/cg.$name.stdout" | grep -q '^Status: 200' || echo "overhead.sh: CGI $name did not answer 200" >&2
        printf '%-8s %14s\n' "$name" "${ir:-?}"
    done
fi
exit "$bad"
