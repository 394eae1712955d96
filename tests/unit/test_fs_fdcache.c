/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/test_fs_fdcache.c — fs/fdcache.c: the bound holds (least
 * recently used closed first), a lookup's fresh descriptor fills a closed
 * entry, descriptors in use and kept ones are never
 * closed, a closed one reopens by handle to the same object (also after a
 * rename), a removed object's handle gives ESTALE, EMFILE shrinks the
 * bound, and where handles do not work (procfs) entries keep their
 * descriptors.  Works in a directory under /tmp; needs the root's
 * CAP_DAC_READ_SEARCH for open_by_handle_at (tests that need it say so
 * and pass without checking when it is missing).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs/fdcache.h"
#include "tests/unit/unit.h"

#define NFILES 40

struct fixture {
	char dir[64];
	int dirfd;
	dev_t dev;
	struct fdcache c;
	struct fdc_entry e[NFILES];
	ino_t ino[NFILES];
};

static int fd_is_open(int fd)
{
	return fd >= 0 && (fcntl(fd, F_GETFD) != -1 || errno != EBADF);
}

static void name_of(char *buf, size_t len, int i)
{
	snprintf(buf, len, "f%d", i);
}

/* A directory of NFILES files, a cache bounded at @max, one entry each. */
static int fixture_init(struct fixture *f, size_t max)
{
	struct stat st;
	char name[16];

	snprintf(f->dir, sizeof(f->dir), "/tmp/hmmfs-fdc.XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	f->dirfd = open(f->dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (f->dirfd < 0 || fstat(f->dirfd, &st) < 0)
		return -1;
	f->dev = st.st_dev;
	if (fdc_init(&f->c, max, f->dirfd, f->dev))
		return -1;
	if (fdc_no_handles(&f->c)) {
		fprintf(stderr, "(no file handles here: %s) ",
			strerror(fdc_no_handles(&f->c)));
		return 1;
	}
	for (int i = 0; i < NFILES; i++) {
		int fd;

		name_of(name, sizeof(name), i);
		close(openat(f->dirfd, name, O_CREAT | O_WRONLY | O_CLOEXEC, 0644));
		fd = openat(f->dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0 || fstat(fd, &st) < 0)
			return -1;
		f->ino[i] = st.st_ino;
		fdc_entry_init(&f->c, &f->e[i], fd, f->dev, S_IFREG, false);
	}
	return 0;
}

static void fixture_destroy(struct fixture *f)
{
	char name[16];

	for (int i = 0; i < NFILES; i++) {
		fdc_entry_destroy(&f->c, &f->e[i]);
		name_of(name, sizeof(name), i);
		unlinkat(f->dirfd, name, 0);
	}
	fdc_destroy(&f->c);
	close(f->dirfd);
	rmdir(f->dir);
}

static ino_t ino_of(int fd)
{
	struct stat st;

	return fstat(fd, &st) == 0 ? st.st_ino : 0;
}

#define FIXTURE(f, max) do {						\
	int r_ = fixture_init((f), (max));				\
	CU_ASSERT_FATAL(r_ >= 0);					\
	if (r_ > 0) {							\
		fdc_destroy(&(f)->c);					\
		return;	/* no handles: nothing to check */		\
	}								\
} while (0)

static void test_bound_closes_least_recent(void)
{
	struct fixture f;

	FIXTURE(&f, 4);
	CU_ASSERT_EQUAL(fdc_open_count(&f.c), 4);
	for (int i = 0; i < NFILES; i++)
		CU_ASSERT_EQUAL(f.e[i].fd >= 0, i >= NFILES - 4);
	CU_ASSERT_EQUAL(fdc_reopens(&f.c), 0);
	fixture_destroy(&f);
}

static void test_reopen_by_handle(void)
{
	struct fixture f;
	int fd;

	FIXTURE(&f, 4);
	fd = fdc_get(&f.c, &f.e[0]);
	CU_ASSERT_TRUE(fd >= 0);
	CU_ASSERT_EQUAL(ino_of(fd), f.ino[0]);
	CU_ASSERT_EQUAL(fdc_reopens(&f.c), 1);
	/* the reopened one in use, three cached: still the bound */
	CU_ASSERT_EQUAL(fdc_open_count(&f.c), 4);
	CU_ASSERT_EQUAL(f.e[NFILES - 4].fd, -1);	/* the oldest went */
	fdc_put(&f.c, &f.e[0]);
	/* cached again, most recent: a get takes it without a reopen */
	CU_ASSERT_EQUAL(fdc_get(&f.c, &f.e[0]), fd);
	CU_ASSERT_EQUAL(fdc_reopens(&f.c), 1);
	fdc_put(&f.c, &f.e[0]);
	fixture_destroy(&f);
}

static void test_offer_fills_closed_entry(void)
{
	struct fixture f;
	int fd = -1;

	FIXTURE(&f, 4);
	CU_ASSERT_EQUAL(f.e[0].fd, -1);
	fd = openat(f.dirfd, "f0", O_PATH | O_NOFOLLOW | O_CLOEXEC);
	fdc_offer(&f.c, &f.e[0], fd);
	CU_ASSERT_EQUAL(f.e[0].fd, fd);	/* taken, cached at the head */
	CU_ASSERT_EQUAL(fdc_open_count(&f.c), 4);
	CU_ASSERT_EQUAL(fdc_get(&f.c, &f.e[0]), fd);
	CU_ASSERT_EQUAL(fdc_reopens(&f.c), 0);
	fd = openat(f.dirfd, "f0", O_PATH | O_NOFOLLOW | O_CLOEXEC);
	fdc_offer(&f.c, &f.e[0], fd);	/* it has one: this one is closed */
	CU_ASSERT_FALSE(fd_is_open(fd));
	fdc_put(&f.c, &f.e[0]);
	fixture_destroy(&f);
}

static void test_in_use_never_closed(void)
{
	struct fixture f;
	int fd[6];

	FIXTURE(&f, 4);
	for (int i = 0; i < 6; i++)
		fd[i] = fdc_get(&f.c, &f.e[i]);
	CU_ASSERT_EQUAL(fdc_open_count(&f.c), 6);	/* over the bound: all used */
	for (int i = 0; i < 6; i++) {
		CU_ASSERT_TRUE(fd_is_open(fd[i]));
		CU_ASSERT_EQUAL(ino_of(fd[i]), f.ino[i]);
	}
	for (int i = 0; i < 6; i++)
		fdc_put(&f.c, &f.e[i]);
	CU_ASSERT_EQUAL(fdc_open_count(&f.c), 4);
	for (int i = 2; i < 6; i++)	/* put last: most recently used */
		CU_ASSERT_TRUE(f.e[i].fd >= 0);
	fixture_destroy(&f);
}

static void test_rename_keeps_handle(void)
{
	struct fixture f;
	int fd;

	FIXTURE(&f, 4);
	CU_ASSERT_EQUAL(f.e[1].fd, -1);
	CU_ASSERT_EQUAL(renameat(f.dirfd, "f1", f.dirfd, "moved"), 0);
	fd = fdc_get(&f.c, &f.e[1]);
	CU_ASSERT_EQUAL(ino_of(fd), f.ino[1]);
	fdc_put(&f.c, &f.e[1]);
	CU_ASSERT_EQUAL(renameat(f.dirfd, "moved", f.dirfd, "f1"), 0);
	fixture_destroy(&f);
}

static void test_removed_object_is_stale(void)
{
	struct fixture f;

	FIXTURE(&f, 4);
	CU_ASSERT_EQUAL(f.e[2].fd, -1);
	CU_ASSERT_EQUAL(unlinkat(f.dirfd, "f2", 0), 0);
	CU_ASSERT_EQUAL(fdc_get(&f.c, &f.e[2]), -ESTALE);
	fixture_destroy(&f);
}

static void test_keep_survives_unlink(void)
{
	struct fixture f;
	struct stat st;
	int fd;

	FIXTURE(&f, 4);
	fdc_keep(&f.c, &f.e[3], openat(f.dirfd, "f3", O_PATH | O_CLOEXEC));
	CU_ASSERT_EQUAL(unlinkat(f.dirfd, "f3", 0), 0);
	for (int i = 0; i < NFILES; i++) {	/* every other one used since */
		if (i == 3)
			continue;
		CU_ASSERT_TRUE(fdc_get(&f.c, &f.e[i]) >= 0);
		fdc_put(&f.c, &f.e[i]);
	}
	fd = fdc_get(&f.c, &f.e[3]);
	CU_ASSERT_TRUE(fd >= 0);
	CU_ASSERT_EQUAL(fstat(fd, &st), 0);
	CU_ASSERT_EQUAL(st.st_ino, f.ino[3]);
	CU_ASSERT_EQUAL(st.st_nlink, 0);
	fdc_put(&f.c, &f.e[3]);
	CU_ASSERT_TRUE(f.e[3].fd >= 0);	/* kept: never on the LRU */
	fixture_destroy(&f);
}

static void test_shrink_halves(void)
{
	struct fixture f;

	FIXTURE(&f, 1024);
	CU_ASSERT_EQUAL(fdc_open_count(&f.c), NFILES);
	CU_ASSERT_TRUE(fdc_shrink(&f.c));
	CU_ASSERT_EQUAL(fdc_max(&f.c), NFILES / 2);
	CU_ASSERT_EQUAL(fdc_open_count(&f.c), NFILES / 2);
	CU_ASSERT_TRUE(fdc_shrink(&f.c));	/* NFILES / 4 is below the floor */
	CU_ASSERT_EQUAL(fdc_max(&f.c), FDC_MIN_MAX);
	CU_ASSERT_EQUAL(fdc_open_count(&f.c), FDC_MIN_MAX);
	CU_ASSERT_FALSE(fdc_shrink(&f.c));	/* at the floor: nothing to give */
	fdc_set_max(&f.c, 4);
	CU_ASSERT_EQUAL(fdc_open_count(&f.c), 4);
	fixture_destroy(&f);
}

static void test_no_handles_keeps_fds(void)
{
	struct fdcache c;
	struct fdc_entry e[4];
	int root = open("/proc", O_PATH | O_DIRECTORY | O_CLOEXEC);
	struct stat st;

	CU_ASSERT_FATAL(root >= 0 && fstat(root, &st) == 0);
	CU_ASSERT_FATAL(fdc_init(&c, 2, root, st.st_dev) == 0);
	CU_ASSERT_EQUAL(fdc_no_handles(&c), EOPNOTSUPP);
	for (int i = 0; i < 4; i++)
		fdc_entry_init(&c, &e[i], open("/proc/self", O_PATH | O_CLOEXEC),
			       st.st_dev, S_IFDIR, false);
	CU_ASSERT_EQUAL(fdc_open_count(&c), 4);	/* over the bound, as before */
	for (int i = 0; i < 4; i++) {
		int fd = fdc_get(&c, &e[i]);

		CU_ASSERT_TRUE(fd_is_open(fd));
		fdc_put(&c, &e[i]);
		CU_ASSERT_TRUE(fd_is_open(e[i].fd));
	}
	for (int i = 0; i < 4; i++)
		fdc_entry_destroy(&c, &e[i]);
	CU_ASSERT_EQUAL(fdc_open_count(&c), 0);
	CU_ASSERT_EQUAL(fdc_reopens(&c), 0);
	fdc_destroy(&c);
	close(root);
}

static CU_TestInfo tests[] = {
	{ "bound_closes_least_recent", test_bound_closes_least_recent },
	{ "reopen_by_handle", test_reopen_by_handle },
	{ "offer_fills_closed_entry", test_offer_fills_closed_entry },
	{ "in_use_never_closed", test_in_use_never_closed },
	{ "rename_keeps_handle", test_rename_keeps_handle },
	{ "removed_object_is_stale", test_removed_object_is_stale },
	{ "keep_survives_unlink", test_keep_survives_unlink },
	{ "shrink_halves", test_shrink_halves },
	{ "no_handles_keeps_fds", test_no_handles_keeps_fds },
	CU_TEST_INFO_NULL,
};

int register_fs_fdcache(void)
{
	return unit_add_suite("fs_fdcache", tests);
}
