# shellcheck shell=bash disable=SC2034,SC2154
# bench/lib.sh — what the benchmarks besides run.sh share: the
# three targets (native, passthrough_ll, hmmfs) mounted one at a time on
# one mount point, the tools they need, the daemon's descriptors and RSS,
# hmmfs's counters, and the clean-up.  Sourced, not run.
#
# The caller sets: top (the source tree), name (for messages), base (its
# temporary directory, made by bench_init), M (the mount point).  It may
# register more clean-up with bench_on_exit.
#
# Like bench/run.sh, passthrough_ll is libfuse's example, compiled here
# from libfuse3-dev's examples with the same flags; without it the
# comparison is the point of these benchmarks, so they refuse (exit 77).

hmmfs=${HMMFS:-$top/build/hmmfs}
hmmfsctl=${HMMFSCTL:-$top/build/hmmfsctl}
pid=""		# the running daemon, if any
exit_hooks=""

say() { printf '%s: %s\n' "$name" "$*" >&2; }
die() { say "$*"; exit 1; }
skip() { say "not run: $*"; exit 77; }

bench_on_exit() { exit_hooks="$exit_hooks $1"; }

bench_cleanup() {
	local rc=$? h
	trap - EXIT INT TERM
	if [ -n "${M:-}" ] && mountpoint -q "$M" 2>/dev/null; then
		fusermount3 -u "$M" 2>/dev/null || umount -l "$M" || true
	fi
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	for h in $exit_hooks; do "$h" || true; done
	[ -n "${base:-}" ] && rm -rf --one-file-system "$base"
	exit "$rc"
}

# bench_init: check what is needed, make $base under BENCH_DIR (a real
# disk), build passthrough_ll (unless bench_no_ptll=1) and bench/filetree.c
# into it.
bench_init() {
	local t
	[ "$(id -u)" -eq 0 ] || skip "needs root (drop_caches, FUSE mounts)"
	[ -c /dev/fuse ] || skip "no /dev/fuse"
	[ -w /proc/sys/vm/drop_caches ] || skip "cannot write /proc/sys/vm/drop_caches"
	[ -x "$hmmfs" ] && [ -x "$hmmfsctl" ] || die "build hmmfs first (make)"
	for t in python3 fusermount3 cc pkg-config; do
		command -v "$t" >/dev/null || die "$t not found: run scripts/deps.sh"
	done
	base=$(mktemp -d "${BENCH_DIR:-/var/tmp}/hmmfs-$name.XXXXXX")
	trap bench_cleanup EXIT
	trap 'exit 130' INT TERM
	[ "$(stat -f -c %T "$base")" = tmpfs ] && die "BENCH_DIR is on tmpfs; use a real disk"
	M=$base/mnt
	mkdir -p "$M"
	[ "${bench_no_ptll:-0}" = 1 ] || bench_build_ptll
	cc -O2 -Wall -Wextra -pthread "$top/bench/filetree.c" -o "$base/filetree" ||
		die "bench/filetree.c did not build"
	filetree=$base/filetree
}

# bench_build_ptll: $base/passthrough_ll from libfuse3-dev's examples.
bench_build_ptll() {
	local d src=""
	for d in /usr/share/doc/libfuse3-dev/examples /usr/share/doc/libfuse3-dev/example \
		 /usr/share/doc/fuse3/examples; do
		[ -f "$d/passthrough_ll.c" ] && { src=$d; break; }
	done
	[ -n "$src" ] || skip "passthrough_ll.c not found in libfuse3-dev's examples (apt-get install libfuse3-dev)"
	# shellcheck disable=SC2046
	cc -O2 -DHAVE_FALLOCATE -DHAVE_POSIX_FALLOCATE -DHAVE_COPY_FILE_RANGE \
		-I"$src" "$src/passthrough_ll.c" -o "$base/passthrough_ll" \
		$(pkg-config --cflags --libs fuse3) -lpthread 2>"$base/ptll-build.log" ||
		skip "passthrough_ll did not build: $(tail -n 1 "$base/ptll-build.log")"
}

# machine_line: one line saying where and what ran.
# results_init: a fresh $RESULTS with its raw/ folder ($RAW), the daemons'
# log copied there on exit; sets machine, t_start and failed for the report.
results_init() {
	rm -rf "$RESULTS"
	RAW=$RESULTS/raw
	mkdir -p "$RAW"
	bench_on_exit keep_logs
	machine=$(machine_line)
	t_start=$(date +%s)
	failed=0
}

keep_logs() { cp "$base/daemon.log" "$RAW/daemon.log" 2>/dev/null; }

machine_line() {
	local cpu mem os rev fusever
	cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
	mem=$(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo)
	os=$(. /etc/os-release && echo "$PRETTY_NAME")
	rev=$(git -C "$top" describe --always --dirty 2>/dev/null || echo unknown)
	fusever=$(dpkg-query -W -f='${Version}' libfuse3-dev 2>/dev/null || echo "?")
	echo "machine: $(nproc) cores ($cpu), $mem RAM, $os, kernel $(uname -r);" \
		"BACKING on $(df -T "$base" | awk 'NR == 2 {print $2}') under ${BENCH_DIR:-/var/tmp};" \
		"libfuse3-dev $fusever, hmmfs $rev; descriptor limit $(ulimit -n) (soft), $(ulimit -Hn) (hard);" \
		"load average $(cut -d' ' -f1-3 /proc/loadavg) at the start; $(date '+%F %H:%M')"
}

# mount_target TARGET BACKING [HMMFS_OPTS]: start TARGET's daemon in the
# foreground (so $pid is the daemon) and wait for the mount.  Sets T, the
# directory to work in.  native: T=BACKING, no daemon.
mount_target() {
	local target=$1 b=$2 opts=${3:-}
	case $target in
	native) T=$b; return 0 ;;
	passthrough_ll)
		# PTLL_NOFILE: its descriptor limit (it holds one per inode)
		${PTLL_NOFILE:+prlimit --nofile="$PTLL_NOFILE:$PTLL_NOFILE"} \
			"$base/passthrough_ll" -f -o "source=$b" "$M" 2>>"$base/daemon.log" & ;;
	*) "$hmmfs" "$b" "$M" -f ${opts:+-o "$opts"} 2>>"$base/daemon.log" & ;;
	esac
	pid=$!
	T=$M
	for _ in $(seq 100); do
		mountpoint -q "$M" && return 0
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	say "$target: mount failed: $(tail -n 3 "$base/daemon.log" | tr '\n' ' ')"
	kill "$pid" 2>/dev/null || true
	pid=""
	return 1
}

# umount_target: unmount and reap the daemon; say so if it exited non-zero.
umount_target() {
	local rc=0
	[ -n "$pid" ] || return 0
	fusermount3 -u "$M" || umount "$M" || umount -l "$M"
	wait "$pid" || rc=$?
	[ "$rc" -eq 0 ] || say "the daemon exited with status $rc"
	pid=""
	return 0
}

# drop_kernel_caches N: sync, then echo N > /proc/sys/vm/drop_caches.
drop_kernel_caches() { sync; echo "$1" >/proc/sys/vm/drop_caches; }

# daemon_fds, daemon_rss_mib: of the running daemon; "-" without one.
daemon_fds() {
	[ -n "$pid" ] || { echo -; return; }
	ls "/proc/$pid/fd" | wc -l
}
daemon_rss_mib() {
	[ -n "$pid" ] || { echo -; return; }
	awk '/^VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$pid/status"
}

# stats_json FILE: hmmfsctl stats --json of the mount into FILE ("{}" if
# it fails: not an hmmfs mount).
stats_json() { "$hmmfsctl" stats "$M" --json >"$1" 2>/dev/null || echo '{}' >"$1"; }

# stat_of FILE KEY: one counter from a stats_json file; "-" if absent.
stat_of() {
	python3 -c 'import json, sys; print(json.load(open(sys.argv[1])).get(sys.argv[2], "-"))' "$1" "$2"
}

# secs_of LOGFILE: the seconds filetree reported in its summary line.
secs_of() { sed -n 's/^filetree: .* in \([0-9.]*\) s .*/\1/p' "$1"; }
# errors_of LOGFILE: "E errors (X EMFILE, Y ENFILE)" from filetree's line.
errors_of() { sed -n 's/^filetree: .*; \(.* errors .*\)$/\1/p' "$1"; }

# rotate ROUND T1 T2 ...: the targets, starting with the ROUND-th (cyclic).
# A round that deletes thousands of inodes (everyday.sh, oplat.sh) leaves
# ext4 searching past the recently deleted ones for every new inode for
# minutes (recently_deleted in perf): whoever runs later in a round
# creates files more slowly, so every target takes each place in turn.
rotate() {
	local r=$1 n k
	shift
	n=$#
	for k in $(seq 0 $((n - 1))); do
		eval "echo \${$(( (r - 1 + k) % n + 1 ))}"
	done
}

# backing_init, then backing_new DIR / backing_done DIR: BACKING for one
# target's run.  With fresh_fs=1 (the caller sets it) a new journaled ext4
# in a 2 GiB sparse image on a loop device, mounted on DIR, so that every
# target starts from the same state: on a file system where thousands of
# inodes were just deleted, ext4 searches past them for each new inode
# (recently_deleted in perf), and a create's cost then depends on what
# ran before it more than on the target.  Otherwise a fresh directory.
backing_init() {
	local t
	bench_on_exit backing_cleanup
	[ "${fresh_fs:-0}" = 1 ] || return 0
	for t in mkfs.ext4 losetup; do
		command -v "$t" >/dev/null || skip "$t not found (FRESH_FS=0 runs on BENCH_DIR itself)"
	done
}
backing_new() {
	mkdir -p "$1"
	[ "${fresh_fs:-0}" = 1 ] || return 0
	rm -f "$base/backing.img"
	truncate -s 2G "$base/backing.img"
	mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 "$base/backing.img" ||
		die "mkfs.ext4 of the backing image failed"
	mount -o loop "$base/backing.img" "$1" || die "cannot mount the backing image"
	backing_mounted=$1
}
backing_done() {
	if [ -n "$backing_mounted" ]; then
		umount "$backing_mounted"
		backing_mounted=""
		rm -f "$base/backing.img"
	fi
	rm -rf --one-file-system "$1"
}
backing_mounted=""
backing_cleanup() { [ -z "$backing_mounted" ] || umount -l "$backing_mounted"; }
