#!/usr/bin/env python3
"""bench/report.py RESULTS — turn bench/run.sh's raw/ into results.md,
results.tsv and PNG plots (through bench/plot.gp).

raw/jobs.tsv     cfg, job, status (ok|failed|not run|entries), fio JSON path
                 or why (or, for listings, the entry count), CPU seconds of
                 the daemon (or, for listings, wall seconds)
raw/configs.tsv  cfg, status (run|not run), options or why
raw/extra.tsv    key, value (or "not run"), unit, note
raw/machine.txt  one line describing the machine and the run
"""
import json
import os
import subprocess
import sys

CONFIGS = ["native", "passthrough_ll", "hmmfs", "hmmfs-device", "hmmfs-ksm"]
DAEMONS = ["passthrough_ll", "hmmfs", "hmmfs-device", "hmmfs-ksm"]
META = [("create", "create"), ("stat", "stat"), ("unlink", "unlink")]
LISTS = ["list-cold", "list-warm"]


def read_tsv(path):
    with open(path) as f:
        return [line.rstrip("\n").split("\t") for line in f if line.strip()]


def fio_job(path, section=None):
    with open(path) as f:
        d = json.load(f)
    for j in d["jobs"]:
        if section is None or j["jobname"] == section:
            return j
    raise KeyError(section)


def fmt(v):
    if isinstance(v, str):
        return v
    if v >= 100:
        return "%.0f" % v
    if v >= 10:
        return "%.1f" % v
    return "%.2f" % v


def ratio(a, b):
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and b > 0:
        return "%.2fx" % (a / b)
    return "—"


def main():
    res = sys.argv[1]
    raw = os.path.join(res, "raw")
    configs = {r[0]: r[1:] for r in read_tsv(os.path.join(raw, "configs.tsv"))}
    ran = [c for c in CONFIGS if configs.get(c, ["not run"])[0] == "run"]
    extra = read_tsv(os.path.join(raw, "extra.tsv"))
    with open(os.path.join(raw, "machine.txt")) as f:
        machine = f.read().strip()

    # value[job][cfg]: a number, or a string saying why there is none.
    value, unit, order = {}, {}, []
    cpu = {c: 0.0 for c in CONFIGS}
    moved = {c: 0 for c in CONFIGS}

    def put(job, cfg, v, u):
        if job not in value:
            value[job] = {}
            order.append(job)
        value[job][cfg] = v
        unit.setdefault(job, u)

    for r in read_tsv(os.path.join(raw, "jobs.tsv")):
        r += [""] * (5 - len(r))
        cfg, job, status, what, cs = r[:5]
        if status == "entries":
            n, secs = int(what), float(cs)
            put(job, cfg, n / secs if secs > 0 else "—", "entries/s")
            continue
        if status != "ok":
            why = "%s: %s" % (status, what) if what else status
            for label in ([m for _, m in META] if job == "meta" else [job]):
                put(label, cfg, why, "ops/s" if job == "meta" else
                    ("MiB/s" if "-1m-" in job else "IOPS"))
            continue
        path = os.path.join(res, what)
        if job == "meta":
            for name, label in META:
                j = fio_job(path, name)
                put(label, cfg, j["read"]["iops"] + j["write"]["iops"], "ops/s")
            continue
        j = fio_job(path)
        rb, wb = j["read"], j["write"]
        if "-1m-" in job:
            put(job, cfg, (rb["bw_bytes"] + wb["bw_bytes"]) / 2**20, "MiB/s")
        else:
            put(job, cfg, rb["iops"] + wb["iops"], "IOPS")
        cpu[cfg] += float(cs or 0)
        moved[cfg] += rb["io_bytes"] + wb["io_bytes"]

    fio_jobs = [j for j in order if unit[j] in ("MiB/s", "IOPS")]
    meta_jobs = [j for j in order if unit[j] in ("ops/s", "entries/s")]
    out = []
    w = out.append
    w("# hmmfs benchmark results")
    w("")
    w(machine)
    w("")
    w("Job names: PATTERN-BS-MODE-jNUMJOBS-CACHE-WORKINGSET; MODE buffered or "
      "direct (O_DIRECT); CACHE cold (drop_caches, and a remount for the FUSE "
      "daemons) or warm (the working set read once through the mount "
      "beforehand); WORKINGSET small (host_cache/2) or large (2x host_cache). "
      "1 MiB jobs in MiB/s, 4 KiB jobs in IOPS (reads and writes together). "
      "A dash: the job is not in that configuration's list "
      "(hmmfs-device and hmmfs-ksm run the warm small-set jobs).")
    w("")
    w("## Configurations")
    w("")
    w("| configuration | status | options |")
    w("|---|---|---|")
    for c in CONFIGS:
        st = configs.get(c, ["not run", "not reached"])
        if st[0] == "run":
            w("| %s | run | %s |" % (c, st[1]))
        else:
            w("| %s | **not run** | %s |" % (c, st[1]))
    w("")

    def table(title, jobs):
        notes = []
        w("## " + title)
        w("")
        w("| job | unit | " + " | ".join(ran) + " | hmmfs/native | hmmfs/passthrough_ll |")
        w("|---|---|" + "---:|" * (len(ran) + 2))
        for j in jobs:
            v = value[j]
            cells = []
            for c in ran:
                x = v.get(c, "—")
                if isinstance(x, str) and x != "—":
                    notes.append("%s, %s: %s" % (c, j, x))
                    x = "%s [%d]" % (x.split(":")[0], len(notes))
                cells.append(fmt(x))
            w("| %s | %s | %s | %s | %s |" % (
                j, unit[j], " | ".join(cells),
                ratio(v.get("hmmfs"), v.get("native")),
                ratio(v.get("hmmfs"), v.get("passthrough_ll"))))
        w("")
        for i, n in enumerate(notes, 1):
            w("[%d] %s  " % (i, n))
        if notes:
            w("")

    table("fio", fio_jobs)
    w("Metadata: fio's filecreate, filestat and filedelete engines over many "
      "empty files in one directory (bench/meta.fio); list: os.scandir of a "
      "directory of many entries, cold (after drop_caches and a remount) and "
      "warm (right after).")
    w("")
    table("metadata", meta_jobs)

    w("## Daemons")
    w("")
    d_ran = [c for c in ran if c in DAEMONS]
    ex = {r[0]: r[1:] for r in extra}
    w("| measurement | " + " | ".join(d_ran) + " | hmmfs/passthrough_ll |")
    w("|---|" + "---:|" * (len(d_ran) + 1))
    rss = {}
    for c in d_ran:
        e = ex.get("peak_rss_" + c)
        rss[c] = float(e[0]) if e else "—"
    w("| peak RSS, MiB (VmHWM) | " + " | ".join(fmt(rss[c]) for c in d_ran) +
      " | %s |" % ratio(rss.get("hmmfs"), rss.get("passthrough_ll")))
    # hostsim's simulated device memory lives in the daemon: without it
    nodev = {}
    for c in d_ran:
        e = ex.get("peak_rss_less_device_" + c)
        nodev[c] = float(e[0]) if e and e[0] != "not run" else "—"
    if any(v != "—" for v in nodev.values()):
        w("| peak RSS less hostsim device memory, MiB | " +
          " | ".join(fmt(nodev[c]) for c in d_ran) + " | |")
    per = {}
    for c in d_ran:
        per[c] = cpu[c] / (moved[c] / 2**30) if moved[c] else "—"
    w("| CPU s per GiB moved (utime+stime, fio jobs) | " +
      " | ".join(fmt(per[c]) for c in d_ran) +
      " | %s |" % ratio(per.get("hmmfs"), per.get("passthrough_ll")))
    w("")

    w("## Device tier and dedupe")
    w("")
    w("| measurement | value | unit | how |")
    w("|---|---:|---|---|")
    for key, label in [("migrate_to_device", "migration to device"),
                       ("migrate_to_host", "migration to host"),
                       ("seqread_host_tier", "seqread 1 MiB direct, host tier"),
                       ("seqread_bounce", "seqread 1 MiB direct, bounce reads"),
                       ("bounce_vs_host", "bounce / host-tier read"),
                       ("ksm_scan_rate", "dedupe scan rate"),
                       ("ksm_saved", "dedupe memory saved"),
                       ("wall_time", "wall time of this run")]:
        e = ex.get(key)
        if not e:
            w("| %s | not run | | not reached |" % label)
        elif e[0] == "not run":
            w("| %s | **not run** | | %s |" % (label, e[2]))
        else:
            w("| %s | %s | %s | %s |" % (label, e[0], e[1], e[2]))
    w("")
    amp = sorted(r for r in extra if r[0].startswith("write_amp_"))
    if amp:
        w("## Write amplification")
        w("")
        w("writeback_bytes / written_bytes of each hmmfs write job, after "
          "sync(1) and hmmfsctl sync (target: at most 1.1).")
        w("")
        w("| configuration and job | ratio | bytes in |")
        w("|---|---:|---|")
        for r in amp:
            w("| %s | %s | %s |" % (r[0][len("write_amp_"):], r[1],
                                    r[3].rsplit("; ", 1)[-1]))
        w("")
    w("Plots: seq-1m.png, rand-4k.png, ratio.png, meta.png.")
    with open(os.path.join(res, "results.md"), "w") as f:
        f.write("\n".join(out) + "\n")

    with open(os.path.join(res, "results.tsv"), "w") as f:
        f.write("job\tunit\t" + "\t".join(ran) + "\n")
        for j in fio_jobs + meta_jobs:
            f.write("%s\t%s\t%s\n" % (j, unit[j], "\t".join(
                fmt(value[j][c]) if isinstance(value[j].get(c), float) else
                ("%d" % value[j][c] if isinstance(value[j].get(c), int) else "-")
                for c in ran)))

    # Plots.
    here = os.path.dirname(os.path.abspath(__file__))

    def num(v):
        return "%.3f" % v if isinstance(v, (int, float)) else "-"

    def plot(name, jobs, cols, rows, ylab, title, logy=0, ref=0):
        # Leave out the columns with no value at all.
        keep = [i for i in range(len(cols))
                if any(isinstance(rows(j)[i], (int, float)) for j in jobs)]
        if not jobs or not keep:
            return
        cols = [cols[i] for i in keep]
        full = rows
        rows = lambda j: [full(j)[i] for i in keep]  # noqa: E731
        dat = os.path.join(res, name + ".dat")
        with open(dat, "w") as f:
            f.write("job " + " ".join('"%s"' % c for c in cols) + "\n")
            for j in jobs:
                f.write("%s %s\n" % (j, " ".join(num(v) for v in rows(j))))
        width = min(4000, max(800, 160 + len(jobs) * (len(cols) * 10 + 14)))
        gp = ("dat='%s'; out='%s'; ylab='%s'; ttl='%s'; n=%d; w=%d; logy=%d; ref=%d"
              % (dat, os.path.join(res, name + ".png"), ylab, title,
                 len(cols) + 1, width, logy, ref))
        subprocess.run(["gnuplot", "-e", gp, os.path.join(here, "plot.gp")],
                       check=True)
        os.unlink(dat)

    seq = [j for j in fio_jobs if unit[j] == "MiB/s"]
    rnd = [j for j in fio_jobs if unit[j] == "IOPS"]
    plot("seq-1m", seq, ran, lambda j: [value[j].get(c) for c in ran],
         "MiB/s", "fio, 1 MiB sequential")
    plot("rand-4k", rnd, ran, lambda j: [value[j].get(c) for c in ran],
         "IOPS", "fio, 4 KiB random", logy=1)
    plot("meta", meta_jobs, ran, lambda j: [value[j].get(c) for c in ran],
         "operations or entries per second", "metadata", logy=1)

    def ratios(j):
        v = value[j]
        out = []
        for a, b in (("hmmfs", "native"), ("hmmfs", "passthrough_ll")):
            x, y = v.get(a), v.get(b)
            ok = isinstance(x, (int, float)) and isinstance(y, (int, float)) and y > 0
            out.append(x / y if ok else None)
        return out
    plot("ratio", fio_jobs + meta_jobs, ["hmmfs/native", "hmmfs/passthrough_ll"],
         ratios, "ratio", "hmmfs against native and passthrough_ll (1.0: even)",
         ref=1)


if __name__ == "__main__":
    main()
