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
 *
 * File systems mounted inside BACKING show through the mount (one
 * st_dev) with inode numbers that stay unique: two tmpfs mounts, whose
 * first files have the same inode number, give two different st_ino,
 * each stable across a drop of the kernel's caches, and hard links still
 * share theirs.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
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

static void drop_caches(void)
{
	sync();
	IT_OK(it_put_str("/proc/sys/vm/drop_caches", "2"));
}

static void expect_same_ino(const char *a, const char *b)
{
	struct stat sa, sb;

	if (IT_OK(stat(a, &sa)) == 0 && IT_OK(stat(b, &sb)) == 0)
		IT_TRUE(sa.st_ino == sb.st_ino, "%s and %s: ino %llu and %llu",
			a, b, (unsigned long long)sa.st_ino,
			(unsigned long long)sb.st_ino);
}

/* Two tmpfs in BACKING (made before the mount), one file in each. */
static void submounts_keep_inodes_unique(void)
{
	struct stat ba, bb, ma, mb, again;

	IT_REQUIRE_OK(mkdir(BACK("a"), 0755));
	IT_REQUIRE_OK(mkdir(BACK("b"), 0755));
	IT_REQUIRE_OK(mount("tmpfs", BACK("a"), "tmpfs", 0, "size=1m"));
	IT_REQUIRE_OK(mount("tmpfs", BACK("b"), "tmpfs", 0, "size=1m"));
	IT_REQUIRE_OK(it_put_str(BACK("a/f"), "in a"));
	IT_REQUIRE_OK(it_put_str(BACK("b/f"), "in b"));
	IT_REQUIRE_OK(link(BACK("a/f"), BACK("a/f.link")));
	IT_REQUIRE_OK(stat(BACK("a/f"), &ba));
	IT_REQUIRE_OK(stat(BACK("b/f"), &bb));
	printf("  (BACKING: a/f dev %llu ino %llu, b/f dev %llu ino %llu)\n",
	       (unsigned long long)ba.st_dev, (unsigned long long)ba.st_ino,
	       (unsigned long long)bb.st_dev, (unsigned long long)bb.st_ino);
	it_mount_default(NULL, false);

	IT_REQUIRE_OK(stat(MNT("a/f"), &ma));
	IT_REQUIRE_OK(stat(MNT("b/f"), &mb));
	IT_TRUE(ma.st_dev != mb.st_dev || ma.st_ino != mb.st_ino,
		"a/f and b/f both show dev %llu ino %llu",
		(unsigned long long)ma.st_dev, (unsigned long long)ma.st_ino);
	IT_CONTENT_STR(MNT("a/f"), "in a");
	IT_CONTENT_STR(MNT("b/f"), "in b");
	expect_same_ino(MNT("a/f"), MNT("a/f.link"));

	drop_caches();
	IT_OK(stat(MNT("a/f"), &again));
	IT_EQ(again.st_ino, ma.st_ino);
	IT_OK(stat(MNT("b/f"), &again));
	IT_EQ(again.st_ino, mb.st_ino);
	expect_same_ino(MNT("a/f"), MNT("a/f.link"));

	it_test_cleanup();	/* unmount hmmfs before the tmpfs under it */
	umount2(BACK("a"), MNT_DETACH);
	umount2(BACK("b"), MNT_DETACH);
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
	{ "submounts_keep_inodes_unique", submounts_keep_inodes_unique,
	  IT_NO_MOUNT, NULL },
	{ NULL, NULL, 0, NULL },
};

const struct it_suite it_suite_escape = { "escape", NULL, 0, tests };
