#!/usr/bin/env python3
"""Figure 12: N (BENCH_N12, default 50) `run -d` on one user-defined network, first one
after the other, then all at once (N client processes started together), then N
concurrent `rm -f`. For each: the wall time until the last command returned, and the
number of commands that failed (a failure is counted and shown, never retried). The
concurrent runs are also checked for duplicate IP addresses. Issue 12's target: the
concurrent runs take at most 0.5x the time of the sequential ones on these 2 cores;
issue 13 asks for the errors and times of both concurrent batches."""
import concurrent.futures
import subprocess

from lib import *

N = int(os.environ.get("BENCH_N12", "50"))
n_iter = int(os.environ.get("BENCH_ITER12", "3"))
errors = {"run": {}, "rm": {}, "dup": {}}


def at_once(argvs):
    """Starts every argv as its own process at once; returns (wall s, failures)."""
    t0 = time.perf_counter()
    procs = [subprocess.Popen(a, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
             for a in argvs]
    failed = 0
    for p in procs:
        _, err = p.communicate(timeout=600)
        if p.returncode != 0:
            failed += 1
            print("  failed: %s" % err.decode(errors="replace").strip()[:200],
                  file=sys.stderr, flush=True)
    return time.perf_counter() - t0, failed


def one(e, i):
    names = ["bench12-%d" % k for k in range(N)]
    try_rm(e, "rm", *names)
    try_rm(e, "network", "bench12")
    sh(e, "network", "create", "--subnet", subnet(e, 12, 24), "bench12")
    run = lambda nm: ["run", "-d", "--name", nm, "--network", "bench12",
                      "--dns", "127.0.0.1", IMAGE, "sleep", "3600"]
    t0 = time.perf_counter()
    for nm in names:
        sh(e, *run(nm))
    t_seq = time.perf_counter() - t0
    sh(e, *rm_args(e), *names, timeout=900)
    t_run, f_run = at_once([cli(e) + run(nm) for nm in names])
    ips = []
    for nm in names:
        try:
            ips.append(container_ip(e, nm))
        except Exception:  # a run that failed has no container: counted above
            pass
    dup = len(ips) - len(set(ips))
    t_rm, f_rm = at_once([cli(e) + rm_args(e) + [nm] for nm in names])
    try_rm(e, "rm", *names)
    try_rm(e, "network", "bench12")
    errors["run"].setdefault(e, []).append(f_run)
    errors["rm"].setdefault(e, []).append(f_rm)
    errors["dup"].setdefault(e, []).append(dup)
    return {"seq": t_seq, "run": t_run, "rm": t_rm, "ratio": t_run / t_seq}


res = alternate(n_iter, one, ["seq", "run", "rm", "ratio"])
record(12, "%d x run -d, one after the other, total" % N, "s", res["seq"])
record(12, "%d x run -d, all at once, until the last returned" % N, "s", res["run"])
record(12, "%d concurrent run -d / %d sequential, time" % (N, N), "x", res["ratio"])
record(12, "%d x rm -f, all at once, until the last returned" % N, "s", res["rm"])
record(12, "failed commands of the %d concurrent run -d" % N, "count", errors["run"])
record(12, "failed commands of the %d concurrent rm -f" % N, "count", errors["rm"])
record(12, "duplicate IP addresses among the %d concurrent runs" % N, "count", errors["dup"])
