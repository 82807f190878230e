#!/usr/bin/env bash
# Build the busybox rootfs tar used by every engine (tbox:latest). Usage: make-tbox.sh OUT.tar
set -euo pipefail
OUT=$1; BB=${BUSYBOX:-/bin/busybox}
file -L "$BB" | grep -q 'statically linked' || { echo "need busybox-static" >&2; exit 1; }
root=$(mktemp -d /var/tmp/tbox-root.XXXXXX); trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,tmp,root,proc,sys,dev,run,var/tmp,home}
chmod 1777 "$root/tmp" "$root/var/tmp"
cp "$BB" "$root/bin/busybox"; chroot "$root" /bin/busybox --install -s
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > "$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$root/etc/group"
echo 'hosts: files dns' > "$root/etc/nsswitch.conf"
: > "$root/etc/hosts"; : > "$root/etc/resolv.conf"; : > "$root/etc/hostname"
mkdir -p "$(dirname "$OUT")"; tar --numeric-owner -C "$root" -cf "$OUT" .
