/* SPDX-License-Identifier: MIT */
/*
 * tests/integration/test_locks.c — flock(2) and POSIX record locks.
 *
 * flock: two open file descriptions of one file; while the first holds
 * LOCK_EX the second gets EWOULDBLOCK with LOCK_NB, and succeeds once the
 * first unlocks; two LOCK_SH coexist and block LOCK_EX; close() of the
 * holder releases its lock before close() returns (1000 tries).
 * POSIX: the test process holds F_WRLCK on bytes [0, 100); a forked
 * child's F_SETLK on an overlapping range fails with EAGAIN or EACCES,
 * its F_GETLK names the holder (type, pid, range), a disjoint range
 * succeeds, and after the parent unlocks the child's lock succeeds.
 */
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "tests/integration/harness.h"

static int open_twice(int *a, int *b)
{
	if (it_put_str(MNT("f"), "lock me") < 0)
		return -1;
	*a = open(MNT("f"), O_RDWR);
	*b = open(MNT("f"), O_RDWR);
	return *a >= 0 && *b >= 0 ? 0 : -1;
}

static void flock_exclusive(void)
{
	int a, b;

	IT_REQUIRE_OK(open_twice(&a, &b));
	IT_OK(flock(a, LOCK_EX));
	IT_ERRNO(flock(b, LOCK_EX | LOCK_NB), EWOULDBLOCK);
	IT_ERRNO(flock(b, LOCK_SH | LOCK_NB), EWOULDBLOCK);
	IT_OK(flock(a, LOCK_UN));
	IT_OK(flock(b, LOCK_EX | LOCK_NB));
	IT_ERRNO(flock(a, LOCK_EX | LOCK_NB), EWOULDBLOCK);
	IT_OK(close(b));
	IT_OK(close(a));
}

static void flock_shared(void)
{
	int a, b;

	IT_REQUIRE_OK(open_twice(&a, &b));
	IT_OK(flock(a, LOCK_SH));
	IT_OK(flock(b, LOCK_SH | LOCK_NB));
	IT_OK(flock(b, LOCK_UN));
	IT_ERRNO(flock(b, LOCK_EX | LOCK_NB), EWOULDBLOCK);
	IT_OK(flock(a, LOCK_UN));
	IT_OK(flock(b, LOCK_EX | LOCK_NB));
	IT_OK(close(a));
	IT_OK(close(b));
}

/*
 * close() of the only descriptor of an open file description drops its
 * flock at once, so another description's LOCK_NB succeeds right after.
 * Repeated, because a lock dropped late (at an asynchronous release)
 * loses this race only now and then.
 */
static void flock_released_on_close(void)
{
	int a, b, i, late = 0, first = -1;

	IT_REQUIRE_OK(open_twice(&a, &b));
	IT_OK(close(b));
	for (i = 0; i < 1000; i++) {
		b = open(MNT("f"), O_RDWR);
		if (b < 0 || flock(b, LOCK_EX | LOCK_NB) < 0) {
			IT_TRUE(false, "open/flock b: %s", it_errname(errno));
			break;
		}
		close(b);
		if (flock(a, LOCK_EX | LOCK_NB) < 0) {
			late++;
			if (first < 0)
				first = errno;
			flock(a, LOCK_EX);	/* wait until it is really gone */
		}
		flock(a, LOCK_UN);
	}
	IT_TRUE(late == 0, "%d of 1000 times LOCK_NB right after close() of the "
		"holder failed (%s): the lock outlives close()", late,
		it_errname(first));
	IT_OK(close(a));
}

struct lock_probe {
	off_t start, len;	/* range the child asks for */
	int setlk_err;		/* errno of F_SETLK F_WRLCK, 0 if granted */
	int getlk_err;
	short type;		/* F_GETLK's answer */
	pid_t pid;
	off_t got_start, got_len;
};

static int probe_lock(void *arg, void *out)
{
	struct lock_probe *p = out;
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	int fd = open((const char *)arg, O_RDWR);

	if (fd < 0)
		return 1;
	fl.l_start = p->start;
	fl.l_len = p->len;
	p->getlk_err = fcntl(fd, F_GETLK, &fl) < 0 ? errno : 0;
	p->type = fl.l_type;
	p->pid = fl.l_pid;
	p->got_start = fl.l_start;
	p->got_len = fl.l_len;
	fl = (struct flock){ .l_type = F_WRLCK, .l_whence = SEEK_SET,
			     .l_start = p->start, .l_len = p->len };
	p->setlk_err = fcntl(fd, F_SETLK, &fl) < 0 ? errno : 0;
	close(fd);
	return 0;
}

static int run_probe(off_t start, off_t len, struct lock_probe *p)
{
	memset(p, 0, sizeof(*p));
	p->start = start;
	p->len = len;
	return it_child(probe_lock, (void *)MNT("f"), p, sizeof(*p), (uid_t)-1,
			(gid_t)-1);
}

static int lock_range(int fd, short type, off_t start, off_t len)
{
	struct flock fl = { .l_type = type, .l_whence = SEEK_SET,
			    .l_start = start, .l_len = len };

	return fcntl(fd, F_SETLK, &fl);
}

static int hold_lock(void)
{
	int fd;

	if (it_put_str(MNT("f"), "0123456789") < 0)
		return -1;
	fd = open(MNT("f"), O_RDWR);
	if (fd >= 0 && lock_range(fd, F_WRLCK, 0, 100) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static void posix_conflict_and_getlk(void)
{
	struct lock_probe p;
	int fd = IT_REQUIRE_OK(hold_lock());

	IT_REQUIRE_EQ(run_probe(50, 10, &p), 0);
	IT_TRUE(p.setlk_err == EAGAIN || p.setlk_err == EACCES,
		"child F_SETLK on a held range: %s, expected EAGAIN or EACCES",
		it_errname(p.setlk_err));
	IT_EQ(p.getlk_err, 0);
	IT_EQ(p.type, F_WRLCK);
	IT_EQ(p.pid, getpid());
	IT_EQ(p.got_start, 0);
	IT_EQ(p.got_len, 100);
	IT_OK(close(fd));
}

static void posix_disjoint_range(void)
{
	struct lock_probe p;
	int fd = IT_REQUIRE_OK(hold_lock());

	IT_REQUIRE_EQ(run_probe(200, 50, &p), 0);
	IT_EQ(p.getlk_err, 0);
	IT_EQ(p.type, F_UNLCK);
	IT_STR_EQ(it_errname(p.setlk_err), "0");
	IT_OK(close(fd));
}

static void posix_after_unlock(void)
{
	struct lock_probe p;
	int fd = IT_REQUIRE_OK(hold_lock());

	IT_OK(lock_range(fd, F_UNLCK, 0, 100));
	IT_REQUIRE_EQ(run_probe(50, 10, &p), 0);
	IT_EQ(p.type, F_UNLCK);
	IT_STR_EQ(it_errname(p.setlk_err), "0");
	IT_OK(close(fd));
}

static void posix_read_lock_blocks_write(void)
{
	struct lock_probe p;
	int fd;

	IT_REQUIRE_OK(it_put_str(MNT("f"), "x"));
	fd = IT_REQUIRE_OK(open(MNT("f"), O_RDWR));
	IT_OK(lock_range(fd, F_RDLCK, 0, 0));
	IT_REQUIRE_EQ(run_probe(0, 10, &p), 0);
	IT_EQ(p.type, F_RDLCK);
	IT_EQ(p.pid, getpid());
	IT_TRUE(p.setlk_err == EAGAIN || p.setlk_err == EACCES,
		"child F_WRLCK over a read lock: %s", it_errname(p.setlk_err));
	IT_OK(close(fd));
}

static const struct it_test tests[] = {
	{ "flock_exclusive", flock_exclusive, 0, NULL },
	{ "flock_shared", flock_shared, 0, NULL },
	{ "flock_released_on_close", flock_released_on_close, 0, NULL },
	{ "posix_conflict_and_getlk", posix_conflict_and_getlk, 0, NULL },
	{ "posix_disjoint_range", posix_disjoint_range, 0, NULL },
	{ "posix_after_unlock", posix_after_unlock, 0, NULL },
	{ "posix_read_lock_blocks_write", posix_read_lock_blocks_write, 0, NULL },
	{ NULL, NULL, 0, NULL },
};

const struct it_suite it_suite_locks = { "locks", NULL, 0, tests };
