/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/test_fs_guard.c — fs/guard.c: names that could leave a
 * directory, the mount-point test on mountinfo text (with escapes), and the
 * /dev/fuse check on things that are not the FUSE device.
 */
#include <errno.h>
#include <limits.h>
#include <string.h>

#include "fs/guard.h"
#include "tests/unit/unit.h"

static void test_names(void)
{
	char longname[NAME_MAX + 2];

	CU_ASSERT_EQUAL(guard_name("file"), 0);
	CU_ASSERT_EQUAL(guard_name(".hidden"), 0);
	CU_ASSERT_EQUAL(guard_name(".."), 0);	/* lookup maps it */
	CU_ASSERT_EQUAL(guard_name(""), -EINVAL);
	CU_ASSERT_EQUAL(guard_name("a/b"), -EINVAL);
	CU_ASSERT_EQUAL(guard_name("../etc"), -EINVAL);
	CU_ASSERT_EQUAL(guard_name("/"), -EINVAL);
	memset(longname, 'x', sizeof(longname) - 1);
	longname[NAME_MAX + 1] = '\0';
	CU_ASSERT_EQUAL(guard_name(longname), -ENAMETOOLONG);
	longname[NAME_MAX] = '\0';
	CU_ASSERT_EQUAL(guard_name(longname), 0);
}

static void test_dots(void)
{
	CU_ASSERT_TRUE(guard_is_dot("."));
	CU_ASSERT_TRUE(guard_is_dot(".."));
	CU_ASSERT_FALSE(guard_is_dot("..."));
	CU_ASSERT_FALSE(guard_is_dot(".a"));
	CU_ASSERT_FALSE(guard_is_dot(""));
}

static const char mountinfo[] =
	"22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/vda rw\n"
	"40 22 0:45 / /mnt/with\\040space rw - fuse.hmmfs /b rw\n"
	"41 22 0:46 / /mnt/plain rw - tmpfs tmpfs rw\n";

static void test_mountinfo(void)
{
	CU_ASSERT_EQUAL(guard_mountinfo_has(mountinfo, "/"), 1);
	CU_ASSERT_EQUAL(guard_mountinfo_has(mountinfo, "/mnt/plain"), 1);
	CU_ASSERT_EQUAL(guard_mountinfo_has(mountinfo, "/mnt/with space"), 1);
	CU_ASSERT_EQUAL(guard_mountinfo_has(mountinfo, "/mnt/with\\040space"), 0);
	CU_ASSERT_EQUAL(guard_mountinfo_has(mountinfo, "/mnt"), 0);
	CU_ASSERT_EQUAL(guard_mountinfo_has(mountinfo, "/mnt/plai"), 0);
	CU_ASSERT_EQUAL(guard_mountinfo_has("garbage\n\n", "/"), 0);
	CU_ASSERT_EQUAL(guard_is_mountpoint("/proc"), 1);
}

static void test_fuse_device(void)
{
	char msg[256];

	CU_ASSERT_EQUAL(guard_fuse_device("/dev/null", msg, sizeof(msg)), -ENODEV);
	CU_ASSERT_PTR_NOT_NULL(strstr(msg, "not the FUSE device"));
	CU_ASSERT_EQUAL(guard_fuse_device("/nonexistent/fuse", msg, sizeof(msg)),
			-ENOENT);
	CU_ASSERT_PTR_NOT_NULL(strstr(msg, "/nonexistent/fuse"));
}

int register_fs_guard(void)
{
	static const CU_TestInfo tests[] = {
		{ "single-component names", test_names },
		{ "dot names", test_dots },
		{ "mount points from mountinfo", test_mountinfo },
		{ "/dev/fuse check", test_fuse_device },
		CU_TEST_INFO_NULL,
	};

	return unit_add_suite("fs_guard", tests);
}
