#!/bin/bash
# PostgreSQL 15 entrypoint for the bank demo, run as the `postgres` user
# (`tether run -u postgres ... bash /app/postgres-entrypoint.sh`).
# Like the official postgres image: on first start, initdb into $PGDATA with
# superuser $POSTGRES_USER / $POSTGRES_PASSWORD, password (scram-sha-256)
# auth from the network, create $POSTGRES_DB and run /app/seed.sql in it;
# then run the server in the foreground, listening on all addresses.
set -euo pipefail

PGDATA=${PGDATA:-/var/lib/postgresql/data}
POSTGRES_USER=${POSTGRES_USER:-postgres}
POSTGRES_PASSWORD=${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD}
POSTGRES_DB=${POSTGRES_DB:-$POSTGRES_USER}
SEED=${SEED:-/app/seed.sql}
export PGDATA

log() { echo "postgres-entrypoint: $*"; }

if [[ ! -s $PGDATA/PG_VERSION ]]; then
    log "initializing $PGDATA (superuser $POSTGRES_USER)"
    pwfile=$(mktemp)
    printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
    initdb --pgdata="$PGDATA" --username="$POSTGRES_USER" --pwfile="$pwfile" \
        --encoding=UTF8 --locale=C.UTF-8 \
        --auth-local=trust --auth-host=scram-sha-256 >/dev/null
    rm -f "$pwfile"
    # clients on the container network authenticate with the password
    echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"

    # a private, socket-only server for the setup
    pg_ctl --pgdata="$PGDATA" --wait --silent \
        -o "-c listen_addresses='' -c unix_socket_directories=/tmp" start
    psql=(psql --no-psqlrc --quiet -v ON_ERROR_STOP=1 --host=/tmp --username="$POSTGRES_USER")
    if [[ $POSTGRES_DB != postgres ]]; then
        "${psql[@]}" --dbname=postgres -c "CREATE DATABASE \"$POSTGRES_DB\""
        log "created database $POSTGRES_DB"
    fi
    if [[ -r $SEED ]]; then
        "${psql[@]}" --dbname="$POSTGRES_DB" -f "$SEED"
        log "seeded $POSTGRES_DB from $SEED"
    fi
    pg_ctl --pgdata="$PGDATA" --wait --silent --mode=fast stop
fi

log "starting $(postgres --version) on *:5432"
exec postgres -c listen_addresses='*' -c jit=off -c unix_socket_directories=/tmp
