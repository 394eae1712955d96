/* SPDX-License-Identifier: MIT */
/*
 * tests/integration/test_dir.c — readdir, readdirplus, fsyncdir, statfs.
 *
 * A directory of 1000 files made through the mount must list every name
 * exactly once plus "." and "..", with d_type DT_REG; telldir/seekdir and
 * rewinddir must resume at the same entries; stat() of every entry right
 * after listing (what readdirplus feeds) must give each file's own size
 * and the d_ino the listing gave; fsync() on a directory must return 0;
 * statfs through the mount must report BACKING's block size and counts.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "tests/integration/harness.h"

#define N_FILES 1000

/* Index of "f0000".."f0999", -2 for "." / "..", -1 for anything else. */
static int name_index(const char *name)
{
	char *end;
	long i;

	if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return -2;
	if (name[0] != 'f' || strlen(name) != 5)
		return -1;
	i = strtol(name + 1, &end, 10);
	return *end == '\0' && i >= 0 && i < N_FILES ? (int)i : -1;
}

static int make_files(const char *dir, int n, bool sized)
{
	char rel[64], data[256];
	int i, err;

	memset(data, 's', sizeof(data));
	for (i = 0; i < n; i++) {
		snprintf(rel, sizeof(rel), "%s/f%04d", dir, i);
		err = it_put(MNT(rel), data, sized ? (size_t)(i % 256) : 0);
		if (err)
			return err;
	}
	return 0;
}

struct listing {
	int seen[N_FILES];
	int dots;
	int strangers;
	int not_reg;
	char stranger[256];
};

static void record(struct listing *l, const struct dirent *e)
{
	int i = name_index(e->d_name);

	if (i == -2) {
		l->dots++;
	} else if (i < 0) {
		l->strangers++;
		snprintf(l->stranger, sizeof(l->stranger), "%s", e->d_name);
	} else {
		l->seen[i]++;
		if (e->d_type != DT_REG)
			l->not_reg++;
	}
}

static void expect_complete(const struct listing *l)
{
	int i, missing = 0, dup = 0, first_bad = -1;

	for (i = 0; i < N_FILES; i++) {
		if (l->seen[i] == 0)
			missing++;
		if (l->seen[i] > 1)
			dup++;
		if (l->seen[i] != 1 && first_bad < 0)
			first_bad = i;
	}
	IT_TRUE(missing == 0 && dup == 0,
		"%d names missing, %d listed twice (first: f%04d)", missing, dup,
		first_bad);
	IT_EQ(l->dots, 2);
	IT_TRUE(l->strangers == 0, "%d unexpected names, e.g. \"%s\"",
		l->strangers, l->stranger);
	IT_EQ(l->not_reg, 0);
}

static void readdir_1000(void)
{
	static struct listing l;
	struct dirent *e;
	DIR *d;

	memset(&l, 0, sizeof(l));
	IT_REQUIRE_OK(mkdir(MNT("d"), 0755));
	IT_REQUIRE_EQ(make_files("d", N_FILES, false), 0);
	d = opendir(MNT("d"));
	IT_REQUIRE(d != NULL, "opendir: %s", it_errname(errno));
	errno = 0;
	while ((e = readdir(d)))
		record(&l, e);
	IT_EQ(errno, 0);
	closedir(d);
	expect_complete(&l);
}

/* Names from the current position to the end, joined. */
static size_t rest_of(DIR *d, char *buf, size_t cap)
{
	struct dirent *e;
	size_t used = 0;

	buf[0] = '\0';
	while ((e = readdir(d)))
		used += (size_t)snprintf(buf + used, used < cap ? cap - used : 0,
					 "%s/", e->d_name);
	return used;
}

static void readdir_seek_and_rewind(void)
{
	static char first[16384], again[16384], whole[16384], whole2[16384];
	DIR *d;
	long pos;
	int i;

	IT_REQUIRE_OK(mkdir(MNT("d"), 0755));
	IT_REQUIRE_EQ(make_files("d", 600, false), 0);
	d = opendir(MNT("d"));
	IT_REQUIRE(d != NULL, "opendir: %s", it_errname(errno));
	for (i = 0; i < 300; i++)
		IT_REQUIRE(readdir(d) != NULL, "readdir ended early at %d", i);
	pos = telldir(d);
	rest_of(d, first, sizeof(first));
	seekdir(d, pos);
	rest_of(d, again, sizeof(again));
	IT_STR_EQ(again, first);
	rewinddir(d);
	rest_of(d, whole, sizeof(whole));
	rewinddir(d);
	rest_of(d, whole2, sizeof(whole2));
	IT_STR_EQ(whole2, whole);
	IT_TRUE(strlen(whole) > strlen(first), "rewind did not restart the listing");
	closedir(d);
}

static void readdir_empty(void)
{
	struct listing l;
	struct dirent *e;
	DIR *d;

	memset(&l, 0, sizeof(l));
	IT_REQUIRE_OK(mkdir(MNT("d"), 0755));
	d = opendir(MNT("d"));
	IT_REQUIRE(d != NULL, "opendir: %s", it_errname(errno));
	while ((e = readdir(d)))
		record(&l, e);
	closedir(d);
	IT_EQ(l.dots, 2);
	IT_EQ(l.strangers, 0);
}

static void readdir_types(void)
{
	unsigned char type[4] = { 0 };
	struct dirent *e;
	DIR *d;

	IT_REQUIRE_OK(it_put_str(BACK("file"), "x"));
	IT_REQUIRE_OK(mkdir(BACK("dir"), 0755));
	IT_REQUIRE_OK(symlink("file", BACK("link")));
	IT_REQUIRE_OK(mkfifo(BACK("fifo"), 0644));
	d = opendir(MNT(""));
	IT_REQUIRE(d != NULL, "opendir: %s", it_errname(errno));
	while ((e = readdir(d))) {
		if (strcmp(e->d_name, "file") == 0)
			type[0] = e->d_type;
		else if (strcmp(e->d_name, "dir") == 0)
			type[1] = e->d_type;
		else if (strcmp(e->d_name, "link") == 0)
			type[2] = e->d_type;
		else if (strcmp(e->d_name, "fifo") == 0)
			type[3] = e->d_type;
	}
	closedir(d);
	IT_EQ(type[0], DT_REG);
	IT_EQ(type[1], DT_DIR);
	IT_EQ(type[2], DT_LNK);
	IT_EQ(type[3], DT_FIFO);
}

/* stat() each listed entry: size i % 256 for f<i>, st_ino == d_ino. */
static void readdirplus_stat_all(void)
{
	int bad_size = 0, bad_ino = 0, failed = 0, n = 0;
	struct dirent *e;
	struct stat st;
	DIR *d;

	IT_REQUIRE_OK(mkdir(MNT("d"), 0755));
	IT_REQUIRE_EQ(make_files("d", 300, true), 0);
	d = opendir(MNT("d"));
	IT_REQUIRE(d != NULL, "opendir: %s", it_errname(errno));
	while ((e = readdir(d))) {
		int i = name_index(e->d_name);

		if (i < 0)
			continue;
		n++;
		if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			failed++;
			continue;
		}
		bad_size += st.st_size != i % 256;
		bad_ino += st.st_ino != e->d_ino;
	}
	closedir(d);
	IT_EQ(n, 300);
	IT_EQ(failed, 0);
	IT_EQ(bad_size, 0);
	IT_EQ(bad_ino, 0);
}

static void fsyncdir(void)
{
	int fd;

	IT_REQUIRE_OK(mkdir(MNT("d"), 0755));
	IT_REQUIRE_OK(it_put_str(MNT("d/f"), "x"));
	fd = IT_REQUIRE_OK(open(MNT("d"), O_RDONLY | O_DIRECTORY));
	IT_OK(fsync(fd));
	IT_OK(fdatasync(fd));
	IT_OK(close(fd));
	fd = IT_REQUIRE_OK(open(MNT(""), O_RDONLY | O_DIRECTORY));
	IT_OK(fsync(fd));
	IT_OK(close(fd));
}

static void statfs_matches_backing(void)
{
	struct statfs m, b;

	IT_REQUIRE_OK(statfs(MNT(""), &m));
	IT_REQUIRE_OK(statfs(BACK(""), &b));
	IT_EQ(m.f_bsize, b.f_bsize);
	IT_EQ(m.f_frsize, b.f_frsize);
	IT_EQ(m.f_blocks, b.f_blocks);
	IT_EQ(m.f_files, b.f_files);
	IT_EQ(m.f_namelen, b.f_namelen);
	IT_TRUE(m.f_bfree <= m.f_blocks && m.f_bavail <= m.f_bfree,
		"free counts out of range: blocks %llu bfree %llu bavail %llu",
		(unsigned long long)m.f_blocks, (unsigned long long)m.f_bfree,
		(unsigned long long)m.f_bavail);
}

static const struct it_test tests[] = {
	{ "readdir_1000", readdir_1000, 0, NULL },
	{ "readdir_seek_and_rewind", readdir_seek_and_rewind, 0, NULL },
	{ "readdir_empty", readdir_empty, 0, NULL },
	{ "readdir_types", readdir_types, 0, NULL },
	{ "readdirplus_stat_all", readdirplus_stat_all, 0, NULL },
	{ "fsyncdir", fsyncdir, 0, NULL },
	{ "statfs_matches_backing", statfs_matches_backing, 0, NULL },
	{ NULL, NULL, 0, NULL },
};

const struct it_suite it_suite_dir = { "dir", NULL, 0, tests };
