/* SPDX-License-Identifier: MIT */
/*
 * cache/lifetime.c — a file's cache state outlives the kernel's inode.
 *
 * The kernel forgets inodes whenever it likes (memory pressure, its inode
 * LRU, drop_caches), but what hmmfs caches of a file (host and device
 * pages, dedupe links, dirty pages) belongs to the backing object, not to
 * the kernel's inode.  So every cfile sits in a hash table keyed by the
 * object's identity (st_dev, st_ino), and the fs layer attaches to it and
 * detaches from it:
 *
 *   attached --detach (FORGET)--> detached --attach (LOOKUP, same object,
 *      ^                             |        unchanged)--> attached
 *      |                             +--attach, object changed or another
 *   created (first I/O)              |  object with the same number--> dropped
 *                                    +--its last page evicted--> dropped
 *                                    +--unlinked (nlink 0) at detach--> dropped
 *
 * Detach writes the file's dirty pages back.  A detached file keeps only
 * its pages, which the cache's own policy (LRU, demotion to the device,
 * dedupe) may evict like anyone's; it is freed when its last page goes
 * (by the flusher: cache_files_sweep, which looks only at the files
 * queued on cache->idle_files, never at all of them).  A detached file whose writeback
 * failed keeps its dirty pages: the flusher retries them with backoff,
 * and the error is reported at the next fsync, close or open for writing.
 * Dirty pages are discarded only when the object is gone (its link count
 * is 0 at detach) or at unmount after a last try, which is logged with
 * the file and the bytes lost.
 *
 * Descriptors.  A file's backing descriptor (->fd) is open only while it
 * is needed: while an open file of it does I/O (cache_file_hold, from the
 * first I/O of each open file to its release), and while it has dirty
 * pages or writeback in flight.  Otherwise the file gives it up (at the
 * last unhold, after a writeback made it clean, at detach), so the
 * daemon's descriptors follow what is open and dirty, not what is cached.
 *
 * Same object: a file handle (name_to_handle_at) names one object for its
 * life: an inode number reused by a new file comes with another handle
 * (ext4, xfs, btrfs and tmpfs put a generation in it), so the old pages
 * are never shown for the new file.  Unchanged: BACKING's size and mtime
 * are what the cache last saw, as the close-to-open check at open has it;
 * ctime is not compared, since a rename or chmod in BACKING changes it but
 * no data.  A detached file with dirty pages is always kept: its data was
 * acknowledged and goes over a change made behind it, as at open.
 *
 * Locking: cache->files_lock guards the table, every ->attached, ->hashed
 * and ->hnext, and is taken before cfile->lock, never inside a page lock.
 * ->fd is closed only when no hold, dirty page, writeback or own change
 * is left and nobody else (the flusher, the dedupe scanner) holds the
 * file through ->users, under both locks: nothing can be using it then,
 * and nothing can start to without ->lock (dirtying a page and holding
 * take it).  It is opened under ->lock by cache_file_hold.  idle_lock is
 * a leaf (page removal queues a file with its page locked), taken after
 * files_lock.  Whoever works
 * on a file without an attachment or a hold (detach, the sweep) holds
 * it through ->users, so a file freed by someone else meanwhile (an
 * attach that found it stale) waits for them (file_wait_unused).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "cache/cache_int.h"
#include "cache/rcu.h"
#include "log/log.h"
#include "lib/lockcheck.h"

#define FTAB_MIN_SIZE 1024

static void file_idle_put(struct cache *c, struct cfile *f);

/* A file handle as name_to_handle_at gives it, with room for any. */
union fh_buf {
	struct file_handle fh;
	char space[sizeof(struct file_handle) + MAX_HANDLE_SZ];
};

static size_t ftab_hash(dev_t dev, ino_t ino, size_t size)
{
	uint64_t h = (uint64_t)ino * 0x9e3779b97f4a7c15ull ^ (uint64_t)dev;

	h ^= h >> 31;
	return (size_t)(h & (size - 1));
}

int cache_ftab_init(struct cache *c)
{
	c->ftab = calloc(FTAB_MIN_SIZE, sizeof(*c->ftab));
	if (!c->ftab)
		return -ENOMEM;
	c->ftab_size = FTAB_MIN_SIZE;
	return 0;
}

static struct cfile *ftab_find_locked(struct cache *c, dev_t dev, ino_t ino)
{
	struct cfile *f = c->ftab[ftab_hash(dev, ino, c->ftab_size)];

	mutex_assert_held(&c->files_lock);
	for (; f; f = f->hnext)
		if (f->dev == dev && f->ino == ino)
			return f;
	return NULL;
}

/* Double the table; without memory keep the old one (only slower). */
static void ftab_grow_locked(struct cache *c)
{
	size_t n = c->ftab_size * 2;
	struct cfile **t = calloc(n, sizeof(*t));

	mutex_assert_held(&c->files_lock);
	if (!t)
		return;
	for (size_t i = 0; i < c->ftab_size; i++) {
		struct cfile *f = c->ftab[i], *next;

		for (; f; f = next) {
			size_t h = ftab_hash(f->dev, f->ino, n);

			next = f->hnext;
			f->hnext = t[h];
			t[h] = f;
		}
	}
	free(c->ftab);
	c->ftab = t;
	c->ftab_size = n;
}

/* Put @f in the table and on the files list.  Context: files_lock. */
static void ftab_add_locked(struct cache *c, struct cfile *f)
{
	size_t h;

	mutex_assert_held(&c->files_lock);
	if (c->nr_files >= c->ftab_size)
		ftab_grow_locked(c);
	h = ftab_hash(f->dev, f->ino, c->ftab_size);
	f->hnext = c->ftab[h];
	c->ftab[h] = f;
	f->hashed = true;
	c->nr_files++;
	clist_add_head(c->files.prev, &f->file_link);	/* at the tail */
}

/*
 * Take @f out of the table and off the files list (the dedupe scanner
 * moves on).  Context: files_lock.
 */
static void ftab_del_locked(struct cache *c, struct cfile *f)
{
	struct cfile **pp = &c->ftab[ftab_hash(f->dev, f->ino, c->ftab_size)];

	mutex_assert_held(&c->files_lock);
	for (; *pp; pp = &(*pp)->hnext) {
		if (*pp == f) {
			*pp = f->hnext;
			break;
		}
	}
	f->hashed = false;
	c->nr_files--;
	if (!f->attached)
		c->nr_detached--;
	ksm_file_unlinked_locked(c->ksm, f);
	clist_del(&f->file_link);
}

/* The handle of the object @path_fd names, in @h; 0 when there is none. */
static unsigned int handle_of(int path_fd, union fh_buf *h)
{
	int mnt_id;

	h->fh.handle_bytes = MAX_HANDLE_SZ;
	if (name_to_handle_at(path_fd, "", &h->fh, &mnt_id, AT_EMPTY_PATH) < 0)
		return 0;
	return h->fh.handle_bytes;
}

static bool same_handle(const struct cfile *f, const union fh_buf *h,
			unsigned int hlen)
{
	return f->hlen == hlen && (!hlen || (f->htype == h->fh.handle_type &&
		memcmp(f->handle, h->fh.f_handle, hlen) == 0));
}

/*
 * The cache's reads of BACKING must not set atime: the fs layer sets it
 * by the mount's policy.  O_NOATIME needs the owner or CAP_FOWNER.
 */
static int open_backing_path(const char *path, int flags, int *direct)
{
	int ret = io_open_backing(AT_FDCWD, path, flags | O_NOATIME, 0, direct);

	if (ret == -EPERM)
		ret = io_open_backing(AT_FDCWD, path, flags, 0, direct);
	return ret;
}

/* A descriptor for backing I/O on the object @path_fd names. */
static int open_backing_io(int path_fd, int *direct)
{
	char path[64];
	int ret;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", path_fd);
	ret = open_backing_path(path, O_RDWR | O_CLOEXEC, direct);
	if (ret == -EACCES || ret == -EROFS || ret == -ETXTBSY || ret == -EPERM)
		ret = open_backing_path(path, O_RDONLY | O_CLOEXEC, direct);
	return ret;
}

/*
 * How many pages one backing read of a miss may cover.  A FUSE file
 * system serves an O_DIRECT read as one request after another unless its
 * server asked for FUSE_ASYNC_DIO (fs/fuse/file.c, fuse_direct_io()), so
 * over glusterfs a 1 MiB readahead was eight round trips in turn.  Cut
 * into pieces of READ_PIECE_FUSE, the engine has them all in flight at
 * once where it can (io_engine_parallel(): io_uring hands each to a
 * worker).  Over a 1 Gbit link (bench/gluster.sh, cold reads) 1 MiB
 * reads gave 0.89-0.91x of gluster's own client, 128 KiB pieces
 * 0.92-0.94x, 32 KiB pieces 0.94-0.97x.  Elsewhere (local disks, which
 * queue a large read themselves) the run is as long as a run may be.
 */
#define READ_PIECE_FUSE	(32u << 10)
#define FUSE_SUPER_MAGIC 0x65735546

static unsigned int read_run_for(struct cfile *f)
{
	struct cache *c = f->cache;
	struct statfs sfs;
	unsigned int n = READ_PIECE_FUSE >> c->page_shift;

	if (f->direct && io_engine_parallel(c->io) && fstatfs(f->fd, &sfs) == 0 &&
	    sfs.f_type == FUSE_SUPER_MAGIC)
		return n ? n : 1;
	return CACHE_MAX_RUN;
}

/* Writer-preferring: see struct cfile's @trunc_lock. */
static void trunc_lock_init(struct cfile *f)
{
	pthread_rwlockattr_t a;

	pthread_rwlockattr_init(&a);
	pthread_rwlockattr_setkind_np(&a, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&f->trunc_lock, &a);
	pthread_rwlockattr_destroy(&a);
}

static struct cfile *cfile_new(struct cache *c, const struct stat *st,
			       const union fh_buf *h, unsigned int hlen)
{
	struct cfile *f = calloc(1, sizeof(*f) + hlen);

	if (!f)
		return NULL;
	f->fd = -1;
	f->bfd = -1;
	atomic_init(&f->root, NULL);
	f->cache = c;
	pthread_mutex_init(&f->lock, NULL);
	trunc_lock_init(f);
	f->size = st->st_size;
	f->seen_size = st->st_size;
	f->seen_mtime = st->st_mtim;
	atomic_init(&f->uid, (uint32_t)st->st_uid);
	clist_init(&f->dirty_link);
	clist_init(&f->idle_link);
	f->dev = st->st_dev;
	f->ino = st->st_ino;
	atomic_init(&f->attached, 1);
	f->hlen = hlen;
	if (hlen) {
		f->htype = h->fh.handle_type;
		memcpy(f->handle, h->fh.f_handle, hlen);
	}
	return f;
}

/* After a grace period no lookup can still walk the file's index. */
static void cfile_free_rcu(struct rcu_head *head)
{
	struct cfile *f = container_of(head, struct cfile, rcu);

	cache_rcu_reclaim();
	index_destroy(f);
	pthread_mutex_destroy(&f->lock);
	pthread_rwlock_destroy(&f->trunc_lock);
	free(f);
}

/* Close a file's backing descriptors (-1: none), taken from it already. */
static void file_close_fds(struct cache *c, int fd, int bfd)
{
	if (fd >= 0) {
		close(fd);
		atomic_fetch_sub(&c->nr_fds, 1);
	}
	if (bfd >= 0) {
		close(bfd);
		atomic_fetch_sub(&c->nr_fds, 1);
	}
}

/*
 * Drop every page of @f (dirty ones too) and free it.  Context: @f is out
 * of the table; nobody else can find it but the flusher and the scanner,
 * which are waited for.
 */
static void cfile_free(struct cfile *f)
{
	struct cache *c = f->cache;

	file_drop_range(f, 0, UINT64_MAX, true);
	file_wait_unused(f);
	/* no page is left to queue it again (file_page_gone) */
	pthread_mutex_lock(&c->idle_lock);
	clist_del(&f->idle_link);	/* the sweep finds it no more */
	clist_init(&f->idle_link);
	pthread_mutex_unlock(&c->idle_lock);
	ksm_forget_file(c->ksm, f);
	atomic_fetch_sub(&c->nr_stuck, f->stuck);
	file_close_fds(c, f->fd, f->bfd);
	/*
	 * Not synchronize_rcu() here: a grace period per file made closing
	 * many files (the kernel's FORGET after unlink) 3-5x slower.
	 */
	cache_rcu_defer();
	call_rcu(&f->rcu, cfile_free_rcu);
}

/*
 * May detached @f serve the object @st, @h describes?  The same object,
 * and unchanged since the cache last saw it, or holding dirty data that
 * goes over the change.  Context: files_lock.
 */
static bool file_still_good_locked(struct cfile *f, const struct stat *st,
				   const union fh_buf *h, unsigned int hlen)
{
	bool good;

	mutex_assert_held(&f->cache->files_lock);
	if (!same_handle(f, h, hlen))
		return false;
	pthread_mutex_lock(&f->lock);
	good = f->nr_dirty || f->nr_writeback ||
	       (!f->outside_changed && st->st_size == f->seen_size &&
		st->st_mtim.tv_sec == f->seen_mtime.tv_sec &&
		st->st_mtim.tv_nsec == f->seen_mtime.tv_nsec);
	pthread_mutex_unlock(&f->lock);
	return good;
}

/*
 * Find @st's file in the table and attach to it.  Return: the file, or
 * NULL when there is none (*@stale: a detached one that may not serve
 * @st, taken out of the table, for the caller to free).
 */
static struct cfile *ftab_attach(struct cache *c, const struct stat *st,
				 const union fh_buf *h, unsigned int hlen,
				 struct cfile **stale)
{
	struct cfile *f;

	*stale = NULL;
	pthread_mutex_lock(&c->files_lock);
	f = ftab_find_locked(c, st->st_dev, st->st_ino);
	if (f && atomic_load(&f->attached) && !same_handle(f, h, hlen)) {
		/*
		 * The kernel still holds an inode of a removed object whose
		 * number BACKING gave again: that inode keeps the file, out
		 * of the table, until its detach frees it.
		 */
		ftab_del_locked(c, f);
		f = NULL;
	} else if (f && !atomic_load(&f->attached)) {
		if (file_still_good_locked(f, st, h, hlen)) {
			c->nr_detached--;
		} else {
			ftab_del_locked(c, f);
			*stale = f;
			f = NULL;
		}
	}
	if (f)
		atomic_fetch_add(&f->attached, 1);
	pthread_mutex_unlock(&c->files_lock);
	return f;
}

/* Is there a file for @st in the table (attached or not)? */
static bool ftab_has(struct cache *c, const struct stat *st)
{
	bool has;

	pthread_mutex_lock(&c->files_lock);
	has = ftab_find_locked(c, st->st_dev, st->st_ino) != NULL;
	pthread_mutex_unlock(&c->files_lock);
	return has;
}

/*
 * A new file for @st, unless another thread put one in the table first
 * (then attach to that one).  Return: 0 or -ENOMEM.
 */
static int ftab_create(struct cache *c, const struct stat *st,
		       const union fh_buf *h, unsigned int hlen,
		       struct cfile **out)
{
	struct cfile *f = cfile_new(c, st, h, hlen), *other, *stale;

	if (!f)
		return -ENOMEM;
	other = ftab_attach(c, st, h, hlen, &stale);
	if (!other) {
		pthread_mutex_lock(&c->files_lock);
		other = ftab_find_locked(c, st->st_dev, st->st_ino);
		if (other)
			atomic_fetch_add(&other->attached, 1);	/* just made */
		else
			ftab_add_locked(c, f);
		pthread_mutex_unlock(&c->files_lock);
	}
	if (stale)
		cfile_free(stale);
	if (other) {
		pthread_mutex_destroy(&f->lock);
		pthread_rwlock_destroy(&f->trunc_lock);
		free(f);
		f = other;
	}
	*out = f;
	return 0;
}

/*
 * A reattached file takes the object's owner as it is now (a chown in
 * BACKING while it was detached changes who its pages may be shared with).
 */
static void file_owner_refresh(struct cfile *f, const struct stat *st)
{
	if (cache_file_uid(f) != (uint32_t)st->st_uid)
		cache_file_set_uid(f, (uint32_t)st->st_uid);
}

int cache_file_attach(struct cache *c, int path_fd, const struct stat *st,
		      bool create, struct cfile **out)
{
	struct cfile *f, *stale;
	struct stat own;
	union fh_buf h;
	unsigned int hlen;
	int ret;

	*out = NULL;
	if (!st) {
		if (fstat(path_fd, &own) < 0)
			return -errno;
		st = &own;
	}
	if (!create && !ftab_has(c, st))
		return 0;	/* the common lookup: no handle needed */
	hlen = handle_of(path_fd, &h);
	f = ftab_attach(c, st, &h, hlen, &stale);
	if (stale)
		cfile_free(stale);
	if (!f && create) {
		ret = ftab_create(c, st, &h, hlen, &f);
		if (ret)
			return ret;
	}
	if (f)
		file_owner_refresh(f, st);
	*out = f;
	return 0;
}

int cache_file_open(struct cache *c, int path_fd, struct cfile **out)
{
	int ret = cache_file_attach(c, path_fd, NULL, true, out);

	if (ret)
		return ret;
	ret = cache_file_hold(*out, path_fd);
	if (ret) {
		cache_file_detach(*out, path_fd);
		*out = NULL;
	}
	return ret;
}

int cache_file_hold(struct cfile *f, int path_fd)
{
	int ret = 0;

	pthread_mutex_lock(&f->lock);
	if (f->fd < 0) {
		ret = open_backing_io(path_fd, &f->direct);
		if (ret >= 0) {
			f->fd = ret;
			f->read_run = read_run_for(f);
			atomic_fetch_add(&f->cache->nr_fds, 1);
			ret = 0;
		}
	}
	if (!ret)
		f->holds++;
	pthread_mutex_unlock(&f->lock);
	return ret;
}

void cache_file_unhold(struct cfile *f)
{
	bool last;

	pthread_mutex_lock(&f->lock);
	last = --f->holds == 0 && !f->nr_dirty && !f->nr_writeback;
	pthread_mutex_unlock(&f->lock);
	if (!last)
		return;
	atomic_fetch_add(&f->users, 1);	/* attached: a plain reference */
	file_idle_put(f->cache, f);
}

/* Bytes of @f's dirty pages, for a report of what is at stake. */
static uint64_t file_dirty_bytes(struct cfile *f)
{
	uint64_t n;

	pthread_mutex_lock(&f->lock);
	n = (f->nr_dirty + f->nr_writeback) * f->cache->cfg.page_size;
	pthread_mutex_unlock(&f->lock);
	return n;
}

/* BACKING's path of @f, for logs (best effort). */
static void file_path(struct cfile *f, char *buf, size_t len)
{
	char link[64];
	ssize_t n = -1;

	if (f->fd >= 0) {
		snprintf(link, sizeof(link), "/proc/self/fd/%d", f->fd);
		n = readlink(link, buf, len - 1);
	}
	if (n < 0)
		n = snprintf(buf, len, "inode %llu", (unsigned long long)f->ino);
	buf[n < (ssize_t)len ? n : (ssize_t)len - 1] = '\0';
}

/* Every such line reaches the log (log/log.h): data is named there. */
void cache_log_file(struct cfile *f, const char *fmt, const char *err,
		    uint64_t bytes)
{
	char path[PATH_MAX];
	char msg[PATH_MAX + 256];

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
	file_path(f, path, sizeof(path));
	snprintf(msg, sizeof(msg), fmt, path, err, (unsigned long long)bytes);
#pragma GCC diagnostic pop
	log_print(LOG_ERR, "%s", msg);
}

void file_idle_queue(struct cfile *f)
{
	struct cache *c = f->cache;

	pthread_mutex_lock(&c->idle_lock);
	if (clist_empty(&f->idle_link))
		clist_add_head(c->idle_files.prev, &f->idle_link);
	pthread_mutex_unlock(&c->idle_lock);
}

/*
 * Drop our ->users reference on @f, giving up its descriptor if nothing
 * needs it, and freeing a detached file with no page left.  When someone
 * else held it too, it is queued for the flusher to look at again.
 */
static void file_idle_put(struct cache *c, struct cfile *f)
{
	bool idle, later = false, free_it = false;
	int fd = -1, bfd = -1;

	pthread_mutex_lock(&c->files_lock);
	pthread_mutex_lock(&f->lock);
	idle = !f->holds && !f->nr_dirty && !f->nr_writeback && !f->own_changes;
	if (idle && atomic_load(&f->users) > 1) {
		idle = false;
		later = true;
	}
	if (idle) {
		fd = f->fd;
		bfd = f->bfd;
		f->fd = f->bfd = -1;
		free_it = f->hashed && !atomic_load(&f->attached) &&
			  !atomic_load(&f->nr_pages);
	}
	pthread_mutex_unlock(&f->lock);
	if (free_it)
		ftab_del_locked(c, f);
	atomic_fetch_sub(&f->users, 1);
	pthread_mutex_unlock(&c->files_lock);
	file_close_fds(c, fd, bfd);
	if (free_it)
		cfile_free(f);
	else if (later)
		file_idle_queue(f);
}

/*
 * Is the object of @f gone from every directory of BACKING?  Asked of
 * @path_fd, or without one (-1) of the file's own descriptor, if any.
 */
static bool file_unlinked(struct cfile *f, int path_fd)
{
	struct stat st;
	bool gone;

	if (path_fd >= 0)
		return fstat(path_fd, &st) == 0 && st.st_nlink == 0;
	pthread_mutex_lock(&f->lock);
	gone = f->fd >= 0 && fstat(f->fd, &st) == 0 && st.st_nlink == 0;
	pthread_mutex_unlock(&f->lock);
	return gone;
}

/*
 * Nobody can reach an unlinked object's data again: drop it and our
 * reference, unless someone attached to it meanwhile.
 */
static void file_drop_unlinked_put(struct cache *c, struct cfile *f)
{
	bool drop;

	pthread_mutex_lock(&c->files_lock);
	drop = f->hashed && !atomic_load(&f->attached);
	if (drop)
		ftab_del_locked(c, f);
	atomic_fetch_sub(&f->users, 1);
	pthread_mutex_unlock(&c->files_lock);
	if (drop)
		cfile_free(f);
}

void cache_file_detach(struct cfile *f, int path_fd)
{
	struct cache *c = f->cache;
	int ret;

	pthread_mutex_lock(&c->files_lock);
	if (atomic_fetch_sub(&f->attached, 1) > 1) {
		pthread_mutex_unlock(&c->files_lock);
		return;
	}
	if (!f->hashed) {	/* a removed object's, replaced in the table */
		pthread_mutex_unlock(&c->files_lock);
		cfile_free(f);
		return;
	}
	c->nr_detached++;
	atomic_fetch_add(&f->users, 1);
	pthread_mutex_unlock(&c->files_lock);
	if (file_unlinked(f, path_fd)) {
		file_drop_unlinked_put(c, f);
		return;
	}
	ret = file_writeback(f, 0, UINT64_MAX, true);
	if (ret)
		cache_log_file(f, "%s: writeback failed when the kernel forgot "
			       "the file: %s; %llu bytes stay dirty in the cache "
			       "and are retried", strerror(-ret),
			       file_dirty_bytes(f));
	file_idle_put(c, f);
}

void cache_file_close(struct cfile *f)
{
	cache_file_unhold(f);
	cache_file_detach(f, -1);
}

/*
 * The flusher's look at the queued files: each is taken off the queue and
 * held, then given up or freed as at detach; one held by someone else is
 * queued again, for the next pass.
 */
void cache_files_sweep(struct cache *c)
{
	struct clist batch, *pos;
	struct cfile *f;
	bool held = false;

	clist_init(&batch);
	pthread_mutex_lock(&c->idle_lock);
	if (!clist_empty(&c->idle_files)) {	/* move them all to @batch */
		batch.next = c->idle_files.next;
		batch.prev = c->idle_files.prev;
		batch.next->prev = &batch;
		batch.prev->next = &batch;
		clist_init(&c->idle_files);
	}
	pthread_mutex_unlock(&c->idle_lock);
	for (;;) {
		pthread_mutex_lock(&c->files_lock);
		pthread_mutex_lock(&c->idle_lock);
		pos = batch.next;
		f = pos == &batch ? NULL : clist_entry(pos, struct cfile, idle_link);
		if (f) {
			clist_del(pos);
			clist_init(pos);
			/* one being freed (not hashed) is its freer's */
			held = f->hashed;
			if (held)
				atomic_fetch_add(&f->users, 1);
		}
		pthread_mutex_unlock(&c->idle_lock);
		pthread_mutex_unlock(&c->files_lock);
		if (!f)
			break;
		if (held)
			file_idle_put(c, f);
	}
}

/* A page of @f left its index: a detached file with none left can go. */
void file_page_gone(struct cfile *f)
{
	if (atomic_fetch_sub(&f->nr_pages, 1) == 1 &&
	    !atomic_load_explicit(&f->attached, memory_order_relaxed))
		file_idle_queue(f);
}

/*
 * Unmount: every file left (the fs layer detached them all) is written
 * back one last time and freed.  Return: bytes of dirty data that could
 * not be written, each file of them logged.
 */
uint64_t cache_files_close_all(struct cache *c)
{
	uint64_t lost = 0, bytes;
	struct cfile *f;
	int ret;

	for (;;) {
		pthread_mutex_lock(&c->files_lock);
		f = clist_empty(&c->files) ? NULL :
		    clist_entry(c->files.next, struct cfile, file_link);
		if (f)
			ftab_del_locked(c, f);
		pthread_mutex_unlock(&c->files_lock);
		if (!f)
			break;
		ret = file_writeback(f, 0, UINT64_MAX, true);
		bytes = ret ? file_dirty_bytes(f) : 0;
		if (bytes)
			cache_log_file(f, "%s: writeback at unmount failed: %s; "
				       "%llu bytes of it are lost", strerror(-ret),
				       bytes);
		lost += bytes;
		cfile_free(f);
	}
	free(c->ftab);
	c->ftab = NULL;
	return lost;
}

void cache_file_counts(struct cache *c, uint64_t *cached, uint64_t *detached)
{
	pthread_mutex_lock(&c->files_lock);
	*cached = c->nr_files;
	*detached = c->nr_detached;
	pthread_mutex_unlock(&c->files_lock);
}
