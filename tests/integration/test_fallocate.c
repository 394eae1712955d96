/* SPDX-License-Identifier: MIT */
/*
 * tests/integration/test_fallocate.c — fallocate(2) modes on an ext4
 * BACKING (/tmp here).
 *
 * Mode 0 and FALLOC_FL_KEEP_SIZE must allocate blocks in BACKING (with
 * and without changing the size), PUNCH_HOLE must read back zeros, leave
 * a hole SEEK_HOLE finds and free the blocks in BACKING, ZERO_RANGE must
 * zero exactly its range.  COLLAPSE_RANGE and INSERT_RANGE must shift the
 * content by whole blocks; the Linux FUSE driver refuses those two modes
 * itself (EOPNOTSUPP, before any request), so these tests run the daemon
 * with -d and count FALLOCATE requests in its log: EOPNOTSUPP passes only
 * when no request reached the daemon (the kernel refused; reported on
 * stdout) and the file is unchanged; a daemon that got the request and
 * failed it fails the test.  The same mode is also applied in BACKING
 * directly to show the backing file system supports it.
 */
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/integration/harness.h"

#define BLK 4096
#define MiB (1024 * 1024)

static void expect_size_both(const char *rel, off_t size)
{
	struct stat st;

	if (IT_OK(stat(MNT(rel), &st)) == 0)
		IT_EQ(st.st_size, size);
	if (IT_OK(stat(BACK(rel), &st)) == 0)
		IT_EQ(st.st_size, size);
}

static blkcnt_t blocks_of(const char *path)
{
	struct stat st;

	return stat(path, &st) < 0 ? -1 : st.st_blocks;
}

/* A file of @nblocks blocks, block i filled with the letter 'A' + i. */
static void make_lettered(const char *rel, int nblocks, char *expect)
{
	int i;

	for (i = 0; i < nblocks; i++)
		memset(expect + i * BLK, 'A' + i, BLK);
	IT_REQUIRE_OK(it_put(MNT(rel), expect, (size_t)nblocks * BLK));
}

static void mode0_allocates(void)
{
	static char zeros[MiB];
	int fd = IT_REQUIRE_OK(open(MNT("f"), O_CREAT | O_RDWR, 0644));

	IT_OK(fallocate(fd, 0, 0, MiB));
	IT_OK(close(fd));
	expect_size_both("f", MiB);
	IT_TRUE(blocks_of(BACK("f")) >= MiB / 512, "backing st_blocks %lld < %d",
		(long long)blocks_of(BACK("f")), MiB / 512);
	IT_CONTENT_BOTH("f", zeros, MiB);
}

static void keep_size(void)
{
	char data[BLK];
	int fd;

	memset(data, 'a', sizeof(data));
	IT_REQUIRE_OK(it_put(MNT("f"), data, sizeof(data)));
	fd = IT_REQUIRE_OK(open(MNT("f"), O_RDWR));
	IT_OK(fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, MiB));
	IT_OK(close(fd));
	expect_size_both("f", BLK);
	IT_TRUE(blocks_of(BACK("f")) >= MiB / 512, "backing st_blocks %lld < %d",
		(long long)blocks_of(BACK("f")), MiB / 512);
	IT_TRUE(blocks_of(MNT("f")) >= MiB / 512, "mount st_blocks %lld < %d",
		(long long)blocks_of(MNT("f")), MiB / 512);
	IT_CONTENT_BOTH("f", data, sizeof(data));
}

static void punch_hole(void)
{
	char expect[3 * BLK];
	int fd;

	memset(expect, 0xAA, sizeof(expect));
	IT_REQUIRE_OK(it_put(MNT("f"), expect, sizeof(expect)));
	fd = IT_REQUIRE_OK(open(MNT("f"), O_RDWR));
	IT_OK(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, BLK, BLK));
	memset(expect + BLK, 0, BLK);
	IT_EQ(lseek(fd, 0, SEEK_HOLE), BLK);
	IT_EQ(lseek(fd, BLK, SEEK_DATA), 2 * BLK);
	IT_OK(close(fd));
	expect_size_both("f", sizeof(expect));
	IT_CONTENT_BOTH("f", expect, sizeof(expect));
	IT_TRUE(blocks_of(BACK("f")) * 512 <= 2 * BLK,
		"backing not sparse: st_blocks %lld for 2 data blocks",
		(long long)blocks_of(BACK("f")));
	fd = IT_REQUIRE_OK(open(BACK("f"), O_RDONLY));
	IT_EQ(lseek(fd, 0, SEEK_HOLE), BLK);
	IT_OK(close(fd));
}

static void zero_range(void)
{
	char expect[3 * BLK];
	int fd;

	memset(expect, 0xAA, sizeof(expect));
	IT_REQUIRE_OK(it_put(MNT("f"), expect, sizeof(expect)));
	fd = IT_REQUIRE_OK(open(MNT("f"), O_RDWR));
	IT_OK(fallocate(fd, FALLOC_FL_ZERO_RANGE, 1000, 5000));
	IT_OK(close(fd));
	memset(expect + 1000, 0, 5000);
	expect_size_both("f", sizeof(expect));
	IT_CONTENT_BOTH("f", expect, sizeof(expect));
}

/* Apply @mode to a lettered copy made directly in BACKING: must work. */
static void backing_supports(int mode, off_t off, off_t len)
{
	char buf[4 * BLK];
	int fd;

	memset(buf, 'x', sizeof(buf));
	IT_REQUIRE_OK(it_put(BACK("probe"), buf, sizeof(buf)));
	fd = IT_REQUIRE_OK(open(BACK("probe"), O_RDWR));
	IT_OK(fallocate(fd, mode, off, len));
	IT_OK(close(fd));
	IT_OK(unlink(BACK("probe")));
}

/*
 * Run fallocate(@mode) through the mount.  1: it worked, check the
 * shifted content.  0: the kernel refused with EOPNOTSUPP before asking
 * the daemon (checked in the -d log).  Anything else fails the test.
 */
static int shift_through_mount(const char *what, int mode, off_t off, off_t len)
{
	int before = it_log_count("opcode: FALLOCATE");
	int fd = IT_REQUIRE_OK(open(MNT("f"), O_RDWR));
	int ret = fallocate(fd, mode, off, len), err = errno;
	int reached;

	IT_OK(close(fd));
	if (ret == 0) {
		printf("[%s: supported through the mount] ", what);
		return 1;
	}
	reached = it_log_count("opcode: FALLOCATE") - before;
	IT_TRUE(err == EOPNOTSUPP && reached == 0,
		"fallocate(%s) through the mount: %s, %d FALLOCATE request(s) "
		"reached the daemon", what, it_errname(err), reached);
	if (err == EOPNOTSUPP && reached == 0)
		printf("[%s: EOPNOTSUPP from the kernel's FUSE driver, no request "
		       "reached the daemon; file unchanged is checked] ", what);
	return 0;
}

static void collapse_range(void)
{
	char before[4 * BLK], after[3 * BLK];

	make_lettered("f", 4, before);
	backing_supports(FALLOC_FL_COLLAPSE_RANGE, BLK, BLK);
	if (shift_through_mount("COLLAPSE_RANGE", FALLOC_FL_COLLAPSE_RANGE, BLK,
				BLK)) {
		memcpy(after, before, BLK);
		memcpy(after + BLK, before + 2 * BLK, 2 * BLK);
		expect_size_both("f", sizeof(after));
		IT_CONTENT_BOTH("f", after, sizeof(after));
	} else {
		IT_CONTENT_BOTH("f", before, sizeof(before));
	}
}

static void insert_range(void)
{
	char before[3 * BLK], after[4 * BLK];

	make_lettered("f", 3, before);
	backing_supports(FALLOC_FL_INSERT_RANGE, BLK, BLK);
	if (shift_through_mount("INSERT_RANGE", FALLOC_FL_INSERT_RANGE, BLK, BLK)) {
		memcpy(after, before, BLK);
		memset(after + BLK, 0, BLK);
		memcpy(after + 2 * BLK, before + BLK, 2 * BLK);
		expect_size_both("f", sizeof(after));
		IT_CONTENT_BOTH("f", after, sizeof(after));
	} else {
		IT_CONTENT_BOTH("f", before, sizeof(before));
	}
}

static void fallocate_on_readonly_fd_ebadf(void)
{
	int fd;

	IT_REQUIRE_OK(it_put_str(MNT("f"), "x"));
	fd = IT_REQUIRE_OK(open(MNT("f"), O_RDONLY));
	IT_ERRNO(fallocate(fd, 0, 0, BLK), EBADF);
	IT_OK(close(fd));
	expect_size_both("f", 1);
}

static const struct it_test tests[] = {
	{ "mode0_allocates", mode0_allocates, 0, NULL },
	{ "keep_size", keep_size, 0, NULL },
	{ "punch_hole", punch_hole, 0, NULL },
	{ "zero_range", zero_range, 0, NULL },
	{ "collapse_range", collapse_range, IT_DEBUG, NULL },
	{ "insert_range", insert_range, IT_DEBUG, NULL },
	{ "readonly_fd_ebadf", fallocate_on_readonly_fd_ebadf, 0, NULL },
	{ NULL, NULL, 0, NULL },
};

const struct it_suite it_suite_fallocate = { "fallocate", NULL, 0, tests };
