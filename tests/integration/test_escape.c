/* SPDX-License-Identifier: MIT */
/*
 * tests/integration/test_escape.c — nothing outside BACKING is reachable.
 *
 * The tree puts BACKING and MOUNTPOINT under different parents:
 * b/secret ("TOPSECRET") sits next to BACKING, m/secret ("DECOY") next to
 * MOUNTPOINT.  A symlink "esc" -> "../secret" made in BACKING must show
 * through the mount as that symlink, verbatim; opening it through the
 * mount is resolved by the VFS relative to the mount, so it must read
 * DECOY, never TOPSECRET, and writing through it must leave b/secret
 * alone.  ".." at the mount root is MOUNTPOINT's parent (same device and
 * inode as m/), not BACKING's parent.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/integration/harness.h"

static void make_secrets(void)
{
	IT_REQUIRE_OK(it_put_str(it_path(it.outside, "secret"), "TOPSECRET"));
	IT_REQUIRE_OK(it_put_str(it_path(it.mnt_parent, "secret"), "DECOY"));
	IT_REQUIRE_OK(symlink("../secret", BACK("esc")));
}

static void symlink_shown_verbatim(void)
{
	char buf[64];
	struct stat st;
	ssize_t n;

	make_secrets();
	IT_OK(lstat(MNT("esc"), &st));
	IT_TRUE(S_ISLNK(st.st_mode), "esc: mode 0%o, expected a symlink",
		st.st_mode);
	n = readlink(MNT("esc"), buf, sizeof(buf) - 1);
	IT_EQ(n, 9);
	if (n > 0) {
		buf[n] = '\0';
		IT_STR_EQ(buf, "../secret");
	}
}

static void open_does_not_read_secret(void)
{
	make_secrets();
	IT_STR_EQ(it_get_str(MNT("esc")), "DECOY");
}

static void open_nofollow_eloop(void)
{
	make_secrets();
	IT_ERRNO(open(MNT("esc"), O_RDONLY | O_NOFOLLOW), ELOOP);
}

static void write_leaves_secret_alone(void)
{
	int fd;

	make_secrets();
	fd = (int)IT_OK(open(MNT("esc"), O_WRONLY | O_TRUNC));
	if (fd >= 0) {
		IT_EQ(write(fd, "OVERWRITTEN", 11), 11);
		IT_OK(close(fd));
	}
	IT_STR_EQ(it_get_str(it_path(it.outside, "secret")), "TOPSECRET");
}

static void expect_same_inode(const char *a, const char *b)
{
	struct stat sa, sb;

	IT_REQUIRE_OK(stat(a, &sa));
	IT_REQUIRE_OK(stat(b, &sb));
	IT_TRUE(sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino,
		"%s is dev %lu ino %lu, %s is dev %lu ino %lu", a,
		(unsigned long)sa.st_dev, (unsigned long)sa.st_ino, b,
		(unsigned long)sb.st_dev, (unsigned long)sb.st_ino);
}

static void dotdot_at_mount_root(void)
{
	make_secrets();
	expect_same_inode(MNT(".."), it.mnt_parent);
	IT_STR_EQ(it_get_str(MNT("../secret")), "DECOY");
}

static void dotdot_listing_is_mount_parent(void)
{
	bool saw_mnt = false, saw_backing = false;
	struct dirent *e;
	DIR *d = opendir(MNT(".."));

	IT_REQUIRE(d != NULL, "opendir: %s", it_errname(errno));
	while ((e = readdir(d))) {
		saw_mnt |= strcmp(e->d_name, "mnt") == 0;
		saw_backing |= strcmp(e->d_name, "backing") == 0;
	}
	closedir(d);
	IT_TRUE(saw_mnt && !saw_backing,
		"listing of mnt/.. shows mnt: %d, backing: %d", saw_mnt, saw_backing);
}

static void dotdot_from_root_fd(void)
{
	struct stat st, parent;
	int root = IT_REQUIRE_OK(open(MNT(""), O_RDONLY | O_DIRECTORY));

	IT_OK(fstatat(root, "..", &st, 0));
	IT_OK(stat(it.mnt_parent, &parent));
	IT_TRUE(st.st_ino == parent.st_ino && st.st_dev == parent.st_dev,
		"openat(mount root, \"..\") is not MOUNTPOINT's parent");
	IT_OK(close(root));
}

static void dotdot_in_subdir(void)
{
	IT_REQUIRE_OK(mkdir(MNT("d"), 0755));
	IT_REQUIRE_OK(mkdir(MNT("d/e"), 0755));
	expect_same_inode(MNT("d/e/../.."), MNT(""));
	expect_same_inode(MNT("d/."), MNT("d"));
}

static void symlink_to_dir_outside(void)
{
	make_secrets();
	IT_REQUIRE_OK(symlink("..", BACK("up")));
	IT_STR_EQ(it_get_str(MNT("up/secret")), "DECOY");
}

static const struct it_test tests[] = {
	{ "symlink_shown_verbatim", symlink_shown_verbatim, 0, NULL },
	{ "open_does_not_read_secret", open_does_not_read_secret, 0, NULL },
	{ "open_nofollow_eloop", open_nofollow_eloop, 0, NULL },
	{ "write_leaves_secret_alone", write_leaves_secret_alone, 0, NULL },
	{ "dotdot_at_mount_root", dotdot_at_mount_root, 0, NULL },
	{ "dotdot_listing_is_mount_parent", dotdot_listing_is_mount_parent, 0, NULL },
	{ "dotdot_from_root_fd", dotdot_from_root_fd, 0, NULL },
	{ "dotdot_in_subdir", dotdot_in_subdir, 0, NULL },
	{ "symlink_to_dir_outside", symlink_to_dir_outside, 0, NULL },
	{ NULL, NULL, 0, NULL },
};

const struct it_suite it_suite_escape = { "escape", NULL, 0, tests };
