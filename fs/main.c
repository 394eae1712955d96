/* SPDX-License-Identifier: MIT */
/*
 * fs/main.c — the hmmfs daemon: check the start, mount, serve, unmount.
 *
 * Order matters for clear errors: options, BACKING, MOUNTPOINT and
 * /dev/fuse are all checked before anything is mounted, and the daemon
 * forks into the background only after the mount succeeded; the parent
 * then waits until the child has opened the device tier and started its
 * threads (which cannot cross a fork) before it exits, so every start-up
 * failure reaches the user's terminal with a non-zero exit.
 * SIGHUP ends the session loop (libfuse's handler); an umount ends it
 * too.  SIGTERM and SIGINT first have the kernel write the dirty pages it
 * still holds for the mount (see "stopper" below), then end it.  Either
 * way the loop returns, the mount goes, and the inode table is torn down,
 * which writes back hmmfs's own cache.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "cache/cache.h"
#include "fault/fault.h"
#include "fs/fs.h"
#include "fs/bdi.h"
#include "fs/devio.h"
#include "fs/guard.h"
#include "log/log.h"
#include "lib/compiler.h"
#include "lib/time.h"

/*
 * Forgotten inodes kept for the kernel's file handles (inode.h, "Dormant
 * inodes"): about 250 bytes each with the handle, 16 MiB at most.
 */
#define DORMANT_INODES	65536

static int check_backing(const char *backing, char real[PATH_MAX])
{
	struct stat st;

	if (stat(backing, &st) < 0) {
		fprintf(stderr, "hmmfs: BACKING '%s': %s\n", backing, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		fprintf(stderr, "hmmfs: BACKING '%s' is not a directory\n", backing);
		return -1;
	}
	if (!realpath(backing, real)) {
		fprintf(stderr, "hmmfs: BACKING '%s': %s\n", backing, strerror(errno));
		return -1;
	}
	return 0;
}

/*
 * MOUNTPOINT must be an existing directory that is not a mount point
 * already; @real gets its absolute path, which is what gets mounted and
 * unmounted (the daemon's chdir("/") would make a relative one name
 * something else, leaving a dead mount at the end).
 */
static int check_mountpoint(const char *mnt, char real[PATH_MAX])
{
	struct stat st;
	int ret;

	if (stat(mnt, &st) < 0) {
		if (errno == ENOTCONN)
			fprintf(stderr, "hmmfs: MOUNTPOINT '%s' is a dead FUSE mount; "
				"run: fusermount3 -u '%s'\n", mnt, mnt);
		else
			fprintf(stderr, "hmmfs: MOUNTPOINT '%s': %s\n", mnt,
				strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		fprintf(stderr, "hmmfs: MOUNTPOINT '%s' is not a directory\n", mnt);
		return -1;
	}
	if (!realpath(mnt, real)) {
		fprintf(stderr, "hmmfs: MOUNTPOINT '%s': %s\n", mnt, strerror(errno));
		return -1;
	}
	ret = guard_is_mountpoint(real);
	if (ret < 0) {
		fprintf(stderr, "hmmfs: cannot read /proc/self/mountinfo: %s\n",
			strerror(-ret));
		return -1;
	}
	if (ret) {
		fprintf(stderr, "hmmfs: MOUNTPOINT '%s' is already a mount point\n", mnt);
		return -1;
	}
	return 0;
}

/* libfuse's messages take the daemon's way (log/log.h). */
static void libfuse_log(enum fuse_log_level level, const char *fmt, va_list ap)
{
	log_from_libfuse((int)level, fmt, ap);
}

/*
 * MOUNTPOINT below BACKING would show the mount inside itself: the daemon
 * holds a descriptor on its own mount point once something looks there,
 * and neither umount nor fusermount3 -u can remove it.  Refused.  (On
 * BACKING itself is fine: the daemon reaches the directory it covers
 * through the descriptor it opened before mounting.)
 */
static int check_not_nested(const char *backing, const char *mnt)
{
	size_t n = strlen(backing);
	bool below = !strcmp(backing, "/") ? strcmp(mnt, "/") != 0 :
		     !strncmp(mnt, backing, n) && mnt[n] == '/';

	if (!below)
		return 0;
	fprintf(stderr, "hmmfs: MOUNTPOINT '%s' is inside BACKING '%s': the mount "
		"would show itself and could not be unmounted; mount it elsewhere\n",
		mnt, backing);
	return -1;
}

static int check_fuse_device(void)
{
	char msg[256];

	if (guard_fuse_device("/dev/fuse", msg, sizeof(msg)) < 0) {
		fprintf(stderr, "hmmfs: %s\n", msg);
		return -1;
	}
	return 0;
}

/*
 * The largest file size BACKING allows (its filesystem's s_maxbytes: ext4
 * with 4 KiB blocks 16 TiB - 4 KiB, xfs and tmpfs 2^63 - 1), found once by
 * binary search with ftruncate() of an unnamed temporary file: truncating
 * to N succeeds iff N is within the limit (EFBIG past it) and allocates
 * nothing.  Writes are checked against it (ops_data.c), because the cache
 * acknowledges a write long before BACKING sees it: past the limit the
 * writeback would fail and leave the mount showing a size BACKING cannot
 * hold.  Without O_TMPFILE or write access to BACKING's root the limit is
 * unknown: INT64_MAX, and BACKING's errors come at writeback as before.
 */
static off_t backing_max_size(const char *backing)
{
	off_t ok = 0, bad = (off_t)INT64_MAX;
	int fd = open(backing, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);

	if (fd < 0)
		return (off_t)INT64_MAX;
	if (ftruncate(fd, bad) == 0)
		ok = bad;
	while (bad - ok > 1) {	/* ok fits, bad does not */
		off_t mid = ok + (bad - ok) / 2;

		if (ftruncate(fd, mid) == 0) {
			ok = mid;
		} else if (errno != EFBIG && errno != EINVAL) {
			ok = (off_t)INT64_MAX;	/* something else: no limit known */
			break;
		} else {
			bad = mid;
		}
	}
	close(fd);
	return ok;
}

/* One line at mount when inodes cannot give their descriptors back. */
static void notice_no_handles(struct hmmfs *fs)
{
	int err = fdc_no_handles(&fs->itab.fdc);

	if (err)
		fprintf(stderr, "hmmfs: notice: BACKING's objects cannot be "
			"reopened by file handle (%s): every inode the kernel holds "
			"keeps a descriptor, max_fds does not apply\n",
			strerror(err));
}

/*
 * Is BACKING (@fd) the root of its file system: the root of a mount
 * (statx) whose mountinfo line (found by mount id, not by path) mounts
 * the whole file system (root "/"), not a directory of it?  Only then
 * may a node id open any object of its device (persistent node ids,
 * inode.h).  Any doubt is a no.
 */
static bool backing_is_fs_root(int fd)
{
	struct statx stx;
	char *line = NULL, root[8];
	unsigned long long id;
	size_t cap = 0;
	bool yes = false;
	FILE *f;

	if (statx(fd, "", AT_EMPTY_PATH, STATX_MNT_ID, &stx) < 0 ||
	    !(stx.stx_mask & STATX_MNT_ID) ||
	    !(stx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) ||
	    !(stx.stx_attributes & STATX_ATTR_MOUNT_ROOT))
		return false;
	f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return false;
	while (getline(&line, &cap, f) > 0)
		if (sscanf(line, "%llu %*u %*u:%*u %7s ", &id, root) == 2 &&
		    id == stx.stx_mnt_id)
			yes = strcmp(root, "/") == 0;
	free(line);
	fclose(f);
	return yes;
}

/*
 * The daemon's supplementary groups, all of them, to restore after
 * acting as a caller (creds_restore()).  Kept for the daemon's life.
 * Return: 0 or -errno.
 */
static int own_groups(struct hmmfs *fs)
{
	for (;;) {
		int n = getgroups(0, NULL);

		if (n < 0)
			return -errno;
		free(fs->groups);
		fs->groups = malloc(((size_t)n + 1) * sizeof(gid_t));
		if (!fs->groups)
			return -ENOMEM;
		fs->ngroups = getgroups(n, fs->groups);
		if (fs->ngroups >= 0)
			return 0;
		if (errno != EINVAL)	/* EINVAL: they grew meanwhile */
			return -errno;
	}
}

static int fs_init(struct hmmfs *fs, const struct hmmfs_opts *o,
		   const char *backing)
{
	struct stat st;
	int fd, ret;

	memset(fs, 0, sizeof(*fs));
	fs->opts = o;
	fs->atime.mnt = -1;
	pthread_mutex_init(&fs->files_lock, NULL);
	clist_init(&fs->open_files);
	clist_init(&fs->open_dirs);
	fs->uid = geteuid();
	fs->gid = getegid();
	ret = own_groups(fs);
	if (ret) {
		fprintf(stderr, "hmmfs: cannot read the daemon's groups: %s\n",
			strerror(-ret));
		return ret;
	}
	fd = open(backing, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		fprintf(stderr, "hmmfs: BACKING '%s': %s\n", backing, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	ret = itab_init(&fs->itab, fd, &st);
	if (ret) {
		fprintf(stderr, "hmmfs: %s\n", strerror(-ret));
		close(fd);
		return -1;
	}
	fdc_set_max(&fs->itab.fdc, o->max_fds);
	itab_set_dormant_max(&fs->itab, DORMANT_INODES);
	if (backing_is_fs_root(fd))
		itab_persist(&fs->itab);	/* quiet: the usual case */
	notice_no_handles(fs);
	fs->max_size = backing_max_size(backing);
	return 0;
}

/* One line at mount when BACKING cannot do O_DIRECT (data cached twice). */
static void notice_direct_io(const char *backing)
{
	int fd = open(backing, O_TMPFILE | O_RDWR | O_DIRECT | O_CLOEXEC, 0600);

	if (fd >= 0) {
		close(fd);
		return;
	}
	if (errno != EINVAL)
		return;	/* cannot tell (no O_TMPFILE, read-only, ...) */
	fd = open(backing, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0)
		return;
	close(fd);
	fprintf(stderr, "hmmfs: notice: BACKING does not support O_DIRECT; "
		"backing files use buffered I/O\n");
}

/*
 * Bounce buffers when -o bounce_buffers is not given: 16 MiB of them (a
 * 1 MiB read of device pages takes 256 four-KiB buffers, and sequential
 * readers keep their next read's copy in up to half), at least 512.  The
 * region is touched only as buffers are used.
 */
static size_t bounce_buffers_default(size_t page_size)
{
	size_t n = ((size_t)16 << 20) / page_size;

	return n > 512 ? n : 512;
}

static int cache_setup(struct hmmfs *fs, const struct hmmfs_opts *o,
		       const char *backing)
{
	struct cache_config cfg = {
		.page_size = o->page_size,
		.host_cache = o->host_cache,
		.dirty_background = opts_dirty_background(o),
		.dirty_limit = opts_dirty_limit(o),
		.dirty_expire_ms = o->dirty_expire_ms,
		.io_engine = o->io_engine,
		.device = o->device,
		.device_cache = o->device_cache,
		.device_bw = o->device_bw,
		.device_lat_ns = o->device_lat_us * 1000,
		.gpu = (int)o->gpu,
		.gpus = o->gpus,
		.cl_platform = (int)o->cl_platform,
		.devices = o->devices,
		.device_no_peer = !strcmp(o->device_peer, "off"),
		.migrate = o->migrate,
		.device_copy = o->device_copy,
		.bounce_buffers = o->bounce_buffers ? o->bounce_buffers :
				  bounce_buffers_default(o->page_size),
		.inval = notify_inval,
		.inval_arg = fs,
		.cancelled = ioctl_cancelled,
		.cancel_arg = fs,
		.ksm = !strcmp(o->ksm, "on"),
		.ksm_scope_all = !strcmp(o->ksm_scope, "all"),
	};
	char err[256];
	int ret;

	if (!o->host_cache)
		return 0;	/* no cache: a plain passthrough */
	ret = cache_create(&cfg, &fs->cache, err, sizeof(err));
	if (ret) {
		fprintf(stderr, "hmmfs: %s\n", err);
		return -1;
	}
	fs->itab.release = hmmfs_inode_release;
	fs->itab.release_arg = fs;
	notice_direct_io(backing);
	return 0;
}

/*
 * relatime, strictatime, nodiratime and their opposites are per-mount
 * flags libfuse 3.14 does not take: set them on the new mount with a bind
 * remount, keeping the flags it has.  Those are read from mountinfo, not
 * statvfs(), which would ask this daemon before it serves requests.
 */
static int apply_vfs_flags(const char *mnt, const struct hmmfs_opts *o)
{
	static const struct { const char *name; unsigned long ms; } keep[] = {
		{ "ro", MS_RDONLY }, { "nosuid", MS_NOSUID }, { "nodev", MS_NODEV },
		{ "noexec", MS_NOEXEC }, { "noatime", MS_NOATIME },
		{ "nodiratime", MS_NODIRATIME }, { "relatime", MS_RELATIME },
	};
	char real[PATH_MAX], opts[512];
	unsigned long flags = 0;
	int ret;

	if (!o->vfs_set && !o->vfs_clear)
		return 0;
	if (!realpath(mnt, real))
		return -errno;
	ret = guard_mount_options(real, opts, sizeof(opts));
	if (ret)
		return ret;
	for (char *save = NULL, *t = strtok_r(opts, ",", &save); t;
	     t = strtok_r(NULL, ",", &save))
		for (size_t i = 0; i < ARRAY_SIZE(keep); i++)
			if (strcmp(t, keep[i].name) == 0)
				flags |= keep[i].ms;
	flags = (flags & ~o->vfs_clear) | o->vfs_set;
	if (mount(NULL, mnt, NULL, MS_REMOUNT | MS_BIND | flags, NULL) < 0)
		return -errno;
	return 0;
}

/*
 * Go to the background as fuse_daemonize() does (fork, setsid, chdir /),
 * but the parent exits only when the child reports with daemon_ready(),
 * with the child's status, and the child's stderr stays on the terminal
 * until then.  Return: in the child (or in the foreground), 0 with
 * *@report_fd to report on (-1 in the foreground); -errno.
 */
static int daemon_fork(bool foreground, int *report_fd)
{
	int p[2];
	pid_t pid;
	char status;

	*report_fd = -1;
	if (foreground)
		return 0;
	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid > 0) {
		close(p[1]);
		if (read(p[0], &status, 1) != 1)
			status = 1;	/* the child died before it was ready */
		_exit(status);
	}
	close(p[0]);
	if (setsid() < 0 || chdir("/") < 0) {
		close(p[1]);
		return -errno;
	}
	*report_fd = p[1];
	return 0;
}

/* Tell the waiting parent how the start went; detach from the terminal. */
static void daemon_ready(int report_fd, int status)
{
	char s = (char)status;
	int nul;

	if (report_fd < 0)
		return;
	if (!status)
		log_to_syslog();	/* stderr goes to /dev/null next */
	if (!status && (nul = open("/dev/null", O_RDWR)) >= 0) {
		dup2(nul, STDIN_FILENO);
		dup2(nul, STDOUT_FILENO);
		dup2(nul, STDERR_FILENO);
		if (nul > STDERR_FILENO)
			close(nul);
	}
	if (write(report_fd, &s, 1) != 1)
		status = 1;
	close(report_fd);
}

/* After the fork: the cache's device tier and threads, the notifier. */
static int start_threads(struct hmmfs *fs)
{
	char err[256];
	int ret;

	ret = fs->cache ? cache_start(fs->cache, err, sizeof(err)) : 0;
	if (ret) {
		fprintf(stderr, "hmmfs: %s\n", err);
		return ret;
	}
	/* without the cache too: O_DIRECT writes drop the kernel's copy */
	ret = notify_start(fs);
	if (ret)
		fprintf(stderr, "hmmfs: cannot start the notifier thread: %s\n",
			strerror(-ret));
	return ret;
}

/*
 * The stopper: SIGTERM and SIGINT without losing what the kernel holds.
 *
 * With writeback_cache, write()s stay dirty in the kernel's page cache of
 * the mount until it writes them back, and MAP_SHARED stores do in every
 * mode; an open fd or a mapping keeps them there.  Ending the session loop
 * at the signal loses them.  So the handler only posts @wake; the stopper
 * thread then opens the mount's root and syncfs()es it, which makes the
 * kernel send those pages as WRITE requests, served by the session loop
 * (still running: its other workers, or the loop thread itself with -s,
 * since the sync runs on a thread of its own).  After the sync, or
 * STOP_SYNC_MS without a WRITE coming (STOP_SYNC_MAX_MS in all), or a
 * second signal, the stopper ends the loop, and run() goes on as after an
 * umount.  The kernel may hold kernel_dirty bytes (up to 1 GiB by
 * default), which a slow BACKING takes longer than STOP_SYNC_MS to
 * absorb: while WRITEs keep coming the sync is making progress, and the
 * stopper says how far it got every STOP_SYNC_SAY_MS.
 *
 * The mount point is opened by path at the signal, not held open from the
 * mount on: an open descriptor would keep umount busy and keep a lazily
 * unmounted mount (and so this daemon) alive.  Its st_dev must be the one
 * mountinfo gave at mount, so a path that no longer leads to this mount is
 * not synced.
 *
 * Wake-ups all go through @wake (sem_post is async-signal-safe); the
 * flags say what happened.  The loop thread sleeps in a system call the
 * exited flag cannot interrupt, so the stopper signals it (the handler
 * then does nothing) until serve() returns.
 */
#define STOP_SYNC_MS	30000		/* without a WRITE coming */
#define STOP_SYNC_MAX_MS 600000		/* in all */
#define STOP_SYNC_SAY_MS 10000		/* progress on stderr */
#define STOP_KICK_MS	50
#define STOP_QUIET_MS	200		/* no WRITE for this long: done */
#define STOP_QUIET_BUSY_MS 1000		/* the same while fusectl shows requests */

enum { STOP_NONE, STOP_SYNCING, STOP_NOW };

static struct stopper {
	struct fuse_session *se;
	struct cache *cache;		/* hurried at the first signal; may be NULL */
	pthread_t loop;			/* the thread in serve() */
	pthread_t thread;
	bool started;
	sem_t wake;
	_Atomic int state;		/* STOP_*: set by the handler and the stopper */
	_Atomic int sig;		/* the first signal */
	_Atomic bool loop_ended;	/* serve() returned (set by run()) */
	_Atomic bool sync_done;		/* the syncer finished; see sync_err */
	_Atomic int sync_err;		/* 0 or -errno of the sync */
	_Atomic unsigned long writes_seen;	/* WRITE requests received */
	_Atomic long writes_busy;	/* WRITE requests being served */
	char path[PATH_MAX];		/* the mount point, resolved */
	dev_t dev;			/* the mount's, from mountinfo; 0: unknown */
} stopper;

static long long now_ms(void)
{
	return (long long)mono_ms();
}

static void stop_handler(int sig)
{
	static const char again[] = "hmmfs: second signal: ending without "
		"waiting for the kernel's dirty pages\n";
	int expect = STOP_NONE, saved = errno;
	ssize_t n;

	if (atomic_compare_exchange_strong(&stopper.state, &expect, STOP_SYNCING)) {
		atomic_store(&stopper.sig, sig);
		sem_post(&stopper.wake);
	} else if (expect == STOP_SYNCING &&
		   atomic_compare_exchange_strong(&stopper.state, &expect, STOP_NOW)) {
		n = write(STDERR_FILENO, again, sizeof(again) - 1);
		(void)n;	/* nothing more a handler can do */
		sem_post(&stopper.wake);
	}
	/* STOP_NOW: the stopper's kick to the loop thread; nothing to do */
	errno = saved;
}

/*
 * The number of requests of this connection the kernel has not had
 * answered (fusectl's "waiting", named by the kernel's dev_t encoding),
 * or -errno (-ENOENT: fusectl is not mounted).
 */
static long stop_kernel_waiting(void)
{
	char path[96];
	long n = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/sys/fs/fuse/connections/%u/waiting",
		 (major(stopper.dev) << 20) | minor(stopper.dev));
	f = fopen(path, "re");
	if (!f)
		return -errno;
	if (fscanf(f, "%ld", &n) != 1)
		n = -EIO;
	fclose(f);
	return n;
}

/* Every WRITE passes here, so the stopper can see them come and go. */
static void stop_counted_write_buf(fuse_req_t req, fuse_ino_t ino,
				   struct fuse_bufvec *bufv, off_t off,
				   struct fuse_file_info *fi)
{
	atomic_fetch_add(&stopper.writes_seen, 1);
	atomic_fetch_add(&stopper.writes_busy, 1);
	hmmfs_ops.write_buf(req, ino, bufv, off, fi);
	atomic_fetch_sub(&stopper.writes_busy, 1);
}

/*
 * syncfs() starts writeback of every dirty page, but on FUSE it need not
 * wait for the WRITEs (the kernel may skip that wait for FUSE mappings, so
 * that a stuck server cannot hang sync).  So wait here: done when fusectl
 * shows no unanswered request of this connection.  Other requests (a
 * reader's, one stuck in the kernel) may keep that above 0, and fusectl
 * may not be mounted, so it is also done when no WRITE is being served
 * and none came for a while: the kernel hands over its next queued WRITE
 * as soon as one is answered, so a pause means its queue is empty (a
 * heuristic: a kernel too slow to hand it over within the pause defeats
 * it; the pause is longer when fusectl says requests remain).
 */
static void stop_wait_writes(void)
{
	struct timespec nap = { 0, 5 * 1000000 };
	unsigned long seen = atomic_load(&stopper.writes_seen);
	long long quiet_since = now_ms();
	long n;

	while (atomic_load(&stopper.state) == STOP_SYNCING) {
		n = stopper.dev ? stop_kernel_waiting() : -ENODEV;
		if (n == 0)
			return;
		if (atomic_load(&stopper.writes_seen) != seen ||
		    atomic_load(&stopper.writes_busy)) {
			seen = atomic_load(&stopper.writes_seen);
			quiet_since = now_ms();
		} else if (now_ms() >= quiet_since +
			   (n > 0 ? STOP_QUIET_BUSY_MS : STOP_QUIET_MS)) {
			return;
		}
		nanosleep(&nap, NULL);
	}
}

/* Detached: open the mount's root, syncfs it, report through @wake. */
static void *stop_sync(void *arg)
{
	struct stat st;
	int fd, err = 0;

	(void)arg;
	fd = open(stopper.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		err = -errno;
	else if (fstat(fd, &st) < 0)
		err = -errno;
	else if (stopper.dev && st.st_dev != stopper.dev)
		err = -ENXIO;	/* unmounted lazily; something else is there */
	else if (syncfs(fd) < 0)
		err = -errno;
	if (fd >= 0)
		close(fd);
	if (!err)
		stop_wait_writes();
	atomic_store(&stopper.sync_err, err);
	atomic_store(&stopper.sync_done, true);
	sem_post(&stopper.wake);
	return NULL;
}

/* Sleep on @wake until @deadline_ms (CLOCK_MONOTONIC) or a post. */
static void stop_wait_until(long long deadline_ms)
{
	struct timespec ts = {
		.tv_sec = deadline_ms / 1000,
		.tv_nsec = (deadline_ms % 1000) * 1000000,
	};

	sem_clockwait(&stopper.wake, CLOCK_MONOTONIC, &ts);
}

/*
 * When to give up waiting for the sync: STOP_SYNC_MS after the last WRITE
 * seen (the kernel hands them over one after another while it has dirty
 * pages), at most STOP_SYNC_MAX_MS after @start.
 */
static long long stop_sync_deadline(long long start, unsigned long *seen,
				    long long *progress)
{
	unsigned long now_seen = atomic_load(&stopper.writes_seen);
	long long d;

	if (now_seen != *seen || atomic_load(&stopper.writes_busy)) {
		*seen = now_seen;
		*progress = now_ms();
	}
	d = *progress + STOP_SYNC_MS;
	return d < start + STOP_SYNC_MAX_MS ? d : start + STOP_SYNC_MAX_MS;
}

/* Have the kernel write its dirty pages, while it makes progress; log it. */
static void stop_sync_kernel(void)
{
	const char *name = atomic_load(&stopper.sig) == SIGINT ? "SIGINT" : "SIGTERM";
	long long start = now_ms(), progress = start, deadline;
	unsigned long seen0 = atomic_load(&stopper.writes_seen), seen = seen0;
	pthread_attr_t attr;
	pthread_t t;
	int ret;

	fprintf(stderr, "hmmfs: %s: syncing the kernel's dirty pages of %s\n",
		name, stopper.path);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	ret = pthread_create(&t, &attr, stop_sync, NULL);
	pthread_attr_destroy(&attr);
	if (ret) {
		fprintf(stderr, "hmmfs: %s: cannot start the sync: %s\n", name,
			strerror(ret));
		return;
	}
	while (!atomic_load(&stopper.sync_done) && !atomic_load(&stopper.loop_ended) &&
	       atomic_load(&stopper.state) == STOP_SYNCING &&
	       now_ms() < (deadline = stop_sync_deadline(start, &seen, &progress))) {
		long long next = now_ms() + STOP_SYNC_SAY_MS;

		stop_wait_until(next < deadline ? next : deadline);
		if (now_ms() >= next)
			fprintf(stderr, "hmmfs: %s: still syncing after %lld s: "
				"%lu WRITE requests so far\n", name,
				(now_ms() - start) / 1000,
				atomic_load(&stopper.writes_seen) - seen0);
	}
	ret = atomic_load(&stopper.sync_err);
	if (!atomic_load(&stopper.sync_done))
		fprintf(stderr, "hmmfs: %s: kernel sync unfinished after %lld ms; "
			"ending anyway\n", name, now_ms() - start);
	else if (ret)
		fprintf(stderr, "hmmfs: %s: kernel sync failed after %lld ms: %s\n",
			name, now_ms() - start, strerror(-ret));
	else
		fprintf(stderr, "hmmfs: %s: syncing the kernel's dirty pages done "
			"in %lld ms\n", name, now_ms() - start);
}

static void *stopper_main(void *arg)
{
	(void)arg;
	while (atomic_load(&stopper.state) == STOP_NONE &&
	       !atomic_load(&stopper.loop_ended))
		sem_wait(&stopper.wake);
	if (atomic_load(&stopper.loop_ended))
		return NULL;	/* unmounted: nothing to stop */
	cache_hurry(stopper.cache);	/* device models wait no more */
	if (atomic_load(&stopper.state) == STOP_SYNCING)
		stop_sync_kernel();
	atomic_store(&stopper.state, STOP_NOW);
	fuse_session_exit(stopper.se);
	while (!atomic_load(&stopper.loop_ended)) {
		pthread_kill(stopper.loop, SIGTERM);	/* out of its syscall */
		stop_wait_until(now_ms() + STOP_KICK_MS);
	}
	return NULL;
}

/*
 * Before the mount (no fd held, see above): where to find it.  After the
 * mount: its device number.  Failing either only costs the st_dev check.
 */
static void stopper_init(struct fuse_session *se, struct cache *cache,
			 const char *mountpoint)
{
	stopper.se = se;
	stopper.cache = cache;
	sem_init(&stopper.wake, 0, 0);
	if (!realpath(mountpoint, stopper.path))
		snprintf(stopper.path, sizeof(stopper.path), "%s", mountpoint);
}

/* After the fork, on the thread that will run serve(). */
static int stopper_start(void)
{
	struct sigaction sa = { .sa_handler = stop_handler };
	int ret;

	if (guard_mount_dev(stopper.path, &stopper.dev))
		stopper.dev = 0;
	stopper.loop = pthread_self();
	ret = pthread_create(&stopper.thread, NULL, stopper_main, NULL);
	if (ret)
		return -ret;
	stopper.started = true;
	/* no SA_RESTART: the kick must interrupt the loop's read or wait */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	return 0;
}

/*
 * serve() returned: stopper joined (its last kicks are SIGTERMs), then the
 * default actions back, as fuse_remove_signal_handlers() leaves them.
 */
static void stopper_stop(void)
{
	struct sigaction sa = { .sa_handler = SIG_DFL };

	if (stopper.started) {
		atomic_store(&stopper.loop_ended, true);
		sem_post(&stopper.wake);
		pthread_join(stopper.thread, NULL);
		stopper.started = false;
	}
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
}

static int serve(struct hmmfs *fs, const struct hmmfs_opts *o)
{
	struct fuse_loop_config *cfg;
	int ret;

	if (o->singlethread)
		return fuse_session_loop(fs->se);
	cfg = fuse_loop_cfg_create();
	if (!cfg)
		return -ENOMEM;
	fuse_loop_cfg_set_clone_fd(cfg, (unsigned int)o->clone_fd);
	fuse_loop_cfg_set_max_threads(cfg, o->max_threads);
	ret = fuse_session_loop_mt(fs->se, cfg);
	fuse_loop_cfg_destroy(cfg);
	return ret;
}

/* The kernel's dirty limit for the new mount (bdi.c); failing is a notice. */
static void mount_dirty_limit(const struct hmmfs_opts *o)
{
	dev_t dev;

	if (o->kernel_dirty && guard_mount_dev(stopper.path, &dev) == 0)
		bdi_setup(dev, o->kernel_dirty, o->debug);
}

/* Mount, serve until unmounted or signalled, unmount.  Return exit code. */
static int run(struct hmmfs *fs, const struct hmmfs_opts *o, const char *fsname)
{
	struct opts_fuse_argv fa;
	struct fuse_args args;
	struct fuse_lowlevel_ops ops;
	int ret = 1, report_fd;

	if (opts_fuse_argv(o, fsname, &fa)) {
		fprintf(stderr, "hmmfs: out of memory\n");
		return 1;
	}
	args = (struct fuse_args)FUSE_ARGS_INIT(fa.argc, fa.argv);
	ops = hmmfs_ops;
	ops.write_buf = stop_counted_write_buf;
	if (o->noxattr) {
		/*
		 * libfuse answers ENOSYS, and the kernel stops sending xattr
		 * requests: among them the getxattr("security.capability")
		 * it sends before every write to see whether the write must
		 * drop file capabilities (passthrough_ll's default).
		 */
		ops.getxattr = NULL;
		ops.setxattr = NULL;
		ops.listxattr = NULL;
		ops.removexattr = NULL;
	}
	fs->se = fuse_session_new(&args, &ops, sizeof(ops), fs);
	fuse_opt_free_args(&args);	/* libfuse made its own copy */
	if (!fs->se)
		goto out_free_argv;
	if (fuse_set_signal_handlers(fs->se))
		goto out_destroy;
	stopper_init(fs->se, fs->cache, o->mountpoint);	/* before daemon_fork's chdir */
	if (fuse_session_mount(fs->se, o->mountpoint)) {
		fprintf(stderr, "hmmfs: cannot mount on '%s'\n", o->mountpoint);
		goto out_signals;
	}
	ret = devio_install(fs->se, true);
	if (ret)
		fprintf(stderr, "hmmfs: notice: libfuse does the device I/O (%s): "
			"the kernel asks for security.capability before each "
			"write\n", strerror(-ret));
	ret = apply_vfs_flags(o->mountpoint, o);
	if (ret) {
		fprintf(stderr, "hmmfs: cannot set atime options on '%s': %s\n",
			o->mountpoint, strerror(-ret));
		ret = 1;
		goto out_unmount;
	}
	mount_dirty_limit(o);
	ret = atime_setup(fs, o->mountpoint);
	if (ret) {
		fprintf(stderr, "hmmfs: %s\n", strerror(-ret));
		ret = 1;
		goto out_unmount;
	}
	ret = daemon_fork(o->foreground, &report_fd);
	if (ret) {
		fprintf(stderr, "hmmfs: cannot go to the background: %s\n",
			strerror(-ret));
		ret = 1;
		goto out_unmount;
	}
	if (start_threads(fs)) {
		daemon_ready(report_fd, 1);
		ret = 1;
		goto out_notify;
	}
	ret = stopper_start();
	if (ret) {
		fprintf(stderr, "hmmfs: cannot start the stopper thread: %s\n",
			strerror(-ret));
		daemon_ready(report_fd, 1);
		ret = 1;
		goto out_notify;
	}
	daemon_ready(report_fd, 0);
	if (!o->foreground)	/* the system log's first line of this mount */
		log_print(LOG_INFO, "mounted %s (hmmfs %s)", fsname, HMMFS_VERSION);
	/*
	 * libfuse returns the signal number after SIGHUP, and the single-
	 * threaded loop may return -EINTR after the stopper's kick: clean.
	 */
	ret = serve(fs, o);
	cache_hurry(fs->cache);	/* unmounted: what is left, at full speed */
	if (ret == -EINTR && atomic_load(&stopper.state) == STOP_NOW)
		ret = 0;
	ret = ret < 0 ? 1 : 0;
	stopper_stop();
out_notify:
	notify_stop(fs);	/* no request runs now: nothing queues more */
out_unmount:
	fuse_session_unmount(fs->se);
	atime_cleanup(fs);
out_signals:
	fuse_remove_signal_handlers(fs->se);
out_destroy:
	fuse_session_destroy(fs->se);
out_free_argv:
	opts_fuse_argv_free(&fa);
	return ret;
}

/*
 * Inodes keep at most max_fds descriptors (fdcache.c), but each open file
 * holds its own and each cached one more, and where BACKING has no file
 * handles every inode the kernel knows keeps one, so that a directory of
 * 10,000 files needs more than the usual soft limit of 1024.  Raise both
 * as far as the system allows (fs.nr_open; root may), else the soft limit
 * to the hard.  Done before the table is made: max_fds's default is a
 * fraction of the soft limit.
 */
static void fd_limit_raise(void)
{
	struct rlimit rl;
	unsigned long nr_open = 0;
	FILE *f = fopen("/proc/sys/fs/nr_open", "r");

	if (f) {
		if (fscanf(f, "%lu", &nr_open) != 1)
			nr_open = 0;
		fclose(f);
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return;
	if (nr_open > rl.rlim_max && rl.rlim_max != RLIM_INFINITY &&
	    setrlimit(RLIMIT_NOFILE, &(struct rlimit){ nr_open, nr_open }) == 0)
		return;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

int main(int argc, char **argv)
{
	struct hmmfs_opts o;
	struct hmmfs fs;
	char err[512], backing[PATH_MAX], mountpoint[PATH_MAX];
	int ret;

	ret = opts_parse(argc, argv, &o, err, sizeof(err));
	if (ret) {
		fprintf(stderr, "hmmfs: %s\n", ret == -ENOMEM ? "out of memory" : err);
		opts_free(&o);
		return 1;
	}
	if (o.show_help || o.show_version) {
		if (o.show_help)
			opts_print_help(argv[0]);
		else
			printf("hmmfs %s (libfuse %s)\n", HMMFS_VERSION, fuse_pkgversion());
		opts_free(&o);
		return 0;
	}
	/* HMMFS_FAULT*: fault injection for tests (fault/fault.h); off if unset */
	if (fault_init(err, sizeof(err))) {
		fprintf(stderr, "hmmfs: %s\n", err);
		opts_free(&o);
		return 1;
	}
	/* modes arrive with the caller's umask applied; do not apply ours */
	umask(0);
	fd_limit_raise();
	if (check_backing(o.backing, backing) ||
	    check_mountpoint(o.mountpoint, mountpoint) ||
	    check_not_nested(backing, mountpoint)) {
		opts_free(&o);
		return 1;
	}
	o.mountpoint = mountpoint;	/* absolute from here on */
	log_init(mountpoint);
	fuse_set_log_func(libfuse_log);
	if (check_fuse_device()) {
		opts_free(&o);
		return 1;
	}
	if (fs_init(&fs, &o, backing)) {
		free(fs.groups);	/* fs_init() zeroes fs first */
		opts_free(&o);
		return 1;
	}
	if (cache_setup(&fs, &o, backing)) {
		itab_destroy(&fs.itab);
		free(fs.groups);
		opts_free(&o);
		return 1;
	}
	ret = run(&fs, &o, backing);
	hmmfs_open_files_free(&fs);	/* no RELEASE comes after the end */
	itab_destroy(&fs.itab);	/* writes back and drops every file */
	/* then whatever is left; data it could not write makes the exit fail */
	if (fs.cache && cache_destroy(fs.cache) && !ret)
		ret = 1;
	free(fs.groups);
	if (!o.foreground || ret)
		log_print(ret ? LOG_ERR : LOG_INFO, "ended with exit status %d", ret);
	log_close();
	opts_free(&o);
	return ret;
}
