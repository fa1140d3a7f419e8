#!/bin/sh
# install-deps.sh [--servers | --bench]: install what building, running and testing oai-fcgi needs and is
# missing (Debian 12 packages, then the npm test packages pinned in tests/package-lock.json).
# --servers adds the web servers of the test matrix (make check-servers): Apache with mod_fcgid,
# nginx, Caddy and spawn-fcgi. Installing them starts nothing: the tests run their own copies.
# --bench adds what make bench needs: wrk and nginx.
# Safe to run again: it installs nothing that is already there.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)

packages="gcc make autoconf automake autoconf-archive pkg-config libfcgi-dev libfcgi-bin
 libcurl4-openssl-dev libssl-dev libjson-c-dev libsqlite3-dev libhiredis-dev redis-server lighttpd
 curl ca-certificates"
[ "${1:-}" != --servers ] ||
    packages="$packages apache2 libapache2-mod-fcgid nginx caddy spawn-fcgi"
# --bench: the load generator and the mock upstream of make bench
[ "${1:-}" != --bench ] || packages="$packages wrk nginx openssl"
command -v node >/dev/null 2>&1 || packages="$packages nodejs"
command -v npm >/dev/null 2>&1 || packages="$packages npm"

missing=
for p in $packages; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
        missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "installing Debian packages:$missing"
    sudo=
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    $sudo apt-get update -qq
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $missing \
        >/dev/null
fi

# npm test packages (the official openai client), exactly as locked.
if [ ! -d "$top/tests/node_modules/openai" ] || [ ! -d "$top/tests/node_modules/@anthropic-ai/sdk" ] ||
    [ ! -d "$top/tests/node_modules/@smithy/signature-v4" ] ||
    [ "$top/tests/package-lock.json" -nt "$top/tests/node_modules/.package-lock.json" ]; then
    echo "installing npm test packages (tests/package-lock.json)"
    (cd "$top/tests" && npm ci --no-audit --no-fund --loglevel=error)
fi
