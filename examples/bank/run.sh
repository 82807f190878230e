#!/usr/bin/env bash
# The bank demo: a real PostgreSQL 15 server (container `postgres12`) and a small
# web app (container `simplebank`) on the user-defined network `bank-network`.
# The app reaches the database BY NAME (postgres12:5432, resolved by tether's
# embedded DNS); its port 8080 is published on the host and queried on 127.0.0.1.
#
#   bash examples/bank/run.sh [--rebuild] [--keep]      (as root, from anywhere)
#
#   --rebuild  rebuild the cached Debian rootfs (see build-image.sh)
#   --keep     leave the containers, network and daemon running (no cleanup)
#
# The app image is built by `tether build` from examples/bank/Dockerfile (a multi-stage
# build on the Debian base image build-image.sh makes).
#
# Environment: HOST_PORT (default 8080, or the next free port), BANK_IMAGE, APP_IMAGE,
# CACHE_DIR, DEBIAN_MIRROR (see build-image.sh), DOCKER_HOST.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
TETHER=$repo/target/x86_64-unknown-linux-gnu/release/tether
export TETHER
BANK_IMAGE=${BANK_IMAGE:-tether-demo/bank:bookworm}
export BANK_IMAGE
APP_IMAGE=${APP_IMAGE:-tether-demo/simplebank:latest}
NETWORK=bank-network
DB=postgres12
APP=simplebank
DB_SOURCE="postgresql://root:secret@$DB:5432/simple_bank?sslmode=disable"

rebuild=() keep=0
for a in "$@"; do
    case $a in
        --rebuild) rebuild=(--rebuild) ;;
        --keep) keep=1 ;;
        -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "run.sh: unknown argument $a" >&2; exit 2 ;;
    esac
done

t0=$SECONDS
# step, die, show, http_get, json_str
source "$repo/examples/common.sh"
[[ $(id -u) == 0 ]] || die "run as root (tether needs it for runc, netlink and nftables)"
tether() { "$TETHER" "$@"; }

# --- cleanup, always (trap) ---
daemon_pid='' workdir=$(mktemp -d /tmp/tether-bank.XXXXXX)
daemon_log=$workdir/daemon.log
sock=${DOCKER_HOST:-unix:///run/tether/tether.sock}

# the `tether monitor` process of the daemon's default exec root (no procps needed)
monitors() {
    local f
    for f in /proc/[0-9]*/cmdline; do
        tr '\0' ' ' 2>/dev/null <"$f" | grep -q '^[^ ]*tether monitor /run/tether/' &&
            echo "process ${f//[^0-9]/}: tether monitor"
    done
    return 0
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    set +e
    if [[ $keep == 1 ]]; then
        echo
        echo "--keep: left running: containers $DB $APP, network $NETWORK${daemon_pid:+, daemon pid $daemon_pid (log $daemon_log)}"
        exit "$rc"
    fi
    step "cleaning up"
    tether rm -f "$APP" "$DB" >/dev/null 2>&1 && echo "removed containers $APP $DB"
    tether network rm "$NETWORK" >/dev/null 2>&1 && echo "removed network $NETWORK"
    if [[ -n $daemon_pid ]]; then
        kill -TERM "$daemon_pid" 2>/dev/null
        for _ in $(seq 100); do kill -0 "$daemon_pid" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$daemon_pid" 2>/dev/null; then
            echo "daemon did not stop on SIGTERM; killing it" >&2
            kill -KILL "$daemon_pid" 2>/dev/null
        fi
        wait "$daemon_pid" 2>/dev/null
        echo "stopped the tether daemon (pid $daemon_pid) this script started"
        # The daemon removes its nftables table and default bridge when it
        # stops with no container left; an older daemon did not: remove them
        # here in that case (harmless when already gone).
        if nft list table inet tether >/dev/null 2>&1; then
            nft delete table inet tether && echo "deleted leftover nftables table inet tether"
        fi
        if ip link show tether0 >/dev/null 2>&1; then
            ip link delete tether0 && echo "deleted leftover bridge tether0"
        fi
        # anything of tether's still on the host?
        local left
        left=$( {
            ip -o link | grep -Eo '^[0-9]+: (tether0|tb-[^:@]*|veth[^:@]*)' | sed 's/^[0-9]*: /link /'
            nft list tables 2>/dev/null | grep -w tether | sed 's/^/nft /'
            monitors
            grep -E ' (/var/lib/tether|/run/tether)' /proc/mounts | awk '{print "mount " $2}'
        } )
        if [[ -n $left ]]; then
            echo "WARNING: left on the host after cleanup:" >&2
            echo "$left" | sed 's/^/  /' >&2
            [[ $rc == 0 ]] && rc=1
        else
            echo "host is clean: no tether0/tb-*/veth* links, no inet tether table, no container monitor, no tether mounts"
        fi
    fi
    if [[ $rc != 0 && -s $daemon_log ]]; then
        echo "--- last lines of the daemon log ($daemon_log) ---" >&2
        tail -n 30 "$daemon_log" >&2
    else
        rm -rf "$workdir"
    fi
    printf '\n==> done in %d s (exit %d)\n' "$((SECONDS - t0))" "$rc"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- 0. what tether needs on the host (runc, nftables, iproute2, mmdebstrap, ...) ---
step "installing what tether needs (apt-get, only what is missing)"
bash "$repo/scripts/install-deps.sh"

# --- 1. the tether binary ---
step "building tether (cargo build --release)"
if command -v cargo >/dev/null; then
    if ! (cd "$repo" && cargo build --release --quiet --bin tether) >"$workdir/cargo.log" 2>&1; then
        if [[ -x $TETHER ]]; then
            echo "warning: cargo build failed ($(grep -m1 '^error' "$workdir/cargo.log")); using the existing $TETHER" >&2
        else
            cat "$workdir/cargo.log" >&2; die "cargo build failed"
        fi
    fi
else
    [[ -x $TETHER ]] || die "no $TETHER and no cargo to build it"
fi

# --- 2. a daemon ---
if tether version -f '{{.Server.Version}}' >/dev/null 2>&1; then
    step "using the tether daemon already answering on $sock"
else
    step "starting tether daemon on $sock (log: $daemon_log)"
    args=(daemon)
    [[ -n ${DOCKER_HOST:-} ]] && args+=(-H "$DOCKER_HOST")
    NO_COLOR=1 setsid "$TETHER" "${args[@]}" >"$daemon_log" 2>&1 </dev/null &
    daemon_pid=$!
    for _ in $(seq 150); do
        tether version -f '{{.Server.Version}}' >/dev/null 2>&1 && break
        kill -0 "$daemon_pid" 2>/dev/null || { cat "$daemon_log" >&2; daemon_pid=''; die "the daemon exited"; }
        sleep 0.2
    done
    tether version -f '{{.Server.Version}}' >/dev/null 2>&1 || die "the daemon does not answer on $sock"
    echo "daemon pid $daemon_pid, tether $(tether version -f '{{.Server.Version}}')"
fi

# leftovers of an interrupted earlier run
tether rm -f "$APP" "$DB" >/dev/null 2>&1 || true
tether network rm "$NETWORK" >/dev/null 2>&1 || true

# --- 3. the image ---
step "image $BANK_IMAGE (Debian bookworm minbase + postgresql-15, python3, psycopg2)"
bash "$here/build-image.sh" "${rebuild[@]}"

step "tether build: the app image from examples/bank/Dockerfile (multi-stage, on $BANK_IMAGE)"
show build -t "$APP_IMAGE" --build-arg BASE="$BANK_IMAGE" "$here"

# --- 4. network and containers ---
port_in_use() { ss -Hltn "sport = :$1" 2>/dev/null | grep -q .; }
if [[ -n ${HOST_PORT:-} ]]; then
    port=$HOST_PORT
else
    port=8080
    while port_in_use "$port"; do port=$((port + 1)); done
    [[ $port == 8080 ]] || echo "port 8080 is taken on this host; publishing on $port"
fi

step "tether network create $NETWORK"
show network create "$NETWORK" >/dev/null
echo "$NETWORK: subnet $(tether network inspect -f '{{range .IPAM.Config}}{{.Subnet}}{{end}}' "$NETWORK")"

step "tether run postgres12: PostgreSQL 15 as user postgres"
show run -d --name "$DB" --hostname "$DB" --network "$NETWORK" -u postgres \
    -e POSTGRES_USER=root -e POSTGRES_PASSWORD=secret -e POSTGRES_DB=simple_bank \
    -v "$here:/app:ro" "$BANK_IMAGE" bash /app/postgres-entrypoint.sh

step "tether run simplebank: the web app, DB_SOURCE pointing at postgres12 by name"
show run -d --name "$APP" --network "$NETWORK" -p "$port:8080" \
    -e DB_SOURCE="$DB_SOURCE" "$APP_IMAGE"
tether ps --format 'table {{.Names}}\t{{.Image}}\t{{.Status}}\t{{.Ports}}'

# --- 5. ask the app through the published port ---
running() { [[ $(tether inspect -f '{{.State.Running}}' "$1" 2>/dev/null) == true ]]; }

step "waiting for http://127.0.0.1:$port/accounts"
resp='' deadline=$((SECONDS + 120))
while ((SECONDS < deadline)); do
    for c in "$DB" "$APP"; do
        running "$c" || { echo "container $c is not running; its log:" >&2; tether logs "$c" >&2; die "$c exited"; }
    done
    resp=$(http_get "$port" /accounts 2>/dev/null | tr -d '\r') || resp=''
    [[ $resp == "HTTP/1."?" 200"* ]] && break
    sleep 0.5
done
[[ $resp == "HTTP/1."?" 200"* ]] || {
    echo "--- $DB log ---"; tether logs "$DB"; echo "--- $APP log ---"; tether logs "$APP"
    die "no answer from http://127.0.0.1:$port/accounts within 120 s (last: ${resp%%$'\n'*})"
}
echo "answered after $((SECONDS - t0)) s"

step "GET http://127.0.0.1:$port/accounts  (host -> nftables DNAT -> $APP:8080 -> $DB:5432)"
echo "$resp"

# where the data came from, cross-checked against tether's view of postgres12
db_ip=$(tether inspect -f "{{(index .NetworkSettings.Networks \"$NETWORK\").IPAddress}}" "$DB")
resolved=$(json_str db_host_resolves_to) server_addr=$(json_str server_addr)
version=$(json_str server_version)
echo
echo "==> the answer came from PostgreSQL: ${version%% on *}"
echo "    $APP asked for \"$(json_str db_host)\", the DNS server $(json_str resolver) answered $resolved; the server saw the query on $server_addr;"
echo "    tether inspect $DB: IP on $NETWORK is $db_ip"
[[ $resolved == "$db_ip" && $server_addr == "$db_ip" ]] || die "the name $DB did not lead to container $DB ($resolved / $server_addr vs $db_ip)"

step "container logs"
echo "--- $DB ---";  tether logs "$DB" 2>&1 | grep -v '^$' | tail -n 8
echo "--- $APP ---"; tether logs "$APP" 2>&1 | tail -n 5
