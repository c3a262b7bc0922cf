#!/bin/sh
# The hub container's entrypoint: clear what a previous container left, then run the command.
#
# JupyterHub keeps configurable-http-proxy's pid in the state directory, a volume that outlives
# the container, and on start signals the process with that pid if one exists. The proxy of a
# previous container died with it, and in this container's fresh pid namespace the same
# number can be the hub itself or one of its threads: so the file is always stale here.
set -eu
rm -f "${LEARNHUB_STATE_DIR:-/srv/learnhub/state}/proxy.pid"
exec "$@"
