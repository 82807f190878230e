#!/usr/bin/env python3
"""Figure 10: cold pull of a 5-layer ~150 MiB image from a loopback registry.

The registry is Debian's Docker Distribution (`/usr/bin/docker-registry serve CONFIG`,
package docker-registry), started by this script on 127.0.0.1:<a free port> with
filesystem storage in a temp dir (no systemd service), and stopped, its storage removed,
at the end. The image is made once per run by tether itself: `tether build` of

    FROM scratch
    COPY l1/ /l1/
    ...
    COPY l5/ /l5/

from a context whose lN/ directories hold BENCH_PULL_MB / BENCH_PULL_LAYERS MiB each
(default 150 / 5 = 30 MiB) in BENCH_PULL_FILES files (default 30) of seeded pseudo-random
(incompressible) bytes; tagged 127.0.0.1:PORT/bench10:latest and `tether push`ed (tether
gzips each layer for the push), then removed from tether. So the registry holds five
gzip layers of ~30 MiB and every one of them is fetched by a cold pull.

Per iteration and engine (engines alternating), each engine's own CLI:
  - off the clock: `rmi -f` of the image (its layers go with it: no other image uses
    them), a check that the engine lists no image of that name, then `sync` (the last
    pull's dirty pages written back, for every engine alike);
  - on the clock: `pull 127.0.0.1:PORT/bench10:latest` (podman: `--tls-verify=false`,
    as it speaks HTTPS to every registry not configured insecure; docker and tether use
    plain HTTP for loopback registries by default). An output that says a layer
    "already exists" fails the sample (the pull was not cold);
  - off the clock: the pulled image's ID must be the pushed config's digest.
The clock is the CLI command's wall time. The registry's files stay in the page cache
(they were just written by the push), so the network side is as fast as loopback and
the registry make it, for every engine alike.

Memory (per pull), exact peaks as in figure 9: the daemon's peak RSS (VmHWM after
writing 5 to /proc/PID/clear_refs right before the pull): the tether daemon, or dockerd +
containerd (the sum of their peaks); none for podman (daemonless). "+ CLI" adds the pull
command's own peak RSS (ru_maxrss, from GNU time: see lib.run_peak); for podman that
is the whole engine.
"""
from lib import *
import random, re, shutil, socket, tempfile, urllib.request

n_iter = int(os.environ.get("BENCH_ITER10", str(max(3, ITER // 2))))
MB = float(os.environ.get("BENCH_PULL_MB", "150"))
LAYERS = int(os.environ.get("BENCH_PULL_LAYERS", "5"))
FILES = int(os.environ.get("BENCH_PULL_FILES", "30"))
REGISTRY_BIN = os.environ.get("BENCH_REGISTRY_BIN", "/usr/bin/docker-registry")
REPO = "bench10"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start_registry(root):
    """docker-registry serve on 127.0.0.1:<free port>, storage in root/storage.
    Returns (Popen, port)."""
    port = free_port()
    cfg = os.path.join(root, "config.yml")
    with open(cfg, "w") as f:
        f.write("version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\n"
                "storage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n    enabled: true\n"
                "http:\n  addr: 127.0.0.1:%d\n" % (os.path.join(root, "storage"), port))
    log = open(os.path.join(root, "registry.log"), "w")
    p = subprocess.Popen([REGISTRY_BIN, "serve", cfg], stdout=log, stderr=subprocess.STDOUT,
                         stdin=subprocess.DEVNULL)
    log.close()
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    for _ in range(100):
        if p.poll() is not None:
            break
        try:
            with opener.open("http://127.0.0.1:%d/v2/" % port, timeout=1) as r:
                if r.status == 200:
                    return p, port
        except OSError:
            time.sleep(0.1)
    stop_registry(p)
    with open(os.path.join(root, "registry.log")) as f:
        raise RuntimeError("docker-registry did not answer on 127.0.0.1:%d: %s" % (
            port, f.read()[-800:]))


def stop_registry(p):
    if p and p.poll() is None:
        p.terminate()
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def make_context(root):
    """lN/fNN.bin: LAYERS directories of FILES files, MB MiB in all, deterministic
    incompressible content; a Dockerfile with one COPY per directory."""
    rnd = random.Random(10)
    per_layer = int(MB * (1 << 20)) // LAYERS
    lines = ["FROM scratch"]
    for l in range(1, LAYERS + 1):
        d = os.path.join(root, "l%d" % l)
        os.makedirs(d)
        sizes = [per_layer // FILES] * FILES
        sizes[-1] += per_layer - sum(sizes)
        for i, size in enumerate(sizes):
            p = os.path.join(d, "f%02d.bin" % i)
            with open(p, "wb") as f:
                f.write(rnd.randbytes(size))
            os.utime(p, (1700000000, 1700000000))
        lines.append("COPY l%d/ /l%d/" % (l, l))
    with open(os.path.join(root, "Dockerfile"), "w") as f:
        f.write("\n".join(lines) + "\n")
    return per_layer * LAYERS


def image_ids(e):
    return sh(e, "images", "-a", "-q", "--no-trunc").split()


def bare(i):
    return i.strip().split(":", 1)[-1]


def drop_image(e, ref, baseline):
    """rmi -f of ref, then of any other image made since baseline (a build's
    intermediates); fails if one is left."""
    sh(e, "rmi", "-f", ref, check=False)
    for _ in range(3):
        extra = [i for i in image_ids(e) if i not in baseline]
        if not extra:
            return
        for i in extra:
            sh(e, "rmi", "-f", i, check=False)
    raise RuntimeError("%s: images left after removing %s: %s" % (e, ref, extra))


def pull_args(e, ref):
    return ["pull", "--tls-verify=false", ref] if e == "podman" else ["pull", ref]


def run_pull(e, ref):
    """One pull; returns (seconds, daemon peak MiB, CLI peak MiB, output)."""
    ds = [p for p in engine_daemons(e) if p]
    for p in ds:
        reset_peak(p)
    dt, rc, out, cli_mib = run_peak(cli(e) + pull_args(e, ref), timeout=900)
    if rc != 0:
        raise RuntimeError("%s pull failed (%d): %s" % (e, rc, out[-800:]))
    daemon = sum(peak_kib(d) for d in ds) / 1024.0
    return dt, daemon, cli_mib, out


BASELINE = {e: set(image_ids(e)) for e in engines()}
work = tempfile.mkdtemp(prefix="bench10.")
reg = None
ref = None
try:
    reg, port = start_registry(work)
    ref = "127.0.0.1:%d/%s:latest" % (port, REPO)
    for e in engines():
        drop_image(e, ref, BASELINE[e])
    ctx = os.path.join(work, "ctx")
    os.makedirs(ctx)
    t0 = time.perf_counter()
    total = make_context(ctx)
    t1 = time.perf_counter()
    sh("tether", "build", "-t", ref, ctx, timeout=900)
    t2 = time.perf_counter()
    sh("tether", "push", ref, timeout=900)
    t3 = time.perf_counter()
    want_id = bare(sh("tether", "image", "inspect", "-f", "{{.Id}}", ref))
    drop_image("tether", ref, BASELINE["tether"])
    shutil.rmtree(ctx)
    print("image %s: %d layers, %.1f MiB in %d files each, id %s (context %.1f s, "
          "build %.1f s, push %.1f s)" % (ref, LAYERS, total / LAYERS / 1048576.0, FILES,
                                          want_id[:12], t1 - t0, t2 - t1, t3 - t2),
          flush=True)

    def one(e, i):
        drop_image(e, ref, BASELINE[e])
        os.sync()
        dt, d, c, out = run_pull(e, ref)
        if re.search(r"already exists", out, re.I):
            raise RuntimeError("%s: the pull was not cold:\n%s" % (e, out[-1500:]))
        got = bare(sh(e, "image", "inspect", "-f", "{{.Id}}", ref))
        if got != want_id:
            raise RuntimeError("%s: pulled image %s, pushed %s" % (e, got, want_id))
        vals = {"pull": dt, "pull_c": d + c}
        if engine_daemons(e):
            vals["pull_d"] = d
        return vals

    res = alternate(n_iter, one, ["pull", "pull_d", "pull_c"])
    what = "pull of a %d-layer %g MiB image from a loopback registry, cold" % (LAYERS, MB)
    record(10, what, "s", res["pull"])
    record(10, "pull peak RSS, daemon(s)", "MiB", res["pull_d"])
    record(10, "pull peak RSS, daemon(s) + CLI", "MiB", res["pull_c"])
finally:
    if ref:
        for e in engines():
            try:
                drop_image(e, ref, BASELINE[e])
            except Exception as ex:
                print("  %s: %s" % (e, ex), file=sys.stderr, flush=True)
    stop_registry(reg)
    shutil.rmtree(work, ignore_errors=True)
