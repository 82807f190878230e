#!/usr/bin/env bash
# Installs what tether and its tests need on Debian 12 (as root): the OCI runtime, nftables,
# iproute2 and util-linux (unshare/nsenter for the tests' private namespaces), the static
# busybox the tests build their image from, mmdebstrap for the demo's image, and python3 for
# the benchmark scripts' self-test.
set -euo pipefail
need=()
for p in runc nftables iproute2 util-linux busybox-static mmdebstrap procps curl ca-certificates file python3; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need[@]}" >/dev/null
fi
echo "dependencies present: runc $(runc --version | head -1 | awk '{print $3}'), $(nft --version)"
