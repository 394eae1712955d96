#!/bin/bash
# tests/gluster/run.sh — hmmfs as the node-local cache in front of
# GlusterFS, on two "nodes" made here (tests/gluster/nodes.sh: network
# namespaces and a veth pair, a glusterd per node in its own mount
# namespace, a replica-2 volume, a coherent gluster client per node, and
# hmmfs over each client mount).  Checks:
#
#   1. close-to-open across nodes: writer on node A's hmmfs, reader on node
#      B's hmmfs (tests/gluster/c2o.py), without a pause and with one past
#      attr_timeout: 0 stale reads;
#   2. one node, the writer in BACKING (the gluster mount), the reader
#      through hmmfs: 0 stale reads;
#   3. gluster alone across nodes, for reference: 0 stale;
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
# GLUSTER_FSX_OPS (default 5000) or GLUSTER_FSX_SECONDS for the hmmfsx run
# (a long differential run: GLUSTER_FSX_OPS=1000000000
# GLUSTER_FSX_SECONDS=600), GLUSTER_KEEP=1 keeps the temp dir and logs.
# The nodes themselves: tests/gluster/nodes.sh.
set -u

here=$(cd "$(dirname "$0")" && pwd)
HMMFS=${HMMFS:-$here/../../build/hmmfs}
HMMFSX=${HMMFSX:-$(dirname "$HMMFS")/tests/hmmfsx}
nodes_name=gluster
# shellcheck source=tests/gluster/nodes.sh
. "$here/nodes.sh"
nodes_check || exit 77
command -v python3 >/dev/null || { nodes_say "not run: no python3" >&2; exit 77; }
passed=0 failed=0

# each check in the background and waited for, so a signal's trap runs at once
child=""
cleanup() {
	trap - EXIT INT TERM
	[ -n "$child" ] && kill "$child" 2>/dev/null
	nodes_down
}
trap cleanup EXIT
trap 'exit 130' INT TERM

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
		nodes_say "ok: $name ($(tail -1 "$W/out"))"
	else
		failed=$((failed + 1))
		nodes_say "FAILED: $name"
		sed 's/^/    /' "$W/out" | tail -20
	fi
}

nodes_up || exit 1

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
		"$HMMFSX" ${GLUSTER_FSX_SECONDS:+-t "$GLUSTER_FSX_SECONDS"} \
		-n "${GLUSTER_FSX_OPS:-5000}" -x zero -b "$W/a/mnt/fsx" "$W/a/h/fsx"
else
	nodes_say "FAILED: no $HMMFSX (make build/tests/hmmfsx)"
	failed=$((failed + 1))
fi

echo "gluster: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
