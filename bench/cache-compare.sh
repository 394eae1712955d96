#!/bin/sh
# bench/cache-compare.sh — hmmfs with its page cache (warm) against the
# same build with -o host_cache=0, side by side in one run: fio's
# cache-compare.fio on each mount, in turn.  Prints a Markdown table.
#   HMMFS (default build/hmmfs), RUNTIME seconds per job (default 5),
#   BENCH_DIR where BACKING and mounts go (default /var/tmp).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
hmmfs=${HMMFS:-$top/build/hmmfs}
export RUNTIME=${RUNTIME:-5}
base=$(mktemp -d "${BENCH_DIR:-/var/tmp}/hmmfs-bench.XXXXXX")
cleanup() {
	for m in "$base"/m-*; do
		mountpoint -q "$m" 2>/dev/null && { fusermount3 -u "$m" || umount -l "$m"; }
	done
	rm -rf "$base"
}
trap cleanup EXIT INT TERM

run() {	# $1: label, $2: -o options; prints "label job MB/s" lines
	b=$base/b-$1 m=$base/m-$1
	mkdir -p "$b" "$m"
	"$hmmfs" "$b" "$m" -o "$2"
	DIR=$m fio --name=prep --directory="$m" --filename=f --size=256M \
		--rw=write --bs=1M --direct=1 --output=/dev/null
	cat "$m/f" >/dev/null	# warm
	DIR=$m fio --output-format=terse --terse-version=3 "$top/bench/cache-compare.fio" |
		awk -F';' -v l="$1" '{ printf "%s %s %.0f\n", l, $3, ($7 + $48) / 1024 }'
	fusermount3 -u "$m"
}

{ run cache "direct_io"; run nocache "direct_io,host_cache=0"; } >"$base/out"
echo "| job | hmmfs cache (MB/s) | host_cache=0 (MB/s) | ratio |"
echo "|---|---:|---:|---:|"
awk '$1 == "cache" { c[$2] = $3; order[++n] = $2 } $1 == "nocache" { p[$2] = $3 }
     END { for (i = 1; i <= n; i++) { j = order[i];
	     printf "| %s | %d | %d | %.2fx |\n", j, c[j], p[j], p[j] ? c[j] / p[j] : 0 } }' "$base/out"
echo
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), kernel $(uname -r), BACKING on $(df -T "$base" | awk 'NR==2 {print $2}')"
