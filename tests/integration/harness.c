/* SPDX-License-Identifier: MIT */
/*
 * tests/integration/harness.c — the per-test directory tree, the daemon's
 * life cycle (start, wait for the mount, unmount, reap), process helpers,
 * file and pattern helpers, and assertions that print what they saw.
 *
 * A mount is known "up" when its MOUNTPOINT appears in
 * /proc/self/mountinfo; a daemon that exits first fails the test with its
 * output.  Teardown closes any descriptor the test left open inside the
 * tree, unmounts with umount2(MNT, 0) (retried while EBUSY, then
 * MNT_DETACH), waits for the daemon (then SIGTERM, then SIGKILL) and
 * removes the tree without crossing mount points.  See harness.h.
 */
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "include/hmmfs_ioctl.h"
#include "tests/integration/harness.h"

struct it_env it;

#define MAX_LIVE_MOUNTS 4
static struct it_mount *volatile live_mounts[MAX_LIVE_MOUNTS];
static pthread_mutex_t live_lock = PTHREAD_MUTEX_INITIALIZER;

/* ---- paths ----------------------------------------------------------- */

/* @dir "/" @rel into @dst (PATH_MAX), cut short if too long. */
static char *join_path(char *dst, const char *dir, const char *rel)
{
	size_t dl = strnlen(dir, PATH_MAX - 1);
	size_t rl = rel && *rel ? strnlen(rel, PATH_MAX - 2 - dl) : 0;

	memcpy(dst, dir, dl);
	if (rl) {
		dst[dl] = '/';
		memcpy(dst + dl + 1, rel, rl);
		dl += 1 + rl;
	}
	dst[dl] = '\0';
	return dst;
}

const char *it_path(const char *dir, const char *rel)
{
	static __thread char ring[16][PATH_MAX];
	static __thread unsigned int next;

	return join_path(ring[next++ % 16], dir, rel);
}

const char *MNT(const char *rel)
{
	return it_path(it.nomount ? it.backing : it.mnt, rel);
}

const char *BACK(const char *rel)
{
	return it_path(it.backing, rel);
}

const char *it_errname(int e)
{
	const char *name;

	if (e == 0)
		return "0";
	name = strerrorname_np(e);
	return name ? name : "E?";
}

/* ---- time ------------------------------------------------------------ */

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* ---- assertions ------------------------------------------------------ */

void it_assert(bool ok, bool fatal, const char *file, unsigned int line,
	       const char *fmt, ...)
{
	char msg[2048];
	va_list ap;

	if (ok) {
		CU_assertImplementation(CU_TRUE, line, "ok", file, "", CU_FALSE);
		return;
	}
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	CU_assertImplementation(CU_FALSE, line, msg, file, "",
				fatal ? CU_TRUE : CU_FALSE);
}

void it_assert_mem(const void *actual, const void *expected, size_t len,
		   const char *what, const char *file, unsigned int line)
{
	const unsigned char *a = actual, *x = expected;
	size_t i;

	for (i = 0; i < len && a[i] == x[i]; i++)
		;
	if (i == len)
		it_assert(true, false, file, line, "ok");
	else
		it_assert(false, false, file, line,
			  "%s: byte %zu of %zu is 0x%02x, expected 0x%02x",
			  what, i, len, a[i], x[i]);
}

void it_assert_content(const char *path, const void *expected, size_t len,
		       const char *file, unsigned int line)
{
	unsigned char *buf = malloc(len + 1);
	ssize_t n;

	if (!buf) {
		it_assert(false, false, file, line, "out of memory");
		return;
	}
	n = it_get(path, buf, len + 1);
	if (n < 0)
		it_assert(false, false, file, line, "read %s: %s", path,
			  it_errname((int)-n));
	else if ((size_t)n != len)
		it_assert(false, false, file, line,
			  "%s holds %zd bytes, expected %zu", path, n, len);
	else
		it_assert_mem(buf, expected, len, path, file, line);
	free(buf);
}

/* ---- files and patterns ---------------------------------------------- */

int it_put(const char *path, const void *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ssize_t n;
	int err;

	if (fd < 0)
		return -errno;
	n = write(fd, buf, len);
	err = n < 0 ? -errno : ((size_t)n != len ? -EIO : 0);
	if (close(fd) < 0 && !err)
		err = -errno;
	return err;
}

int it_put_str(const char *path, const char *s)
{
	return it_put(path, s, strlen(s));
}

ssize_t it_get(const char *path, void *buf, size_t cap)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t done = 0;
	ssize_t n = 0;

	if (fd < 0)
		return -errno;
	while (done < cap) {
		n = read(fd, (char *)buf + done, cap - done);
		if (n <= 0)
			break;
		done += (size_t)n;
	}
	if (n < 0)
		n = -errno;
	close(fd);
	return n < 0 ? n : (ssize_t)done;
}

const char *it_get_str(const char *path)
{
	static __thread char buf[4096];
	ssize_t n = it_get(path, buf, sizeof(buf) - 1);

	if (n < 0)
		snprintf(buf, sizeof(buf), "<%s>", it_errname((int)-n));
	else
		buf[n] = '\0';
	return buf;
}

static unsigned char pattern_byte(uint32_t seed, uint64_t off)
{
	uint64_t x = (off >> 3) * 0x9E3779B97F4A7C15ULL + seed * 0x85EBCA6BULL;

	x ^= x >> 29;
	return (unsigned char)((x >> ((off & 7) * 8)) ^ (x >> 32) ^ off);
}

void it_pattern(void *buf, size_t len, uint32_t seed, off_t offset)
{
	unsigned char *p = buf;
	size_t i;

	for (i = 0; i < len; i++)
		p[i] = pattern_byte(seed, (uint64_t)offset + i);
}

ssize_t it_pattern_mismatch(const void *buf, size_t len, uint32_t seed,
			    off_t offset)
{
	const unsigned char *p = buf;
	size_t i;

	for (i = 0; i < len; i++)
		if (p[i] != pattern_byte(seed, (uint64_t)offset + i))
			return (ssize_t)i;
	return -1;
}

ssize_t it_first_not(const void *buf, size_t len, unsigned char byte)
{
	const unsigned char *p = buf;
	size_t i;

	for (i = 0; i < len; i++)
		if (p[i] != byte)
			return (ssize_t)i;
	return -1;
}

int it_pwrite_pattern(int fd, off_t off, size_t len, size_t chunk,
		      uint32_t seed)
{
	unsigned char *buf = malloc(chunk);
	size_t done = 0;
	int err = 0;

	if (!buf)
		return -ENOMEM;
	while (done < len && !err) {
		size_t n = len - done < chunk ? len - done : chunk;
		ssize_t w;

		it_pattern(buf, n, seed, off + (off_t)done);
		w = pwrite(fd, buf, n, off + (off_t)done);
		if (w < 0)
			err = -errno;
		else if ((size_t)w != n)
			err = -EIO;
		done += n;
	}
	free(buf);
	return err;
}

off_t it_pread_check(int fd, off_t off, size_t len, size_t chunk,
		     uint32_t seed)
{
	unsigned char *buf = malloc(chunk);
	size_t done = 0;
	off_t bad = -1;

	if (!buf)
		return off;
	while (done < len && bad < 0) {
		size_t n = len - done < chunk ? len - done : chunk;
		off_t at = off + (off_t)done;
		ssize_t r = pread(fd, buf, n, at);
		ssize_t mis;

		if (r != (ssize_t)n) {
			bad = at + (r > 0 ? r : 0);
			break;
		}
		mis = it_pattern_mismatch(buf, n, seed, at);
		if (mis >= 0)
			bad = at + mis;
		done += n;
	}
	free(buf);
	return bad;
}

off_t it_file_check(const char *path, off_t off, size_t len, uint32_t seed)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	off_t bad;

	if (fd < 0)
		return off;
	bad = it_pread_check(fd, off, len, 1 << 20, seed);
	close(fd);
	return bad;
}

/* ---- mountinfo and the daemon log ------------------------------------ */

/* Undo mountinfo's octal escapes (\040 for a space) in place. */
static void unescape_octal(char *s)
{
	char *out = s;

	while (*s) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '7' && s[2] && s[3]) {
			*out++ = (char)(((s[1] - '0') << 6) | ((s[2] - '0') << 3) |
					(s[3] - '0'));
			s += 4;
		} else {
			*out++ = *s++;
		}
	}
	*out = '\0';
}

/* Split a mountinfo line; 0 and the mount point, fstype and source. */
static int parse_mountinfo(char *line, char **mnt, char **fstype, char **source)
{
	char *save = NULL, *tok;
	int field = 0;
	bool after_dash = false;

	*mnt = *fstype = *source = NULL;
	for (tok = strtok_r(line, " \n", &save); tok;
	     tok = strtok_r(NULL, " \n", &save), field++) {
		if (field == 4)
			*mnt = tok;
		else if (after_dash && !*fstype)
			*fstype = tok;
		else if (after_dash && !*source)
			*source = tok;
		else if (field > 5 && strcmp(tok, "-") == 0)
			after_dash = true;
	}
	if (!*mnt || !*fstype || !*source)
		return -1;
	unescape_octal(*mnt);
	unescape_octal(*source);
	return 0;
}

static int scan_mountinfo(const char *path, bool prefix, char *fstype,
			  char *source, size_t len)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	size_t plen = strlen(path), cap = 0;
	char *line = NULL, *m, *t, *s;
	int count = 0;

	if (!f)
		return -1;
	while (getline(&line, &cap, f) > 0) {
		if (parse_mountinfo(line, &m, &t, &s))
			continue;
		if (prefix ? strncmp(m, path, plen) != 0 || m[plen] != '/'
			   : strcmp(m, path) != 0)
			continue;
		count++;
		if (fstype)
			snprintf(fstype, len, "%s", t);
		if (source)
			snprintf(source, len, "%s", s);
	}
	free(line);
	fclose(f);
	return count;
}

int it_mount_count(const char *path, char *fstype, char *source, size_t len)
{
	return scan_mountinfo(path, false, fstype, source, len);
}

int it_mounts_below(const char *dir)
{
	return scan_mountinfo(dir, true, NULL, NULL, 0);
}

static char *read_log(size_t *len)
{
	int fd = open(it.log, O_RDONLY | O_CLOEXEC);
	struct stat st;
	char *buf;
	ssize_t n;

	if (fd < 0 || fstat(fd, &st) < 0) {
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	buf = malloc((size_t)st.st_size + 1);
	n = buf ? pread(fd, buf, (size_t)st.st_size, 0) : -1;
	close(fd);
	if (n < 0) {
		free(buf);
		return NULL;
	}
	buf[n] = '\0';
	*len = (size_t)n;
	return buf;
}

int it_log_count(const char *needle)
{
	size_t len;
	char *log = read_log(&len), *p;
	int count = 0;

	if (!log)
		return -1;
	for (p = strstr(log, needle); p; p = strstr(p + 1, needle))
		count++;
	free(log);
	return count;
}

const char *it_log_tail(size_t max)
{
	static char buf[4096];
	size_t len;
	char *log = read_log(&len);

	if (max >= sizeof(buf))
		max = sizeof(buf) - 1;
	if (!log) {
		snprintf(buf, sizeof(buf), "(no daemon log)");
		return buf;
	}
	snprintf(buf, sizeof(buf), "%s", len > max ? log + len - max : log);
	free(log);
	return buf;
}

/* ---- processes ------------------------------------------------------- */

int it_wait_pid(pid_t pid, int timeout_ms, int *status)
{
	long long end = now_ms() + timeout_ms;

	for (;;) {
		pid_t r = waitpid(pid, status, WNOHANG);

		if (r == pid)
			return 0;
		if (r < 0 && errno != EINTR)
			return -1;
		if (now_ms() >= end)
			return -1;
		sleep_ms(5);
	}
}

/* Wait, then SIGTERM, then SIGKILL; the wait status or -1. */
static int reap(pid_t pid, int timeout_ms)
{
	int status;

	if (it_wait_pid(pid, timeout_ms, &status) == 0)
		return status;
	kill(pid, SIGTERM);
	if (it_wait_pid(pid, 2000, &status) == 0)
		return -1;
	kill(pid, SIGKILL);
	if (it_wait_pid(pid, 2000, &status) == 0)
		return -1;
	return -1;
}

static void drain(int *fd, char *buf, size_t cap, size_t *used)
{
	ssize_t n;

	if (*used + 1 < cap)
		n = read(*fd, buf + *used, cap - 1 - *used);
	else
		n = read(*fd, (char[256]){ 0 }, 256);	/* discard overflow */
	if (n > 0 && *used + 1 < cap) {
		*used += (size_t)n;
		buf[*used] = '\0';
	} else if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) {
		close(*fd);
		*fd = -1;
	}
}

static void exec_child(char *const argv[], void (*pre_exec)(void),
		       int out_fd, int err_fd)
{
	int null = open("/dev/null", O_RDONLY);

	dup2(null, 0);
	dup2(out_fd, 1);
	dup2(err_fd, 2);
	close_range(3, ~0U, 0);
	if (pre_exec)
		pre_exec();
	execv(argv[0], argv);
	dprintf(2, "exec %s: %s\n", argv[0], strerror(errno));
	_exit(127);
}

/* Read both pipes until @pid is reaped (plus a short grace for late
 * output) or @end passes; returns 0 if reaped. */
static int collect(pid_t pid, int fds[2], struct it_proc *p, long long end)
{
	size_t used[2] = { 0, 0 };
	long long reaped_at = -1;

	while (fds[0] >= 0 || fds[1] >= 0) {
		struct pollfd pfd[2] = { { fds[0], POLLIN, 0 }, { fds[1], POLLIN, 0 } };

		if (reaped_at < 0 && waitpid(pid, &p->status, WNOHANG) == pid)
			reaped_at = now_ms();
		if ((reaped_at >= 0 && now_ms() > reaped_at + 300) || now_ms() > end)
			break;
		if (poll(pfd, 2, 20) <= 0)
			continue;
		if (fds[0] >= 0 && pfd[0].revents)
			drain(&fds[0], p->out, sizeof(p->out), &used[0]);
		if (fds[1] >= 0 && pfd[1].revents)
			drain(&fds[1], p->err, sizeof(p->err), &used[1]);
	}
	if (reaped_at < 0)
		reaped_at = it_wait_pid(pid, (int)(end > now_ms() ? end - now_ms() : 0),
					&p->status) == 0 ? now_ms() : -1;
	return reaped_at >= 0 ? 0 : -1;
}

int it_spawn(char *const argv[], void (*pre_exec)(void), int timeout_ms,
	     struct it_proc *p)
{
	int out[2], err[2], fds[2];
	pid_t pid;

	memset(p, 0, sizeof(*p));
	p->status = -1;
	if (pipe2(out, O_CLOEXEC) < 0)
		return -1;
	if (pipe2(err, O_CLOEXEC) < 0) {
		close(out[0]);
		close(out[1]);
		return -1;
	}
	pid = fork();
	if (pid == 0)
		exec_child(argv, pre_exec, out[1], err[1]);
	close(out[1]);
	close(err[1]);
	fds[0] = out[0];
	fds[1] = err[0];
	if (pid < 0 || collect(pid, fds, p, now_ms() + timeout_ms) < 0) {
		p->timed_out = pid > 0;
		if (pid > 0) {
			kill(pid, SIGKILL);
			it_wait_pid(pid, 2000, &p->status);
		}
	}
	if (fds[0] >= 0)
		close(fds[0]);
	if (fds[1] >= 0)
		close(fds[1]);
	return p->timed_out || pid < 0 ? -1 : 0;
}

static void become(uid_t uid, gid_t gid)
{
	if (gid != (gid_t)-1 && (setgroups(0, NULL) < 0 || setgid(gid) < 0))
		_exit(254);
	if (uid != (uid_t)-1 && setuid(uid) < 0)
		_exit(254);
}

int it_child(int (*fn)(void *arg, void *out), void *arg, void *out,
	     size_t outlen, uid_t uid, gid_t gid)
{
	int pfd[2], status, ret;
	pid_t pid;

	if (pipe2(pfd, O_CLOEXEC) < 0)
		return -1;
	pid = fork();
	if (pid == 0) {
		close(pfd[0]);
		become(uid, gid);
		ret = fn(arg, out);
		if (outlen && write(pfd[1], out, outlen) != (ssize_t)outlen)
			_exit(253);
		_exit(ret & 255);
	}
	close(pfd[1]);
	if (pid < 0 || it_wait_pid(pid, 10000, &status) < 0) {
		if (pid > 0) {
			kill(pid, SIGKILL);
			it_wait_pid(pid, 2000, &status);
		}
		close(pfd[0]);
		return -1;
	}
	if (outlen && read(pfd[0], out, outlen) != (ssize_t)outlen)
		status = -1;
	close(pfd[0]);
	if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) >= 253)
		return -1;
	return WEXITSTATUS(status);
}

/* ---- mounts ---------------------------------------------------------- */

static void register_live(struct it_mount *m)
{
	int i;

	pthread_mutex_lock(&live_lock);
	for (i = 0; i < MAX_LIVE_MOUNTS; i++) {
		if (!live_mounts[i]) {
			live_mounts[i] = m;
			break;
		}
	}
	pthread_mutex_unlock(&live_lock);
}

static void unregister_live(struct it_mount *m)
{
	int i;

	pthread_mutex_lock(&live_lock);
	for (i = 0; i < MAX_LIVE_MOUNTS; i++)
		if (live_mounts[i] == m)
			live_mounts[i] = NULL;
	pthread_mutex_unlock(&live_lock);
}

/* The daemon's pid, read under the lock the watchdog kills under. */
static pid_t take_pid(struct it_mount *m)
{
	pid_t pid;

	pthread_mutex_lock(&live_lock);
	pid = m->pid;
	m->pid = 0;
	pthread_mutex_unlock(&live_lock);
	return pid;
}

static pid_t start_daemon(const char *backing, const char *mnt,
			  const char *opts, bool debug)
{
	char *argv[8];
	int n = 0, log;
	pid_t pid;

	argv[n++] = (char *)it.hmmfs;
	argv[n++] = (char *)backing;
	argv[n++] = (char *)mnt;
	argv[n++] = "-f";
	if (debug)
		argv[n++] = "-d";
	if (opts && *opts) {
		argv[n++] = "-o";
		argv[n++] = (char *)opts;
	}
	argv[n] = NULL;
	log = open(it.log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (log < 0)
		return -1;
	pid = fork();
	if (pid == 0)
		exec_child(argv, NULL, log, log);
	close(log);
	return pid;
}

int it_mount_start(struct it_mount *m, const char *backing, const char *mnt,
		   const char *opts, bool debug, char *err, size_t errlen)
{
	int before = it_mount_count(mnt, NULL, NULL, 0), status;
	long long end = now_ms() + 10000;

	memset(m, 0, sizeof(*m));
	snprintf(m->mnt, sizeof(m->mnt), "%s", mnt);
	m->pid = start_daemon(backing, mnt, opts, debug);
	if (m->pid < 0) {
		snprintf(err, errlen, "fork: %s", strerror(errno));
		return -1;
	}
	m->live = true;
	register_live(m);
	while (it_mount_count(mnt, NULL, NULL, 0) <= before) {
		if (waitpid(m->pid, &status, WNOHANG) == m->pid) {
			m->pid = 0;
			m->live = false;
			unregister_live(m);
			snprintf(err, errlen, "hmmfs exited (status 0x%x) before mounting: %s",
				 status, it_log_tail(1500));
			return -1;
		}
		if (now_ms() > end) {
			it_mount_stop(m, &status);
			snprintf(err, errlen, "no mount at %s after 10 s: %s", mnt,
				 it_log_tail(1500));
			return -1;
		}
		sleep_ms(5);
	}
	return 0;
}

static int unmount_path(const char *mnt)
{
	int i;

	for (i = 0; i < 40; i++) {
		if (umount2(mnt, 0) == 0 || errno == EINVAL || errno == ENOENT)
			return 0;
		if (errno != EBUSY)
			break;
		sleep_ms(25);
	}
	umount2(mnt, MNT_DETACH);
	return -1;
}

int it_mount_stop(struct it_mount *m, int *status)
{
	int ret = 0;
	pid_t pid;

	*status = -1;
	if (!m->live)
		return 0;
	if (it_mount_count(m->mnt, NULL, NULL, 0) > 0)
		ret = unmount_path(m->mnt);
	pid = take_pid(m);
	if (pid > 0)
		*status = reap(pid, 10000);
	m->live = false;
	unregister_live(m);
	return ret;
}

static char mount_opts[1024];	/* of the last it_mount_default() */

/* Does the word @opt appear in the comma-separated list @list? */
static bool opt_listed(const char *list, const char *opt)
{
	size_t len = strlen(opt);

	for (const char *p = list; p && *p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL)
		if (!strncmp(p, opt, len) && (p[len] == ',' || p[len] == '\0'))
			return true;
	return false;
}

bool it_writeback_cache(void)
{
	return !opt_listed(mount_opts, "nowriteback_cache") &&
	       !opt_listed(mount_opts, "direct_io");
}

void it_mount_default(const char *opts, bool debug)
{
	const char *extra = getenv("HMMFS_IT_OPTS");
	char err[2048], all[1024];

	snprintf(mount_opts, sizeof(mount_opts), "%s,%s", extra ? extra : "",
		 opts ? opts : "");
	if (it.nomount)
		return;
	/* $HMMFS_IT_OPTS first, so that a test's own options win */
	if (extra && *extra) {
		snprintf(all, sizeof(all), "%s%s%s", extra, opts && *opts ? "," : "",
			 opts ? opts : "");
		opts = all;
	}
	IT_REQUIRE(it_mount_start(&it.mount, it.backing, it.mnt, opts, debug, err,
				  sizeof(err)) == 0,
		   "mount hmmfs -o '%s': %s", opts ? opts : "", err);
}

/* ---- the tree -------------------------------------------------------- */

static int make_dir(char *dst, const char *parent, const char *name)
{
	join_path(dst, parent, name);
	if (mkdir(dst, 0755) < 0)
		return -1;
	return chmod(dst, 0755);
}

int it_env_create(char *err, size_t errlen)
{
	const char *tmp = getenv("HMMFS_IT_TMPDIR");
	char tmpl[PATH_MAX];

	snprintf(tmpl, sizeof(tmpl), "%s/hmmfs-it.XXXXXX", tmp ? tmp : "/tmp");
	if (!mkdtemp(tmpl) || !realpath(tmpl, it.root) || chmod(it.root, 0755) < 0 ||
	    make_dir(it.outside, it.root, "b") < 0 ||
	    make_dir(it.backing, it.outside, "backing") < 0 ||
	    make_dir(it.mnt_parent, it.root, "m") < 0 ||
	    make_dir(it.mnt, it.mnt_parent, "mnt") < 0) {
		snprintf(err, errlen, "cannot create %s: %s", tmpl, strerror(errno));
		return -1;
	}
	join_path(it.log, it.root, "daemon.log");
	return 0;
}

static int remove_entry(const char *path, const struct stat *st, int type,
			struct FTW *ftw)
{
	(void)st;
	(void)type;
	(void)ftw;
	remove(path);
	return 0;
}

/* Detach every mount below the tree, so removing it cannot hang. */
static void detach_mounts_below(const char *root)
{
	char mnt[PATH_MAX];
	FILE *f;
	char *line = NULL, *m, *t, *s;
	size_t cap = 0, len = strlen(root);
	int pass;

	for (pass = 0; pass < 8 && scan_mountinfo(root, true, NULL, NULL, 0) > 0;
	     pass++) {
		f = fopen("/proc/self/mountinfo", "re");
		if (!f)
			return;
		while (getline(&line, &cap, f) > 0) {
			if (parse_mountinfo(line, &m, &t, &s) ||
			    strncmp(m, root, len) != 0 || m[len] != '/')
				continue;
			snprintf(mnt, sizeof(mnt), "%s", m);
			umount2(mnt, MNT_DETACH);
		}
		fclose(f);
	}
	free(line);
}

/* Close descriptors the test left open on files inside the tree. */
static void close_fds_in_tree(void)
{
	char link[PATH_MAX], target[PATH_MAX];
	size_t len = strlen(it.root);
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	ssize_t n;

	if (!d)
		return;
	while ((e = readdir(d))) {
		int fd = atoi(e->d_name);

		if (e->d_name[0] == '.' || fd == dirfd(d))
			continue;
		snprintf(link, sizeof(link), "/proc/self/fd/%s", e->d_name);
		n = readlink(link, target, sizeof(target) - 1);
		if (n <= 0)
			continue;
		target[n] = '\0';
		if (strncmp(target, it.root, len) == 0 && target[len] == '/')
			close(fd);
	}
	closedir(d);
}

void it_env_destroy(void)
{
	if (!it.root[0])
		return;
	detach_mounts_below(it.root);
	nftw(it.root, remove_entry, 32, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
	it.root[0] = '\0';
}

void it_test_cleanup(void)
{
	int status, i;

	it_watchdog(0);
	if (!it.root[0])
		return;
	close_fds_in_tree();
	it_mount_stop(&it.mount, &status);
	for (i = 0; i < MAX_LIVE_MOUNTS; i++)
		if (live_mounts[i])
			it_mount_stop(live_mounts[i], &status);
	it_env_destroy();
}

/* ---- signals, exit and the watchdog ---------------------------------- */

static void kill_live_daemons(bool detach)
{
	int i;

	for (i = 0; i < MAX_LIVE_MOUNTS; i++) {
		struct it_mount *m = live_mounts[i];

		if (!m)
			continue;
		if (m->pid > 0)
			kill(m->pid, SIGKILL);
		if (detach)
			umount2(m->mnt, MNT_DETACH);
	}
}

/* rm -rf the tree with only async-signal-safe calls (fork, execve). */
static void remove_tree_from_handler(void)
{
	char *const argv[] = { "rm", "-rf", "--one-file-system", it.root, NULL };
	char *const envp[] = { NULL };
	int status;
	pid_t pid;

	if (!it.root[0])
		return;
	pid = fork();
	if (pid == 0) {
		execve("/bin/rm", argv, envp);
		_exit(127);
	}
	if (pid > 0)
		waitpid(pid, &status, 0);
}

static void on_fatal_signal(int sig)
{
	static const char msg[] = "\nintegration: interrupted, unmounting\n";

	if (write(2, msg, sizeof(msg) - 1) < 0) {
		/* nothing to do */
	}
	kill_live_daemons(true);
	remove_tree_from_handler();
	signal(sig, SIG_DFL);
	raise(sig);
}

/*
 * The watchdog is a thread, not an alarm: a test blocked on a hung mount
 * may sit in an uninterruptible wait (a locked page), where no signal
 * handler of its own can run.  Killing the daemon aborts the connection
 * and wakes it up.
 */
static pthread_mutex_t wd_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wd_cond = PTHREAD_COND_INITIALIZER;
static long long wd_deadline_ms;	/* 0: disarmed */
static bool wd_started;

static void watchdog_fire(void)
{
	static const char msg[] = "\nintegration: test timed out; killing the daemon\n";

	it.timed_out = 1;
	if (write(2, msg, sizeof(msg) - 1) < 0) {
		/* nothing to do */
	}
	pthread_mutex_lock(&live_lock);
	kill_live_daemons(false);
	pthread_mutex_unlock(&live_lock);
}

static void *watchdog_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&wd_lock);
	for (;;) {
		long long now = now_ms();

		if (wd_deadline_ms && now >= wd_deadline_ms) {
			wd_deadline_ms = 0;
			watchdog_fire();
		}
		pthread_mutex_unlock(&wd_lock);
		sleep_ms(100);
		pthread_mutex_lock(&wd_lock);
		while (!wd_deadline_ms)
			pthread_cond_wait(&wd_cond, &wd_lock);
	}
	return NULL;
}

static void cleanup_at_exit(void)
{
	it_test_cleanup();
}

void it_install_handlers(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_fatal_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	atexit(cleanup_at_exit);
}

void it_watchdog(unsigned int seconds)
{
	pthread_t th;

	pthread_mutex_lock(&wd_lock);
	if (!wd_started && pthread_create(&th, NULL, watchdog_main, NULL) == 0) {
		pthread_detach(th);
		wd_started = true;
	}
	if (seconds)
		it.timed_out = 0;
	wd_deadline_ms = seconds ? now_ms() + seconds * 1000LL : 0;
	pthread_cond_signal(&wd_cond);
	pthread_mutex_unlock(&wd_lock);
}

/* ---- hmmfs ioctls ------------------------------------------------------- */

int it_migrate(int fd, uint32_t to, uint64_t off, uint64_t len, uint64_t *moved)
{
	struct hmmfs_ioc_migrate m = { .version = HMMFS_IOC_VERSION, .to = to,
				       .offset = off, .length = len };
	int ret = ioctl(fd, HMMFS_IOC_MIGRATE, &m);

	if (moved)
		*moved = m.moved;
	return ret;
}

struct hmmfs_ioc_residency *it_residency(int fd)
{
	static struct hmmfs_ioc_residency r;

	r = (struct hmmfs_ioc_residency){ .version = HMMFS_IOC_VERSION };
	IT_OK(ioctl(fd, HMMFS_IOC_RESIDENCY, &r));
	return &r;
}

const struct hmmfs_ioc_stats *it_stats(void)
{
	static struct hmmfs_ioc_stats st;
	int fd = open(it.mnt, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	IT_REQUIRE(fd >= 0, "open %s: %s", it.mnt, it_errname(errno));
	st = (struct hmmfs_ioc_stats){ 0 };
	IT_OK(ioctl(fd, HMMFS_IOC_STATS, &st));
	close(fd);
	return &st;
}

void it_ops(struct hmmfs_ioc_ops *ops)
{
	int fd = open(it.mnt, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	IT_REQUIRE(fd >= 0, "open %s: %s", it.mnt, it_errname(errno));
	memset(ops, 0, sizeof(*ops));
	IT_OK(ioctl(fd, HMMFS_IOC_OPS, ops));
	close(fd);
	IT_EQ(ops->version, HMMFS_IOC_VERSION);
	IT_EQ(ops->available, 1);
}

void it_kernel_forgets(uint64_t want)
{
	for (int i = 0; i < 50 && it_stats()->files_detached < want; i++) {
		sync();
		IT_REQUIRE_OK(it_put_str("/proc/sys/vm/drop_caches", "2"));
		usleep(100 * 1000);
	}
	IT_TRUE(it_stats()->files_detached >= want,
		"%llu files detached, want %llu",
		(unsigned long long)it_stats()->files_detached,
		(unsigned long long)want);
}

bool it_backing_reuse(const struct stat *old, const char *data, char name[32])
{
	struct stat st;

	for (int i = 0; i < 2000; i++) {
		snprintf(name, 32, "new%d", i);
		IT_REQUIRE_OK(it_put_str(BACK(name), data));
		IT_REQUIRE_OK(stat(BACK(name), &st));
		if (st.st_ino != old->st_ino)
			continue;
		printf("  (inode number %llu came back after %d files)\n",
		       (unsigned long long)old->st_ino, i + 1);
		IT_REQUIRE_OK(utimensat(AT_FDCWD, BACK(name), (struct timespec[2]){
						old->st_atim, old->st_mtim }, 0));
		return true;
	}
	printf("  (BACKING gave no inode number twice in 2000 files: nothing "
	       "to check)\n");
	return false;
}
