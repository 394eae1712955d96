#!/bin/bash
# bench/gluster.sh — is hmmfs worth it in front of GlusterFS on a slow
# link?  Two nodes made on this machine (tests/gluster/nodes.sh), the veth
# link between them limited to RATE (default 1gbit) with tbf at both ends;
# node A's gluster client reads from node B's brick (choose-local off,
# read-subvolume B), so file data crosses the link as it would between
# machines.
#
# Reads: NFILES files of FILE_MIB MiB (default 64 x 4) written on node B,
# then read whole on node A, each file opened and closed per epoch:
# gluster directly (two epochs), then through node A's hmmfs: epoch 1
# (cold), epoch 2 (warm), epoch 3 after echo 3 > drop_caches.  Writes:
# WRITE_MIB MiB (default 256) written on node A with one fsync at the end,
# to gluster directly and through hmmfs.  Each row gives MB/s, the ratio
# to gluster direct's first epoch (or its write), and the bytes the link
# carried (veth counters, both ways), which shows what crossed it.
#
# Environment: HMMFS, RATE, NFILES, FILE_MIB, WRITE_MIB, OUT (results
# directory; default bench/results/DATE-gluster).  Needs root; exit 77
# with the reason when the nodes cannot be made.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
HMMFS=${HMMFS:-$top/build/hmmfs}
HMMFSCTL=${HMMFSCTL:-$(dirname "$HMMFS")/hmmfsctl}
RATE=${RATE:-1gbit}
NFILES=${NFILES:-64}
FILE_MIB=${FILE_MIB:-4}
WRITE_MIB=${WRITE_MIB:-256}
OUT=${OUT:-$top/bench/results/$(date +%F)-gluster}
nodes_name=bench-gluster
# shellcheck source=tests/gluster/nodes.sh
. "$top/tests/gluster/nodes.sh"
nodes_check || exit 77

trap nodes_down EXIT
trap 'exit 130' INT TERM
nodes_up || exit 1
gl a volume set hv cluster.choose-local off >/dev/null
gl a volume set hv cluster.read-subvolume hv-client-1 >/dev/null
tc -n "${tag}a" qdisc add dev "${tag}va" root tbf rate "$RATE" burst 256kb latency 50ms
tc -n "${tag}b" qdisc add dev "${tag}vb" root tbf rate "$RATE" burst 256kb latency 50ms
mkdir -p "$OUT"
raw=$OUT/raw.txt
: >"$raw"

link_bytes() {	# both ways, as node A's end counts them
	ip -n "${tag}a" -s link show "${tag}va" |
		awk '/RX:/ { getline; rx = $1 } /TX:/ { getline; tx = $1 } END { print rx + tx }'
}

now() { date +%s.%N; }

# one row: NAME, SECONDS, MIB, LINK_BYTES
row() { echo "$1 $2 $3 $4" | tee -a "$raw"; }

read_epoch() {	# NAME DIR
	local b0 t0 t1 f
	b0=$(link_bytes)
	t0=$(now)
	for f in $(seq "$NFILES"); do
		cat "$2/f$f" >/dev/null
	done
	t1=$(now)
	row "$1" "$(echo "$t1 - $t0" | bc)" $((NFILES * FILE_MIB)) $(($(link_bytes) - b0))
}

write_run() {	# NAME DIR
	local b0 t0 t1
	b0=$(link_bytes)
	t0=$(now)
	dd if="$W/src" of="$2/w" bs=1M conv=fsync status=none
	t1=$(now)
	row "$1" "$(echo "$t1 - $t0" | bc)" "$WRITE_MIB" $(($(link_bytes) - b0))
	rm -f "$2/w"
}

nodes_say "writing $NFILES files of $FILE_MIB MiB on node b"
for f in $(seq "$NFILES"); do
	head -c $((FILE_MIB << 20)) /dev/urandom >"$W/b/mnt/f$f"
done
head -c $((WRITE_MIB << 20)) /dev/urandom >"$W/src"
sync
echo 3 >/proc/sys/vm/drop_caches

read_epoch "gluster-epoch1" "$W/a/mnt"
read_epoch "gluster-epoch2" "$W/a/mnt"
read_epoch "hmmfs-epoch1" "$W/a/h"
read_epoch "hmmfs-epoch2" "$W/a/h"
echo 3 >/proc/sys/vm/drop_caches
read_epoch "hmmfs-epoch3-after-drop_caches" "$W/a/h"
write_run "gluster-write" "$W/a/mnt"
write_run "hmmfs-write" "$W/a/h"
"$HMMFSCTL" stats "$W/a/h" >"$OUT/stats-hmmfs-a.txt" 2>&1 || true

python3 - "$raw" "$RATE" >"$OUT/results.md" <<'PY'
import sys
rows = [l.split() for l in open(sys.argv[1])]
r = {name: (float(s), float(mib), int(b)) for name, s, mib, b in rows}
mbs = lambda n: r[n][1] * 1.048576 / r[n][0]
print(f"Link {sys.argv[2]} (tbf both ends); MB/s = 10^6 bytes per second.\n")
print("| run | MB/s | vs gluster direct | link MiB |")
print("|---|---:|---:|---:|")
for name, s, mib, b in rows:
    base = "gluster-write" if "write" in name else "gluster-epoch1"
    print(f"| {name} | {mbs(name):.0f} | {mbs(name) / mbs(base):.2f}x | {int(b) / 1048576:.0f} |")
PY
cat "$OUT/results.md"
