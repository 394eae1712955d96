/* SPDX-License-Identifier: MIT */
/*
 * tests/integration/test_attr.c — lookup/getattr and setattr.
 *
 * getattr: objects made directly in BACKING must stat identically through
 * the mount (type and mode, size, links, owner, inode number, times,
 * blocks).  setattr: chmod, chown, truncate and utimensat are made through
 * the mount and the result is checked with stat() through the mount and
 * with lstat() in BACKING, with exact values.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "tests/integration/harness.h"

#define SAME_FIELD(m, b, field) IT_EQ((m)->field, (b)->field)

/* Every field a passthrough must report as BACKING has it. */
static void expect_same_stat(const struct stat *m, const struct stat *b)
{
	IT_EQ_OCT(m->st_mode, b->st_mode);
	SAME_FIELD(m, b, st_ino);
	SAME_FIELD(m, b, st_nlink);
	SAME_FIELD(m, b, st_uid);
	SAME_FIELD(m, b, st_gid);
	SAME_FIELD(m, b, st_size);
	SAME_FIELD(m, b, st_blocks);
	SAME_FIELD(m, b, st_rdev);
	SAME_FIELD(m, b, st_mtim.tv_sec);
	SAME_FIELD(m, b, st_mtim.tv_nsec);
	SAME_FIELD(m, b, st_ctim.tv_sec);
	SAME_FIELD(m, b, st_ctim.tv_nsec);
}

static void expect_lstat_matches(const char *rel)
{
	struct stat m, b;

	IT_REQUIRE_OK(lstat(BACK(rel), &b));
	IT_REQUIRE_OK(lstat(MNT(rel), &m));
	expect_same_stat(&m, &b);
}

static void getattr_file(void)
{
	char data[1234];

	memset(data, 'x', sizeof(data));
	IT_REQUIRE_OK(it_put(BACK("f"), data, sizeof(data)));
	IT_REQUIRE_OK(chmod(BACK("f"), 0640));
	expect_lstat_matches("f");
}

static void getattr_dir(void)
{
	IT_REQUIRE_OK(mkdir(BACK("d"), 0710));
	IT_REQUIRE_OK(mkdir(BACK("d/sub"), 0755));
	expect_lstat_matches("d");
}

static void getattr_symlink(void)
{
	struct stat m;

	IT_REQUIRE_OK(symlink("some/target", BACK("l")));
	expect_lstat_matches("l");
	IT_OK(lstat(MNT("l"), &m));
	IT_TRUE(S_ISLNK(m.st_mode), "mode 0%o is not a symlink", m.st_mode);
	IT_EQ(m.st_size, strlen("some/target"));
}

static void getattr_root(void)
{
	struct stat m, b;

	IT_REQUIRE_OK(mkdir(BACK("x"), 0755));
	IT_REQUIRE_OK(stat(BACK(""), &b));
	IT_REQUIRE_OK(stat(MNT(""), &m));
	IT_EQ_OCT(m.st_mode, b.st_mode);
	IT_EQ(m.st_nlink, b.st_nlink);
	IT_EQ(m.st_uid, b.st_uid);
	IT_EQ(m.st_gid, b.st_gid);
	IT_EQ(m.st_ino, b.st_ino);
}

static void chmod_mode(void)
{
	struct stat st;

	IT_REQUIRE_OK(it_put_str(MNT("f"), "data"));
	IT_REQUIRE_OK(chmod(MNT("f"), 0751));
	IT_OK(stat(MNT("f"), &st));
	IT_EQ_OCT(st.st_mode, S_IFREG | 0751);
	IT_OK(stat(BACK("f"), &st));
	IT_EQ_OCT(st.st_mode, S_IFREG | 0751);
}

static void chmod_setid_bits(void)
{
	struct stat st;

	IT_REQUIRE_OK(it_put_str(MNT("f"), "data"));
	IT_REQUIRE_OK(chmod(MNT("f"), 06755));
	IT_OK(stat(MNT("f"), &st));
	IT_EQ_OCT(st.st_mode, S_IFREG | 06755);
	IT_OK(stat(BACK("f"), &st));
	IT_EQ_OCT(st.st_mode, S_IFREG | 06755);
}

static void fchmod_open_file(void)
{
	struct stat st;
	int fd = IT_REQUIRE_OK(open(MNT("f"), O_CREAT | O_RDWR, 0600));

	IT_OK(fchmod(fd, 0604));
	IT_OK(fstat(fd, &st));
	IT_EQ_OCT(st.st_mode, S_IFREG | 0604);
	IT_OK(close(fd));
	IT_OK(stat(BACK("f"), &st));
	IT_EQ_OCT(st.st_mode, S_IFREG | 0604);
}

static void chown_owner_and_group(void)
{
	struct stat st;

	IT_REQUIRE_OK(it_put_str(MNT("f"), "data"));
	IT_REQUIRE_OK(chown(MNT("f"), 1234, 5678));
	IT_OK(stat(MNT("f"), &st));
	IT_EQ(st.st_uid, 1234);
	IT_EQ(st.st_gid, 5678);
	IT_OK(stat(BACK("f"), &st));
	IT_EQ(st.st_uid, 1234);
	IT_EQ(st.st_gid, 5678);
}

static void chown_group_only(void)
{
	struct stat st;

	IT_REQUIRE_OK(it_put_str(MNT("f"), "data"));
	IT_REQUIRE_OK(chown(MNT("f"), (uid_t)-1, 5678));
	IT_OK(stat(BACK("f"), &st));
	IT_EQ(st.st_uid, 0);
	IT_EQ(st.st_gid, 5678);
	IT_OK(stat(MNT("f"), &st));
	IT_EQ(st.st_uid, 0);
	IT_EQ(st.st_gid, 5678);
}

static void lchown_symlink_not_target(void)
{
	struct stat st;

	IT_REQUIRE_OK(it_put_str(MNT("target"), "data"));
	IT_REQUIRE_OK(symlink("target", MNT("l")));
	IT_REQUIRE_OK(lchown(MNT("l"), 1234, 5678));
	IT_OK(lstat(BACK("l"), &st));
	IT_EQ(st.st_uid, 1234);
	IT_EQ(st.st_gid, 5678);
	IT_OK(lstat(MNT("l"), &st));
	IT_EQ(st.st_uid, 1234);
	IT_OK(stat(BACK("target"), &st));
	IT_EQ(st.st_uid, 0);
	IT_EQ(st.st_gid, 0);
}

/* A 100-byte file of 'a' grown to 10000: the tail reads as zeros. */
static void truncate_grow(void)
{
	char expect[10000];
	struct stat st;

	memset(expect, 0, sizeof(expect));
	memset(expect, 'a', 100);
	IT_REQUIRE_OK(it_put(MNT("f"), expect, 100));
	IT_REQUIRE_OK(truncate(MNT("f"), 10000));
	IT_OK(stat(MNT("f"), &st));
	IT_EQ(st.st_size, 10000);
	IT_OK(stat(BACK("f"), &st));
	IT_EQ(st.st_size, 10000);
	IT_CONTENT_BOTH("f", expect, sizeof(expect));
}

static void truncate_shrink(void)
{
	char data[10000];
	struct stat st;

	it_pattern(data, sizeof(data), 7, 0);
	IT_REQUIRE_OK(it_put(MNT("f"), data, sizeof(data)));
	IT_REQUIRE_OK(truncate(MNT("f"), 10));
	IT_OK(stat(MNT("f"), &st));
	IT_EQ(st.st_size, 10);
	IT_OK(stat(BACK("f"), &st));
	IT_EQ(st.st_size, 10);
	IT_CONTENT_BOTH("f", data, 10);
}

static void ftruncate_open_file(void)
{
	char data[5000];
	struct stat st;
	int fd;

	it_pattern(data, sizeof(data), 8, 0);
	IT_REQUIRE_OK(it_put(MNT("f"), data, sizeof(data)));
	fd = IT_REQUIRE_OK(open(MNT("f"), O_RDWR));
	IT_OK(ftruncate(fd, 4097));
	IT_OK(fstat(fd, &st));
	IT_EQ(st.st_size, 4097);
	IT_OK(close(fd));
	IT_CONTENT_BOTH("f", data, 4097);
}

static void expect_times(const char *path, struct timespec atime,
			 struct timespec mtime)
{
	struct stat st;

	IT_REQUIRE_OK(stat(path, &st));
	IT_EQ(st.st_atim.tv_sec, atime.tv_sec);
	IT_EQ(st.st_atim.tv_nsec, atime.tv_nsec);
	IT_EQ(st.st_mtim.tv_sec, mtime.tv_sec);
	IT_EQ(st.st_mtim.tv_nsec, mtime.tv_nsec);
}

static const struct timespec T_ATIME = { 1000000000, 123456789 };
static const struct timespec T_MTIME = { 1200000000, 987654321 };
static const struct timespec T_NEW = { 1300000000, 555555555 };

static void utimens_explicit(void)
{
	struct timespec tv[2] = { T_ATIME, T_MTIME };

	IT_REQUIRE_OK(it_put_str(MNT("f"), "data"));
	IT_REQUIRE_OK(utimensat(AT_FDCWD, MNT("f"), tv, 0));
	expect_times(MNT("f"), T_ATIME, T_MTIME);
	expect_times(BACK("f"), T_ATIME, T_MTIME);
}

static void expect_time_recent(const char *what, struct timespec t,
			       time_t before, time_t after)
{
	IT_TRUE(t.tv_sec >= before - 1 && t.tv_sec <= after + 1,
		"%s = %lld, expected within [%lld, %lld]", what,
		(long long)t.tv_sec, (long long)before, (long long)after);
}

static void utimens_now(void)
{
	struct timespec old[2] = { T_ATIME, T_MTIME };
	struct timespec now[2] = { { 0, UTIME_NOW }, { 0, UTIME_NOW } };
	struct stat m, b;
	time_t before, after;

	IT_REQUIRE_OK(it_put_str(MNT("f"), "data"));
	IT_REQUIRE_OK(utimensat(AT_FDCWD, MNT("f"), old, 0));
	before = time(NULL);
	IT_REQUIRE_OK(utimensat(AT_FDCWD, MNT("f"), now, 0));
	after = time(NULL);
	IT_REQUIRE_OK(stat(BACK("f"), &b));
	IT_REQUIRE_OK(stat(MNT("f"), &m));
	expect_time_recent("backing atime", b.st_atim, before, after);
	expect_time_recent("backing mtime", b.st_mtim, before, after);
	IT_EQ(m.st_atim.tv_sec, b.st_atim.tv_sec);
	IT_EQ(m.st_atim.tv_nsec, b.st_atim.tv_nsec);
	IT_EQ(m.st_mtim.tv_sec, b.st_mtim.tv_sec);
	IT_EQ(m.st_mtim.tv_nsec, b.st_mtim.tv_nsec);
}

static void utimens_omit_atime(void)
{
	struct timespec old[2] = { T_ATIME, T_MTIME };
	struct timespec upd[2] = { { 0, UTIME_OMIT }, T_NEW };

	IT_REQUIRE_OK(it_put_str(MNT("f"), "data"));
	IT_REQUIRE_OK(utimensat(AT_FDCWD, MNT("f"), old, 0));
	IT_REQUIRE_OK(utimensat(AT_FDCWD, MNT("f"), upd, 0));
	expect_times(MNT("f"), T_ATIME, T_NEW);
	expect_times(BACK("f"), T_ATIME, T_NEW);
}

static void utimens_omit_mtime(void)
{
	struct timespec old[2] = { T_ATIME, T_MTIME };
	struct timespec upd[2] = { T_NEW, { 0, UTIME_OMIT } };

	IT_REQUIRE_OK(it_put_str(MNT("f"), "data"));
	IT_REQUIRE_OK(utimensat(AT_FDCWD, MNT("f"), old, 0));
	IT_REQUIRE_OK(utimensat(AT_FDCWD, MNT("f"), upd, 0));
	expect_times(MNT("f"), T_NEW, T_MTIME);
	expect_times(BACK("f"), T_NEW, T_MTIME);
}

static void futimens_open_file(void)
{
	struct timespec tv[2] = { T_ATIME, T_MTIME };
	int fd = IT_REQUIRE_OK(open(MNT("f"), O_CREAT | O_RDWR, 0644));

	IT_OK(futimens(fd, tv));
	IT_OK(close(fd));
	expect_times(MNT("f"), T_ATIME, T_MTIME);
	expect_times(BACK("f"), T_ATIME, T_MTIME);
}

static void utimens_symlink_nofollow(void)
{
	struct timespec tv[2] = { T_ATIME, T_MTIME };
	struct stat st;

	IT_REQUIRE_OK(it_put_str(MNT("target"), "data"));
	IT_REQUIRE_OK(symlink("target", MNT("l")));
	IT_REQUIRE_OK(utimensat(AT_FDCWD, MNT("l"), tv, AT_SYMLINK_NOFOLLOW));
	IT_OK(lstat(BACK("l"), &st));
	IT_EQ(st.st_mtim.tv_sec, T_MTIME.tv_sec);
	IT_EQ(st.st_mtim.tv_nsec, T_MTIME.tv_nsec);
	IT_OK(stat(BACK("target"), &st));
	IT_TRUE(st.st_mtim.tv_sec != T_MTIME.tv_sec,
		"the symlink's target got the link's mtime");
}

/* After a write through the mount, stat() must not show stale values. */
static void stat_after_write_matches_backing(void)
{
	struct timespec old[2] = { T_ATIME, T_MTIME };
	struct stat m, b;
	int fd;

	IT_REQUIRE_OK(it_put_str(MNT("f"), "short"));
	IT_REQUIRE_OK(utimensat(AT_FDCWD, MNT("f"), old, 0));
	IT_REQUIRE_OK(stat(MNT("f"), &m));
	fd = IT_REQUIRE_OK(open(MNT("f"), O_WRONLY | O_APPEND));
	IT_EQ(write(fd, " and longer", 11), 11);
	IT_OK(close(fd));
	IT_REQUIRE_OK(stat(MNT("f"), &m));
	IT_REQUIRE_OK(stat(BACK("f"), &b));
	IT_EQ(m.st_size, 16);
	IT_EQ(b.st_size, 16);
	IT_EQ(m.st_mtim.tv_sec, b.st_mtim.tv_sec);
	IT_EQ(m.st_mtim.tv_nsec, b.st_mtim.tv_nsec);
	IT_TRUE(b.st_mtim.tv_sec != T_MTIME.tv_sec, "backing mtime not updated");
}

/*
 * 1 MiB written and still dirty in the cache takes space in st_blocks
 * (du, and cp's sparse-file heuristics, judge by it), and still does once
 * it is written back.
 */
static void blocks_count_dirty_data(void)
{
	const size_t len = 1u << 20;
	struct stat m, b;
	int fd;

	fd = IT_REQUIRE_OK(open(MNT("f"), O_CREAT | O_WRONLY, 0644));
	IT_OK(it_pwrite_pattern(fd, 0, len, 65536, 12));
	IT_OK(fstat(fd, &m));
	IT_OK(stat(BACK("f"), &b));
	IT_TRUE(m.st_blocks * 512 >= (off_t)len,
		"st_blocks %lld of 1 MiB not written back (BACKING: %lld)",
		(long long)m.st_blocks, (long long)b.st_blocks);
	IT_OK(fsync(fd));
	IT_OK(close(fd));
	IT_OK(stat(MNT("f"), &m));
	IT_TRUE(m.st_blocks * 512 >= (off_t)len,
		"st_blocks %lld of 1 MiB after fsync", (long long)m.st_blocks);
}

/*
 * A rename after a write still in the cache moves ctime past the write's
 * (generic/003): the cache's time of the write must not hide BACKING's
 * later ctime.
 */
static void rename_after_write_moves_ctime(void)
{
	struct stat before, after;
	int fd;

	IT_REQUIRE_OK(it_put_str(MNT("f"), "data"));
	fd = IT_REQUIRE_OK(open(MNT("f"), O_WRONLY));
	IT_EQ(pwrite(fd, "xyz", 3, 0), 3);	/* dirty while fd stays open */
	IT_REQUIRE_OK(fstat(fd, &before));
	usleep(20000);
	IT_REQUIRE_OK(rename(MNT("f"), MNT("g")));
	IT_REQUIRE_OK(stat(MNT("g"), &after));
	IT_TRUE(after.st_ctim.tv_sec > before.st_ctim.tv_sec ||
		(after.st_ctim.tv_sec == before.st_ctim.tv_sec &&
		 after.st_ctim.tv_nsec > before.st_ctim.tv_nsec),
		"ctime did not move on rename: %lld.%09ld, then %lld.%09ld",
		(long long)before.st_ctim.tv_sec, before.st_ctim.tv_nsec,
		(long long)after.st_ctim.tv_sec, after.st_ctim.tv_nsec);
	IT_EQ(after.st_mtim.tv_sec, before.st_mtim.tv_sec);
	IT_EQ(after.st_mtim.tv_nsec, before.st_mtim.tv_nsec);
	IT_OK(close(fd));
}

/*
 * ctime @b is @a or, with the writeback cache, at most 5 s later (BACKING's
 * is stamped at the close's FLUSH; a loaded machine may stall in between)
 */
static bool ctime_kept(const struct stat *a, const struct stat *b)
{
	long long na = a->st_ctim.tv_sec * 1000000000LL + a->st_ctim.tv_nsec;
	long long nb = b->st_ctim.tv_sec * 1000000000LL + b->st_ctim.tv_nsec;

	if (it_writeback_cache())	/* README, "Writes": BACKING's is later */
		return nb >= na && nb - na < 5000000000LL;
	return na == nb;
}

static void expect_same_times(const char *what, const struct stat *a,
			      const struct stat *b)
{
	IT_TRUE(a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
		a->st_mtim.tv_nsec == b->st_mtim.tv_nsec,
		"%s: mtime %lld.%09ld, then %lld.%09ld", what,
		(long long)a->st_mtim.tv_sec, a->st_mtim.tv_nsec,
		(long long)b->st_mtim.tv_sec, b->st_mtim.tv_nsec);
	IT_TRUE(ctime_kept(a, b),
		"%s: ctime %lld.%09ld, then %lld.%09ld", what,
		(long long)a->st_ctim.tv_sec, a->st_ctim.tv_nsec,
		(long long)b->st_ctim.tv_sec, b->st_ctim.tv_nsec);
}

/*
 * The times shown after a write and close are the ones a remount shows
 * (generic/003): the cache's time of the write reaches BACKING.  Whether
 * BACKING's own clock would differ depends on its timestamp granularity
 * at that moment, so 50 files.
 */
static void times_survive_remount(void)
{
	struct stat before[50], again;
	char name[16];
	int status;

	for (int i = 0; i < 50; i++) {
		snprintf(name, sizeof(name), "w%d", i);
		IT_REQUIRE_OK(it_put_str(MNT(name), "aaa"));
		IT_REQUIRE_OK(stat(MNT(name), &before[i]));
	}
	it_mount_stop(&it.mount, &status);
	it_mount_default(NULL, false);
	for (int i = 0; i < 50; i++) {
		snprintf(name, sizeof(name), "w%d", i);
		IT_REQUIRE_OK(stat(MNT(name), &again));
		expect_same_times(name, &before[i], &again);
	}
}

/* Read @path through a fresh open, as cat does. */
static void read_once(const char *path)
{
	char buf[64];

	IT_TRUE(it_get(path, buf, sizeof(buf)) > 0, "read %s", path);
}

/*
 * BACKING's stat of "f" when atime_file_old() made it.  With the writeback
 * cache the mount shows the kernel's ctime of the write, BACKING the time
 * the data reached it (README, "Writes"), so each is compared with itself.
 */
static struct stat old_backing;

/* The file "f" with atime set long ago; its stat in the mount into @st. */
static void atime_file_old(struct stat *st)
{
	struct timespec tv[2] = { T_ATIME, { 0, UTIME_OMIT } };

	IT_REQUIRE_OK(it_put_str(MNT("f"), "data"));
	IT_REQUIRE_OK(utimensat(AT_FDCWD, MNT("f"), tv, 0));
	IT_REQUIRE_OK(stat(MNT("f"), st));
	IT_REQUIRE_OK(stat(BACK("f"), &old_backing));
}

/* atime moved to about now, ctime did not move, in the mount and BACKING */
static void expect_atime_set(const struct stat *old, time_t before,
			     struct stat *st)
{
	struct stat b;

	IT_REQUIRE_OK(stat(MNT("f"), st));
	IT_REQUIRE_OK(stat(BACK("f"), &b));
	expect_time_recent("atime", st->st_atim, before, time(NULL));
	IT_EQ(st->st_atim.tv_sec, b.st_atim.tv_sec);
	IT_EQ(st->st_atim.tv_nsec, b.st_atim.tv_nsec);
	IT_EQ(st->st_ctim.tv_sec, old->st_ctim.tv_sec);
	IT_EQ(st->st_ctim.tv_nsec, old->st_ctim.tv_nsec);
	IT_EQ(b.st_ctim.tv_sec, old_backing.st_ctim.tv_sec);
	IT_EQ(b.st_ctim.tv_nsec, old_backing.st_ctim.tv_nsec);
}

/* relatime: the first read after atime fell behind sets it, not the next */
static void read_atime_relatime(void)
{
	time_t before = time(NULL);
	struct stat old, st, again;

	atime_file_old(&old);
	read_once(MNT("f"));
	expect_atime_set(&old, before, &st);
	read_once(MNT("f"));
	IT_REQUIRE_OK(stat(MNT("f"), &again));
	IT_EQ(again.st_atim.tv_nsec, st.st_atim.tv_nsec);
	IT_REQUIRE_OK(stat(BACK("f"), &again));
	IT_EQ(again.st_atim.tv_nsec, st.st_atim.tv_nsec);
}

/* strictatime: every read sets atime, even when BACKING is relatime */
static void read_atime_strictatime(void)
{
	time_t before = time(NULL);
	struct stat old, first, second;

	if (geteuid() != 0) {
		fprintf(stderr, "  (skipped: strictatime needs CAP_SYS_ADMIN)\n");
		return;
	}
	atime_file_old(&old);
	read_once(MNT("f"));
	expect_atime_set(&old, before, &first);
	usleep(20000);	/* past a coarse clock tick */
	read_once(MNT("f"));
	expect_atime_set(&old, before, &second);
	IT_TRUE(second.st_atim.tv_sec != first.st_atim.tv_sec ||
		second.st_atim.tv_nsec != first.st_atim.tv_nsec,
		"the second read did not set atime");
}

/* noatime: reads set no atime, in the mount or in BACKING */
static void read_atime_noatime(void)
{
	struct stat old;

	atime_file_old(&old);
	read_once(MNT("f"));
	expect_times(MNT("f"), T_ATIME, old.st_mtim);
	expect_times(BACK("f"), T_ATIME, old.st_mtim);
}

static const struct it_test tests[] = {
	{ "getattr_file", getattr_file, 0, NULL },
	{ "getattr_dir", getattr_dir, 0, NULL },
	{ "getattr_symlink", getattr_symlink, 0, NULL },
	{ "getattr_root", getattr_root, 0, NULL },
	{ "chmod_mode", chmod_mode, 0, NULL },
	{ "chmod_setid_bits", chmod_setid_bits, 0, NULL },
	{ "fchmod_open_file", fchmod_open_file, 0, NULL },
	{ "chown_owner_and_group", chown_owner_and_group, 0, NULL },
	{ "chown_group_only", chown_group_only, 0, NULL },
	{ "lchown_symlink_not_target", lchown_symlink_not_target, 0, NULL },
	{ "truncate_grow", truncate_grow, 0, NULL },
	{ "truncate_shrink", truncate_shrink, 0, NULL },
	{ "ftruncate_open_file", ftruncate_open_file, 0, NULL },
	{ "utimens_explicit", utimens_explicit, 0, NULL },
	{ "utimens_now", utimens_now, 0, NULL },
	{ "utimens_omit_atime", utimens_omit_atime, 0, NULL },
	{ "utimens_omit_mtime", utimens_omit_mtime, 0, NULL },
	{ "futimens_open_file", futimens_open_file, 0, NULL },
	{ "utimens_symlink_nofollow", utimens_symlink_nofollow, 0, NULL },
	{ "stat_after_write_matches_backing", stat_after_write_matches_backing, 0,
	  NULL },
	{ "rename_after_write_moves_ctime", rename_after_write_moves_ctime, 0, NULL },
	/* the daemon's dirty pages: the kernel's are not counted (README) */
	{ "blocks_count_dirty_data", blocks_count_dirty_data, 0, "nowriteback_cache" },
	{ "blocks_count_dirty_data_64k", blocks_count_dirty_data, 0,
	  "nowriteback_cache,page_size=64K" },
	{ "times_survive_remount", times_survive_remount, 0, NULL },
	{ "read_atime_relatime", read_atime_relatime, 0, "relatime" },
	{ "read_atime_strictatime", read_atime_strictatime, 0, "strictatime" },
	{ "read_atime_noatime", read_atime_noatime, 0, "noatime" },
	{ NULL, NULL, 0, NULL },
};

const struct it_suite it_suite_attr = { "attr", NULL, 0, tests };
