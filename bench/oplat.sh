#!/bin/bash
# bench/oplat.sh [-n FILES] [-r ROUNDS] — the latency of single calls
# (bench/oplat.c: create, write, close, utimens, chmod, chown, stat, open,
# fsync, rename, unlink, mkdir, rmdir) through native, passthrough_ll and
# hmmfs side by side, the targets' order rotating each round; then the FUSE
# requests hmmfs served for them (hmmfsctl stats: count and mean latency
# per opcode, the daemon's side of the same round trips).
#
# Each target runs on a new journaled ext4 on a loop device (FRESH_FS=0:
# a directory in BENCH_DIR; see backing_new in bench/lib.sh).
#
# Environment: TARGETS (default "native passthrough_ll hmmfs"), HMMFS_OPTS
# (hmmfs's -o options), BENCH_DIR, RESULTS (default
# bench/results/DATE-oplat), HMMFS, HMMFSCTL.  Writes RESULTS/results.md;
# raw/ keeps each run's output.  Needs root; exit 77 without it, without
# /dev/fuse or passthrough_ll.  Everything mounted is unmounted on exit.
set -eu -o pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
name=oplat
nfiles=2000 rounds=3
while getopts n:r: opt; do
	case $opt in
	n) nfiles=$OPTARG ;;
	r) rounds=$OPTARG ;;
	*) echo "usage: $0 [-n FILES] [-r ROUNDS]" >&2; exit 2 ;;
	esac
done

# shellcheck source=bench/lib.sh
. "$top/bench/lib.sh"
fresh_fs=${FRESH_FS:-1}
bench_init
backing_init
RESULTS=${RESULTS:-$top/bench/results/$(date +%F)-oplat}
results_init
targets=${TARGETS:-native passthrough_ll hmmfs}
cc -O2 -Wall -Wextra "$top/bench/oplat.c" -o "$base/oplat" || die "bench/oplat.c did not build"

for r in $(seq "$rounds"); do
	for target in $(rotate "$r" $targets); do
		say "round $r/$rounds: $target"
		b=$base/backing-$target
		backing_new "$b"
		mount_target "$target" "$b" "${HMMFS_OPTS:-}" || { failed=1; backing_done "$b"; continue; }
		"$base/oplat" "$T" "$nfiles" >"$RAW/$target-r$r.txt" || failed=1
		if [ "$target" = hmmfs ]; then
			"$hmmfsctl" stats "$M" >"$RAW/$target-r$r-stats.txt" || true
		fi
		umount_target
		backing_done "$b"
	done
done

python3 - "$RAW" "$rounds" "$targets" "$machine" "$nfiles" "${HMMFS_OPTS:-}" \
	>"$RESULTS/results.md" <<'EOF'
import os, statistics, sys
raw, rounds, targets, machine, nfiles, opts = sys.argv[1:]
targets = targets.split()
mean, phases = {}, []
for t in targets:
    for r in range(1, int(rounds) + 1):
        path = os.path.join(raw, "%s-r%d.txt" % (t, r))
        if not os.path.exists(path):
            continue
        for line in open(path).read().splitlines()[1:]:
            f = line.split()
            if f[0] not in phases:
                phases.append(f[0])
            mean.setdefault((t, f[0]), []).append(float(f[2]))
print("# Latency of single calls (bench/oplat.c), %s files, median of %s rounds' means, microseconds\n"
      % (nfiles, rounds))
print(machine + "\n")
print("BACKING: a new journaled ext4 (2 GiB image on a loop device) for each target in each round, unless FRESH_FS=0.\n")
if opts:
    print("hmmfs options: `-o %s`\n" % opts)
hdr = ["call"] + targets
if "hmmfs" in targets and "passthrough_ll" in targets:
    hdr.append("hmmfs / ptll")
print("| " + " | ".join(hdr) + " |")
print("|" + "---|" * len(hdr))
for p in phases:
    row = [p]
    med = {}
    for t in targets:
        v = mean.get((t, p))
        med[t] = statistics.median(v) if v else None
        row.append("-" if med[t] is None else "%.1f" % med[t])
    if len(hdr) > len(targets) + 1:
        a, b = med.get("hmmfs"), med.get("passthrough_ll")
        row.append("-" if not a or not b else "%.2f" % (a / b))
    print("| " + " | ".join(row) + " |")
last = os.path.join(raw, "hmmfs-r%s-stats.txt" % rounds)
if os.path.exists(last):
    text = open(last).read()
    i = text.find("operation")
    if i >= 0:
        print("\nThe requests hmmfs served in its last round (hmmfsctl stats):\n")
        print("```\n" + text[i:].rstrip() + "\n```")
EOF
cat "$RESULTS/results.md"
[ "$failed" -eq 0 ]
