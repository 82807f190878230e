#!/usr/bin/env python3
"""Remove every container, network and image named bench* in one engine (best effort)."""
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
# images of figures 9 and 10 (podman names them localhost/bench9:latest; figure 10's are
# 127.0.0.1:PORT/bench10:latest)
imgs = [n for n in sh(e, "images", "--format", "{{.Repository}}:{{.Tag}}", check=False).split()
        if n.rsplit("/", 1)[-1].startswith("bench")]
if imgs:
    sh(e, "rmi", "-f", *imgs, check=False)
    sh(e, "image", "prune", "-f", check=False)
print("%s: removed %d containers, %d networks, %d images" % (e, len(names), len(nets), len(imgs)))
