/* SPDX-License-Identifier: MIT */
/*
 * tests/integration/test_access.c — permissions and access(2).
 *
 * Checks for an unprivileged user run in a forked child that drops to
 * uid/gid 65534 (nobody/nogroup) and reports errno values back through a
 * pipe.  Other users can reach a FUSE mount only with allow_other (which
 * implies default_permissions here), so those tests mount with it: a 0600
 * root file gives EACCES, a 0644 one is readable but not writable, and a
 * file the user creates belongs to the user in BACKING.  Without
 * allow_other every access by another user is EACCES.  Root's access(2)
 * on a mount without default_permissions is answered by the daemon's
 * access operation: F_OK on a missing name ENOENT, X_OK on a 0644 file
 * EACCES, X_OK on 0755 and R_OK|W_OK on 0000 succeed.
 */
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/integration/harness.h"

#define NOBODY 65534

/* errno of each check, 0 for success; filled in by the child. */
struct user_result {
	int access_r;
	int access_w;
	int open_r;
	int open_w;
	int stat_err;
	char data[32];
};

static int err_of(int ret)
{
	return ret < 0 ? errno : 0;
}

static int try_open(const char *path, int flags, char *data, size_t cap)
{
	int fd = open(path, flags);
	ssize_t n;

	if (fd < 0)
		return errno;
	if (data) {
		n = read(fd, data, cap - 1);
		data[n > 0 ? n : 0] = '\0';
	}
	close(fd);
	return 0;
}

static int probe_as_user(void *arg, void *out)
{
	const char *path = arg;
	struct user_result *r = out;
	struct stat st;

	memset(r, 0, sizeof(*r));
	r->access_r = err_of(access(path, R_OK));
	r->access_w = err_of(access(path, W_OK));
	r->open_r = try_open(path, O_RDONLY, r->data, sizeof(r->data));
	r->open_w = try_open(path, O_WRONLY, NULL, 0);
	r->stat_err = err_of(stat(path, &st));
	return 0;
}

static int probe(const char *path, struct user_result *r)
{
	return it_child(probe_as_user, (void *)path, r, sizeof(*r), NOBODY, NOBODY);
}

static void make_root_file(const char *rel, mode_t mode)
{
	IT_REQUIRE_OK(it_put_str(MNT(rel), "public"));
	IT_REQUIRE_OK(chmod(MNT(rel), mode));
}

static void user_denied_0600(void)
{
	struct user_result r;

	make_root_file("f", 0600);
	IT_REQUIRE_EQ(probe(MNT("f"), &r), 0);
	IT_STR_EQ(it_errname(r.access_r), "EACCES");
	IT_STR_EQ(it_errname(r.open_r), "EACCES");
	IT_STR_EQ(it_errname(r.open_w), "EACCES");
	IT_STR_EQ(it_errname(r.stat_err), "0");
}

static void user_reads_0644(void)
{
	struct user_result r;

	make_root_file("f", 0644);
	IT_REQUIRE_EQ(probe(MNT("f"), &r), 0);
	IT_STR_EQ(it_errname(r.access_r), "0");
	IT_STR_EQ(it_errname(r.open_r), "0");
	IT_STR_EQ(r.data, "public");
	IT_STR_EQ(it_errname(r.access_w), "EACCES");
	IT_STR_EQ(it_errname(r.open_w), "EACCES");
}

static void user_without_allow_other_denied(void)
{
	struct user_result r;

	make_root_file("f", 0644);
	IT_REQUIRE_EQ(probe(MNT("f"), &r), 0);
	IT_STR_EQ(it_errname(r.stat_err), "EACCES");
	IT_STR_EQ(it_errname(r.open_r), "EACCES");
}

static int create_as_user(void *arg, void *out)
{
	int fd = open((const char *)arg, O_CREAT | O_WRONLY, 0640);

	(void)out;
	if (fd < 0)
		return errno;
	close(fd);
	return 0;
}

static void user_creates_own_file(void)
{
	struct stat st;
	int ret;

	IT_REQUIRE_OK(mkdir(MNT("pub"), 0777));
	ret = it_child(create_as_user, (void *)MNT("pub/mine"), NULL, 0, NOBODY,
		       NOBODY);
	IT_REQUIRE(ret == 0, "create as uid %d: %s", NOBODY,
		   ret < 0 ? "child failed" : it_errname(ret));
	IT_OK(stat(BACK("pub/mine"), &st));
	IT_EQ(st.st_uid, NOBODY);
	IT_EQ(st.st_gid, NOBODY);
	IT_EQ_OCT(st.st_mode, S_IFREG | 0640);
	IT_OK(stat(MNT("pub/mine"), &st));
	IT_EQ(st.st_uid, NOBODY);
}

static void root_access_f_ok(void)
{
	IT_REQUIRE_OK(it_put_str(MNT("f"), "x"));
	IT_OK(access(MNT("f"), F_OK));
	IT_ERRNO(access(MNT("missing"), F_OK), ENOENT);
}

static void root_access_x_ok(void)
{
	make_root_file("plain", 0644);
	make_root_file("exec", 0755);
	IT_ERRNO(access(MNT("plain"), X_OK), EACCES);
	IT_OK(access(MNT("exec"), X_OK));
}

static void root_access_rw_mode0(void)
{
	make_root_file("f", 0);
	IT_OK(access(MNT("f"), R_OK | W_OK));
	IT_OK(access(MNT(""), R_OK | W_OK | X_OK));
}

static const struct it_test tests[] = {
	{ "user_denied_0600", user_denied_0600, 0, "allow_other" },
	{ "user_reads_0644", user_reads_0644, 0, "allow_other" },
	{ "user_creates_own_file", user_creates_own_file, 0, "allow_other" },
	{ "user_without_allow_other_denied", user_without_allow_other_denied, 0,
	  NULL },
	{ "root_access_f_ok", root_access_f_ok, 0, NULL },
	{ "root_access_x_ok", root_access_x_ok, 0, NULL },
	{ "root_access_rw_mode0", root_access_rw_mode0, 0, NULL },
	{ NULL, NULL, 0, NULL },
};

const struct it_suite it_suite_access = { "access", NULL, 0, tests };
