# tests/gluster/nodes.sh — two GlusterFS "nodes" on this machine, for
# tests/gluster/run.sh and bench/gluster.sh (sourced; bash).
#
# nodes_up makes two network namespaces joined by a veth pair, with
# addresses inside them only ($ip_a, $ip_b in 10.231.X.0/24; nothing else
# is ever reached); one glusterd per namespace, each in a private mount
# namespace with its own /var/lib/glusterd, /run and /var/log/glusterfs
# under $W (the machine's own gluster state is never touched); a
# replica-2 volume with one brick per node, the client-side performance
# translators off; a coherent gluster client per node (attribute, entry
# and negative timeouts 0, no fopen-keep-cache) on $W/{a,b}/mnt, visible
# here (NODES_COHERENT=0: gluster's default client and translators
# instead); and hmmfs over each on $W/{a,b}/h with $HMMFS_NODE_OPTS.
# nodes_down undoes all of it: the mounts, then every process in the two
# network namespaces (glusterds, bricks, self-heal daemons, clients),
# then the namespaces and $W.  The caller sets $HMMFS and a trap that
# calls nodes_down; nodes_check returns 77 with the reason on stderr when
# this machine cannot do it.

nodes_say() { echo "${nodes_name:-gluster}: $*"; }

# Can this machine make the nodes?  0, or 77 with the reason said.
nodes_check() {
	local t
	[ "$(id -u)" = 0 ] || { nodes_say "not run: needs root (namespaces)" >&2; return 77; }
	[ -c /dev/fuse ] || { nodes_say "not run: no /dev/fuse" >&2; return 77; }
	for t in ip tc nsenter unshare glusterd gluster glusterfs fusermount3; do
		command -v "$t" >/dev/null || {
			nodes_say "not run: $t not found (scripts/deps.sh installs" \
				  "glusterfs-server, glusterfs-client and iproute2)" >&2
			return 77
		}
	done
	[ -x "$HMMFS" ] || { nodes_say "not run: no $HMMFS (make first)" >&2; return 77; }
	return 0
}

in_ns() { local n=$1; shift; nsenter --net="/run/netns/$tag$n" "$@"; }
gl() { local n=$1; shift; in_ns "$n" gluster --mode=script \
	--glusterd-sock="$W/$n/run/glusterd.socket" "$@"; }

# poll CMD... for up to 20 s
nodes_wait_for() {
	for _ in $(seq 200); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
	return 1
}

nodes_net() {
	ip netns add "${tag}a" && ip netns add "${tag}b" &&
	ip link add "${tag}va" type veth peer name "${tag}vb" &&
	ip link set "${tag}va" netns "${tag}a" && ip link set "${tag}vb" netns "${tag}b" &&
	ip -n "${tag}a" addr add "$ip_a/24" dev "${tag}va" &&
	ip -n "${tag}b" addr add "$ip_b/24" dev "${tag}vb" &&
	for n in a b; do
		ip -n "$tag$n" link set lo up && ip -n "$tag$n" link set "${tag}v$n" up || return 1
	done
}

# glusterd of node $1 in its namespaces, its state under $W/$1
nodes_glusterd() {
	local d=$W/$1 x
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
	nodes_wait_for test -S "$d/run/glusterd.socket"
}

nodes_peer_connected() { gl a peer status | grep -q "Peer in Cluster (Connected)"; }

nodes_volume() {
	local o
	nodes_wait_for gl a peer probe "$ip_b" || return 1
	nodes_wait_for nodes_peer_connected || return 1
	gl a volume create hv replica 2 "$ip_a:$W/a/brick" "$ip_b:$W/b/brick" force \
		>"$W/gluster.out" &&
	gl a volume start hv >>"$W/gluster.out" || return 1
	[ "${NODES_COHERENT:-1}" = 1 ] || return 0
	for o in quick-read io-cache read-ahead stat-prefetch open-behind readdir-ahead \
		 write-behind; do
		gl a volume set hv "performance.$o" off >/dev/null || return 1
	done
}

# the gluster client of node $1, coherent, its mount visible here
nodes_client() {
	local ip=$ip_a
	[ "$1" = b ] && ip=$ip_b
	# shellcheck disable=SC2046
	in_ns "$1" glusterfs --volfile-server="$ip" --volfile-id=hv \
		--log-file="$W/$1/client.log" $([ "${NODES_COHERENT:-1}" = 1 ] &&
		echo --attribute-timeout=0 --entry-timeout=0 --negative-timeout=0 \
		     --fopen-keep-cache=off) "$W/$1/mnt" &&
	nodes_wait_for grep -q " $W/$1/mnt fuse.glusterfs " /proc/self/mounts
}

nodes_fail() {
	local f
	nodes_say "setup failed: $*"
	for f in "$W"/*/*.log "$W"/*/log/*.log; do
		[ -f "$f" ] && { echo "--- $f"; tail -5 "$f"; }
	done
	return 1
}

# Everything up; 0, or 1 with what failed said.
nodes_up() {
	tag=hg$$
	W=$(mktemp -d /tmp/hmmfs-gluster.XXXXXX) || return 1
	local net=10.231.$((RANDOM % 200 + 20)) n
	ip_a=$net.1 ip_b=$net.2
	nodes_net || { nodes_fail "network namespaces and the veth pair"; return 1; }
	nodes_glusterd a || { nodes_fail "glusterd on node a"; return 1; }
	nodes_glusterd b || { nodes_fail "glusterd on node b"; return 1; }
	nodes_volume || { nodes_fail "the replica-2 volume"; return 1; }
	for n in a b; do
		nodes_client "$n" || { nodes_fail "the gluster client on node $n"; return 1; }
		"$HMMFS" "$W/$n/mnt" "$W/$n/h" ${HMMFS_NODE_OPTS:+-o "$HMMFS_NODE_OPTS"} \
			2>"$W/$n/hmmfs.err" || { nodes_fail "hmmfs on node $n"; return 1; }
	done
	nodes_say "two nodes up ($ip_a, $ip_b), hmmfs over each gluster client"
}

nodes_down() {
	local - m n pids
	set +e	# under a caller's set -e too: every step runs
	[ -n "${W:-}" ] || return 0
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
		nodes_say "kept $W"
	else
		rm -rf "$W"
	fi
	W=""
}
