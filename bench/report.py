#!/usr/bin/env python3
"""results.jsonl -> markdown table (median / min / max per engine, ratio tether/peer)."""
import json, sys, datetime, platform, os
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
out = sys.argv[2]
order, data = [], {}
for r in rows:
    k = (r["figure"], r["label"], r["unit"])
    if k not in data:
        order.append(k); data[k] = {}
    data[k][r["engine"]] = r
engines = [e for e in ("tether", "docker", "podman") if any(e in d for d in data.values())]
peers = [e for e in engines if e != "tether"]
def fmt(v, unit):
    if unit == "s":
        return "%.0f ms" % (v * 1000) if v < 10 else "%.1f s" % v
    return "%.1f %s" % (v, unit)
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
head = os.environ.get("BENCH_PREAMBLE", "")
with open(out, "w") as f:
    f.write("# Benchmarks\n\n" + head + "\n\nMeasured %s on %s (%d CPUs, kernel %s); engines: %s; "
            "median, min and max over n alternating iterations, ratio = tether median / peer "
            "median (below 1: tether is faster / smaller).\n\n%s\n" % (
                datetime.date.today().isoformat(), platform.node() or "this machine",
                os.cpu_count(), platform.release(), ", ".join(engines), table))
print(table)
