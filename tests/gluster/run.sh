#!/bin/bash
# tests/gluster/run.sh — hmmfs as the node-local cache in front of
# GlusterFS, on two "nodes" made here: two network namespaces joined by a
# veth pair, addresses inside them only (10.231.X.1 and .2; nothing else is
# ever reached), one glusterd per namespace, each in a private mount
# namespace with its own /var/lib/glusterd, /run and /var/log/glusterfs
# under a temp dir (the machine's own gluster state is never touched), a
# replica-2 volume with one brick per node, a gluster client per node made
# coherent (attribute, entry and negative timeouts 0, no fopen-keep-cache,
# the volume's client-side performance translators off), and hmmfs over
# each client mount.  Checks:
#
#   1. close-to-open across nodes: writer on node A's hmmfs, reader on node
#      B's hmmfs (tests/gluster/c2o.py), without a pause and with one past
#      attr_timeout: 0 stale reads;
#   2. one node, the writer in BACKING (the gluster mount), the reader
#      through hmmfs: 0 stale reads;
#   3. the same through gluster alone, for reference: 0 stale;
#   4. hmmfsx on node A's hmmfs, checked against its model and against
#      the files on gluster (-b), with gluster's two known gaps left out
#      (RENAME_NOREPLACE/EXCHANGE and FALLOC_FL_ZERO_RANGE; see
#      docs/scale-out.md).
#
# Everything it made is torn down on exit, failure or signal: the mounts,
# then every process in its two network namespaces (the glusterds, their
# bricks and self-heal daemons, the clients), then the namespaces.  Exit
# 0 when all passed, 1 if one failed, 77 with the reason when it cannot
# run (not root, no namespaces, no gluster: scripts/deps.sh installs
# glusterfs-server and glusterfs-client).  About a minute.
#
# Environment: HMMFS (default build/hmmfs), HMMFSX (build/tests/hmmfsx),
# GLUSTER_KEEP=1 keeps the temp dir and logs.
set -u

here=$(cd "$(dirname "$0")" && pwd)
HMMFS=${HMMFS:-$here/../../build/hmmfs}
HMMFSX=${HMMFSX:-$(dirname "$HMMFS")/tests/hmmfsx}
skip() { echo "gluster: not run: $*" >&2; exit 77; }

[ "$(id -u)" = 0 ] || skip "needs root (network and mount namespaces)"
[ -c /dev/fuse ] || skip "no /dev/fuse"
for t in ip nsenter unshare glusterd gluster glusterfs python3 fusermount3; do
	command -v "$t" >/dev/null ||
		skip "$t not found (scripts/deps.sh installs glusterfs-server and glusterfs-client)"
done
[ -x "$HMMFS" ] || skip "no $HMMFS (make first)"
tag=hg$$
ip netns add "${tag}a" 2>/dev/null || skip "cannot make a network namespace"
ip netns add "${tag}b" || { ip netns del "${tag}a"; skip "cannot make a network namespace"; }

W=$(mktemp -d /tmp/hmmfs-gluster.XXXXXX)
net=10.231.$((RANDOM % 200 + 20))
ip_a=$net.1 ip_b=$net.2
passed=0 failed=0

say() { echo "gluster: $*"; }
in_ns() { local n=$1; shift; nsenter --net="/run/netns/$tag$n" "$@"; }
gl() { local n=$1; shift; in_ns "$n" gluster --mode=script \
	--glusterd-sock="$W/$n/run/glusterd.socket" "$@"; }

cleanup() {
	trap - EXIT INT TERM
	[ -n "${child:-}" ] && kill "$child" 2>/dev/null
	for m in "$W"/a/h "$W"/b/h "$W"/a/mnt "$W"/b/mnt; do
		mountpoint -q "$m" 2>/dev/null && { fusermount3 -u "$m" 2>/dev/null ||
						    umount -l "$m"; }
	done
	for n in a b; do
		pids=$(ip netns pids "$tag$n" 2>/dev/null)
		[ -n "$pids" ] && kill $pids 2>/dev/null
	done
	for _ in $(seq 50); do
		[ -z "$(ip netns pids "${tag}a" 2>/dev/null)$(ip netns pids "${tag}b" 2>/dev/null)" ] &&
			break
		sleep 0.1
	done
	for n in a b; do
		pids=$(ip netns pids "$tag$n" 2>/dev/null)
		[ -n "$pids" ] && kill -9 $pids 2>/dev/null
		ip netns del "$tag$n" 2>/dev/null
	done
	pkill -f "^$HMMFS $W/" 2>/dev/null
	if [ "${GLUSTER_KEEP:-0}" = 1 ]; then
		say "kept $W"
	else
		rm -rf "$W"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

die() { say "setup failed: $*"; for f in "$W"/*/*.log "$W"/*/log/*.log; do
	[ -f "$f" ] && { echo "--- $f"; tail -5 "$f"; }; done; exit 1; }

# poll CMD... for up to 20 s
wait_for() { for _ in $(seq 200); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
	     return 1; }

setup_net() {
	ip link add "${tag}va" type veth peer name "${tag}vb" &&
	ip link set "${tag}va" netns "${tag}a" && ip link set "${tag}vb" netns "${tag}b" &&
	ip -n "${tag}a" addr add "$ip_a/24" dev "${tag}va" &&
	ip -n "${tag}b" addr add "$ip_b/24" dev "${tag}vb" &&
	for n in a b; do
		ip -n "$tag$n" link set lo up && ip -n "$tag$n" link set "${tag}v$n" up || return 1
	done
}

# glusterd of node $1 in its namespaces, its state under $W/$1
start_glusterd() {
	local d=$W/$1
	mkdir -p "$d/lib" "$d/run" "$d/log" "$d/brick" "$d/mnt" "$d/h"
	# the package's defaults only, never the machine's peers or volumes
	for x in groups hooks; do
		[ -d "/var/lib/glusterd/$x" ] && cp -a "/var/lib/glusterd/$x" "$d/lib/"
	done
	in_ns "$1" unshare -m --propagation private sh -c "
		mount --bind '$d/lib' /var/lib/glusterd &&
		mount --bind '$d/run' /run &&
		mount --bind '$d/log' /var/log/glusterfs &&
		exec glusterd -N" >"$d/glusterd.out" 2>&1 &
	wait_for test -S "$d/run/glusterd.socket"
}

peer_connected() { gl a peer status | grep -q "Peer in Cluster (Connected)"; }

setup_volume() {
	wait_for gl a peer probe "$ip_b" || return 1
	wait_for peer_connected || return 1
	gl a volume create hv replica 2 "$ip_a:$W/a/brick" "$ip_b:$W/b/brick" force \
		>"$W/gluster.out" &&
	gl a volume start hv >>"$W/gluster.out" || return 1
	for o in quick-read io-cache read-ahead stat-prefetch open-behind readdir-ahead \
		 write-behind; do
		gl a volume set hv "performance.$o" off >/dev/null || return 1
	done
}

# the gluster client of node $1, coherent, its mount visible here
mount_client() {
	local ip=$ip_a
	[ "$1" = b ] && ip=$ip_b
	in_ns "$1" glusterfs --volfile-server="$ip" --volfile-id=hv \
		--log-file="$W/$1/client.log" --attribute-timeout=0 --entry-timeout=0 \
		--negative-timeout=0 --fopen-keep-cache=off "$W/$1/mnt" &&
	wait_for grep -q " $W/$1/mnt fuse.glusterfs " /proc/self/mounts
}

# in the background and waited for, so that a signal's trap runs at once
child=""
check() {	# NAME, then the command
	local name=$1 rc
	shift
	"$@" >"$W/out" 2>&1 &
	child=$!
	wait "$child"
	rc=$?
	child=""
	if [ "$rc" -eq 0 ]; then
		passed=$((passed + 1))
		say "ok: $name ($(tail -1 "$W/out"))"
	else
		failed=$((failed + 1))
		say "FAILED: $name"
		sed 's/^/    /' "$W/out" | tail -20
	fi
}

setup_net || die "veth pair"
start_glusterd a || die "glusterd on node a"
start_glusterd b || die "glusterd on node b"
setup_volume || die "the replica-2 volume"
mount_client a || die "the gluster client on node a"
mount_client b || die "the gluster client on node b"
for n in a b; do
	"$HMMFS" "$W/$n/mnt" "$W/$n/h" 2>"$W/$n/hmmfs.err" || die "hmmfs on node $n"
done
say "two nodes up ($ip_a, $ip_b), hmmfs over each gluster client"

check "close-to-open across nodes" python3 "$here/c2o.py" "$W/a/h" "$W/b/h"
check "close-to-open across nodes, past attr_timeout" \
	python3 "$here/c2o.py" "$W/a/h" "$W/b/h" 1.2
check "writer in BACKING, reader through hmmfs" \
	python3 "$here/c2o.py" "$W/a/mnt" "$W/a/h" 1.2
check "gluster alone, across nodes (reference)" \
	python3 "$here/c2o.py" "$W/a/mnt" "$W/b/mnt"
if [ -x "$HMMFSX" ]; then
	mkdir -p "$W/a/h/fsx"
	check "hmmfsx over gluster, against its model and the gluster files" \
		"$HMMFSX" -n 5000 -x zero -b "$W/a/mnt/fsx" "$W/a/h/fsx"
else
	say "FAILED: no $HMMFSX (make build/tests/hmmfsx)"
	failed=$((failed + 1))
fi

echo "gluster: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
