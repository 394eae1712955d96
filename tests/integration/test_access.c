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
 *
 * POSIX ACLs, set through the mount in their binary xattr form (so no acl
 * package is needed), are enforced as in BACKING: a named-user entry
 * denies a 0644 file and grants a 0600 one; a file or directory created
 * with umask 077 below a default ACL gets the mode BACKING gives the same
 * create done directly, and without a default ACL the umask applies.
 * An owner outside the file's group who sets an ACL clears S_ISGID.
 * With noxattr and allow_other the daemon says ACLs are not enforced.
 * They skip, saying so, where BACKING keeps no ACLs.
 */
#include <endian.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/posix_acl.h>
#include <pthread.h>
#include <linux/posix_acl_xattr.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
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

/* allow_root (libfuse's): the kernel lets others in, libfuse turns them away. */
static void user_with_allow_root_denied(void)
{
	struct user_result r;

	make_root_file("f", 0644);
	IT_CONTENT_STR(MNT("f"), "public");	/* root is in */
	IT_REQUIRE_EQ(probe(MNT("f"), &r), 0);
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

/* A caller in more supplementary groups than fit on the daemon's stack. */
#define MANY_GROUPS 70
#define FIRST_GROUP 61000

/* In the child: uid NOBODY in groups FIRST_GROUP.., then create @arg. */
static int create_in_many_groups(void *arg, void *out)
{
	gid_t g[MANY_GROUPS];

	for (int i = 0; i < MANY_GROUPS; i++)
		g[i] = FIRST_GROUP + i;
	if (setgroups(MANY_GROUPS, g) < 0 || setgid(NOBODY) < 0 || setuid(NOBODY) < 0)
		return 254;
	return create_as_user(arg, out);
}

/*
 * A directory only the caller's 70th supplementary group may write: a
 * create there succeeds, as in BACKING.  (The daemon once passed only
 * the first 64 groups on to BACKING: EACCES.)
 */
static void user_in_many_groups_creates(void)
{
	const gid_t last = FIRST_GROUP + MANY_GROUPS - 1;
	struct stat st;
	int ret;

	IT_REQUIRE_OK(mkdir(BACK("grp"), 0770));
	IT_REQUIRE_OK(chown(BACK("grp"), 0, last));
	IT_REQUIRE_OK(chmod(BACK("grp"), 0770));
	ret = it_child(create_in_many_groups, (void *)MNT("grp/f"), NULL, 0,
		       (uid_t)-1, (gid_t)-1);
	IT_REQUIRE(ret == 0, "create as uid %d in %d groups: %s", NOBODY,
		   MANY_GROUPS, ret < 0 ? "child failed" :
		   ret == 254 ? "setgroups" : it_errname(ret));
	IT_OK(stat(BACK("grp/f"), &st));
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

/* ---- POSIX ACLs ------------------------------------------------------ */

#define ACL_XATTR_ACCESS "system.posix_acl_access"
#define ACL_XATTR_DEFAULT "system.posix_acl_default"

struct acl_entry {
	unsigned short tag, perm;
	unsigned int id;	/* for ACL_USER and ACL_GROUP */
};

/* setxattr @name of @path to the ACL @e[0..@n), entries in ACL order. */
static int acl_set(const char *path, const char *name,
		   const struct acl_entry *e, int n)
{
	struct {
		struct posix_acl_xattr_header h;
		struct posix_acl_xattr_entry e[8];
	} x;
	int named;

	x.h.a_version = htole32(POSIX_ACL_XATTR_VERSION);
	for (int i = 0; i < n && i < 8; i++) {
		named = e[i].tag == ACL_USER || e[i].tag == ACL_GROUP;
		x.e[i].e_tag = htole16(e[i].tag);
		x.e[i].e_perm = htole16(e[i].perm);
		x.e[i].e_id = htole32(named ? e[i].id : (unsigned int)ACL_UNDEFINED_ID);
	}
	return setxattr(path, name, &x, sizeof(x.h) + (size_t)n * sizeof(x.e[0]),
			0);
}

/* BACKING keeps POSIX ACLs; if not, say the test is skipped. */
static bool acl_supported(void)
{
	if (getxattr(BACK(""), ACL_XATTR_ACCESS, NULL, 0) >= 0 || errno == ENODATA)
		return true;
	fprintf(stderr, "  (skipped: BACKING keeps no POSIX ACLs: %s)\n",
		it_errname(errno));
	return false;
}

/* u:NOBODY:--- on a 0644 file: NOBODY is denied, as in BACKING. */
static void acl_named_user_denied(void)
{
	static const struct acl_entry acl[] = {
		{ ACL_USER_OBJ, 6, 0 }, { ACL_USER, 0, NOBODY },
		{ ACL_GROUP_OBJ, 4, 0 }, { ACL_MASK, 4, 0 }, { ACL_OTHER, 4, 0 },
	};
	struct user_result r;

	if (!acl_supported())
		return;
	make_root_file("f", 0644);
	IT_REQUIRE_OK(acl_set(MNT("f"), ACL_XATTR_ACCESS, acl, 5));
	IT_REQUIRE_EQ(it_child(probe_as_user, (void *)BACK("f"), &r, sizeof(r),
			       NOBODY, NOBODY), 0);
	IT_STR_EQ(it_errname(r.open_r), "EACCES");	/* BACKING itself */
	IT_REQUIRE_EQ(probe(MNT("f"), &r), 0);
	IT_STR_EQ(it_errname(r.access_r), "EACCES");
	IT_STR_EQ(it_errname(r.open_r), "EACCES");
	IT_STR_EQ(it_errname(r.open_w), "EACCES");
	IT_STR_EQ(it_errname(r.stat_err), "0");
}

/* u:NOBODY:r-- on a 0600 file: NOBODY reads it but cannot write it. */
static void acl_named_user_granted(void)
{
	static const struct acl_entry acl[] = {
		{ ACL_USER_OBJ, 6, 0 }, { ACL_USER, 4, NOBODY },
		{ ACL_GROUP_OBJ, 0, 0 }, { ACL_MASK, 4, 0 }, { ACL_OTHER, 0, 0 },
	};
	struct user_result r;
	struct stat st;

	if (!acl_supported())
		return;
	make_root_file("f", 0600);
	IT_REQUIRE_OK(acl_set(MNT("f"), ACL_XATTR_ACCESS, acl, 5));
	/* BACKING set the group bits to the mask; the mount shows it */
	IT_OK(stat(BACK("f"), &st));
	IT_EQ_OCT(st.st_mode & 07777, 0640);
	IT_OK(stat(MNT("f"), &st));
	IT_EQ_OCT(st.st_mode & 07777, 0640);
	IT_REQUIRE_EQ(probe(MNT("f"), &r), 0);
	IT_STR_EQ(it_errname(r.access_r), "0");
	IT_STR_EQ(it_errname(r.open_r), "0");
	IT_STR_EQ(r.data, "public");
	IT_STR_EQ(it_errname(r.access_w), "EACCES");
	IT_STR_EQ(it_errname(r.open_w), "EACCES");
	/* chmod through the mount sets the mask to ---: the kernel must
	 * not keep using the ACL it cached */
	IT_REQUIRE_OK(chmod(MNT("f"), 0600));
	IT_REQUIRE_EQ(probe(MNT("f"), &r), 0);
	IT_STR_EQ(it_errname(r.open_r), "EACCES");
}

static const struct acl_entry acl_user_r[] = {
	{ ACL_USER_OBJ, 6, 0 }, { ACL_USER, 4, NOBODY },
	{ ACL_GROUP_OBJ, 4, 0 }, { ACL_MASK, 4, 0 }, { ACL_OTHER, 4, 0 },
};

static int set_acl_as_user(void *arg, void *out)
{
	(void)out;
	return acl_set(arg, ACL_XATTR_ACCESS, acl_user_r, 5) < 0 ? errno : 0;
}

/* A set-gid file owned by NOBODY, group root: NOBODY is outside it. */
static void make_sgid_file(const char *path)
{
	IT_REQUIRE_OK(it_put_str(path, "x"));
	IT_REQUIRE_OK(chown(path, NOBODY, 0));
	IT_REQUIRE_OK(chmod(path, 02644));
}

/* The owner sets an access ACL but is not in the file's group: S_ISGID
 * is cleared, through the mount as in BACKING. */
static void acl_set_clears_sgid(void)
{
	struct stat st;
	int ret;

	if (!acl_supported())
		return;
	make_sgid_file(BACK("b"));
	ret = it_child(set_acl_as_user, (void *)BACK("b"), NULL, 0, NOBODY,
		       NOBODY);
	IT_REQUIRE(ret == 0, "setfacl in BACKING: %s", it_errname(ret));
	IT_OK(stat(BACK("b"), &st));
	IT_EQ_OCT(st.st_mode & 07777, 0644);	/* what BACKING does */

	make_sgid_file(MNT("f"));
	ret = it_child(set_acl_as_user, (void *)MNT("f"), NULL, 0, NOBODY,
		       NOBODY);
	IT_REQUIRE(ret == 0, "setfacl through the mount: %s", it_errname(ret));
	IT_OK(stat(BACK("f"), &st));
	IT_EQ_OCT(st.st_mode & 07777, 0644);
	IT_OK(stat(MNT("f"), &st));
	IT_EQ_OCT(st.st_mode & 07777, 0644);
}

/* Modes of a file and a directory created in @dir under umask 077. */
struct made_modes {
	int err;
	mode_t file, dir;
};

static int make_with_umask_077(void *arg, void *out)
{
	const char *dir = arg;
	struct made_modes *m = out;
	char path[PATH_MAX];
	struct stat st;
	int fd;

	memset(m, 0, sizeof(*m));
	umask(077);
	snprintf(path, sizeof(path), "%s/file", dir);
	fd = open(path, O_CREAT | O_EXCL | O_WRONLY, 0666);
	if (fd < 0 || fstat(fd, &st) < 0)
		return m->err = errno, 0;
	m->file = st.st_mode & 07777;
	close(fd);
	snprintf(path, sizeof(path), "%s/dir", dir);
	if (mkdir(path, 0777) < 0 || stat(path, &st) < 0)
		return m->err = errno, 0;
	m->dir = st.st_mode & 07777;
	return 0;
}

/* Create under umask 077 in @rel through the mount and, for comparison,
 * in @rel_b directly in BACKING; the two must agree (and with @file,
 * @dir).  Modes are checked through the mount and in BACKING. */
static void expect_created_modes(const char *rel, const char *rel_b,
				 mode_t file, mode_t dir)
{
	struct made_modes m, b;
	char p[PATH_MAX];
	struct stat st;

	IT_REQUIRE_EQ(it_child(make_with_umask_077, (void *)BACK(rel_b), &b,
			       sizeof(b), -1, -1), 0);
	IT_REQUIRE(b.err == 0, "create in BACKING: %s", it_errname(b.err));
	IT_REQUIRE_EQ(it_child(make_with_umask_077, (void *)MNT(rel), &m,
			       sizeof(m), -1, -1), 0);
	IT_REQUIRE(m.err == 0, "create through the mount: %s",
		   it_errname(m.err));
	IT_EQ_OCT(b.file, file);
	IT_EQ_OCT(b.dir, dir);
	IT_EQ_OCT(m.file, b.file);
	IT_EQ_OCT(m.dir, b.dir);
	snprintf(p, sizeof(p), "%s/file", rel);
	IT_OK(stat(BACK(p), &st));
	IT_EQ_OCT(st.st_mode & 07777, b.file);
	snprintf(p, sizeof(p), "%s/dir", rel);
	IT_OK(stat(BACK(p), &st));
	IT_EQ_OCT(st.st_mode & 07777, b.dir);
}

/* A default ACL decides the mode of what is created below it, not the
 * umask: 0666 & r-- for group and other gives 0644, not 0600. */
static void acl_default_on_create(void)
{
	static const struct acl_entry def[] = {
		{ ACL_USER_OBJ, 7, 0 }, { ACL_GROUP_OBJ, 5, 0 },
		{ ACL_OTHER, 5, 0 },
	};

	if (!acl_supported())
		return;
	IT_REQUIRE_OK(mkdir(MNT("d"), 0755));
	IT_REQUIRE_OK(mkdir(MNT("db"), 0755));
	IT_REQUIRE_OK(acl_set(MNT("d"), ACL_XATTR_DEFAULT, def, 3));
	IT_REQUIRE_OK(acl_set(BACK("db"), ACL_XATTR_DEFAULT, def, 3));
	expect_created_modes("d", "db", 0644, 0755);
}

/* Without a default ACL the umask still applies. */
static void umask_without_default_acl(void)
{
	IT_REQUIRE_OK(mkdir(MNT("d"), 0755));
	IT_REQUIRE_OK(mkdir(MNT("db"), 0755));
	expect_created_modes("d", "db", 0600, 0700);
}

struct umask_job {
	const char *prefix;
	mode_t umask;
};

/* Create 500 files under @job's umask; 0, or 1 if one got a wrong mode. */
static int create_many(void *arg, void *out)
{
	const struct umask_job *job = arg;
	char path[PATH_MAX];
	struct stat st;
	int fd;

	(void)out;
	umask(job->umask);
	for (int i = 0; i < 500; i++) {
		snprintf(path, sizeof(path), "%s%d", job->prefix, i);
		fd = open(path, O_CREAT | O_EXCL | O_WRONLY, 0666);
		if (fd < 0 || fstat(fd, &st) < 0)
			return 2;
		close(fd);
		if ((st.st_mode & 0777) != (0666 & ~job->umask))
			return 1;
	}
	return 0;
}

static void *create_many_thread(void *arg)
{
	return (void *)(intptr_t)it_child(create_many, arg, NULL, 0, -1, -1);
}

/* Callers with different umasks creating at once each get their own:
 * the daemon's workers set the umask per thread, never for all. */
static void umask_per_caller(void)
{
	struct umask_job a = { MNT("da/f"), 0 }, b = { MNT("db/f"), 077 };
	pthread_t t;
	void *ra;
	int rb;

	/* two directories: creates in one are serialised by the kernel */
	IT_REQUIRE_OK(mkdir(MNT("da"), 0755));
	IT_REQUIRE_OK(mkdir(MNT("db"), 0755));
	IT_REQUIRE_OK(pthread_create(&t, NULL, create_many_thread, &a) ? -1 : 0);
	rb = it_child(create_many, &b, NULL, 0, -1, -1);
	pthread_join(t, &ra);
	IT_EQ((int)(intptr_t)ra, 0);
	IT_EQ(rb, 0);
}

/* noxattr leaves the kernel no way to read ACLs: the daemon says so. */
static void acl_noxattr_warns(void)
{
	struct stat st;

	if (!acl_supported())
		return;
	IT_OK(stat(MNT(""), &st));	/* waits for the daemon's init */
	IT_TRUE(it_log_count("BACKING keeps POSIX ACLs, but noxattr is set") == 1,
		"daemon log: %s", it_log_tail(400));
}

static const struct it_test tests[] = {
	{ "user_denied_0600", user_denied_0600, 0, "allow_other" },
	{ "user_reads_0644", user_reads_0644, 0, "allow_other" },
	{ "user_creates_own_file", user_creates_own_file, 0, "allow_other" },
	{ "user in 70 groups creates where the 70th may",
	  user_in_many_groups_creates, 0, "allow_other" },
	{ "user_without_allow_other_denied", user_without_allow_other_denied, 0,
	  NULL },
	{ "user_with_allow_root_denied", user_with_allow_root_denied, 0, "allow_root" },
	{ "acl_named_user_denied", acl_named_user_denied, 0, "allow_other" },
	{ "acl_named_user_granted", acl_named_user_granted, 0, "allow_other" },
	{ "acl_set_clears_sgid", acl_set_clears_sgid, 0, "allow_other" },
	{ "acl_default_on_create", acl_default_on_create, 0, "allow_other" },
	{ "acl_default_on_create_own_mount", acl_default_on_create, 0, NULL },
	{ "umask_without_default_acl", umask_without_default_acl, 0,
	  "allow_other" },
	{ "umask_without_default_acl_own_mount", umask_without_default_acl, 0,
	  NULL },
	{ "umask_per_caller", umask_per_caller, 0, "allow_other" },
	{ "acl_noxattr_warns", acl_noxattr_warns, 0, "allow_other,noxattr" },
	{ "root_access_f_ok", root_access_f_ok, 0, NULL },
	{ "root_access_x_ok", root_access_x_ok, 0, NULL },
	{ "root_access_rw_mode0", root_access_rw_mode0, 0, NULL },
	{ NULL, NULL, 0, NULL },
};

const struct it_suite it_suite_access = { "access", NULL, 0, tests };
