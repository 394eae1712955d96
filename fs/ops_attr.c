/* SPDX-License-Identifier: MIT */
/*
 * fs/ops_attr.c — attributes: GETATTR, SETATTR, READLINK, STATFS and
 * ACCESS.
 *
 * Attributes are BACKING's (fstatat on the inode's O_PATH descriptor),
 * with size and times corrected by the page cache while it holds the file
 * (inode_stat).  SETATTR applies mode, owner, size, the kill of setuid and
 * setgid, and times, in that order, stops at the first error and answers
 * with fresh attributes.  Mode, size and times go through the open file
 * when the kernel names one, else through the O_PATH descriptor or its
 * /proc/self/fd/N (chmod, truncate).  With the cache a size goes through
 * it (cache_truncate), so pages and size change together, and times set
 * here are first made safe from a later writeback.  Without it, a SETATTR
 * that moves size or mtime is bracketed by own_change_begin/_end
 * (ops_file.c), so that the next open does not take it for an outside
 * change.  kill_setid() clears setuid/setgid as a local write, truncate or
 * O_TRUNC open would (KILLPRIV_V2, devio.c); the open and write paths
 * (ops_file.c, ops_data.c) call it too.  ACCESS comes only without
 * default_permissions: root gets the execute-bit rule, anyone else
 * BACKING's answer as the caller (ops_cred.c).
 *
 * Locking: set_owner() reads ->cfile under hmm_inode->lock, so that it
 * sees a cfile being attached meanwhile; nothing else here takes a lock of
 * its own (the itab and cache calls lock inside).
 */
#include "fs/ops_int.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "cache/cache.h"
#include "fs/devio.h"
#include "log/log.h"

static int inode_stat(struct hmmfs *fs, struct hmm_inode *inode,
		      struct stat *st)
{
	struct cfile *cf = inode_cfile(inode);
	int fd = itab_fd_get(&fs->itab, inode), ret = 0;

	if (fd < 0)
		return fd;
	if (fstatat(fd, "", st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
		ret = -errno;
	else if (cf)
		cache_file_fix_attr(cf, fd, st);
	itab_fd_put(&fs->itab, inode);
	st->st_ino = inode->fino;
	return ret;
}

static void reply_attr(fuse_req_t req, struct hmm_inode *inode,
		       struct fuse_file_info *fi)
{
	struct stat st;
	int ret;

	ret = inode_stat(fs_of(req), inode, &st);
	(void)fi;	/* the O_PATH fd sees the same object */
	if (ret)
		fuse_reply_err(req, -ret);
	else
		fuse_reply_attr(req, &st, fs_of(req)->opts->attr_timeout);
}

void hmmfs_getattr(fuse_req_t req, fuse_ino_t ino,
			  struct fuse_file_info *fi)
{
	reply_attr(req, inode_of(req, ino), fi);
}

static int set_mode(struct hmmfs *fs, struct hmm_inode *inode,
		    struct fuse_file_info *fi, mode_t mode)
{
	char path[64];
	int fd, ret;

	if (fi && inode->type == S_IFREG)
		return fchmod(fh_fd(fi), mode) < 0 ? -errno : 0;
	if (inode->type == S_IFLNK)
		return -EOPNOTSUPP;	/* Linux symlinks have no mode */
	fd = itab_fd_get(&fs->itab, inode);
	if (fd < 0)
		return fd;
	fd_path(path, fd);
	ret = chmod(path, mode) < 0 ? -errno : 0;
	itab_fd_put(&fs->itab, inode);
	return ret;
}

static int set_owner(struct hmmfs *fs, struct hmm_inode *inode, int valid,
		     struct stat *attr)
{
	uid_t uid = (valid & FUSE_SET_ATTR_UID) ? attr->st_uid : (uid_t)-1;
	gid_t gid = (valid & FUSE_SET_ATTR_GID) ? attr->st_gid : (gid_t)-1;
	struct cfile *cf;
	int fd = itab_fd_get(&fs->itab, inode), ret = 0;

	if (fd < 0)
		return fd;
	if (fchownat(fd, "", uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
		ret = -errno;
	itab_fd_put(&fs->itab, inode);
	if (ret)
		return ret;
	if (uid == (uid_t)-1)
		return 0;
	/* a cfile opening now (inode_cfile_get) may have read the old owner */
	pthread_mutex_lock(&inode->lock);
	cf = inode_cfile(inode);
	pthread_mutex_unlock(&inode->lock);
	if (!cf)
		return 0;
	/* dedupe merges by owner: the old owner's frames must let go */
	ret = cache_file_set_uid(cf, (uint32_t)uid);
	if (ret)
		log_warn("chown: %s: pages stay shared with the "
			"old owner's files", strerror(-ret));
	return 0;
}

static int set_size(struct hmmfs *fs, struct hmm_inode *inode,
		    struct fuse_file_info *fi, off_t size)
{
	struct cfile *cf;
	char path[64];
	int fd, ret;

	if (size > fs->max_size)
		return -EFBIG;	/* as BACKING would, before the cache takes it */
	ret = inode_cfile_hold(fs, inode, true, &cf);
	if (ret)
		return ret;
	if (cf) {
		ret = cache_truncate(cf, size);
		cache_file_unhold(cf);
		return ret;
	}
	if (fi && inode->type == S_IFREG)
		return ftruncate(fh_fd(fi), size) < 0 ? -errno : 0;
	fd = itab_fd_get(&fs->itab, inode);
	if (fd < 0)
		return fd;
	fd_path(path, fd);
	ret = truncate(path, size) < 0 ? -errno : 0;
	itab_fd_put(&fs->itab, inode);
	return ret;
}

static struct timespec time_arg(int valid, int set_bit, int now_bit,
				const struct timespec *t)
{
	if (valid & now_bit)
		return (struct timespec){ .tv_nsec = UTIME_NOW };
	if (valid & set_bit)
		return *t;
	return (struct timespec){ .tv_nsec = UTIME_OMIT };
}

/* utimensat() on an O_PATH descriptor @fd; 0 or -errno. */
static int utimens_path(int fd, const struct timespec tv[2])
{
	char path[64];

	if (utimensat(fd, "", tv, AT_EMPTY_PATH) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOENT)
		return -errno;
	fd_path(path, fd);	/* kernels without AT_EMPTY_PATH here */
	return utimensat(AT_FDCWD, path, tv, 0) < 0 ? -errno : 0;
}

/* utimensat() on @inode, through the open file @fi if there is one. */
static int set_times_to(struct hmmfs *fs, struct hmm_inode *inode,
			struct fuse_file_info *fi, const struct timespec tv[2])
{
	int fd, ret;

	if (fi && inode->type == S_IFREG)
		return futimens(fh_fd(fi), tv) < 0 ? -errno : 0;
	fd = itab_fd_get(&fs->itab, inode);
	if (fd < 0)
		return fd;
	ret = utimens_path(fd, tv);
	itab_fd_put(&fs->itab, inode);
	return ret;
}

static int set_times(struct hmmfs *fs, struct hmm_inode *inode,
		     struct fuse_file_info *fi, int valid, struct stat *attr)
{
	struct timespec tv[2] = {
		time_arg(valid, FUSE_SET_ATTR_ATIME, FUSE_SET_ATTR_ATIME_NOW,
			 &attr->st_atim),
		time_arg(valid, FUSE_SET_ATTR_MTIME, FUSE_SET_ATTR_MTIME_NOW,
			 &attr->st_mtim),
	};
	struct cfile *cf;
	int ret;

	ret = inode_cfile_hold(fs, inode, false, &cf);
	if (ret)
		return ret;
	if (cf) {
		/* later writeback must not move the times set here */
		ret = cache_writeback_range(cf, 0, OFF_MAX, false);
		if (ret) {
			cache_file_unhold(cf);
			return ret;
		}
		cache_file_times_set(cf);
		cache_file_change_begin(cf);
	}
	ret = set_times_to(fs, inode, fi, tv);
	/*
	 * The mtime the kernel sends with a truncate (or an O_TRUNC open's
	 * SETATTR) is its own clock's, since the writeback cache keeps times.
	 * An explicit time needs the owner, a truncate only write access:
	 * where BACKING refuses the time (an NFS BACKING with root_squash),
	 * take "now" rather than fail a truncate already done.
	 */
	if ((ret == -EPERM || ret == -EACCES) && (valid & FUSE_SET_ATTR_SIZE)) {
		if (valid & FUSE_SET_ATTR_MTIME)
			tv[1].tv_nsec = UTIME_NOW;
		if (valid & FUSE_SET_ATTR_ATIME)
			tv[0].tv_nsec = UTIME_NOW;
		ret = set_times_to(fs, inode, fi, tv);
	}
	if (cf) {
		cache_file_change_end(cf, -1);
		cache_file_unhold(cf);
	}
	return ret;
}

/*
 * For a request whose caller lacks CAP_FSETID (KILLPRIV_V2, devio.c):
 * clear setuid, and setgid where group execute is set or the caller is
 * not in the file's group, as a write, truncate or O_TRUNC open does on
 * a local file system (Linux 6.2+).  BACKING sees our writes and
 * truncates as root's, which keep the bits.  @fd: any descriptor of the
 * backing file, O_PATH included.  @ino: the kernel's node whose cached
 * mode must go before the reply (a write or open has no attributes in
 * its reply, and the kernel would show, and exec, the old setuid bit
 * until attr_timeout); 0 when the reply carries fresh attributes.
 * Return: 0 or -errno.
 */
int kill_setid(fuse_req_t req, int fd, fuse_ino_t ino)
{
	mode_t kill = S_ISUID, mode;
	struct stat st;
	char path[64];

	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode) || !(st.st_mode & (S_ISUID | S_ISGID)))
		return 0;	/* the common case: no group lookup */
	if ((st.st_mode & S_IXGRP) || (fuse_req_ctx(req)->gid != st.st_gid &&
				       !in_groups(req, st.st_gid)))
		kill |= S_ISGID;
	if (!(st.st_mode & kill))
		return 0;
	mode = st.st_mode & ~kill & 07777;
	if (fchmod(fd, mode) < 0) {
		if (errno != EBADF)
			return -errno;
		fd_path(path, fd);	/* an O_PATH descriptor */
		if (chmod(path, mode) < 0)
			return -errno;
	}
	if (ino)
		notify_inval_attr_now(fs_of(req), ino);
	return 0;
}

static int inode_kill_setid(fuse_req_t req, struct hmm_inode *inode)
{
	struct hmmfs *fs = fs_of(req);
	int fd = itab_fd_get(&fs->itab, inode), ret;

	if (fd < 0)
		return fd;
	ret = kill_setid(req, fd, 0);	/* the reply has the attributes */
	itab_fd_put(&fs->itab, inode);
	return ret;
}

void hmmfs_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
			  int valid, struct fuse_file_info *fi)
{
	struct hmm_inode *inode = inode_of(req, ino);
	bool moves = inode->type == S_IFREG && !inode_cfile(inode) &&
		     (valid & (FUSE_SET_ATTR_SIZE | FUSE_SET_ATTR_MTIME |
			       FUSE_SET_ATTR_MTIME_NOW));
	int ret = 0;

	if (moves)
		own_change_begin(inode);
	if (valid & FUSE_SET_ATTR_MODE)
		ret = set_mode(fs_of(req), inode, fi, attr->st_mode);
	if (!ret && (valid & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)))
		ret = set_owner(fs_of(req), inode, valid, attr);
	if (!ret && (valid & FUSE_SET_ATTR_SIZE))
		ret = set_size(fs_of(req), inode, fi, attr->st_size);
	/*
	 * The kill bit also comes with every chown, privileged or not; there
	 * BACKING's own chown (ours, as root) already clears what a chown by
	 * root clears, which is what the kernel did before KILLPRIV_V2.
	 */
	if (!ret && (valid & FUSE_SET_ATTR_SIZE) && devio_kill_suidgid())
		ret = inode_kill_setid(req, inode);
	if (!ret && (valid & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME |
			      FUSE_SET_ATTR_ATIME_NOW | FUSE_SET_ATTR_MTIME_NOW)))
		ret = set_times(fs_of(req), inode, fi, valid, attr);
	if (moves)	/* also after a failure: what changed was ours */
		own_change_end(fs_of(req), inode);
	if (ret)
		fuse_reply_err(req, -ret);
	else
		reply_attr(req, inode, fi);
}

void hmmfs_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct hmm_inode *inode = inode_of(req, ino);
	char buf[PATH_MAX + 1];
	int fd = itab_fd_get(&fs_of(req)->itab, inode);
	ssize_t n;

	if (fd < 0) {
		fuse_reply_err(req, -fd);
		return;
	}
	n = readlinkat(fd, "", buf, sizeof(buf));
	if (n < 0)
		n = -errno;
	itab_fd_put(&fs_of(req)->itab, inode);
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else if ((size_t)n >= sizeof(buf))
		fuse_reply_err(req, ENAMETOOLONG);
	else {
		buf[n] = '\0';
		fuse_reply_readlink(req, buf);
	}
}

void hmmfs_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct hmm_inode *inode = inode_of(req, ino);
	struct statvfs sv;
	int fd = itab_fd_get(&fs_of(req)->itab, inode), ret;

	if (fd < 0) {
		fuse_reply_err(req, -fd);
		return;
	}
	ret = fstatvfs(fd, &sv) < 0 ? errno : 0;
	itab_fd_put(&fs_of(req)->itab, inode);
	if (ret)
		fuse_reply_err(req, ret);
	else
		fuse_reply_statfs(req, &sv);
}

/*
 * access(2) as the caller: with the caller's fsuid, fsgid and groups on
 * this thread (creds_become: a root daemon's filesystem capabilities go
 * with its fsuid), BACKING answers, ACLs included.  Return: 0 or -errno.
 */
static int access_as_caller(fuse_req_t req, struct hmm_inode *inode, int mask)
{
	struct hmmfs *fs = fs_of(req);
	struct creds c = { 0 };
	char path[64];
	int fd = itab_fd_get(&fs->itab, inode), ret;

	if (fd < 0)
		return fd;
	fd_path(path, fd);
	ret = creds_become(fs, req, &c);
	if (!ret)
		ret = faccessat(AT_FDCWD, path, mask, AT_EACCESS) < 0 ? -errno : 0;
	creds_restore(fs, &c);
	itab_fd_put(&fs->itab, inode);
	return ret;
}

/*
 * access(2), only asked when the kernel does not check permissions
 * itself (a private mount, no default_permissions): root may execute
 * only what someone may execute; anyone else gets BACKING's answer.
 */
void hmmfs_access(fuse_req_t req, fuse_ino_t ino, int mask)
{
	struct stat st;
	int ret = inode_stat(fs_of(req), inode_of(req, ino), &st);

	if (ret || mask == F_OK) {
		reply_status(req, ret);
		return;
	}
	if (fuse_req_ctx(req)->uid == 0) {
		ret = (mask & X_OK) && !S_ISDIR(st.st_mode) &&
		      !(st.st_mode & 0111) ? -EACCES : 0;
		reply_status(req, ret);
		return;
	}
	reply_status(req, access_as_caller(req, inode_of(req, ino), mask));
}
