#!/usr/bin/env python3
"""What a benchmark run leaves on the machine, so that it leaves it as it found it.

    hostcheck.py snapshot FILE        record the machine's networking state now
    hostcheck.py restore-peers FILE   remove what Docker and Podman left since FILE
    hostcheck.py compare FILE         list everything new since FILE; exit 1 if anything is

The state: entries of /run/netns, links of the caller's network namespace, nftables tables,
nsfs and overlay mounts, and the processes of the engines (tether's daemon and container monitor,
dockerd, containerd and its shims, docker-proxy, conmon, aardvark-dns).

`restore-peers` is for what the peers leave behind by design when the script stops the
dockerd it started or removes Podman's last container: docker0 and Docker's bridges,
the `ip`/`ip6` `nat` and `filter` tables their iptables rules live in, Podman's
`netns-*` files and bridges, and an idle aardvark-dns. It never touches tether's own
things (`tether0`, `tb-*`, table `inet tether`, tether processes): those are tether's
leaks, and `compare` reports them."""
import json, os, re, subprocess, sys

WATCHED = ("dockerd", "containerd", "containerd-shim", "containerd-shim-runc-v2",
           "docker-proxy", "conmon", "aardvark-dns")
PEER_LINK = re.compile(r"^(docker0|br-[0-9a-f]{12}|podman\d+|cni-podman\d+)$")
PEER_TABLES = {"table ip nat", "table ip filter", "table ip6 nat", "table ip6 filter"}


def run(*cmd):
    return subprocess.run(cmd, capture_output=True, text=True).stdout


def processes():
    out = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                argv = [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
        except OSError:
            continue
        if not argv:
            continue
        name = os.path.basename(argv[0])
        tether = name.endswith("tether") and len(argv) > 1 and argv[1] in ("daemon", "monitor")
        if name in WATCHED or tether:
            out.append("%s %s" % (pid, " ".join(argv[:2])[:80]))
    return sorted(out)


def mounts():
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            if right.split(" ")[0] in ("nsfs", "overlay"):
                out.append(left.split(" ")[4])
    return sorted(out)


def snapshot():
    links = [l.split(":")[1].strip().split("@")[0] for l in run("ip", "-o", "link").splitlines()
             if l.count(":") >= 2]
    return {
        "netns": sorted(os.listdir("/run/netns")) if os.path.isdir("/run/netns") else [],
        "links": sorted(links),
        "nft tables": sorted(l.strip() for l in run("nft", "list", "tables").splitlines()
                             if l.strip()),
        "mounts": mounts(),
        "processes": processes(),
    }


def new_since(before):
    now = snapshot()
    return {k: [x for x in now[k] if x not in set(before.get(k, []))] for k in now}


def restore_peers(before):
    new = new_since(before)
    for p in new["processes"]:
        pid, name = p.split(" ")[0], p.split(" ")[1]
        if os.path.basename(name) == "aardvark-dns":
            subprocess.run(["kill", pid])
    for n in new["netns"]:
        if n.startswith("netns-"):
            path = "/run/netns/" + n
            subprocess.run(["umount", path], capture_output=True)
            try:
                os.remove(path)
            except OSError as e:
                print("could not remove %s: %s" % (path, e), file=sys.stderr)
    for l in new["links"]:
        if PEER_LINK.match(l):
            subprocess.run(["ip", "link", "del", l])
    for t in new["nft tables"]:
        if t in PEER_TABLES:
            subprocess.run(["nft", "delete"] + t.split())


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("snapshot", "restore-peers", "compare"):
        print(__doc__, file=sys.stderr)
        return 2
    cmd, path = sys.argv[1:]
    if cmd == "snapshot":
        with open(path, "w") as f:
            json.dump(snapshot(), f)
        return 0
    with open(path) as f:
        before = json.load(f)
    if cmd == "restore-peers":
        restore_peers(before)
        return 0
    left = {k: v for k, v in new_since(before).items() if v}
    if not left:
        print("host check: the machine is as the run found it")
        return 0
    print("host check: LEFT BEHIND since the run started:", file=sys.stderr)
    for k, v in left.items():
        print("  %s: %s" % (k, "; ".join(v)), file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
