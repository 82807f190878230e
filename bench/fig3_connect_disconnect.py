#!/usr/bin/env python3
"""Figure 3: `network connect` / `network disconnect` of a running container (CLI wall
time). The container runs on network bench3-a and is connected to / disconnected from
bench3-b."""
from lib import *

for e in engines():
    try_rm(e, "rm", "bench3-c")
    try_rm(e, "network", "bench3-a", "bench3-b")
    sh(e, "network", "create", "--subnet", subnet(e, 3), "bench3-a")
    sh(e, "network", "create", "--subnet", subnet(e, 4), "bench3-b")
    sh(e, "run", "-d", "--name", "bench3-c", "--network", "bench3-a", "--dns", "127.0.0.1",
       IMAGE, "sleep", "3600")

def one(e, i):
    c = timed(e, "network", "connect", "bench3-b", "bench3-c")
    d = timed(e, "network", "disconnect", "bench3-b", "bench3-c")
    return {"connect": c, "disconnect": d}

try:
    res = alternate(ITER, one, ["connect", "disconnect"])
    record(3, "network connect (running container)", "s", res["connect"])
    record(3, "network disconnect (running container)", "s", res["disconnect"])
finally:
    for e in engines():
        try_rm(e, "rm", "bench3-c")
        try_rm(e, "network", "bench3-a", "bench3-b")
