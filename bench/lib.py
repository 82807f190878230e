"""Shared harness for tether's side-by-side benchmarks (stdlib only).

Engines are picked from the BENCH_ENGINES environment variable (set by run.sh), e.g.
"tether,docker,podman". Each figure script measures one operation per engine in the order
A B C A B C ... (alternating), and appends its rows to the JSON-lines file named by
BENCH_RESULTS.
"""
import json, math, os, shlex, statistics, subprocess, sys, tempfile, time

TETHER_BIN = os.environ.get("TETHER_BIN", "tether")
TETHER_SOCK = os.environ.get("TETHER_SOCK", "/run/tether/tether.sock")
ITER = int(os.environ.get("BENCH_ITER", "10"))
RESULTS = os.environ.get("BENCH_RESULTS", "/tmp/bench-results.jsonl")
IMAGE = "tbox:latest"

# Distinct subnets per engine, so networks of the three engines never overlap on the host.
SUBNET_BASE = {"tether": 201, "docker": 202, "podman": 203}


def engines():
    return [e for e in os.environ.get("BENCH_ENGINES", "tether").split(",") if e]


# Per-engine command prefixes a figure may set (see figure 2's Podman wrapper).
CLI_WRAP = {}


def cli(engine):
    if engine == "tether":
        return CLI_WRAP.get(engine, []) + [TETHER_BIN, "-H", "unix://" + TETHER_SOCK]
    if engine == "podman":  # BENCH_PODMAN_ARGS: global flags, e.g. --root DIR --runroot DIR
        return CLI_WRAP.get(engine, []) + [engine] + \
            shlex.split(os.environ.get("BENCH_PODMAN_ARGS", ""))
    return CLI_WRAP.get(engine, []) + [engine]


def subnet(engine, n, prefix=24):
    """A /24 (or, with prefix < 24, a larger block: /20 = 16 /24s, starting at the
    n-th such block) of the engine's own 10.X.0.0/16 range."""
    if prefix >= 24:
        return "10.%d.%d.0/24" % (SUBNET_BASE[engine], n % 250)
    size = 1 << (24 - prefix)
    return "10.%d.%d.0/%d" % (SUBNET_BASE[engine], (n * size) % 256, prefix)


def sh(engine, *args, check=True, quiet=True, timeout=300):
    cmd = cli(engine) + [str(a) for a in args]
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=timeout)
    if check and p.returncode != 0:
        raise RuntimeError("%s failed (%d): %s" % (" ".join(cmd[:8]), p.returncode,
                                                     p.stderr.strip()[-500:]))
    return p.stdout.strip()


def timed(engine, *args, check=True):
    t0 = time.perf_counter()
    sh(engine, *args, check=check)
    return time.perf_counter() - t0


def rm_args(engine):
    """`rm -f`; podman's `rm -f` first stops with the 10 s grace period (the busybox
    `sleep` as PID 1 ignores SIGTERM), docker's and tether's kill at once: give podman
    `-t 0` to match, and `-i` so that one missing name does not abort the rest."""
    return ["rm", "-f", "-t", "0", "-i"] if engine == "podman" else ["rm", "-f"]


def try_rm(engine, kind, *names):
    """Best-effort removal (containers: kind='rm', networks: kind='network')."""
    if not names:
        return
    if kind == "rm":
        sh(engine, *rm_args(engine), *names, check=False, timeout=900)
    else:
        sh(engine, "network", "rm", *names, check=False)


def inspect(engine, name, fmt):
    return sh(engine, "inspect", "-f", fmt, name)


def container_pid(engine, name):
    return int(inspect(engine, name, "{{.State.Pid}}"))


def container_ip(engine, name):
    """IPv4 address of a container attached to one network."""
    return inspect(engine, name,
                   "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}").split()[0]


def in_netns(pid, argv):
    """argv run in the network namespace of process pid (host binaries, host mounts)."""
    return ["nsenter", "--net=/proc/%d/ns/net" % pid] + [str(a) for a in argv]


def summarize(samples):
    return {"n": len(samples), "median": statistics.median(samples),
            "min": min(samples), "max": max(samples)}


def percentile(values, q):
    """q-th percentile (0..100) of values, nearest rank."""
    v = sorted(values)
    return v[min(len(v), max(1, math.ceil(q / 100.0 * len(v)))) - 1]


def record(figure, label, unit, per_engine):
    """per_engine: {engine: [samples]} -> one JSON line per engine, printed too."""
    with open(RESULTS, "a") as f:
        for eng, samples in per_engine.items():
            if not samples:
                continue
            row = {"figure": figure, "label": label, "unit": unit, "engine": eng}
            row.update(summarize(samples))
            f.write(json.dumps(row) + "\n")
            print("%-6s %-45s %-8s median %.4f min %.4f max %.4f (n=%d)" % (
                eng, label, unit, row["median"], row["min"], row["max"], row["n"]),
                flush=True)


def record_series(figure, series, unit, x, per_engine):
    """One point of a plotted series (x = scale, e.g. containers running or ports): one
    JSON line per engine with the summary of its samples at x. report.py draws these,
    they do not go into the table."""
    with open(RESULTS, "a") as f:
        for eng, samples in per_engine.items():
            if samples:
                row = {"figure": figure, "series": series, "unit": unit, "engine": eng,
                       "x": x}
                row.update(summarize(samples))
                f.write(json.dumps(row) + "\n")


def alternate(n, fn, labels):
    """Call fn(engine, i) -> {label: value} for i in range(n), engines alternating.
    Returns {label: {engine: [values]}}."""
    out = {l: {e: [] for e in engines()} for l in labels}
    for i in range(n):
        for e in engines():
            try:
                vals = fn(e, i)
            except Exception as ex:  # keep going; a failed sample is reported, not fatal
                print("  %s iteration %d failed: %s" % (e, i, ex), file=sys.stderr, flush=True)
                continue
            for l, v in vals.items():
                out[l][e].append(v)
    return out


def pss_kib(pid):
    """PSS of one process in KiB from /proc/PID/smaps_rollup (0 if it is gone)."""
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def pids_by_comm(names, cmdline_contains=None):
    """PIDs whose /proc/PID/comm is in names (and, optionally, whose cmdline contains a
    string)."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/comm" % d) as f:
                comm = f.read().strip()
            if comm not in names:
                continue
            if cmdline_contains:
                with open("/proc/%s/cmdline" % d, "rb") as f:
                    if cmdline_contains.encode() not in f.read():
                        continue
            out.append(int(d))
        except OSError:
            continue
    return out


def cpu_seconds(pid):
    """utime + stime (all threads) of process pid, in seconds, from /proc/PID/stat."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # fields[0] is field 3 (state): utime and stime are fields 14 and 15
    return (int(fields[11]) + int(fields[12])) / float(os.sysconf("SC_CLK_TCK"))


def daemon_pid(engine):
    p = os.environ.get("BENCH_%s_PID" % engine.upper())
    return int(p) if p else None


def tether_monitors():
    """PIDs of the bench tether daemon's container monitor (one process for all its
    containers; comm is the executable's name, e.g. `bench-tether` for
    TETHER_BIN=/tmp/bench-tether; the daemon's exec-root in the command line tells it from
    any other tether daemon's)."""
    comm = os.path.basename(TETHER_BIN)[:15]
    root = os.environ.get("BENCH_TETHER_EXEC_ROOT", "")
    d = daemon_pid("tether")
    return [p for p in pids_by_comm([comm], cmdline_contains=root + "/monitor.sock")
            if p != d]


def reset_peak(pid):
    """Resets the peak RSS (VmHWM) of process pid to its current RSS."""
    with open("/proc/%d/clear_refs" % pid, "w") as f:
        f.write("5")


def peak_kib(pid):
    """Peak RSS (VmHWM) of process pid in KiB since its start or the last reset_peak."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def engine_daemons(e):
    """The engine's daemon processes: tether's daemon; dockerd and its containerd;
    none for podman."""
    if e == "tether":
        return [daemon_pid("tether")]
    if e == "docker":
        d = daemon_pid("docker")
        return [d] + [p for p in pids_by_comm(["containerd"]) if p != d]
    return []


def run_peak(cmd, timeout=None):
    """Runs cmd (argv) to completion under GNU time (`/usr/bin/time -f %M`). Returns
    (seconds, exit code, stdout + stderr, peak RSS in MiB of cmd and of the descendants
    it waited for). Not os.wait4 of a child forked by this script: such a child starts
    as a copy of the Python process, and the kernel keeps that copy's peak RSS in the
    child's ru_maxrss across exec (~10 MiB more on every engine's count); the copy of
    GNU time is ~1 MiB. The seconds include GNU time's fork and exec (~1 ms)."""
    fd, path = tempfile.mkstemp(prefix="bench-time.")
    os.close(fd)
    try:
        t0 = time.perf_counter()
        p = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", path] + [str(a) for a in cmd],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=timeout)
        dt = time.perf_counter() - t0
        with open(path) as f:
            words = f.read().split()  # "Command exited with non-zero status N" first, if so
        return dt, p.returncode, p.stdout, (int(words[-1]) if words else 0) / 1024.0
    finally:
        os.unlink(path)
