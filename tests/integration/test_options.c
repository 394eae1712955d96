/* SPDX-License-Identifier: MIT */
/*
 * tests/integration/test_options.c — mount options take effect.
 *
 * ro: writes and creates fail with EROFS, reads work, BACKING unchanged.
 * fsname=NAME: the mount table shows NAME as the source (default: BACKING)
 * and fuse.hmmfs as the type.  attr_timeout=0: a size change made in
 * BACKING is seen by the next stat() through the mount.  entry_timeout=0:
 * a rename made in BACKING is seen by the next lookup.  A long list of
 * valid options mounts and works.
 */
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/integration/harness.h"

static void read_only(void)
{
	struct stat st;

	IT_REQUIRE_OK(it_put_str(BACK("f"), "read me"));
	IT_STR_EQ(it_get_str(MNT("f")), "read me");
	IT_ERRNO(open(MNT("f"), O_WRONLY), EROFS);
	IT_ERRNO(open(MNT("new"), O_CREAT | O_WRONLY, 0644), EROFS);
	IT_ERRNO(mkdir(MNT("d"), 0755), EROFS);
	IT_ERRNO(unlink(MNT("f")), EROFS);
	IT_ERRNO(chmod(MNT("f"), 0600), EROFS);
	IT_OK(stat(BACK("f"), &st));
	IT_EQ_OCT(st.st_mode, S_IFREG | 0644);
	IT_GONE_BOTH("new");
	IT_STR_EQ(it_get_str(BACK("f")), "read me");
}

static void fsname_shown(void)
{
	char type[256] = "", source[256] = "";

	IT_REQUIRE_EQ(it_mount_count(it.mnt, type, source, sizeof(type)), 1);
	IT_STR_EQ(source, "hmmfs-it-source");
	IT_STR_EQ(type, "fuse.hmmfs");
}

static void default_fsname_is_backing(void)
{
	char type[256] = "", source[PATH_MAX] = "";

	IT_REQUIRE_EQ(it_mount_count(it.mnt, type, source, sizeof(source)), 1);
	IT_STR_EQ(source, it.backing);
	IT_STR_EQ(type, "fuse.hmmfs");
}

static void attr_timeout_zero(void)
{
	struct stat st;
	int fd;

	IT_REQUIRE_OK(it_put_str(BACK("f"), "1"));
	IT_OK(stat(MNT("f"), &st));
	IT_EQ(st.st_size, 1);
	fd = IT_REQUIRE_OK(open(BACK("f"), O_WRONLY | O_APPEND));
	IT_EQ(write(fd, "2345", 4), 4);
	IT_OK(close(fd));
	IT_OK(stat(MNT("f"), &st));
	IT_EQ(st.st_size, 5);
}

static void entry_timeout_zero(void)
{
	struct stat st;

	IT_REQUIRE_OK(it_put_str(BACK("a"), "x"));
	IT_OK(stat(MNT("a"), &st));
	IT_REQUIRE_OK(rename(BACK("a"), BACK("b")));
	IT_ERRNO(stat(MNT("a"), &st), ENOENT);
	IT_OK(stat(MNT("b"), &st));
}

static void many_options(void)
{
	IT_OK(it_put_str(MNT("f"), "works"));
	IT_STR_EQ(it_get_str(MNT("f")), "works");
	IT_STR_EQ(it_get_str(BACK("f")), "works");
}

static const struct it_test tests[] = {
	{ "read_only", read_only, 0, "ro" },
	{ "fsname_shown", fsname_shown, 0, "fsname=hmmfs-it-source" },
	{ "default_fsname_is_backing", default_fsname_is_backing, 0, NULL },
	/* the kernel keeps a cached file's size under the writeback cache */
	{ "attr_timeout_zero", attr_timeout_zero, 0, "attr_timeout=0,nowriteback_cache" },
	{ "entry_timeout_zero", entry_timeout_zero, 0, "entry_timeout=0" },
	{ "many_options", many_options, 0,
	  "allow_other,default_permissions,fsname=x,attr_timeout=2.5,"
	  "entry_timeout=0.5,direct_io,noatime" },
	{ NULL, NULL, 0, NULL },
};

const struct it_suite it_suite_options = { "options", NULL, 0, tests };
