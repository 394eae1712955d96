#!/bin/bash
# bench/devread.sh — reads of device-resident pages against reads of
# host-resident pages, side by side in one run (the bounce path's target:
# device tier / host tier).
#
# One 256 MiB file on an hmmfs mount with host_cache=1G and migrate=bounce
# (device pages stay on the device when read).  Before each fio job the
# file is moved wholly to one tier with `hmmfsctl migrate --to device|host`
# and the kernel's cache of it is dropped (fio invalidate=1), so every
# read reaches the daemon.  Jobs: seq 1M and rand 4k, buffered and
# direct, 1 and 4 jobs, and rand 4k direct with 16 jobs; all psync.  Two
# mounts: hostsim without a model, and hostsim with device_bw=25G,
# device_lat=10us (PCIe-like: rand 4k direct, 1 and 4 jobs, against the
# physical-limit model of docs/performance.md).  ROUNDS rounds (default
# 3), the tiers alternating within each round; medians are reported.
#
# Environment: HMMFS/HMMFSCTL (the build), BASE_HMMFS and BASE_HMMFSCTL
# (an older build to run beside it, for the host tier's no-regression
# check), RUNTIME seconds per job (default 3), ROUNDS, BENCH_DIR, OUT (a
# results directory; default bench/results/DATE-devread).  Needs root.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
name=devread
# shellcheck source=bench/lib.sh
. "$top/bench/lib.sh"

RUNTIME=${RUNTIME:-3}
ROUNDS=${ROUNDS:-3}
SIZE=256M
bench_no_ptll=1
command -v fio >/dev/null || skip "fio not found: run scripts/deps.sh"
bench_init
OUT=${OUT:-$top/bench/results/$(date +%F)-devread}
mkdir -p "$OUT"
raw=$OUT/raw.txt
: >"$raw"

builds="new"
declare -A bin ctl
bin[new]=$hmmfs ctl[new]=$hmmfsctl
if [ -n "${BASE_HMMFS:-}" ]; then
	builds="base new"
	bin[base]=$BASE_HMMFS ctl[base]=${BASE_HMMFSCTL:-$(dirname "$BASE_HMMFS")/hmmfsctl}
fi

# job specs: name rw bs direct numjobs
jobs_plain="seq1m-buf read 1M 0 1
seq1m-buf-j4 read 1M 0 4
seq1m-dir read 1M 1 1
seq1m-dir-j4 read 1M 1 4
rand4k-buf randread 4k 0 1
rand4k-buf-j4 randread 4k 0 4
rand4k-dir randread 4k 1 1
rand4k-dir-j4 randread 4k 1 4
rand4k-dir-j16 randread 4k 1 16"
jobs_model="rand4k-dir randread 4k 1 1
rand4k-dir-j4 randread 4k 1 4"

mount_it() {	# $1 build, $2 options
	"${bin[$1]}" "$base/backing" "$M" -o "host_cache=1G,migrate=bounce,$2" ||
		die "mount with $2 failed"
	pid=$(pgrep -n -f "^${bin[$1]} $base/backing" || true)
}

umount_it() {
	fusermount3 -u "$M" || umount -l "$M"
	for _ in $(seq 50); do
		[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	pid=""
}

one_job() {	# $1 build, $2 model, $3 tier, then the job spec
	local b=$1 model=$2 tier=$3 job=$4 rw=$5 bs=$6 direct=$7 nj=$8 v
	"${ctl[$b]}" migrate --to "$tier" "$M/f" >/dev/null || die "migrate --to $tier failed"
	v=$(fio --name="$job" --filename="$M/f" --size=$SIZE --rw="$rw" --bs="$bs" \
		--direct="$direct" --numjobs="$nj" --ioengine=psync --invalidate=1 \
		--runtime="$RUNTIME" --time_based --group_reporting --randrepeat=0 \
		--output-format=terse --terse-version=3 | awk -F';' '
		{ bw += $7; iops += $8; lat += $40; n++ }	# read: KiB/s, IOPS, mean clat us
		END { printf "%.0f %.0f %.2f", bw / 1024, iops, lat / n }')
	echo "$b $model $job $tier $v" >>"$raw"
}

run_model() {	# $1 model name, $2 options, $3 job list
	local b round spec
	for b in $builds; do
		mount_it "$b" "$2"
		dd if=/dev/urandom of="$M/f" bs=1M count=256 status=none
		cat "$M/f" >/dev/null
		for round in $(seq "$ROUNDS"); do
			while read -r spec; do
				# shellcheck disable=SC2086
				if [ $((round % 2)) = 1 ]; then
					one_job "$b" "$1" host $spec; one_job "$b" "$1" device $spec
				else
					one_job "$b" "$1" device $spec; one_job "$b" "$1" host $spec
				fi
			done <<<"$3"
		done
		"${ctl[$b]}" stats "$M" >"$OUT/stats-$b-$1.txt" 2>&1 || true
		umount_it
	done
}

mkdir -p "$base/backing"
run_model plain "device=hostsim,device_cache=1G" "$jobs_plain"
run_model pcie "device=hostsim,device_cache=1G,device_bw=25G,device_lat=10us" "$jobs_model"

# medians: build model job tier -> MB/s IOPS clat_us
python3 - "$raw" "$builds" >"$OUT/results.md" <<'EOF'
import sys, statistics
raw, builds = sys.argv[1], sys.argv[2].split()
runs, order = {}, []
for line in open(raw):
    b, model, job, tier, mbs, iops, lat = line.split()
    key = (b, model, job)
    if key not in order:
        order.append(key)
    runs.setdefault(key + (tier,), []).append((float(mbs), float(iops), float(lat)))
def med(key, i):
    return statistics.median(r[i] for r in runs[key])
print("| build | device | job | host MB/s | device MB/s | host IOPS | device IOPS | device/host | host clat us | device clat us |")
print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|")
for b, model, job in order:
    h, d = (b, model, job, "host"), (b, model, job, "device")
    ratio = med(d, 1) / med(h, 1) if med(h, 1) else 0
    print(f"| {b} | {model} | {job} | {med(h,0):.0f} | {med(d,0):.0f} | {med(h,1):.0f} | {med(d,1):.0f} | {ratio:.2f}x | {med(h,2):.1f} | {med(d,2):.1f} |")
if "base" in builds:
    print()
    print("| job (host tier) | base IOPS | new IOPS | new/base |")
    print("|---|---:|---:|---:|")
    for b, model, job in order:
        if b != "new":
            continue
        n, o = (b, model, job, "host"), ("base", model, job, "host")
        if o in runs:
            print(f"| {model} {job} | {med(o,1):.0f} | {med(n,1):.0f} | {med(n,1)/med(o,1):.2f}x |")
EOF
{ echo; machine_line; } >>"$OUT/results.md"
cat "$OUT/results.md"
