#!/bin/bash
# bench/everyday.sh [-r ROUNDS] [-c] — what people do on a mounted
# filesystem, timed through each target, each step checked.
#
# Targets (TARGETS; each round mounts each target once, the order
# rotating from round to round, see rotate() in bench/lib.sh), each on a
# fresh BACKING: a new journaled ext4 on a loop device (an image file in
# BENCH_DIR), so that each starts from the same file system state
# (FRESH_FS=0: a fresh directory in BENCH_DIR itself):
#   native          BACKING itself
#   passthrough_ll  libfuse's example, built with fallocate and
#                   copy_file_range, default options
#   hmmfs           default options
#   hmmfs-opts      hmmfs with $HMMFS_OPTS (default: noxattr, the documented
#                   option that ends the kernel's security.capability
#                   getxattr before writes; passthrough_ll has no xattrs)
#
# Steps, in order, on each target (the source data is made once, outside
# any mount; "check" is what makes the step fail):
#   tar_x        tar xf of the header tree (/usr/include, every file)
#   sha256       sha256sum -c of every extracted file        check: all OK
#   find_du      find | wc -l, then du -s, after drop_caches 2 (stat only)
#                                              check: the entry count
#   rm_tree      rm -rf of the tree
#   git_clone    git clone --no-local of this project (a bare copy of HEAD)
#   git_fsck     git fsck --full --strict                   check: exit 0
#   git_status   git status after touching every tracked file (re-reads
#                and hashes them all), then git gc
#   build        make -j2 of the clone (hmmfs and hmmfsctl)
#                                              check: build/hmmfs --version
#   sqlite_*     bench/sqlite_load.py: 100 transactions of 1,000 rows
#                (bulk) or 2,000 autocommit rows, DELETE or WAL journal,
#                synchronous=FULL          check: integrity_check, rows, sum
#   rsync_1      rsync -a of the doc tree (/usr/share/doc)
#   rsync_2      rsync -a again (nothing to copy: stat only)
#   rsync_verify rsync -a --checksum --dry-run --itemize-changes
#                                              check: prints nothing
#   rm_docs      rm -rf of the copy
# After the timed rounds, one untimed pass over each FUSE target counts
# the requests each step sends (perf, the kernel's fuse:fuse_request_send
# tracepoint; ROUNDTRIPS=0 skips it, and it is said when perf or the
# tracepoint is missing): the round trips that bound the times.
# A target whose mount failed, or a step whose check failed, is reported
# (raw/*.log) and the run exits 1 at the end; times are wall seconds.
#
# -r ROUNDS  rounds (default 4: each of the 4 targets runs once in each
#            place of the order); the report gives each step's median per
#            target, and the ratios hmmfs/passthrough_ll and hmmfs/native.
# -c         check mode, for make check: small data (/usr/include/linux,
#            /usr/include/c++, 10 bulk transactions, 200
#            autocommit rows, only hmmfsctl built), one round, targets
#            hmmfs and hmmfs with nowriteback_cache, no passthrough_ll;
#            nothing written to bench/results.
#
# Environment: TARGETS, HMMFS_OPTS, FRESH_FS (as above), HEADERS (default
# /usr/include), DOCS (default /usr/share/doc), HMMFS, HMMFSCTL,
# BENCH_DIR (default /var/tmp; not tmpfs), RESULTS (default
# bench/results/DATE-everyday).  Writes RESULTS/results.md, results.tsv
# and trips.tsv; RESULTS/raw/ is not committed.  Needs root (drop_caches,
# mounts); exit 77 without it or without tar, git, rsync, make or
# sha256sum.  Everything mounted is unmounted on exit, failure or
# interrupt.  The daemons run with this shell's descriptor limit: the
# default one is part of what is measured.
set -eu -o pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
name=everyday
rounds=4 check=0
while getopts r:c opt; do
	case $opt in
	r) rounds=$OPTARG ;;
	c) check=1 ;;
	*) echo "usage: $0 [-r ROUNDS] [-c]" >&2; exit 2 ;;
	esac
done

# shellcheck source=bench/lib.sh
. "$top/bench/lib.sh"

for t in tar git rsync make sha256sum; do
	command -v "$t" >/dev/null || skip "$t not found (apt-get install $t)"
done
git -C "$top" rev-parse --verify -q HEAD >/dev/null || skip "$top is not a git checkout"

hmmfs_opts=${HMMFS_OPTS-noxattr}
if [ "$check" = 1 ]; then
	rounds=1
	bench_no_ptll=1
	targets=${TARGETS:-hmmfs hmmfs-nowb}
	headers=${HEADERS:-/usr/include/linux}
	docs=${DOCS:-/usr/include/c++}
	bulk_tx=10 auto_rows=200 build_what=hmmfsctl
	fresh_fs=0
else
	fresh_fs=${FRESH_FS:-1}
	targets=${TARGETS:-native passthrough_ll hmmfs hmmfs-opts}
	case " $targets " in *" passthrough_ll "*) ;; *) bench_no_ptll=1 ;; esac
	headers=${HEADERS:-/usr/include}
	docs=${DOCS:-/usr/share/doc}
	bulk_tx=100 auto_rows=2000 build_what=all
fi
bench_init
backing_init
if [ "$check" = 1 ]; then
	RESULTS=$base/results
else
	RESULTS=${RESULTS:-$top/bench/results/$(date +%F)-everyday}
fi
results_init
src=$base/src
mkdir -p "$src"

# --- the source data, made once ---------------------------------------------
say "preparing: $headers, $docs, a bare clone of $top"
tar cf "$src/headers.tar" -C "$(dirname "$headers")" "$(basename "$headers")"
tree=$(basename "$headers")
(cd "$(dirname "$headers")" && find "$tree" -type f -print0 | sort -z |
	xargs -0 sha256sum) >"$src/headers.sha256"
tree_entries=$(cd "$(dirname "$headers")" && find "$tree" | wc -l)
git clone -q --bare "$top" "$src/repo.git"

# --- steps --------------------------------------------------------------------
# Each takes the working directory $1; a non-zero exit fails the step.
s_tar_x() { tar xf "$src/headers.tar" -C "$1"; }
s_sha256() { (cd "$1" && sha256sum --quiet --strict -c "$src/headers.sha256"); }
s_find_du() {
	local n
	n=$(find "$1/$tree" | wc -l)
	du -s "$1/$tree" >/dev/null
	[ "$n" -eq "$tree_entries" ] || { echo "find: $n entries, want $tree_entries"; return 1; }
}
s_rm_tree() { rm -rf "${1:?}/$tree"; }
s_git_clone() { git clone -q --no-local "$src/repo.git" "$1/repo"; }
s_git_fsck() { git -C "$1/repo" fsck --no-progress --full --strict; }
s_git_status() {
	git -C "$1/repo" ls-files -z | (cd "$1/repo" && xargs -0 touch)
	git -C "$1/repo" status --porcelain >"$1/status.out"
	[ ! -s "$1/status.out" ] || { echo "git status after touch:"; cat "$1/status.out"; return 1; }
	rm -f "$1/status.out"
	git -C "$1/repo" gc -q
}
s_build() {
	# a plain build in build/, whatever DEBUG or SANITIZE the caller's
	# make check runs with (they would build elsewhere)
	if [ "$build_what" = all ]; then
		env -u DEBUG -u SANITIZE make -C "$1/repo" -s -j2 DEBUG= SANITIZE= all
	else
		env -u DEBUG -u SANITIZE make -C "$1/repo" -s -j2 DEBUG= SANITIZE= build/hmmfsctl
	fi
	if [ "$build_what" = all ]; then "$1/repo/build/hmmfs" --version; else "$1/repo/build/hmmfsctl" --help; fi >/dev/null
}
s_sqlite() { python3 "$top/bench/sqlite_load.py" "$1/$2-$3.db" "$2" "$3" "$4"; }
s_sqlite_delete_bulk() { s_sqlite "$1" delete bulk "$bulk_tx"; }
s_sqlite_wal_bulk() { s_sqlite "$1" wal bulk "$bulk_tx"; }
s_sqlite_delete_auto() { s_sqlite "$1" delete autocommit "$auto_rows"; }
s_sqlite_wal_auto() { s_sqlite "$1" wal autocommit "$auto_rows"; }
s_rsync_1() { rsync -a "$docs/" "$1/docs/"; }
s_rsync_2() { rsync -a "$docs/" "$1/docs/"; }
s_rsync_verify() {
	rsync -a --checksum --dry-run --itemize-changes "$docs/" "$1/docs/" >"$1/rsync.out"
	[ ! -s "$1/rsync.out" ] || { echo "rsync verify differs:"; head "$1/rsync.out"; return 1; }
	rm -f "$1/rsync.out"
}
s_rm_docs() { rm -rf "${1:?}/docs" "$1/repo" "$1"/*.db*; }

steps="tar_x sha256 find_du rm_tree git_clone git_fsck git_status build
	sqlite_delete_bulk sqlite_wal_bulk sqlite_delete_auto sqlite_wal_auto
	rsync_1 rsync_2 rsync_verify rm_docs"

# Round trips: after the timed rounds, one more pass over the FUSE targets
# records the kernel's fuse:fuse_request_send tracepoint (perf) during each
# step and counts the requests by opcode.  Off in check mode, and said so
# when perf or the tracepoint is missing.
count_trips=0
if [ "$check" = 0 ] && [ "${ROUNDTRIPS:-1}" = 1 ]; then
	if ! command -v perf >/dev/null; then
		say "round trips not counted: perf not found (apt-get install linux-perf)"
	elif ! perf list 'fuse:fuse_request_send' 2>/dev/null | grep -q fuse_request_send; then
		say "round trips not counted: this kernel has no fuse:fuse_request_send tracepoint"
	else
		count_trips=1
		bench_on_exit stop_perf
	fi
fi

# trips_step TARGET STEP DIR: run STEP under perf, counts to trips.tsv:
# the requests of this mount's FUSE connection ($conn) only.
perf_pid=""
stop_perf() { [ -z "$perf_pid" ] || kill -INT "$perf_pid" 2>/dev/null; }
trips_step() {
	local target=$1 step=$2 dir=$3 data=$RAW/$1-$2.perf pp i
	[ "$step" = find_du ] && drop_kernel_caches 2
	perf record -q -e fuse:fuse_request_send -a -o "$data" 2>/dev/null &
	pp=$!
	perf_pid=$pp
	for i in $(seq 50); do [ -s "$data" ] && break; sleep 0.1; done
	sleep 0.2
	( "s_$step" "$dir" ) >/dev/null 2>&1 &
	wait $! || say "$target: $step failed while counting"
	sleep 0.2
	kill -INT "$pp"
	wait "$pp" || true
	perf_pid=""
	perf script -F trace -i "$data" 2>/dev/null |
		sed -n "s/.*connection $conn req [0-9]* opcode [0-9]* (FUSE_\([A-Z_0-9]*\)).*/\1/p" |
		sort | uniq -c |
		awk -v t="$target" -v s="$step" '{ printf "%s\t%s\t%s\t%s\n", t, s, tolower($2), $1 }' \
		>>"$RESULTS/trips.tsv"
	rm -f "$data"
}

count_round_trips() {
	local target b step
	printf 'target\tstep\top\trequests\n' >"$RESULTS/trips.tsv"
	for target in $targets; do
		[ "$target" = native ] && continue
		say "counting round trips: $target"
		b=$base/backing-$target-trips
		backing_new "$b"
		mount_target "$target" "$b" "$(target_opts "$target")" || { backing_done "$b"; continue; }
		conn=$(mountpoint -d "$M" | cut -d: -f2)
		for step in $steps; do
			trips_step "$target" "$step" "$T"
		done
		umount_target
		backing_done "$b"
	done
}

# run_step ROUND TARGET STEP DIR: time STEP in DIR, one line to the TSV.
run_step() {
	local r=$1 target=$2 step=$3 dir=$4 t0 t1 rc=0 log
	log=$RAW/$target-r$r-$step.log
	[ "$step" = find_du ] && drop_kernel_caches 2
	t0=$(date +%s.%N)
	# in the background so that set -e holds inside the step (a function
	# called from || runs with it off, and a failing command inside would
	# go unnoticed)
	( "s_$step" "$dir" ) >"$log" 2>&1 &
	wait $! || rc=$?
	t1=$(date +%s.%N)
	if [ "$rc" -ne 0 ]; then
		say "$target round $r: $step FAILED (exit $rc): $(tail -n 3 "$log" | tr '\n' ' ')"
		failed=1
		printf '%s\t%s\t%s\tFAIL\n' "$r" "$target" "$step" >>"$RESULTS/results.tsv"
		return 1
	fi
	[ -s "$log" ] || rm -f "$log"
	awk -v r="$r" -v t="$target" -v s="$step" -v t0="$t0" -v t1="$t1" \
		'BEGIN { printf "%s\t%s\t%s\t%.3f\n", r, t, s, t1 - t0 }' >>"$RESULTS/results.tsv"
}

target_opts() {
	case $1 in
	hmmfs) echo "" ;;
	hmmfs-opts) echo "$hmmfs_opts" ;;
	hmmfs-nowb) echo nowriteback_cache ;;
	esac
}

run_target() {
	local r=$1 target=$2 b step
	b=$base/backing-$target-r$r
	backing_new "$b"
	if ! mount_target "$target" "$b" "$(target_opts "$target")"; then
		failed=1
		backing_done "$b"
		return 0
	fi
	for step in $steps; do
		run_step "$r" "$target" "$step" "$T" || break
	done
	[ "$target" = native ] || stats_json "$RAW/$target-r$r-stats.json"
	umount_target
	backing_done "$b"
}

printf 'round\ttarget\tstep\tseconds\n' >"$RESULTS/results.tsv"
for r in $(seq "$rounds"); do
	for target in $(rotate "$r" $targets); do
		say "round $r/$rounds: $target"
		run_target "$r" "$target"
	done
done

[ "$count_trips" = 1 ] && count_round_trips

python3 - "$RESULTS/results.tsv" "$machine" "$rounds" "$hmmfs_opts" "$targets" \
	"$RESULTS/trips.tsv" "$fresh_fs" >"$RESULTS/results.md" <<'EOF'
import statistics, sys
import os
tsv, machine, rounds, opts, targets, trips_tsv, fresh_fs = sys.argv[1:]
targets = targets.split()
times, steps, fails = {}, [], set()
for line in open(tsv).read().splitlines()[1:]:
    r, t, s, v = line.split("\t")
    if s not in steps:
        steps.append(s)
    if v == "FAIL":
        fails.add((t, s))
    else:
        times.setdefault((t, s), []).append(float(v))
def med(t, s):
    v = times.get((t, s))
    return statistics.median(v) if v else None
def cell(v):
    return "-" if v is None else "%.2f" % v
def ratio(a, b):
    return "-" if a is None or b is None or b == 0 else "%.2f" % (a / b)
print("# Everyday workloads: %s round(s), median wall seconds\n" % rounds)
print(machine + "\n")
if fresh_fs == "1":
    print("BACKING: a new journaled ext4 (2 GiB image on a loop device) for each target in each round; the targets' order rotates.\n")
if "hmmfs-opts" in targets:
    print("hmmfs-opts: `-o %s`.\n" % opts)
print("Steps and checks: bench/everyday.sh's header.\n")
hdr = ["step"] + targets
has = lambda t: t in targets
pairs = [(h, b) for h in targets if h.startswith("hmmfs")
         for b in ("passthrough_ll", "native") if has(b)]
hdr += ["%s / %s" % (h, "ptll" if b == "passthrough_ll" else b) for h, b in pairs]
print("| " + " | ".join(hdr) + " |")
print("|" + "---|" * len(hdr))
tot = {t: 0.0 for t in targets}
for s in steps:
    row = [s]
    for t in targets:
        v = med(t, s)
        row.append("FAIL" if (t, s) in fails and v is None else cell(v))
        if v is not None:
            tot[t] += v
    row += [ratio(med(h, s), med(b, s)) for h, b in pairs]
    print("| " + " | ".join(row) + " |")
row = ["**total**"] + ["%.2f" % tot[t] for t in targets]
row += [ratio(tot[h], tot[b]) for h, b in pairs]
print("| " + " | ".join(row) + " |")
if fails:
    print("\nFailed: " + ", ".join("%s %s" % f for f in sorted(fails)))
if os.path.exists(trips_tsv):
    trips = {}
    for line in open(trips_tsv).read().splitlines()[1:]:
        t, s, op, n = line.split("\t")
        trips.setdefault((t, s), {})[op] = int(n)
    fuse = [t for t in targets if t != "native"]
    print("\n## FUSE requests per step (one counted pass, fuse:fuse_request_send)\n")
    print("Every opcode that makes up at least 2% of a step's requests on some target.\n")
    print("| step | opcode | " + " | ".join(fuse) + " |")
    print("|" + "---|" * (len(fuse) + 2))
    for s in steps:
        tot = {t: sum(trips.get((t, s), {}).values()) for t in fuse}
        print("| %s | **all** | %s |" % (s, " | ".join("**%d**" % tot[t] for t in fuse)))
        ops = set(op for t in fuse for op in trips.get((t, s), {}))
        ops = sorted(ops, key=lambda op: -max(trips.get((t, s), {}).get(op, 0) for t in fuse))
        for op in ops:
            if all(trips.get((t, s), {}).get(op, 0) < 0.02 * max(tot[t], 1) for t in fuse):
                continue
            print("| | %s | %s |" % (op, " | ".join(str(trips.get((t, s), {}).get(op, 0)) for t in fuse)))
    print("\nPer opcode, every target: trips.tsv.")
EOF
cat "$RESULTS/results.md"
say "done in $(( $(date +%s) - t_start )) s; results in $RESULTS"
[ "$failed" -eq 0 ]
