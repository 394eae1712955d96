/* SPDX-License-Identifier: MIT */
/*
 * fs/ops_file.c — open regular files: OPEN, CREATE and RELEASE, the life
 * of struct hmm_file, and the glue between an inode and the page cache's
 * state of its backing file (struct cfile).
 *
 * An open opens the backing file through /proc/self/fd/N of the inode's
 * O_PATH descriptor, with the kernel's flags less O_DIRECT (backing_flags;
 * less O_TRUNC too with the cache, which truncates: open_truncate), and
 * with O_NOATIME where allowed, since atime.c sets atime by the mount's
 * policy.  The struct hmm_file holds one descriptor-cache reference of its
 * inode until release and sits on fs->open_files.  Close-to-open: the
 * kernel keeps its page cache of the file (keep_cache) only if BACKING did
 * not change since we last saw it, as the cache judges when it has the
 * file (cache_file_revalidate), else by the size and mtime recorded at the
 * last close (kcache_still_good, kcache_remember) and after our own SETATTRs
 * (own_change_begin/_end).  A change seen drops the kernel's attributes
 * (open_inval_kernel) and, under the writeback cache, retires the node id
 * (open_kernel_stale).  A create makes the file as the caller (ops_cred.c),
 * looks it up (ops_entry.c) and opens it; one that fails after making its
 * file removes it again (create_undo).
 *
 * Cache state is made by the first operation that reads or changes data
 * or size, not at open (inode_cfile_get): attached to the inode once
 * (inode_cfile_attach), held by an open file from its first I/O to its
 * release (file_cfile) or around one truncate or change of times
 * (inode_cfile_hold), and detached when the table frees the inode
 * (hmmfs_inode_release).
 *
 * Locking: hmm_inode->lock guards the inode's cache_* fields and
 * own_changes, and serialises the attach of ->cfile, which is published
 * with a store-release and read with a load-acquire (inode_cfile).  An
 * open file's ->held is set by compare-exchange, so racing requests of one
 * open file need no lock.  fs->files_lock guards the open lists
 * (open_list_add, ops.c); a retired flag is read under itab->lock
 * (open_kernel_stale).
 */
#include "fs/ops_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cache/cache.h"
#include "fs/devio.h"
#include "fs/guard.h"
#include "lib/lockcheck.h"

/* The page cache's state of @inode, or NULL (no cache, or not opened yet). */
struct cfile *inode_cfile(struct hmm_inode *inode)
{
	return atomic_load_explicit(&inode->cfile, memory_order_acquire);
}

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
static bool kcache_same_locked(struct hmm_inode *inode, int fd)
{
	struct stat st;

	mutex_assert_held(&inode->lock);
	return fstat(fd, &st) == 0 && inode->kcache_size == st.st_size &&
	       inode->kcache_mtime.tv_sec == st.st_mtim.tv_sec &&
	       inode->kcache_mtime.tv_nsec == st.st_mtim.tv_nsec;
}

/*
 * Did the backing file change since it was last closed through us?  A
 * change of our own in flight (->own_changes) is not someone else's, and
 * BACKING is looked at under the lock, after any that ended (see
 * own_change_begin()).  Return: 1 if it is as we left it, else 0, with
 * *@changed set if we had seen it before (an outside change, not a first
 * open).
 */
static int kcache_still_good(struct hmm_inode *inode, int fd, int *changed)
{
	int good;

	pthread_mutex_lock(&inode->lock);
	if (inode->own_changes) {
		good = inode->kcache_valid;
		*changed = 0;
	} else {
		good = inode->kcache_valid && kcache_same_locked(inode, fd);
		*changed = inode->kcache_valid && !good;
	}
	pthread_mutex_unlock(&inode->lock);
	return good;
}

/* BACKING's state at a close, for the next open.  fstat under the lock:
 * an older one must not overwrite what own_change_end() recorded. */
void kcache_remember(struct hmm_inode *inode, int fd)
{
	struct stat st;

	pthread_mutex_lock(&inode->lock);
	if (fstat(fd, &st) == 0) {
		inode->kcache_valid = 1;
		inode->kcache_size = st.st_size;
		inode->kcache_mtime = st.st_mtim;
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
void own_change_begin(struct hmm_inode *inode)
{
	pthread_mutex_lock(&inode->lock);
	inode->own_changes++;
	pthread_mutex_unlock(&inode->lock);
}

void own_change_end(struct hmmfs *fs, struct hmm_inode *inode)
{
	int fd = itab_fd_get(&fs->itab, inode);
	struct stat st;

	pthread_mutex_lock(&inode->lock);
	if (fd >= 0 && inode->kcache_valid && fstat(fd, &st) == 0) {
		inode->kcache_size = st.st_size;
		inode->kcache_mtime = st.st_mtim;
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
int inode_cfile_attach(struct hmmfs *fs, struct hmm_inode *inode,
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
int inode_cfile_hold(struct hmmfs *fs, struct hmm_inode *inode,
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
int file_cfile(struct hmmfs *fs, struct hmm_inode *inode,
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
		fresh = kcache_still_good(inode, fd, &changed);
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

void hmm_file_free(struct hmmfs *fs, struct hmm_file *hf)
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

void hmmfs_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
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

void hmmfs_create(fuse_req_t req, fuse_ino_t parent, const char *name,
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

void hmmfs_release(fuse_req_t req, fuse_ino_t ino,
			  struct fuse_file_info *fi)
{
	(void)ino;
	file_info_free(req, fi);
	fuse_reply_err(req, 0);
}
