/* SPDX-License-Identifier: MIT */
/*
 * tests/integration/test_xattr.c — extended attributes (user.*).
 *
 * setxattr/getxattr/listxattr/removexattr through the mount, each checked
 * through the mount and in BACKING; XATTR_CREATE on an existing name gives
 * EEXIST, XATTR_REPLACE on a missing one ENODATA, a missing name ENODATA,
 * a too-small buffer ERANGE, and a zero size returns the needed length.
 * trusted.* names are listed to root only, the size query to match.
 */
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "tests/integration/harness.h"

static void make_file(void)
{
	IT_REQUIRE_OK(it_put_str(MNT("f"), "x"));
}

static void expect_value(const char *path, const char *name, const char *value)
{
	char buf[256];
	ssize_t n = getxattr(path, name, buf, sizeof(buf));

	IT_TRUE(n == (ssize_t)strlen(value),
		"getxattr(%s, %s): %zd (%s), expected %zu bytes", path, name, n,
		n < 0 ? it_errname(errno) : "-", strlen(value));
	if (n == (ssize_t)strlen(value))
		IT_MEM_EQ(buf, value, (size_t)n);
}

static void expect_value_both(const char *rel, const char *name,
			      const char *value)
{
	expect_value(MNT(rel), name, value);
	expect_value(BACK(rel), name, value);
}

static void set_and_get(void)
{
	make_file();
	IT_OK(setxattr(MNT("f"), "user.k", "value", 5, 0));
	expect_value_both("f", "user.k", "value");
	IT_OK(setxattr(MNT("f"), "user.k", "v2", 2, 0));
	expect_value_both("f", "user.k", "v2");
}

static void get_set_in_backing(void)
{
	make_file();
	IT_REQUIRE_OK(setxattr(BACK("f"), "user.b", "from backing", 12, 0));
	expect_value(MNT("f"), "user.b", "from backing");
}

static void empty_value(void)
{
	char buf[8];

	make_file();
	IT_OK(setxattr(MNT("f"), "user.empty", "", 0, 0));
	IT_EQ(getxattr(MNT("f"), "user.empty", buf, sizeof(buf)), 0);
	IT_EQ(getxattr(BACK("f"), "user.empty", buf, sizeof(buf)), 0);
}

/* The NUL-separated list @buf of @len bytes holds @name how often? */
static int count_name(const char *buf, ssize_t len, const char *name)
{
	ssize_t off = 0;
	int n = 0;

	while (off < len) {
		n += strcmp(buf + off, name) == 0;
		off += (ssize_t)strlen(buf + off) + 1;
	}
	return n;
}

static void list_names(void)
{
	char m[1024], b[1024];
	ssize_t ml, bl;

	make_file();
	IT_REQUIRE_OK(setxattr(MNT("f"), "user.alpha", "1", 1, 0));
	IT_REQUIRE_OK(setxattr(MNT("f"), "user.beta", "22", 2, 0));
	ml = IT_OK(listxattr(MNT("f"), m, sizeof(m)));
	bl = IT_OK(listxattr(BACK("f"), b, sizeof(b)));
	IT_EQ(ml, bl);
	IT_EQ(count_name(m, ml, "user.alpha"), 1);
	IT_EQ(count_name(m, ml, "user.beta"), 1);
	IT_EQ(count_name(b, bl, "user.alpha"), 1);
	IT_EQ(listxattr(MNT("f"), NULL, 0), bl);
}

/* What a non-root caller's listxattr of a file returns. */
struct user_list {
	ssize_t size;		/* listxattr(path, NULL, 0) */
	ssize_t len;		/* listxattr(path, names, ...) */
	int err;
	char names[1024];
};

static int list_as_user(void *arg, void *out)
{
	struct user_list *r = out;

	memset(r, 0, sizeof(*r));
	r->size = listxattr((const char *)arg, NULL, 0);
	r->len = listxattr((const char *)arg, r->names, sizeof(r->names));
	r->err = r->len < 0 ? errno : 0;
	return 0;
}

/*
 * trusted.* names are listed to root only (ext4 lists them only with
 * CAP_SYS_ADMIN); the size query agrees with the list a caller gets.
 */
static void trusted_hidden_from_users(void)
{
	struct user_list r;
	char m[1024];
	ssize_t ml;

	make_file();
	IT_REQUIRE_OK(chmod(MNT("f"), 0644));
	IT_REQUIRE_OK(setxattr(MNT("f"), "trusted.x", "t", 1, 0));
	IT_REQUIRE_OK(setxattr(MNT("f"), "user.u", "u", 1, 0));
	IT_REQUIRE_EQ(it_child(list_as_user, (void *)MNT("f"), &r, sizeof(r),
			       65534, 65534), 0);
	IT_REQUIRE(r.len >= 0, "listxattr as uid 65534: %s",
		   it_errname(r.err));
	IT_EQ(count_name(r.names, r.len, "trusted.x"), 0);
	IT_EQ(count_name(r.names, r.len, "user.u"), 1);
	IT_EQ(r.size, r.len);
	ml = IT_OK(listxattr(MNT("f"), m, sizeof(m)));
	IT_EQ(count_name(m, ml, "trusted.x"), 1);
	IT_EQ(count_name(m, ml, "user.u"), 1);
	IT_EQ(listxattr(MNT("f"), NULL, 0), ml);
	expect_value_both("f", "trusted.x", "t");
}

static void remove_name(void)
{
	char buf[16];

	make_file();
	IT_REQUIRE_OK(setxattr(MNT("f"), "user.k", "v", 1, 0));
	IT_OK(removexattr(MNT("f"), "user.k"));
	IT_ERRNO(getxattr(MNT("f"), "user.k", buf, sizeof(buf)), ENODATA);
	IT_ERRNO(getxattr(BACK("f"), "user.k", buf, sizeof(buf)), ENODATA);
	IT_ERRNO(removexattr(MNT("f"), "user.k"), ENODATA);
}

static void create_existing_eexist(void)
{
	make_file();
	IT_REQUIRE_OK(setxattr(MNT("f"), "user.k", "orig", 4, 0));
	IT_ERRNO(setxattr(MNT("f"), "user.k", "new", 3, XATTR_CREATE), EEXIST);
	expect_value_both("f", "user.k", "orig");
	IT_OK(setxattr(MNT("f"), "user.other", "c", 1, XATTR_CREATE));
	expect_value_both("f", "user.other", "c");
}

static void replace_missing_enodata(void)
{
	char buf[16];

	make_file();
	IT_ERRNO(setxattr(MNT("f"), "user.k", "new", 3, XATTR_REPLACE), ENODATA);
	IT_ERRNO(getxattr(BACK("f"), "user.k", buf, sizeof(buf)), ENODATA);
	IT_REQUIRE_OK(setxattr(MNT("f"), "user.k", "orig", 4, 0));
	IT_OK(setxattr(MNT("f"), "user.k", "repl", 4, XATTR_REPLACE));
	expect_value_both("f", "user.k", "repl");
}

static void get_missing_enodata(void)
{
	char buf[16];

	make_file();
	IT_ERRNO(getxattr(MNT("f"), "user.missing", buf, sizeof(buf)), ENODATA);
	IT_ERRNO(getxattr(MNT("f"), "user.missing", NULL, 0), ENODATA);
}

static void small_buffer_erange(void)
{
	char buf[2];

	make_file();
	IT_REQUIRE_OK(setxattr(MNT("f"), "user.k", "value", 5, 0));
	IT_ERRNO(getxattr(MNT("f"), "user.k", buf, sizeof(buf)), ERANGE);
	IT_EQ(getxattr(MNT("f"), "user.k", NULL, 0), 5);
	IT_ERRNO(listxattr(MNT("f"), buf, sizeof(buf)), ERANGE);
}

static void on_directory(void)
{
	IT_REQUIRE_OK(mkdir(MNT("d"), 0755));
	IT_OK(setxattr(MNT("d"), "user.dir", "yes", 3, 0));
	expect_value_both("d", "user.dir", "yes");
}

static void large_value(void)
{
	char value[4000], buf[4000];

	make_file();
	it_pattern(value, sizeof(value), 31, 0);
	IT_OK(setxattr(MNT("f"), "user.big", value, sizeof(value), 0));
	IT_EQ(getxattr(MNT("f"), "user.big", buf, sizeof(buf)), sizeof(value));
	IT_MEM_EQ(buf, value, sizeof(value));
	IT_EQ(getxattr(BACK("f"), "user.big", buf, sizeof(buf)), sizeof(value));
	IT_MEM_EQ(buf, value, sizeof(value));
}

/*
 * -o noxattr: every xattr call fails with EOPNOTSUPP (the kernel stops
 * asking the daemon), BACKING's attributes stay as they are, and writes
 * still work (the kernel's capability check before a write no longer
 * reaches the daemon).
 */
static void noxattr_unsupported(void)
{
	char buf[64];

	make_file();
	IT_REQUIRE_OK(setxattr(BACK("f"), "user.b", "kept", 4, 0));
	IT_ERRNO(getxattr(MNT("f"), "user.b", buf, sizeof(buf)), EOPNOTSUPP);
	IT_ERRNO(setxattr(MNT("f"), "user.k", "v", 1, 0), EOPNOTSUPP);
	IT_ERRNO(listxattr(MNT("f"), buf, sizeof(buf)), EOPNOTSUPP);
	IT_ERRNO(removexattr(MNT("f"), "user.b"), EOPNOTSUPP);
	expect_value(BACK("f"), "user.b", "kept");
	IT_REQUIRE_OK(it_put_str(MNT("f"), "written"));
	IT_REQUIRE_OK(it_put_str(MNT("f"), "again"));
	IT_CONTENT_BOTH_STR("f", "again");
}

static const struct it_test tests[] = {
	{ "set_and_get", set_and_get, 0, NULL },
	{ "get_set_in_backing", get_set_in_backing, 0, NULL },
	{ "empty_value", empty_value, 0, NULL },
	{ "list_names", list_names, 0, NULL },
	{ "remove_name", remove_name, 0, NULL },
	{ "create_existing_eexist", create_existing_eexist, 0, NULL },
	{ "replace_missing_enodata", replace_missing_enodata, 0, NULL },
	{ "get_missing_enodata", get_missing_enodata, 0, NULL },
	{ "small_buffer_erange", small_buffer_erange, 0, NULL },
	{ "on_directory", on_directory, 0, NULL },
	{ "large_value", large_value, 0, NULL },
	{ "trusted_hidden_from_users", trusted_hidden_from_users, 0,
	  "allow_other" },
	{ "noxattr_unsupported", noxattr_unsupported, 0, "noxattr" },
	{ NULL, NULL, 0, NULL },
};

const struct it_suite it_suite_xattr = { "xattr", NULL, 0, tests };
