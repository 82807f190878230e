#!/usr/bin/env bash
# Installs what tether and its tests need on Debian 12 (as root): libc6-dev (the static C
# library tether links, see .cargo/config.toml), the OCI runtime, nftables,
# iproute2 and util-linux (unshare/nsenter for the tests' private namespaces), the static
# busybox the tests build their image from, mmdebstrap for the demo's image, python3 for
# the benchmark scripts' self-test, and Docker Distribution (docker-registry) with htpasswd
# (apache2-utils) and zstd for the registry tests, which start their own registries: the package's
# system service is not started; chromium for the headless-browser test of the topology page;
# docker-compose (1.29, Python) and, when no docker CLI is installed, Debian's docker.io (its
# daemon is not started) for the tests that drive tether through the real clients;
# protobuf-compiler (protoc, which the etcd-client crate needs at build time) and etcd-server
# (/usr/bin/etcd; its service is not started) for the overlay tests and the multihost demo;
# iperf3 for the overlay benchmark (bench/fig11_overlay.py); ethtool for bench/overlay_knobs.sh.
set -euo pipefail
need=()
for p in libc6-dev runc nftables iproute2 util-linux busybox-static mmdebstrap procps curl ca-certificates file python3 docker-registry apache2-utils zstd chromium docker-compose protobuf-compiler etcd-server iperf3 ethtool; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need+=("$p")
done
if [ ! -x /usr/local/bin/docker ] && [ ! -x /usr/bin/docker ]; then need+=(docker.io); fi
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # policy-rc.d 101: packages' services (docker-registry's) are not started on install
  policy=/usr/sbin/policy-rc.d
  own_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod 755 "$policy" && own_policy=1
  fi
  rc=0
  apt-get install -y -qq "${need[@]}" >/dev/null || rc=$?
  if [ "$own_policy" = 1 ]; then rm -f "$policy"; fi
  if [ "$rc" != 0 ]; then exit "$rc"; fi
fi
echo "dependencies present: runc $(runc --version | head -1 | awk '{print $3}'), $(nft --version)"
