#!/bin/sh
set -e
# As in the official image: `docker run IMAGE -e 'code'` or `docker run IMAGE
# script.js` runs node with those arguments; any other command runs as given.
if [ "${1#-}" != "$1" ] || [ -z "$(command -v "$1")" ] || { [ -f "$1" ] && ! [ -x "$1" ]; }; then
  set -- node "$@"
fi
exec "$@"
