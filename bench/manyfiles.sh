#!/bin/bash
# bench/manyfiles.sh [-n FILES] [-j THREADS] — many small files through
# each target: create, read all, drop the kernel's inodes, read all again.
#
# For each target in turn (native: BACKING itself; passthrough_ll:
# libfuse's example, default options; hmmfs: default options plus
# $HMMFS_OPTS), on a fresh BACKING directory on the real disk:
#
#   create   FILES files (default 1,000,000) of 4 KiB to 64 KiB, sizes
#            pseudo-random but the same every run (bench/filetree.c),
#            2,000 to a directory, written through the mount
#   pass 1   read every file (open, read to EOF, close, bytes checked)
#   drop     sync; echo $DROP > /proc/sys/vm/drop_caches (default 2: the
#            kernel forgets dentries and inodes, and the FUSE daemons get
#            FORGET for every file)
#   pass 2   read every file again
#
# Reported per target: the wall time of each step, the daemon's
# descriptors (ls /proc/PID/fd | wc -l) and VmRSS after each step, the
# errors seen (EMFILE and ENFILE apart); for hmmfs also its counters
# (hmmfsctl stats --json) after pass 1, after the drop and after pass 2:
# backing_reads, files_cached, files_detached, fds_open, fd_reopens,
# host_pages, hits, misses.  The daemons run with this shell's descriptor
# limits, which the script leaves as they are: the limits are part of
# what is measured.  THREADS (default 4) threads create and read, each
# one file at a time.
#
# Environment:
#   QUICK=1      20,000 files (-n overrides)
#   HMMFS_OPTS   extra hmmfs -o options (e.g. host_cache=4G)
#   DROP         what to write to drop_caches between the passes (default 2)
#   TARGETS      which targets, in order (default "native passthrough_ll hmmfs")
#   PTLL_NOFILE  passthrough_ll's descriptor limit (prlimit), which it needs
#                above FILES: it holds a descriptor for every inode the
#                kernel knows (default: this shell's, like the others)
#   HMMFS, HMMFSCTL  the binaries (default build/hmmfs, build/hmmfsctl)
#   BENCH_DIR    where BACKING and the mount go (default /var/tmp; not tmpfs)
#   RESULTS      output directory (default bench/results/DATE-manyfiles-FILES)
#
# Writes RESULTS/results.md (the machine line and the tables) and
# results.tsv; RESULTS/raw/ (each step's output, the counters, the daemons'
# logs) is not committed.  Needs root; exit 77 without root, /dev/fuse or
# passthrough_ll (libfuse3-dev's examples).  Everything mounted or started
# is unmounted and stopped on exit, failure or interrupt.  Space: about
# 34 KiB a file in BACKING (34 GB for a million), one target at a time.
set -eu -o pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
name=manyfiles
nfiles="" threads=4
while getopts n:j: opt; do
	case $opt in
	n) nfiles=$OPTARG ;;
	j) threads=$OPTARG ;;
	*) echo "usage: $0 [-n FILES] [-j THREADS]" >&2; exit 2 ;;
	esac
done
if [ -z "$nfiles" ]; then
	if [ "${QUICK:-0}" != 0 ]; then nfiles=20000; else nfiles=1000000; fi
fi
drop=${DROP:-2}
targets=${TARGETS:-native passthrough_ll hmmfs}
hmmfs_opts=${HMMFS_OPTS:-}
RESULTS=${RESULTS:-$top/bench/results/$(date +%F)-manyfiles-$nfiles}

# shellcheck source=bench/lib.sh
. "$top/bench/lib.sh"
bench_init
results_init
: >"$RAW/rows.tsv"	# target step seconds errors fds rss_mib

# step TARGET STEP CMD...: run a filetree command, log it, add a row.
step() {
	local target=$1 st=$2 log=$RAW/$1-$2.log rc=0
	shift 2
	"$@" >"$log" 2>&1 || rc=$?
	[ "$rc" -eq 0 ] || failed=1
	say "$target $st: $(tail -n 1 "$log")"
	printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$target" "$st" "$(secs_of "$log")" \
		"$(errors_of "$log")" "$(daemon_fds)" "$(daemon_rss_mib)" >>"$RAW/rows.tsv"
}

say "$nfiles files, $threads threads, drop_caches $drop; targets: $targets; results in $RESULTS"
for target in $targets; do
	b=$base/backing-$target
	mkdir "$b"
	opts=""
	[ "$target" = hmmfs ] && opts=$hmmfs_opts
	if ! mount_target "$target" "$b" "$opts"; then
		printf '%s\tmount\t-\tmount failed\t-\t-\n' "$target" >>"$RAW/rows.tsv"
		failed=1
		continue
	fi
	printf '%s\tmounted\t-\t-\t%s\t%s\n' "$target" "$(daemon_fds)" "$(daemon_rss_mib)" >>"$RAW/rows.tsv"
	step "$target" create "$filetree" create -j "$threads" "$T" "$nfiles"
	step "$target" pass1 "$filetree" read -j "$threads" "$T" "$nfiles"
	[ "$target" = hmmfs ] && stats_json "$RAW/hmmfs-after-pass1.json"
	t0=$(date +%s.%N)
	drop_kernel_caches "$drop"
	t1=$(date +%s.%N)
	printf '%s\tdrop\t%s\t-\t%s\t%s\n' "$target" "$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f", b - a}')" \
		"$(daemon_fds)" "$(daemon_rss_mib)" >>"$RAW/rows.tsv"
	[ "$target" = hmmfs ] && stats_json "$RAW/hmmfs-after-drop.json"
	step "$target" pass2 "$filetree" read -j "$threads" "$T" "$nfiles"
	[ "$target" = hmmfs ] && stats_json "$RAW/hmmfs-after-pass2.json"
	umount_target
	say "$target: removing its $nfiles files"
	rm -rf --one-file-system "$b"
done
wall=$(($(date +%s) - t_start))

# --- report -------------------------------------------------------------------
python3 - "$RAW" "$RESULTS" "$machine" "$nfiles" "$threads" "$drop" "$hmmfs_opts" "$wall" <<'EOF'
import json, os, sys
raw, out, machine, nfiles, threads, drop, hopts, wall = sys.argv[1:]
rows = {}
order = []
for line in open(os.path.join(raw, "rows.tsv")):
    t, st, secs, errs, fds, rss = line.rstrip("\n").split("\t")
    if t not in rows:
        rows[t] = {}
        order.append(t)
    rows[t][st] = dict(secs=secs, errs=errs, fds=fds, rss=rss)

def get(t, st, k):
    return rows.get(t, {}).get(st, {}).get(k, "") or "-"

def errs(t, st):
    e = get(t, st, "errs")
    return "0" if e.startswith("0 errors") else e

def ratio(a, b):
    try:
        return "%.2fx" % (float(a) / float(b))
    except (ValueError, ZeroDivisionError):
        return "-"

md = ["# many files: create, read, drop_caches, read again", "", machine, "",
      "%s files of 4 KiB to 64 KiB (bench/filetree.c sizes), 2,000 to a directory, "
      "%s threads; between the passes `sync; echo %s > /proc/sys/vm/drop_caches`; "
      "hmmfs options: %s; whole run %s s." % (f"{int(nfiles):,}", threads, drop,
                                              hopts or "defaults", wall), "",
      "## Wall time (s)", "",
      "| target | create | pass 1 | drop | pass 2 | pass 2 / native | pass 2 / passthrough_ll | errors (create; pass 1; pass 2) |",
      "|---|---:|---:|---:|---:|---:|---:|---|"]
tsv = ["target\tcreate_s\tpass1_s\tdrop_s\tpass2_s\tfds_mounted\tfds_create\tfds_pass1\tfds_drop\tfds_pass2\trss_mounted_mib\trss_create_mib\trss_pass1_mib\trss_drop_mib\trss_pass2_mib\terrors_create\terrors_pass1\terrors_pass2"]
for t in order:
    if "mount" in rows[t]:
        md.append("| %s | not run: mount failed | | | | | | |" % t)
        continue
    p2 = get(t, "pass2", "secs")
    md.append("| %s | %s | %s | %s | %s | %s | %s | %s; %s; %s |" % (
        t, get(t, "create", "secs"), get(t, "pass1", "secs"), get(t, "drop", "secs"), p2,
        ratio(p2, get("native", "pass2", "secs")) if t != "native" else "",
        ratio(p2, get("passthrough_ll", "pass2", "secs")) if t not in ("native", "passthrough_ll") else "",
        errs(t, "create"), errs(t, "pass1"), errs(t, "pass2")))
    steps = ["mounted", "create", "pass1", "drop", "pass2"]
    tsv.append("\t".join([t] + [get(t, s, "secs") for s in ["create", "pass1", "drop", "pass2"]] +
                         [get(t, s, "fds") for s in steps] + [get(t, s, "rss") for s in steps] +
                         [get(t, s, "errs") for s in ["create", "pass1", "pass2"]]))
md += ["", "## The daemons after each step: descriptors / VmRSS (MiB)", "",
       "| target | mounted | create | pass 1 | drop | pass 2 |", "|---|---:|---:|---:|---:|---:|"]
for t in order:
    if t == "native" or "mount" in rows[t]:
        continue
    md.append("| %s | %s |" % (t, " | ".join("%s / %s" % (get(t, s, "fds"), get(t, s, "rss"))
                                            for s in ["mounted", "create", "pass1", "drop", "pass2"])))
snaps = {}
for s in ["after-pass1", "after-drop", "after-pass2"]:
    p = os.path.join(raw, "hmmfs-%s.json" % s)
    if os.path.exists(p):
        snaps[s] = json.load(open(p))
if snaps:
    md += ["", "## hmmfs counters (hmmfsctl stats --json)", "",
           "| counter | after pass 1 | after the drop | after pass 2 | pass 2 delta |",
           "|---|---:|---:|---:|---:|"]
    for k in ["backing_reads", "files_cached", "files_detached", "fds_open", "fd_reopens",
              "host_pages", "host_cache", "hits", "misses", "evictions"]:
        v = [snaps.get(s, {}).get(k, "-") for s in ["after-pass1", "after-drop", "after-pass2"]]
        d = v[2] - v[1] if all(isinstance(x, int) for x in v[1:]) else "-"
        md.append("| %s | %s | %s | %s | %s |" % (k, v[0], v[1], v[2], d))
open(os.path.join(out, "results.md"), "w").write("\n".join(md) + "\n")
open(os.path.join(out, "results.tsv"), "w").write("\n".join(tsv) + "\n")
EOF
cat "$RESULTS/results.md"
say "done in $wall s: $RESULTS"
[ "$failed" -eq 0 ] || say "some step failed or saw errors (see the errors column and $RAW)"
exit "$failed"
