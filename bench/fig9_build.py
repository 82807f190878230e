#!/usr/bin/env python3
"""Figure 9: image build from an 8-step Dockerfile, cold and unchanged rebuild.

The context (made once, deterministically, in a temp dir): `data/` with BENCH_BUILD_FILES
files (default 2000, in directories of 100) totalling BENCH_BUILD_MB MiB (default 50) of
pseudo-random bytes (seeded; sizes 0.25-1.75x the mean; fixed mtimes), and a Dockerfile:

    FROM tbox:latest
    WORKDIR /app
    ENV BENCH_FIG=9
    COPY data/ /app/data/
    RUN find data -type f | wc -l > files.txt          (a walk over the copied tree)
    RUN cat data/d00/* | md5sum > d00.md5               (reads up to 100 files)
    RUN mkdir bin && printf '...' > bin/count && chmod 755 bin/count
    CMD ["/app/bin/count"]

Per iteration and engine (engines alternating), each engine's own CLI:
  - cold build: `build --no-cache --force-rm -t bench9:latest CTX`, after `rmi -f` of
    bench9:latest and of every image made since the figure started (the last build's
    intermediate images) off the clock, so that neither a cache entry nor a layer of an
    earlier build is left to reuse (tether would otherwise share an identical layer); the
    base image and the machine's page cache stay warm, for every engine alike.
    Docker: `DOCKER_BUILDKIT=0 docker build` (the classic builder, as the issue asks);
  - cached rebuild: the same command without `--no-cache`, right after, nothing
    changed: every step must say "Using cache" (else the sample fails).
The clock is the CLI command's wall time (context upload included: tether's and
docker's CLIs tar the directory and send it to the daemon, podman reads it in place).

Memory (per build, cold and cached), exact peaks rather than sampling:
  - daemon(s): the peak RSS (VmHWM of /proc/PID/status, reset to the current RSS by
    writing 5 to /proc/PID/clear_refs just before the build) of the tether daemon, or of
    dockerd + containerd (the sum of their peaks); none for podman (daemonless);
  - + CLI: that plus the peak RSS of the build command the script ran (ru_maxrss, the
    largest of the process and the descendants it waited for, from GNU time: see
    lib.run_peak). For podman this is the whole engine: `podman build` and the
    runc/child processes it reaps.
The RUN containers' monitors (tether's container monitor, containerd-shim) are not counted.
After the first cold build of each engine, `run --rm bench9:latest` must print the
file count (off the clock). The images are removed at the end.
"""
from lib import *
import random, shutil, tempfile

n_iter = int(os.environ.get("BENCH_ITER9", str(max(3, ITER // 2))))
MB = float(os.environ.get("BENCH_BUILD_MB", "50"))
FILES = int(os.environ.get("BENCH_BUILD_FILES", "2000"))
TAG = "bench9:latest"
os.environ["DOCKER_BUILDKIT"] = "0"  # docker's classic builder (docker CLI only)

DOCKERFILE = """FROM %s
WORKDIR /app
ENV BENCH_FIG=9
COPY data/ /app/data/
RUN find data -type f | wc -l > files.txt
RUN cat data/d00/* | md5sum > d00.md5
RUN mkdir bin && printf '#!/bin/sh\\ncat /app/files.txt\\n' > bin/count && chmod 755 bin/count
CMD ["/app/bin/count"]
""" % IMAGE
CACHED_STEPS = 7  # every step after FROM


def make_context(root):
    """data/dNN/fNNNN.bin: FILES files, MB MiB in total, deterministic content."""
    rnd = random.Random(9)
    total = int(MB * (1 << 20))
    weights = [rnd.uniform(0.25, 1.75) for _ in range(FILES)]
    s = sum(weights)
    sizes = [int(total * w / s) for w in weights]
    sizes[-1] += total - sum(sizes)
    for i, size in enumerate(sizes):
        d = os.path.join(root, "data", "d%02d" % (i // 100))
        os.makedirs(d, exist_ok=True)
        p = os.path.join(d, "f%04d.bin" % i)
        with open(p, "wb") as f:
            f.write(rnd.randbytes(size))
        os.utime(p, (1700000000, 1700000000))
    with open(os.path.join(root, "Dockerfile"), "w") as f:
        f.write(DOCKERFILE)
    return total


def run_build(e, ctx, cold):
    """One build; returns (seconds, daemon peak MiB, CLI peak MiB, output)."""
    args = ["build", "--force-rm", "-t", TAG] + (["--no-cache"] if cold else []) + [ctx]
    ds = [p for p in engine_daemons(e) if p]
    for p in ds:
        reset_peak(p)
    dt, rc, out, cli_mib = run_peak(cli(e) + args)
    if rc != 0:
        raise RuntimeError("%s build failed (%d): %s" % (e, rc, out[-800:]))
    daemon = sum(peak_kib(d) for d in ds) / 1024.0
    return dt, daemon, cli_mib, out


BASELINE = {}  # engine -> image IDs present before the figure (tbox:latest, ...)


def image_ids(e):
    return sh(e, "images", "-a", "-q", "--no-trunc").split()


def drop_image(e):
    """Removes bench9:latest and every image made since the figure started (the build's
    intermediate images: `rmi` of the tag prunes them in docker and podman, not in
    tether), newest first; fails if any is left, as the next cold build would not be."""
    sh(e, "rmi", "-f", TAG, check=False)
    for _ in range(3):
        extra = [i for i in image_ids(e) if i not in BASELINE[e]]
        if not extra:
            return
        for i in extra:  # listed newest first: children before their parents
            sh(e, "rmi", "-f", i, check=False)
    raise RuntimeError("%s: images left after removing the build's: %s" % (e, extra))


for e in engines():
    BASELINE[e] = set(image_ids(e))
ctx = tempfile.mkdtemp(prefix="bench9-ctx.")
verified = set()
try:
    t0 = time.perf_counter()
    total = make_context(ctx)
    print("context: %d files, %.1f MiB in %s (%.1f s to make)" % (
        FILES, total / 1048576.0, ctx, time.perf_counter() - t0), flush=True)

    def one(e, i):
        drop_image(e)
        cold, cold_d, cold_c, out = run_build(e, ctx, True)
        if "Using cache" in out:
            raise RuntimeError("%s: the cold build used the cache:\n%s" % (e, out[-800:]))
        if e not in verified:
            got = sh(e, "run", "--rm", TAG).strip()
            if got != str(FILES):
                raise RuntimeError("%s: the built image prints %r, not %d" % (e, got, FILES))
            verified.add(e)
        warm, warm_d, warm_c, out = run_build(e, ctx, False)
        hits = out.count("Using cache")
        if hits < CACHED_STEPS:
            raise RuntimeError("%s: the rebuild hit the cache in %d of %d steps:\n%s" % (
                e, hits, CACHED_STEPS, out[-1500:]))
        vals = {"cold": cold, "warm": warm, "cold_c": cold_d + cold_c, "warm_c": warm_d + warm_c}
        if engine_daemons(e):
            vals.update({"cold_d": cold_d, "warm_d": warm_d})
        return vals

    labels = ["cold", "warm", "cold_d", "warm_d", "cold_c", "warm_c"]
    res = alternate(n_iter, one, labels)
    what = "8-step build, COPY %g MiB in %d files, 3 RUN" % (MB, FILES)
    record(9, what + ": cold (--no-cache)", "s", res["cold"])
    record(9, what + ": unchanged rebuild (cache)", "s", res["warm"])
    record(9, "build peak RSS, daemon(s), cold", "MiB", res["cold_d"])
    record(9, "build peak RSS, daemon(s), rebuild", "MiB", res["warm_d"])
    record(9, "build peak RSS, daemon(s) + CLI, cold", "MiB", res["cold_c"])
    record(9, "build peak RSS, daemon(s) + CLI, rebuild", "MiB", res["warm_c"])
finally:
    for e in engines():
        try:
            drop_image(e)
        except Exception as ex:
            print("  %s: %s" % (e, ex), file=sys.stderr, flush=True)
    shutil.rmtree(ctx, ignore_errors=True)
