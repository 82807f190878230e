#!/usr/bin/env bash
# Runs the black-box acceptance checks (../shared/acceptance/seeds.sh, handed to the
# project; not part of a user's clone) against a tether daemon started for the run. The
# daemon and the checks run together inside a private network and mount namespace, so the
# host's networking is untouched and nothing is left behind.
#
# Usage: scripts/acceptance.sh [docker]   ("docker": drive tether with the real docker CLI)
# Env:   SHARED (default ../shared), TETHER (default target/x86_64-unknown-linux-gnu/debug/tether, built if missing)
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${SHARED:-$(cd .. && pwd)/shared}
if [ -z "${TETHER_IN_NS:-}" ]; then
  [ -d "$SHARED/acceptance" ] || { echo "no acceptance suite at $SHARED/acceptance" >&2; exit 1; }
  export PATH="$HOME/.cargo/bin:$PATH"
  [ -n "${TETHER:-}" ] || { cargo build -q; TETHER=$PWD/target/x86_64-unknown-linux-gnu/debug/tether; }
  imgs=/var/tmp/tether-images
  [ -f $imgs/tbox.tar ] || bash "$SHARED/images/build-tbox.sh" none >/dev/null
  if [ ! -f $imgs/pybox.tar ] && [ -x /usr/bin/python3.11 ]; then bash "$SHARED/images/build-pybox.sh" none >/dev/null || true; fi
  export TETHER SHARED TETHER_IN_NS=1
  exec unshare --net --mount --propagation private -- bash "$0" "$@"
fi
D=$(mktemp -d /tmp/tether-acceptance.XXXXXX)
trap 'rm -rf "$D"' EXIT
mkdir -p "$D/bin"; cp "$TETHER" "$D/bin/tether"
export PATH=$D/bin:$PATH
ip link set lo up
# upstream DNS: loopback only, nothing listens there: unknown names fail at once
tether daemon --root "$D/root" --exec-root "$D/run" -H "unix://$D/sock" --dns 127.0.0.1 >"$D/daemon.log" 2>&1 &
DP=$!
for _ in $(seq 100); do [ -S "$D/sock" ] && break; sleep 0.1; done
export DOCKER_HOST=unix://$D/sock
tether import --change 'CMD ["/bin/sh"]' --change 'ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin' /var/tmp/tether-images/tbox.tar tbox:latest >/dev/null
if [ -f /var/tmp/tether-images/pybox.tar ]; then
  tether import --change 'CMD ["/usr/bin/python3"]' --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin' \
    --change 'ENV PYTHONUNBUFFERED=1' /var/tmp/tether-images/pybox.tar pybox:latest >/dev/null
fi
CLI=tether; [ "${1:-}" = docker ] && CLI=docker
rc=0
CLI=$CLI bash "$SHARED/acceptance/seeds.sh" || rc=$?
for c in $(tether ps -aq); do tether rm -f "$c" >/dev/null 2>&1 || true; done
kill "$DP"; wait "$DP" || true
if [ $rc -ne 0 ]; then echo "--- daemon log (tail)"; tail -30 "$D/daemon.log"; fi
exit $rc
