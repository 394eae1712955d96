/* SPDX-License-Identifier: MIT */
/*
 * fs/ops_entry.c — names: LOOKUP and FORGET, and the operations that make
 * or remove a name (MKNOD, MKDIR, SYMLINK, LINK, UNLINK, RMDIR, RENAME).
 *
 * A lookup checks the name (guard_name), opens it O_PATH | O_NOFOLLOW
 * below the parent's O_PATH descriptor, and hands the descriptor to the
 * inode table, which finds or makes the inode and counts one kernel
 * lookup (itab_lookup_insert).  The entry carries the node id, the
 * generation, and attributes whose size and times the page cache corrects
 * while it holds the file (inode_cfile_attach, inode_fix_attr).  The ".."
 * of the root is the root: nothing above BACKING is reachable.  "." in a
 * node id is the kernel resolving a file handle whose inode it forgot
 * (lookup_self).  A FORGET gives the kernel's lookups back to the table
 * (itab_forget).
 *
 * Making a name runs as the caller (ops_cred.c), then looks the new name
 * up, so the reply is a lookup's (reply_made).  Removing a name (unlink,
 * rmdir, a rename over a file) first opens what the name leads to
 * (victim_open): if that was its last name, the table keeps the descriptor
 * for the inode (victim_keep), since a handle may no longer open an object
 * without names but the kernel may still ask about it (fdcache.c, "Pinned
 * entries").
 *
 * Locking: none of its own.  The itab_*() calls take itab->lock inside,
 * inode_cfile_attach() takes hmm_inode->lock (ops_file.c); each call into
 * BACKING is an *at() call relative to a descriptor held for its duration
 * (itab_fd_get/itab_fd_put).
 */
#include "fs/ops_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cache/cache.h"
#include "fs/guard.h"
#include "log/log.h"

/* cache_file_fix_attr() for an entry reply, through @inode's descriptor. */
static void inode_fix_attr(struct hmmfs *fs, struct hmm_inode *inode,
			   struct cfile *cf, struct stat *st)
{
	int fd = itab_fd_get(&fs->itab, inode);

	cache_file_fix_attr(cf, fd < 0 ? -1 : fd, st);
	if (fd >= 0)
		itab_fd_put(&fs->itab, inode);
}

void entry_init(struct hmmfs *fs, struct fuse_entry_param *e)
{
	memset(e, 0, sizeof(*e));
	e->attr_timeout = fs->opts->attr_timeout;
	e->entry_timeout = fs->opts->entry_timeout;
}

/* Look @name up below @dir, add a kernel lookup on success. */
int do_lookup(struct hmmfs *fs, struct hmm_inode *dir, const char *name,
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

void hmmfs_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
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

void hmmfs_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	forget_one(fs_of(req), ino, nlookup);
	fuse_reply_none(req);
}

void hmmfs_forget_multi(fuse_req_t req, size_t count,
			       struct fuse_forget_data *forgets)
{
	for (size_t i = 0; i < count; i++)
		forget_one(fs_of(req), forgets[i].ino, forgets[i].nlookup);
	fuse_reply_none(req);
}

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

void hmmfs_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
			mode_t mode, dev_t rdev)
{
	struct hmm_inode *dir = inode_of(req, parent);

	reply_made(req, dir, name, make_object(fs_of(req), req, dir, name,
					       MAKE_NODE, mode, rdev, NULL));
}

void hmmfs_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
			mode_t mode)
{
	struct hmm_inode *dir = inode_of(req, parent);

	reply_made(req, dir, name, make_object(fs_of(req), req, dir, name,
					       MAKE_DIR, mode, 0, NULL));
}

void hmmfs_symlink(fuse_req_t req, const char *target,
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

void hmmfs_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
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

void hmmfs_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	reply_status(req, remove_name(fs_of(req), inode_of(req, parent), name, 0));
}

void hmmfs_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
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

void hmmfs_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
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
