#!/bin/sh
# spawn-fcgi.sh: start oai-fcgi for nginx, Caddy or Apache mod_proxy_fcgi on a host without
# systemd (with systemd, use etc/oai-fcgi.service instead). Run it as root.
#
# spawn-fcgi creates the unix socket, forks PROCS copies of the gateway that all accept on it
# (each gets the socket on fd 0, so no --listen is needed), writes their PIDs to PIDFILE, and
# exits. Each copy serves many requests at once, one thread per request, so 1-2 copies are
# plenty; more copies only add isolation. Stop them with:  kill $(cat /run/oai-fcgi/oai-fcgi.pid)
# (SIGTERM: each copy stops accepting and lets running requests finish for up to 5 s).
#
# Debian: apt-get install spawn-fcgi
set -eu

BIN=${BIN:-/usr/local/bin/oai-fcgi}
SOCK=${SOCK:-/run/oai-fcgi/oai-fcgi.sock}
PIDFILE=${PIDFILE:-/run/oai-fcgi/oai-fcgi.pid}
RUN_AS=${RUN_AS:-www-data}   # user the gateway runs as; it must be able to write STATE_PATH
SOCK_USER=${SOCK_USER:-www-data}   # the web server's user and group, who must reach the socket
SOCK_GROUP=${SOCK_GROUP:-www-data}
PROCS=${PROCS:-2}
ENV_FILE=${ENV_FILE:-/etc/oai-fcgi/oai-fcgi.env}
STATE_DIR=${STATE_DIR:-/var/lib/oai-fcgi}

# The socket directory, and the state directory the gateway writes its SQLite file into.
install -d -o "$RUN_AS" -g "$SOCK_GROUP" -m 0750 "$(dirname "$SOCK")"
install -d -o "$RUN_AS" -g "$RUN_AS" -m 0750 "$STATE_DIR"

# Only root can switch users; run as yourself, the gateway simply stays you.
switch=
[ "$(id -u)" -ne 0 ] || switch="-u $RUN_AS -g $RUN_AS"

# spawn-fcgi passes its own environment to the gateway, so settings are plain environment
# variables: secrets from the env file (kept out of the command line, which `ps` shows to every
# user), and the rest in front of the command below.
if [ -r "$ENV_FILE" ]; then
    set -a
    # shellcheck disable=SC1090
    . "$ENV_FILE"
    set +a
fi

# -M 0660 -U/-G: the web server's user (www-data on Debian) must be able to write to the socket
# to connect; the default mode from the umask does not allow that.
# shellcheck disable=SC2086
STATE_PATH=${STATE_PATH:-$STATE_DIR/state.db} \
SERVER_TITLE=${SERVER_TITLE:-'My Claude gateway'} \
    spawn-fcgi -s "$SOCK" -M 0660 -U "$SOCK_USER" -G "$SOCK_GROUP" \
        $switch -F "$PROCS" -P "$PIDFILE" -- "$BIN"
