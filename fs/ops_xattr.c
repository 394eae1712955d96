/* SPDX-License-Identifier: MIT */
/*
 * fs/ops_xattr.c — extended attributes: GETXATTR, LISTXATTR, SETXATTR and
 * REMOVEXATTR.
 *
 * xattr calls have no form that works on an O_PATH descriptor, so they go
 * through /proc/self/fd/N, which stops at the object itself, symlinks
 * included (xattr_path_get).  A request with size 0 asks for the size.
 * trusted.* names are listed only to root (uid 0 stands for
 * CAP_SYS_ADMIN).  An access ACL is set with the caller's ids
 * (ops_cred.c), so that BACKING clears S_ISGID where a local file system
 * would; after an ACL is set or removed the kernel's attributes are
 * dropped before the reply (acl_changed).  Whether the kernel enforces
 * ACLs is settled at INIT (acl_init, ops.c).
 *
 * Locking: none; each call holds the inode's descriptor (itab_fd_get) for
 * its duration.
 */
#include "fs/ops_int.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>

/*
 * xattr calls have no form that works on an O_PATH descriptor, so they
 * use /proc/self/fd/N.  That magic link resolves to the object the
 * descriptor holds and stops there, also for a symlink (its own xattrs,
 * not its target's), so the non-l variants are the right ones.
 */
static int xattr_path_get(fuse_req_t req, fuse_ino_t ino, char path[64])
{
	int fd = itab_fd_get(&fs_of(req)->itab, inode_of(req, ino));

	if (fd < 0)
		return fd;
	fd_path(path, fd);
	return 0;
}

static void xattr_path_put(fuse_req_t req, fuse_ino_t ino)
{
	itab_fd_put(&fs_of(req)->itab, inode_of(req, ino));
}

static void reply_xattr_size(fuse_req_t req, size_t size, ssize_t n,
			     const char *buf)
{
	if (n < 0)
		fuse_reply_err(req, errno);
	else if (size == 0)
		fuse_reply_xattr(req, (size_t)n);
	else
		fuse_reply_buf(req, buf, (size_t)n);
}

void hmmfs_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			   size_t size)
{
	char path[64], *buf = NULL;
	ssize_t n;
	int ret = xattr_path_get(req, ino, path);

	if (ret) {
		fuse_reply_err(req, -ret);
		return;
	}
	if (size && !(buf = malloc(size))) {
		xattr_path_put(req, ino);
		fuse_reply_err(req, ENOMEM);
		return;
	}
	n = getxattr(path, name, buf, size);
	ret = errno;
	xattr_path_put(req, ino);
	errno = ret;
	reply_xattr_size(req, size, n, buf);
	free(buf);
}

/*
 * The whole name list of @path in a new buffer (*@list); its length or
 * -1 with errno.  Retried when a name is added between the two calls.
 */
static ssize_t list_all(const char *path, char **list)
{
	ssize_t n, len;

	*list = NULL;
	do {
		free(*list);
		*list = NULL;
		len = listxattr(path, NULL, 0);
		if (len < 0)
			return -1;
		if (!(*list = malloc(len ? (size_t)len : 1))) {
			errno = ENOMEM;
			return -1;
		}
		n = listxattr(path, *list, (size_t)len);
	} while (n < 0 && errno == ERANGE);
	return n;
}

/* Drop the trusted.* names from @list in place; the new length. */
static size_t drop_trusted(char *list, size_t len)
{
	size_t in = 0, out = 0, one;

	while (in < len) {
		one = strnlen(list + in, len - in);
		if (in + one < len)
			one++;	/* and its NUL */
		if (strncmp(list + in, "trusted.", 8) != 0) {
			memmove(list + out, list + in, one);
			out += one;
		}
		in += one;
	}
	return out;
}

/*
 * trusted.* names are listed only to root, as local file systems list
 * them only to callers with CAP_SYS_ADMIN (their values the kernel refuses
 * to others before asking us).  A request carries the caller's uid but not
 * its capabilities, so uid 0 stands for CAP_SYS_ADMIN.  The daemon (root)
 * sees every name in BACKING, so both the size query and the list are
 * worked out from the filtered list.
 */
void hmmfs_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	char path[64], *buf = NULL;
	ssize_t n;
	int ret = xattr_path_get(req, ino, path);

	if (ret) {
		fuse_reply_err(req, -ret);
		return;
	}
	if (fuse_req_ctx(req)->uid == 0) {
		if (size && !(buf = malloc(size))) {
			xattr_path_put(req, ino);
			fuse_reply_err(req, ENOMEM);
			return;
		}
		n = listxattr(path, buf, size);
	} else {
		n = list_all(path, &buf);
		if (n >= 0)
			n = (ssize_t)drop_trusted(buf, (size_t)n);
		if (n >= 0 && size && (size_t)n > size) {
			n = -1;
			errno = ERANGE;
		}
	}
	ret = errno;
	xattr_path_put(req, ino);
	errno = ret;
	reply_xattr_size(req, size, n, buf);
	free(buf);
}

/*
 * An access ACL set or removed changed the mode in BACKING.  Where the
 * kernel enforces ACLs (FUSE_CAP_POSIX_ACL) it drops its attributes
 * itself; where it does not, it would show the old mode until
 * attr_timeout: drop them before the reply.
 */
static void acl_changed(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	if (strncmp(name, "system.posix_acl_", 17) == 0)
		notify_inval_attr_now(fs_of(req), ino);
}

/*
 * An access ACL is set with the caller's ids, so that BACKING clears
 * S_ISGID as it does for an owner outside the file's group: the kernel
 * asks for that with FUSE_SETXATTR_ACL_KILL_SGID, which this libfuse
 * cannot receive.  The kernel (default_permissions) or BACKING (the
 * caller's ids) checks that the caller owns the file.
 */
void hmmfs_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			   const char *value, size_t size, int flags)
{
	struct hmmfs *fs = fs_of(req);
	struct creds c = { 0 };
	char path[64];
	int ret = xattr_path_get(req, ino, path);

	if (ret) {
		reply_status(req, ret);
		return;
	}
	if (strcmp(name, "system.posix_acl_access") == 0)
		ret = creds_become(fs, req, &c);
	if (!ret) {
		ret = setxattr(path, name, value, size, flags) < 0 ? -errno : 0;
		creds_restore(fs, &c);
	}
	xattr_path_put(req, ino);
	if (!ret)
		acl_changed(req, ino, name);
	reply_status(req, ret);
}

void hmmfs_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	char path[64];
	int ret = xattr_path_get(req, ino, path);

	if (!ret) {
		ret = removexattr(path, name) < 0 ? -errno : 0;
		xattr_path_put(req, ino);
	}
	if (!ret)
		acl_changed(req, ino, name);
	reply_status(req, ret);
}
