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
 * SIGTERM, SIGINT and SIGHUP end the session loop (libfuse's handlers);
 * an umount ends it too.  Either way the loop returns, the mount goes, and
 * the inode table is torn down.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cache/cache.h"
#include "fault/fault.h"
#include "fs/fs.h"
#include "fs/guard.h"

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

static int check_mountpoint(const char *mnt)
{
	char real[PATH_MAX];
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

static int check_fuse_device(void)
{
	char msg[256];

	if (guard_fuse_device("/dev/fuse", msg, sizeof(msg)) < 0) {
		fprintf(stderr, "hmmfs: %s\n", msg);
		return -1;
	}
	return 0;
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
	fs->open_files.prev = fs->open_files.next = &fs->open_files;
	fs->open_dirs.prev = fs->open_dirs.next = &fs->open_dirs;
	fs->uid = geteuid();
	fs->gid = getegid();
	fs->ngroups = getgroups(64, fs->groups);
	if (fs->ngroups < 0)
		fs->ngroups = 0;
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
		.migrate = o->migrate,
		.bounce_buffers = o->bounce_buffers,
		.inval = notify_inval,
		.inval_arg = fs,
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
		for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++)
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
	if (fuse_session_mount(fs->se, o->mountpoint)) {
		fprintf(stderr, "hmmfs: cannot mount on '%s'\n", o->mountpoint);
		goto out_signals;
	}
	ret = apply_vfs_flags(o->mountpoint, o);
	if (ret) {
		fprintf(stderr, "hmmfs: cannot set atime options on '%s': %s\n",
			o->mountpoint, strerror(-ret));
		ret = 1;
		goto out_unmount;
	}
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
	daemon_ready(report_fd, 0);
	/* libfuse returns the signal number after SIGTERM/SIGINT: clean */
	ret = serve(fs, o) < 0 ? 1 : 0;
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
 * Every inode the kernel knows holds a descriptor of its BACKING file (and
 * every cached open file one more), so a directory of 10,000 files needs
 * more than the usual soft limit of 1024, or even a hard limit of 20,000
 * once the kernel also remembers other inodes.  Raise both as far as the
 * system allows (fs.nr_open; root may), else the soft limit to the hard.
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
	char err[512], backing[PATH_MAX];
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
	if (check_backing(o.backing, backing) || check_mountpoint(o.mountpoint) ||
	    check_fuse_device() || fs_init(&fs, &o, backing)) {
		opts_free(&o);
		return 1;
	}
	if (cache_setup(&fs, &o, backing)) {
		itab_destroy(&fs.itab);
		opts_free(&o);
		return 1;
	}
	ret = run(&fs, &o, backing);
	hmmfs_open_files_free(&fs);	/* no RELEASE comes after the end */
	itab_destroy(&fs.itab);	/* writes back and drops every file */
	if (fs.cache)
		cache_destroy(fs.cache);	/* then whatever is left, and syncs */
	opts_free(&o);
	return ret;
}
