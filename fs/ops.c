/* SPDX-License-Identifier: MIT */
/*
 * fs/ops.c — the FUSE low-level operations: hmmfs as a passthrough.
 *
 * Every request names objects by node id (struct hmm_inode, see inode.h)
 * and reaches the backing object through the inode's O_PATH descriptor:
 * *at() calls relative to it, or "/proc/self/fd/N" where a call has no *at
 * form that works on O_PATH descriptors (open, chmod, truncate, xattrs).
 * The descriptor comes referenced from the bounded descriptor cache
 * (itab_fd_get, fdcache.c) and goes back right after the call; an open
 * file or directory holds one reference until its release, so that an
 * open file unlinked meanwhile stays reachable; unlink, rmdir and rename
 * hand the descriptor of an object whose last name they removed to the
 * table (victim_keep).
 * No path strings are stored, so a rename anywhere in BACKING never leaves
 * a stale name behind, and no request can name anything outside BACKING
 * (guard.c).  Each handler ends in exactly one fuse_reply_*() call; helpers
 * return 0 or -errno and only the handlers turn that into a reply.
 *
 * Ownership of new objects: the daemon normally runs as root.  When the
 * caller is someone else, mknod/mkdir/symlink/create run with the caller's
 * fsuid, fsgid and supplementary groups on the calling thread only
 * (creds_become/creds_restore), so the backing file system applies its own
 * rules: owner, set-gid directories, clearing S_ISGID.  These are raw
 * syscalls: glibc's setgroups() would change every thread.  Creates also
 * run under the caller's umask, set on the worker thread's own fs_struct,
 * so BACKING chooses between a default ACL and the umask; POSIX ACLs are
 * checked by the kernel (acl_init).
 *
 * Locks: POSIX record locks and flock() locks are left to the kernel,
 * which keeps them per mount with the right owners and lifetimes.  All
 * backing I/O comes from this one process, so fcntl locks on backing files
 * would merge every owner into one; and a forwarded flock() would outlive
 * close(), since the kernel sends no unlock at close and releases the
 * file (closing our backing descriptor) only later, asynchronously.
 *
 * Concurrency: handlers run on many threads at once.  Shared state is the
 * inode table (its own lock) and each inode's cache_* fields (inode->lock);
 * open file and directory handles are used by one request at a time, as
 * the kernel serialises readdir on a handle and read/write use pread/pwrite.
 */
#include "fs/fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "cache/cache.h"
#include "lib/racy.h"
#include "fs/devio.h"
#include "fs/guard.h"
#include "fs/hmmfs_ioctl.h"
#include "fs/opstat.h"
#include "log/log.h"

#define MAX_IO (1u << 20)	/* max_read / max_write */
#define OFF_MAX ((off_t)INT64_MAX)

static struct hmmfs *fs_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

/*
 * The inode of a node id the kernel holds (every request but the "."
 * lookup of a file handle, lookup_self()): it has one while it holds it,
 * so none is a broken invariant, which stops the daemon with a message
 * rather than work on the wrong object.
 */
static struct hmm_inode *inode_of(fuse_req_t req, fuse_ino_t ino)
{
	struct hmm_inode *inode;

	if (ino == FUSE_ROOT_ID)
		return &fs_of(req)->itab.root;
	inode = itab_by_nodeid(&fs_of(req)->itab, ino);
	if (!inode) {
		log_err("a request on node id %#llx, which no inode has",
			(unsigned long long)ino);
		abort();
	}
	return inode;
}

static fuse_ino_t node_id(struct hmmfs *fs, struct hmm_inode *inode)
{
	return inode == &fs->itab.root ? FUSE_ROOT_ID : inode->nodeid;
}

/* "/proc/self/fd/N": the backing object of an O_PATH descriptor. */
static void fd_path(char buf[64], int fd)
{
	snprintf(buf, 64, "/proc/self/fd/%d", fd);
}

/**
 * struct hmm_file - an open regular file.
 * @fd: the backing file, opened with the caller's flags (less O_DIRECT).
 * @inode: its inode, whose O_PATH descriptor this open holds a reference
 *      to until release (an unlinked file may have no handle that opens).
 * @ra: the cache's readahead state for this open file.
 * @link: on fs->open_files (fs->files_lock), so that files still open when
 *      the daemon ends (no RELEASE will come) are closed and freed.
 * @held: the cache's state of the file, held (cache_file_hold) from the
 *      first I/O through this open file to its release; NULL before.
 * @hash: a device XXH64 in progress over several HMMFS_IOC_DEVREAD
 *      requests on this open file, or NULL; taken by exchange, so two
 *      requests at once cannot share it.
 */
struct hmm_file {
	int fd;
	struct hmm_inode *inode;
	int accmode;	/* O_RDONLY, O_WRONLY or O_RDWR, from open */
	struct cache_ra ra;
	struct hmm_file_link link;
	struct cfile *_Atomic held;
	struct cache_xxh64 *_Atomic hash;
};

static struct hmm_file *file_of(struct fuse_file_info *fi)
{
	return (struct hmm_file *)(uintptr_t)fi->fh;
}

static int fh_fd(struct fuse_file_info *fi)
{
	return file_of(fi)->fd;
}

/* The page cache's state of @inode, or NULL (no cache, or not opened yet). */
static struct cfile *inode_cfile(struct hmm_inode *inode)
{
	return atomic_load_explicit(&inode->cfile, memory_order_acquire);
}

static int inode_cfile_get(struct hmmfs *fs, struct hmm_inode *inode,
			   struct cfile **out);
static int inode_cfile_attach(struct hmmfs *fs, struct hmm_inode *inode,
			      const struct stat *st, bool create,
			      struct cfile **out);
static int inode_cfile_hold(struct hmmfs *fs, struct hmm_inode *inode,
			    bool create, struct cfile **out);

/*
 * An open that failed for want of descriptors: the descriptor cache gives
 * some back (and keeps fewer from now on) and the open is tried again.
 */
static int openat_retry(struct hmmfs *fs, int dirfd, const char *name,
			int flags, mode_t mode)
{
	int fd = openat(dirfd, name, flags, mode);

	if (fd < 0 && (errno == EMFILE || errno == ENFILE) &&
	    fdc_shrink(&fs->itab.fdc))
		fd = openat(dirfd, name, flags, mode);
	return fd < 0 ? -errno : fd;
}

/* cache_file_fix_attr() for an entry reply, through @inode's descriptor. */
static void inode_fix_attr(struct hmmfs *fs, struct hmm_inode *inode,
			   struct cfile *cf, struct stat *st)
{
	int fd = itab_fd_get(&fs->itab, inode);

	cache_file_fix_attr(cf, fd < 0 ? -1 : fd, st);
	if (fd >= 0)
		itab_fd_put(&fs->itab, inode);
}

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

/* ---- credentials of the caller, for creating objects ---------------- */

struct creds {
	int switched;
	int umask_set;		/* this thread's umask is the caller's */
};

static int creds_become(struct hmmfs *fs, fuse_req_t req, struct creds *c)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	gid_t groups[64];
	int n;

	c->switched = 0;
	c->umask_set = 0;
	if (fs->uid != 0 || (ctx->uid == fs->uid && ctx->gid == fs->gid))
		return 0;
	n = fuse_req_getgroups(req, 64, groups);
	if (n < 0)
		n = 0;	/* kernel without the groups file: primary gid only */
	if (n > 64)
		n = 64;
	if (syscall(SYS_setgroups, n, groups) < 0)
		return -errno;
	syscall(SYS_setfsgid, ctx->gid);
	syscall(SYS_setfsuid, ctx->uid);
	c->switched = 1;
	return 0;
}

static void creds_restore(struct hmmfs *fs, struct creds *c)
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

static void umask_become(fuse_req_t req, mode_t *mode, struct creds *c)
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

/* ---- lookup and forget ---------------------------------------------- */

static void entry_init(struct hmmfs *fs, struct fuse_entry_param *e)
{
	memset(e, 0, sizeof(*e));
	e->attr_timeout = fs->opts->attr_timeout;
	e->entry_timeout = fs->opts->entry_timeout;
}

/* Look @name up below @dir, add a kernel lookup on success. */
static int do_lookup(struct hmmfs *fs, struct hmm_inode *dir, const char *name,
		     struct fuse_entry_param *e)
{
	struct hmm_inode *inode;
	struct cfile *cf;
	int fd, dfd, ret;

	entry_init(fs, e);
	ret = guard_name(name);
	if (ret)
		return ret;
	if (dir == &fs->itab.root && strcmp(name, "..") == 0)
		name = ".";	/* nothing above the root is reachable */
	dfd = itab_fd_get(&fs->itab, dir);
	if (dfd < 0)
		return dfd;
	fd = openat_retry(fs, dfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC, 0);
	itab_fd_put(&fs->itab, dir);
	if (fd < 0)
		return fd;
	if (fstatat(fd, "", &e->attr, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0) {
		ret = -errno;
		close(fd);
		return ret;
	}
	ret = itab_lookup_insert(&fs->itab, fd, &e->attr, &inode);
	if (ret)
		return ret;
	e->attr.st_ino = inode->fino;
	ret = inode_cfile_attach(fs, inode, &e->attr, false, &cf);
	if (ret) {
		itab_forget(&fs->itab, inode, 1);
		return ret;
	}
	if (cf)
		inode_fix_attr(fs, inode, cf, &e->attr);
	e->ino = node_id(fs, inode);
	e->generation = inode->gen;
	return 0;
}

/*
 * A persistent node id (inode.h) the table does not hold: a file handle
 * from before a remount.  Its object, if it still exists, is opened from
 * the node id and looked up; it must get that node id again.  Return: 0
 * and the inode (one lookup counted), or -errno.
 */
static int lookup_key(struct hmmfs *fs, uint64_t id, struct hmm_inode **out)
{
	int fd = itab_open_key(&fs->itab, id), ret;
	struct stat st;

	if (fd < 0)
		return fd;
	if (fstat(fd, &st) < 0) {
		ret = -errno;
		close(fd);
		return ret;
	}
	ret = itab_lookup_insert(&fs->itab, fd, &st, out);
	if (!ret && (*out)->nodeid != id) {
		itab_forget(&fs->itab, *out, 1);
		ret = -ESTALE;
	}
	return ret;
}

/*
 * "." in node id @id: the kernel resolving a file handle (open_by_handle_at,
 * an NFS export) whose inode it forgot.  The node id may be one the table
 * no longer has, so it is looked up, not dereferenced; a dormant inode
 * (inode.h) wakes, a persistent one is reopened.  An object that lost its
 * last name is stale, as on a local file system, even if a descriptor
 * still reaches it.  The kernel checks the generation itself.
 * Return: 0 with @e, or -errno (-ESTALE).
 */
static int lookup_self(struct hmmfs *fs, uint64_t id, struct fuse_entry_param *e)
{
	struct hmm_inode *inode = itab_get_by_id(&fs->itab, id);
	struct cfile *cf;
	int fd, ret = 0;

	entry_init(fs, e);
	if (!inode) {
		ret = lookup_key(fs, id, &inode);
		if (ret)
			return ret == -ENOENT ? -ESTALE : ret;
	}
	fd = itab_fd_get(&fs->itab, inode);
	if (fd < 0)
		ret = fd;
	else if (fstatat(fd, "", &e->attr, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
		ret = -errno;
	else if (e->attr.st_nlink == 0)
		ret = -ESTALE;
	if (fd >= 0)
		itab_fd_put(&fs->itab, inode);
	if (!ret)
		ret = inode_cfile_attach(fs, inode, &e->attr, false, &cf);
	if (ret) {
		itab_forget(&fs->itab, inode, 1);
		return ret == -ENOENT ? -ESTALE : ret;
	}
	if (cf)
		inode_fix_attr(fs, inode, cf, &e->attr);
	e->attr.st_ino = inode->fino;
	e->ino = node_id(fs, inode);
	e->generation = inode->gen;
	return 0;
}

static void hmmfs_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct hmmfs *fs = fs_of(req);
	struct fuse_entry_param e;
	int ret = parent != FUSE_ROOT_ID && strcmp(name, ".") == 0 ?
		  lookup_self(fs, parent, &e) :
		  do_lookup(fs, inode_of(req, parent), name, &e);

	if (ret == -ENOENT && fs->opts->negative_timeout > 0) {
		entry_init(fs, &e);
		e.entry_timeout = fs->opts->negative_timeout;
		fuse_reply_entry(req, &e);	/* ino 0: a cacheable miss */
		return;
	}
	if (ret)
		fuse_reply_err(req, -ret);
	else
		fuse_reply_entry(req, &e);
}

/* A forget of a node id no inode has is logged and dropped. */
static void forget_one(struct hmmfs *fs, fuse_ino_t ino, uint64_t nlookup)
{
	struct hmm_inode *inode = ino == FUSE_ROOT_ID ? &fs->itab.root :
				  itab_by_nodeid(&fs->itab, ino);

	if (inode)
		itab_forget(&fs->itab, inode, nlookup);
	else
		log_err("forget of node id %#llx, which no inode has",
			(unsigned long long)ino);
}

static void hmmfs_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	forget_one(fs_of(req), ino, nlookup);
	fuse_reply_none(req);
}

static void hmmfs_forget_multi(fuse_req_t req, size_t count,
			       struct fuse_forget_data *forgets)
{
	for (size_t i = 0; i < count; i++)
		forget_one(fs_of(req), forgets[i].ino, forgets[i].nlookup);
	fuse_reply_none(req);
}

/* ---- attributes ----------------------------------------------------- */

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

static void hmmfs_getattr(fuse_req_t req, fuse_ino_t ino,
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

static int in_groups(fuse_req_t req, gid_t gid);

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
static int kill_setid(fuse_req_t req, int fd, fuse_ino_t ino)
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

static void own_change_begin(struct hmm_inode *inode);
static void own_change_end(struct hmmfs *fs, struct hmm_inode *inode);

static void hmmfs_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
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

static void hmmfs_readlink(fuse_req_t req, fuse_ino_t ino)
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

/* ---- creating and removing names ------------------------------------ */

enum make_kind { MAKE_NODE, MAKE_DIR, MAKE_SYMLINK };

static int make_object(struct hmmfs *fs, fuse_req_t req, struct hmm_inode *dir,
		       const char *name, enum make_kind kind, mode_t mode,
		       dev_t rdev, const char *target)
{
	struct creds c;
	int dfd, ret = guard_name(name);

	if (ret)
		return ret;
	dfd = itab_fd_get(&fs->itab, dir);
	if (dfd < 0)
		return dfd;
	ret = creds_become(fs, req, &c);
	if (ret)
		goto out_put_dir;
	if (kind != MAKE_SYMLINK)
		umask_become(req, &mode, &c);
	if (kind == MAKE_DIR)
		ret = mkdirat(dfd, name, mode);
	else if (kind == MAKE_SYMLINK)
		ret = symlinkat(target, dfd, name);
	else
		ret = mknodat(dfd, name, mode, rdev);
	ret = ret < 0 ? -errno : 0;
	creds_restore(fs, &c);
out_put_dir:
	itab_fd_put(&fs->itab, dir);
	return ret;
}

static void reply_made(fuse_req_t req, struct hmm_inode *dir, const char *name,
		       int ret)
{
	struct fuse_entry_param e;

	if (!ret)
		ret = do_lookup(fs_of(req), dir, name, &e);
	if (ret)
		fuse_reply_err(req, -ret);
	else
		fuse_reply_entry(req, &e);
}

static void hmmfs_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
			mode_t mode, dev_t rdev)
{
	struct hmm_inode *dir = inode_of(req, parent);

	reply_made(req, dir, name, make_object(fs_of(req), req, dir, name,
					       MAKE_NODE, mode, rdev, NULL));
}

static void hmmfs_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
			mode_t mode)
{
	struct hmm_inode *dir = inode_of(req, parent);

	reply_made(req, dir, name, make_object(fs_of(req), req, dir, name,
					       MAKE_DIR, mode, 0, NULL));
}

static void hmmfs_symlink(fuse_req_t req, const char *target,
			  fuse_ino_t parent, const char *name)
{
	struct hmm_inode *dir = inode_of(req, parent);

	reply_made(req, dir, name, make_object(fs_of(req), req, dir, name,
					       MAKE_SYMLINK, 0, 0, target));
}

/* A new name @newname in directory @dfd for O_PATH descriptor @fd. */
static int link_at(int fd, int dfd, const char *newname)
{
	char path[64];
	int ret;

	if (linkat(fd, "", dfd, newname, AT_EMPTY_PATH) == 0)
		return 0;
	ret = -errno;
	if (ret == -ENOENT || ret == -EPERM) {
		/* no CAP_DAC_READ_SEARCH: go through /proc */
		fd_path(path, fd);
		ret = linkat(AT_FDCWD, path, dfd, newname,
			     AT_SYMLINK_FOLLOW) < 0 ? -errno : 0;
	}
	return ret;
}

static void hmmfs_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
		       const char *newname)
{
	struct hmm_inode *inode = inode_of(req, ino);
	struct hmm_inode *dir = inode_of(req, newparent);
	struct itab *t = &fs_of(req)->itab;
	int ret = guard_name(newname), fd, dfd;

	if (ret)
		goto out_reply;
	fd = itab_fd_get(t, inode);
	if (fd < 0) {
		ret = fd;
		goto out_reply;
	}
	dfd = itab_fd_get(t, dir);
	if (dfd < 0) {
		ret = dfd;
		goto out_put_inode;
	}
	ret = link_at(fd, dfd, newname);
	itab_fd_put(t, dir);
out_put_inode:
	itab_fd_put(t, inode);
out_reply:
	reply_made(req, dir, newname, ret);
}

static void reply_status(fuse_req_t req, int ret)
{
	fuse_reply_err(req, ret < 0 ? -ret : 0);
}

/*
 * The object @name in @dfd names, opened before a call that may take its
 * last name away (unlink, rmdir, a rename over it); -1 if there is none.
 * Afterwards victim_keep() keeps it for the inode, if that was the last
 * name: a handle may no longer open an object without names, but the
 * kernel may still ask about it (fdcache.c, "Pinned entries").
 */
static int victim_open(int dfd, const char *name)
{
	return openat(dfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
}

static void victim_keep(struct hmmfs *fs, int fd, int ret)
{
	struct stat st;

	if (fd < 0)
		return;
	if (!ret && fstat(fd, &st) == 0 && st.st_nlink == 0)
		itab_keep(&fs->itab, st.st_dev, st.st_ino, fd);
	else
		close(fd);
}

static int remove_name(struct hmmfs *fs, struct hmm_inode *dir,
		       const char *name, int flags)
{
	int dfd, victim, ret = guard_name(name);

	if (ret)
		return ret;
	dfd = itab_fd_get(&fs->itab, dir);
	if (dfd < 0)
		return dfd;
	victim = victim_open(dfd, name);
	ret = unlinkat(dfd, name, flags) < 0 ? -errno : 0;
	victim_keep(fs, victim, ret);
	itab_fd_put(&fs->itab, dir);
	return ret;
}

static void hmmfs_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	reply_status(req, remove_name(fs_of(req), inode_of(req, parent), name, 0));
}

static void hmmfs_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	reply_status(req, remove_name(fs_of(req), inode_of(req, parent), name,
				      AT_REMOVEDIR));
}

/* renameat2() between two directories' descriptors; 0 or -errno. */
static int rename_at(struct hmmfs *fs, struct hmm_inode *dir, const char *name,
		     struct hmm_inode *newdir, const char *newname,
		     unsigned int flags)
{
	int dfd, newdfd, victim = -1, ret;

	dfd = itab_fd_get(&fs->itab, dir);
	if (dfd < 0)
		return dfd;
	newdfd = itab_fd_get(&fs->itab, newdir);
	if (newdfd < 0) {
		ret = newdfd;
		goto out_put_dir;
	}
	if (!(flags & RENAME_EXCHANGE))	/* an exchange removes no name */
		victim = victim_open(newdfd, newname);
	ret = renameat2(dfd, name, newdfd, newname, flags) < 0 ? -errno : 0;
	victim_keep(fs, victim, ret);
	itab_fd_put(&fs->itab, newdir);
out_put_dir:
	itab_fd_put(&fs->itab, dir);
	return ret;
}

static void hmmfs_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
			 fuse_ino_t newparent, const char *newname,
			 unsigned int flags)
{
	int ret = guard_name(name);

	if (!ret)
		ret = guard_name(newname);
	if (!ret && flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE))
		ret = -EINVAL;	/* RENAME_WHITEOUT is for overlayfs only */
	if (!ret)
		ret = rename_at(fs_of(req), inode_of(req, parent), name,
				inode_of(req, newparent), newname, flags);
	reply_status(req, ret);
}

/* ---- open files ----------------------------------------------------- */

/*
 * Backing open flags for kernel open flags @flags.  O_DIRECT is dropped:
 * the kernel already sends O_DIRECT I/O straight to us, bypassing its
 * cache of the mount, but the request buffers libfuse hands us are not
 * aligned as O_DIRECT on the backing file would need.  With the cache,
 * O_TRUNC is dropped too: the cache truncates (open_truncate), so its
 * pages and size change together with BACKING.
 */
static int backing_flags(struct hmmfs *fs, int flags)
{
	flags &= ~(O_NOFOLLOW | O_DIRECT);
	if (fs->cache)
		flags &= ~O_TRUNC;	/* done through the cache: open_truncate() */
	if (fs->opts->writeback_cache) {
		/* the kernel reads to fill partial pages, and appends itself */
		if ((flags & O_ACCMODE) == O_WRONLY)
			flags = (flags & ~O_ACCMODE) | O_RDWR;
		flags &= ~O_APPEND;
	}
	return flags | O_CLOEXEC;
}

/* Context: inode->lock held.  Is BACKING (@fd) as last recorded? */
static bool cache_same_locked(struct hmm_inode *inode, int fd)
{
	struct stat st;

	return fstat(fd, &st) == 0 && inode->cache_size == st.st_size &&
	       inode->cache_mtime.tv_sec == st.st_mtim.tv_sec &&
	       inode->cache_mtime.tv_nsec == st.st_mtim.tv_nsec;
}

/*
 * Did the backing file change since it was last closed through us?  A
 * change of our own in flight (->own_changes) is not someone else's, and
 * BACKING is looked at under the lock, after any that ended (see
 * own_change_begin()).  Return: 1 if it is as we left it, else 0, with
 * *@changed set if we had seen it before (an outside change, not a first
 * open).
 */
static int cache_still_good(struct hmm_inode *inode, int fd, int *changed)
{
	int good;

	pthread_mutex_lock(&inode->lock);
	if (inode->own_changes) {
		good = inode->cache_valid;
		*changed = 0;
	} else {
		good = inode->cache_valid && cache_same_locked(inode, fd);
		*changed = inode->cache_valid && !good;
	}
	pthread_mutex_unlock(&inode->lock);
	return good;
}

/* BACKING's state at a close, for the next open.  fstat under the lock:
 * an older one must not overwrite what own_change_end() recorded. */
static void cache_remember(struct hmm_inode *inode, int fd)
{
	struct stat st;

	pthread_mutex_lock(&inode->lock);
	if (fstat(fd, &st) == 0) {
		inode->cache_valid = 1;
		inode->cache_size = st.st_size;
		inode->cache_mtime = st.st_mtim;
	}
	pthread_mutex_unlock(&inode->lock);
}

/*
 * A SETATTR of ours that moves BACKING's size or mtime (the state is
 * used without the cache): between _begin and _end an open does not
 * compare (->own_changes), and _end takes BACKING's new state as the one
 * the next open compares with, as a close does.  Else an open would take
 * our own truncate(2) for an outside change and retire the node id while
 * other callers still truncate through the old one (the new kernel inode
 * never learns their sizes).  Like a close, it takes an outside change
 * made just before as its own: BACKING cannot tell them apart from our
 * writes through a file still open, which only its close records.
 */
static void own_change_begin(struct hmm_inode *inode)
{
	pthread_mutex_lock(&inode->lock);
	inode->own_changes++;
	pthread_mutex_unlock(&inode->lock);
}

static void own_change_end(struct hmmfs *fs, struct hmm_inode *inode)
{
	int fd = itab_fd_get(&fs->itab, inode);
	struct stat st;

	pthread_mutex_lock(&inode->lock);
	if (fd >= 0 && inode->cache_valid && fstat(fd, &st) == 0) {
		inode->cache_size = st.st_size;
		inode->cache_mtime = st.st_mtim;
	}
	inode->own_changes--;
	pthread_mutex_unlock(&inode->lock);
	if (fd >= 0)
		itab_fd_put(&fs->itab, inode);
}

/*
 * Attach @inode to the cache's state of its backing file (@st: its
 * attributes, or NULL) if there is one, or (@create) a new one.  A file
 * the kernel forgot keeps its cache state (cache/lifetime.c): a lookup
 * finds it again, so its size and times are the cache's, not BACKING's,
 * while it has dirty pages.  Return: 0 (*@out NULL when the mount has no
 * cache, @inode is not a regular file, or none exists and !@create) or
 * -errno.
 */
static int inode_cfile_attach(struct hmmfs *fs, struct hmm_inode *inode,
			      const struct stat *st, bool create,
			      struct cfile **out)
{
	struct cfile *cf = inode_cfile(inode);
	int ret = 0;

	*out = NULL;
	if (!fs->cache || inode->type != S_IFREG)
		return 0;
	if (cf) {
		*out = cf;
		return 0;
	}
	pthread_mutex_lock(&inode->lock);
	cf = inode_cfile(inode);
	if (!cf) {
		int fd = itab_fd_get(&fs->itab, inode);

		ret = fd < 0 ? fd : cache_file_attach(fs->cache, fd, st, create, &cf);
		if (fd >= 0)
			itab_fd_put(&fs->itab, inode);
		if (!ret && cf) {
			cache_file_set_owner(cf, node_id(fs, inode));
			/* pairs with the load-acquire in inode_cfile() */
			atomic_store_explicit(&inode->cfile, cf, memory_order_release);
		}
	}
	pthread_mutex_unlock(&inode->lock);
	*out = ret ? NULL : cf;
	return ret;
}

/*
 * The cache's state for @inode, made by the first operation that reads or
 * changes its data or size (read, write, O_TRUNC, truncate, fallocate,
 * copy_file_range, a range ioctl), not at open: a file opened and closed
 * without I/O (touch, a directory of 10,000 new files) then costs no
 * cache state.  Until then nothing of it is cached, and only operations
 * that leave data and size alone (getattr, times, modes) find no cfile
 * and go to BACKING directly.
 */
static int inode_cfile_get(struct hmmfs *fs, struct hmm_inode *inode,
			   struct cfile **out)
{
	return inode_cfile_attach(fs, inode, NULL, true, out);
}

/*
 * The cache's state of @inode for an operation outside an open file's
 * I/O (truncate, setting times, O_TRUNC) that needs its backing
 * descriptor: held until cache_file_unhold().  @create as above.
 */
static int inode_cfile_hold(struct hmmfs *fs, struct hmm_inode *inode,
			    bool create, struct cfile **out)
{
	int ret = create ? inode_cfile_get(fs, inode, out) :
			   inode_cfile_attach(fs, inode, NULL, false, out);

	if (!ret && *out) {
		int fd = itab_fd_get(&fs->itab, inode);

		ret = fd < 0 ? fd : cache_file_hold(*out, fd);
		if ((ret == -EMFILE || ret == -ENFILE) && fd >= 0 &&
		    fdc_shrink(&fs->itab.fdc))
			ret = cache_file_hold(*out, fd);	/* as openat_retry */
		if (fd >= 0)
			itab_fd_put(&fs->itab, inode);
		if (ret)
			*out = NULL;
	}
	return ret;
}

/*
 * The cache's state of @inode for I/O through the open file @fi, held
 * from the first such I/O until the release of @fi (hmm_file_free), so
 * the cache keeps a backing descriptor while files are open and gives it
 * up when they are all closed.  @create as for inode_cfile_attach().
 */
static int file_cfile(struct hmmfs *fs, struct hmm_inode *inode,
		      struct fuse_file_info *fi, bool create, struct cfile **out)
{
	struct hmm_file *hf = file_of(fi);
	struct cfile *cf = atomic_load_explicit(&hf->held, memory_order_acquire);
	struct cfile *none = NULL;
	int ret;

	*out = cf;
	if (cf)
		return 0;
	ret = inode_cfile_hold(fs, inode, create, &cf);
	if (ret || !cf)
		return ret;
	/* a racing I/O of the same open file may have held it first */
	if (!atomic_compare_exchange_strong(&hf->held, &none, cf))
		cache_file_unhold(cf);
	*out = cf;
	return 0;
}

/* Called by the inode table for an inode about to be freed. */
void hmmfs_inode_release(void *arg, struct hmm_inode *inode)
{
	struct hmmfs *fs = arg;
	struct cfile *cf = inode_cfile(inode);
	int fd;

	if (!cf)
		return;
	atomic_store(&inode->cfile, NULL);
	/*
	 * Only a descriptor still open: forgetting 200,000 files reopened
	 * 198,988 by handle just to ask for a link count, and an object
	 * unlinked through the mount keeps its descriptor until now
	 * (fdcache.c, "Pinned entries").  Without one the cache asks
	 * its own, or keeps the pages until they are evicted.
	 */
	fd = fdc_get_open(&fs->itab.fdc, &inode->fde);
	cache_file_detach(cf, fd);	/* writes back; keeps the pages */
	if (fd >= 0)
		itab_fd_put(&fs->itab, inode);
}

static void open_list_add(struct hmmfs *fs, struct hmm_file_link *head,
			  struct hmm_file_link *l)
{
	pthread_mutex_lock(&fs->files_lock);
	l->prev = head;
	l->next = head->next;
	l->next->prev = l;
	head->next = l;
	pthread_mutex_unlock(&fs->files_lock);
}

/*
 * BACKING changed since this mount last saw the file: the kernel must
 * forget its attributes too, not only its pages (keep_cache = 0 does
 * that, unless kernel_cache says to keep them: so offset -1, attributes
 * only), or the opener's fstat and reads up to the old size within
 * attr_timeout show the old size.  Sent before the open's reply, so the
 * first open after the change sees it (close-to-open); by the notifier
 * thread, as a direct write's invalidation is (direct_write_inval), with
 * a bounded wait.  No wait in single-threaded mode: the kernel may wait
 * for a read of the file that needs this very thread.
 */
#define OPEN_INVAL_WAIT_MS 1000

static void open_inval_kernel(struct hmmfs *fs, struct hmm_inode *inode)
{
	notify_inval(fs, node_id(fs, inode), -1, 0);
	if (!fs->opts->singlethread)
		notify_flush(fs, OPEN_INVAL_WAIT_MS);
}

/*
 * Fill @fi for an open of @inode on backing descriptor @fd.  The kernel may
 * keep its own page cache of the file unless BACKING changed since we last
 * saw it (close-to-open), as judged by our cache if there is one.
 */
static int file_info_fill(struct hmmfs *fs, struct hmm_inode *inode,
			  struct fuse_file_info *fi, int fd, int *changed_out)
{
	struct cfile *cf = inode_cfile(inode);
	struct hmm_file *hf;
	int fresh, changed = 0, atime, pin;
	struct stat st;

	/*
	 * A writeback error not reported yet (the writer closed, or the
	 * kernel forgot the file, before it happened) goes to the next
	 * writer, as it would have at fsync or close.
	 */
	if (cf && (fi->flags & O_ACCMODE) != O_RDONLY) {
		int err = cache_file_check_error(cf);

		if (err)
			return err;
	}
	hf = calloc(1, sizeof(*hf));
	if (!hf)
		return -ENOMEM;
	pin = itab_fd_get(&fs->itab, inode);	/* until release */
	if (pin < 0) {
		free(hf);
		return pin;
	}
	hf->fd = fd;
	hf->inode = inode;
	hf->accmode = fi->flags & O_ACCMODE;
	atomic_fetch_add(&inode->nopen, 1);
	open_list_add(fs, &fs->open_files, &hf->link);
	if (cf)
		fresh = !(changed = fstat(fd, &st) == 0 &&
				    cache_file_revalidate(cf, fd, &st));
	else
		fresh = cache_still_good(inode, fd, &changed);
	if (changed)
		open_inval_kernel(fs, inode);
	if (changed_out)
		*changed_out = changed;
	/* a read that must set atime has to reach us (atime.c) */
	atime = atime_open(fs, inode);
	fi->fh = (uint64_t)(uintptr_t)hf;
	fi->direct_io = fs->opts->direct_io;
	fi->keep_cache = !fs->opts->direct_io && !atime &&
			 (fs->opts->kernel_cache || fresh);
	/* the kernel reads ahead for opens it caches; copies ahead only
	 * pay where it does not */
	hf->ra.device_ahead = fi->direct_io || (fi->flags & O_DIRECT);
	return 0;
}

/*
 * O_TRUNC, which the backing open left out when there is a cache: the
 * cache truncates BACKING and forgets the file's pages, dirty ones
 * included, and its size, together.
 */
static int open_truncate(struct hmmfs *fs, struct hmm_inode *inode,
			 struct fuse_file_info *fi)
{
	struct cfile *cf;
	int ret;

	if (!(fi->flags & O_TRUNC))
		return 0;
	ret = inode_cfile_hold(fs, inode, true, &cf);
	if (ret || !cf)
		return ret;
	ret = cache_truncate(cf, 0);
	cache_file_unhold(cf);
	return ret;
}

static void open_files_del(struct hmmfs *fs, struct hmm_file_link *l)
{
	pthread_mutex_lock(&fs->files_lock);
	l->prev->next = l->next;
	l->next->prev = l->prev;
	pthread_mutex_unlock(&fs->files_lock);
}

static void hmm_file_free(struct hmmfs *fs, struct hmm_file *hf)
{
	struct cfile *cf = atomic_load(&hf->held);

	if (cf) {
		cache_ra_drop(cf, &hf->ra);	/* before the file may go */
		cache_file_unhold(cf);
	}
	cache_xxh64_free(atomic_exchange(&hf->hash, NULL));
	close(hf->fd);
	atomic_fetch_sub(&hf->inode->nopen, 1);
	itab_fd_put(&fs->itab, hf->inode);
	free(hf);
}

static void file_info_free(fuse_req_t req, struct fuse_file_info *fi)
{
	struct hmm_file *hf = file_of(fi);

	open_files_del(fs_of(req), &hf->link);
	hmm_file_free(fs_of(req), hf);
}


/*
 * Reads of BACKING must not set atime by BACKING's policy: atime.c sets it
 * by ours.  O_NOATIME needs the owner or CAP_FOWNER, so try without too.
 */
static int open_backing(struct hmmfs *fs, int dirfd, const char *name,
			int flags, mode_t mode)
{
	int fd = openat_retry(fs, dirfd, name, flags | O_NOATIME, mode);

	if (fd == -EPERM)
		fd = openat_retry(fs, dirfd, name, flags, mode);
	return fd;
}

/*
 * Close-to-open under the writeback cache.  The kernel then keeps its own
 * size and times of a file it has cached and never takes ours
 * (fuse_change_attributes_i), so an open after BACKING changed behind us
 * would see the old size and, with it, cut off or pad BACKING's new
 * data.  When the open found BACKING changed (file_info_fill) and the
 * kernel has no other open file of the inode (so no dirty pages of it
 * either), retire the inode and answer ESTALE: the VFS retries the open
 * once with LOOKUP_REVAL, that LOOKUP gets a new node id, and the kernel
 * opens a fresh inode with BACKING's size.  The retry may land on the
 * retired inode again (a /proc/PID/fd link has no name to look up): that
 * open is served as it is.  Return: true if the open must answer ESTALE.
 */
static bool open_kernel_stale(struct hmmfs *fs, struct hmm_inode *inode)
{
	bool retired;

	if (!fs->opts->writeback_cache || inode->type != S_IFREG ||
	    atomic_load(&inode->nopen) > 1)	/* this open counts */
		return false;
	pthread_mutex_lock(&fs->itab.lock);
	retired = inode->retired;
	pthread_mutex_unlock(&fs->itab.lock);
	if (!retired)
		itab_retire_inode(&fs->itab, inode);
	return !retired;
}

static void hmmfs_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct hmmfs *fs = fs_of(req);
	struct hmm_inode *inode = inode_of(req, ino);
	char path[64];
	int fd, ret, changed;

	fd = itab_fd_get(&fs->itab, inode);
	if (fd >= 0) {
		fd_path(path, fd);
		fd = open_backing(fs, AT_FDCWD, path, backing_flags(fs, fi->flags), 0);
		itab_fd_put(&fs->itab, inode);
	}
	if (fd >= 0 && (fi->flags & O_TRUNC) && devio_kill_suidgid()) {
		ret = kill_setid(req, fd, ino);
		if (ret) {
			close(fd);
			fd = ret;
		}
	}
	if (fd < 0) {
		fuse_reply_err(req, -fd);
		return;
	}
	ret = file_info_fill(fs, inode, fi, fd, &changed);
	if (ret) {
		close(fd);
		fuse_reply_err(req, -ret);
		return;
	}
	if (changed && open_kernel_stale(fs, inode)) {
		file_info_free(req, fi);
		fuse_reply_err(req, ESTALE);
		return;
	}
	ret = open_truncate(fs, inode, fi);
	if (ret) {
		file_info_free(req, fi);
		fuse_reply_err(req, -ret);
		return;
	}
	if (fuse_reply_open(req, fi) == -ENOENT)
		file_info_free(req, fi);	/* the opener was interrupted */
}

/*
 * Create or open @name below @dir for a create request, as the caller.
 * *@made gets the identity of the file if this call created it, else
 * st_ino 0: only what we made may be removed when the create fails
 * later.  Without O_EXCL the caller may open a file that exists, so try
 * O_EXCL first and open the existing file only on EEXIST.
 */
static int create_backing(struct hmmfs *fs, fuse_req_t req,
			  struct hmm_inode *dir, const char *name, int flags,
			  mode_t mode, struct stat *made)
{
	int base = backing_flags(fs, flags) | O_CREAT | O_NOFOLLOW;
	struct creds c;
	int dfd, fd;

	made->st_ino = 0;
	dfd = itab_fd_get(&fs->itab, dir);
	if (dfd < 0)
		return dfd;
	fd = creds_become(fs, req, &c);
	if (fd)
		goto out_put_dir;
	umask_become(req, &mode, &c);
	fd = open_backing(fs, dfd, name, base | O_EXCL, mode);
	if (fd == -EEXIST && !(flags & O_EXCL))
		fd = open_backing(fs, dfd, name, base, mode);
	else if (fd >= 0 && fstat(fd, made) < 0)
		made->st_ino = 0;	/* unknown: never undone */
	creds_restore(fs, &c);
out_put_dir:
	itab_fd_put(&fs->itab, dir);
	return fd;
}

/*
 * A create that fails after making its file (EMFILE on the lookup's
 * descriptor, ENOMEM, an interrupted reply) removes it again, if the
 * name still leads to the same file: a failed create leaves nothing.
 */
static void create_undo(struct hmmfs *fs, struct hmm_inode *dir,
			const char *name, const struct stat *made)
{
	struct stat st;
	int dfd;

	if (!made->st_ino || (dfd = itab_fd_get(&fs->itab, dir)) < 0)
		return;
	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    st.st_dev == made->st_dev && st.st_ino == made->st_ino)
		unlinkat(dfd, name, 0);
	itab_fd_put(&fs->itab, dir);
}

/* The open half of a create: 0, or -errno with @fd closed. */
static int create_open(fuse_req_t req, struct hmm_inode *inode,
		       struct fuse_file_info *fi, int fd)
{
	struct hmmfs *fs = fs_of(req);
	int ret = file_info_fill(fs, inode, fi, fd, NULL);

	if (ret) {
		close(fd);
		return ret;
	}
	ret = open_truncate(fs, inode, fi);
	if (ret)
		file_info_free(req, fi);
	return ret;
}

static void hmmfs_create(fuse_req_t req, fuse_ino_t parent, const char *name,
			 mode_t mode, struct fuse_file_info *fi)
{
	struct hmmfs *fs = fs_of(req);
	struct hmm_inode *dir = inode_of(req, parent);
	struct fuse_entry_param e;
	struct stat made;
	int fd = guard_name(name), ret;

	if (!fd)
		fd = create_backing(fs, req, dir, name, fi->flags, mode, &made);
	if (fd >= 0 && (fi->flags & O_TRUNC) && devio_kill_suidgid() &&
	    (ret = kill_setid(req, fd, 0))) {	/* the lookup below */
		close(fd);
		fuse_reply_err(req, -ret);	/* an existing file: nothing to undo */
		return;
	}
	if (fd < 0) {
		fuse_reply_err(req, -fd);
		return;
	}
	ret = do_lookup(fs, dir, name, &e);
	if (ret) {
		close(fd);
		goto undo_create;
	}
	ret = create_open(req, inode_of(req, e.ino), fi, fd);
	if (ret)
		goto forget_lookup;
	if (fuse_reply_create(req, &e, fi) == -ENOENT) {
		/* the creator was interrupted: it saw an error, not a file */
		file_info_free(req, fi);
		itab_forget(&fs->itab, inode_of(req, e.ino), 1);
		create_undo(fs, dir, name, &made);
	}
	return;

forget_lookup:
	itab_forget(&fs->itab, inode_of(req, e.ino), 1);
undo_create:
	create_undo(fs, dir, name, &made);
	fuse_reply_err(req, -ret);
}

/*
 * Per-thread buffers for cached reads (a copy buffer and a read vector),
 * so a read allocates nothing; freed when the worker thread exits
 * (libfuse ends idle workers).
 */
static pthread_key_t read_buf_key, read_vec_key;
static pthread_once_t read_buf_once = PTHREAD_ONCE_INIT;

static void read_buf_key_make(void)
{
	pthread_key_create(&read_buf_key, free);
	pthread_key_create(&read_vec_key, free);
}

static void *thread_buf_get(pthread_key_t *key, size_t size)
{
	void *buf;

	pthread_once(&read_buf_once, read_buf_key_make);
	buf = pthread_getspecific(*key);
	if (!buf) {
		buf = malloc(size);
		if (buf && pthread_setspecific(*key, buf)) {
			free(buf);
			buf = NULL;
		}
	}
	return buf;
}

static char *read_buf_get(void)
{
	return thread_buf_get(&read_buf_key, MAX_IO);
}

/* The calling thread's read vector (cache.h, struct cache_read_vec). */
static struct cache_read_vec *read_vec_get(void)
{
	return thread_buf_get(&read_vec_key, sizeof(struct cache_read_vec));
}

/*
 * Answer a read from the cache's own frames and bounce buffers with one
 * writev to the kernel: no copy in between.  Return: false if the read
 * must take the copying path instead.
 */
static bool read_reply_vec(fuse_req_t req, struct cfile *cf, size_t size,
			   off_t off, struct fuse_file_info *fi)
{
	struct cache_read_vec *v = read_vec_get();
	ssize_t n;

	if (!v)
		return false;
	n = cache_read_vec(cf, size, off, &file_of(fi)->ra, v);
	if (n == -EAGAIN)
		return false;
	if (n < 0) {
		fuse_reply_err(req, (int)-n);
		return true;
	}
	racy_read_begin();	/* the frames' bytes, read as writers change them */
	fuse_reply_iov(req, v->iov, v->n);
	racy_read_end();
	cache_read_vec_done(cf, v);
	return true;
}

static void hmmfs_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	struct hmm_inode *inode = file_of(fi)->inode;	/* no table lookup */
	struct fuse_bufvec buf = FUSE_BUFVEC_INIT(size);
	struct cfile *cf;
	ssize_t n;
	int ret = file_cfile(fs_of(req), inode, fi, true, &cf);

	(void)ino;	/* the open file's inode */
	if (ret) {
		fuse_reply_err(req, -ret);
		return;
	}
	/* before the reply: the kernel asks for atime right after it */
	atime_read(fs_of(req), inode);
	if (cf && read_reply_vec(req, cf, size, off, fi))
		return;
	if (cf) {
		char *read_buf = read_buf_get();

		if (!read_buf) {
			fuse_reply_err(req, ENOMEM);
			return;
		}
		if (size > MAX_IO)
			size = MAX_IO;
		n = cache_read(cf, read_buf, size, off, &file_of(fi)->ra);
		if (n < 0)
			fuse_reply_err(req, (int)-n);
		else
			fuse_reply_buf(req, read_buf, (size_t)n);
		return;
	}
	buf.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	buf.buf[0].fd = fh_fd(fi);
	buf.buf[0].pos = off;
	fuse_reply_data(req, &buf, FUSE_BUF_SPLICE_MOVE);
}

/*
 * Write through the cache: the data must be in memory.  @all: the
 * kernel's write-back, all of it or an error (cache_write_all()).
 * Return: bytes.
 */
static ssize_t write_cached(struct cfile *cf, struct fuse_bufvec *in,
			    off_t off, bool all)
{
	size_t len = fuse_buf_size(in);
	struct fuse_bufvec tmp = FUSE_BUFVEC_INIT(len);
	const void *data;
	ssize_t n;

	if (in->count == 1 && !(in->buf[0].flags & FUSE_BUF_IS_FD)) {
		data = in->buf[0].mem;
	} else {
		tmp.buf[0].mem = malloc(len);
		if (!tmp.buf[0].mem)
			return -ENOMEM;
		n = fuse_buf_copy(&tmp, in, 0);
		if (n < 0) {
			free(tmp.buf[0].mem);
			return n;
		}
		len = (size_t)n;
		data = tmp.buf[0].mem;
	}
	n = all ? cache_write_all(cf, data, len, off) : cache_write(cf, data, len, off);
	free(tmp.buf[0].mem);
	return n;
}

/* Write straight to the backing file.  Return: bytes. */
static ssize_t write_backing(struct fuse_bufvec *in, off_t off,
			     struct fuse_file_info *fi)
{
	struct fuse_bufvec out = FUSE_BUFVEC_INIT(fuse_buf_size(in));

	out.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK | FUSE_BUF_FD_RETRY;
	out.buf[0].fd = fh_fd(fi);
	out.buf[0].pos = off;
	return fuse_buf_copy(&out, in, 0);
}

/*
 * An O_DIRECT write went around the kernel's page cache of the file, but
 * buffered readers may have filled that cache with the old bytes while
 * the write was in flight.  The kernel drops them again after a direct
 * write only if it was synchronous: generic_file_direct_write() skips that
 * for AIO (-EIOCBQUEUED), and FUSE's AIO completion does not do it either
 * (generic/451).  So drop the range here, and before the reply, so that a
 * read after the write completes comes to us.  The notifier thread sends
 * it (the kernel may wait for reads of the range that need a worker); in
 * single-threaded mode waiting could stall on such a read, so we do not.
 *
 * The wait is short (DIO_INVAL_WAIT_MS), because the kernel counts this
 * write among its background requests until we reply: with enough such
 * writes waiting, readahead that holds locked pages of the range cannot
 * even be sent, and the invalidation waits for those pages.  Past the
 * limit the reply goes without it (the notifier still drops the range a
 * moment later); the stress run found that cycle with a 5 s wait, which
 * cut its throughput to a few requests a second.
 */
#define DIO_INVAL_WAIT_MS 100

static void direct_write_inval(fuse_req_t req, fuse_ino_t ino, off_t off,
			       size_t len)
{
	static atomic_bool said;
	struct hmmfs *fs = fs_of(req);

	notify_inval(fs, ino, off, (off_t)len);
	if (!fs->opts->singlethread && notify_flush(fs, DIO_INVAL_WAIT_MS) &&
	    !atomic_exchange(&said, true))
		log_notice("dropping the kernel's cached copy after an "
			"O_DIRECT write waits for reads in flight; replying first "
			"(said once)");
}

/*
 * BACKING's file size limit, checked when the write comes, as a local
 * filesystem checks it (generic_write_check_limits): a write at or past
 * the limit fails with EFBIG, one that crosses it is cut short there.
 * The cache acknowledges writes before BACKING sees them, so without this
 * check the write would succeed, fail only at writeback, and leave the
 * mount showing a size BACKING cannot hold.  Return: 0 or -EFBIG.
 */
static int write_limit(struct hmmfs *fs, struct fuse_bufvec *in, off_t off)
{
	size_t room, total = 0;

	if (off >= fs->max_size)
		return -EFBIG;
	room = (size_t)(fs->max_size - off);
	for (size_t i = in->idx; i < in->count; i++) {
		size_t skip = i == in->idx ? in->off : 0;
		size_t len = in->buf[i].size - skip;

		if (total + len >= room) {
			in->buf[i].size = skip + (room - total);
			in->count = i + 1;
			break;
		}
		total += len;
	}
	return 0;
}

static void hmmfs_write_buf(fuse_req_t req, fuse_ino_t ino,
			    struct fuse_bufvec *in, off_t off,
			    struct fuse_file_info *fi)
{
	struct hmm_inode *inode = file_of(fi)->inode;	/* no table lookup */
	struct cfile *cf;
	ssize_t n;
	int ret = write_limit(fs_of(req), in, off);

	if (!ret)
		ret = file_cfile(fs_of(req), inode, fi, true, &cf);
	if (ret) {
		fuse_reply_err(req, -ret);
		return;
	}
	if (devio_kill_suidgid()) {	/* as a local write would (devio.c) */
		ret = kill_setid(req, fh_fd(fi), ino);
		if (ret) {
			fuse_reply_err(req, -ret);
			return;
		}
	}
	atime_written(inode);
	n = cf ? write_cached(cf, in, off, fi->writepage) : write_backing(in, off, fi);
	if (!cf && fi->writepage && n >= 0 && (size_t)n < fuse_buf_size(in)) {
		/* a short reply to a write-back counts as all of it (see cache.h) */
		log_err("write-back from the kernel to node id %#llx: %zd of %zu bytes "
			"at %lld reached BACKING; the kernel is told EIO",
			(unsigned long long)ino, n, fuse_buf_size(in), (long long)off);
		n = -EIO;
	}
	if (n > 0 && (fi->flags & O_DIRECT))
		direct_write_inval(req, ino, off, (size_t)n);
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else
		fuse_reply_write(req, (size_t)n);
}

static void hmmfs_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	/* close() of a duplicate reports deferred write errors (NFS-style) */
	struct cfile *cf;
	int fd = dup(fh_fd(fi));
	int ret = fd < 0 ? -errno : 0;

	if ((ret == -EMFILE || ret == -ENFILE) && fdc_shrink(&fs_of(req)->itab.fdc)) {
		fd = dup(fh_fd(fi));	/* as openat_retry */
		ret = fd < 0 ? -errno : 0;
	}
	if (!ret)
		ret = file_cfile(fs_of(req), inode_of(req, ino), fi, false, &cf);
	if (ret) {
		if (fd >= 0)
			close(fd);
		reply_status(req, ret);
		return;
	}
	if (close(fd) < 0)
		ret = -errno;
	if (!cf)	/* here, not at release: that comes after close returns */
		cache_remember(inode_of(req, ino), fh_fd(fi));
	if (cf) {
		/*
		 * close-to-open, as NFS does it: what was written through
		 * this file reaches BACKING by close, and a writeback error
		 * (now or latched earlier) is reported here, once.
		 */
		int err = cache_writeback_range(cf, 0, OFF_MAX, false);
		int latched = cache_file_check_error(cf);

		if (!ret)
			ret = err ? err : latched;
	}
	reply_status(req, ret);
}

static void hmmfs_release(fuse_req_t req, fuse_ino_t ino,
			  struct fuse_file_info *fi)
{
	(void)ino;
	file_info_free(req, fi);
	fuse_reply_err(req, 0);
}

static void hmmfs_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
			struct fuse_file_info *fi)
{
	struct cfile *cf;
	int fd = fh_fd(fi);
	int ret = file_cfile(fs_of(req), inode_of(req, ino), fi, false, &cf);

	if (!ret && cf) {
		reply_status(req, cache_fsync(cf, datasync));
		return;
	}
	if (ret) {
		reply_status(req, ret);
		return;
	}
	ret = (datasync ? fdatasync(fd) : fsync(fd)) < 0 ? -errno : 0;
	reply_status(req, ret);
}

static void hmmfs_fallocate(fuse_req_t req, fuse_ino_t ino, int mode,
			    off_t off, off_t len, struct fuse_file_info *fi)
{
	struct cfile *cf;
	int ret = file_cfile(fs_of(req), inode_of(req, ino), fi, true, &cf);

	bool changes_data = mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE |
				    FALLOC_FL_COLLAPSE_RANGE | FALLOC_FL_INSERT_RANGE);
	off_t end = (mode & (FALLOC_FL_COLLAPSE_RANGE | FALLOC_FL_INSERT_RANGE)) ?
		    OFF_MAX : off + len;

	/*
	 * Modes that change data: BACKING first gets our dirty pages of the
	 * range, and the range is dropped before and again after, since the
	 * kernel's readahead may read old bytes into the cache meanwhile.
	 */
	if (cf && changes_data)
		ret = cache_writeback_range(cf, off, end, true);
	/*
	 * A local file system clears setuid/setgid on fallocate by a caller
	 * without CAP_FSETID (file_modified); FUSE_FALLOCATE carries no kill
	 * bit, so uid 0 stands for the capability (generic/683-685).
	 */
	if (!ret && fuse_req_ctx(req)->uid != 0)
		ret = kill_setid(req, fh_fd(fi), ino);
	if (cf)
		cache_file_change_begin(cf);
	if (!ret && fallocate(fh_fd(fi), mode, off, len) < 0)
		ret = -errno;
	if (cf && changes_data)
		cache_writeback_range(cf, off, end, true);
	if (cf)
		cache_file_change_end(cf, !ret && !(mode & FALLOC_FL_KEEP_SIZE) ?
					  off + len : -1);
	reply_status(req, ret);
}

static void hmmfs_copy_file_range(fuse_req_t req, fuse_ino_t ino_in,
				  off_t off_in, struct fuse_file_info *fi_in,
				  fuse_ino_t ino_out, off_t off_out,
				  struct fuse_file_info *fi_out, size_t len,
				  int flags)
{
	struct cfile *cf_in, *cf_out;
	off_t end_out = len > (size_t)(OFF_MAX - off_out) ? OFF_MAX : off_out + (off_t)len;
	off_t out_start;
	ssize_t n;
	int ret, err;

	/*
	 * The copy runs in BACKING: it must see our data, and we its result.
	 * The source is written back to the end of the file, not just the
	 * range: BACKING must also have the size, or a copy from a hole below
	 * an EOF still dirty here comes back short (copying nothing).  What
	 * that adds is bounded by the dirty limit.
	 */
	ret = file_cfile(fs_of(req), inode_of(req, ino_in), fi_in, true, &cf_in);
	if (!ret)
		ret = file_cfile(fs_of(req), inode_of(req, ino_out), fi_out, true,
				 &cf_out);
	if (!ret && cf_in)
		ret = cache_writeback_range(cf_in, off_in, OFF_MAX, false);
	if (!ret && cf_out)
		ret = cache_writeback_range(cf_out, off_out, end_out, true);
	if (ret) {
		fuse_reply_err(req, -ret);
		return;
	}
	out_start = off_out;
	if (cf_out)
		cache_file_change_begin(cf_out);
	n = copy_file_range(fh_fd(fi_in), &off_in, fh_fd(fi_out), &off_out,
			    len, (unsigned int)flags);
	err = errno;
	if (cf_out) {	/* again: readahead may have cached old bytes meanwhile */
		cache_writeback_range(cf_out, out_start, end_out, true);
		/* off_out: advanced by the copy */
		cache_file_change_end(cf_out, n < 0 ? -1 : off_out);
	}
	if (n < 0) {
		fuse_reply_err(req, err);
		return;
	}
	fuse_reply_write(req, (size_t)n);
}

/*
 * With the writeback cache, pages the kernel holds dirty are data that
 * neither BACKING nor our cache has seen, and the kernel does not send
 * them before asking us (fuse_lseek).  Dropping its pages of the file
 * makes it send them first (it launders a dirty page before dropping
 * it); the notifier thread asks, a worker serves those WRITEs, and this
 * one waits.  Clean pages go too: SEEK_DATA and SEEK_HOLE are rare
 * (cp, tar, backup tools), a reread is cheap.  Single-threaded, no
 * worker could serve the WRITEs: the caller answers ENOSYS instead, and
 * the kernel then treats every file as all data (generic_file_llseek),
 * which POSIX allows.  Return: 0, -ETIMEDOUT or -ENOSYS.
 */
#define LSEEK_FLUSH_WAIT_MS 10000

static int lseek_kernel_flush(fuse_req_t req, fuse_ino_t ino)
{
	struct hmmfs *fs = fs_of(req);

	if (!fs->opts->writeback_cache)
		return 0;
	if (fs->opts->singlethread)
		return -ENOSYS;
	notify_inval(fs, ino, 0, 0);
	return notify_flush(fs, LSEEK_FLUSH_WAIT_MS);
}

static void hmmfs_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
			struct fuse_file_info *fi)
{
	struct cfile *cf = NULL;
	off_t res;
	int ret = 0;

	if (whence == SEEK_DATA || whence == SEEK_HOLE) {
		ret = lseek_kernel_flush(req, ino);
		if (!ret)
			ret = file_cfile(fs_of(req), inode_of(req, ino), fi,
					 false, &cf);
	}
	if (ret) {
		fuse_reply_err(req, -ret);
		return;
	}
	if (cf) {
		/* BACKING's map of data and holes must include our dirty pages */
		ret = cache_writeback_range(cf, 0, OFF_MAX, false);
		if (ret) {
			fuse_reply_err(req, -ret);
			return;
		}
	}
	res = lseek(fh_fd(fi), off, whence);
	if (res < 0)
		fuse_reply_err(req, errno);
	else
		fuse_reply_lseek(req, res);
}

/* ---- directories ---------------------------------------------------- */

/**
 * struct hmm_dir - an open directory.
 * @dp:     the backing stream.
 * @offset: the kernel's offset @entry belongs to.
 * @entry:  an entry read but not yet returned (it did not fit).
 */
struct hmm_dir {
	DIR *dp;
	struct hmm_inode *inode;	/* referenced descriptor, as hmm_file's */
	off_t offset;
	struct dirent *entry;
	struct hmm_file_link link;	/* on fs->open_dirs (files_lock) */
};

static void dir_free(struct hmmfs *fs, struct hmm_dir *d)
{
	open_files_del(fs, &d->link);
	closedir(d->dp);
	itab_fd_put(&fs->itab, d->inode);
	free(d);
}

static struct hmm_dir *dir_of(struct fuse_file_info *fi)
{
	return (struct hmm_dir *)(uintptr_t)fi->fh;
}

static void hmmfs_opendir(fuse_req_t req, fuse_ino_t ino,
			  struct fuse_file_info *fi)
{
	struct hmmfs *fs = fs_of(req);
	struct hmm_dir *d = calloc(1, sizeof(*d));
	int fd, err;

	if (!d) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	d->inode = inode_of(req, ino);
	err = itab_fd_get(&fs->itab, d->inode);	/* until releasedir */
	if (err < 0)
		goto out_free;
	fd = openat_retry(fs, err, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
	if (fd < 0) {
		err = fd;
		goto out_put_inode;
	}
	d->dp = fdopendir(fd);
	if (!d->dp) {
		err = -errno;
		close(fd);
		goto out_put_inode;
	}
	fi->fh = (uint64_t)(uintptr_t)d;
	if (fs_of(req)->opts->kernel_cache)
		fi->keep_cache = 1;
	open_list_add(fs_of(req), &fs_of(req)->open_dirs, &d->link);
	if (fuse_reply_open(req, fi) == -ENOENT)
		dir_free(fs_of(req), d);
	return;

out_put_inode:
	itab_fd_put(&fs->itab, d->inode);
out_free:
	free(d);
	fuse_reply_err(req, -err);
}

/*
 * Add one entry to @buf; for readdirplus, also look it up.
 * Return: the space the entry needs (more than @rem: it did not fit and
 * nothing was added), or -errno when the lookup failed.
 */
static ssize_t dir_add(fuse_req_t req, struct hmm_inode *dir,
		       struct dirent *de, off_t next, char *buf, size_t rem,
		       int plus)
{
	struct hmmfs *fs = fs_of(req);
	struct fuse_entry_param e;
	size_t n;
	int ret;

	if (!plus || guard_is_dot(de->d_name)) {
		/* "." and ".." carry no lookup: the kernel ignores them */
		entry_init(fs, &e);
		e.attr.st_ino = itab_ino(&fs->itab, dir->dev, de->d_ino);
		e.attr.st_mode = (mode_t)de->d_type << 12;
		if (!plus)
			return (ssize_t)fuse_add_direntry(req, buf, rem, de->d_name,
							  &e.attr, next);
		return (ssize_t)fuse_add_direntry_plus(req, buf, rem, de->d_name,
						       &e, next);
	}
	ret = do_lookup(fs, dir, de->d_name, &e);
	if (ret)
		return ret;
	n = fuse_add_direntry_plus(req, buf, rem, de->d_name, &e, next);
	if (n > rem)	/* did not fit: the kernel will not see this lookup */
		itab_forget(&fs->itab, inode_of(req, e.ino), 1);
	return (ssize_t)n;
}

/* Position @d at the kernel's offset @off. */
static void dir_seek(struct hmm_dir *d, off_t off)
{
	if (off == d->offset)
		return;
	seekdir(d->dp, off);
	d->entry = NULL;
	d->offset = off;
}

static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi, int plus)
{
	struct hmm_dir *d = dir_of(fi);
	struct hmm_inode *dir = inode_of(req, ino);
	char *buf = malloc(size);
	size_t used = 0;
	ssize_t n = 0;

	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	dir_seek(d, off);
	for (;;) {
		off_t next;

		if (!d->entry) {
			errno = 0;
			d->entry = readdir(d->dp);
			if (!d->entry) {
				n = -errno;	/* 0 at the end */
				break;
			}
		}
		next = telldir(d->dp);
		n = dir_add(req, dir, d->entry, next, buf + used, size - used, plus);
		if (n == -ENOENT)	/* unlinked since readdir: skip it */
			n = 0;
		else if (n < 0 || (size_t)n > size - used)
			break;
		used += (size_t)n;
		d->entry = NULL;
		d->offset = next;
	}
	/* entries already gathered go out; an error shows on the next call */
	if (n < 0 && used == 0)
		fuse_reply_err(req, (int)-n);
	else
		fuse_reply_buf(req, buf, used);
	free(buf);
}

static void hmmfs_readdir(fuse_req_t req, fuse_ino_t ino, size_t size,
			  off_t off, struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, 0);
}

static void hmmfs_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size,
			      off_t off, struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, 1);
}

static void hmmfs_releasedir(fuse_req_t req, fuse_ino_t ino,
			     struct fuse_file_info *fi)
{
	(void)ino;
	dir_free(fs_of(req), dir_of(fi));
	fuse_reply_err(req, 0);
}

static void hmmfs_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync,
			   struct fuse_file_info *fi)
{
	int fd = dirfd(dir_of(fi)->dp);

	(void)ino;
	reply_status(req, (datasync ? fdatasync(fd) : fsync(fd)) < 0 ? -errno : 0);
}

static void hmmfs_statfs(fuse_req_t req, fuse_ino_t ino)
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

/* ---- extended attributes --------------------------------------------- */

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

static void hmmfs_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
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
static void hmmfs_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
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
static void hmmfs_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
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

static void hmmfs_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
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

/* ---- access ---------------------------------------------------------- */

static int in_groups(fuse_req_t req, gid_t gid)
{
	gid_t groups[64];
	int n = fuse_req_getgroups(req, 64, groups);

	for (int i = 0; i < n && i < 64; i++)
		if (groups[i] == gid)
			return 1;
	return 0;
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
static void hmmfs_access(fuse_req_t req, fuse_ino_t ino, int mask)
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

/* ---- control ioctls (fs/hmmfs_ioctl.h) ------------------------------- */

static void stats_fill_device(struct hmmfs *fs, const struct cache_stats *cs,
			      struct hmmfs_ioc_stats *st)
{
	const char *dev = cache_device_name(fs->cache);

	snprintf(st->device, sizeof(st->device), "%s", dev ? dev : "none");
	snprintf(st->migrate, sizeof(st->migrate), "%s", fs->opts->migrate);
	st->device_cache = dev ? fs->opts->device_cache * fs->opts->devices : 0;
	st->device_frames = cs->device_frames;
	st->device_pages = cs->device_pages;
	st->migrations_to_device = cs->migrations_to_device;
	st->migrations_to_host = cs->migrations_to_host;
	st->bounce_reads = cs->bounce_reads;
	st->bounce_writes = cs->bounce_writes;
	st->bounce_waits = cs->bounce_waits;
	st->device_faults = cs->device_faults;
	st->device_evictions = cs->device_evictions;
	st->thrash_holds = cs->thrash_holds;
	st->host_frames_used = cs->host_frames_used;
	st->device_frames_used = cs->device_frames_used;
	st->device_frames_hwm = cs->device_frames_hwm;
	st->device_copy_sync = cs->device_copy_sync;
	st->device_copy_async = cs->device_copy_async;
	st->device_readahead = cs->device_readahead;
}

static void stats_fill_files(const struct cache_stats *cs,
			     struct hmmfs_ioc_stats *st)
{
	st->files_cached = cs->files_cached;
	st->files_detached = cs->files_detached;
	st->writeback_errors = cs->writeback_errors;
	st->dirty_pages_stuck = cs->dirty_pages_stuck;
}

/*
 * Every descriptor the daemon holds now, counted in /proc/self/fd: the
 * descriptor cache's, open files', the page cache's own I/O descriptors,
 * and the fixed few (/dev/fuse, io_uring, eventfds, logs).  Counted, not
 * tracked, so that no holder can be missed.  0 if it cannot be read.
 */
static uint64_t fds_count(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	uint64_t n = 0;

	if (!d)
		return 0;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n ? n - 1 : 0;	/* not the one reading the directory */
}

static void ioctl_stats(fuse_req_t req, size_t out_bufsz)
{
	struct hmmfs *fs = fs_of(req);
	struct hmmfs_ioc_stats st = { .version = HMMFS_IOC_VERSION };
	struct cache_stats cs;

	if (out_bufsz < sizeof(st)) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	if (fs->cache) {
		cache_get_stats(fs->cache, &cs);
		st.cache_on = 1;
		snprintf(st.io_engine, sizeof(st.io_engine), "%s",
			 cache_io_engine_name(fs->cache));
		st.page_size = cache_page_size(fs->cache);
		st.host_cache = fs->opts->host_cache;
		st.host_pages = cs.host_pages;
		st.dirty_pages = cs.dirty_pages;
		st.writeback_pages = cs.writeback_pages;
		st.hits = cs.hits;
		st.misses = cs.misses;
		st.readahead_pages = cs.readahead_pages;
		st.evictions = cs.evictions;
		st.writeback_bytes = cs.writeback_bytes;
		st.written_bytes = cs.written_bytes;
		st.backing_reads = cs.backing_reads;
		st.backing_writes = cs.backing_writes;
		st.throttled = cs.throttled;
		stats_fill_device(fs, &cs, &st);
		stats_fill_files(&cs, &st);
	} else {
		snprintf(st.io_engine, sizeof(st.io_engine), "none");
		snprintf(st.device, sizeof(st.device), "none");
	}
	st.fds_open = fds_count();
	st.fd_reopens = fdc_reopens(&fs->itab.fdc);
	fuse_reply_ioctl(req, 0, &st, sizeof(st));
}

/* The per-opcode request counters and latencies (opstat.c). */
static void ioctl_ops(fuse_req_t req, size_t out_bufsz)
{
	struct hmmfs_ioc_ops *ops;

	if (out_bufsz < sizeof(*ops)) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	ops = malloc(sizeof(*ops));
	if (!ops) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	opstat_snapshot(ops);
	fuse_reply_ioctl(req, 0, ops, sizeof(*ops));
	free(ops);
}

/* Write back one file, or everything from the root; then sync BACKING. */
static int ioctl_sync(fuse_req_t req, struct hmm_inode *inode,
		      struct fuse_file_info *fi)
{
	struct hmmfs *fs = fs_of(req);
	struct cfile *cf = NULL;
	int ret = 0, fd;

	if (inode == &fs->itab.root) {
		if (fs->cache)
			ret = cache_sync_all(fs->cache);
		fd = openat(itab_root_fd(&fs->itab), ".",
			    O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0)
			return ret ? ret : -errno;
		if (syncfs(fd) < 0 && !ret)
			ret = -errno;
		close(fd);
		return ret;
	}
	if (inode->type == S_IFREG && fi)
		ret = file_cfile(fs, inode, fi, false, &cf);
	if (ret || cf)
		return ret ? ret : cache_fsync(cf, false);
	if (inode->type == S_IFREG && fi)
		return fsync(fh_fd(fi)) < 0 ? -errno : 0;
	return 0;	/* nothing of ours to write back */
}

/*
 * The file an ioctl on a range works on: a regular file of the mount
 * opened with @need access (O_RDONLY: readable, O_WRONLY: writable), with
 * cache state.  Return: 0 or -errno.
 */
static int ioctl_file(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
		      unsigned int flags, int need, struct cfile **out)
{
	struct hmmfs *fs = fs_of(req);
	struct hmm_inode *inode = inode_of(req, ino);
	struct hmm_file *hf;

	if (flags & FUSE_IOCTL_DIR)
		return -EISDIR;
	if (inode->type != S_IFREG || !fi)
		return -EINVAL;
	hf = file_of(fi);
	if ((need == O_RDONLY && hf->accmode == O_WRONLY) ||
	    (need == O_WRONLY && hf->accmode == O_RDONLY))
		return -EBADF;
	if (!fs->cache)
		return -ENODEV;	/* host_cache=0: no cache, no device tier */
	return file_cfile(fs, inode, fi, true, out);
}

/* Check a version and a byte range from the user. */
static int ioctl_range_ok(uint32_t version, uint64_t off, uint64_t len)
{
	if (version != HMMFS_IOC_VERSION)
		return -EINVAL;
	if (off > INT64_MAX || len > INT64_MAX || off + len > INT64_MAX)
		return -EINVAL;
	return 0;
}

/*
 * Pages moved to the device: the kernel's copy of them is being dropped
 * by the notifier; wait for it so the caller's next read comes to us.
 */
static void ioctl_wait_inval(struct hmmfs *fs)
{
	if (notify_flush(fs, 5000))
		log_warn("kernel cache invalidation is slow");
}

/*
 * The migrate or devop request this thread is running, for
 * ioctl_cancelled(): libfuse marks it when the kernel sends an INTERRUPT
 * for it (the caller got a signal; after SIGKILL the caller cannot go
 * before the reply comes).
 */
static __thread fuse_req_t ioctl_running;

bool ioctl_cancelled(void *arg)
{
	struct hmmfs *fs = arg;

	/* only a worker runs an ioctl: fs->se is alive while it does */
	return ioctl_running && (fuse_req_interrupted(ioctl_running) ||
				 fuse_session_exited(fs->se));
}

/*
 * A bounded migration (cache_migrate); @size is the caller's struct, the
 * older one (HMMFS_IOC_MIGRATE_OLD) lacks only @next at its end.
 */
static int ioctl_migrate(fuse_req_t req, fuse_ino_t ino,
			 struct fuse_file_info *fi, unsigned int flags,
			 const void *in, size_t in_sz, size_t out_sz, size_t size)
{
	struct hmmfs_ioc_migrate m = { 0 };
	struct cfile *cf;
	off_t next = 0;
	int ret;

	_Static_assert(CACHE_REQUEST_BYTES == HMMFS_IOC_MAX_WORK,
		       "the bound a request works to is the one tools are told");
	_Static_assert(sizeof(struct hmmfs_ioc_migrate_old) ==
		       offsetof(struct hmmfs_ioc_migrate, next),
		       "the old migrate is the new one without next");
	if (in_sz < size || out_sz < size)
		return -EINVAL;
	memcpy(&m, in, size);
	ret = ioctl_range_ok(m.version, m.offset, m.length);
	if (!ret && m.to != HMMFS_TO_HOST && m.to != HMMFS_TO_DEVICE &&
	    (m.to & ~HMMFS_TO_UNIT_MASK) != HMMFS_TO_DEVICE_UNIT(0))
		ret = -EINVAL;
	if (!ret)
		ret = ioctl_file(req, ino, fi, flags, O_RDONLY, &cf);
	if (!ret) {
		ioctl_running = req;
		ret = cache_migrate(cf, (off_t)m.offset, (off_t)m.length,
				    m.to != HMMFS_TO_HOST,
				    m.to >= HMMFS_TO_DEVICE_UNIT(0) ?
				    (int)(m.to & HMMFS_TO_UNIT_MASK) : CACHE_UNIT_ANY,
				    &m.moved, &next);
		ioctl_running = NULL;
	}
	m.next = (uint64_t)next;
	if (m.to != HMMFS_TO_HOST && (!ret || m.moved))
		ioctl_wait_inval(fs_of(req));
	if (ret)
		return ret;
	fuse_reply_ioctl(req, 0, &m, size);
	return 0;
}

/* Replicas of a range on devices (cache_replicate), bounded like migrate. */
static int ioctl_replicate(fuse_req_t req, fuse_ino_t ino,
			   struct fuse_file_info *fi, unsigned int flags,
			   const void *in, size_t in_sz, size_t out_sz)
{
	struct hmmfs_ioc_replicate m;
	struct cfile *cf;
	off_t next = 0;
	int ret;

	if (in_sz < sizeof(m) || out_sz < sizeof(m))
		return -EINVAL;
	memcpy(&m, in, sizeof(m));
	ret = ioctl_range_ok(m.version, m.offset, m.length);
	if (!ret)
		ret = ioctl_file(req, ino, fi, flags, O_RDONLY, &cf);
	if (!ret) {
		ioctl_running = req;
		ret = cache_replicate(cf, (off_t)m.offset, (off_t)m.length, m.units,
				      &m.copies, &next);
		ioctl_running = NULL;
	}
	m.next = (uint64_t)next;
	if (ret)
		return ret;
	fuse_reply_ioctl(req, 0, &m, sizeof(m));
	return 0;
}

/*
 * A read-only device operation (XXH64 of a range on one device), over as
 * many requests as the range needs: HMMFS_DEVREAD_START begins a hash at
 * @offset; each later request goes on from the @next the last returned,
 * and the one that reaches the end gets the digest.  The hash in progress
 * lives with the open file (hmm_file->hash), never in the caller's hands.
 */
static int ioctl_devread(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
			 unsigned int flags, const void *in, size_t in_sz,
			 size_t out_sz)
{
	struct hmmfs_ioc_devread m;
	struct cache_xxh64 *h = NULL;
	struct cfile *cf;
	off_t next = 0;
	int ret;

	if (in_sz < sizeof(m) || out_sz < sizeof(m))
		return -EINVAL;
	memcpy(&m, in, sizeof(m));
	ret = ioctl_range_ok(m.version, m.offset, m.length);
	if (!ret && (m.op != HMMFS_DEVREAD_XXH64 || m.flags & ~HMMFS_DEVREAD_START))
		ret = -EINVAL;
	if (!ret)
		ret = ioctl_file(req, ino, fi, flags, O_RDONLY, &cf);
	if (!ret) {
		h = atomic_exchange(&file_of(fi)->hash, NULL);
		if (m.flags & HMMFS_DEVREAD_START) {
			cache_xxh64_free(h);
			h = cache_xxh64_new((off_t)m.offset);
		}
		ret = !h ? (m.flags & HMMFS_DEVREAD_START ? -ENOMEM : -EINVAL) : 0;
	}
	if (!ret) {
		ioctl_running = req;
		ret = cache_devread_xxh64(cf, (off_t)m.offset, (off_t)m.length,
					  m.device, h, &m.pages, &next);
		ioctl_running = NULL;
	}
	m.next = (uint64_t)next;
	m.done = !ret && m.next >= m.offset + m.length;
	if (!ret && !m.done && m.next < (uint64_t)cache_file_size(cf))
		h = atomic_exchange(&file_of(fi)->hash, h);	/* for the next one */
	else if (!ret)
		m.done = 1;	/* the file ends here */
	if (m.done)
		m.result = cache_xxh64_digest(h);
	cache_xxh64_free(h);
	if (ret)
		return ret;
	fuse_reply_ioctl(req, 0, &m, sizeof(m));
	return 0;
}

static int ioctl_devop(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
		       unsigned int flags, const void *in, size_t in_sz,
		       size_t out_sz)
{
	static const enum cache_devop_kind ops[] = {
		[HMMFS_DEVOP_FILL] = CACHE_DEVOP_FILL,
		[HMMFS_DEVOP_XOR] = CACHE_DEVOP_XOR,
		[HMMFS_DEVOP_ADD] = CACHE_DEVOP_ADD,
	};
	struct hmmfs_ioc_devop d;
	struct cfile *cf;
	off_t next = 0;
	int ret;

	if (in_sz < sizeof(d) || out_sz < sizeof(d))
		return -EINVAL;
	memcpy(&d, in, sizeof(d));
	ret = ioctl_range_ok(d.version, d.offset, d.length);
	if (!ret && (d.op >= sizeof(ops) / sizeof(ops[0]) || d.value > 255))
		ret = -EINVAL;
	if (!ret)
		ret = ioctl_file(req, ino, fi, flags, O_WRONLY, &cf);
	if (!ret) {
		ioctl_running = req;
		ret = cache_devop(cf, (off_t)d.offset, (off_t)d.length, ops[d.op],
				  d.value, &d.pages, &next);
		ioctl_running = NULL;
	}
	d.next = (uint64_t)next;
	if (!ret || d.pages)
		ioctl_wait_inval(fs_of(req));
	if (ret)
		return ret;
	fuse_reply_ioctl(req, 0, &d, sizeof(d));
	return 0;
}

/*
 * Root and the mount's owner: they may see all dedupe state (the owner
 * runs the daemon, whose memory holds every cached page anyway).
 */
static bool ksm_privileged(struct hmmfs *fs, const struct fuse_ctx *ctx)
{
	return ctx->uid == 0 || ctx->uid == fs->uid;
}

/*
 * May the caller learn which pages of @cf share a frame?  Sharing says
 * that some other file holds the same bytes, so only a caller who may
 * read every sharer may see it: a privileged one, or, with ksm_scope=uid,
 * the file's owner, who owns every sharer too (a frame other than the
 * zero frame is shared only by files of one owner, and the zero frame
 * says nothing about any other file).  Anyone else sees no page shared.
 */
static bool ksm_may_see_sharing(struct hmmfs *fs, const struct fuse_ctx *ctx,
				struct cfile *cf)
{
	return ksm_privileged(fs, ctx) ||
	       (!strcmp(fs->opts->ksm_scope, "uid") &&
		ctx->uid == cache_file_uid(cf));
}

static int ioctl_residency(fuse_req_t req, fuse_ino_t ino,
			   struct fuse_file_info *fi, unsigned int flags,
			   const void *in, size_t in_sz, size_t out_sz)
{
	struct hmmfs_ioc_residency *r;
	struct cache_extent ext[HMMFS_RES_MAX_EXTENTS];
	struct cache_res_counts cnt;
	struct cfile *cf;
	size_t n;
	off_t next;
	int ret;

	if (in_sz < sizeof(*r) || out_sz < sizeof(*r))
		return -EINVAL;
	r = malloc(sizeof(*r));
	if (!r)
		return -ENOMEM;
	memcpy(r, in, sizeof(*r));
	ret = ioctl_range_ok(r->version, r->offset, r->length);
	if (!ret)
		ret = ioctl_file(req, ino, fi, flags, O_RDONLY, &cf);
	if (!ret)
		ret = cache_residency(cf, (off_t)r->offset, (off_t)r->length,
				      ksm_may_see_sharing(fs_of(req), fuse_req_ctx(req),
							  cf) ? 0 : CACHE_RES_SHARED,
				      ext, HMMFS_RES_MAX_EXTENTS, &n, &next, &cnt);
	if (!ret) {
		r->n_ext = (uint32_t)n;
		r->next = (uint64_t)next;
		r->page_size = cache_page_size(fs_of(req)->cache);
		r->pages = cnt.pages;
		r->host = cnt.host;
		r->device = cnt.device;
		r->dirty = cnt.dirty;
		r->writeback = cnt.writeback;
		r->shared = cnt.shared;
		memset(r->ext, 0, sizeof(r->ext));
		for (size_t i = 0; i < n; i++)	/* CACHE_RES_* == HMMFS_RES_* */
			r->ext[i] = (struct hmmfs_ioc_extent){ ext[i].first,
							       ext[i].count,
							       ext[i].flags,
							       ext[i].units };
		fuse_reply_ioctl(req, 0, r, sizeof(*r));
	}
	free(r);
	return ret;
}

/* Each device unit's figures (hmmfsctl stats: "devices"). */
static int ioctl_devices(fuse_req_t req, size_t out_sz)
{
	struct hmmfs_ioc_devices r = { .version = HMMFS_IOC_VERSION };
	struct cache *c = fs_of(req)->cache;

	_Static_assert(HMMFS_MAX_DEVICES == CACHE_MAX_DEVICES,
		       "every device fits the ioctl");
	if (out_sz < sizeof(r))
		return -EINVAL;
	if (!c)
		return -ENODEV;
	r.count = cache_devices(c);
	for (unsigned int k = 0; k < r.count; k++) {
		struct cache_device_stats st;

		cache_device_get_stats(c, k, &st);
		r.dev[k] = (struct hmmfs_ioc_device){
			.pages = st.pages, .frames = st.frames,
			.frames_used = st.frames_used, .frames_hwm = st.frames_hwm,
			.copies_in = st.copies_in, .copies_out = st.copies_out,
			.faults = st.faults, .replicas = st.replicas,
			.replicas_dropped = st.replicas_dropped,
			.peer_in = st.peer_in, .staged_in = st.staged_in,
		};
		snprintf(r.dev[k].name, sizeof(r.dev[k].name), "%s", st.name);
	}
	fuse_reply_ioctl(req, 0, &r, sizeof(r));
	return 0;
}

/* One file's counters (hmmfsctl stats FILE). */
static int ioctl_file_stats(fuse_req_t req, fuse_ino_t ino,
			    struct fuse_file_info *fi, unsigned int flags,
			    size_t out_sz)
{
	struct hmmfs_ioc_file_stats r = { .version = HMMFS_IOC_VERSION };
	struct cache_file_stats st;
	struct cfile *cf;
	int ret;

	if (out_sz < sizeof(r))
		return -EINVAL;
	ret = ioctl_file(req, ino, fi, flags, O_RDONLY, &cf);
	if (ret)
		return ret;
	cache_file_get_stats(cf, &st);
	r.page_size = cache_page_size(fs_of(req)->cache);
	r.size = st.size;
	r.pages = st.pages;
	r.dirty = st.dirty;
	r.writeback = st.writeback;
	r.hits = st.hits;
	r.misses = st.misses;
	r.readahead_pages = st.readahead_pages;
	r.bounce_reads = st.bounce_reads;
	r.bounce_writes = st.bounce_writes;
	r.written_bytes = st.written_bytes;
	r.writeback_bytes = st.writeback_bytes;
	r.migrations_to_device = st.migrations_to_device;
	r.migrations_to_host = st.migrations_to_host;
	fuse_reply_ioctl(req, 0, &r, sizeof(r));
	return 0;
}

/*
 * Dedupe knobs and counters; changing knobs is for the owner or root.
 * With ksm_scope=all the counters are too: pages_sharing going up after
 * a user wrote a guess of another's page would answer the guess.  With
 * ksm_scope=uid a user's pages merge only with his own, so the counters
 * move with other users' pages only as aggregates and anyone may read.
 */
static int ioctl_ksm(fuse_req_t req, const void *in, size_t in_sz,
		     size_t out_sz)
{
	struct hmmfs *fs = fs_of(req);
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct hmmfs_ioc_ksm k;
	struct ksm_knobs kn;
	struct ksm_stats st;
	int ret;

	_Static_assert(sizeof(kn) == sizeof(k.knobs), "knobs match ksm_knobs");
	if (in_sz < sizeof(k) || out_sz < sizeof(k))
		return -EINVAL;
	memcpy(&k, in, sizeof(k));
	if (k.version != HMMFS_IOC_VERSION ||
	    (k.set_mask & ~((1u << HMMFS_KSM_NR_KNOBS) - 1)))
		return -EINVAL;
	if (!fs->cache)
		return -ENODEV;
	if (!ksm_privileged(fs, ctx) &&
	    (k.set_mask || strcmp(fs->opts->ksm_scope, "uid")))
		return -EPERM;
	if (k.set_mask) {
		memcpy(&kn, k.knobs, sizeof(kn));
		ret = cache_ksm_set(fs->cache, &kn, k.set_mask);
		if (ret)
			return ret;
	}
	cache_ksm_get(fs->cache, &kn, &st);
	memcpy(k.knobs, &kn, sizeof(kn));
	k.pages_shared = st.pages_shared;
	k.pages_sharing = st.pages_sharing;
	k.pages_unshared = st.pages_unshared;
	k.pages_volatile = st.pages_volatile;
	k.full_scans = st.full_scans;
	k.cow_breaks = st.cow_breaks;
	k.zero_pages = st.zero_pages;
	k.pages_scanned = st.pages_scanned;
	k.saved_host_bytes = st.saved_host_bytes;
	k.saved_device_bytes = st.saved_device_bytes;
	k.set_mask = 0;
	fuse_reply_ioctl(req, 0, &k, sizeof(k));
	return 0;
}

static void hmmfs_ioctl(fuse_req_t req, fuse_ino_t ino, unsigned int cmd,
			void *arg, struct fuse_file_info *fi, unsigned int flags,
			const void *in_buf, size_t in_bufsz, size_t out_bufsz)
{
	int ret;

	(void)arg;
	if (flags & FUSE_IOCTL_COMPAT) {
		fuse_reply_err(req, ENOSYS);
		return;
	}
	switch (cmd) {
	case HMMFS_IOC_STATS:
		ioctl_stats(req, out_bufsz);
		return;
	case HMMFS_IOC_OPS:
		ioctl_ops(req, out_bufsz);
		return;
	case HMMFS_IOC_SYNC:
		ret = ioctl_sync(req, inode_of(req, ino),
				 (flags & FUSE_IOCTL_DIR) ? NULL : fi);
		if (ret)
			fuse_reply_err(req, -ret);
		else
			fuse_reply_ioctl(req, 0, NULL, 0);
		return;
	case HMMFS_IOC_MIGRATE:
		ret = ioctl_migrate(req, ino, fi, flags, in_buf, in_bufsz, out_bufsz,
				    sizeof(struct hmmfs_ioc_migrate));
		break;
	case HMMFS_IOC_MIGRATE_OLD:
		ret = ioctl_migrate(req, ino, fi, flags, in_buf, in_bufsz, out_bufsz,
				    sizeof(struct hmmfs_ioc_migrate_old));
		break;
	case HMMFS_IOC_DEVOP:
		ret = ioctl_devop(req, ino, fi, flags, in_buf, in_bufsz, out_bufsz);
		break;
	case HMMFS_IOC_RESIDENCY:
		ret = ioctl_residency(req, ino, fi, flags, in_buf, in_bufsz, out_bufsz);
		break;
	case HMMFS_IOC_KSM:
		ret = ioctl_ksm(req, in_buf, in_bufsz, out_bufsz);
		break;
	case HMMFS_IOC_FILE_STATS:
		ret = ioctl_file_stats(req, ino, fi, flags, out_bufsz);
		break;
	case HMMFS_IOC_DEVICES:
		ret = ioctl_devices(req, out_bufsz);
		break;
	case HMMFS_IOC_REPLICATE:
		ret = ioctl_replicate(req, ino, fi, flags, in_buf, in_bufsz, out_bufsz);
		break;
	case HMMFS_IOC_DEVREAD:
		ret = ioctl_devread(req, ino, fi, flags, in_buf, in_bufsz, out_bufsz);
		break;
	default:
		ret = -ENOTTY;
	}
	if (ret)	/* the handlers above reply themselves on success */
		fuse_reply_err(req, -ret);
}

/* ---- session -------------------------------------------------------- */

/*
 * Does BACKING keep POSIX ACLs?  Its root answers ENODATA (none set) or a
 * size for system.posix_acl_access if so, EOPNOTSUPP if not.
 */
static bool backing_has_acls(struct hmmfs *fs)
{
	char path[64];

	fd_path(path, itab_root_fd(&fs->itab));
	return getxattr(path, "system.posix_acl_access", NULL, 0) >= 0 ||
	       errno == ENODATA;
}

/*
 * POSIX ACLs are enforced by the kernel, as for a local file system: with
 * FUSE_CAP_POSIX_ACL it reads them through getxattr, caches them, checks
 * them (this also turns default_permissions on) and drops them when the
 * mode or an ACL changes through the mount.  BACKING's setxattr of an ACL
 * updates the mode itself.  Default ACLs on create are BACKING's work too:
 * FUSE_CAP_DONT_MASK hands us the mode and umask unmixed (umask_become).
 *
 * The kernel checks permissions only where others use the mount
 * (allow_other, which implies default_permissions, or default_permissions
 * asked for).  A private mount has one user, the one who mounted it: the
 * daemon runs as that user, so BACKING itself checks every access as it
 * would without us, ACLs included; or as root, whom only the execute bits
 * stop (hmmfs_access).  Checking again in the kernel costs a GETATTR
 * whenever the kernel's attributes are stale, once per file in tar x or
 * rm -rf (docs/performance.md, everyday workloads).
 *
 * Without xattr handlers (noxattr) the kernel cannot read ACLs, so other
 * users are checked against the mode bits alone: say so.
 */
static void acl_init(struct hmmfs *fs, struct fuse_conn_info *conn)
{
	if (!backing_has_acls(fs))
		return;
	if (!fs->opts->noxattr && (conn->capable & FUSE_CAP_DONT_MASK))
		conn->want |= FUSE_CAP_DONT_MASK;
	if (!fs->opts->default_permissions)
		return;		/* a private mount: BACKING checks */
	if (!fs->opts->noxattr && (conn->capable & FUSE_CAP_POSIX_ACL)) {
		conn->want |= FUSE_CAP_POSIX_ACL;
		return;
	}
	if (fs->opts->allow_other)
		log_notice("BACKING keeps POSIX ACLs, but %s: other "
			"users are checked against the mode bits only",
			fs->opts->noxattr ? "noxattr is set" :
			"the kernel cannot enforce them through FUSE");
}

static void hmmfs_init(void *userdata, struct fuse_conn_info *conn)
{
	struct hmmfs *fs = userdata;

	if (fs->opts->splice && (conn->capable & FUSE_CAP_SPLICE_WRITE))
		conn->want |= FUSE_CAP_SPLICE_WRITE;
	else
		conn->want &= ~(FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE |
				FUSE_CAP_SPLICE_READ);
	if (fs->opts->writeback_cache && (conn->capable & FUSE_CAP_WRITEBACK_CACHE)) {
		conn->want |= FUSE_CAP_WRITEBACK_CACHE;
		/*
		 * Under the writeback cache an atomic O_TRUNC open loses a
		 * truncate racing with it: the kernel truncates in OPEN,
		 * under the inode lock, then takes the lock again and sets
		 * its own size to 0 (ATTR_OPEN in fuse_do_setattr) without
		 * asking us, and it never takes our size after that.  A
		 * truncate(2) between the two leaves the kernel's size at 0
		 * (or at what the opener writes next) and BACKING's at the
		 * truncate's.  Without the capability the kernel opens, then
		 * truncates with a SETATTR of its own, under one lock.
		 */
		conn->want &= ~FUSE_CAP_ATOMIC_O_TRUNC;
	}
	if (conn->capable & FUSE_CAP_IOCTL_DIR)
		conn->want |= FUSE_CAP_IOCTL_DIR;	/* hmmfsctl on the mount root */
	/*
	 * The kernel keeps symlink targets: a symlink's target never changes
	 * (BACKING replaces the object, which a lookup then finds under a new
	 * node id).  Without file handles a reused inode number cannot be
	 * told from the old object and would keep the old node id and the
	 * old target: then the kernel asks each time.
	 */
	if ((conn->capable & FUSE_CAP_CACHE_SYMLINKS) && !fdc_no_handles(&fs->itab.fdc))
		conn->want |= FUSE_CAP_CACHE_SYMLINKS;
	/*
	 * File handles of the mount (name_to_handle_at, NFS export) outlive
	 * the kernel's inodes: it looks "." up in the node id of a handle
	 * whose inode it forgot (lookup_self), which dormant inodes keep
	 * valid; they need BACKING's own handles.
	 */
	if ((conn->capable & FUSE_CAP_EXPORT_SUPPORT) && !fdc_no_handles(&fs->itab.fdc))
		conn->want |= FUSE_CAP_EXPORT_SUPPORT;
	acl_init(fs, conn);
	if (conn->max_write > MAX_IO)
		conn->max_write = MAX_IO;
	/*
	 * Readahead and async direct I/O share the kernel's background
	 * requests (12 by default); with many O_DIRECT writers readahead
	 * starved for them while holding locked pages (see
	 * direct_write_inval).
	 */
	conn->max_background = 64;
	conn->congestion_threshold = 48;
	conn->time_gran = 1;
}

const struct fuse_lowlevel_ops hmmfs_ops = {
	.init		 = hmmfs_init,
	.lookup		 = hmmfs_lookup,
	.forget		 = hmmfs_forget,
	.forget_multi	 = hmmfs_forget_multi,
	.getattr	 = hmmfs_getattr,
	.setattr	 = hmmfs_setattr,
	.readlink	 = hmmfs_readlink,
	.mknod		 = hmmfs_mknod,
	.mkdir		 = hmmfs_mkdir,
	.unlink		 = hmmfs_unlink,
	.rmdir		 = hmmfs_rmdir,
	.symlink	 = hmmfs_symlink,
	.rename		 = hmmfs_rename,
	.link		 = hmmfs_link,
	.open		 = hmmfs_open,
	.read		 = hmmfs_read,
	.write_buf	 = hmmfs_write_buf,
	.flush		 = hmmfs_flush,
	.release	 = hmmfs_release,
	.fsync		 = hmmfs_fsync,
	.opendir	 = hmmfs_opendir,
	.readdir	 = hmmfs_readdir,
	.readdirplus	 = hmmfs_readdirplus,
	.releasedir	 = hmmfs_releasedir,
	.fsyncdir	 = hmmfs_fsyncdir,
	.statfs		 = hmmfs_statfs,
	.setxattr	 = hmmfs_setxattr,
	.getxattr	 = hmmfs_getxattr,
	.listxattr	 = hmmfs_listxattr,
	.removexattr	 = hmmfs_removexattr,
	.access		 = hmmfs_access,
	.create		 = hmmfs_create,
	.fallocate	 = hmmfs_fallocate,
	.copy_file_range = hmmfs_copy_file_range,
	.lseek		 = hmmfs_lseek,
	.ioctl		 = hmmfs_ioctl,
};

/* At the end of the session: no RELEASE or RELEASEDIR will come. */
void hmmfs_open_files_free(struct hmmfs *fs)
{
	while (fs->open_dirs.next != &fs->open_dirs)
		dir_free(fs, (struct hmm_dir *)((char *)fs->open_dirs.next -
						offsetof(struct hmm_dir, link)));
	while (fs->open_files.next != &fs->open_files) {
		struct hmm_file_link *l = fs->open_files.next;

		open_files_del(fs, l);
		hmm_file_free(fs, (struct hmm_file *)((char *)l -
						      offsetof(struct hmm_file, link)));
	}
}
