#!/bin/sh
# quickstart.sh: install what is missing, build, and run oai-fcgi under lighttpd on
# http://127.0.0.1:7860 in the foreground (Ctrl-C stops it).
#   settings: ./oai-fcgi.env (KEY=value lines; start from etc/oai-fcgi.env.example)
#   HOST, PORT: where lighttpd listens (default 127.0.0.1 and 7860)
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/scripts/install-deps.sh"
"$top/scripts/build.sh" "$top/build"

run="$top/run"
mkdir -p "$run"
if [ -f "$top/oai-fcgi.env" ]; then
    echo "settings from $top/oai-fcgi.env"
    set -a
    # shellcheck disable=SC1091
    . "$top/oai-fcgi.env"
    set +a
fi
export STATE_PATH="${STATE_PATH:-$run/state.db}"
"$top/build/oai-fcgi" --check-config >/dev/null || {
    echo "fix the configuration problems above (see etc/oai-fcgi.env.example)" >&2
    exit 1
}
HOST=${HOST:-127.0.0.1} PORT=${PORT:-7860} RUNDIR="$run" BIN="$top/build/oai-fcgi" \
    "$top/scripts/render-lighttpd-conf.sh" "$top/etc/lighttpd.conf" >"$run/lighttpd.conf"
echo "oai-fcgi on http://${HOST:-127.0.0.1}:${PORT:-7860}/ (status: /status; Ctrl-C stops)"
exec /usr/sbin/lighttpd -D -f "$run/lighttpd.conf"
