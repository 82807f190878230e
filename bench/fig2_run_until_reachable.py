#!/usr/bin/env python3
"""Figure 2: time from `run -d` of a server container until another, already running
container on the same network reaches it by name (TCP connect + one line answered).

The client loop (`exec client sh -c 'until nc NAME 80 ...'`) is started first and given
1 s to begin polling; the clock starts when `run -d` of the server is issued and stops
when the client loop exits."""
import subprocess, time
from lib import *

# Podman: `--dns` replaces the container's resolver (aardvark) instead of setting its
# upstream, and aardvark forwards the names polled here before the server exists to the
# resolvers of /etc/resolv.conf. So every podman command of this figure runs (nsenter) in
# one mount namespace, held by a `sleep`, where /etc/resolv.conf says `nameserver
# 127.0.0.1`: aardvark-dns, started by the first of them, inherits it and forwards unknown
# names to loopback only (refused at once). One namespace for all of them, so that the
# netns and rootfs mounts podman makes there are found again by its later commands
# (teardown). nsenter adds ~1 ms per podman command, counted against Podman. An
# aardvark-dns already running (started by an earlier figure with the machine's resolvers)
# is stopped first when podman has no container, else podman is skipped.
DNS_ARGS = {e: ["--dns", "127.0.0.1"] for e in engines()}
HOLDER = None
if "podman" in engines():
    left = subprocess.run(["podman", "ps", "-aq"], capture_output=True, text=True).stdout.strip()
    if left == "":
        subprocess.run(["pkill", "-x", "aardvark-dns"])
        for _ in range(50):
            if subprocess.run(["pgrep", "-x", "aardvark-dns"],
                              stdout=subprocess.DEVNULL).returncode != 0:
                break
            time.sleep(0.1)
    if subprocess.run(["pgrep", "-x", "aardvark-dns"], stdout=subprocess.DEVNULL).returncode == 0:
        print("figure 2: aardvark-dns busy (podman containers: %s); podman skipped" % left,
              file=sys.stderr)
        os.environ["BENCH_ENGINES"] = ",".join(e for e in engines() if e != "podman")
    else:
        resolv = "/tmp/bench2-resolv.conf"
        with open(resolv, "w") as f:
            f.write("nameserver 127.0.0.1\n")
        HOLDER = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c",
             "mount --bind %s /etc/resolv.conf && echo ready && exec sleep 3600" % resolv],
            stdout=subprocess.PIPE, text=True)
        if HOLDER.stdout.readline().strip() != "ready":
            raise RuntimeError("figure 2: could not prepare podman's mount namespace")
        CLI_WRAP["podman"] = ["nsenter", "--mount=/proc/%d/ns/mnt" % HOLDER.pid]
        DNS_ARGS["podman"] = []

for e in engines():
    try_rm(e, "rm", "bench2-client")
    try_rm(e, "network", "bench2")
    sh(e, "network", "create", "--subnet", subnet(e, 2), "bench2")
    sh(e, "run", "-d", "--name", "bench2-client", "--network", "bench2", *DNS_ARGS[e],
       IMAGE, "sleep", "3600")

def one(e, i):
    srv = "bench2-srv%d" % i
    try_rm(e, "rm", srv)
    loop = ("n=0; until echo | nc -w 1 %s 80 2>/dev/null | grep -q hello; do "
            "sleep 0.01; n=$((n+1)); [ $n -gt 3000 ] && exit 1; done; exit 0" % srv)
    client = subprocess.Popen(cli(e) + ["exec", "bench2-client", "sh", "-c", loop],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)
    t0 = time.perf_counter()
    sh(e, "run", "-d", "--name", srv, "--network", "bench2", *DNS_ARGS[e], IMAGE,
       "nc", "-ll", "-p", "80", "-e", "echo", "hello")
    t_run = time.perf_counter() - t0
    rc = client.wait(timeout=60)
    t_reach = time.perf_counter() - t0
    try_rm(e, "rm", srv)
    if rc != 0:
        raise RuntimeError("client never reached %s" % srv)
    return {"run": t_run, "reach": t_reach}

try:
    res = alternate(ITER, one, ["run", "reach"])
    record(2, "run -d (CLI returns)", "s", res["run"])
    record(2, "run -d until reached by name from a peer", "s", res["reach"])
finally:
    for e in engines():
        try_rm(e, "rm", "bench2-client", *["bench2-srv%d" % i for i in range(ITER)])
        try_rm(e, "network", "bench2")
    if HOLDER:
        HOLDER.kill()
