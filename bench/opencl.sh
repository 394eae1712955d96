#!/bin/bash
# bench/opencl.sh — the device tier on opencl (POCL's CPU devices, or
# whatever platform cl_platform= names) against the device tier on
# hostsim, the same fio jobs side by side in one run.
#
# One 256 MiB file, moved wholly to the device (hmmfsctl migrate --to
# device) before each job, read with the kernel's cache dropped
# (invalidate=1) so every read takes the bounce path: seq 1M direct and
# rand 4k direct with 4 jobs (psync).  Mounts: host_cache=1G,
# migrate=bounce, device_cache=1G, device=hostsim (no model) or
# device=opencl.  ROUNDS rounds (default 3), the backends alternating;
# medians are reported with the ratio opencl/hostsim (issue 22's targets:
# seq 1M >= 0.8x, rand 4k j4 >= 0.5x).
#
# Environment: HMMFS/HMMFSCTL (the build), RUNTIME seconds per job
# (default 3), ROUNDS, BENCH_DIR, OUT (a results directory; default
# bench/results/DATE-opencl), POCL_DEVICES.  Needs root.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
name=opencl
# shellcheck source=bench/lib.sh
. "$top/bench/lib.sh"

RUNTIME=${RUNTIME:-3}
ROUNDS=${ROUNDS:-3}
SIZE=256M
bench_no_ptll=1
command -v fio >/dev/null || skip "fio not found: run scripts/deps.sh"
clinfo -l 2>/dev/null | grep -q Device || skip "no OpenCL device (clinfo -l): run scripts/deps.sh"
bench_init
OUT=${OUT:-$top/bench/results/$(date +%F)-opencl}
mkdir -p "$OUT"
raw=$OUT/raw.txt
: >"$raw"

# job specs: name rw bs numjobs (all direct)
jobs="seq1m-dir read 1M 1
rand4k-dir-j4 randread 4k 4"

mount_it() {	# $1 backend
	"$hmmfs" "$base/backing" "$M" -o \
		"host_cache=1G,migrate=bounce,device_cache=1G,device=$1" ||
		die "mount with device=$1 failed"
	pid=$(pgrep -n -f "^$hmmfs $base/backing" || true)
}

umount_it() {
	fusermount3 -u "$M" || umount -l "$M"
	for _ in $(seq 50); do
		[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	pid=""
}

one_job() {	# $1 backend, then the job spec
	local dev=$1 job=$2 rw=$3 bs=$4 nj=$5 v
	"$hmmfsctl" migrate --to device "$M/f" >/dev/null || die "migrate on $dev failed"
	v=$(fio --name="$job" --filename="$M/f" --size=$SIZE --rw="$rw" --bs="$bs" \
		--direct=1 --numjobs="$nj" --ioengine=psync --invalidate=1 \
		--runtime="$RUNTIME" --time_based --group_reporting --randrepeat=0 \
		--output-format=terse --terse-version=3 | awk -F';' '
		{ bw += $7; iops += $8; lat += $40; n++ }
		END { printf "%.0f %.0f %.2f", bw / 1024, iops, lat / n }')
	echo "$dev $job $v" >>"$raw"
}

mkdir -p "$base/backing"
dd if=/dev/urandom of="$base/backing/f" bs=1M count=256 status=none
for round in $(seq "$ROUNDS"); do
	order="hostsim opencl"
	[ $((round % 2)) = 1 ] || order="opencl hostsim"
	for dev in $order; do
		mount_it "$dev"
		while read -r spec; do
			# shellcheck disable=SC2086
			one_job "$dev" $spec
		done <<<"$jobs"
		"$hmmfsctl" stats "$M" >"$OUT/stats-$dev.txt" 2>&1 || true
		umount_it
	done
done

python3 - "$raw" >"$OUT/results.md" <<'PY'
import sys, statistics
runs, order = {}, []
for line in open(sys.argv[1]):
    dev, job, mbs, iops, lat = line.split()
    if job not in order:
        order.append(job)
    runs.setdefault((dev, job), []).append((float(mbs), float(iops), float(lat)))
med = lambda k, i: statistics.median(r[i] for r in runs[k])
print("| job | hostsim MB/s | opencl MB/s | hostsim IOPS | opencl IOPS | opencl/hostsim | hostsim clat us | opencl clat us |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
for job in order:
    h, o = ("hostsim", job), ("opencl", job)
    print(f"| {job} | {med(h,0):.0f} | {med(o,0):.0f} | {med(h,1):.0f} | {med(o,1):.0f} | "
          f"{med(o,1)/med(h,1):.2f}x | {med(h,2):.1f} | {med(o,2):.1f} |")
PY
cat "$OUT/results.md"
