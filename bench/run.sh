#!/usr/bin/env bash
# Side-by-side benchmarks: tether vs Docker and Podman (when installed), A B C alternation.
# Usage (root, from the repository): sudo bash bench/run.sh
# Env: BENCH_ITER (default 10), BENCH_FIGS (default "1 3 2 4 5 6 7 9 10 11 12"), BENCH_ENGINES (default:
# tether + whichever of docker/podman are installed), BENCH_OUT (default docs/benchmarks.md),
# TETHER_BIN (default target/x86_64-unknown-linux-gnu/release/tether); more knobs in bench/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }

# figure 11 (overlay across hosts) is tether's alone and runs its own three daemons and
# etcd in network namespaces: neither Docker nor Podman has overlay networks without Swarm
FIGS=${BENCH_FIGS:-"1 3 2 4 5 6 7 9 10 11 12"}
export BENCH_ITER=${BENCH_ITER:-10}
OUT=${BENCH_OUT:-$REPO/docs/benchmarks.md}
TAR=${TBOX_TAR:-/var/tmp/tether-images/tbox.tar}
export TBOX_TAR=$TAR
DOCKER_BIP=${DOCKER_BIP:-10.210.0.1/24}

# TETHER_BIN: the tether executable to benchmark (default: this tree's release build,
# built if missing). Point it at a private copy to be immune to a concurrent rebuild.
if [ -z "${TETHER_BIN:-}" ]; then
  [ -x target/x86_64-unknown-linux-gnu/release/tether ] || cargo build --release
  TETHER_BIN=$REPO/target/x86_64-unknown-linux-gnu/release/tether
fi
[ -x "$TETHER_BIN" ] || { echo "TETHER_BIN=$TETHER_BIN is not executable" >&2; exit 1; }
export TETHER_BIN
[ -f "$TAR" ] || bash bench/make-tbox.sh "$TAR"

# Debian's python3 (its python3-matplotlib draws the plots), the load generators of
# figures 4 (dnsperf) and 5 and 11 (iperf3), figure 10's registry (docker-registry) and
# figure 11's etcd (etcd-server), installed from Debian's packages when missing (no
# package's service is started: policy-rc.d 101).
PY=python3; [ -x /usr/bin/python3 ] && PY=/usr/bin/python3
export PYTHONDONTWRITEBYTECODE=1  # no bench/__pycache__ churn in the work tree
pkgs=()
[ "${BENCH_PLOTS:-1}" = 0 ] || "$PY" -c 'import matplotlib' 2>/dev/null || pkgs+=(python3-matplotlib)
[[ " $FIGS " == *" 4 "* ]] && ! command -v dnsperf >/dev/null && pkgs+=(dnsperf)
[[ " $FIGS " == *" 5 "* || " $FIGS " == *" 11 "* ]] && ! command -v iperf3 >/dev/null && pkgs+=(iperf3)
[[ " $FIGS " == *" 10 "* ]] && [ ! -x /usr/bin/docker-registry ] && pkgs+=(docker-registry)
[[ " $FIGS " == *" 11 "* ]] && [ ! -x /usr/bin/etcd ] && pkgs+=(etcd-server)
# figures 9 and 10 read the CLI's peak RSS from GNU time (bench/lib.py, run_peak)
[[ " $FIGS " == *" 9 "* || " $FIGS " == *" 10 "* ]] && [ ! -x /usr/bin/time ] && pkgs+=(time)
if [ ${#pkgs[@]} -gt 0 ]; then
  echo "== apt-get install ${pkgs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  own_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && own_policy=1
  fi
  apt-get install -y -qq "${pkgs[@]}" >/dev/null ||
    { apt-get update -qq && apt-get install -y -qq "${pkgs[@]}" >/dev/null; } ||
    echo "!! could not install ${pkgs[*]}: the figures that need them will fail" >&2
  [ "$own_policy" = 0 ] || rm -f /usr/sbin/policy-rc.d
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/tether-bench.XXXXXX")
export TETHER_SOCK=$TMP/tether.sock BENCH_RESULTS=$TMP/results.jsonl
: > "$BENCH_RESULTS"
TETHER_PID= ; STARTED_DOCKERD=
# the machine's networking state before any engine runs: the run must leave it so
"$PY" bench/hostcheck.py snapshot "$TMP/host-before.json"

cleanup() {
  set +e
  echo "== cleanup"
  IFS=, read -ra E <<<"$BENCH_ENGINES"
  for e in "${E[@]}"; do "$PY" bench/cleanup.py "$e"; done
  if [ -n "$TETHER_PID" ]; then kill "$TETHER_PID"; wait "$TETHER_PID" 2>/dev/null; fi
  # tether's container monitor outlives the daemon by design; it ends when it serves
  # nothing (all removed above)
  if [ -n "$STARTED_DOCKERD" ]; then
    kill "$STARTED_DOCKERD"; for _ in $(seq 50); do kill -0 "$STARTED_DOCKERD" 2>/dev/null || break; sleep 0.2; done
  fi
  umount -R "$TMP/root" 2>/dev/null; umount -R "$TMP/exec" 2>/dev/null
  # what Docker and Podman keep after their daemon stops or their last container goes
  # (docker0, bridges, iptables tables, netns files, an idle aardvark-dns), when the
  # run created it; then anything else new since the start is a leak, and fails the run
  "$PY" bench/hostcheck.py restore-peers "$TMP/host-before.json"
  "$PY" bench/hostcheck.py compare "$TMP/host-before.json" || status=1
  rm -rf "$TMP"
  exit "${status:-0}"
}
trap 'status=$?; cleanup' EXIT

# --- engines ---------------------------------------------------------------------------
if [ -z "${BENCH_ENGINES:-}" ]; then
  BENCH_ENGINES=tether
  command -v dockerd >/dev/null && BENCH_ENGINES+=,docker
  command -v podman >/dev/null && BENCH_ENGINES+=,podman
fi
export BENCH_ENGINES

# tether's default bridge is 172.17.0.0/16 like docker0: the script runs dockerd with
# --bip $DOCKER_BIP so that both engines can run at once (and alternate per iteration).
if [[ $BENCH_ENGINES == *docker* ]]; then
  if docker version >/dev/null 2>&1; then
    if ip -4 addr show docker0 2>/dev/null | grep -q ' 172\.17\.'; then
      echo "a dockerd is running with docker0 on 172.17.0.0/16, which tether's default bridge" >&2
      echo "also uses; stop it (the script starts its own with --bip $DOCKER_BIP)" >&2; exit 1
    fi
    export BENCH_DOCKER_PID=$(pgrep -xo dockerd)
  else
    # a stale docker0 on 172.17 (left by an earlier dockerd) would keep the old address
    ip -4 addr show docker0 2>/dev/null | grep -q ' 172\.17\.' && ip link del docker0
    mkdir -p /run/tether-peers /var/log/tether-peers
    # shellcheck disable=SC2086  # BENCH_DOCKERD_ARGS: extra words, e.g. --data-root DIR
    nohup dockerd --bip "$DOCKER_BIP" ${BENCH_DOCKERD_ARGS:-} >/var/log/tether-peers/dockerd.log 2>&1 &
    STARTED_DOCKERD=$!; echo "$STARTED_DOCKERD" > /run/tether-peers/dockerd.pid
    export BENCH_DOCKER_PID=$STARTED_DOCKERD
    for _ in $(seq 100); do docker version >/dev/null 2>&1 && break; sleep 0.2; done
  fi
fi

mkdir -p "$TMP/root" "$TMP/exec"
# shellcheck disable=SC2086  # BENCH_TETHER_ARGS: extra words, e.g. --log-level LEVEL
"$TETHER_BIN" daemon --root "$TMP/root" --exec-root "$TMP/exec" -H "unix://$TETHER_SOCK" \
  --dns 127.0.0.1 ${BENCH_TETHER_ARGS:-} >"${BENCH_TETHER_LOG:-$TMP/tether.log}" 2>&1 &
TETHER_PID=$!; export BENCH_TETHER_PID=$TETHER_PID BENCH_TETHER_EXEC_ROOT=$TMP/exec
for _ in $(seq 100); do "$TETHER_BIN" -H "unix://$TETHER_SOCK" version >/dev/null 2>&1 && break; sleep 0.1; done

IFS=, read -ra E <<<"$BENCH_ENGINES"
for e in "${E[@]}"; do
  case $e in
    tether) c=("$TETHER_BIN" -H "unix://$TETHER_SOCK") ;;
    # shellcheck disable=SC2206  # BENCH_PODMAN_ARGS: global flags, e.g. --root DIR
    podman) c=(podman ${BENCH_PODMAN_ARGS:-}) ;;
    *) c=("$e") ;;
  esac
  "${c[@]}" image inspect tbox:latest >/dev/null 2>&1 ||
    "${c[@]}" import --change 'CMD ["/bin/sh"]' --change 'ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin' \
      "$TAR" tbox:latest >/dev/null
done

# --- figures ---------------------------------------------------------------------------
for f in $FIGS; do
  for s in bench/fig${f}_*.py; do
    echo "== $s ($BENCH_ENGINES)"
    "$PY" "$s" || echo "!! $s failed" >&2
  done
done

"$PY" bench/report.py "$BENCH_RESULTS" "$OUT"
cp "$BENCH_RESULTS" "${OUT%.md}.jsonl"
echo "wrote $OUT"
