/* SPDX-License-Identifier: MIT */
/*
 * tests/integration/test_names.c — operations on names.
 *
 * symlink/readlink, mknod (FIFO and character device), mkdir/rmdir,
 * unlink, rename (plain, over a file, RENAME_NOREPLACE, RENAME_EXCHANGE,
 * a directory), hard links, the ENOENT/ENOTDIR/EISDIR/EEXIST/ENOTEMPTY
 * errors, trailing slashes and name length limits (255 works, 256 gives
 * ENAMETOOLONG).  Each change is made through the mount and checked
 * through the mount and in BACKING.
 */
#include <dirent.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "include/hmmfs_ioctl.h"
#include "tests/integration/harness.h"

static void expect_type(const char *path, mode_t type_and_mode)
{
	struct stat st;

	if (IT_OK(lstat(path, &st)) == 0)
		IT_EQ_OCT(st.st_mode, type_and_mode);
}

static const char *readlink_str(const char *path)
{
	static char buf[PATH_MAX];
	ssize_t n = readlink(path, buf, sizeof(buf) - 1);

	if (n < 0)
		snprintf(buf, sizeof(buf), "<%s>", it_errname(errno));
	else
		buf[n] = '\0';
	return buf;
}

static void symlink_create(void)
{
	IT_REQUIRE_OK(symlink("target/x", MNT("l")));
	IT_STR_EQ(readlink_str(MNT("l")), "target/x");
	IT_STR_EQ(readlink_str(BACK("l")), "target/x");
	expect_type(BACK("l"), S_IFLNK | 0777);
	expect_type(MNT("l"), S_IFLNK | 0777);
}

static void readlink_made_in_backing(void)
{
	char buf[4];

	IT_REQUIRE_OK(symlink("/abs/path with space", BACK("l")));
	IT_STR_EQ(readlink_str(MNT("l")), "/abs/path with space");
	/* a short buffer gets a truncated, unterminated result */
	IT_EQ(readlink(MNT("l"), buf, sizeof(buf)), 4);
	IT_MEM_EQ(buf, "/abs", 4);
}

/*
 * The kernel keeps a symlink's target (FUSE_CAP_CACHE_SYMLINKS): a second
 * readlink asks the daemon nothing.  A symlink replaced in BACKING is a
 * new object there, and the mount shows its target once the name is
 * looked up again (entry_timeout).
 */
static void symlink_cached_and_replaced_in_backing(void)
{
	struct hmmfs_ioc_ops before, after;

	IT_REQUIRE_OK(symlink("first/target", MNT("l")));
	IT_STR_EQ(readlink_str(MNT("l")), "first/target");
	it_ops(&before);
	IT_STR_EQ(readlink_str(MNT("l")), "first/target");
	it_ops(&after);
	IT_EQ(after.op[FUSE_READLINK].count, before.op[FUSE_READLINK].count);
	IT_OK(unlink(BACK("l")));
	IT_REQUIRE_OK(symlink("second/and/longer/target", BACK("l")));
	usleep(1200 * 1000);	/* entry_timeout 1 s */
	IT_STR_EQ(readlink_str(MNT("l")), "second/and/longer/target");
}

static void symlink_followed_to_file(void)
{
	IT_REQUIRE_OK(it_put_str(MNT("target"), "through the link"));
	IT_REQUIRE_OK(symlink("target", MNT("l")));
	IT_CONTENT_STR(MNT("l"), "through the link");
}

static void readlink_of_file_einval(void)
{
	char buf[16];

	IT_REQUIRE_OK(it_put_str(MNT("f"), "x"));
	IT_ERRNO(readlink(MNT("f"), buf, sizeof(buf)), EINVAL);
}

static void mknod_fifo(void)
{
	IT_REQUIRE_OK(mknod(MNT("p"), S_IFIFO | 0640, 0));
	expect_type(MNT("p"), S_IFIFO | 0640);
	expect_type(BACK("p"), S_IFIFO | 0640);
}

static void mknod_char_device(void)
{
	struct stat st;

	IT_REQUIRE_OK(mknod(MNT("c"), S_IFCHR | 0600, makedev(1, 3)));
	expect_type(MNT("c"), S_IFCHR | 0600);
	expect_type(BACK("c"), S_IFCHR | 0600);
	IT_OK(lstat(BACK("c"), &st));
	IT_EQ(major(st.st_rdev), 1);
	IT_EQ(minor(st.st_rdev), 3);
	IT_OK(lstat(MNT("c"), &st));
	IT_EQ(major(st.st_rdev), 1);
	IT_EQ(minor(st.st_rdev), 3);
}

static void mkdir_mode(void)
{
	struct stat m, b;

	IT_REQUIRE_OK(mkdir(MNT("d"), 0750));
	expect_type(MNT("d"), S_IFDIR | 0750);
	expect_type(BACK("d"), S_IFDIR | 0750);
	IT_OK(stat(MNT(""), &m));
	IT_OK(stat(BACK(""), &b));
	IT_EQ(m.st_nlink, 3);
	IT_EQ(b.st_nlink, 3);
}

static void mkdir_exists_eexist(void)
{
	IT_REQUIRE_OK(mkdir(MNT("d"), 0755));
	IT_ERRNO(mkdir(MNT("d"), 0755), EEXIST);
	IT_REQUIRE_OK(it_put_str(MNT("f"), "x"));
	IT_ERRNO(mkdir(MNT("f"), 0755), EEXIST);
}

static void rmdir_empty(void)
{
	IT_REQUIRE_OK(mkdir(MNT("d"), 0755));
	IT_OK(rmdir(MNT("d")));
	IT_GONE_BOTH("d");
}

static void rmdir_not_empty(void)
{
	struct stat st;

	IT_REQUIRE_OK(mkdir(MNT("d"), 0755));
	IT_REQUIRE_OK(it_put_str(MNT("d/f"), "x"));
	IT_ERRNO(rmdir(MNT("d")), ENOTEMPTY);
	IT_OK(stat(BACK("d/f"), &st));
	IT_OK(stat(MNT("d/f"), &st));
}

static void rmdir_file_enotdir(void)
{
	IT_REQUIRE_OK(it_put_str(MNT("f"), "x"));
	IT_ERRNO(rmdir(MNT("f")), ENOTDIR);
}

static void unlink_file(void)
{
	IT_REQUIRE_OK(it_put_str(MNT("f"), "x"));
	IT_OK(unlink(MNT("f")));
	IT_GONE_BOTH("f");
	IT_ERRNO(unlink(MNT("f")), ENOENT);
}

static void unlink_dir_eisdir(void)
{
	IT_REQUIRE_OK(mkdir(MNT("d"), 0755));
	IT_ERRNO(unlink(MNT("d")), EISDIR);
	expect_type(BACK("d"), S_IFDIR | 0755);
}

/* An unlinked file stays readable and writable through an open fd. */
static void unlink_open_file(void)
{
	char buf[16] = { 0 };
	int fd;

	IT_REQUIRE_OK(it_put_str(MNT("f"), "before"));
	fd = IT_REQUIRE_OK(open(MNT("f"), O_RDWR));
	IT_OK(unlink(MNT("f")));
	IT_GONE_BOTH("f");
	IT_EQ(pwrite(fd, "after!", 6, 0), 6);
	IT_EQ(pread(fd, buf, sizeof(buf), 0), 6);
	IT_MEM_EQ(buf, "after!", 6);
	IT_OK(close(fd));
}

static void rename_plain(void)
{
	IT_REQUIRE_OK(it_put_str(MNT("a"), "content of a"));
	IT_OK(rename(MNT("a"), MNT("b")));
	IT_GONE_BOTH("a");
	IT_CONTENT_BOTH_STR("b", "content of a");
}

static void rename_over_file(void)
{
	IT_REQUIRE_OK(it_put_str(MNT("a"), "new"));
	IT_REQUIRE_OK(it_put_str(MNT("b"), "old content"));
	IT_OK(rename(MNT("a"), MNT("b")));
	IT_GONE_BOTH("a");
	IT_CONTENT_BOTH_STR("b", "new");
}

static void rename_noreplace_exists(void)
{
	IT_REQUIRE_OK(it_put_str(MNT("a"), "aaa"));
	IT_REQUIRE_OK(it_put_str(MNT("b"), "bbb"));
	IT_ERRNO(renameat2(AT_FDCWD, MNT("a"), AT_FDCWD, MNT("b"), RENAME_NOREPLACE),
		 EEXIST);
	IT_CONTENT_BOTH_STR("a", "aaa");
	IT_CONTENT_BOTH_STR("b", "bbb");
}

static void rename_noreplace_free(void)
{
	IT_REQUIRE_OK(it_put_str(MNT("a"), "aaa"));
	IT_OK(renameat2(AT_FDCWD, MNT("a"), AT_FDCWD, MNT("b"), RENAME_NOREPLACE));
	IT_GONE_BOTH("a");
	IT_CONTENT_BOTH_STR("b", "aaa");
}

static void rename_exchange(void)
{
	IT_REQUIRE_OK(it_put_str(MNT("a"), "first"));
	IT_REQUIRE_OK(mkdir(MNT("b"), 0700));
	IT_REQUIRE_OK(it_put_str(MNT("b/inner"), "second"));
	IT_OK(renameat2(AT_FDCWD, MNT("a"), AT_FDCWD, MNT("b"), RENAME_EXCHANGE));
	IT_CONTENT_BOTH_STR("b", "first");
	IT_CONTENT_BOTH_STR("a/inner", "second");
	expect_type(BACK("a"), S_IFDIR | 0700);
	expect_type(MNT("a"), S_IFDIR | 0700);
}

static void rename_exchange_files(void)
{
	IT_REQUIRE_OK(it_put_str(MNT("a"), "AAAA"));
	IT_REQUIRE_OK(it_put_str(MNT("b"), "BBBBBB"));
	IT_OK(renameat2(AT_FDCWD, MNT("a"), AT_FDCWD, MNT("b"), RENAME_EXCHANGE));
	IT_CONTENT_BOTH_STR("a", "BBBBBB");
	IT_CONTENT_BOTH_STR("b", "AAAA");
}

static void rename_dir_across(void)
{
	IT_REQUIRE_OK(mkdir(MNT("src"), 0755));
	IT_REQUIRE_OK(mkdir(MNT("dst"), 0755));
	IT_REQUIRE_OK(mkdir(MNT("src/d"), 0755));
	IT_REQUIRE_OK(it_put_str(MNT("src/d/f"), "moved"));
	IT_OK(rename(MNT("src/d"), MNT("dst/d2")));
	IT_GONE_BOTH("src/d");
	IT_CONTENT_BOTH_STR("dst/d2/f", "moved");
}

static void rename_dir_over_nonempty(void)
{
	IT_REQUIRE_OK(mkdir(MNT("a"), 0755));
	IT_REQUIRE_OK(mkdir(MNT("b"), 0755));
	IT_REQUIRE_OK(it_put_str(MNT("b/f"), "x"));
	IT_ERRNO(rename(MNT("a"), MNT("b")), ENOTEMPTY);
	IT_CONTENT_BOTH_STR("b/f", "x");
}

static void hard_link(void)
{
	struct stat a, b;

	IT_REQUIRE_OK(it_put_str(MNT("a"), "shared"));
	IT_REQUIRE_OK(link(MNT("a"), MNT("b")));
	IT_OK(stat(MNT("a"), &a));
	IT_OK(stat(MNT("b"), &b));
	IT_EQ(a.st_nlink, 2);
	IT_EQ(b.st_nlink, 2);
	IT_EQ(a.st_ino, b.st_ino);
	IT_OK(stat(BACK("a"), &a));
	IT_OK(stat(BACK("b"), &b));
	IT_EQ(a.st_nlink, 2);
	IT_EQ(a.st_ino, b.st_ino);
	IT_REQUIRE_OK(it_put_str(MNT("b"), "written via b"));
	IT_CONTENT_BOTH_STR("a", "written via b");
}

static void hard_link_then_unlink(void)
{
	struct stat st;

	IT_REQUIRE_OK(it_put_str(MNT("a"), "x"));
	IT_REQUIRE_OK(link(MNT("a"), MNT("b")));
	IT_OK(unlink(MNT("a")));
	IT_OK(stat(MNT("b"), &st));
	IT_EQ(st.st_nlink, 1);
	IT_OK(stat(BACK("b"), &st));
	IT_EQ(st.st_nlink, 1);
}

static void link_exists_eexist(void)
{
	IT_REQUIRE_OK(it_put_str(MNT("a"), "x"));
	IT_REQUIRE_OK(it_put_str(MNT("b"), "y"));
	IT_ERRNO(link(MNT("a"), MNT("b")), EEXIST);
	IT_CONTENT_BOTH_STR("b", "y");
}

static void err_enoent(void)
{
	struct stat st;

	IT_ERRNO(open(MNT("missing"), O_RDONLY), ENOENT);
	IT_ERRNO(stat(MNT("missing"), &st), ENOENT);
	IT_ERRNO(stat(MNT("nodir/x"), &st), ENOENT);
	IT_ERRNO(open(MNT("nodir/x"), O_CREAT | O_WRONLY, 0644), ENOENT);
	IT_ERRNO(rename(MNT("missing"), MNT("other")), ENOENT);
	IT_ERRNO(rmdir(MNT("missing")), ENOENT);
}

static void err_enotdir(void)
{
	struct stat st;

	IT_REQUIRE_OK(it_put_str(MNT("f"), "x"));
	IT_ERRNO(stat(MNT("f/x"), &st), ENOTDIR);
	IT_ERRNO(open(MNT("f/x"), O_CREAT | O_WRONLY, 0644), ENOTDIR);
	IT_ERRNO(open(MNT("f"), O_RDONLY | O_DIRECTORY), ENOTDIR);
	IT_ERRNO(mkdir(MNT("f/d"), 0755), ENOTDIR);
}

static void err_eisdir(void)
{
	IT_REQUIRE_OK(mkdir(MNT("d"), 0755));
	IT_ERRNO(open(MNT("d"), O_WRONLY), EISDIR);
	IT_ERRNO(open(MNT("d"), O_RDWR), EISDIR);
	IT_REQUIRE_OK(it_put_str(MNT("f"), "x"));
	IT_ERRNO(rename(MNT("f"), MNT("d")), EISDIR);
}

static void trailing_slash(void)
{
	struct stat st;

	IT_REQUIRE_OK(it_put_str(MNT("f"), "x"));
	IT_REQUIRE_OK(mkdir(MNT("d"), 0755));
	IT_ERRNO(stat(MNT("f/"), &st), ENOTDIR);
	IT_ERRNO(open(MNT("f/"), O_RDONLY), ENOTDIR);
	IT_OK(stat(MNT("d/"), &st));
	IT_OK(mkdir(MNT("e/"), 0755));
	expect_type(BACK("e"), S_IFDIR | 0755);
	IT_ERRNO(open(MNT("new/"), O_CREAT | O_WRONLY, 0644), EISDIR);
	IT_GONE_BOTH("new");
}

static void make_name(char *buf, size_t len)
{
	memset(buf, 'n', len);
	buf[len] = '\0';
}

static void name_255_works(void)
{
	char name[256];

	make_name(name, 255);
	IT_REQUIRE_OK(it_put_str(MNT(name), "long"));
	IT_CONTENT_BOTH_STR(name, "long");
}

static void name_256_enametoolong(void)
{
	char name[301];
	struct stat st;

	make_name(name, 256);
	IT_ERRNO(open(MNT(name), O_CREAT | O_WRONLY, 0644), ENAMETOOLONG);
	IT_ERRNO(stat(MNT(name), &st), ENAMETOOLONG);
	IT_ERRNO(mkdir(MNT(name), 0755), ENAMETOOLONG);
	IT_ERRNO(symlink("x", MNT(name)), ENAMETOOLONG);
	make_name(name, 300);
	IT_ERRNO(stat(MNT(name), &st), ENAMETOOLONG);
}

static void rename_to_long_name(void)
{
	char name[257];

	make_name(name, 256);
	IT_REQUIRE_OK(it_put_str(MNT("a"), "x"));
	IT_ERRNO(rename(MNT("a"), MNT(name)), ENAMETOOLONG);
	IT_CONTENT_BOTH_STR("a", "x");
}

/* Names are bytes: spaces, newlines, UTF-8 and leading dashes pass as is. */
static void odd_characters(void)
{
	static const char *const names[] = { "a b", "x\ny", "\xc3\xbc-umlaut",
					     "-dash", ".hidden", "tab\there" };
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		IT_OK(it_put_str(MNT(names[i]), names[i]));
		IT_STR_EQ(it_get_str(BACK(names[i])), names[i]);
		IT_STR_EQ(it_get_str(MNT(names[i])), names[i]);
	}
}

/* The highest descriptor number @pid has open, or -1. */
static int daemon_max_fd(pid_t pid)
{
	char path[64];
	struct dirent *de;
	DIR *d;
	int top = -1;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	d = opendir(path);
	if (!d)
		return -1;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.' && atoi(de->d_name) > top)
			top = atoi(de->d_name);
	closedir(d);
	return top;
}

/*
 * Create with O_EXCL until one fails (EMFILE in the daemon); the failed
 * name (left in @name) must not exist in BACKING.  Returns 1 if a create
 * failed, else 0.  Files made
 * stay open (in @fds), so that the daemon keeps their descriptors.
 */
static int create_until_emfile(int round, int *fds, int *n, int cap,
			       char name[32])
{
	for (int i = 0; i < 8; i++) {
		int fd, e;

		snprintf(name, 32, "emfile-%d-%d", round, i);
		fd = open(MNT(name), O_CREAT | O_EXCL | O_WRONLY, 0644);
		if (fd >= 0) {
			if (*n < cap)
				fds[(*n)++] = fd;
			else
				close(fd);
			continue;
		}
		e = errno;
		IT_TRUE(e == EMFILE || e == ENFILE, "create %s: %s", name,
			it_errname(e));
		IT_ERRNO(lstat(BACK(name), &(struct stat){ 0 }), ENOENT);
		return 1;
	}
	return 0;
}

/*
 * A create that fails inside the daemon after the file was made in
 * BACKING (here: out of descriptors for the lookup that follows) removes
 * it again.  The daemon's descriptor limit is lowered to just above what
 * it has open, with a few different margins, so that creates fail at
 * each step in turn; then the limit comes back and the daemon must work,
 * and its log says once that it ran out.
 */
static void create_emfile_leaves_nothing(void)
{
	pid_t pid = it.mount.pid;
	struct rlimit old, low;
	int fds[64], n = 0, failed = 0;
	char names[4][32];

	IT_REQUIRE(pid > 0, "the daemon's pid is not known");
	IT_REQUIRE_OK(prlimit(pid, RLIMIT_NOFILE, NULL, &old));
	for (int slack = 1; slack <= 4; slack++) {
		int top = daemon_max_fd(pid);

		IT_REQUIRE(top >= 0, "cannot read the daemon's descriptors");
		low = old;
		low.rlim_cur = (rlim_t)top + (rlim_t)slack;
		IT_REQUIRE_OK(prlimit(pid, RLIMIT_NOFILE, &low, NULL));
		failed += create_until_emfile(slack, fds, &n, 64, names[failed]);
		IT_REQUIRE_OK(prlimit(pid, RLIMIT_NOFILE, &old, NULL));
	}
	IT_TRUE(failed > 0, "no create failed under a low descriptor limit");
	for (int i = 0; i < failed; i++)
		IT_ERRNO(lstat(MNT(names[i]), &(struct stat){ 0 }), ENOENT);
	while (n > 0)
		IT_OK(close(fds[--n]));
	IT_OK(it_put_str(MNT("after"), "still works"));
	IT_CONTENT_BOTH_STR("after", "still works");
	/* the first failure is logged, once, whatever request met it */
	IT_EQ(it_log_count("failed with EMFILE") + it_log_count("failed with ENFILE"), 1);
	IT_EQ(it_log_count("the first such failure"), 1);
}

static const struct it_test tests[] = {
	{ "symlink_create", symlink_create, 0, NULL },
	{ "readlink_made_in_backing", readlink_made_in_backing, 0, NULL },
	{ "symlink cached, and replaced in BACKING",
	  symlink_cached_and_replaced_in_backing, 0, NULL },
	{ "symlink_followed_to_file", symlink_followed_to_file, 0, NULL },
	{ "readlink_of_file_einval", readlink_of_file_einval, 0, NULL },
	{ "mknod_fifo", mknod_fifo, 0, NULL },
	{ "mknod_char_device", mknod_char_device, 0, NULL },
	{ "mkdir_mode", mkdir_mode, 0, NULL },
	{ "mkdir_exists_eexist", mkdir_exists_eexist, 0, NULL },
	{ "rmdir_empty", rmdir_empty, 0, NULL },
	{ "rmdir_not_empty", rmdir_not_empty, 0, NULL },
	{ "rmdir_file_enotdir", rmdir_file_enotdir, 0, NULL },
	{ "unlink_file", unlink_file, 0, NULL },
	{ "unlink_dir_eisdir", unlink_dir_eisdir, 0, NULL },
	{ "unlink_open_file", unlink_open_file, 0, NULL },
	{ "rename_plain", rename_plain, 0, NULL },
	{ "rename_over_file", rename_over_file, 0, NULL },
	{ "rename_noreplace_exists", rename_noreplace_exists, 0, NULL },
	{ "rename_noreplace_free", rename_noreplace_free, 0, NULL },
	{ "rename_exchange", rename_exchange, 0, NULL },
	{ "rename_exchange_files", rename_exchange_files, 0, NULL },
	{ "rename_dir_across", rename_dir_across, 0, NULL },
	{ "rename_dir_over_nonempty", rename_dir_over_nonempty, 0, NULL },
	{ "hard_link", hard_link, 0, NULL },
	{ "hard_link_then_unlink", hard_link_then_unlink, 0, NULL },
	{ "link_exists_eexist", link_exists_eexist, 0, NULL },
	{ "err_enoent", err_enoent, 0, NULL },
	{ "err_enotdir", err_enotdir, 0, NULL },
	{ "err_eisdir", err_eisdir, 0, NULL },
	{ "trailing_slash", trailing_slash, 0, NULL },
	{ "name_255_works", name_255_works, 0, NULL },
	{ "name_256_enametoolong", name_256_enametoolong, 0, NULL },
	{ "rename_to_long_name", rename_to_long_name, 0, NULL },
	{ "odd_characters", odd_characters, 0, NULL },
	{ "create_emfile_leaves_nothing", create_emfile_leaves_nothing, 0, NULL },
	{ NULL, NULL, 0, NULL },
};

const struct it_suite it_suite_names = { "names", NULL, 0, tests };
