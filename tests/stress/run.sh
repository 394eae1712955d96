#!/usr/bin/env bash
# tests/stress/run.sh [-t SECONDS] [-j THREADS] — many threads, many files,
# background migrations, the dedupe scanner at full rate, checked data,
# bounded memory.
#
# Mounts "$HMMFS BACKING MNT -f -o $STRESS_OPTS,devices=$STRESS_DEVICES"
# (default a 8 MiB host cache, three 64 MiB hostsim devices, so pages move
# between the tiers all the time, and ksm=on), runs hmmfsx with THREADS
# (default 64) checkers, 2 files each of up to 1 MiB each, doing reads,
# writes, truncates, fallocates, renames, mmap and O_DIRECT I/O, with its
# migrator (-M; with several devices -R: placement on each device,
# replicas, device hashes checked at the end) and
# dedupe stress (-K: data that merges, the scanner at full speed) for
# SECONDS (default 15; the long mode is one command: tests/stress/run.sh
# -t 3600), with the kernel's inodes dropped (echo 2 >
# /proc/sys/vm/drop_caches, hmmfsx -D) every STRESS_DROP_MS ms (default
# 100; 0: off), then unmounts.  Beside it, for the same time, hmmfsrace races
# processes on the same few pages of 2 files in MNT/race: 4 writers each
# looping {pwrite 64 KiB at 0; close; open O_TRUNC; close}, truncate(2),
# the migrate and residency ioctls, rename and unlink (the page_drop
# livelock of issue 13); every one of them must finish.  Fails when
# hmmfsx or hmmfsrace finds a data mismatch, a racer hangs, the daemon
# does not exit 0, or the daemon's peak RSS (VmHWM) exceeds
#
#     host_cache + device_frames_hwm * page_size + OVERHEAD
#
# hostsim's device memory lives in the daemon, so the device frames ever
# used count; OVERHEAD (default 96 MiB, STRESS_OVERHEAD_MB) covers the
# binary and libraries, the bounce pool (2 MiB), per-page metadata, and
# the FUSE workers' request buffers (about 1 MiB each, 16 workers) and
# malloc arenas.  RSS is sampled every second and printed.
#
# Environment: HMMFS (required), HMMFSCTL (required), BUILD (default
# build/).  Exit 0, 1 on a failure, 77 without /dev/fuse or root.
# TIMEOUT: SECONDS + 60.
set -u

secs=15 threads=64
while getopts t:j: opt; do
	case $opt in
	t) secs=$OPTARG ;;
	j) threads=$OPTARG ;;
	*) echo "usage: $0 [-t SECONDS] [-j THREADS]" >&2; exit 2 ;;
	esac
done
here=$(cd "$(dirname "$0")" && pwd)
fsx=${BUILD:-$here/../../build}/tests/hmmfsx
race=${BUILD:-$here/../../build}/tests/hmmfsrace
devices=${STRESS_DEVICES:-3}
opts=${STRESS_OPTS:-host_cache=8M,device_cache=64M,ksm=on},devices=$devices
replicas=()
[ "$devices" -gt 1 ] && replicas=(-R "$devices")
overhead_mb=${STRESS_OVERHEAD_MB:-96}
drop_ms=${STRESS_DROP_MS:-100}
if [ "$(id -u)" -ne 0 ] || [ ! -c /dev/fuse ]; then
	echo "stress: needs root and /dev/fuse"
	exit 77
fi
[ -x "${HMMFS:-}" ] && [ -x "${HMMFSCTL:-}" ] || { echo "stress: set HMMFS and HMMFSCTL" >&2; exit 2; }
[ -x "$fsx" ] || { echo "stress: build $fsx first" >&2; exit 2; }
[ -x "$race" ] || { echo "stress: build $race first" >&2; exit 2; }

work=$(mktemp -d /tmp/hmmfs-stress.XXXXXX)
mkdir "$work/b" "$work/m"
daemon=""
cleanup() {
	if grep -q " $work/m " /proc/self/mounts; then umount -l "$work/m"; fi
	[ -n "$daemon" ] && kill -KILL "$daemon" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

"$HMMFS" "$work/b" "$work/m" -f -o "$opts" >"$work/daemon.log" 2>&1 &
daemon=$!
for _ in $(seq 100); do
	grep -q " $work/m " /proc/self/mounts && break
	sleep 0.1
done
grep -q " $work/m " /proc/self/mounts || { echo "stress: no mount"; cat "$work/daemon.log"; exit 1; }

echo "stress: $threads threads, -M ${replicas[*]} -K -D $drop_ms, $secs s, -o $opts"
timeout $((secs + 60)) "$fsx" -q -j "$threads" -f $((threads * 2)) -l 1m -o 64k -M "${replicas[@]}" -K \
	-D "$drop_ms" -t "$secs" \
	-b "$work/b" "$work/m" &
checker=$!
mkdir "$work/m/race"
# a racer still running 60 s after the stop is reported as hung
timeout $((secs + 120)) "$race" -t "$secs" -T 60 -b "$work/b/race" "$work/m/race" &
racer=$!
peak_rss=0 samples=0
while kill -0 "$checker" 2>/dev/null; do
	rss=$(awk '/^VmRSS/ { print $2 }' "/proc/$daemon/status" 2>/dev/null)
	if [ -n "$rss" ]; then
		samples=$((samples + 1))
		[ "$rss" -gt "$peak_rss" ] && peak_rss=$rss
		[ $((samples % 10)) -eq 0 ] && echo "stress: ${samples}s: daemon RSS $((rss / 1024)) MiB"
	fi
	sleep 1
done
wait "$checker"
rc=$?
wait "$racer"
race_rc=$?
json=$("$HMMFSCTL" stats "$work/m" --json)
field() { printf '%s' "$json" | tr ',{}' '\n\n\n' | awk -F: -v k="\"$1\"" '$1 == k { print $2 }'; }
host_cache=$(field host_cache)
page_size=$(field page_size)
dev_hwm=$(field device_frames_hwm)
echo "stress: dedupe: $(field full_scans) full scans, pages_shared $(field pages_shared)," \
	"pages_sharing $(field pages_sharing), $(field cow_breaks) copy-on-write breaks;" \
	"migrations $(field migrations_to_device) to the device, $(field migrations_to_host) back"
hwm=$(awk '/^VmHWM/ { print $2 }' "/proc/$daemon/status")
# the checker's last releases may still be in flight: busy for a moment
for _ in $(seq 50); do
	umount "$work/m" 2>/dev/null && break
	sleep 0.2
done
busy=0
if grep -q " $work/m " /proc/self/mounts; then
	echo "stress: FAILED: $work/m still busy 10 s after the checker ended; detaching it"
	umount -l "$work/m"
	busy=1
fi
for _ in $(seq 300); do
	kill -0 "$daemon" 2>/dev/null || break
	sleep 0.1
done
kill -0 "$daemon" 2>/dev/null && { echo "stress: daemon still running 30 s after umount; killing it"; kill -KILL "$daemon"; }
wait "$daemon"
drc=$?
daemon=""
bound_kb=$(( (host_cache + dev_hwm * page_size) / 1024 + overhead_mb * 1024 ))
echo "stress: hmmfsx exit $rc, hmmfsrace exit $race_rc, daemon exit $drc"
echo "stress: daemon VmHWM $((hwm / 1024)) MiB (sampled peak RSS $((peak_rss / 1024)) MiB);" \
	"bound $((bound_kb / 1024)) MiB = host_cache $((host_cache >> 20)) MiB" \
	"+ device frames used $(( (dev_hwm * page_size) >> 20)) MiB + overhead $overhead_mb MiB"
fail=$busy
[ "$rc" -eq 0 ] || { echo "stress: FAILED: hmmfsx found a problem"; fail=1; }
[ "$race_rc" -eq 0 ] || { echo "stress: FAILED: hmmfsrace found a problem or hung"; fail=1; }
[ "$drc" -eq 0 ] || { echo "stress: FAILED: daemon exit $drc"; tail -20 "$work/daemon.log"; fail=1; }
if [ -n "${HMMFS_IT_SANITIZED:-}" ]; then
	# ASan/TSan shadow memory multiplies RSS: the bound means nothing there
	echo "stress: RSS bound not checked: sanitizer build (shadow memory inflates RSS)"
elif [ "$hwm" -gt "$bound_kb" ]; then
	echo "stress: FAILED: RSS above the bound"
	fail=1
fi
[ "$fail" -eq 0 ] && echo "stress: passed"
exit "$fail"
