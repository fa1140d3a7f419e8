#!/bin/sh
# build.sh DIR [configure options...]: configure (once) and build oai-fcgi out of tree in DIR.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:?usage: build.sh DIR [configure options]}
shift
[ -x "$top/configure" ] || (cd "$top" && ./autogen.sh >/dev/null 2>&1)
mkdir -p "$dir"
cd "$dir"
[ -f Makefile ] || "$top/configure" --quiet "$@"
make -j"$(nproc)" >/dev/null
