#!/usr/bin/env bash
# The bank demo across three hosts, on an overlay network kept in etcd (no Swarm):
#
#   host 1  postgres12   PostgreSQL 15, on the overlay network bank-overlay
#   host 2  simplebank   the web app, on bank-overlay, port 8080 published on host 2
#   host 3  a client     asks http://<host 2's underlay address>:8080/accounts
#
# The app reaches the database BY NAME (postgres12, answered by host 2's embedded DNS from
# what host 1 published in etcd) across the VXLAN overlay; the answer comes back through
# the port published on host 2.
#
#   bash examples/multihost/run.sh [--keep]          (as root, on Debian 12)
#
#   --keep   leave everything running (prints how to reach it and how to clean up)
#
# The "hosts" are network namespaces on an underlay bridge that lives in a namespace of its
# own (192.168.90.0/24); each runs its own `tether daemon` (own --root, --exec-root and
# socket under a temporary directory, --cluster-store etcd://192.168.90.254:2379
# --cluster-advertise eth0). etcd (Debian's etcd-server) runs in the underlay namespace.
# Nothing touches the machine's own interfaces, firewall or /var/lib/tether. The images are
# the bank demo's (examples/bank: build-image.sh, Dockerfile, postgres-entrypoint.sh).
#
# Environment: TETHER (default target/x86_64-unknown-linux-gnu/release/tether of this repo, built when missing),
# BANK_IMAGE, APP_IMAGE, CACHE_DIR, DEBIAN_MIRROR (see examples/bank/build-image.sh).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
bank=$repo/examples/bank
TETHER=${TETHER:-$repo/target/x86_64-unknown-linux-gnu/release/tether}
export TETHER
BANK_IMAGE=${BANK_IMAGE:-tether-demo/bank:bookworm}
export BANK_IMAGE
APP_IMAGE=${APP_IMAGE:-tether-demo/simplebank:latest}
NETWORK=bank-overlay
DB=postgres12
APP=simplebank
PORT=8080
DB_SOURCE="postgresql://root:secret@$DB:5432/simple_bank?sslmode=disable"
NS=tether-mh                      # namespace names: tether-mh-ul, tether-mh-h1..3
UL_NET=192.168.90                 # the underlay: hosts .1 .2 .3, the bridge and etcd .254
STORE=etcd://$UL_NET.254:2379
HOSTS=(1 2 3)
DEMO=multihost/run.sh

keep=0
for a in "$@"; do
    case $a in
        --keep) keep=1 ;;
        -h|--help) sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "$DEMO: unknown argument $a" >&2; exit 2 ;;
    esac
done

t0=$SECONDS
# step, die, show, json_str
source "$repo/examples/common.sh"
[[ $(id -u) == 0 ]] || die "run as root (namespaces, runc, netlink and nftables need it)"

workdir=$(mktemp -d /tmp/tether-multihost.XXXXXX)
etcd_pid='' daemon_pids=()
sock() { echo "unix://$workdir/h$1/tether.sock"; }
# `on N tether ...`: the client against host N's daemon
on() { local n=$1; shift; SHOW_PREFIX="[host $n] " DOCKER_HOST=$(sock "$n") "$@"; }
tether() { "$TETHER" "$@"; }

# /proc/PID/cmdline files of processes whose command line contains $1 (one grep over
# all of them)
procs_of() {
    # the pattern from a file, so that this grep's own command line does not match it
    grep -laFf <(printf '%s\n' "$1") /proc/[0-9]*/cmdline 2>/dev/null || true
}

# what of this demo is still on the machine: namespaces, processes, mounts
leftovers() {
    ip netns list 2>/dev/null | awk -v p="$NS-" 'index($1, p) == 1 {print "namespace " $1}'
    local f
    for f in $(procs_of "$workdir/"); do
        echo "process ${f//[^0-9]/}: $(tr '\0' ' ' <"$f" 2>/dev/null | cut -c1-100)"
    done
    grep -F -- "$workdir/" /proc/mounts 2>/dev/null | awk '{print "mount " $2}'
    return 0
}

stop_pid() { # PID: SIGTERM, wait up to 20 s, then SIGKILL
    local p=$1
    kill -TERM "$p" 2>/dev/null || return 0
    for _ in $(seq 200); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$p" 2>/dev/null; then
        echo "pid $p did not stop on SIGTERM; killing it" >&2
        kill -KILL "$p" 2>/dev/null
    fi
    wait "$p" 2>/dev/null || true
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    set +e
    if [[ $keep == 1 && $rc == 0 ]]; then
        echo
        echo "--keep: left running in $workdir: etcd (pid $etcd_pid), daemons (pids ${daemon_pids[*]}),"
        echo "  namespaces $NS-ul $NS-h1 $NS-h2 $NS-h3. Reach a host with: DOCKER_HOST=$(sock 2) $TETHER ps"
        echo "  Clean up: kill the daemons after 'tether rm -f' on each, kill etcd, 'ip netns del' each, rm -rf $workdir"
        exit 0
    fi
    step "cleaning up"
    local n
    for n in "${HOSTS[@]}"; do
        [[ -S $workdir/h$n/tether.sock ]] || continue
        local ids
        ids=$(on "$n" tether ps -aq 2>/dev/null)
        [[ -n $ids ]] && on "$n" tether rm -f $ids >/dev/null 2>&1 && echo "host $n: removed containers $(echo $ids | tr '\n' ' ')"
    done
    [[ -S $workdir/h1/tether.sock ]] && on 1 tether network rm "$NETWORK" >/dev/null 2>&1 && echo "removed network $NETWORK"
    for n in "${!daemon_pids[@]}"; do
        stop_pid "${daemon_pids[$n]}"
        echo "stopped the tether daemon of host $((n + 1)) (pid ${daemon_pids[$n]})"
    done
    if [[ -n $etcd_pid ]]; then stop_pid "$etcd_pid"; echo "stopped etcd (pid $etcd_pid)"; fi
    # last resort for what a failed run left: runc containers and container monitors of
    # our exec roots
    for n in "${HOSTS[@]}"; do
        local root=$workdir/h$n/run/runc id
        [[ -d $root ]] || continue
        for id in $(ls "$root" 2>/dev/null); do
            runc --root "$root" delete -f "$id" >/dev/null 2>&1 && echo "host $n: deleted leftover runc container ${id:0:12}"
        done
    done
    local f
    for f in $(procs_of "$workdir/h"); do
        tr '\0' ' ' 2>/dev/null <"$f" | grep -q " monitor " &&
            kill -KILL "${f//[^0-9]/}" 2>/dev/null && echo "killed leftover container monitor ${f//[^0-9]/}"
    done
    for n in ul "${HOSTS[@]/#/h}"; do
        ip netns del "$NS-$n" 2>/dev/null && echo "deleted namespace $NS-$n"
    done
    sleep 0.5
    local left
    left=$(leftovers)
    if [[ -n $left ]]; then
        echo "ERROR: left on the machine after cleanup:" >&2
        echo "$left" | sed 's/^/  /' >&2
        [[ $rc == 0 ]] && rc=1
    else
        echo "machine is clean: no $NS-* namespace, no process or mount of $workdir"
    fi
    if [[ $rc != 0 ]]; then
        for f in "$workdir"/h*/daemon.log "$workdir"/etcd.log; do
            [[ -s $f ]] || continue
            echo "--- last lines of $f ---" >&2
            tail -n 20 "$f" >&2
        done
        echo "(logs kept in $workdir)" >&2
    else
        echo "removing $workdir (the three hosts' image stores)"
        rm -rf "$workdir"
    fi
    printf '\n==> done in %d s (exit %d)\n' "$((SECONDS - t0))" "$rc"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- 0. what it needs: runc, nftables, iproute2, mmdebstrap, etcd-server, ... ---
step "installing what the demo needs (apt-get, only what is missing)"
bash "$repo/scripts/install-deps.sh"
[[ -x /usr/bin/etcd ]] || die "no /usr/bin/etcd (apt-get install etcd-server)"
for n in ul "${HOSTS[@]/#/h}"; do
    ip netns list | awk '{print $1}' | grep -qx "$NS-$n" && die "namespace $NS-$n exists: another run of this demo? (ip netns del $NS-$n)"
done

# --- 1. the tether binary ---
if [[ -x $TETHER ]]; then
    step "using $TETHER"
else
    step "building tether (cargo build --release)"
    command -v cargo >/dev/null || die "no $TETHER and no cargo to build it"
    (cd "$repo" && cargo build --release --quiet --bin tether) || die "cargo build failed"
fi

# --- 2. the underlay, etcd and three hosts ---
step "underlay: namespace $NS-ul with bridge ul0 ($UL_NET.254/24) and etcd on $STORE"
ip netns add "$NS-ul"
ip -n "$NS-ul" link set lo up
ip -n "$NS-ul" link add ul0 type bridge
ip -n "$NS-ul" addr add "$UL_NET.254/24" dev ul0
ip -n "$NS-ul" link set ul0 up
ETCD_UNSUPPORTED_ARCH=$(dpkg --print-architecture) ip netns exec "$NS-ul" setsid /usr/bin/etcd \
    --name demo --data-dir "$workdir/etcd" \
    --listen-client-urls "http://$UL_NET.254:2379" --advertise-client-urls "http://$UL_NET.254:2379" \
    --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
    --initial-cluster demo=http://127.0.0.1:2380 >"$workdir/etcd.log" 2>&1 </dev/null &
etcd_pid=$!
for _ in $(seq 100); do
    ip netns exec "$NS-ul" bash -c "exec 3<>/dev/tcp/$UL_NET.254/2379" 2>/dev/null && break
    kill -0 "$etcd_pid" 2>/dev/null || die "etcd exited: $(tail -n 5 "$workdir/etcd.log")"
    sleep 0.2
done
echo "etcd $(/usr/bin/etcd --version | head -n1 | awk '{print $3}') (pid $etcd_pid)"

for n in "${HOSTS[@]}"; do
    step "host $n: namespace $NS-h$n, eth0 $UL_NET.$n/24 on ul0, its own tether daemon"
    ip netns add "$NS-h$n"
    ip -n "$NS-h$n" link set lo up
    ip -n "$NS-ul" link add "h$n" type veth peer name eth0 netns "$NS-h$n"
    ip -n "$NS-ul" link set "h$n" master ul0 up
    ip -n "$NS-h$n" addr add "$UL_NET.$n/24" dev eth0
    ip -n "$NS-h$n" link set eth0 up
    mkdir -p "$workdir/h$n"
    # in the host's namespace, a private mount namespace of its own (not `ip netns exec`,
    # which mounts a sysfs without the cgroup hierarchy runc needs)
    NO_COLOR=1 nsenter --net="/run/netns/$NS-h$n" -- unshare --mount --propagation private -- \
        setsid "$TETHER" daemon \
        --root "$workdir/h$n/root" --exec-root "$workdir/h$n/run" -H "$(sock "$n")" \
        --cluster-store "$STORE" --cluster-advertise eth0 --cluster-ttl 10 \
        >"$workdir/h$n/daemon.log" 2>&1 </dev/null &
    daemon_pids+=($!)
    for _ in $(seq 150); do
        on "$n" tether version -f '{{.Server.Version}}' >/dev/null 2>&1 && break
        kill -0 "${daemon_pids[-1]}" 2>/dev/null || die "host $n: the daemon exited: $(tail -n 5 "$workdir/h$n/daemon.log")"
        sleep 0.2
    done
    echo "daemon pid ${daemon_pids[-1]}, socket $(sock "$n")"
done
for _ in $(seq 100); do
    [[ $(on 1 tether node ls 2>/dev/null | grep -c Ready) == 3 ]] && break
    sleep 0.2
done
on 1 show node ls
[[ $(on 1 tether node ls | grep -c Ready) == 3 ]] || die "the three hosts did not all join the cluster"

# --- 3. images: the bank demo's (cached Debian rootfs) on every host, the app on host 2 ---
step "image $BANK_IMAGE (Debian bookworm + postgresql-15 + python3-psycopg2, cached in ${CACHE_DIR:-/var/cache/tether-demo})"
bash "$bank/build-image.sh" --tar-only
for n in "${HOSTS[@]}"; do
    echo "host $n:"
    on "$n" bash "$bank/build-image.sh" | sed 's/^/  /'
done
step "host 2: tether build the app image from examples/bank/Dockerfile"
on 2 show build -q -t "$APP_IMAGE" --build-arg BASE="$BANK_IMAGE" "$bank"

# --- 4. the overlay network and the containers ---
step "host 1: an overlay network, stored in etcd and usable on every host"
on 1 show network create -d overlay "$NETWORK" >/dev/null
for _ in $(seq 50); do
    on 3 tether network inspect "$NETWORK" >/dev/null 2>&1 && break
    sleep 0.1
done
for n in "${HOSTS[@]}"; do
    echo "host $n: $(on "$n" tether network ls --filter name="$NETWORK" --format '{{.Name}} {{.Driver}} {{.Scope}}')"
done

step "host 1: PostgreSQL 15 as $DB on $NETWORK"
on 1 show run -d --name "$DB" --hostname "$DB" --network "$NETWORK" -u postgres \
    -e POSTGRES_USER=root -e POSTGRES_PASSWORD=secret -e POSTGRES_DB=simple_bank \
    -v "$bank:/app:ro" "$BANK_IMAGE" bash /app/postgres-entrypoint.sh

step "host 2: the app as $APP on $NETWORK, DB_SOURCE naming $DB, port $PORT published on host 2"
on 2 show run -d --name "$APP" --network "$NETWORK" -p "$PORT:8080" \
    -e DB_SOURCE="$DB_SOURCE" "$APP_IMAGE"

# --- 5. the client on host 3, through the port published on host 2 ---
url=http://$UL_NET.2:$PORT/accounts
step "host 3: a client container asks $url"
client='import sys, time, urllib.request
deadline = time.time() + 120
while True:
    try:
        with urllib.request.urlopen(sys.argv[1], timeout=5) as r:
            print(r.read().decode()); break
    except Exception as e:
        if time.time() > deadline:
            sys.exit(f"client: {sys.argv[1]}: {e}")
        time.sleep(0.5)'
resp=$(on 3 show run --rm --name client "$BANK_IMAGE" python3 -c "$client" "$url") || {
    echo "--- $DB (host 1) ---"; on 1 tether logs "$DB" 2>&1 | tail -n 20
    echo "--- $APP (host 2) ---"; on 2 tether logs "$APP" 2>&1 | tail -n 20
    die "no answer from $url"
}
echo "$resp"
resp=${resp#*$'\n'}    # without the command line show printed

# --- 6. where the answer came from ---
db_ip=$(on 1 tether inspect -f "{{(index .NetworkSettings.Networks \"$NETWORK\").IPAddress}}" "$DB")
app_ip=$(on 2 tether inspect -f "{{(index .NetworkSettings.Networks \"$NETWORK\").IPAddress}}" "$APP")
resolved=$(json_str db_host_resolves_to) server_addr=$(json_str server_addr)
version=$(json_str server_version)
echo
echo "==> the answer came from PostgreSQL on host 1: ${version%% on *}"
echo "    $APP on host 2 ($app_ip) asked for \"$(json_str db_host)\"; its DNS server $(json_str resolver) answered $resolved;"
echo "    the server saw the query on $server_addr; tether inspect $DB on host 1: $db_ip on $NETWORK"
echo "    the client on host 3 asked $url (published on host 2); host 2's app log:"
on 2 tether logs "$APP" 2>&1 | grep 'GET /accounts' | tail -n 1 | sed 's/^/      /'
[[ -n $db_ip && $resolved == "$db_ip" && $server_addr == "$db_ip" ]] ||
    die "the name $DB did not lead to container $DB on host 1 ($resolved / $server_addr vs $db_ip)"
echo
echo "host 2's forwarding entries towards host 1 (static, from etcd: no flooding):"
ip netns exec "$NS-h2" bridge fdb show | grep "dst $UL_NET.1 " | sed 's/^/  /'
