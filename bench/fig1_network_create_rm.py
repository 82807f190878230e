#!/usr/bin/env python3
"""Figure 1: latency of `network create` and `network rm` (CLI wall time, one bridge
network with an explicit /24 subnet per iteration)."""
from lib import *

def one(e, i):
    name = "bench1-%d" % i
    try_rm(e, "network", name)
    c = timed(e, "network", "create", "--subnet", subnet(e, 10 + i), name)
    r = timed(e, "network", "rm", name)
    return {"create": c, "rm": r}

res = alternate(ITER, one, ["create", "rm"])
record(1, "network create", "s", res["create"])
record(1, "network rm", "s", res["rm"])
