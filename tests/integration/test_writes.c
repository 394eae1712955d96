/* SPDX-License-Identifier: MIT */
/*
 * tests/integration/test_writes.c — writes with and without the FUSE
 * writeback cache.
 *
 * The writeback cache is on by default: the kernel takes write(2)s into
 * its own page cache, keeps the file's size and mtime itself, and sends
 * the data to the daemon later (at close, fsync, or when it writes back).
 * Each test runs twice, on a default mount and on one with
 * nowriteback_cache (names ending in "_nowb"), and must pass on both.
 *
 * - seek_data_kernel_dirty: SEEK_DATA/SEEK_HOLE over a 4 KiB write into a
 *   hole of an 8 MiB file, before any fsync or close: the daemon (and
 *   BACKING) may not have the data yet, but lseek must still find it
 *   (a data offset <= the write's, never ENXIO below EOF), and the hole
 *   after it must lie within the file.
 * - o_append_two_fds: two O_APPEND descriptors of one file, written in
 *   turn: every 100-byte record lands at the end, exactly once, in order,
 *   through the mount and in BACKING.
 * - mtime_of_write_after_close: the mtime fstat shows right after a write
 *   is the file's mtime from then on: after close (when the data reaches
 *   BACKING), in BACKING itself, and after the attributes time out.  A
 *   daemon that stamps the time of its own writeback, or applies the
 *   kernel's time before writing the data, breaks it.
 * - backing_newer_after_reopen: after a write and close through the
 *   mount, a newer rewrite of the file directly in BACKING, with another
 *   size, is what the next open through the mount shows (close-to-open):
 *   the kernel must not keep its cached pages or size.
 * - setid_user_*: setuid and setgid are cleared when a user without
 *   CAP_FSETID (uid and gid 65534, in the files' group) writes,
 *   ftruncates, or opens with O_TRUNC, as a local file system clears
 *   them: S_ISUID always, S_ISGID if the group may execute; S_ISGID
 *   without group execute (the old mandatory-locking mark) is kept.
 * - setid_outsider_like_backing: the same ops by a user outside the
 *   file's group on a set-gid file without group execute do what they do
 *   directly in BACKING (Linux 6.2 and later clear S_ISGID then).
 * - setid_cleared_at_once: the mount shows the cleared setuid bit right
 *   after the write, though the kernel had the old mode cached.
 * - setid_fallocate: fallocate by a user clears them too, by root not.
 * - chown_root_keeps_sgid: chown by root clears what it clears directly
 *   in BACKING (setuid; setgid only with group execute).
 * - setid_root_keeps: root (CAP_FSETID) clears nothing.
 *
 *   Every setid case is also done directly in BACKING first, as the
 *   reference the mount must match (and, where the test states the
 *   outcome, as a check of the test's premise).  They mount with
 *   allow_other so that uid 65534 can reach the mount.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tests/integration/harness.h"

#define KiB 1024
#define MiB (1024 * 1024)
#define NOBODY 65534

static const char *mode_name(void)
{
	return it_writeback_cache() ? "writeback cache" : "no writeback cache";
}

/* ---- SEEK_DATA / SEEK_HOLE over dirty pages --------------------------- */

/* lseek() that keeps its errno in *@err (0 on success). */
static off_t seek(int fd, off_t off, int whence, int *err)
{
	off_t r;

	errno = 0;
	r = lseek(fd, off, whence);
	*err = r < 0 ? errno : 0;
	return r;
}

static void expect_data_at_or_before(int fd, off_t from, off_t data)
{
	int err;
	off_t r = seek(fd, from, SEEK_DATA, &err);

	IT_TRUE(r >= from && r <= data, "SEEK_DATA %lld: got %lld (%s), "
		"expected in [%lld, %lld]", (long long)from, (long long)r,
		it_errname(err), (long long)from, (long long)data);
}

/* The hole found from @from lies in [@lo, @hi]. */
static off_t expect_hole_in(int fd, off_t from, off_t lo, off_t hi)
{
	int err;
	off_t r = seek(fd, from, SEEK_HOLE, &err);

	IT_TRUE(r >= lo && r <= hi, "SEEK_HOLE %lld: got %lld (%s), expected "
		"in [%lld, %lld]", (long long)from, (long long)r,
		it_errname(err), (long long)lo, (long long)hi);
	return r;
}

/*
 * After the written page, up to EOF at @eof: a hole (SEEK_DATA ENXIO) or
 * data the file system does not track (SEEK_DATA returns the offset
 * itself); whichever SEEK_HOLE says.
 */
static void expect_after_data(int fd, off_t off, off_t eof)
{
	off_t hole = expect_hole_in(fd, off, off, eof);
	int err;
	off_t r = seek(fd, off, SEEK_DATA, &err);

	if (hole > off)
		IT_TRUE(r == off, "SEEK_DATA %lld: got %lld (%s), but SEEK_HOLE "
			"says data up to %lld", (long long)off, (long long)r,
			it_errname(err), (long long)hole);
	else
		IT_TRUE((r < 0 && err == ENXIO) || (r > off && r < eof),
			"SEEK_DATA %lld: got %lld (%s), expected ENXIO or "
			"data before EOF %lld", (long long)off, (long long)r,
			it_errname(err), (long long)eof);
}

static void expect_zeros(int fd, off_t off, size_t len)
{
	static char buf[64 * KiB];
	ssize_t n;

	n = IT_OK(pread(fd, buf, len, off));
	IT_TRUE(n == (ssize_t)len && it_first_not(buf, len, 0) < 0,
		"%zu bytes at %lld: read %zd, first non-zero at %zd", len,
		(long long)off, n, n > 0 ? it_first_not(buf, (size_t)n, 0) : -1);
}

/* An 8 MiB file of zeros but 4 KiB of pattern @seed at 4 MiB. */
static void expect_sparse_content(int fd, uint32_t seed)
{
	struct stat st;

	if (IT_OK(fstat(fd, &st)) == 0)
		IT_EQ(st.st_size, 8 * MiB);
	IT_EQ(it_pread_check(fd, 4 * MiB, 4 * KiB, 4 * KiB, seed), -1);
	expect_zeros(fd, 0, 64 * KiB);
	expect_zeros(fd, 4 * MiB - 64 * KiB, 64 * KiB);
	expect_zeros(fd, 4 * MiB + 4 * KiB, 64 * KiB);
	expect_zeros(fd, 8 * MiB - 64 * KiB, 64 * KiB);
}

static void seek_data_kernel_dirty(void)
{
	int fd;

	printf("[%s] ", mode_name());
	fd = IT_REQUIRE_OK(open(MNT("f"), O_CREAT | O_EXCL | O_RDWR, 0644));
	IT_REQUIRE_OK(ftruncate(fd, 8 * MiB));
	IT_REQUIRE_OK(it_pwrite_pattern(fd, 4 * MiB, 4 * KiB, 4 * KiB, 21));

	expect_data_at_or_before(fd, 0, 4 * MiB);
	IT_EQ(lseek(fd, 4 * MiB, SEEK_DATA), 4 * MiB);
	IT_EQ(lseek(fd, 4 * MiB + 100, SEEK_DATA), 4 * MiB + 100);
	expect_hole_in(fd, 4 * MiB, 4 * MiB + 4 * KiB, 8 * MiB);
	expect_after_data(fd, 4 * MiB + 4 * KiB, 8 * MiB);
	IT_ERRNO(lseek(fd, 8 * MiB, SEEK_DATA), ENXIO);
	IT_ERRNO(lseek(fd, 8 * MiB, SEEK_HOLE), ENXIO);

	expect_sparse_content(fd, 21);
	IT_OK(close(fd));
	fd = IT_REQUIRE_OK(open(BACK("f"), O_RDONLY));
	expect_sparse_content(fd, 21);
	IT_OK(close(fd));
	fd = IT_REQUIRE_OK(open(MNT("f"), O_RDONLY));
	expect_sparse_content(fd, 21);
	IT_EQ(lseek(fd, 4 * MiB, SEEK_DATA), 4 * MiB);
	IT_OK(close(fd));
}

/* ---- O_APPEND from two descriptors ----------------------------------- */

#define REC_LEN 100
#define N_RECS 100

/* Record @i: a header naming it and the descriptor that wrote it, then
 * pattern bytes of seed @i. */
static void make_record(char *rec, int i)
{
	char head[32];
	int n;

	it_pattern(rec, REC_LEN, (uint32_t)i, 0);
	n = snprintf(head, sizeof(head), "record %03d by fd %c|", i,
		     "ab"[i % 2]);
	memcpy(rec, head, (size_t)n);
}

/* @path holds records 0..N_RECS-1, in order, each once and intact. */
static void expect_records(const char *path)
{
	static char buf[N_RECS * REC_LEN + 1];
	char rec[REC_LEN];
	ssize_t n = it_get(path, buf, sizeof(buf));
	int i;

	IT_TRUE(n == N_RECS * REC_LEN, "%s: %zd bytes (%s), expected %d", path,
		n, n < 0 ? it_errname((int)-n) : "-", N_RECS * REC_LEN);
	for (i = 0; i < N_RECS && (i + 1) * REC_LEN <= n; i++) {
		make_record(rec, i);
		if (memcmp(buf + i * REC_LEN, rec, REC_LEN) == 0)
			continue;
		IT_TRUE(false, "%s: slot %d holds \"%.20s\", expected "
			"record %d", path, i, buf + i * REC_LEN, i);
		return;
	}
}

static void o_append_two_fds(void)
{
	char rec[REC_LEN];
	struct stat st;
	int fd[2], i;

	printf("[%s] ", mode_name());
	IT_REQUIRE_OK(it_put(MNT("log"), "", 0));
	fd[0] = IT_REQUIRE_OK(open(MNT("log"), O_WRONLY | O_APPEND));
	fd[1] = IT_REQUIRE_OK(open(MNT("log"), O_WRONLY | O_APPEND));
	for (i = 0; i < N_RECS; i++) {
		make_record(rec, i);
		if (!IT_EQ(write(fd[i % 2], rec, REC_LEN), REC_LEN))
			break;
	}
	if (IT_OK(fstat(fd[0], &st)) == 0)
		IT_EQ(st.st_size, N_RECS * REC_LEN);
	IT_OK(close(fd[0]));
	IT_OK(close(fd[1]));
	expect_records(MNT("log"));
	expect_records(BACK("log"));
}

/* ---- mtime of a write ------------------------------------------------ */

static bool ts_le(struct timespec a, struct timespec b)
{
	return a.tv_sec < b.tv_sec ||
	       (a.tv_sec == b.tv_sec && a.tv_nsec <= b.tv_nsec);
}

static void expect_mtime(const char *what, const struct stat *st,
			 struct timespec want)
{
	IT_TRUE(st->st_mtim.tv_sec == want.tv_sec &&
		st->st_mtim.tv_nsec == want.tv_nsec,
		"%s: mtime %lld.%09ld, expected the write's %lld.%09ld", what,
		(long long)st->st_mtim.tv_sec, st->st_mtim.tv_nsec,
		(long long)want.tv_sec, want.tv_nsec);
}

static void mtime_of_write_after_close(void)
{
	struct timespec before, after, mw;
	char data[4 * KiB];
	struct stat st;
	int fd;

	printf("[%s] ", mode_name());
	it_pattern(data, sizeof(data), 31, 0);
	fd = IT_REQUIRE_OK(open(MNT("f"), O_CREAT | O_EXCL | O_WRONLY, 0644));
	usleep(20000);		/* the create's mtime is not the write's */
	/* file times come from the coarse clock (or a finer one) */
	clock_gettime(CLOCK_REALTIME_COARSE, &before);
	IT_EQ(write(fd, data, sizeof(data)), sizeof(data));
	IT_REQUIRE_OK(fstat(fd, &st));
	clock_gettime(CLOCK_REALTIME, &after);
	mw = st.st_mtim;
	IT_TRUE(ts_le(before, mw) && ts_le(mw, after), "mtime after the write "
		"%lld.%09ld, expected in [%lld.%09ld, %lld.%09ld]",
		(long long)mw.tv_sec, mw.tv_nsec, (long long)before.tv_sec,
		before.tv_nsec, (long long)after.tv_sec, after.tv_nsec);
	usleep(20000);		/* a time taken at close would differ */
	IT_OK(close(fd));

	IT_OK(stat(MNT("f"), &st));
	expect_mtime("mount after close", &st, mw);
	IT_EQ(st.st_size, sizeof(data));
	IT_OK(stat(BACK("f"), &st));
	expect_mtime("BACKING after close", &st, mw);
	usleep(1100000);	/* attr_timeout: the kernel asks again */
	IT_OK(stat(MNT("f"), &st));
	expect_mtime("mount after the attribute timeout", &st, mw);
	IT_CONTENT_BOTH("f", data, sizeof(data));
}

/* ---- BACKING changed after a write through the mount ----------------- */

/* The open @fd shows exactly @len bytes @want, by fstat and by read. */
static void expect_fd_content(int fd, const char *want, size_t len)
{
	static char buf[64 * KiB];
	struct stat st;
	ssize_t n;

	if (IT_OK(fstat(fd, &st)) == 0)
		IT_TRUE(st.st_size == (off_t)len, "fstat through the mount: size "
			"%lld, BACKING has %zu", (long long)st.st_size, len);
	n = IT_OK(pread(fd, buf, sizeof(buf), 0));
	IT_TRUE(n == (ssize_t)len, "read through the mount: %zd bytes, BACKING "
		"has %zu", n, len);
	if (n > 0)
		IT_MEM_EQ(buf, want, (size_t)n < len ? (size_t)n : len);
}

static void backing_newer_after_reopen(void)
{
	static char a[16 * KiB], b[4 * KiB], c[20 * KiB];
	struct stat st;
	int fd;

	printf("[%s] ", mode_name());
	it_pattern(a, sizeof(a), 41, 0);
	it_pattern(b, sizeof(b), 42, 0);
	it_pattern(c, sizeof(c), 43, 0);
	IT_REQUIRE_OK(it_put(MNT("f"), a, sizeof(a)));
	fd = IT_REQUIRE_OK(open(MNT("f"), O_RDWR));
	IT_EQ(pwrite(fd, b, sizeof(b), 0), sizeof(b));
	IT_OK(close(fd));
	memcpy(a, b, sizeof(b));
	IT_CONTENT(BACK("f"), a, sizeof(a));	/* close-to-open */

	usleep(10000);		/* BACKING's rewrite has a later mtime */
	IT_REQUIRE_OK(it_put(BACK("f"), c, sizeof(c)));
	fd = IT_REQUIRE_OK(open(MNT("f"), O_RDONLY));
	expect_fd_content(fd, c, sizeof(c));
	IT_OK(close(fd));
	if (IT_OK(stat(MNT("f"), &st)) == 0)
		IT_EQ(st.st_size, sizeof(c));
	IT_CONTENT(BACK("f"), c, sizeof(c));	/* the mount wrote nothing */
}

/* ---- setuid / setgid cleared by writes ------------------------------- */

enum setid_op { OP_WRITE, OP_FTRUNCATE, OP_OPEN_TRUNC };

static const char *const op_names[] = { "write", "ftruncate", "open(O_TRUNC)" };

struct setid_case {
	const char *name;
	gid_t gid;		/* the file's group (owner: root) */
	mode_t mode;		/* before; "other" may write */
	int user_after;		/* after a user's op; -1: as in BACKING */
};

/* The writer (uid and gid NOBODY) is in the files' group. */
static const struct setid_case setid_cases[] = {
	{ "suid", NOBODY, 04777, 0777 },
	{ "sgid", NOBODY, 02777, 0777 },
	/* group rw-: the writer may write; no group exec: kept */
	{ "sgid_nogx", NOBODY, 02767, 02767 },
	{ NULL, 0, 0, 0 },
};

/* The writer is outside the group: since Linux 6.2 (setattr_should_drop_sgid)
 * a local file system clears S_ISGID even without group exec. */
static const struct setid_case outsider_case = {
	"sgid_nogx_outsider", 0, 02747, -1
};

struct setid_job {
	const char *path;
	enum setid_op op;
};

/* In the child: @arg's op on its file; 0 or errno. */
static int setid_do_op(void *arg, void *out)
{
	const struct setid_job *job = arg;
	int flags = O_WRONLY | (job->op == OP_OPEN_TRUNC ? O_TRUNC : 0);
	int fd, err = 0;

	(void)out;
	fd = open(job->path, flags);
	if (fd < 0)
		return errno;
	if (job->op == OP_WRITE && write(fd, "0123456789", 10) != 10)
		err = errno ? errno : EIO;
	if (job->op == OP_FTRUNCATE && ftruncate(fd, 0) < 0)
		err = errno;
	if (close(fd) < 0 && !err)
		err = errno;
	return err;
}

/* Make @path as the case says; fatal if it cannot. */
static void setid_make(const char *path, const struct setid_case *c)
{
	struct stat st;

	IT_REQUIRE_OK(it_put_str(path, "original data"));
	IT_REQUIRE_OK(chown(path, 0, c->gid));
	IT_REQUIRE_OK(chmod(path, c->mode));
	IT_REQUIRE_OK(stat(path, &st));
	IT_EQ_OCT(st.st_mode & 07777, c->mode);
}

/* @path's op as @uid (gid the same; -1: root); the mode after it. */
static mode_t setid_run(const char *path, enum setid_op op, uid_t uid)
{
	struct setid_job job = { path, op };
	struct stat st;
	int ret;

	ret = it_child(setid_do_op, &job, NULL, 0, uid, (gid_t)uid);
	IT_TRUE(ret == 0, "%s of %s as uid %d: %s", op_names[op], path,
		(int)uid, ret < 0 ? "child failed" : it_errname(ret));
	IT_REQUIRE_OK(stat(path, &st));
	return st.st_mode & 07777;
}

static void expect_like_backing(enum setid_op op, const char *path,
				mode_t got, mode_t want)
{
	IT_TRUE(got == want, "%s of %s: mode 0%o, but the same %s directly in "
		"BACKING gave 0%o", op_names[op], path, (unsigned int)got,
		op_names[op], (unsigned int)want);
}

/* BACKING itself must do what the test expects, or the test is wrong. */
static void expect_premise(const char *ref, const struct setid_case *c,
			   enum setid_op op, uid_t uid, mode_t got)
{
	int want = uid == (uid_t)-1 ? (int)c->mode : c->user_after;

	if (want >= 0)
		IT_TRUE(got == (mode_t)want, "the test's premise: %s of %s "
			"directly in BACKING gave 0%o, expected 0%o",
			op_names[op], ref, (unsigned int)got, (unsigned int)want);
}

/* One case: the reference directly in BACKING, then through the mount. */
static void setid_case_run(const struct setid_case *c, enum setid_op op,
			   uid_t uid)
{
	char ref[64];
	mode_t want;
	struct stat st;

	snprintf(ref, sizeof(ref), "ref_%s", c->name);
	setid_make(BACK(ref), c);
	want = setid_run(BACK(ref), op, uid);
	expect_premise(ref, c, op, uid, want);

	setid_make(MNT(c->name), c);
	expect_like_backing(op, MNT(c->name), setid_run(MNT(c->name), op, uid),
			    want);
	IT_REQUIRE_OK(stat(BACK(c->name), &st));
	expect_like_backing(op, BACK(c->name), st.st_mode & 07777, want);
}

/* The same, on files named after @op, so one test can run every op. */
static void setid_case_run_op(const struct setid_case *c, enum setid_op op,
			      uid_t uid)
{
	struct setid_case named = *c;
	char name[64];

	snprintf(name, sizeof(name), "%s_%d", c->name, (int)op);
	named.name = name;
	setid_case_run(&named, op, uid);
}

static void setid_user_cases(enum setid_op op)
{
	const struct setid_case *c;

	printf("[%s] ", mode_name());
	for (c = setid_cases; c->name; c++)
		setid_case_run(c, op, NOBODY);
}

static void setid_user_write(void)
{
	setid_user_cases(OP_WRITE);
}

static void setid_user_ftruncate(void)
{
	setid_user_cases(OP_FTRUNCATE);
}

static void setid_user_open_trunc(void)
{
	setid_user_cases(OP_OPEN_TRUNC);
}

static void setid_outsider_like_backing(void)
{
	enum setid_op op;

	printf("[%s] ", mode_name());
	for (op = OP_WRITE; op <= OP_OPEN_TRUNC; op++)
		setid_case_run_op(&outsider_case, op, NOBODY);
}

/* Root has CAP_FSETID: no op of its clears a bit. */
static void setid_root_keeps(void)
{
	const struct setid_case *c;
	enum setid_op op;

	printf("[%s] ", mode_name());
	for (op = OP_WRITE; op <= OP_OPEN_TRUNC; op++) {
		for (c = setid_cases; c->name; c++)
			setid_case_run_op(c, op, (uid_t)-1);
		setid_case_run_op(&outsider_case, op, (uid_t)-1);
	}
}

/* In the child: append one byte to @arg (a path); 0 or errno. */
static int append_byte(void *arg, void *out)
{
	int fd = open(arg, O_WRONLY | O_APPEND), err = 0;

	(void)out;
	if (fd < 0)
		return errno;
	if (write(fd, "z", 1) != 1)
		err = errno ? errno : EIO;
	if (close(fd) < 0 && !err)
		err = errno;
	return err;
}

/* The mode as statx(STATX_MODE) gives it: only what the kernel has
 * marked stale is asked again (stat(1) and exec ask for no more). */
static mode_t mode_now(const char *path)
{
	struct statx stx;

	IT_REQUIRE_OK(statx(AT_FDCWD, path, 0, STATX_MODE, &stx));
	return stx.stx_mode & 07777;
}

/*
 * The mount shows the cleared setuid bit at once, not after attr_timeout:
 * the kernel had the old mode cached (stat just before), marks only size
 * and times stale after a write, and would exec the file setuid until it
 * asked again.  A user outside the file's group appends (as `echo >>`).
 */
static void setid_cleared_at_once(void)
{
	static char path[PATH_MAX];
	struct stat st;
	int ret;

	printf("[%s] ", mode_name());
	snprintf(path, sizeof(path), "%s", MNT("at_once"));
	IT_REQUIRE_OK(it_put_str(path, "x\n"));
	IT_REQUIRE_OK(chmod(path, 04777));
	IT_REQUIRE_OK(stat(path, &st));	/* the kernel caches 04777 */
	IT_EQ_OCT(st.st_mode & 07777, 04777);
	ret = it_child(append_byte, path, NULL, 0, NOBODY, NOBODY);
	IT_TRUE(ret == 0, "append as uid %d: %s", NOBODY,
		ret < 0 ? "child failed" : it_errname(ret));
	IT_EQ_OCT(mode_now(path), 0777);
	IT_REQUIRE_OK(stat(BACK("at_once"), &st));
	IT_EQ_OCT(st.st_mode & 07777, 0777);
}

/* In the child: fallocate 64 KiB into @arg (a path); 0 or errno. */
static int falloc_64k(void *arg, void *out)
{
	int fd = open(arg, O_WRONLY), err = 0;

	(void)out;
	if (fd < 0)
		return errno;
	if (fallocate(fd, 0, 0, 65536) < 0)
		err = errno;
	if (close(fd) < 0 && !err)
		err = errno;
	return err;
}

/*
 * fallocate by a user clears setuid and setgid (group execute set) as on
 * a local file system (generic/683); by root it keeps them.
 */
static void setid_fallocate(void)
{
	static char path[PATH_MAX];
	int ret;

	printf("[%s] ", mode_name());
	snprintf(path, sizeof(path), "%s", MNT("falloc"));
	IT_REQUIRE_OK(it_put_str(path, "x"));
	IT_REQUIRE_OK(chmod(path, 06777));
	ret = it_child(falloc_64k, path, NULL, 0, (uid_t)-1, (gid_t)-1);
	IT_EQ(ret, 0);
	IT_EQ_OCT(mode_now(path), 06777);
	ret = it_child(falloc_64k, path, NULL, 0, NOBODY, NOBODY);
	IT_TRUE(ret == 0, "fallocate as uid %d: %s", NOBODY,
		ret < 0 ? "child failed" : it_errname(ret));
	IT_EQ_OCT(mode_now(path), 0777);
}

/*
 * chown by root clears setuid and keeps setgid without group execute, as
 * directly in BACKING (generic/193): the kernel sends the kill bit with
 * every chown, also root's.
 */
static void chown_root_keeps_sgid(void)
{
	static const mode_t modes[] = { 06644, 06754 };

	printf("[%s] ", mode_name());
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		struct stat b, m;

		IT_REQUIRE_OK(it_put_str(BACK("ref"), "x"));
		IT_REQUIRE_OK(chmod(BACK("ref"), modes[i]));
		IT_REQUIRE_OK(chown(BACK("ref"), NOBODY, NOBODY));
		IT_REQUIRE_OK(stat(BACK("ref"), &b));
		IT_REQUIRE_OK(it_put_str(MNT("f"), "x"));
		IT_REQUIRE_OK(chmod(MNT("f"), modes[i]));
		IT_REQUIRE_OK(chown(MNT("f"), NOBODY, NOBODY));
		IT_EQ_OCT(mode_now(MNT("f")), b.st_mode & 07777);
		IT_REQUIRE_OK(stat(BACK("f"), &m));
		IT_EQ_OCT(m.st_mode & 07777, b.st_mode & 07777);
	}
}

/* Each test on a default mount (writeback cache) and without it. */
static const struct it_test tests[] = {
	{ "seek_data_kernel_dirty", seek_data_kernel_dirty, 0, NULL },
	{ "seek_data_kernel_dirty_nowb", seek_data_kernel_dirty, 0,
	  "nowriteback_cache" },
	{ "o_append_two_fds", o_append_two_fds, 0, NULL },
	{ "o_append_two_fds_nowb", o_append_two_fds, 0, "nowriteback_cache" },
	{ "mtime_of_write_after_close", mtime_of_write_after_close, 0, NULL },
	{ "mtime_of_write_after_close_nowb", mtime_of_write_after_close, 0,
	  "nowriteback_cache" },
	{ "backing_newer_after_reopen", backing_newer_after_reopen, 0, NULL },
	{ "backing_newer_after_reopen_nowb", backing_newer_after_reopen, 0,
	  "nowriteback_cache" },
	{ "setid_user_write", setid_user_write, 0, "allow_other" },
	{ "setid_user_write_nowb", setid_user_write, 0,
	  "allow_other,nowriteback_cache" },
	{ "setid_user_ftruncate", setid_user_ftruncate, 0, "allow_other" },
	{ "setid_user_ftruncate_nowb", setid_user_ftruncate, 0,
	  "allow_other,nowriteback_cache" },
	{ "setid_user_open_trunc", setid_user_open_trunc, 0, "allow_other" },
	{ "setid_user_open_trunc_nowb", setid_user_open_trunc, 0,
	  "allow_other,nowriteback_cache" },
	{ "setid_outsider_like_backing", setid_outsider_like_backing, 0,
	  "allow_other" },
	{ "setid_outsider_like_backing_nowb", setid_outsider_like_backing, 0,
	  "allow_other,nowriteback_cache" },
	{ "setid_cleared_at_once", setid_cleared_at_once, 0, "allow_other" },
	{ "setid_cleared_at_once_nowb", setid_cleared_at_once, 0,
	  "allow_other,nowriteback_cache" },
	{ "setid_fallocate", setid_fallocate, 0, "allow_other" },
	{ "setid_fallocate_nowb", setid_fallocate, 0, "allow_other,nowriteback_cache" },
	{ "chown_root_keeps_sgid", chown_root_keeps_sgid, 0, NULL },
	{ "chown_root_keeps_sgid_nowb", chown_root_keeps_sgid, 0, "nowriteback_cache" },
	{ "setid_root_keeps", setid_root_keeps, 0, "allow_other" },
	{ "setid_root_keeps_nowb", setid_root_keeps, 0,
	  "allow_other,nowriteback_cache" },
	{ NULL, NULL, 0, NULL },
};

const struct it_suite it_suite_writes = { "writes", NULL, 0, tests };
