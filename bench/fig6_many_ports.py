#!/usr/bin/env python3
"""Figure 6: `run -d` with 0, 50, 100 and 200 published ports (127.0.0.1:H:C, one -p
flag each), and `rm -f` of each (CLI wall time, default bridge network). The table has
0 and 200 ports; every count is a point of the plot (time vs number of ports)."""
from lib import *

PORTS = int(os.environ.get("BENCH_PORTS", "200"))
STEPS = sorted({0, PORTS} | {int(k) for k in os.environ.get(
    "BENCH_PORT_STEPS", "%d %d" % (PORTS // 4, PORTS // 2)).split()})
BASE = {"tether": 21000, "docker": 22000, "podman": 23000}

def one(e, i):
    out = {}
    for k in STEPS:
        name = "bench6-%d-%d" % (k, i)
        try_rm(e, "rm", name)
        args = []
        for p in range(k):
            args += ["-p", "127.0.0.1:%d:%d" % (BASE[e] + p, 8000 + p)]
        out["run-%d" % k] = timed(e, "run", "-d", "--name", name, "--dns", "127.0.0.1",
                                  *args, IMAGE, "sleep", "3600")
        out["rm-%d" % k] = timed(e, *rm_args(e), name)
    return out

n = int(os.environ.get("BENCH_ITER6", str(max(3, ITER // 2))))
res = alternate(n, one, ["%s-%d" % (op, k) for op in ("run", "rm") for k in STEPS])
record(6, "run -d, no published port", "s", res["run-0"])
record(6, "run -d, %d published ports" % PORTS, "s", res["run-%d" % PORTS])
record(6, "rm -f, no published port", "s", res["rm-0"])
record(6, "rm -f, %d published ports" % PORTS, "s", res["rm-%d" % PORTS])
for k in STEPS:
    record_series(6, "run -d vs published ports", "s", k, res["run-%d" % k])
    record_series(6, "rm -f vs published ports", "s", k, res["rm-%d" % k])
