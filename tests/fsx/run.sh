#!/usr/bin/env bash
# tests/fsx/run.sh - run the hmmfsx data-integrity checker on real hmmfs mounts.
#
# usage: tests/fsx/run.sh HMMFSX_BIN [extra hmmfsx args]
#
# For every configuration (default options, -o nowriteback_cache, -o
# direct_io, then each entry of
# $HMMFSX_CONFIGS) and every seed (the fixed $HMMFSX_SEEDS plus one random
# seed, printed), it makes a fresh temp dir holding BACKING and MNT, starts
# "$HMMFS BACKING MNT -f -o OPTS" in the background, waits for the mount, runs
# hmmfsx on MNT with -b BACKING (so the files are checked in BACKING too),
# unmounts, and waits for the daemon to exit (kill -9 after a timeout).  A
# run fails when hmmfsx fails or times out, or when the daemon dies early,
# exits non-zero or logs a sanitizer report.  The mount and the daemon are
# cleaned up however the run ends, Ctrl-C included, since a leftover mount
# can hang the next run.  The last line is "fsx: N passed, M failed"; the
# exit status is 1 if any run failed (77 if FUSE is unavailable).
#
# Environment:
#   HMMFS           absolute path of the hmmfs daemon (required)
#   HMMFS_OPTS      extra -o options for every mount, comma-separated
#   HMMFSX_CONFIGS  extra configurations, separated by spaces, each one a
#                   comma-separated -o list: "nosplice clone_fd,threads=4";
#                   hmmfsx flags for that configuration only may follow a
#                   slash, comma-separated: "host_cache=256K/-M"
#   HMMFSX_SEEDS    fixed seeds (default "1 2")
#   HMMFSX_OPS      operations per run (default 20000)
#   HMMFSX_LONG     SECONDS: long mode; per configuration, one run of that
#                   many seconds with a random seed instead of the seed list
#   HMMFSX_TIMEOUT  seconds before a run is killed (default 300, long mode
#                   HMMFSX_LONG + 600)
#   HMMFSX_DROP_MS  hmmfsx -D: echo 2 > /proc/sys/vm/drop_caches every this
#                   many ms during each run, so the kernel forgets inodes
#                   under the checker (default 100; 0: off).  Not root:
#                   hmmfsx says so and runs without drops
#
# Examples (from the top of the tree, after make build/tests/hmmfsx):
#   HMMFS=$PWD/build/hmmfs tests/fsx/run.sh build/tests/hmmfsx
#   HMMFS=$PWD/build/hmmfs HMMFSX_LONG=7200 HMMFSX_CONFIGS=nowriteback_cache \
#       tests/fsx/run.sh build/tests/hmmfsx -j 2 -l 1m
set -u

usage() {
	awk 'NR < 3 { next } !/^#/ { exit } { sub(/^# ?/, ""); print }' "$0" >&2
	exit 2
}

die() {
	echo "fsx: $*" >&2
	exit 2
}

[ $# -ge 1 ] || usage
HMMFSX_BIN=$1
shift
[ -x "$HMMFSX_BIN" ] || die "$HMMFSX_BIN is not executable"
[ -n "${HMMFS:-}" ] || die "set HMMFS to the hmmfs daemon"
[ -x "$HMMFS" ] || die "HMMFS=$HMMFS is not executable"
if [ ! -c /dev/fuse ] || ! command -v fusermount3 >/dev/null; then
	echo "fsx: skipped: /dev/fuse or fusermount3 is missing"
	exit 77
fi

SEEDS=${HMMFSX_SEEDS:-1 2}
OPS=${HMMFSX_OPS:-20000}
DROP_MS=${HMMFSX_DROP_MS:-100}
LONG=${HMMFSX_LONG:-}
if [ -n "$LONG" ]; then
	TIMEOUT=${HMMFSX_TIMEOUT:-$((LONG + 600))}
else
	TIMEOUT=${HMMFSX_TIMEOUT:-300}
fi
MOUNT_WAIT_TENTHS=100	# 10 s for the mount to appear
EXIT_WAIT_TENTHS=100	# 10 s for the daemon to exit after unmount

work="" mnt="" daemon_pid="" checker_pid="" daemon_status=0
passed=0 failed=0
problems=()

log() {
	echo "fsx: $*"
}

random_seed() {
	od -An -N4 -tu4 /dev/urandom | tr -d ' '
}

# Comma-join the non-empty arguments.
join_opts() {
	local out="" o
	for o in "$@"; do
		[ -n "$o" ] && out=${out:+$out,}$o
	done
	printf '%s' "$out"
}

# mountpoint(1) fails on a FUSE mount whose daemon died, so read the table.
is_mounted() {
	MNT_ESCAPED=${mnt// /\\040} awk '
		$2 == ENVIRON["MNT_ESCAPED"] { found = 1 }
		END { exit !found }' /proc/self/mounts
}

wait_for_mount() {
	local i
	for ((i = 0; i < MOUNT_WAIT_TENTHS; i++)); do
		is_mounted && return 0
		daemon_alive || return 1
		sleep 0.1
	done
	return 1
}

# Wait up to $2 tenths of a second for process $1 to exit.
wait_for_exit() {
	local i
	for ((i = 0; i < $2; i++)); do
		kill -0 "$1" 2>/dev/null || return 0
		sleep 0.1
	done
	return 1
}

daemon_alive() {
	[ -n "$daemon_pid" ] && kill -0 "$daemon_pid" 2>/dev/null
}

# Killing the daemon aborts the FUSE connection: every request waiting on it
# fails, so nothing stays blocked on a stuck daemon.
kill_daemon() {
	[ -n "$daemon_pid" ] && kill -KILL "$daemon_pid" 2>/dev/null
}

# End hmmfsx and its timeout(1), which runs it in a process group of its own.
# A process blocked in a FUSE request the daemon already took ignores even
# SIGKILL until the connection is aborted.
stop_checker() {
	[ -n "$checker_pid" ] || return 0
	kill -TERM -- -"$checker_pid" "$checker_pid" 2>/dev/null
	if ! wait_for_exit "$checker_pid" 50; then
		log "hmmfsx is stuck; killing the daemon"
		kill_daemon
		kill -KILL -- -"$checker_pid" "$checker_pid" 2>/dev/null
	fi
	wait "$checker_pid" 2>/dev/null
	checker_pid=""
}

# True if the unmount $1 has finished and left the mount in place.
umount_failed() {
	[ -n "$1" ] && ! kill -0 "$1" 2>/dev/null && is_mounted
}

# Unmount (in the background: with a stuck daemon even umount can block on
# writeback) and wait for the daemon to exit.  If the unmount fails or the
# daemon lingers, kill the daemon and detach the mount lazily.  Sets
# daemon_status, 137 when the daemon had to be killed.
stop_daemon() {
	local umount_pid="" i
	daemon_status=0
	if is_mounted; then
		fusermount3 -u "$mnt" 2>/dev/null &
		umount_pid=$!
	fi
	for ((i = 0; i < EXIT_WAIT_TENTHS; i++)); do
		daemon_alive || break
		# The unmount failed (busy, or a stuck daemon): stop waiting.
		umount_failed "$umount_pid" && break
		sleep 0.1
	done
	if daemon_alive; then
		log "the daemon did not exit after the unmount; killing it"
		kill_daemon
	fi
	if [ -n "$daemon_pid" ]; then
		wait "$daemon_pid" 2>/dev/null
		daemon_status=$?
		daemon_pid=""
	fi
	[ -n "$umount_pid" ] && wait "$umount_pid"
	if is_mounted; then
		fusermount3 -u -z "$mnt" 2>/dev/null || umount -l -c "$mnt"
	fi
}

remove_work() {
	if is_mounted; then
		log "WARNING: $mnt is still mounted; leaving $work"
	else
		rm -rf --one-file-system "$work"
	fi
	work="" mnt=""
}

cleanup() {
	[ -n "$work" ] || return 0
	stop_checker
	stop_daemon
	remove_work
}

on_signal() {
	log "interrupted; cleaning up"
	cleanup
	exit "$1"
}

trap cleanup EXIT
trap 'on_signal 130' INT
trap 'on_signal 143' TERM

start_daemon() {
	local opts=$1
	"$HMMFS" "$work/backing" "$mnt" -f ${opts:+-o "$opts"} \
		>"$work/daemon.log" 2>&1 &
	daemon_pid=$!
	wait_for_mount
}

# Run hmmfsx in the background so that a signal reaches the traps at once.
run_checker() {
	timeout -k 10 "$TIMEOUT" "$HMMFSX_BIN" "$@" -b "$work/backing" "$mnt" &
	checker_pid=$!
	wait "$checker_pid"
	local rc=$?
	checker_pid=""
	return $rc
}

# Add to problems[] what went wrong with a checker that exited with $1.
judge_checker() {
	if [ "$1" -eq 124 ]; then
		problems+=("hmmfsx timed out after $TIMEOUT s")
	elif [ "$1" -eq 137 ]; then
		problems+=("hmmfsx was killed (timed out after $TIMEOUT s?)")
	elif [ "$1" -ne 0 ]; then
		problems+=("hmmfsx exited with status $1")
	fi
	if ! daemon_alive; then
		problems+=("the daemon died during the run")
	fi
}

judge_daemon() {
	if [ "$daemon_status" -ne 0 ]; then
		problems+=("the daemon exited with status $daemon_status")
	fi
	if grep -Eq 'Sanitizer|runtime error:' "$work/daemon.log"; then
		problems+=("the daemon log has a sanitizer report")
	fi
}

report() {
	local opts=$1 start=$2 label=${1:-default}
	shift 2
	if [ ${#problems[@]} -eq 0 ]; then
		passed=$((passed + 1))
		log "[$label] PASS ($((SECONDS - start)) s)"
		return
	fi
	failed=$((failed + 1))
	printf 'fsx: %s\n' "${problems[@]}"
	if [ -s "$work/daemon.log" ]; then
		echo "---- daemon log (last 40 lines) ----"
		tail -n 40 "$work/daemon.log"
		echo "----"
	fi
	log "[$label] FAIL ($((SECONDS - start)) s): hmmfs BACKING MNT" \
		"${opts:+-o $opts }and hmmfsx $* -b BACKING MNT"
}

# One mount, one hmmfsx run.  $1: -o options (may be empty), then hmmfsx args.
run_one() {
	local opts=$1 label=${1:-default} start=$SECONDS
	shift
	problems=()
	work=$(mktemp -d "${TMPDIR:-/tmp}/hmmfs-fsx.XXXXXX") || exit 2
	mnt=$work/mnt
	mkdir "$work/backing" "$mnt"
	log "[$label] hmmfsx $*"
	if start_daemon "$opts"; then
		run_checker "$@"
		judge_checker $?
	else
		problems+=("the mount did not appear within 10 s")
	fi
	stop_daemon
	judge_daemon
	report "$opts" "$start" "$@"
	remove_work
}

configs=("" nowriteback_cache direct_io)
# shellcheck disable=SC2206
configs+=(${HMMFSX_CONFIGS:-})

for config in "${configs[@]}"; do
	extra=()
	if [[ $config == */* ]]; then
		IFS=, read -r -a extra <<<"${config#*/}"
		config=${config%%/*}
	fi
	opts=$(join_opts "$config" "${HMMFS_OPTS:-}")
	if [ -n "$LONG" ]; then
		# no -q: hmmfsx prints its progress every minute
		run_one "$opts" -s "$(random_seed)" -t "$LONG" -D "$DROP_MS" "${extra[@]}" "$@"
		continue
	fi
	for seed in $SEEDS $(random_seed); do
		run_one "$opts" -q -s "$seed" -n "$OPS" -D "$DROP_MS" "${extra[@]}" "$@"
	done
done

log "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
