#!/usr/bin/env bash
# The front-end/back-end micro-services tutorial, built and run with tether: both images
# come from Dockerfiles (`tether build -f Dockerfile.backend`, `-f Dockerfile.frontend`) on
# the Debian base image examples/bank/build-image.sh makes; the back-end is only exposed on
# a user-defined network, the front-end is published and calls it by name.
#
#   bash examples/microservices/run.sh [--keep]      (as root; run examples/bank/run.sh
#                                                     first, or it builds the base image)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
TETHER=${TETHER:-$repo/target/x86_64-unknown-linux-gnu/release/tether}
BASE=${BANK_IMAGE:-tether-demo/bank:bookworm}
NET=shop-net PORT=${FRONT_PORT:-10000}
keep=0; [[ ${1:-} == --keep ]] && keep=1
tether() { echo "\$ tether $*" >&2; "$TETHER" "$@"; }
[[ -x $TETHER ]] || { echo "run.sh: no $TETHER (cargo build --release)" >&2; exit 1; }
"$TETHER" image inspect "$BASE" >/dev/null 2>&1 || TETHER=$TETHER bash "$repo/examples/bank/build-image.sh"

cleanup() { [[ $keep == 1 ]] && return; "$TETHER" rm -f frontend backend >/dev/null 2>&1; "$TETHER" network rm "$NET" >/dev/null 2>&1; true; }
trap cleanup EXIT
cleanup

tether build -q -t shop/backend -f "$here/Dockerfile.backend" --build-arg BASE="$BASE" "$here"
tether build -q -t shop/frontend -f "$here/Dockerfile.frontend" --build-arg BASE="$BASE" "$here"
tether network create "$NET" >/dev/null
tether run -d --name backend --network "$NET" shop/backend >/dev/null
tether run -d --name frontend --network "$NET" -p "$PORT:10000" shop/frontend >/dev/null
for _ in $(seq 100); do
    answer=$(timeout 5 bash -c 'exec 3<>/dev/tcp/127.0.0.1/$1 && printf "1\n" >&3 && cat <&3' _ "$PORT" 2>/dev/null | tail -n 1) || answer=''
    [[ $answer == Today* ]] && break
    sleep 0.2
done
echo "$answer"
[[ $answer == "Today your item costs 1478.25 USD" ]] || { "$TETHER" logs backend; "$TETHER" logs frontend; exit 1; }
