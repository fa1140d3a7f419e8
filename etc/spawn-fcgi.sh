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
PROCS=${PROCS:-2}
ENV_FILE=${ENV_FILE:-/etc/oai-fcgi/oai-fcgi.env}

# The socket directory, and the state directory the gateway writes its SQLite file into.
install -d -o "$RUN_AS" -g www-data -m 0750 "$(dirname "$SOCK")"
install -d -o "$RUN_AS" -g "$RUN_AS" -m 0750 /var/lib/oai-fcgi

# spawn-fcgi passes its own environment to the gateway, so settings are plain environment
# variables: secrets from the env file (kept out of the command line, which `ps` shows to every
# user), and the rest in front of the command below.
if [ -r "$ENV_FILE" ]; then
    set -a
    # shellcheck disable=SC1090
    . "$ENV_FILE"
    set +a
fi

# -M 0660 -U/-G www-data: the web server's user (www-data on Debian) must be able to write to
# the socket to connect; the default mode from the umask does not allow that.
STATE_PATH=${STATE_PATH:-/var/lib/oai-fcgi/state.db} \
SERVER_TITLE=${SERVER_TITLE:-'My Claude gateway'} \
    spawn-fcgi -s "$SOCK" -M 0660 -U www-data -G www-data \
        -u "$RUN_AS" -g "$RUN_AS" -F "$PROCS" -P "$PIDFILE" -- "$BIN"
