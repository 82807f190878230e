#!/usr/bin/env python3
"""results.jsonl -> markdown table (median / min / max per engine, ratio tether/peer), plus
one PNG per figure that has series rows (rows with "series" and "x", see
lib.record_series): OUT.md -> OUT-fig<N>.png beside it, drawn with matplotlib when it is
installed (skipped with a note otherwise)."""
import json, sys, datetime, platform, os
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
out = sys.argv[2]
series_rows = [r for r in rows if "series" in r]
rows = [r for r in rows if "series" not in r]
ENGINES = ("tether", "docker", "podman")
order, data = [], {}
for r in rows:
    k = (r["figure"], r["label"], r["unit"])
    if k not in data:
        order.append(k); data[k] = {}
    data[k][r["engine"]] = r
engines = [e for e in ENGINES if any(e in d for d in data.values()) or
           any(r["engine"] == e for r in series_rows)]
peers = [e for e in engines if e != "tether"]
def num(v):
    return "%.0f" % v if abs(v) >= 100 else "%.1f" % v if abs(v) >= 10 else \
        "%.2f" % v if abs(v) >= 1 else "%.3f" % v
def fmt(v, unit):
    if unit == "count":
        return "%d" % round(v) if v == round(v) else "%.1f" % v
    if unit == "s":
        return "%s ms" % num(v * 1000) if v < 10 else "%s s" % num(v)
    return "%s %s" % (num(v), unit)
hdr = ["fig", "measurement"] + ["%s median (min–max)" % e for e in engines] + \
      ["tether/%s" % p for p in peers]
lines = ["| " + " | ".join(hdr) + " |", "|" + "---|" * len(hdr)]
for k in sorted(order, key=lambda k: (k[0], order.index(k))):
    d = data[k]; cells = [str(k[0]), k[1]]
    for e in engines:
        r = d.get(e)
        cells.append("%s (%s–%s), n=%d" % (fmt(r["median"], k[2]), fmt(r["min"], k[2]),
                     fmt(r["max"], k[2]), r["n"]) if r else "—")
    for p in peers:
        t, q = d.get("tether"), d.get(p)
        cells.append("%.2f" % (t["median"] / q["median"]) if t and q and q["median"] else "—")
    lines.append("| " + " | ".join(cells) + " |")
table = "\n".join(lines)

# --- figures whose targets are against the better peer (lower is better in every row) --
BEST_OF = {9: "Figure 9 (build): tether against the better peer of each row",
           10: "Figure 10 (pull): tether against the better peer of each row"}
def best_peer():
    md = []
    for fig, title in sorted(BEST_OF.items()):
        ks = [k for k in order if k[0] == fig]
        out = []
        for k in ks:
            d, t = data[k], data[k].get("tether")
            q = [(d[p]["median"], p) for p in peers if p in d and d[p]["median"]]
            if not t or not q:
                continue
            m, p = min(q)
            out.append("| %s | %s | %s (%s) | %.2f |" % (k[1], fmt(t["median"], k[2]),
                                                     fmt(m, k[2]), p, t["median"] / m))
        if out:
            md += ["\n%s:\n" % title, "| measurement | tether | better peer | tether/better |",
                   "|---|---|---|---|"] + out
    return "\n".join(md) + ("\n" if md else "")

# --- plots: one PNG per figure, one panel per series, one line per engine --------------
TITLE = {6: "run -d and rm -f time vs number of published ports",
         7: "run -d time vs number of containers running on one network",
         8: "engine memory (PSS) vs number of containers running"}
NOTE = {6: " (log scale; the time the ports add is the rise over the 0-port point)"}
LOGY = {6}  # Docker's seconds next to tether's milliseconds
XLABEL = {6: "published ports (127.0.0.1:H:C)", 7: "containers running",
          8: "containers running"}
def plots():
    figs = sorted({r["figure"] for r in series_rows})
    if not figs:
        return ""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "\n(no plots: python3-matplotlib is not installed)\n"
    md = ["\n## Plots\n\nMedian over the iterations, shaded: min–max.\n"]
    for fig in figs:
        rs = [r for r in series_rows if r["figure"] == fig]
        names = []
        for r in rs:
            if (r["series"], r["unit"]) not in names:
                names.append((r["series"], r["unit"]))
        f, axes = plt.subplots(1, len(names), figsize=(5.5 * len(names), 4), squeeze=False)
        for ax, (s, unit) in zip(axes[0], names):
            # times in s rather than ms from 10 s on (the panel's, or the log figure's)
            big = max(r["max"] for r in rs if fig in LOGY or r["series"] == s) >= 10
            scale, yunit = (1000.0, "ms") if unit == "s" and not big else (1.0, unit)
            tops = []
            for i, e in enumerate(ENGINES):
                pts = sorted((r["x"], r["median"] * scale, r["min"] * scale,
                              r["max"] * scale) for r in rs
                             if r["series"] == s and r["engine"] == e)
                if not pts:
                    continue
                x, med, lo, hi = zip(*pts)
                ax.plot(x, med, "o-", color="C%d" % i, label=e)
                ax.fill_between(x, lo, hi, color="C%d" % i, alpha=0.2)
                tops += hi
            if fig in LOGY:
                ax.set_yscale("log")
            elif tops:
                ax.set_ylim(0, max(tops) * 1.1)
            ax.set_title(s, fontsize=10)
            ax.set_xlabel(XLABEL.get(fig, "x"))
            ax.set_ylabel(yunit)
            ax.grid(True, which="both", alpha=0.3)
            ax.legend()
        f.suptitle("Figure %d: %s" % (fig, TITLE.get(fig, "")))
        f.tight_layout()
        png = "%s-fig%d.png" % (os.path.splitext(out)[0], fig)
        f.savefig(png, dpi=90)
        plt.close(f)
        md.append("![Figure %d](%s)\n\nFigure %d: %s%s.\n" % (
            fig, os.path.basename(png), fig, TITLE.get(fig, ""), NOTE.get(fig, "")))
        print("wrote %s" % png)
    return "\n".join(md)

head = os.environ.get("BENCH_PREAMBLE", "")
with open(out, "w") as f:
    f.write("# Benchmarks\n\n" + head + "\n\nMeasured %s on %s (%d CPUs, kernel %s); engines: %s; "
            "median, min and max over n alternating iterations, ratio = tether median / peer "
            "median (below 1: tether is faster / smaller; in the q/s, Gbit/s and "
            "published / direct rows, above 1: tether is faster).\n\n%s\n%s%s" % (
                datetime.date.today().isoformat(), platform.node() or "this machine",
                os.cpu_count(), platform.release(), ", ".join(engines), table,
                best_peer(), plots()))
print(table)
