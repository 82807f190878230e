#!/usr/bin/env bash
# Side-by-side benchmarks: tether vs Docker and Podman (when installed), A B C alternation.
# Usage (root, from the repository): sudo bash bench/run.sh
# Env: BENCH_ITER (default 10), BENCH_FIGS (default "1 3 2 6 7"), BENCH_ENGINES (default:
# tether + whichever of docker/podman are installed), BENCH_OUT (default docs/benchmarks.md).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }

FIGS=${BENCH_FIGS:-"1 3 2 6 7"}
export BENCH_ITER=${BENCH_ITER:-10}
OUT=${BENCH_OUT:-$REPO/docs/benchmarks.md}
TAR=${TBOX_TAR:-/var/tmp/tether-images/tbox.tar}
DOCKER_BIP=${DOCKER_BIP:-10.210.0.1/24}

[ -x target/release/tether ] || cargo build --release
export TETHER_BIN=$REPO/target/release/tether
[ -f "$TAR" ] || bash bench/make-tbox.sh "$TAR"

TMP=$(mktemp -d /tmp/tether-bench.XXXXXX)
export TETHER_SOCK=$TMP/tether.sock BENCH_RESULTS=$TMP/results.jsonl
: > "$BENCH_RESULTS"
TETHER_PID= ; STARTED_DOCKERD=

cleanup() {
  set +e
  echo "== cleanup"
  IFS=, read -ra E <<<"$BENCH_ENGINES"
  for e in "${E[@]}"; do python3 bench/cleanup.py "$e"; done
  if [ -n "$TETHER_PID" ]; then kill "$TETHER_PID"; wait "$TETHER_PID" 2>/dev/null; fi
  # tether's shims outlive the daemon by design; none should be left (all removed above)
  if [ -n "$STARTED_DOCKERD" ]; then
    kill "$STARTED_DOCKERD"; for _ in $(seq 50); do kill -0 "$STARTED_DOCKERD" 2>/dev/null || break; sleep 0.2; done
  fi
  umount -R "$TMP/root" 2>/dev/null; umount -R "$TMP/exec" 2>/dev/null
  rm -rf "$TMP"
}
trap cleanup EXIT

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
    nohup dockerd --bip "$DOCKER_BIP" >/var/log/tether-peers/dockerd.log 2>&1 &
    STARTED_DOCKERD=$!; echo "$STARTED_DOCKERD" > /run/tether-peers/dockerd.pid
    export BENCH_DOCKER_PID=$STARTED_DOCKERD
    for _ in $(seq 100); do docker version >/dev/null 2>&1 && break; sleep 0.2; done
  fi
fi

mkdir -p "$TMP/root" "$TMP/exec"
"$TETHER_BIN" daemon --root "$TMP/root" --exec-root "$TMP/exec" -H "unix://$TETHER_SOCK" \
  --dns 127.0.0.1 >"$TMP/tether.log" 2>&1 &
TETHER_PID=$!; export BENCH_TETHER_PID=$TETHER_PID
for _ in $(seq 100); do "$TETHER_BIN" -H "unix://$TETHER_SOCK" version >/dev/null 2>&1 && break; sleep 0.1; done

IFS=, read -ra E <<<"$BENCH_ENGINES"
for e in "${E[@]}"; do
  case $e in
    tether) c=("$TETHER_BIN" -H "unix://$TETHER_SOCK") ;;
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
    python3 "$s" || echo "!! $s failed" >&2
  done
done

python3 bench/report.py "$BENCH_RESULTS" "$OUT"
cp "$BENCH_RESULTS" "${OUT%.md}.jsonl"
echo "wrote $OUT"
