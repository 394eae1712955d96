/* SPDX-License-Identifier: MIT */
/*
 * fs/ops_cred.c — the caller's credentials on the calling thread, for
 * what BACKING must do as the caller rather than as the daemon.
 *
 * Ownership of new objects: the daemon normally runs as root.  When the
 * caller is someone else, mknod/mkdir/symlink/create run with the caller's
 * fsuid, fsgid and supplementary groups on the calling thread only
 * (creds_become/creds_restore), so the backing file system applies its own
 * rules: owner, set-gid directories, clearing S_ISGID.  These are raw
 * syscalls: glibc's setgroups() would change every thread.  Creates also
 * run under the caller's umask, set on the worker thread's own fs_struct
 * (umask_become), so BACKING chooses between a default ACL and the umask;
 * POSIX ACLs are checked by the kernel (acl_init, ops.c).  The same switch
 * serves access(2) as the caller (ops_attr.c) and the setting of an
 * access ACL (ops_xattr.c); in_groups() answers kill_setid() (ops_attr.c).
 *
 * Locking: none.  Everything here belongs to the calling thread: its fs
 * ids and groups (the raw syscalls), its umask (after unshare(CLONE_FS))
 * and thread_fs_private.
 */
#include "fs/ops_int.h"

#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Supplementary groups that fit on the stack; more go to the heap. */
#define GROUPS_ON_STACK 64

/*
 * All the caller's supplementary groups (libfuse reads them from
 * /proc/PID/task/TID/status): into @buf when they fit, else into a list
 * *@list the caller frees when it is not @buf.  (They were once cut to
 * 64 without a word: a member of a 65th group was refused.)
 * Return: how many (0 when the kernel does not say), or -ENOMEM.
 */
static int caller_groups(fuse_req_t req, gid_t *buf, gid_t **list)
{
	int cap = GROUPS_ON_STACK, n = fuse_req_getgroups(req, cap, buf);

	*list = buf;
	while (n > cap) {	/* a larger list, read again: it may change */
		gid_t *big = realloc(*list == buf ? NULL : *list,
				     (size_t)n * sizeof(gid_t));

		if (!big) {
			if (*list != buf)
				free(*list);
			*list = buf;
			return -ENOMEM;
		}
		*list = big;
		cap = n;
		n = fuse_req_getgroups(req, cap, big);
	}
	return n < 0 ? 0 : n;	/* no groups file: the primary gid only */
}

static void groups_free(gid_t *buf, gid_t *list)
{
	if (list != buf)
		free(list);
}

int creds_become(struct hmmfs *fs, fuse_req_t req, struct creds *c)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	gid_t buf[GROUPS_ON_STACK], *groups;
	int n, err = 0;

	c->switched = 0;
	c->umask_set = 0;
	if (fs->uid != 0 || (ctx->uid == fs->uid && ctx->gid == fs->gid))
		return 0;
	n = caller_groups(req, buf, &groups);
	if (n < 0)
		return n;
	if (syscall(SYS_setgroups, n, groups) < 0)
		err = -errno;
	groups_free(buf, groups);
	if (err)
		return err;
	syscall(SYS_setfsgid, ctx->gid);
	syscall(SYS_setfsuid, ctx->uid);
	c->switched = 1;
	return 0;
}

void creds_restore(struct hmmfs *fs, struct creds *c)
{
	if (c->umask_set)
		umask(0);	/* this thread's own; see umask_become */
	if (!c->switched)
		return;
	syscall(SYS_setfsuid, fs->uid);
	syscall(SYS_setfsgid, fs->gid);
	syscall(SYS_setgroups, fs->ngroups, fs->groups);
}

/*
 * The caller's umask for a create, applied by BACKING rather than by us:
 * with a default ACL on the parent BACKING ignores the umask (the ACL
 * decides), without one it masks the mode.  With FUSE_CAP_DONT_MASK the
 * kernel leaves that decision to us and passes the umask in the request.
 * The umask lives in the fs_struct that all threads share, so each worker
 * thread unshares it once (CLONE_FS) before setting its own; if that is
 * refused the mode is masked here, as a kernel without DONT_MASK does.
 * A worker that a worker started shares that one's fs_struct until its
 * own first create, so a create always sets the umask, also to 0.
 */
static __thread int thread_fs_private;

void umask_become(fuse_req_t req, mode_t *mode, struct creds *c)
{
	mode_t mask = fuse_req_ctx(req)->umask & 0777;

	c->umask_set = 0;
	if (!thread_fs_private)
		thread_fs_private = unshare(CLONE_FS) == 0 ? 1 : -1;
	if (thread_fs_private < 0) {
		*mode &= ~mask;
		return;
	}
	umask(mask);
	c->umask_set = 1;
}

int in_groups(fuse_req_t req, gid_t gid)
{
	gid_t buf[GROUPS_ON_STACK], *groups;
	int n = caller_groups(req, buf, &groups), found = 0;

	for (int i = 0; i < n && !found; i++)
		found = groups[i] == gid;
	groups_free(buf, groups);
	return found;
}
