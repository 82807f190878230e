#!/usr/bin/env python3
"""Figure 6: `run -d` with 200 published ports (127.0.0.1:H:C, 200 separate -p flags) vs
no published port, and `rm -f` of each (CLI wall time, default bridge network)."""
from lib import *

PORTS = int(os.environ.get("BENCH_PORTS", "200"))
BASE = {"tether": 21000, "docker": 22000, "podman": 23000}

def one(e, i):
    out = {}
    for kind in ("none", "ports"):
        name = "bench6-%s-%d" % (kind, i)
        try_rm(e, "rm", name)
        args = []
        if kind == "ports":
            for p in range(PORTS):
                args += ["-p", "127.0.0.1:%d:%d" % (BASE[e] + p, 8000 + p)]
        out["run-" + kind] = timed(e, "run", "-d", "--name", name, "--dns", "127.0.0.1",
                                   *args, IMAGE, "sleep", "3600")
        out["rm-" + kind] = timed(e, *rm_args(e), name)
    return out

n = int(os.environ.get("BENCH_ITER6", str(max(3, ITER // 2))))
res = alternate(n, one, ["run-none", "run-ports", "rm-none", "rm-ports"])
record(6, "run -d, no published port", "s", res["run-none"])
record(6, "run -d, %d published ports" % PORTS, "s", res["run-ports"])
record(6, "rm -f, no published port", "s", res["rm-none"])
record(6, "rm -f, %d published ports" % PORTS, "s", res["rm-ports"])
