#!/usr/bin/env bash
# Builds a ~2 MiB image from Debian's static busybox and imports it into tether as
# busybox:latest (or the reference given). Needs busybox-static; no registry.
# Usage: scripts/busybox-image.sh [REF]    (CLI: $TETHER, default "tether")
set -euo pipefail
REF=${1:-busybox:latest}
TETHER=${TETHER:-tether}
file -L /bin/busybox 2>/dev/null | grep -q 'statically linked' || { echo "need a static /bin/busybox: apt-get install busybox-static" >&2; exit 1; }
root=$(mktemp -d /tmp/busybox-root.XXXXXX)
trap 'rm -rf "$root" "$root.tar"' EXIT
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,tmp,root,proc,sys,dev,run,var/tmp}
chmod 1777 "$root/tmp" "$root/var/tmp"
cp /bin/busybox "$root/bin/busybox"
chroot "$root" /bin/busybox --install -s
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > "$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$root/etc/group"
echo 'hosts: files dns' > "$root/etc/nsswitch.conf"
: > "$root/etc/hosts"; : > "$root/etc/resolv.conf"; : > "$root/etc/hostname"
tar --numeric-owner -C "$root" -cf "$root.tar" .
$TETHER import --change 'CMD ["/bin/sh"]' --change 'ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin' "$root.tar" "$REF"
