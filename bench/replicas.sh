#!/bin/bash
# bench/replicas.sh — what a replica costs, and what several buy.
#
# One SIZE file (default 1G) on an hmmfs mount with three hostsim devices
# under a bandwidth model (device_bw=BW per device, default 4G; latency
# LAT, default 10us), so that copies take the time of the model, not of
# this machine's memcpy.  Each round, for the peer path and for the host
# path (-o device_peer=off), side by side:
#   h2d       migrate --to device:0 of the file, cached on the host: one
#             copy into a device (the unit of cost);
#   replicate replicate --to device:1 of it, now on device 0: a copy
#             between devices (peer: device 1's engine reads device 0;
#             host path: through a host buffer, out and in again);
#   d2d       migrate --to device:2: the primary moves between devices,
#             one copy between devices by the same path, for reference.
# Target: replicate <= d2d on the peer path, and <= two copies (a round
# trip through host memory) on the host path.
# Then, with the file replicated on all three devices, hmmfsctl devop
# --op xxh64 on N devices at once (N = 1, 2, 3): each device hashes its
# own copy with its own engine, so the aggregate rate should grow with N.
# ROUNDS rounds (default 3); medians reported, in seconds and GiB/s.
#
# Environment: HMMFS/HMMFSCTL (the build), SIZE, BW, LAT, ROUNDS,
# BENCH_DIR, OUT (default bench/results/DATE-replicas).  Needs root.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
name=replicas
# shellcheck source=bench/lib.sh
. "$top/bench/lib.sh"

SIZE=${SIZE:-1G}
BW=${BW:-4G}
LAT=${LAT:-10us}
ROUNDS=${ROUNDS:-3}
bench_no_ptll=1
bench_init
OUT=${OUT:-$top/bench/results/$(date +%F)-replicas}
mkdir -p "$OUT"
raw=$OUT/raw.txt
: >"$raw"
bytes=$(numfmt --from=iec "$SIZE")

mount_it() {	# $1: extra options
	"$hmmfs" "$base/backing" "$M" -o "devices=3,device_cache=$((bytes / 1048576 + 64))M,host_cache=$((bytes / 1048576 + 256))M,migrate=bounce,device_bw=$BW,device_lat=$LAT,$1" ||
		die "mount failed"
	for _ in $(seq 50); do mountpoint -q "$M" && return; sleep 0.1; done
	die "no mount"
}

unmount_it() {
	fusermount3 -u "$M"
	for _ in $(seq 100); do mountpoint -q "$M" || return 0; sleep 0.1; done
	die "still mounted"
}

# seconds a command takes
timed() {
	local t0 t1
	t0=$(date +%s.%N)
	"$@" >/dev/null
	t1=$(date +%s.%N)
	echo "$t1 - $t0" | bc -l
}

# xxh64 on devices 0..N-1 at once; every hash must be the host's
parallel_hash() {	# $1: N, $2: the expected hash
	local n=$1 want=$2 t0 t1 k bad=0
	t0=$(date +%s.%N)
	for ((k = 0; k < n; k++)); do
		"$hmmfsctl" devop "$M/f" --op xxh64 --device "$k" >"$base/h$k" &
	done
	wait
	t1=$(date +%s.%N)
	for ((k = 0; k < n; k++)); do
		[ "$(cut -d' ' -f1 "$base/h$k")" = "$want" ] || bad=1
	done
	[ "$bad" = 0 ] || die "a device's xxh64 differs from the host's"
	echo "$t1 - $t0" | bc -l
}

mkdir -p "$base/backing"
head -c 64M /dev/urandom >"$base/chunk"
for _ in $(seq $((bytes / 67108864))); do cat "$base/chunk"; done >"$base/backing/f"
want=$(xxhsum -H1 "$base/backing/f" 2>/dev/null | cut -d' ' -f1 || true)
[ -n "$want" ] || want=$(python3 -c 'import sys; print("")')
say "$SIZE file, 3 devices, device_bw=$BW, device_lat=$LAT, $ROUNDS rounds"
echo "# $(machine_line)" >>"$raw"
echo "# round path step seconds" >>"$raw"

for ((r = 1; r <= ROUNDS; r++)); do
	for path in peer host; do
		opt=device_peer=on
		[ "$path" = host ] && opt=device_peer=off
		mount_it "$opt"
		cat "$M/f" >/dev/null	# cached on the host
		echo "$r $path h2d $(timed "$hmmfsctl" migrate --to device:0 "$M/f")" >>"$raw"
		echo "$r $path replicate $(timed "$hmmfsctl" replicate --to device:1 "$M/f")" >>"$raw"
		echo "$r $path d2d $(timed "$hmmfsctl" migrate --to device:2 "$M/f")" >>"$raw"
		"$hmmfsctl" stats "$M" --json >"$OUT/stats-$path.json"
		unmount_it
	done
	mount_it device_peer=on
	"$hmmfsctl" replicate --to device:0,device:1,device:2 "$M/f" >/dev/null
	[ -n "$want" ] || want=$("$hmmfsctl" devop "$M/f" --op xxh64 --device 0 | cut -d' ' -f1)
	for n in 1 2 3; do
		echo "$r hash xxh64-x$n $(parallel_hash "$n" "$want")" >>"$raw"
	done
	unmount_it
done

python3 - "$raw" "$bytes" >"$OUT/summary.txt" <<'EOF'
import statistics, sys
raw, size = sys.argv[1], int(sys.argv[2])
t = {}
for line in open(raw):
    if line.startswith('#'):
        continue
    r, path, step, secs = line.split()
    t.setdefault((path, step), []).append(float(secs))
med = {k: statistics.median(v) for k, v in t.items()}
gib = size / 2**30
print(f"{gib:.2f} GiB, medians of {len(next(iter(t.values())))} rounds")
for path in ('peer', 'host'):
    h2d, rep, d2d = (med[(path, s)] for s in ('h2d', 'replicate', 'd2d'))
    print(f"{path:5s} path: h2d {h2d:.3f} s ({gib / h2d:.2f} GiB/s), replicate "
          f"{rep:.3f} s, d2d move {d2d:.3f} s; replicate/d2d {rep / d2d:.2f}, "
          f"replicate/h2d {rep / h2d:.2f}")
print(f"replicate, host path / peer path: {med[('host', 'replicate')] / med[('peer', 'replicate')]:.2f}")
one = med[('hash', 'xxh64-x1')]
for n in (1, 2, 3):
    s = med[('hash', f'xxh64-x{n}')]
    print(f"xxh64 on {n} device(s) at once: {s:.3f} s, {n * gib / s:.2f} GiB/s in all, "
          f"{n * one / s:.2f}x one device")
EOF
cat "$OUT/summary.txt"
say "results in $OUT"
