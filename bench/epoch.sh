#!/bin/bash
# bench/epoch.sh [-j THREADS] — a training-style "epoch": read a data set
# twice the host cache, drop the kernel's caches, read it all again.
#
# One data set of medium files (SET bytes, default 2 x HOST_CACHE; files
# of FILE_MIN to FILE_MAX, default 1 MiB to 7 MiB, sizes pseudo-random but
# the same every run: bench/filetree.c) is laid out natively in BACKING
# once.  Then, for each target in turn, side by side:
#
#   native          BACKING itself
#   passthrough_ll  libfuse's example, default options
#   hmmfs-device    -o host_cache=HOST_CACHE,device=hostsim,device_cache=DEVICE_CACHE
#                   (DEVICE_CACHE default SET: room for what the host tier
#                   cannot hold)
#   hmmfs-nodev     -o host_cache=HOST_CACHE,device=none
#
#   cold     sync; echo 3 > /proc/sys/vm/drop_caches (BACKING off the
#            kernel's page cache), then mount
#   pass 1   read every file (bytes checked).  hmmfs-device: when host
#            frames run out the coldest pages are demoted to the device
#            on their own (lru_demote, docs/ARCHITECTURE.md "Automatic
#            migration"); no hmmfsctl migrate is run
#   drop     sync; echo $DROP > /proc/sys/vm/drop_caches (default 3: the
#            kernel's inodes and page cache, BACKING's included, so a read
#            that misses hmmfs's tiers goes to the disk)
#   pass 2   read every file again, timed: the epoch
#
# Reported: each pass's wall time and MB/s, for the FUSE daemons their
# descriptors and VmRSS after each pass (hostsim's device memory is the
# daemon's own, so hmmfs-device's RSS includes the device copy), and for
# hmmfs its counters after pass 1, after the drop and after pass 2:
# backing_reads (pass 2's delta: 0 when the tiers served the epoch),
# host_pages, device_pages, migrations_to_device, bounce_reads, evictions,
# device_evictions, files_cached, files_detached.
#
# Environment:
#   HOST_CACHE   hmmfs host_cache (default 256M)
#   SET          bytes in the data set (default 2 x HOST_CACHE)
#   DEVICE_CACHE hmmfs-device's device_cache (default SET)
#   FILE_MIN, FILE_MAX   file sizes (default 1M, 7M)
#   DROP         what to write to drop_caches between the passes (default 3)
#   TARGETS      which targets, in order (default all four above)
#   HMMFS, HMMFSCTL  the binaries (default build/hmmfs, build/hmmfsctl)
#   BENCH_DIR    where BACKING and the mount go (default /var/tmp; not tmpfs)
#   RESULTS      output directory (default bench/results/DATE-epoch-HOST_CACHE)
#
# Writes RESULTS/results.md and results.tsv; RESULTS/raw/ is not
# committed.  Needs root; exit 77 without root, /dev/fuse or
# passthrough_ll.  Everything mounted or started is unmounted and
# stopped on exit, failure or interrupt.  About 2 minutes here with the
# defaults.
set -eu -o pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
name=epoch
threads=4
while getopts j: opt; do
	case $opt in
	j) threads=$OPTARG ;;
	*) echo "usage: $0 [-j THREADS]" >&2; exit 2 ;;
	esac
done
HOST_CACHE=${HOST_CACHE:-256M}
hc=$(numfmt --from=iec "$HOST_CACHE")
set_bytes=$(numfmt --from=iec "${SET:-$((hc * 2))}")
DEVICE_CACHE=${DEVICE_CACHE:-$((set_bytes >> 20))M}
fmin=$(numfmt --from=iec "${FILE_MIN:-1M}")
fmax=$(numfmt --from=iec "${FILE_MAX:-7M}")
nfiles=$(( (set_bytes + (fmin + fmax) / 2 - 1) / ((fmin + fmax) / 2) ))
drop=${DROP:-3}
targets=${TARGETS:-native passthrough_ll hmmfs-device hmmfs-nodev}
RESULTS=${RESULTS:-$top/bench/results/$(date +%F)-epoch-$HOST_CACHE}

# shellcheck source=bench/lib.sh
. "$top/bench/lib.sh"
bench_init
results_init

target_opts() {
	case $1 in
	hmmfs-device) echo "host_cache=$HOST_CACHE,device=hostsim,device_cache=$DEVICE_CACHE" ;;
	hmmfs-nodev) echo "host_cache=$HOST_CACHE,device=none" ;;
	esac
}

B=$base/backing
mkdir "$B"
say "laying out $nfiles files ($((set_bytes >> 20)) MiB) in BACKING; targets: $targets"
"$filetree" create -j "$threads" -s "$fmin" -S "$fmax" -p 1000 "$B" "$nfiles" >"$RAW/layout.log" ||
	die "layout failed: $(tail -n 1 "$RAW/layout.log")"
say "$(tail -n 1 "$RAW/layout.log")"
: >"$RAW/rows.tsv"	# target step seconds bytes errors fds rss_mib

step() {	# step TARGET STEP: one read pass
	local target=$1 st=$2 log=$RAW/$1-$2.log rc=0
	"$filetree" read -j "$threads" -s "$fmin" -S "$fmax" -p 1000 "$T" "$nfiles" >"$log" 2>&1 || rc=$?
	[ "$rc" -eq 0 ] || failed=1
	say "$target $st: $(tail -n 1 "$log")"
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$target" "$st" "$(secs_of "$log")" \
		"$(sed -n 's/^filetree: read [0-9]* files, \([0-9]*\) bytes.*/\1/p' "$log")" \
		"$(errors_of "$log")" "$(daemon_fds)" "$(daemon_rss_mib)" >>"$RAW/rows.tsv"
}

for target in $targets; do
	drop_kernel_caches 3
	if ! mount_target "$target" "$B" "$(target_opts "$target")"; then
		printf '%s\tmount\t-\t-\tmount failed\t-\t-\n' "$target" >>"$RAW/rows.tsv"
		failed=1
		continue
	fi
	step "$target" pass1
	case $target in hmmfs*) stats_json "$RAW/$target-after-pass1.json" ;; esac
	drop_kernel_caches "$drop"
	case $target in hmmfs*) stats_json "$RAW/$target-after-drop.json" ;; esac
	step "$target" pass2
	case $target in hmmfs*) stats_json "$RAW/$target-after-pass2.json" ;; esac
	umount_target
done
wall=$(($(date +%s) - t_start))

# --- report -------------------------------------------------------------------
opts_list=""
for t in $targets; do opts_list="$opts_list$t=$(target_opts "$t");"; done
python3 - "$RAW" "$RESULTS" "$machine" "$nfiles" "$set_bytes" "$HOST_CACHE" "$drop" \
	"$threads" "$wall" "$opts_list" "$(tail -n 1 "$RAW/layout.log")" <<'EOF'
import json, os, sys
raw, out, machine, nfiles, set_bytes, hc, drop, threads, wall, opts_list, layout = sys.argv[1:]
opts = dict(x.split("=", 1) for x in opts_list.split(";") if x)
rows, order = {}, []
for line in open(os.path.join(raw, "rows.tsv")):
    t, st, secs, nbytes, errs, fds, rss = line.rstrip("\n").split("\t")
    if t not in rows:
        rows[t] = {}
        order.append(t)
    rows[t][st] = dict(secs=secs, bytes=nbytes, errs=errs, fds=fds, rss=rss)

def get(t, st, k):
    return rows.get(t, {}).get(st, {}).get(k, "") or "-"

def mbs(t, st):
    try:
        return "%.0f" % (int(get(t, st, "bytes")) / 1e6 / float(get(t, st, "secs")))
    except (ValueError, ZeroDivisionError):
        return "-"

def errs(t, st):
    e = get(t, st, "errs")
    return "0" if e.startswith("0 errors") else e

def snap(t, s):
    p = os.path.join(raw, "%s-%s.json" % (t, s))
    return json.load(open(p)) if os.path.exists(p) else {}

md = ["# epoch: a data set twice the host cache, read, drop_caches, read again", "",
      machine, "",
      "%s files, %d MiB (%s), host_cache=%s; %s reader threads; before each target "
      "`sync; echo 3 > /proc/sys/vm/drop_caches`, between the passes `sync; echo %s > "
      "/proc/sys/vm/drop_caches`; whole run %s s." % (nfiles, int(set_bytes) >> 20, layout,
                                                       hc, threads, drop, wall), "",
      "| target | options |", "|---|---|"]
for t in order:
    md.append("| %s | %s |" % (t, {"native": "(BACKING directly)",
                                   "passthrough_ll": "-o source=BACKING (defaults)"}.get(t, "-o " + opts.get(t, ""))))
md += ["", "## Passes", "",
       "| target | pass 1 (s) | pass 1 (MB/s) | pass 2 (s) | pass 2 (MB/s) | pass 2 backing_reads | errors (pass 1; pass 2) |",
       "|---|---:|---:|---:|---:|---:|---|"]
tsv = ["target\tpass1_s\tpass1_mbs\tpass2_s\tpass2_mbs\tpass2_backing_reads\tfds_pass1\tfds_pass2\trss_pass1_mib\trss_pass2_mib"]
for t in order:
    if "mount" in rows[t]:
        md.append("| %s | not run: mount failed | | | | | |" % t)
        continue
    a, c = snap(t, "after-drop"), snap(t, "after-pass2")
    br = c["backing_reads"] - a["backing_reads"] if "backing_reads" in a and "backing_reads" in c else "-"
    md.append("| %s | %s | %s | %s | %s | %s | %s; %s |" % (
        t, get(t, "pass1", "secs"), mbs(t, "pass1"), get(t, "pass2", "secs"), mbs(t, "pass2"),
        br, errs(t, "pass1"), errs(t, "pass2")))
    tsv.append("\t".join(str(x) for x in [t, get(t, "pass1", "secs"), mbs(t, "pass1"),
        get(t, "pass2", "secs"), mbs(t, "pass2"), br, get(t, "pass1", "fds"), get(t, "pass2", "fds"),
        get(t, "pass1", "rss"), get(t, "pass2", "rss")]))
md += ["", "## The daemons after each pass: descriptors / VmRSS (MiB)", "",
       "| target | pass 1 | pass 2 |", "|---|---:|---:|"]
for t in order:
    if t != "native" and "mount" not in rows[t]:
        md.append("| %s | %s / %s | %s / %s |" % (t, get(t, "pass1", "fds"), get(t, "pass1", "rss"),
                                                 get(t, "pass2", "fds"), get(t, "pass2", "rss")))
keys = ["backing_reads", "host_pages", "device_pages", "migrations_to_device", "migrations_to_host",
        "bounce_reads", "evictions", "device_evictions", "hits", "misses", "files_cached",
        "files_detached", "fds_open"]
for t in order:
    if not t.startswith("hmmfs") or "mount" in rows[t]:
        continue
    s = [snap(t, x) for x in ["after-pass1", "after-drop", "after-pass2"]]
    md += ["", "## %s counters (hmmfsctl stats --json)" % t, "",
           "| counter | after pass 1 | after the drop | after pass 2 | pass 2 delta |",
           "|---|---:|---:|---:|---:|"]
    for k in keys:
        v = [x.get(k, "-") for x in s]
        d = v[2] - v[1] if all(isinstance(x, int) for x in v[1:]) else "-"
        md.append("| %s | %s | %s | %s | %s |" % (k, v[0], v[1], v[2], d))
    pg = s[0].get("page_size", 0)
    if pg and t == "hmmfs-device":
        held = (s[0].get("host_pages", 0) + s[0].get("device_pages", 0)) * pg
        laid = int(layout.split(" bytes")[0].split()[-1])
        md += ["", "After pass 1, %s held %d MiB in %d-byte pages for the %d MiB of files "
               "(host %d MiB, device %d MiB); %d pages had been demoted to the device." % (
                   t, held >> 20, pg, laid >> 20, (s[0].get("host_pages", 0) * pg) >> 20,
                   (s[0].get("device_pages", 0) * pg) >> 20, s[0].get("migrations_to_device", 0))]
open(os.path.join(out, "results.md"), "w").write("\n".join(md) + "\n")
open(os.path.join(out, "results.tsv"), "w").write("\n".join(tsv) + "\n")
EOF
cat "$RESULTS/results.md"
say "done in $wall s: $RESULTS"
[ "$failed" -eq 0 ] || say "some step failed or saw errors (see the errors column and $RAW)"
exit "$failed"
