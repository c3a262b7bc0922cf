#!/usr/bin/env bash
# Make a PostgreSQL cluster answer on 127.0.0.1 (idempotent), for the tests that need one.
#
#   scripts/provision-postgres.sh
#
# Installs Debian's postgresql with apt when it is missing, creates a cluster of its own
# (`learnhub`, so the distribution's `main` cluster and its settings stay as they are) that
# listens on 127.0.0.1 only, starts it with pg_ctlcluster and waits until it accepts
# connections. Run it again and it only checks. Needs root for the install and the start.
# The last line of its output is for programs: `PGHOST=127.0.0.1 PGPORT=<port> CLUSTER=<v>/<name>`.
# Roles and databases are the caller's business: as root, `runuser -u postgres -- psql -p <port>`.
#   LEARNHUB_PG_CLUSTER        cluster name (default learnhub)
#   LEARNHUB_PG_PORT           port of a new cluster (default 5433; an existing one keeps its own)
#   LEARNHUB_PG_START_TIMEOUT  seconds to wait for the cluster to accept connections (default 60)
set -euo pipefail

CLUSTER=${LEARNHUB_PG_CLUSTER:-learnhub}
PORT=${LEARNHUB_PG_PORT:-5433}
START_TIMEOUT=${LEARNHUB_PG_START_TIMEOUT:-60}

need() { command -v "$1" >/dev/null 2>&1; }
say() { echo "provision-postgres: $*"; }
die() { echo "provision-postgres: error: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root: installing and starting PostgreSQL needs it"

if ! need pg_ctlcluster || ! need pg_createcluster || [ -z "$(ls /usr/lib/postgresql 2>/dev/null)" ]; then
    need apt-get || die "no apt-get: install PostgreSQL (server and client) with this system's package manager"
    say "installing postgresql with apt"
    apt-get update -qq
    # No recommends: sysstat and the like; the server, its client and postgresql-common are
    # dependencies. Debian's package creates and starts a `main` cluster too, where init runs.
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        postgresql postgresql-client >/dev/null
fi

# The newest installed server version (a machine may hold several after an upgrade).
VERSION=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
[ -x "/usr/lib/postgresql/$VERSION/bin/postgres" ] || die "no server binary for PostgreSQL $VERSION"

cluster_line() { pg_lsclusters --no-header | awk -v v="$VERSION" -v c="$CLUSTER" '$1 == v && $2 == c'; }

if [ -z "$(cluster_line)" ]; then
    say "creating cluster $VERSION/$CLUSTER on 127.0.0.1:$PORT"
    # Local (socket) logins as the postgres user by peer, TCP logins by password only
    # (SCRAM): the default pg_hba of Debian's clusters.
    pg_createcluster --port "$PORT" --start-conf manual "$VERSION" "$CLUSTER" \
        -- --auth-local=peer --auth-host=scram-sha-256 >/dev/null
fi
CONF_DIR="/etc/postgresql/$VERSION/$CLUSTER"
# Loopback only, whatever the cluster was created with; a change needs a restart.
WANTED="listen_addresses = '127.0.0.1'"
CONF="$CONF_DIR/conf.d/50-learnhub-loopback.conf"
CHANGED=no
if [ "$(cat "$CONF" 2>/dev/null)" != "$WANTED" ]; then
    mkdir -p "$CONF_DIR/conf.d"
    echo "$WANTED" >"$CONF"
    CHANGED=yes
fi
PORT=$(awk '{print $3}' <<<"$(cluster_line)")
STATUS=$(awk '{print $4}' <<<"$(cluster_line)")

if [ "$STATUS" = online ] && [ "$CHANGED" = yes ]; then
    say "restarting $VERSION/$CLUSTER to listen on 127.0.0.1 only"
    pg_ctlcluster "$VERSION" "$CLUSTER" restart
elif [ "$STATUS" != online ]; then
    say "starting $VERSION/$CLUSTER"
    # A pid file left by a cluster killed with its machine would make the start fail.
    PID_FILE="/var/run/postgresql/$VERSION-$CLUSTER.pid"
    if [ -f "$PID_FILE" ] && ! kill -0 "$(head -n 1 "$PID_FILE")" 2>/dev/null; then
        rm -f "$PID_FILE"
    fi
    pg_ctlcluster "$VERSION" "$CLUSTER" start
fi

waited=0
until pg_isready -q -h 127.0.0.1 -p "$PORT"; do
    if [ "$waited" -ge "$START_TIMEOUT" ]; then
        tail -n 30 "/var/log/postgresql/postgresql-$VERSION-$CLUSTER.log" >&2 || true
        die "cluster $VERSION/$CLUSTER did not accept connections on 127.0.0.1:$PORT within ${START_TIMEOUT}s"
    fi
    sleep 1
    waited=$((waited + 1))
done
say "PostgreSQL $VERSION ($CLUSTER) accepts connections on 127.0.0.1:$PORT"
echo "PGHOST=127.0.0.1 PGPORT=$PORT CLUSTER=$VERSION/$CLUSTER"
