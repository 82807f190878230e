#!/bin/bash
# Issue 14's experiment without tether: two "hosts" (network namespaces) on an underlay
# bridge, each with the devices crates/net/src/overlay.rs makes (a vxlan device with VNI
# 42, port 4789, nolearning, proxy, udpcsum, MTU 1450, static FDB and neighbour entries,
# and a macvlan in bridge mode on it inside a "container" namespace), and iperf3 TCP from
# container 2 to container 1 over VXLAN against host 2 to host 1 on the underlay.
#
# usage: bench/overlay_knobs.sh [KNOB [N]]
#   without KNOB: N (default 5) alternating pairs, overlay then underlay, 3 s each.
#   with KNOB: a second pair of containers on VNI 43 set up the KNOB's way; per iteration
#   overlay (tether's way), underlay, overlay (the KNOB's way); prints both ratios to the
#   same iteration's underlay, and knob/tether pairwise.
# KNOBs:
#   noudpcsum  the same layout with a vxlan device made with noudpcsum
#   veth       tether's layout before 2026-12-04: a bridge per network with the vxlan
#              device on it, and a veth pair to each container
#   floor      the vxlan device itself inside the container namespace (one container per
#              host and network only: the least any VXLAN overlay can do)
# Namespaces are tether-kn-*; all are removed at the end. Needs iperf3.
set -euo pipefail
P=tether-kn
UL=192.168.79
KNOB=${1:-}
N=${2:-5}
T=${KNOB_IPERF_S:-3}
TMP=$(mktemp -d)

cleanup() {
  for p in "$TMP"/*.pid; do [ -e "$p" ] && kill "$(cat "$p")" 2>/dev/null || true; done
  for n in c1 c2 d1 d2 h1 h2 ul; do ip netns del $P-$n 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT

# static entries towards the other host's container: peer HOST DEVNS DEV MACNET IPNET
peer() {
  local h=$1 o=$((3 - $1))
  ip netns exec "$2" bridge fdb add "02:42:0a:$4:00:0$o" dev "$3" dst $UL.$o self permanent
  ip -n "$2" neigh add "10.$5.0.$o" lladdr "02:42:0a:$4:00:0$o" dev "$3" nud permanent
}
# container HOST NS IFNAME MACNET IPNET: address and bring up IFNAME in NS
address() {
  ip -n "$2" link set "$3" mtu 1450 address "02:42:0a:$4:00:0$1"
  ip -n "$2" addr add "10.$5.0.$1/24" dev "$3"
  ip -n "$2" link set "$3" up
}

ip netns add $P-ul
ip -n $P-ul link set lo up
ip -n $P-ul link add ul0 type bridge
ip -n $P-ul addr add $UL.254/24 dev ul0
ip -n $P-ul link set ul0 up
for h in 1 2; do
  H="ip -n $P-h$h"
  for n in h c d; do ip netns add $P-$n$h; ip -n $P-$n$h link set lo up; done
  ip -n $P-ul link add h$h type veth peer name eth0 netns $P-h$h
  ip -n $P-ul link set h$h master ul0 up
  $H addr add $UL.$h/24 dev eth0
  $H link set eth0 up
  # tether's layout: vxlan device, macvlan endpoint in the container
  $H link add ov mtu 1450 type vxlan id 42 local $UL.$h dstport 4789 nolearning proxy udpcsum
  $H link set ov up
  $H link add link ov name ep type macvlan mode bridge
  $H link set ep netns $P-c$h
  ip -n $P-c$h link set ep name eth0
  address $h $P-c$h eth0 63 99
  # the KNOB's layout, on VNI 43
  case $KNOB in
    "") continue ;;
    noudpcsum|veth)
      $H link add ov2 mtu 1450 type vxlan id 43 local $UL.$h dstport 4789 nolearning proxy \
        "$([ "$KNOB" = noudpcsum ] && echo noudpcsum || echo udpcsum)" ;;
    floor)
      $H link add ov2 mtu 1450 type vxlan id 43 local $UL.$h dstport 4789 nolearning proxy udpcsum ;;
    *) echo "unknown knob $KNOB" >&2; exit 2 ;;
  esac
  case $KNOB in
    noudpcsum)
      $H link set ov2 up
      $H link add link ov2 name ep2 type macvlan mode bridge
      $H link set ep2 netns $P-d$h
      ip -n $P-d$h link set ep2 name eth0
      address $h $P-d$h eth0 62 98 ;;
    veth)
      $H link add ob type bridge
      $H link set ob mtu 1450 up
      $H link set ov2 master ob up
      $H link add vc type veth peer name eth0 netns $P-d$h
      $H link set vc mtu 1450 master ob up
      address $h $P-d$h eth0 62 98 ;;
    floor)
      $H link set ov2 netns $P-d$h
      address $h $P-d$h ov2 62 98 ;;
  esac
done
for h in 1 2; do
  peer $h $P-h$h ov 63 99
  case $KNOB in
    noudpcsum|veth) peer $h $P-h$h ov2 62 98 ;;
    floor) peer $h $P-d$h ov2 62 98 ;;
  esac
done

ip netns exec $P-c1 iperf3 -s -D -B 10.99.0.1 -p 5201 --pidfile "$TMP/s1.pid" >/dev/null
ip netns exec $P-h1 iperf3 -s -D -B $UL.1 -p 5202 --pidfile "$TMP/s2.pid" >/dev/null
[ -z "$KNOB" ] || ip netns exec $P-d1 iperf3 -s -D -B 10.98.0.1 -p 5203 --pidfile "$TMP/s3.pid" >/dev/null
sleep 0.5
gbps() { python3 -c 'import json,sys;print(json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]/1e9)'; }
over() { ip netns exec $P-c2 iperf3 -c 10.99.0.1 -p 5201 -t "$T" -J | gbps; }
under() { ip netns exec $P-h2 iperf3 -c $UL.1 -p 5202 -t "$T" -J | gbps; }
other() { ip netns exec $P-d2 iperf3 -c 10.98.0.1 -p 5203 -t "$T" -J | gbps; }
a=() u=() b=()
for _ in $(seq "$N"); do
  a+=("$(over)")
  u+=("$(under)")
  [ -z "$KNOB" ] || b+=("$(other)")
done
python3 - "${KNOB:-none}" "$(cut -d' ' -f1-3 /proc/loadavg)" "${a[*]}" "${u[*]}" "${b[*]:-}" <<'PY'
import sys, statistics as s
k, load = sys.argv[1], sys.argv[2]
a, u = [list(map(float, x.split())) for x in sys.argv[3:5]]
b = list(map(float, sys.argv[5].split()))
r = [x / y for x, y in zip(a, u)]
out = "knob %s n=%d underlay %.2f Gbit/s | overlay %.2f ratio %.2f (%.2f-%.2f)" % (
    k, len(a), s.median(u), s.median(a), s.median(r), min(r), max(r))
if b:
    rb = [x / y for x, y in zip(b, u)]
    out += " | knob's way: overlay %.2f ratio %.2f (%.2f-%.2f), knob/tether pairwise %.2f" % (
        s.median(b), s.median(rb), min(rb), max(rb), s.median([y / x for x, y in zip(a, b)]))
print(out + " | load " + load)
PY
