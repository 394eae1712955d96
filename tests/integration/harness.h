/* SPDX-License-Identifier: MIT */
/*
 * tests/integration/harness.h — mount hmmfs for one test, check, tear down.
 *
 * Every test runs against a fresh directory tree made by it_env_create():
 *
 *     /tmp/hmmfs-it.XXXXXX/         it.root
 *         b/                        it.outside: the parent of BACKING
 *             backing/              it.backing
 *         m/                        it.mnt_parent: the parent of MOUNTPOINT
 *             mnt/                  it.mnt
 *         daemon.log                the daemon's stdout and stderr
 *
 * BACKING and MOUNTPOINT have different parents on purpose, so that a
 * symlink "../x" resolves differently through the mount and in BACKING.
 *
 * main.c runs each test through one trampoline: create the tree, start
 * "$HMMFS BACKING MOUNTPOINT -f [-o opts]" and wait for the mount, run the
 * test, then unmount, reap the daemon (its exit status must be 0) and
 * remove the tree.  The unmount and the removal also happen when a fatal
 * assertion ended the test early, at exit, and on SIGINT/SIGTERM, so a
 * failed run never leaves a mount behind.  A watchdog thread kills a hung
 * daemon, which aborts the FUSE connection and unblocks the test.
 *
 * The IT_* assertion macros report the values they saw (errno names,
 * numbers, first differing byte), not just the expression text.
 */
#ifndef HMMFS_TESTS_INTEGRATION_HARNESS_H
#define HMMFS_TESTS_INTEGRATION_HARNESS_H

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <CUnit/CUnit.h>

/* ---- suites ---------------------------------------------------------- */

/* Test flags. */
#define IT_NO_MOUNT	0x1	/* create the tree only; the test mounts if it wants */
#define IT_DEBUG	0x2	/* run the daemon with -d (requests logged) */
/* moves a GiB or more: the watchdog waits IT_LONG_FACTOR times longer */
#define IT_LONG		0x4
#define IT_LONG_FACTOR	6

struct it_test {
	const char *name;
	void (*fn)(void);
	unsigned int flags;
	const char *opts;	/* -o list; NULL: the suite's */
};

struct it_suite {
	const char *name;
	const char *opts;	/* -o list for every test, or NULL */
	unsigned int flags;	/* added to every test's flags */
	const struct it_test *tests;	/* ended by a NULL name */
};

extern const struct it_suite it_suite_attr, it_suite_names, it_suite_io,
	it_suite_fallocate, it_suite_mmap, it_suite_dir, it_suite_xattr,
	it_suite_access, it_suite_locks, it_suite_concurrency,
	it_suite_escape, it_suite_startup, it_suite_options,
	it_suite_direct_io, it_suite_cache, it_suite_device, it_suite_ksm,
	it_suite_faults, it_suite_badinput, it_suite_writes;

/* ---- the environment of the running test ----------------------------- */

struct it_mount {
	pid_t pid;		/* the daemon, or 0 when not known */
	bool live;		/* mounted by us and not yet torn down */
	char mnt[PATH_MAX];
};

struct it_env {
	const char *hmmfs;	/* $HMMFS, absolute */
	const char *hmmfsctl;	/* $HMMFSCTL, may be NULL */
	bool nomount;		/* HMMFS_IT_NOMOUNT=1: the "mount" is BACKING */
	char root[PATH_MAX];
	char outside[PATH_MAX];
	char backing[PATH_MAX];
	char mnt_parent[PATH_MAX];
	char mnt[PATH_MAX];
	char log[PATH_MAX];
	struct it_mount mount;	/* the test's mount */
	_Atomic int timed_out;	/* the watchdog fired */
};

extern struct it_env it;

/* Paths inside the mount and inside BACKING ("" is the root itself).
 * Each call returns one of 16 per-thread rotating buffers. */
const char *MNT(const char *rel);
const char *BACK(const char *rel);
const char *it_path(const char *dir, const char *rel);

int it_env_create(char *err, size_t errlen);
void it_env_destroy(void);

/* Mount it.backing at it.mnt with $HMMFS_IT_OPTS (if set), then @opts;
 * fatal CUnit failure (with the daemon's output) if it does not come up
 * within 10 s. */
void it_mount_default(const char *opts, bool debug);
/* The last it_mount_default() mounted with the FUSE writeback cache (the
 * default: neither nowriteback_cache nor direct_io). */
bool it_writeback_cache(void);
/* Start "$HMMFS backing mnt -f [-d] [-o opts]"; 0 once mounted. */
int it_mount_start(struct it_mount *m, const char *backing, const char *mnt,
		   const char *opts, bool debug, char *err, size_t errlen);
/* Unmount (retrying, then lazily) and reap; *status is the daemon's wait
 * status, or -1 if it was not reaped.  Returns 0, or -1 if the mount
 * could only be detached lazily. */
int it_mount_stop(struct it_mount *m, int *status);
/* Tear down whatever the current test left; safe to call twice. */
void it_test_cleanup(void);
/* Install the atexit and SIGINT/SIGTERM/SIGHUP handlers. */
void it_install_handlers(void);
/* Arm (seconds > 0) or disarm (0) the per-test watchdog thread. */
void it_watchdog(unsigned int seconds);

/* Number of mounts at @path in /proc/self/mountinfo; if @fstype/@source
 * are given, the last one's fields are copied there. */
int it_mount_count(const char *path, char *fstype, char *source, size_t len);
/* Number of mounts strictly below @dir. */
int it_mounts_below(const char *dir);
struct hmmfs_ioc_residency;
/* HMMFS_IOC_MIGRATE of [@off, @off + @len) of @fd (0, 0: all of it) to
 * @to; *@moved (if given) gets the pages moved.  Returns ioctl()'s. */
int it_migrate(int fd, uint32_t to, uint64_t off, uint64_t len, uint64_t *moved);
/* HMMFS_IOC_RESIDENCY of all of @fd (a CUnit failure if it fails); the
 * result lives until the next call. */
struct hmmfs_ioc_residency *it_residency(int fd);
struct hmmfs_ioc_stats;
/* HMMFS_IOC_STATS of the mount (fatal if it fails); the result lives
 * until the next call. */
const struct hmmfs_ioc_stats *it_stats(void);
struct hmmfs_ioc_ops;
/* The mount's per-opcode request counters, copied into @ops (ioctl). */
void it_ops(struct hmmfs_ioc_ops *ops);
/*
 * Make the kernel forget its inodes (drop_caches, as memory pressure
 * would) until the daemon counts at least @want detached files: FORGET
 * comes when the kernel gets to it, so up to 50 tries, 100 ms apart.
 */
void it_kernel_forgets(uint64_t want);
/*
 * Create files "newN" in BACKING holding @data until one gets the inode
 * number @old had (BACKING reuses numbers of removed files), then give it
 * @old's times, so only a generation can tell them apart.  Its name goes
 * to @name (32 bytes).  Return: false (said on stdout) if 2000 files
 * brought no such number.
 */
struct stat;
bool it_backing_reuse(const struct stat *old, const char *data, char name[32]);
/* Count of lines containing @needle in the daemon log. */
int it_log_count(const char *needle);
/* The last @max bytes of the daemon log, for messages. */
const char *it_log_tail(size_t max);

/* ---- processes ------------------------------------------------------- */

struct it_proc {
	int status;		/* wait status, -1 if not reaped */
	bool timed_out;
	char out[8192];
	char err[8192];
};

/* fork/exec @argv with stdout and stderr captured; @pre_exec runs in the
 * child just before exec (may be NULL).  Waits up to @timeout_ms, then
 * kills it.  Returns 0 if it was reaped. */
int it_spawn(char *const argv[], void (*pre_exec)(void), int timeout_ms,
	     struct it_proc *p);
/* Wait up to @timeout_ms for @pid; 0 and *status when reaped. */
int it_wait_pid(pid_t pid, int timeout_ms, int *status);
/* Run @fn in a child, as @uid/@gid unless they are -1, and copy up to
 * @outlen bytes it wrote to @out back.  Returns fn's return value
 * (0..255), or -1 if the child failed or hung (10 s). */
int it_child(int (*fn)(void *arg, void *out), void *arg, void *out,
	     size_t outlen, uid_t uid, gid_t gid);

/* ---- files and data -------------------------------------------------- */

/* Create/truncate @path (mode 0644) with @len bytes; 0 or -errno. */
int it_put(const char *path, const void *buf, size_t len);
int it_put_str(const char *path, const char *s);
/* Read at most @cap bytes of @path; byte count or -errno. */
ssize_t it_get(const char *path, void *buf, size_t cap);
/* Read @path into a NUL-terminated static (per-thread) buffer of 4 KiB;
 * "<errno name>" if it cannot be read. */
const char *it_get_str(const char *path);
/* Bytes depending on @seed and the absolute file offset. */
void it_pattern(void *buf, size_t len, uint32_t seed, off_t offset);
/* Offset of the first byte of @buf that differs from the pattern, or -1. */
ssize_t it_pattern_mismatch(const void *buf, size_t len, uint32_t seed,
			    off_t offset);
/* Offset of the first byte of @buf that is not @byte, or -1. */
ssize_t it_first_not(const void *buf, size_t len, unsigned char byte);
/* Write @len pattern bytes to @fd at @off in @chunk pieces; 0 or -errno. */
int it_pwrite_pattern(int fd, off_t off, size_t len, size_t chunk,
		      uint32_t seed);
/* Read @len bytes at @off and compare with the pattern: -1 if equal,
 * else the file offset of the first bad byte (or of the short read). */
off_t it_pread_check(int fd, off_t off, size_t len, size_t chunk,
		     uint32_t seed);
off_t it_file_check(const char *path, off_t off, size_t len, uint32_t seed);

const char *it_errname(int e);

/* ---- assertions ------------------------------------------------------ */

void it_assert(bool ok, bool fatal, const char *file, unsigned int line,
	       const char *fmt, ...) __attribute__((format(printf, 5, 6)));

#define IT_TRUE_(fatal, cond, ...) \
	it_assert((cond), (fatal), __FILE__, __LINE__, __VA_ARGS__)
#define IT_TRUE(cond, ...)	IT_TRUE_(false, cond, __VA_ARGS__)
#define IT_REQUIRE(cond, ...)	IT_TRUE_(true, cond, __VA_ARGS__)

/* A syscall-style expression that must not return a negative value. */
#define IT_OK_(fatal, expr) ({						\
	errno = 0;							\
	long long it_r_ = (long long)(expr);				\
	int it_e_ = errno;						\
	IT_TRUE_(fatal, it_r_ >= 0, "%s: returned %lld, errno %s",	\
		 #expr, it_r_, it_errname(it_e_));			\
	it_r_;								\
})
#define IT_OK(expr)		IT_OK_(false, expr)
#define IT_REQUIRE_OK(expr)	IT_OK_(true, expr)

/* An expression that must return -1 with errno @err. */
#define IT_ERRNO(expr, err) ({						\
	errno = 0;							\
	long long it_r_ = (long long)(expr);				\
	int it_e_ = errno;						\
	IT_TRUE(it_r_ == -1 && it_e_ == (err),				\
		"%s: expected -1/%s, got %lld/%s", #expr,		\
		it_errname(err), it_r_,					\
		it_r_ == -1 ? it_errname(it_e_) : "-");			\
	it_r_;								\
})

#define IT_EQ_(fatal, actual, expected) ({				\
	long long it_a_ = (long long)(actual);				\
	long long it_x_ = (long long)(expected);			\
	IT_TRUE_(fatal, it_a_ == it_x_, "%s == %s: got %lld, expected %lld", \
		 #actual, #expected, it_a_, it_x_);			\
	it_a_ == it_x_;							\
})
#define IT_EQ(actual, expected)		IT_EQ_(false, actual, expected)
#define IT_REQUIRE_EQ(actual, expected)	IT_EQ_(true, actual, expected)

#define IT_EQ_OCT(actual, expected) ({					\
	unsigned long it_a_ = (unsigned long)(actual);			\
	unsigned long it_x_ = (unsigned long)(expected);		\
	IT_TRUE(it_a_ == it_x_, "%s == %s: got 0%lo, expected 0%lo",	\
		#actual, #expected, it_a_, it_x_);			\
})

#define IT_STR_EQ(actual, expected) ({					\
	const char *it_a_ = (actual), *it_x_ = (expected);		\
	IT_TRUE(it_a_ && it_x_ && strcmp(it_a_, it_x_) == 0,		\
		"%s == %s: got \"%s\", expected \"%s\"",		\
		#actual, #expected, it_a_ ? it_a_ : "(null)",		\
		it_x_ ? it_x_ : "(null)");				\
})

#define IT_HAS(haystack, needle) ({					\
	const char *it_h_ = (haystack), *it_n_ = (needle);		\
	IT_TRUE(strcasestr(it_h_, it_n_) != NULL,			\
		"%s should mention \"%s\"; it is: \"%s\"",		\
		#haystack, it_n_, it_h_);				\
})

void it_assert_mem(const void *actual, const void *expected, size_t len,
		   const char *what, const char *file, unsigned int line);
#define IT_MEM_EQ(actual, expected, len) \
	it_assert_mem((actual), (expected), (len), #actual, __FILE__, __LINE__)

/* The file at @path holds exactly @len bytes @expected. */
void it_assert_content(const char *path, const void *expected, size_t len,
		       const char *file, unsigned int line);
#define IT_CONTENT(path, expected, len) \
	it_assert_content((path), (expected), (len), __FILE__, __LINE__)
#define IT_CONTENT_STR(path, s) IT_CONTENT((path), (s), strlen(s))

/* Through the mount and in BACKING. */
#define IT_CONTENT_BOTH(rel, expected, len) do {			\
	IT_CONTENT(MNT(rel), (expected), (len));			\
	IT_CONTENT(BACK(rel), (expected), (len));			\
} while (0)
#define IT_CONTENT_BOTH_STR(rel, s) IT_CONTENT_BOTH((rel), (s), strlen(s))

/* lstat() must fail with ENOENT through the mount and in BACKING. */
#define IT_GONE_BOTH(rel) do {						\
	struct stat it_st_;						\
	IT_ERRNO(lstat(MNT(rel), &it_st_), ENOENT);			\
	IT_ERRNO(lstat(BACK(rel), &it_st_), ENOENT);			\
} while (0)

#endif
