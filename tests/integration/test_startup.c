/* SPDX-License-Identifier: MIT */
/*
 * tests/integration/test_startup.c — the daemon's command line and life.
 *
 * Each start-up error runs "$HMMFS ... -f" with stdout and stderr captured
 * through pipes: BACKING missing or a regular file, MOUNTPOINT missing, a
 * regular file or already a mount point (a first hmmfs is mounted there),
 * an unknown or malformed -o option, no arguments, and /dev/fuse unusable
 * (in a private mount namespace /dev/null is bind-mounted over /dev/fuse
 * before exec).  Each must exit non-zero with a message naming the
 * culprit, and leave nothing mounted.  --help and --version exit 0 with
 * usage and a version.  SIGTERM and SIGINT to a -f daemon, and umount,
 * end it with exit status 0, unmounted, data in BACKING; also data the
 * kernel still held (writeback_cache writes on an open fd, MAP_SHARED
 * stores with no msync) when SIGTERM came.  Without -f the
 * command returns 0 once mounted, and the background daemon goes away on
 * umount; given relative paths it unmounts them on SIGTERM and SIGINT,
 * and when its start fails after the fork (no CUDA driver), leaving no
 * dead mount; its lines go to the system log (a socket of the test's),
 * naming the mount point.  MOUNTPOINT inside BACKING is refused.
 */
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <regex.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests/integration/harness.h"

#define ERROR_TIMEOUT_MS 5000
#define MiB (1024 * 1024)

static struct it_proc proc;

/* Run hmmfs with up to 6 arguments after the program name. */
static void run_hmmfs(void (*pre_exec)(void), const char *a1, const char *a2,
		      const char *a3, const char *a4, const char *a5)
{
	char *argv[] = { (char *)it.hmmfs, (char *)a1, (char *)a2, (char *)a3,
			 (char *)a4, (char *)a5, NULL };

	it_spawn(argv, pre_exec, ERROR_TIMEOUT_MS, &proc);
}

static void expect_failure_naming(const char *needle)
{
	IT_TRUE(!proc.timed_out, "hmmfs did not exit within %d ms (stderr: %s)",
		ERROR_TIMEOUT_MS, proc.err);
	IT_TRUE(proc.status != -1 && WIFEXITED(proc.status) &&
		WEXITSTATUS(proc.status) != 0,
		"hmmfs should fail; wait status 0x%x, stderr: \"%s\"",
		(unsigned int)proc.status, proc.err);
	IT_HAS(proc.err, needle);
}

static void expect_nothing_mounted(void)
{
	IT_EQ(it_mount_count(it.mnt, NULL, NULL, 0), 0);
	IT_EQ(it_mounts_below(it.root), 0);
}

static void backing_missing(void)
{
	const char *missing = it_path(it.outside, "no-such-dir");

	run_hmmfs(NULL, missing, it.mnt, "-f", NULL, NULL);
	expect_failure_naming(missing);
	expect_nothing_mounted();
}

static void backing_is_file(void)
{
	const char *file = it_path(it.outside, "plain-file");

	IT_REQUIRE_OK(it_put_str(file, "x"));
	run_hmmfs(NULL, file, it.mnt, "-f", NULL, NULL);
	expect_failure_naming(file);
	IT_HAS(proc.err, "directory");
	expect_nothing_mounted();
}

static void mountpoint_missing(void)
{
	const char *missing = it_path(it.mnt_parent, "no-such-mnt");

	run_hmmfs(NULL, it.backing, missing, "-f", NULL, NULL);
	expect_failure_naming(missing);
	expect_nothing_mounted();
}

static void mountpoint_is_file(void)
{
	const char *file = it_path(it.mnt_parent, "plain-file");

	IT_REQUIRE_OK(it_put_str(file, "x"));
	run_hmmfs(NULL, it.backing, file, "-f", NULL, NULL);
	expect_failure_naming(file);
	IT_HAS(proc.err, "directory");
	expect_nothing_mounted();
}

static void mountpoint_already_mounted(void)
{
	it_mount_default(NULL, false);
	IT_REQUIRE_OK(it_put_str(MNT("f"), "first mount"));
	run_hmmfs(NULL, it.backing, it.mnt, "-f", NULL, NULL);
	expect_failure_naming(it.mnt);
	IT_HAS(proc.err, "mount");
	IT_EQ(it_mount_count(it.mnt, NULL, NULL, 0), 1);
	IT_STR_EQ(it_get_str(MNT("f")), "first mount");
}

static void option_unknown(void)
{
	run_hmmfs(NULL, it.backing, it.mnt, "-f", "-o", "bogus");
	expect_failure_naming("bogus");
	expect_nothing_mounted();
}

static void option_malformed_attr_timeout(void)
{
	run_hmmfs(NULL, it.backing, it.mnt, "-f", "-o", "attr_timeout=abc");
	expect_failure_naming("attr_timeout");
	expect_nothing_mounted();
}

static void option_malformed_entry_timeout(void)
{
	run_hmmfs(NULL, it.backing, it.mnt, "-f", "-o", "entry_timeout=1x");
	expect_failure_naming("entry_timeout");
	expect_nothing_mounted();
}

static void option_empty_value(void)
{
	run_hmmfs(NULL, it.backing, it.mnt, "-f", "-o", "attr_timeout=");
	expect_failure_naming("attr_timeout");
	expect_nothing_mounted();
}

/* A modelled bandwidth that would hang a migrate for hours is refused. */
static void option_device_bw_too_small(void)
{
	run_hmmfs(NULL, it.backing, it.mnt, "-f", "-o", "device_bw=1");
	expect_failure_naming("device_bw=1: under 1 MiB/s");
	expect_nothing_mounted();
}

static void no_arguments(void)
{
	run_hmmfs(NULL, NULL, NULL, NULL, NULL, NULL);
	IT_TRUE(proc.status != -1 && WIFEXITED(proc.status) &&
		WEXITSTATUS(proc.status) != 0,
		"hmmfs with no arguments: wait status 0x%x", (unsigned int)proc.status);
	IT_TRUE(proc.err[0] != '\0', "no message on stderr");
}

static void expect_exit_0(void)
{
	IT_TRUE(proc.status != -1 && WIFEXITED(proc.status) &&
		WEXITSTATUS(proc.status) == 0,
		"wait status 0x%x, stderr: \"%s\"", (unsigned int)proc.status,
		proc.err);
}

static void help(void)
{
	char all[sizeof(proc.out) + sizeof(proc.err)];

	run_hmmfs(NULL, "--help", NULL, NULL, NULL, NULL);
	expect_exit_0();
	snprintf(all, sizeof(all), "%s%s", proc.out, proc.err);
	IT_HAS(all, "usage");
	IT_HAS(all, "BACKING");
	expect_nothing_mounted();
}

static void version(void)
{
	char all[sizeof(proc.out) + sizeof(proc.err)];
	regex_t re;

	run_hmmfs(NULL, "--version", NULL, NULL, NULL, NULL);
	expect_exit_0();
	snprintf(all, sizeof(all), "%s%s", proc.out, proc.err);
	IT_HAS(all, "hmmfs");
	IT_REQUIRE_EQ(regcomp(&re, "[0-9]+\\.[0-9]+", REG_EXTENDED | REG_NOSUB), 0);
	IT_TRUE(regexec(&re, all, 0, NULL, 0) == 0, "no version number in \"%s\"",
		all);
	regfree(&re);
}

/* In the child: a private mount namespace where /dev/fuse is /dev/null. */
static void hide_dev_fuse(void)
{
	if (unshare(CLONE_NEWNS) < 0 ||
	    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
	    mount("/dev/null", "/dev/fuse", NULL, MS_BIND, NULL) < 0) {
		dprintf(2, "test setup: cannot hide /dev/fuse: %s\n", strerror(errno));
		_exit(126);
	}
}

static void dev_fuse_unusable(void)
{
	run_hmmfs(hide_dev_fuse, it.backing, it.mnt, "-f", NULL, NULL);
	IT_REQUIRE(!WIFEXITED(proc.status) || WEXITSTATUS(proc.status) != 126,
		   "%s", proc.err);
	expect_failure_naming("/dev/fuse");
	expect_nothing_mounted();
}

/* A -f daemon gets @sig: exit 0, unmounted, data in BACKING. */
static void signal_unmounts(int sig)
{
	int status = -1, fd;

	it_mount_default(NULL, false);
	fd = IT_REQUIRE_OK(open(MNT("f"), O_CREAT | O_WRONLY, 0644));
	IT_EQ(write(fd, "written before the signal", 25), 25);
	IT_OK(close(fd));
	IT_REQUIRE_OK(kill(it.mount.pid, sig));
	IT_TRUE(it_wait_pid(it.mount.pid, 10000, &status) == 0,
		"daemon still running 10 s after signal %d", sig);
	if (status != -1) {
		it.mount.pid = 0;
		IT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0,
			"daemon wait status 0x%x after signal %d; log: %s",
			(unsigned int)status, sig, it_log_tail(1000));
	}
	IT_EQ(it_mount_count(it.mnt, NULL, NULL, 0), 0);
	IT_CONTENT_STR(BACK("f"), "written before the signal");
	if (status != -1 && it_mount_count(it.mnt, NULL, NULL, 0) == 0)
		it.mount.live = false;
}

static void sigterm_unmounts(void)
{
	signal_unmounts(SIGTERM);
}

static void sigint_unmounts(void)
{
	signal_unmounts(SIGINT);
}

/*
 * SIGTERM while the kernel still holds dirty pages of the mount: @len
 * pattern bytes written with write() (fd kept open) or through a
 * MAP_SHARED mapping (fd closed first, mapping kept, no msync).  The daemon
 * must get them written before it exits 0: all of them are in BACKING.
 */
static void sigterm_kernel_dirty(const char *opts, bool use_mmap, size_t len)
{
	struct stat st;
	int status = -1, fd;
	void *map = MAP_FAILED;

	it_mount_default(opts, false);
	fd = IT_REQUIRE_OK(open(MNT("f"), O_CREAT | O_RDWR, 0644));
	if (use_mmap) {
		IT_REQUIRE_OK(ftruncate(fd, (off_t)len));
		map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		IT_REQUIRE(map != MAP_FAILED, "mmap: %s", it_errname(errno));
		/* stored after close: close's FLUSH cannot write them */
		IT_OK(close(fd));
		fd = -1;
		it_pattern(map, len, 13, 0);
	} else {
		IT_REQUIRE_OK(it_pwrite_pattern(fd, 0, len, MiB, 13));
	}
	IT_REQUIRE_OK(kill(it.mount.pid, SIGTERM));
	/* the test keeps fd and mapping: the daemon's syncfs writes them */
	IT_TRUE(it_wait_pid(it.mount.pid, 60000, &status) == 0,
		"daemon still running 60 s after SIGTERM; log: %s",
		it_log_tail(1000));
	if (map != MAP_FAILED)
		munmap(map, len);
	if (fd >= 0)
		close(fd);	/* ENOTCONN is fine: the daemon is gone */
	if (status != -1) {
		it.mount.pid = 0;
		IT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0,
			"daemon wait status 0x%x; log: %s",
			(unsigned int)status, it_log_tail(1000));
	}
	if (it_mount_count(it.mnt, NULL, NULL, 0) == 0)
		it.mount.live = false;
	IT_OK(stat(BACK("f"), &st));
	IT_EQ(st.st_size, (off_t)len);
	IT_EQ(it_file_check(BACK("f"), 0, len, 13), -1);
	IT_EQ(it_log_count("syncing the kernel's dirty pages done"), 1);
}

static void sigterm_writeback_cache_open_fd(void)
{
	sigterm_kernel_dirty("writeback_cache", false, 20 * MiB);
}

static void sigterm_mmap_dirty(void)
{
	sigterm_kernel_dirty(NULL, true, 8 * MiB);
}

static void sigterm_mmap_dirty_writeback_cache(void)
{
	sigterm_kernel_dirty("writeback_cache", true, 8 * MiB);
}

static void umount_ends_daemon(void)
{
	int status = -1;

	it_mount_default(NULL, false);
	IT_REQUIRE_OK(it_put_str(MNT("f"), "data"));
	IT_REQUIRE_OK(umount2(it.mnt, 0));
	IT_TRUE(it_wait_pid(it.mount.pid, 10000, &status) == 0,
		"daemon still running 10 s after umount");
	if (status != -1) {
		it.mount.pid = 0;
		it.mount.live = false;
		IT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0,
			"daemon wait status 0x%x after umount", (unsigned int)status);
	}
	IT_CONTENT_STR(BACK("f"), "data");
}

/*
 * Does the command line @cmd (@n bytes, arguments NUL-separated) run the
 * hmmfs under test with @mnt as one whole argument?  (A substring match
 * once took another test's daemon, whose absolute mountpoint ends in the
 * same "m/mnt", for this one.)
 */
static bool cmdline_mounts(const char *cmd, ssize_t n, const char *mnt)
{
	const char *arg = cmd, *end = cmd + n;

	if (n <= 0 || strcmp(cmd, it.hmmfs) != 0)
		return false;
	for (arg += strlen(arg) + 1; arg < end; arg += strlen(arg) + 1)
		if (strcmp(arg, mnt) == 0)
			return true;
	return false;
}

/* Pid of the hmmfs process given @mnt as its mountpoint, or 0. */
static pid_t find_daemon_for(const char *mnt)
{
	char path[300], cmd[4096];
	struct dirent *e;
	DIR *d = opendir("/proc");
	pid_t found = 0;
	ssize_t n;

	while (d && !found && (e = readdir(d))) {
		int fd;

		if (atoi(e->d_name) <= 0 || atoi(e->d_name) == getpid())
			continue;
		snprintf(path, sizeof(path), "/proc/%s/cmdline", e->d_name);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		n = read(fd, cmd, sizeof(cmd) - 1);
		close(fd);
		if (n > 0 && (cmd[n] = '\0', cmdline_mounts(cmd, n, mnt)))
			found = atoi(e->d_name);
	}
	if (d)
		closedir(d);
	return found;
}

static bool wait_daemon_gone(const char *mnt, int ms)
{
	struct timespec nap = { 0, 10000000 };
	int i;

	for (i = 0; i < ms / 10; i++) {
		if (!find_daemon_for(mnt))
			return true;
		nanosleep(&nap, NULL);
	}
	return false;
}

static void daemonizes_without_f(void)
{
	pid_t daemon;

	run_hmmfs(NULL, it.backing, it.mnt, NULL, NULL, NULL);
	expect_exit_0();
	IT_REQUIRE_EQ(it_mount_count(it.mnt, NULL, NULL, 0), 1);
	daemon = find_daemon_for(it.mnt);
	IT_TRUE(daemon > 0, "no background daemon process found");
	IT_OK(it_put_str(MNT("f"), "background"));
	IT_CONTENT_STR(BACK("f"), "background");
	IT_OK(umount2(it.mnt, 0));
	IT_TRUE(wait_daemon_gone(it.mnt, 5000),
		"background daemon (pid %d) still running 5 s after umount",
		(int)find_daemon_for(it.mnt));
	if (find_daemon_for(it.mnt) > 0)
		kill(find_daemon_for(it.mnt), SIGKILL);
}

/* In the child before exec: relative paths below are from it.root. */
static void chdir_root(void)
{
	if (chdir(it.root) < 0)
		_exit(125);
}

static void chdir_root_no_cuda(void)
{
	chdir_root();
	setenv("HMMFS_CUDA_LIB", "/nonexistent/libcuda.so.1", 1);
}

/* MOUNTPOINT is not mounted, and not a dead mount either. */
static void expect_clean_mountpoint(void)
{
	struct stat st;

	IT_TRUE(stat(it.mnt, &st) == 0, "stat %s: %s", it.mnt, it_errname(errno));
	IT_EQ(it_mount_count(it.mnt, NULL, NULL, 0), 0);
}

/*
 * Relative BACKING and MOUNTPOINT, in the background: @sig ends the daemon
 * and the mount goes with it (the daemon's chdir("/") must not leave
 * libfuse unmounting a relative path from there).
 */
static void relative_paths_signal(int sig)
{
	pid_t daemon;

	run_hmmfs(chdir_root, "b/backing", "m/mnt", NULL, NULL, NULL);
	expect_exit_0();
	IT_REQUIRE_EQ(it_mount_count(it.mnt, NULL, NULL, 0), 1);
	daemon = find_daemon_for("m/mnt");
	IT_REQUIRE(daemon > 0, "no background daemon process found");
	IT_OK(it_put_str(MNT("f"), "relative"));
	IT_OK(kill(daemon, sig));
	IT_TRUE(wait_daemon_gone("m/mnt", 10000),
		"daemon (pid %d) still running 10 s after signal %d", (int)daemon, sig);
	if (find_daemon_for("m/mnt") > 0)
		kill(find_daemon_for("m/mnt"), SIGKILL);
	expect_clean_mountpoint();
	IT_CONTENT_STR(BACK("f"), "relative");
}

static void relative_paths_sigterm(void)
{
	relative_paths_signal(SIGTERM);
}

static void relative_paths_sigint(void)
{
	relative_paths_signal(SIGINT);
}

/* Relative paths, a start-up that fails after the fork: nothing left. */
static void relative_paths_late_failure(void)
{
	run_hmmfs(chdir_root_no_cuda, "b/backing", "m/mnt", "-o", "device=cuda", NULL);
	expect_failure_naming("cuda");
	IT_TRUE(!strstr(proc.err, "failed to unmount"), "stderr: %s", proc.err);
	expect_clean_mountpoint();
}

static void no_opencl_platform(void)
{
	setenv("OCL_ICD_VENDORS", "/nonexistent/vendors", 1);	/* ocl-icd's */
}

static void no_opencl_loader(void)
{
	setenv("HMMFS_OPENCL_LIB", "/nonexistent/libOpenCL.so.1", 1);
}

static void pocl_basic_device(void)
{
	setenv("POCL_DEVICES", "basic", 1);
}

static void opencl_kernels_fail(void)
{
	setenv("HMMFS_FAULT", "cl_build", 1);
}

/*
 * device=opencl where there is no OpenCL, no platform, POCL's basic
 * device (it deadlocks under concurrent queueing), or the kernels do not
 * compile: the mount is refused before it is mounted, and the message
 * says what is missing and how to get it (or the compiler's words).  The
 * last three need the runtime scripts/deps.sh installs.
 */
static void opencl_refused_clearly(void)
{
	run_hmmfs(no_opencl_loader, it.backing, it.mnt, "-o", "device=opencl", NULL);
	expect_failure_naming("cannot load the OpenCL ICD loader");
	IT_HAS(proc.err, "pocl-opencl-icd");
	expect_nothing_mounted();
	run_hmmfs(no_opencl_platform, it.backing, it.mnt, "-o", "device=opencl", NULL);
	expect_failure_naming("no OpenCL platform");
	IT_HAS(proc.err, "pocl-opencl-icd");
	expect_nothing_mounted();
	run_hmmfs(pocl_basic_device, it.backing, it.mnt, "-o", "device=opencl", NULL);
	expect_failure_naming("POCL_DEVICES=pthread");
	expect_nothing_mounted();
	run_hmmfs(opencl_kernels_fail, it.backing, it.mnt, "-o", "device=opencl", NULL);
	expect_failure_naming("building the kernels failed");
	IT_HAS(proc.err, "the compiler said");
	expect_nothing_mounted();
}

static char log_sock[PATH_MAX];

static void log_to_test_socket(void)
{
	setenv("HMMFS_LOG_SOCKET", log_sock, 1);
}

/* The next datagram on @fd within 5 s, into @buf (empty on timeout). */
static void log_recv(int fd, char *buf, size_t len)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	ssize_t n = 0;

	if (poll(&p, 1, 5000) == 1)
		n = recv(fd, buf, len - 1, 0);
	buf[n > 0 ? n : 0] = '\0';
}

/*
 * In the background the daemon's lines go to the system log (here a
 * socket of the test's, $HMMFS_LOG_SOCKET), each naming the mount point:
 * "mounted" first, "ended with exit status 0" after SIGTERM.
 */
static void background_logs_to_syslog(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char line[2048], want[PATH_MAX + 16];
	pid_t daemon;
	int fd;

	IT_REQUIRE(snprintf(log_sock, sizeof(log_sock), "%s/log.sock", it.root) <
		   (int)sizeof(sa.sun_path), "%s/log.sock: too long", it.root);
	memcpy(sa.sun_path, log_sock, strlen(log_sock) + 1);
	fd = IT_REQUIRE_OK(socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
	IT_REQUIRE_OK(bind(fd, (struct sockaddr *)&sa, sizeof(sa)));
	run_hmmfs(log_to_test_socket, it.backing, it.mnt, NULL, NULL, NULL);
	expect_exit_0();
	daemon = find_daemon_for(it.mnt);
	IT_REQUIRE(daemon > 0, "no background daemon process found");
	snprintf(want, sizeof(want), "%s: mounted", it.mnt);
	log_recv(fd, line, sizeof(line));
	IT_HAS(line, want);
	snprintf(want, sizeof(want), "hmmfs[%d]: ", (int)daemon);
	IT_HAS(line, want);
	IT_OK(kill(daemon, SIGTERM));
	IT_TRUE(wait_daemon_gone(it.mnt, 10000), "daemon still running");
	log_recv(fd, line, sizeof(line));
	IT_HAS(line, "ended with exit status 0");
	close(fd);
	unlink(log_sock);
}

/* MOUNTPOINT inside BACKING is refused, naming both. */
static void mountpoint_inside_backing(void)
{
	char inner[PATH_MAX + 8];

	snprintf(inner, sizeof(inner), "%s/m", it.backing);
	IT_REQUIRE_OK(mkdir(inner, 0755));
	run_hmmfs(NULL, it.backing, inner, "-f", NULL, NULL);
	expect_failure_naming("inside BACKING");
	IT_EQ(it_mount_count(inner, NULL, NULL, 0), 0);
	IT_EQ(it_mounts_below(it.root), 0);
}

/*
 * Started with a soft limit of 256 descriptors, the daemon raises its own
 * (open files and cached ones each hold one, and every inode does where
 * BACKING has no file handles), so 1500 files in one directory all come
 * and stay (xfstests generic/471 makes 10,000).
 */
static void raises_fd_limit(void)
{
	struct rlimit saved, low;
	struct stat st;
	char name[32];
	int fails = 0;

	/* only the soft limit: without CAP_SYS_RESOURCE, a hard one is for good */
	IT_REQUIRE_OK(getrlimit(RLIMIT_NOFILE, &saved));
	IT_REQUIRE(saved.rlim_max == RLIM_INFINITY || saved.rlim_max >= 2048,
		   "cannot run: the hard limit on descriptors (%llu) is below 2048",
		   (unsigned long long)saved.rlim_max);
	low = (struct rlimit){ 256, saved.rlim_max };
	IT_REQUIRE_OK(setrlimit(RLIMIT_NOFILE, &low));	/* the daemon inherits it */
	it_mount_default(NULL, false);
	IT_OK(setrlimit(RLIMIT_NOFILE, &saved));
	for (int i = 0; i < 1500; i++) {
		int fd;

		snprintf(name, sizeof(name), "f%d", i);
		fd = open(MNT(name), O_CREAT | O_WRONLY, 0644);
		if (fd < 0 && fails++ == 0)
			IT_TRUE(false, "create %s: %s", name, strerror(errno));
		if (fd >= 0)
			close(fd);
	}
	for (int i = 0; i < 1500; i++) {
		snprintf(name, sizeof(name), "f%d", i);
		if (stat(MNT(name), &st) < 0 && fails++ == 0)
			IT_TRUE(false, "stat %s: %s", name, strerror(errno));
	}
	IT_EQ(fails, 0);
}

static const struct it_test tests[] = {
	{ "backing_missing", backing_missing, 0, NULL },
	{ "backing_is_file", backing_is_file, 0, NULL },
	{ "mountpoint_missing", mountpoint_missing, 0, NULL },
	{ "mountpoint_is_file", mountpoint_is_file, 0, NULL },
	{ "mountpoint_already_mounted", mountpoint_already_mounted, 0, NULL },
	{ "option_unknown", option_unknown, 0, NULL },
	{ "option_malformed_attr_timeout", option_malformed_attr_timeout, 0, NULL },
	{ "option_malformed_entry_timeout", option_malformed_entry_timeout, 0, NULL },
	{ "option_empty_value", option_empty_value, 0, NULL },
	{ "option_device_bw_too_small", option_device_bw_too_small, 0, NULL },
	{ "no_arguments", no_arguments, 0, NULL },
	{ "help", help, 0, NULL },
	{ "version", version, 0, NULL },
	{ "dev_fuse_unusable", dev_fuse_unusable, 0, NULL },
	{ "sigterm_unmounts", sigterm_unmounts, 0, NULL },
	{ "sigint_unmounts", sigint_unmounts, 0, NULL },
	{ "sigterm_writeback_cache_open_fd", sigterm_writeback_cache_open_fd, 0, NULL },
	{ "sigterm_mmap_dirty", sigterm_mmap_dirty, 0, NULL },
	{ "sigterm_mmap_dirty_writeback_cache", sigterm_mmap_dirty_writeback_cache,
	  0, NULL },
	{ "umount_ends_daemon", umount_ends_daemon, 0, NULL },
	{ "daemonizes_without_f", daemonizes_without_f, 0, NULL },
	{ "relative paths, background, SIGTERM", relative_paths_sigterm, 0, NULL },
	{ "relative paths, background, SIGINT", relative_paths_sigint, 0, NULL },
	{ "relative paths, a failure after the fork", relative_paths_late_failure,
	  0, NULL },
	{ "mountpoint inside backing", mountpoint_inside_backing, 0, NULL },
	{ "device=opencl refused clearly (no loader, no platform, POCL basic, a bad build)",
	  opencl_refused_clearly, 0, NULL },
	{ "background: lines to the system log", background_logs_to_syslog, 0, NULL },
	{ "raises_fd_limit", raises_fd_limit, 0, NULL },
	{ NULL, NULL, 0, NULL },
};

const struct it_suite it_suite_startup = { "startup", NULL, IT_NO_MOUNT, tests };
