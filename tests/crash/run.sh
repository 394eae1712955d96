#!/bin/sh
# tests/crash/run.sh [-n ITERATIONS] [-s SEED] [-D MS] — crash loop, then
# flush mode.
#
# Runs build/tests/hmmfscrash (see tests/crash/crash.c): ITERATIONS
# (default 10, about 20 s) rounds of writers + fsyncs + a hmmfsctl migrate
# loop over a 256 KiB host cache, the daemon SIGKILLed at a random moment,
# remount, every fsync-acknowledged byte checked; then flush mode (-T):
# thousands of dirty pages on both tiers, SIGTERM and umount write them all.
# The loop runs with the default options (FUSE writeback cache on), then
# half as many rounds with nowriteback_cache.
# Both, all along, with the kernel's inodes dropped (echo 2 >
# /proc/sys/vm/drop_caches) every MS ms (default 100; -D 0: off).
# The long mode is one command:  tests/crash/run.sh -n 100
#
# Environment: HMMFS (required), HMMFSCTL (else the ioctl is used), BUILD
# (the build directory; default build/ next to tests/).  Exit 0, 1 on a
# failure, 77 when it cannot run (not root, no /dev/fuse).
# TIMEOUT: 60 s for the default 10 iterations; -n 100 takes about 3 min.
set -u

here=$(cd "$(dirname "$0")" && pwd)
bin=${BUILD:-$here/../../build}/tests/hmmfscrash
n=10 seed="" drop_ms=100 opts=""
while getopts n:s:D:o: opt; do
	case $opt in
	n) n=$OPTARG ;;
	s) seed="-s $OPTARG" ;;
	D) drop_ms=$OPTARG ;;
	o) opts=$OPTARG ;;
	*) echo "usage: $0 [-n ITERATIONS] [-s SEED] [-D MS] [-o OPTS]" >&2; exit 2 ;;
	esac
done
[ -x "$bin" ] || { echo "crash: build $bin first (make $bin)" >&2; exit 2; }
# -o OPTS: the crash loop alone, on those mount options (another backend)
# shellcheck disable=SC2086
[ -z "$opts" ] || exec "$bin" -n "$n" -D "$drop_ms" $seed -o "$opts"
# shellcheck disable=SC2086
"$bin" -n "$n" -D "$drop_ms" $seed
rc=$?
[ "$rc" -eq 0 ] || exit "$rc"
# Again with every write(2) reaching the daemon (no kernel writeback cache).
# shellcheck disable=SC2086
"$bin" -n $(((n + 1) / 2)) -D "$drop_ms" $seed \
	-o host_cache=256K,device_cache=64M,nowriteback_cache
rc=$?
[ "$rc" -eq 0 ] || exit "$rc"
exec "$bin" -T -D "$drop_ms"
