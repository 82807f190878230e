# Helpers the demos source (examples/bank/run.sh, examples/multihost/run.sh).
# The sourcing script sets t0=$SECONDS first and defines a `tether` function (the client
# it runs: which binary, which daemon).

# a numbered step heading, with the seconds since the start
step() { printf '\n==> [%3ds] %s\n' "$((SECONDS - t0))" "$*"; }

# an error naming the demo (DEMO, default run.sh), then exit 1
die() { echo "${DEMO:-run.sh}: $*" >&2; exit 1; }

# print a tether command (as one would type it, after SHOW_PREFIX), then run it
show() {
    local a out="${SHOW_PREFIX:-}\$ tether"
    for a in "$@"; do
        if [[ $a =~ ^[A-Za-z0-9_./:=@,+-]+$ ]]; then out+=" $a"; else out+=" '${a//\'/\'\\\'\'}'"; fi
    done
    echo "$out"
    tether "$@"
}

# GET http://HOST:PORT/PATH (HOST default 127.0.0.1) in plain bash (/dev/tcp: no curl
# needed): the HTTP response on stdout
http_get() { # PORT PATH [HOST]
    timeout 5 bash -c 'exec 3<>"/dev/tcp/$3/$1" || exit 1
        printf "GET %s HTTP/1.0\r\nHost: %s:%s\r\nConnection: close\r\n\r\n" "$2" "$3" "$1" >&3
        cat <&3' _ "$1" "$2" "${3:-127.0.0.1}"
}

# the string value of "KEY": "..." in the JSON text $resp (one key per line, as the
# bank app prints it)
json_str() { sed -n "s/^ *\"$1\": \"\\(.*\\)\",\\{0,1\}\$/\\1/p" <<<"$resp" | head -n1; }
