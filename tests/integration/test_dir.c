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
 *
 * Descriptors (fs/fdcache.c): with the daemon's limit lowered to 1024
 * after the mount (prlimit; the daemon raises its own limit at start),
 * 20,000 small files are created, read, listed with a stat of each, and
 * read again after the kernel dropped its inodes (drop_caches), all
 * without an error, and the daemon holds at most max_fds + FDS_SLACK
 * descriptors; with the default max_fds the cache gives descriptors back
 * when the limit bites.  An open file unlinked, and a removed working
 * directory, still answer fstat after every descriptor cached was
 * recycled.  TIMEOUT: the 20,000-file tests arm the watchdog for
 * MANY_TIMEOUT_S (two passes over 20,000 files take about 20 s here and
 * the default of 30 s leaves no room on a loaded machine; 80 s seen with
 * two CPU hogs and a disk writer beside it).
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "include/hmmfs_ioctl.h"
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

/* ---- descriptors: fs/fdcache.c --------------------------------------- */

#define MANY_FILES 20000
#define MANY_TIMEOUT_S 360
#define FD_LIMIT 1024
/*
 * Descriptors the daemon holds besides the inodes' cached ones: stdio,
 * /dev/fuse, the io_uring ring and eventfds of the cache, the atime
 * clone's and the descriptor cache's mount directories, and the
 * descriptors requests in flight hold (16 worker threads, two at most
 * each: link and rename).
 */
#define FDS_SLACK 64

/* Lower the running daemon's limit: it raised its own at start. */
static void daemon_fd_limit(rlim_t n)
{
	struct rlimit rl = { n, n };

	IT_REQUIRE(it.mount.pid > 0, "the daemon's pid is not known");
	IT_REQUIRE_OK(prlimit(it.mount.pid, RLIMIT_NOFILE, &rl, NULL));
}

/* The kernel forgets the inodes it can: every node id gets a FORGET. */
static void drop_inodes(void)
{
	sync();
	IT_OK(it_put_str("/proc/sys/vm/drop_caches", "2"));
}

static void many_name(char *buf, size_t len, const char *dir, int i)
{
	snprintf(buf, len, "%s/f%05d", dir, i);
}

/* Create @n files of a few bytes each below @dir; the failures. */
static int many_create(const char *dir, int n, bool with_data)
{
	char rel[64], data[32];
	int fails = 0, fd;

	for (int i = 0; i < n; i++) {
		many_name(rel, sizeof(rel), dir, i);
		if (with_data) {
			snprintf(data, sizeof(data), "file %d\n", i);
			fd = it_put_str(MNT(rel), data);
		} else {
			fd = open(MNT(rel), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
			if (fd >= 0)
				fd = close(fd);
			else
				fd = -errno;
		}
		if (fd < 0 && fails++ == 0)
			IT_TRUE(false, "create %s: %s", rel, it_errname(-fd));
	}
	return fails;
}

/* Read each file back (or stat it, without data); the failures. */
static int many_read(const char *dir, int n, bool with_data)
{
	char rel[64], want[32], got[32];
	struct stat st;
	int fails = 0;

	for (int i = 0; i < n; i++) {
		ssize_t r;

		many_name(rel, sizeof(rel), dir, i);
		if (!with_data) {
			r = stat(MNT(rel), &st) < 0 ? -errno : 0;
		} else {
			snprintf(want, sizeof(want), "file %d\n", i);
			r = it_get(MNT(rel), got, sizeof(got));
			if (r >= 0 && ((size_t)r != strlen(want) ||
				       memcmp(got, want, (size_t)r)))
				r = -EILSEQ;	/* wrong bytes */
		}
		if (r < 0 && fails++ == 0)
			IT_TRUE(false, "read %s: %s", rel, it_errname((int)-r));
	}
	return fails;
}

/* `ls -l` of @dir: every name once, each stat()ed; the failures. */
static int many_list(const char *dir, int n)
{
	struct dirent *e;
	struct stat st;
	int seen = 0, fails = 0;
	DIR *d = opendir(MNT(dir));

	IT_REQUIRE(d != NULL, "opendir %s: %s", dir, it_errname(errno));
	while ((errno = 0, e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		seen++;
		if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 &&
		    fails++ == 0)
			IT_TRUE(false, "stat %s/%s: %s", dir, e->d_name,
				it_errname(errno));
	}
	IT_EQ(errno, 0);	/* readdir ended, not failed */
	closedir(d);
	IT_EQ(seen, n);
	return fails;
}

/*
 * Create, read, list, drop the kernel's inodes, read and list again,
 * with the daemon limited to FD_LIMIT descriptors.
 */
static void many_files(int n, bool with_data)
{
	char rel[64], data[32];

	it_watchdog(MANY_TIMEOUT_S);
	daemon_fd_limit(FD_LIMIT);
	IT_REQUIRE_OK(mkdir(MNT("many"), 0755));
	IT_EQ(many_create("many", n, with_data), 0);
	IT_EQ(many_read("many", n, with_data), 0);
	IT_EQ(many_list("many", n), 0);
	drop_inodes();
	IT_EQ(many_read("many", n, with_data), 0);
	IT_EQ(many_list("many", n), 0);
	many_name(rel, sizeof(rel), "many", n / 2);
	snprintf(data, sizeof(data), "file %d\n", n / 2);
	IT_CONTENT_STR(BACK(rel), with_data ? data : "");
}

/* The daemon's descriptors stay within @max_fds + FDS_SLACK. */
static void expect_fds_bounded(uint64_t max_fds)
{
	struct hmmfs_ioc_stats st = *it_stats();

	IT_TRUE(st.fds_open > 0 && st.fds_open <= max_fds + FDS_SLACK,
		"fds_open %llu, want 1..%llu", (unsigned long long)st.fds_open,
		(unsigned long long)(max_fds + FDS_SLACK));
}

/*
 * The page cache off: its descriptors per cached file are the page
 * cache's own business (cache/), so this counts the inodes' alone.
 */
static void many_files_max_fds(void)
{
	many_files(MANY_FILES, true);
	expect_fds_bounded(256);
}

/*
 * The cache on: files with data have cache state, which holds a backing
 * descriptor only while the file is open or dirty (cache/lifetime.c), and
 * which outlives the kernel's inodes, so the second read comes from the
 * cache; the same bound.
 */
static void many_files_cached_mount(void)
{
	long long reads;

	many_files(MANY_FILES, true);
	expect_fds_bounded(256);
	IT_EQ(it_stats()->files_cached, MANY_FILES);
	drop_inodes();
	reads = (long long)it_stats()->backing_reads;
	IT_EQ(many_read("many", MANY_FILES, true), 0);
	IT_EQ((long long)it_stats()->backing_reads, reads);
	expect_fds_bounded(256);
}

/*
 * The default max_fds (1024) is more than the lowered limit allows: the
 * descriptor cache must give back what the limit takes (fdc_shrink).
 */
static void many_files_default_max_fds(void)
{
	many_files(5000, true);
	IT_TRUE(it_stats()->fds_open <= FD_LIMIT, "fds_open %llu over the limit",
		(unsigned long long)it_stats()->fds_open);
}

/* Look up 4 * max_fds names, so that every cached descriptor is recycled. */
static void recycle_descriptors(void)
{
	IT_REQUIRE_OK(mkdir(MNT("churn"), 0755));
	IT_REQUIRE_EQ(many_create("churn", 64, false), 0);
	IT_REQUIRE_EQ(many_read("churn", 64, false), 0);
	drop_inodes();	/* the next stats must look the names up again */
	IT_REQUIRE_EQ(many_read("churn", 64, false), 0);
}

/*
 * An O_PATH descriptor of the mount holds the kernel's inode without
 * opening it (no OPEN request, so no pin) and with attr_timeout=0 every
 * fstat asks the daemon: after recycling, its getattr must reopen the
 * inode's descriptor by handle, exactly once, and see the same object.
 */
static void recycled_descriptor_reopens_by_handle(void)
{
	struct stat before, after;
	uint64_t reopens;
	int fd;

	IT_REQUIRE_OK(it_put_str(MNT("kept"), "kept"));
	fd = IT_REQUIRE_OK(open(MNT("kept"), O_PATH | O_CLOEXEC));
	IT_REQUIRE_OK(fstat(fd, &before));
	recycle_descriptors();
	reopens = it_stats()->fd_reopens;
	IT_OK(fstat(fd, &after));
	IT_EQ(it_stats()->fd_reopens, reopens + 1);
	IT_EQ(after.st_ino, before.st_ino);
	IT_EQ(after.st_size, 4);
	IT_OK(fstat(fd, &after));	/* cached again: no second reopen */
	IT_EQ(it_stats()->fd_reopens, reopens + 1);
	close(fd);
}

/*
 * The kernel still holds an inode whose object was removed behind the
 * mount, and whose descriptor was recycled: BACKING may give its inode
 * number to a new file, which must be a new inode for the kernel, with
 * none of the old one's cached pages (same size and mtime, on purpose).
 */
static void reused_number_is_a_new_inode(void)
{
	struct stat old, seen;
	char name[32];
	int held;

	IT_REQUIRE_OK(it_put_str(BACK("victim"), "OLD DATA"));
	IT_CONTENT_STR(MNT("victim"), "OLD DATA");	/* cached */
	held = IT_REQUIRE_OK(open(MNT("victim"), O_PATH | O_CLOEXEC));
	IT_REQUIRE_OK(stat(BACK("victim"), &old));
	recycle_descriptors();
	IT_REQUIRE_OK(unlink(BACK("victim")));
	if (it_backing_reuse(&old, "NEW DATA", name)) {
		IT_CONTENT_STR(MNT(name), "NEW DATA");
		IT_OK(stat(MNT(name), &seen));
		IT_EQ(seen.st_ino, old.st_ino);	/* BACKING's number, as always */
	}
	close(held);
}

/* An open file whose name is gone keeps answering (fdcache: pinned). */
static void unlinked_open_file_survives_recycling(void)
{
	struct stat st;
	int fd = IT_REQUIRE_OK(open(MNT("f"), O_CREAT | O_RDWR, 0644));

	IT_OK(write(fd, "abc", 3));
	IT_OK(unlink(MNT("f")));
	recycle_descriptors();
	IT_OK(fstat(fd, &st));
	IT_EQ(st.st_nlink, 0);
	IT_EQ(st.st_size, 3);
	IT_OK(fchmod(fd, 0600));
	IT_OK(fstat(fd, &st));
	IT_EQ_OCT(st.st_mode & 07777, 0600);
	IT_OK(close(fd));
}

/* A child sits in a directory removed under it; it can still stat ".". */
static int stat_dot_in(void *arg, void *out)
{
	struct stat *st = out;
	int go = *(int *)arg;
	char c;

	if (chdir(MNT("gone")) < 0)
		return 1;
	if (read(go, &c, 1) != 1)	/* wait until it is removed */
		return 2;
	if (stat(".", st) < 0)
		return 10 + (errno & 0x7f);
	return 0;
}

static void removed_cwd_survives_recycling(void)
{
	struct stat st;
	int p[2], ret;
	pid_t pid;

	IT_REQUIRE_OK(mkdir(MNT("gone"), 0755));
	IT_REQUIRE_OK(pipe(p));
	pid = fork();
	IT_REQUIRE(pid >= 0, "fork: %s", it_errname(errno));
	if (pid == 0) {
		close(p[1]);
		ret = stat_dot_in(&p[0], &st);
		_exit(ret ? ret : st.st_nlink == 0 ? 0 : 3);
	}
	close(p[0]);
	usleep(100 * 1000);	/* let it chdir: its own check says if not */
	IT_OK(rmdir(MNT("gone")));
	recycle_descriptors();
	IT_OK(write(p[1], "g", 1));
	close(p[1]);
	IT_REQUIRE_EQ(it_wait_pid(pid, 10000, &ret), 0);
	IT_TRUE(WIFEXITED(ret) && WEXITSTATUS(ret) == 0,
		"child: wait status 0x%x (1: chdir, 3: nlink not 0, 10+: "
		"stat errno %d)", (unsigned int)ret,
		WIFEXITED(ret) ? WEXITSTATUS(ret) - 10 : -1);
}

static const struct it_test tests[] = {
	{ "readdir_1000", readdir_1000, 0, NULL },
	{ "readdir_seek_and_rewind", readdir_seek_and_rewind, 0, NULL },
	{ "readdir_empty", readdir_empty, 0, NULL },
	{ "readdir_types", readdir_types, 0, NULL },
	{ "readdirplus_stat_all", readdirplus_stat_all, 0, NULL },
	{ "fsyncdir", fsyncdir, 0, NULL },
	{ "statfs_matches_backing", statfs_matches_backing, 0, NULL },
	{ "many_files_max_fds", many_files_max_fds, 0, "host_cache=0,max_fds=256" },
	{ "many_files_cached_mount", many_files_cached_mount, 0,
	  "max_fds=256" },
	{ "many_files_default_max_fds", many_files_default_max_fds, 0,
	  "host_cache=0" },
	{ "recycled_descriptor_reopens_by_handle",
	  recycled_descriptor_reopens_by_handle, 0, "max_fds=16,attr_timeout=0" },
	{ "reused_number_is_a_new_inode", reused_number_is_a_new_inode, 0,
	  "max_fds=16" },
	{ "unlinked_open_file_survives_recycling",
	  unlinked_open_file_survives_recycling, 0, "max_fds=16" },
	{ "removed_cwd_survives_recycling", removed_cwd_survives_recycling, 0,
	  "max_fds=16" },
	{ NULL, NULL, 0, NULL },
};

const struct it_suite it_suite_dir = { "dir", NULL, 0, tests };
