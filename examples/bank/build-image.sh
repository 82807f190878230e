#!/usr/bin/env bash
# Builds the bank demo's one image offline-from-a-registry: a Debian 12 (bookworm)
# minbase root filesystem with PostgreSQL 15, python3 and psycopg2, made by
# mmdebstrap from Debian packages, then `tether import`ed with PATH/CMD set.
#
#   bash examples/bank/build-image.sh [--rebuild] [--tar-only]
#
#   --rebuild   rebuild the cached rootfs tar even when it exists
#   --tar-only  only build (or reuse) the tar; do not import it
#
# Environment:
#   TETHER        tether binary          (default: target/x86_64-unknown-linux-gnu/release/tether of this repo)
#   BANK_IMAGE    image reference        (default: tether-demo/bank:bookworm)
#   CACHE_DIR     where the tar is kept  (default: /var/cache/tether-demo)
#   DEBIAN_MIRROR Debian mirror          (default: http://deb.debian.org/debian)
#   DOCKER_HOST   daemon socket, as for any tether/docker client
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
TETHER=${TETHER:-$repo/target/x86_64-unknown-linux-gnu/release/tether}
BANK_IMAGE=${BANK_IMAGE:-tether-demo/bank:bookworm}
CACHE_DIR=${CACHE_DIR:-/var/cache/tether-demo}
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
PACKAGES=postgresql-15,python3,python3-psycopg2

rebuild=0 tar_only=0
for a in "$@"; do
    case $a in
        --rebuild) rebuild=1 ;;
        --tar-only) tar_only=1 ;;
        -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "build-image.sh: unknown argument $a" >&2; exit 2 ;;
    esac
done

tar=$CACHE_DIR/bank-bookworm-rootfs.tar

if [[ $rebuild == 1 || ! -s $tar ]]; then
    command -v mmdebstrap >/dev/null || { echo "build-image.sh: mmdebstrap is not installed (apt-get install mmdebstrap)" >&2; exit 1; }
    mkdir -p "$CACHE_DIR"
    tmp=$(mktemp "$CACHE_DIR/.bank-rootfs.XXXXXX.tar")
    trap 'rm -f "$tmp" "$tmp.log"' EXIT
    echo "==> mmdebstrap: bookworm minbase + $PACKAGES -> $tar"
    start=$SECONDS
    # Documentation, man pages and translations are never unpacked (dpkg
    # path-exclude); the customize hook then drops what postinst scripts and
    # apt leave behind, including the cluster postgresql-common creates at
    # install time (the container initdb's its own data directory) and
    # PostgreSQL's man pages (its postinst needs them: update-alternatives),
    # locale sources (initdb uses the built-in C.UTF-8) and PostgreSQL's LLVM
    # JIT provider with libLLVM/libz3, which only it loads (~160 MB; without
    # the provider PostgreSQL runs queries without JIT, and the entrypoint
    # sets jit=off).
    mmdebstrap \
        --variant=minbase \
        --include="$PACKAGES" \
        --dpkgopt='path-exclude=/usr/share/doc/*' \
        --dpkgopt='path-exclude=/usr/share/man/*' \
        --dpkgopt='path-exclude=/usr/share/info/*' \
        --dpkgopt='path-exclude=/usr/share/locale/*' \
        --dpkgopt='path-exclude=/usr/share/lintian/*' \
        --customize-hook='rm -rf "$1"/var/lib/postgresql/15 "$1"/etc/postgresql/15 "$1"/usr/share/postgresql/15/man' \
        --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/* "$1"/var/cache/debconf/*-old "$1"/var/log/*.log "$1"/var/log/apt/*' \
        --customize-hook='rm -rf "$1"/usr/share/i18n "$1"/usr/share/locale' \
        --customize-hook='rm -rf "$1"/usr/lib/postgresql/15/lib/llvmjit* "$1"/usr/lib/postgresql/15/lib/bitcode "$1"/usr/lib/*-linux-gnu/libLLVM-14.so* "$1"/usr/lib/*-linux-gnu/libz3.so*' \
        bookworm "$tmp" \
        "deb $DEBIAN_MIRROR bookworm main" \
        "deb ${DEBIAN_MIRROR%/debian}/debian-security bookworm-security main" \
        </dev/null >"$tmp.log" 2>&1 || {
        tail -n 40 "$tmp.log" >&2; rm -f "$tmp.log"
        echo "build-image.sh: mmdebstrap failed" >&2; exit 1
    }
    rm -f "$tmp.log"
    mv -f "$tmp" "$tar"
    trap - EXIT
    echo "==> rootfs built in $((SECONDS - start)) s: $(du -h "$tar" | cut -f1) $tar"
else
    echo "==> reusing cached rootfs $tar ($(du -h "$tar" | cut -f1); --rebuild to rebuild)"
fi

[[ $tar_only == 1 ]] && exit 0

# Import unless the image already holds this tar with these settings (a label
# records the tar's size and mtime and a hash of the --change list); a
# replaced image of an earlier import is removed so they do not pile up.
changes=(
    --change 'ENV PATH=/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
    --change 'ENV LANG=C.UTF-8'
    --change 'ENV PGDATA=/var/lib/postgresql/data'
    --change 'WORKDIR /app'
    --change 'CMD ["python3", "/app/app.py"]'
)
stamp="$(stat -c '%s-%Y' "$tar")-$(printf '%s\n' "${changes[@]}" | sha256sum | cut -c1-12)"
changes+=(--change "LABEL org.tether-demo.rootfs=$stamp")
old=$("$TETHER" image inspect -f '{{.Id}} {{with .Config.Labels}}{{index . "org.tether-demo.rootfs"}}{{end}}' "$BANK_IMAGE" 2>/dev/null) || old=''
if [[ -n $old && ${old#* } == "$stamp" ]]; then
    echo "==> image $BANK_IMAGE is up to date (${old:7:12}, from this tar)"
    exit 0
fi
echo "==> tether import $tar $BANK_IMAGE"
new=$("$TETHER" import "${changes[@]}" "$tar" "$BANK_IMAGE")
echo "$new"
old=${old%% *}
if [[ -n $old && $old != "$new" ]]; then
    "$TETHER" rmi "$old" >/dev/null 2>&1 && echo "removed the image it replaces (${old:7:12})"
fi
exit 0
