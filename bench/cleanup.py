#!/usr/bin/env python3
"""Remove every container and network named bench* in one engine (best effort)."""
import sys
from lib import sh, cli, rm_args
e = sys.argv[1]
names = [n for n in sh(e, "ps", "-a", "--format", "{{.Names}}", check=False).split()
         if n.startswith("bench")]
if names:
    sh(e, *rm_args(e), *names, check=False, timeout=900)
nets = [n for n in sh(e, "network", "ls", "--format", "{{.Name}}", check=False).split()
        if n.startswith("bench")]
if nets:
    sh(e, "network", "rm", *nets, check=False)
print("%s: removed %d containers, %d networks" % (e, len(names), len(nets)))
