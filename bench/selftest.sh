#!/usr/bin/env bash
# Self-test of the benchmark's leak check (bench/hostcheck.py) and of bench/run.sh with
# tether alone. Runs itself in private network and mount namespaces with a tmpfs on /run,
# and its files in a temporary directory it removes, so nothing it creates stays on the
# machine. Usage (root): bash bench/selftest.sh
# [TETHER_BIN] (default target/x86_64-unknown-linux-gnu/debug/tether). Exits non-zero on the first failed check.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" != --inside ]; then
  exec unshare --net --mount --propagation private bash "$0" --inside "${1:-$PWD/target/x86_64-unknown-linux-gnu/debug/tether}"
fi
BIN=$2
mount -t tmpfs tmpfs /run
W=$(mktemp -d /tmp/bench-selftest.XXXXXX)
trap 'rm -rf "$W"' EXIT
ip link set lo up
PY=python3; [ -x /usr/bin/python3 ] && PY=/usr/bin/python3
fail() { echo "FAIL: $*" >&2; exit 1; }
snap=$W/before.json

echo "== hostcheck: a clean run passes, each kind of leak fails and is named"
"$PY" bench/hostcheck.py snapshot $snap
"$PY" bench/hostcheck.py compare $snap >/dev/null || fail "nothing changed, yet compare failed"
ip link add tb-leak type bridge
ip netns add leakns
nft add table inet leaktest
out=$("$PY" bench/hostcheck.py compare $snap 2>&1) && fail "compare passed with leaks: $out"
for w in tb-leak leakns "table inet leaktest" "/run/netns/leakns"; do
  grep -qF -- "$w" <<<"$out" || fail "compare does not name $w: $out"
done
# restore-peers leaves tether's leaks alone
"$PY" bench/hostcheck.py restore-peers $snap
"$PY" bench/hostcheck.py compare $snap >/dev/null 2>&1 && fail "restore-peers removed tether's leaks"
ip link del tb-leak; ip netns del leakns; nft delete table inet leaktest
"$PY" bench/hostcheck.py compare $snap >/dev/null || fail "still dirty after removing the leaks"

echo "== hostcheck: restore-peers removes what Docker and Podman leave behind"
ip link add docker0 type bridge
ip link add br-0123456789ab type bridge
ip link add podman1 type bridge
nft add table ip nat; nft add table ip filter
mkdir -p /run/netns; touch /run/netns/netns-00000000-0000-0000-0000-000000000000
"$PY" bench/hostcheck.py compare $snap >/dev/null 2>&1 && fail "peer leftovers not seen"
"$PY" bench/hostcheck.py restore-peers $snap
out=$("$PY" bench/hostcheck.py compare $snap 2>&1) || fail "restore-peers left: $out"

echo "== bench/run.sh with tether alone leaves nothing and says so"
# figure 9 on a small context (1 MiB in 20 files) and figure 10 on a small image (5 layers
# of 0.4 MiB in 2 files each) so that this stays quick
out=$(TMPDIR=$W BENCH_ENGINES=tether BENCH_FIGS="1 3 6 9 10 12" BENCH_ITER=1 BENCH_PLOTS=0 \
      BENCH_N12=3 BENCH_ITER12=1 \
      BENCH_ITER9=1 BENCH_BUILD_MB=1 BENCH_BUILD_FILES=20 \
      BENCH_ITER10=1 BENCH_PULL_MB=2 BENCH_PULL_FILES=2 \
      TBOX_TAR=$W/tbox.tar BENCH_OUT=$W/bench.md TETHER_BIN="$BIN" bash bench/run.sh 2>&1) ||
  fail "bench/run.sh failed: $out"
grep -q "the machine is as the run found it" <<<"$out" || fail "no host check in: $out"
grep -q "^| 3 | network connect" $W/bench.md || fail "no figure 3 row: $(cat $W/bench.md)"
b="8-step build, COPY 1 MiB in 20 files, 3 RUN"
for r in "$b: cold (--no-cache)" "$b: unchanged rebuild (cache)" "build peak RSS, daemon(s), cold" \
         "build peak RSS, daemon(s) + CLI, rebuild"; do
  grep -qF "| 9 | $r | " $W/bench.md || fail "no figure 9 row '$r': $(cat $W/bench.md)"
done
for r in "pull of a 5-layer 2 MiB image from a loopback registry, cold" \
         "pull peak RSS, daemon(s)" "pull peak RSS, daemon(s) + CLI"; do
  grep -qF "| 10 | $r | " $W/bench.md || fail "no figure 10 row '$r': $(cat $W/bench.md)"
done
for r in "3 x run -d, all at once, until the last returned" "failed commands of the 3 concurrent run -d" \
         "duplicate IP addresses among the 3 concurrent runs"; do
  grep -qF "| 12 | $r | " $W/bench.md || fail "no figure 12 row '$r': $(cat $W/bench.md)"
done
pgrep -f "docker-registry serve $W/" >/dev/null && fail "figure 10's registry is still running"
echo "== figure 11 (overlay across three hosts, etcd) in a tiny mode leaves nothing"
# 1 sample, 3 containers, 1 s of iperf3: only that it runs and cleans up
if [ -x /usr/bin/etcd ] && command -v iperf3 >/dev/null; then
  out=$(TMPDIR=$W BENCH_ENGINES=tether BENCH_FIGS=11 BENCH_ITER=1 BENCH_PLOTS=0 \
        BENCH11_CONTAINERS=3 BENCH11_IPERF_S=1 TBOX_TAR=$W/tbox.tar BENCH_OUT=$W/bench11.md \
        TETHER_BIN="$BIN" bash bench/run.sh 2>&1) || fail "bench/run.sh (figure 11) failed: $out"
  grep -q "the machine is as the run found it" <<<"$out" || fail "figure 11: no host check in: $out"
  for r in "overlay: run -d on host 1 until reached by name from host 2" \
           "overlay / underlay throughput" "overlay: 3 containers over 3 hosts, all started"; do
    grep -qF "| 11 | $r | " $W/bench11.md || fail "no figure 11 row '$r': $(cat $W/bench11.md)"
  done
else
  echo "   skipped: figure 11 needs /usr/bin/etcd (etcd-server) and iperf3"
fi
echo "== bench/run.sh fails, naming it, when something is left behind during the run"
TMPDIR=$W BENCH_ENGINES=tether BENCH_FIGS=1 BENCH_ITER=1 BENCH_PLOTS=0 TBOX_TAR=$W/tbox.tar \
  BENCH_OUT=$W/bench2.md TETHER_BIN="$BIN" bash bench/run.sh >$W/run2.log 2>&1 &
run=$!
for _ in $(seq 100); do compgen -G "$W/tether-bench.*/host-before.json" >/dev/null && break; sleep 0.1; done
ip link add tb-left type bridge
if wait $run; then fail "bench/run.sh passed with tb-left left: $(cat $W/run2.log)"; fi
grep -q "links: tb-left" $W/run2.log || fail "the leak is not named: $(cat $W/run2.log)"
ip link del tb-left
echo "bench selftest: ok"
