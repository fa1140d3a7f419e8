#!/bin/sh
# render-lighttpd-conf.sh TEMPLATE: print the lighttpd config with placeholders filled from the
# environment: HOST (127.0.0.1), PORT (7860), RUNDIR, BIN, STATE_PATH, MOUNT (/), PROCS (2),
# EXTRA (extra config lines, may hold newlines; default empty).
set -eu
tpl=${1:?usage: render-lighttpd-conf.sh TEMPLATE}
: "${RUNDIR:?RUNDIR must be set}" "${BIN:?BIN must be set}"
esc() { printf '%s' "$1" | sed -e 's/[\\&|]/\\&/g'; }
sed -e "s|@HOST@|$(esc "${HOST:-127.0.0.1}")|g" \
    -e "s|@PORT@|$(esc "${PORT:-7860}")|g" \
    -e "s|@RUNDIR@|$(esc "$RUNDIR")|g" \
    -e "s|@BIN@|$(esc "$BIN")|g" \
    -e "s|@STATE_PATH@|$(esc "${STATE_PATH:-$RUNDIR/state.db}")|g" \
    -e "s|@MOUNT@|$(esc "${MOUNT:-/}")|g" \
    -e "s|@PROCS@|$(esc "${PROCS:-2}")|g" "$tpl" |
    EXTRA="${EXTRA:-}" awk '{ if ($0 == "@EXTRA@") print ENVIRON["EXTRA"]; else print }'

