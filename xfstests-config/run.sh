#!/bin/bash
# Run xfstests on hmmfs (or, for comparison, on libfuse's passthrough_ll).
#
#   XFSTESTS_DIR=/path/to/xfstests xfstests-config/run.sh [-f FS] [CHECK ARGS...]
#
#   -f FS        hmmfs (default, or $HMMFS_XFS_FS) or passthrough_ll
#   CHECK ARGS   passed to xfstests' ./check; default "-g quick".
#                Examples: generic/001 generic/013   |   -g auto -x dangerous
#
# Environment (see local.config for the rest):
#   XFSTESTS_DIR        a built xfstests checkout (required)
#   HMMFS_BIN           absolute path of hmmfs (default: the installed one)
#   HMMFS_XFS_PTLL_BIN  absolute path of passthrough_ll (for -f passthrough_ll)
#   HMMFS_XFS_BASE      state directory (default /var/tmp/hmmfs-xfstests):
#                       mount points, backing directories, results, mount.log
#   HMMFS_XFS_TIMEOUT   give up on the whole run after this many seconds
#   HMMFS_XFS_IMAGE     size of the XFS image made for each backing
#                       directory (default 8G, sparse); 0: plain directories
#                       on the disk of HMMFS_XFS_BASE (the enospc tests
#                       then fill it)
#
# Before the run, the backing directories and this file system's results
# directory are emptied.  By default each backing directory is the root
# of an XFS image of its own (DIR.img beside it, loop-mounted on DIR and
# removed after the run; hmmfs's node ids then persist across a remount):
# the enospc tests (generic/103 fills all but 512 KiB) fill the image, not
# the disk, and XFS holds the extended attributes generic/020 expects of
# FSTYP=fuse (1,000 of them, 64 KiB values), which ext4's single xattr
# block does not.  After it, every mount under $HMMFS_XFS_BASE/mnt is
# unmounted and daemons that the mount wrapper started and that are still
# running are stopped.  It prints the pass/fail/notrun counts and exits 0
# only if no test failed.

set -u

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)

usage() { sed -n '2,14s/^# \{0,1\}//p' "$0"; exit 2; }

while [ $# -gt 0 ]; do
	case $1 in
	-f)	[ $# -ge 2 ] || usage; HMMFS_XFS_FS=$2; shift 2 ;;
	-h|--help) usage ;;
	*)	break ;;
	esac
done
[ $# -gt 0 ] || set -- -g quick

die() { echo "run.sh: $*" >&2; exit 2; }

[ "$(id -u)" = 0 ] || die "xfstests must run as root"
[ -n "${XFSTESTS_DIR:-}" ] || die "set XFSTESTS_DIR to a built xfstests checkout"
XFSTESTS_DIR=$(cd "$XFSTESTS_DIR" 2>/dev/null && pwd -P) || die "no directory XFSTESTS_DIR"
[ -x "$XFSTESTS_DIR/check" ] || die "$XFSTESTS_DIR has no ./check"
[ -x "$XFSTESTS_DIR/ltp/fsstress" ] || die "$XFSTESTS_DIR is not built (run make there)"
[ -c /dev/fuse ] || die "/dev/fuse is missing"

export HMMFS_XFS_FS=${HMMFS_XFS_FS:-hmmfs}
export HMMFS_XFS_BASE=${HMMFS_XFS_BASE:-/var/tmp/hmmfs-xfstests}
export RESULT_BASE=$HMMFS_XFS_BASE/results/$HMMFS_XFS_FS

case $HMMFS_XFS_FS in
hmmfs)
	if [ -z "${HMMFS_BIN:-}" ]; then
		for b in /usr/local/bin/hmmfs /usr/bin/hmmfs /usr/sbin/hmmfs /usr/local/sbin/hmmfs; do
			[ -x "$b" ] && { HMMFS_BIN=$b; break; }
		done
	fi
	[ -n "${HMMFS_BIN:-}" ] || die "hmmfs is not installed: make install, or set HMMFS_BIN"
	case $HMMFS_BIN in /*) ;; *) HMMFS_BIN=$(cd "$(dirname "$HMMFS_BIN")" && pwd -P)/$(basename "$HMMFS_BIN") ;; esac
	[ -x "$HMMFS_BIN" ] || die "$HMMFS_BIN is not executable"
	export HMMFS_BIN
	daemon=$HMMFS_BIN ;;
passthrough_ll)
	[ -n "${HMMFS_XFS_PTLL_BIN:-}" ] || die "set HMMFS_XFS_PTLL_BIN to libfuse's passthrough_ll"
	case $HMMFS_XFS_PTLL_BIN in /*) ;; *) HMMFS_XFS_PTLL_BIN=$(cd "$(dirname "$HMMFS_XFS_PTLL_BIN")" && pwd -P)/$(basename "$HMMFS_XFS_PTLL_BIN") ;; esac
	[ -x "$HMMFS_XFS_PTLL_BIN" ] || die "$HMMFS_XFS_PTLL_BIN is not executable"
	export HMMFS_XFS_PTLL_BIN
	daemon=$HMMFS_XFS_PTLL_BIN ;;
*)	die "unknown file system '$HMMFS_XFS_FS' (hmmfs or passthrough_ll)" ;;
esac

# Backing directories named by the caller are used as they are.
own_backing=${HMMFS_XFS_TEST_BACKING:-}${HMMFS_XFS_SCRATCH_BACKING:-}
image_size=${HMMFS_XFS_IMAGE:-8G}
[ -z "$own_backing" ] || image_size=0

# The same settings xfstests will see.
config=$here/local.config
# shellcheck source=local.config
. "$config" || die "cannot read $config"
export HOST_OPTIONS=$config

# Unmount everything under our mount directory, innermost first.  A mount
# that will not go (a hung daemon) has its FUSE connection aborted first.
unmount_all()
{
	local mnt dev minor i
	for i in 1 2 3; do
		mnt=$(awk -v top="$HMMFS_XFS_BASE/mnt" \
			'index($5, top "/") == 1 || $5 == top { print length($5), $5 }' \
			/proc/self/mountinfo | sort -rn | awk 'NR == 1 { print $2 }')
		[ -n "$mnt" ] || return 0
		while [ -n "$mnt" ]; do
			if ! timeout 30 umount "$mnt" 2>/dev/null; then
				dev=$(awk -v m="$mnt" '$5 == m { print $3 }' /proc/self/mountinfo | tail -1)
				minor=${dev#*:}
				case $dev in
				0:*) [ -w "/sys/fs/fuse/connections/$minor/abort" ] &&
					echo 1 >"/sys/fs/fuse/connections/$minor/abort" ;;
				esac
				umount "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null
			fi
			mnt=$(awk -v top="$HMMFS_XFS_BASE/mnt" \
				'index($5, top "/") == 1 || $5 == top { print length($5), $5 }' \
				/proc/self/mountinfo | sort -rn | awk 'NR == 1 { print $2 }')
		done
	done
}

# Daemons started by mount.hmmfs for our backing directories: the first
# argument is $daemon and one argument names one of our backing directories.
our_daemons()
{
	local p args
	for p in /proc/[0-9]*; do
		# quiet: the process may exit at any point of this
		{ args=$(tr '\0' '\n' <"$p/cmdline"); } 2>/dev/null || continue
		[ "$(printf '%s\n' "$args" | head -1)" = "$daemon" ] || continue
		if printf '%s\n' "$args" | grep -qE "(^|source=)($HMMFS_XFS_TEST_BACKING|$HMMFS_XFS_SCRATCH_BACKING)(,|\$)"; then
			echo "${p#/proc/}"
		fi
	done
}

stop_daemons()
{
	local pids i
	for i in 1 2 3 4 5 6 7 8 9 10; do
		pids=$(our_daemons)
		[ -n "$pids" ] || return 0
		sleep 1
	done
	echo "run.sh: daemons still running after unmount: $pids; stopping them" >&2
	kill $pids 2>/dev/null
	sleep 2
	pids=$(our_daemons)
	[ -z "$pids" ] || kill -9 $pids 2>/dev/null
}

# One image per backing directory, mounted on it: BACKING is then the root
# of its file system, where hmmfs's node ids persist across a remount
# (file handles: generic/477, 777).
images="$HMMFS_XFS_TEST_BACKING $HMMFS_XFS_SCRATCH_BACKING"

image_down()
{
	local d
	[ "$image_size" != 0 ] || return 0
	for d in $images; do
		if mountpoint -q "$d"; then
			umount "$d" 2>/dev/null || umount -l "$d"
		fi
		rm -f "$d.img"
	done
}

# A fresh XFS image on each backing directory.
image_up()
{
	local d
	[ "$image_size" != 0 ] || return 0
	command -v mkfs.xfs >/dev/null ||
		die "mkfs.xfs not found (apt install xfsprogs), or set HMMFS_XFS_IMAGE=0"
	image_down
	for d in $images; do
		mkdir -p "$d"
		truncate -s "$image_size" "$d.img" || die "cannot make $d.img"
		mkfs.xfs -q -f "$d.img" >/dev/null || die "mkfs.xfs $d.img failed"
		mount -o loop "$d.img" "$d" ||
			die "cannot loop-mount $d.img (no loop devices?): set HMMFS_XFS_IMAGE=0"
	done
}

cleanup()
{
	unmount_all
	stop_daemons
}

wipe()
{
	local d=$1
	case $d in ''|/) die "refusing to empty '$d'" ;; esac
	rm -rf "$d"
	mkdir -p "$d"
}

# A clean start: nothing mounted, empty backing directories and results.
cleanup
if [ "$image_size" = 0 ]; then
	wipe "$HMMFS_XFS_TEST_BACKING"
	wipe "$HMMFS_XFS_SCRATCH_BACKING"
else
	image_up
fi
wipe "$RESULT_BASE"
: >"$HMMFS_XFS_BASE/mount.log"

trap 'cleanup; image_down; exit 130' INT TERM

out=$RESULT_BASE/check.out
echo "== xfstests on $HMMFS_XFS_FS ($daemon): $*"
echo "== results in $RESULT_BASE"
(
	cd "$XFSTESTS_DIR" || exit 2
	if [ -n "${HMMFS_XFS_TIMEOUT:-}" ]; then
		exec timeout --foreground -k 30 "$HMMFS_XFS_TIMEOUT" ./check "$@"
	else
		exec ./check "$@"
	fi
) 2>&1 | tee "$out"
rc=${PIPESTATUS[0]}

trap - INT TERM
cleanup
image_down

# Counts, from the last summary xfstests wrote to check.log.
log=$RESULT_BASE/check.log
last() { [ -f "$log" ] && grep "^$1" "$log" | tail -1 | sed "s/^$1 *//"; }
ran=$(last "Ran:")
notrun=$(last "Not run:")
failed=$(last "Failures:")
count() { set -- $1; echo $#; }
n_ran=$(count "$ran")
n_notrun=$(count "$notrun")
n_failed=$(count "$failed")
n_passed=$((n_ran - n_notrun - n_failed))

echo
echo "== $HMMFS_XFS_FS: passed $n_passed, failed $n_failed, notrun $n_notrun (ran $n_ran)"
[ -z "$failed" ] || echo "== failures: $failed"
echo "== details: $RESULT_BASE/<test>.out.bad, .full; mount log $HMMFS_XFS_BASE/mount.log"
if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
	echo "== the run timed out after ${HMMFS_XFS_TIMEOUT}s"
	exit 1
fi
[ "$n_ran" -gt 0 ] || { echo "== no test ran (check exited $rc)"; exit 1; }
[ "$n_failed" = 0 ]
