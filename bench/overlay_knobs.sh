#!/bin/bash
# Issue 14's experiment without tether: two "hosts" (network namespaces) on an underlay
# bridge, each with the devices crates/net/src/overlay.rs makes (a bridge, a vxlan device
# with VNI 42, port 4789, nolearning, proxy, MTU 1450, static FDB and neighbour entries, a
# veth to a "container" namespace), and iperf3 TCP from container 2 to container 1 over
# VXLAN against host 2 to host 1 on the underlay.
#
# usage: bench/overlay_knobs.sh [KNOB [N]]
#   without KNOB: N (default 5) alternating pairs, overlay then underlay, 3 s each.
#   with KNOB: per iteration overlay (knob off), underlay, overlay (knob on); prints both
#   ratios to the same iteration's underlay, and knob-on/knob-off pairwise.
# KNOBs (only on devices tether makes, unless marked host):
#   noudpcsum  vxlan device recreated with noudpcsum (off = udpcsum)
#   gro        GRO (and with it veth NAPI) on both ends of the container veth
#   rps        RPS over both CPUs on both ends of the container veth
#   brnf       host: net.bridge.bridge-nf-call-{ip,ip6,arp}tables=0 in the hosts' namespaces
# Namespaces are tether-kn-*; all are removed at the end. Needs iperf3 and ethtool.
set -euo pipefail
P=tether-kn
UL=192.168.79
KNOB=${1:-}
N=${2:-5}
T=${KNOB_IPERF_S:-3}
TMP=$(mktemp -d)

cleanup() {
  for p in "$TMP"/*.pid; do [ -e "$p" ] && kill "$(cat "$p")" 2>/dev/null || true; done
  for n in c1 c2 h1 h2 ul; do ip netns del $P-$n 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT

vxlan() { # vxlan HOST CSUM: (re)make the vxlan device of HOST and its static entries
  local h=$1 o=$((3 - $1)) H="ip -n $P-h$1"
  $H link del ov 2>/dev/null || true
  $H link add ov mtu 1450 type vxlan id 42 local $UL.$h dstport 4789 nolearning proxy "$2"
  $H link set ov master ob up
  ip netns exec $P-h$h bridge fdb add 02:42:0a:63:00:0$o dev ov dst $UL.$o self permanent
  $H neigh add 10.99.0.$o lladdr 02:42:0a:63:00:0$o dev ov nud permanent
}

ip netns add $P-ul
ip -n $P-ul link set lo up
ip -n $P-ul link add ul0 type bridge
ip -n $P-ul addr add $UL.254/24 dev ul0
ip -n $P-ul link set ul0 up
for h in 1 2; do
  ip netns add $P-h$h
  ip netns add $P-c$h
  ip -n $P-h$h link set lo up
  ip -n $P-c$h link set lo up
  ip -n $P-ul link add h$h type veth peer name eth0 netns $P-h$h
  ip -n $P-ul link set h$h master ul0 up
  ip -n $P-h$h addr add $UL.$h/24 dev eth0
  ip -n $P-h$h link set eth0 up
  ip -n $P-h$h link add ob type bridge
  ip -n $P-h$h link set ob mtu 1450 up
  ip -n $P-h$h link add vc type veth peer name eth0 netns $P-c$h
  ip -n $P-h$h link set vc mtu 1450 master ob up
  ip -n $P-c$h link set eth0 mtu 1450 address 02:42:0a:63:00:0$h
  ip -n $P-c$h addr add 10.99.0.$h/24 dev eth0
  ip -n $P-c$h link set eth0 up
done
for h in 1 2; do vxlan $h udpcsum; done

knob() { # knob on|off
  local h v=$1
  for h in 1 2; do
    case $KNOB in
      noudpcsum) vxlan $h "$([ "$v" = on ] && echo noudpcsum || echo udpcsum)" ;;
      gro) ip netns exec $P-h$h ethtool -K vc gro "$v"
           ip netns exec $P-c$h ethtool -K eth0 gro "$v" ;;
      rps) m=$([ "$v" = on ] && echo 3 || echo 0)
           ip netns exec $P-h$h sh -c "echo $m > /sys/class/net/vc/queues/rx-0/rps_cpus"
           ip netns exec $P-c$h sh -c "echo $m > /sys/class/net/eth0/queues/rx-0/rps_cpus" ;;
      brnf) x=$([ "$v" = on ] && echo 0 || echo 1)
            ip netns exec $P-h$h sysctl -qw net.bridge.bridge-nf-call-iptables=$x \
              net.bridge.bridge-nf-call-ip6tables=$x net.bridge.bridge-nf-call-arptables=$x ;;
      *) echo "unknown knob $KNOB" >&2; exit 2 ;;
    esac
  done
  sleep 0.2
}

ip netns exec $P-c1 iperf3 -s -D -B 10.99.0.1 -p 5201 --pidfile "$TMP/s1.pid" >/dev/null
ip netns exec $P-h1 iperf3 -s -D -B $UL.1 -p 5202 --pidfile "$TMP/s2.pid" >/dev/null
sleep 0.5
gbps() { python3 -c 'import json,sys;print(json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]/1e9)'; }
over() { ip netns exec $P-c2 iperf3 -c 10.99.0.1 -p 5201 -t "$T" -J | gbps; }
under() { ip netns exec $P-h2 iperf3 -c $UL.1 -p 5202 -t "$T" -J | gbps; }
a=() u=() b=()
for _ in $(seq "$N"); do
  [ -z "$KNOB" ] || knob off
  a+=("$(over)")
  u+=("$(under)")
  if [ -n "$KNOB" ]; then knob on; b+=("$(over)"); fi
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
    out += " | knob on: overlay %.2f ratio %.2f (%.2f-%.2f), on/off pairwise %.2f" % (
        s.median(b), s.median(rb), min(rb), max(rb), s.median([y / x for x, y in zip(a, b)]))
print(out + " | load " + load)
PY
