/* SPDX-License-Identifier: MIT */
/*
 * fs/fdcache.c — the inode table's O_PATH descriptors, bounded.
 *
 * Why: every inode the kernel holds used to keep an O_PATH descriptor of
 * its backing object for its whole life, and the kernel holds as many
 * inodes as it likes, so the daemon's descriptors had no bound: under a
 * limit of 1024, `ls` of a large directory failed with EMFILE.  Now each
 * inode keeps its object's file handle (name_to_handle_at, taken when
 * the inode is made, from the descriptor the lookup opened), and its
 * descriptor only while it is among the @max most recently used.  A
 * closed one is reopened with open_by_handle_at() on the object's device
 * (c->mounts: one O_RDONLY directory per device; it cannot be O_PATH),
 * which needs CAP_DAC_READ_SEARCH: the daemon normally runs as root.
 *
 * Algorithm: an entry is in one of three states, all under c->lock:
 *   closed   fd -1, refs 0, not on the LRU (reopened by fdc_get);
 *   cached   fd open, refs 0, on the LRU (closed by eviction);
 *   in use   fd open, refs > 0, not on the LRU (never closed).
 * fdc_get() takes a reference (reopening first, outside the lock; a
 * racing reopen of the same entry loses and closes its copy), fdc_put()
 * drops it and puts the entry at the LRU's head.  Whenever an entry
 * becomes cached, entries are closed from the LRU's tail until at most
 * @max are open or none is cached: descriptors in use are never closed,
 * so @open may exceed @max by the descriptors in use right now (bounded
 * by the worker threads and the open files).  If an open fails with
 * EMFILE or ENFILE (the limit was lowered under a running daemon, or
 * open files took it), fdc_shrink() halves the bound and the open is
 * tried once more.  A lookup of a known object opens its name anyway (to
 * learn what it is); fdc_offer() lets a closed entry take that descriptor
 * instead of reopening by handle later.
 *
 * Pinned entries: a reference that lives long.
 *   - The root: pinned at init, forever.
 *   - An inode with open files or directories: ops_file.c and ops_dir.c
 *     take one reference per open (open, create, opendir) and drop it at
 *     release: an open file may be unlinked (nlink 0), and some file
 *     systems refuse to decode the handle of an unlinked inode (ESTALE),
 *     while the kernel still sends getattr, setattr, xattr calls for it.
 *   - An object whose last name went away through the mount (unlink or
 *     rmdir, or the target of a rename that replaced it): ops_entry.c opens
 *     it by name before, and after the call, if its link count is 0 and the
 *     kernel still knows its inode, hands that descriptor to fdc_keep(),
 *     which keeps it until the inode is freed (a removed directory that
 *     is some process's working directory still gets getattr).
 * Why the name operations are safe otherwise: a handle names the object,
 * not a path, exactly as the O_PATH descriptor did.  rename (through the
 * mount or by someone else in BACKING) changes no handle.  link adds a
 * name; unlink of one of several names leaves the object reachable.  Only
 * the loss of the last name can make a handle stale, and that is covered
 * above when it happens through the mount.  When it happens in BACKING
 * behind our back, a later reopen fails with ESTALE, which the request
 * reports; before, the descriptor would have shown an object no name
 * leads to, which the kernel's next lookup drops anyway.  An inode number
 * reused by a new object never matches an old handle: handles carry the
 * generation.
 *
 * Fallback: where BACKING's file system has no handles (name_to_handle_at
 * says EOPNOTSUPP: procfs, sysfs-like pseudo file systems, some network
 * file systems) or where they do not decode reliably (FUSE file systems,
 * which decode only with the server's export support), or the daemon
 * lacks CAP_DAC_READ_SEARCH, fdc_init() says so and every entry keeps its
 * descriptor for its life, as before.  The same holds per device for
 * other file systems mounted below BACKING, and per object for one whose
 * handle cannot be taken.
 *
 * Locking: one mutex, c->lock, for the LRU, the counts, the mount table
 * and each entry's fd/refs/kept/prev/next.  Sections under it are short
 * (list moves; close() of an O_PATH descriptor at eviction, which does no
 * I/O); open_by_handle_at() and name_to_handle_at() run outside it.
 * Lock order: c->lock is innermost (itab->lock and hmm_inode->lock may be
 * held when it is taken; nothing is taken under it).
 */
#include "fs/fdcache.h"
#include "log/log.h"
#include "lib/lockcheck.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#define FUSE_SUPER_MAGIC 0x65735546

#define FDC_OPEN_FLAGS (O_PATH | O_NOFOLLOW | O_CLOEXEC)

size_t fdc_default_max(void)
{
	struct rlimit rl;
	size_t max = FDC_DEFAULT_MAX;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
	    rl.rlim_cur / 4 < max)
		max = (size_t)(rl.rlim_cur / 4);
	return max < FDC_MIN_MAX ? FDC_MIN_MAX : max;
}

/* @fd's handle, in a new allocation; NULL if it has none. */
static struct file_handle *handle_take(int fd)
{
	union fdc_handle_buf h;
	struct file_handle *fh;
	int mount_id;

	h.fh.handle_bytes = MAX_HANDLE_SZ;
	if (name_to_handle_at(fd, "", &h.fh, &mount_id, AT_EMPTY_PATH) < 0)
		return NULL;
	fh = malloc(sizeof(*fh) + h.fh.handle_bytes);
	if (fh)
		memcpy(fh, &h.fh, sizeof(*fh) + h.fh.handle_bytes);
	return fh;
}

/*
 * Can objects of directory @dirfd's device be reopened by handle?  Try it
 * with the directory's own handle.  Return: 0 and the mount descriptor in
 * *@mnt, or the errno that says no.
 */
static int handles_probe(int dirfd, int *mnt)
{
	char path[64];
	struct statfs sfs;
	struct file_handle *fh;
	int fd, err = 0;

	*mnt = -1;
	if (fstatfs(dirfd, &sfs) == 0 && sfs.f_type == FUSE_SUPER_MAGIC)
		return EOPNOTSUPP;	/* decodes only with export support */
	fh = handle_take(dirfd);
	if (!fh)
		return errno ? errno : ENOMEM;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", dirfd);
	*mnt = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (*mnt < 0)
		err = errno;
	else if ((fd = open_by_handle_at(*mnt, fh, FDC_OPEN_FLAGS)) < 0)
		err = errno;
	else
		close(fd);
	free(fh);
	if (err && *mnt >= 0) {
		close(*mnt);
		*mnt = -1;
	}
	return err;
}

static int mount_add_locked(struct fdcache *c, dev_t dev, int fd)
{
	struct fdc_mount *m;
	size_t cap;

	mutex_assert_held(&c->lock);
	if (c->nmounts == c->mounts_cap) {
		cap = c->mounts_cap ? c->mounts_cap * 2 : 4;
		m = realloc(c->mounts, cap * sizeof(*m));
		if (!m)
			return -ENOMEM;
		c->mounts = m;
		c->mounts_cap = cap;
	}
	c->mounts[c->nmounts++] = (struct fdc_mount){ .dev = dev, .fd = fd };
	return 0;
}

int fdc_init(struct fdcache *c, size_t max, int root_fd, dev_t root_dev)
{
	int mnt, ret;

	memset(c, 0, sizeof(*c));
	pthread_mutex_init(&c->lock, NULL);
	c->lru.prev = c->lru.next = &c->lru;
	c->max = max ? max : fdc_default_max();
	atomic_init(&c->reopens, 0);
	c->no_handles = handles_probe(root_fd, &mnt);
	if (c->no_handles)
		return 0;
	pthread_mutex_lock(&c->lock);	/* not shared yet; for the assertion */
	ret = mount_add_locked(c, root_dev, mnt);
	pthread_mutex_unlock(&c->lock);
	if (ret) {
		close(mnt);
		pthread_mutex_destroy(&c->lock);
		return -ENOMEM;
	}
	return 0;
}

void fdc_destroy(struct fdcache *c)
{
	for (size_t i = 0; i < c->nmounts; i++)
		if (c->mounts[i].fd >= 0)
			close(c->mounts[i].fd);
	free(c->mounts);
	c->mounts = NULL;
	c->nmounts = c->mounts_cap = 0;
	pthread_mutex_destroy(&c->lock);
}

int fdc_no_handles(struct fdcache *c)
{
	return c->no_handles;
}

static bool on_lru(const struct fdc_entry *e)
{
	return e->next != NULL;
}

static void lru_add_locked(struct fdcache *c, struct fdc_entry *e)
{
	mutex_assert_held(&c->lock);

	e->prev = &c->lru;
	e->next = c->lru.next;
	e->next->prev = e;
	c->lru.next = e;
}

static void lru_del_locked(struct fdc_entry *e)
{
	e->prev->next = e->next;
	e->next->prev = e->prev;
	e->prev = e->next = NULL;
}

/* Close cached descriptors from the LRU's tail down to the bound. */
static void evict_locked(struct fdcache *c)
{
	mutex_assert_held(&c->lock);

	while (c->open > c->max && c->lru.prev != &c->lru) {
		struct fdc_entry *e = c->lru.prev;

		lru_del_locked(e);
		close(e->fd);
		e->fd = -1;
		c->open--;
		c->evictions++;
	}
}

void fdc_set_max(struct fdcache *c, size_t max)
{
	pthread_mutex_lock(&c->lock);
	c->max = max ? max : fdc_default_max();
	evict_locked(c);
	pthread_mutex_unlock(&c->lock);
}

bool fdc_shrink(struct fdcache *c)
{
	size_t before, max;
	bool closed;

	pthread_mutex_lock(&c->lock);
	before = c->open;
	max = c->open / 2 < FDC_MIN_MAX ? FDC_MIN_MAX : c->open / 2;
	if (max < c->max) {
		c->max = max;
		log_warn("out of descriptors: max_fds lowered to "
			"%zu", max);
	}
	evict_locked(c);
	closed = c->open < before;
	pthread_mutex_unlock(&c->lock);
	return closed;
}

/*
 * The mount descriptor for objects on @dev, made from @fd if it is the
 * first directory seen there.  Return: the descriptor, or -1 (handles do
 * not work there, or no directory of that device was seen yet).
 */
static int mount_for(struct fdcache *c, int fd, dev_t dev, mode_t type)
{
	int mnt = -1;

	pthread_mutex_lock(&c->lock);
	for (size_t i = 0; i < c->nmounts; i++) {
		if (c->mounts[i].dev == dev) {
			mnt = c->mounts[i].fd;
			pthread_mutex_unlock(&c->lock);
			return mnt;
		}
	}
	if (type == S_IFDIR) {
		/* a new device is rare: probing under the lock is fine */
		if (handles_probe(fd, &mnt))
			log_notice("a file system below BACKING "
				"has no file handles; its inodes keep descriptors");
		if (mount_add_locked(c, dev, mnt) && mnt >= 0) {
			close(mnt);
			mnt = -1;
		}
	}
	pthread_mutex_unlock(&c->lock);
	return mnt;
}

void fdc_entry_init(struct fdcache *c, struct fdc_entry *e, int fd, dev_t dev,
		    mode_t type, bool pinned)
{
	*e = (struct fdc_entry){ .fd = fd, .mount_fd = -1 };
	if (pinned) {
		e->refs = 1;
		e->kept = true;
	} else if (!c->no_handles && (e->mount_fd = mount_for(c, fd, dev, type)) >= 0) {
		e->fh = handle_take(fd);	/* NULL: kept for good */
	}
	pthread_mutex_lock(&c->lock);
	c->open++;
	if (e->fh) {
		lru_add_locked(c, e);
		evict_locked(c);
	}
	pthread_mutex_unlock(&c->lock);
}

void fdc_entry_destroy(struct fdcache *c, struct fdc_entry *e)
{
	int fd;

	pthread_mutex_lock(&c->lock);
	if (on_lru(e))
		lru_del_locked(e);
	fd = e->fd;
	e->fd = -1;
	if (fd >= 0)
		c->open--;
	pthread_mutex_unlock(&c->lock);
	if (fd >= 0)
		close(fd);
	free(e->fh);
	e->fh = NULL;
}

/* @e's object opened by its handle; -errno. */
static int reopen(struct fdcache *c, struct fdc_entry *e)
{
	int fd;

	if (!e->fh)
		return -ESTALE;	/* cannot happen: such entries stay open */
	fd = open_by_handle_at(e->mount_fd, e->fh, FDC_OPEN_FLAGS);
	if (fd < 0 && (errno == EMFILE || errno == ENFILE) && fdc_shrink(c))
		fd = open_by_handle_at(e->mount_fd, e->fh, FDC_OPEN_FLAGS);
	return fd < 0 ? -errno : fd;
}

bool fdc_is_open(struct fdcache *c, struct fdc_entry *e)
{
	bool open;

	pthread_mutex_lock(&c->lock);
	open = e->fd >= 0;
	pthread_mutex_unlock(&c->lock);
	return open;
}

int fdc_get_open(struct fdcache *c, struct fdc_entry *e)
{
	int fd = -1;

	pthread_mutex_lock(&c->lock);
	if (e->fd >= 0) {
		if (on_lru(e))
			lru_del_locked(e);
		e->refs++;
		fd = e->fd;
	}
	pthread_mutex_unlock(&c->lock);
	return fd;
}

int fdc_get(struct fdcache *c, struct fdc_entry *e)
{
	int fd, spare = -1;

	pthread_mutex_lock(&c->lock);
	if (e->fd >= 0) {
		if (on_lru(e))
			lru_del_locked(e);
		e->refs++;
		fd = e->fd;
		pthread_mutex_unlock(&c->lock);
		return fd;
	}
	pthread_mutex_unlock(&c->lock);
	fd = reopen(c, e);
	if (fd < 0)
		return fd;
	pthread_mutex_lock(&c->lock);
	if (e->fd >= 0) {	/* another thread reopened it meanwhile */
		spare = fd;
		if (on_lru(e))
			lru_del_locked(e);
	} else {
		e->fd = fd;
		c->open++;
		atomic_fetch_add_explicit(&c->reopens, 1, memory_order_relaxed);
	}
	e->refs++;
	fd = e->fd;
	evict_locked(c);
	pthread_mutex_unlock(&c->lock);
	if (spare >= 0)
		close(spare);
	return fd;
}

void fdc_put(struct fdcache *c, struct fdc_entry *e)
{
	pthread_mutex_lock(&c->lock);
	if (!e->refs) {
		pthread_mutex_unlock(&c->lock);
		log_err("fdcache: put without get");
		return;
	}
	if (--e->refs == 0 && e->fh) {
		lru_add_locked(c, e);
		evict_locked(c);
	}
	pthread_mutex_unlock(&c->lock);
}

void fdc_offer(struct fdcache *c, struct fdc_entry *e, int fd)
{
	pthread_mutex_lock(&c->lock);
	if (e->fd < 0 && e->fh) {	/* closed: so on no list, unused */
		e->fd = fd;
		fd = -1;
		c->open++;
		lru_add_locked(c, e);
		evict_locked(c);
	}
	pthread_mutex_unlock(&c->lock);
	if (fd >= 0)
		close(fd);
}

void fdc_keep(struct fdcache *c, struct fdc_entry *e, int fd)
{
	pthread_mutex_lock(&c->lock);
	if (e->fd < 0) {
		e->fd = fd;
		c->open++;
		fd = -1;
	} else if (on_lru(e)) {
		lru_del_locked(e);
	}
	if (!e->kept) {
		e->kept = true;
		e->refs++;
	}
	pthread_mutex_unlock(&c->lock);
	if (fd >= 0)
		close(fd);
}

int fdc_open_handle(struct fdcache *c, dev_t dev, struct file_handle *fh)
{
	int mnt = -1, fd;

	pthread_mutex_lock(&c->lock);
	for (size_t i = 0; i < c->nmounts; i++)
		if (c->mounts[i].dev == dev)
			mnt = c->mounts[i].fd;
	pthread_mutex_unlock(&c->lock);	/* mount descriptors live to the end */
	if (mnt < 0)
		return -ESTALE;
	fd = open_by_handle_at(mnt, fh, FDC_OPEN_FLAGS);
	return fd < 0 ? -errno : fd;
}

bool fdc_let_go(struct fdcache *c, struct fdc_entry *e)
{
	int fd = -1;
	bool ok;

	pthread_mutex_lock(&c->lock);
	ok = e->fh && !e->kept;
	if (ok && e->fd >= 0 && !e->refs) {
		if (on_lru(e))
			lru_del_locked(e);
		fd = e->fd;
		e->fd = -1;
		c->open--;
	}
	pthread_mutex_unlock(&c->lock);
	if (fd >= 0)
		close(fd);
	return ok;
}

size_t fdc_open_count(struct fdcache *c)
{
	size_t n;

	pthread_mutex_lock(&c->lock);
	n = c->open;
	pthread_mutex_unlock(&c->lock);
	return n;
}

size_t fdc_max(struct fdcache *c)
{
	size_t n;

	pthread_mutex_lock(&c->lock);
	n = c->max;
	pthread_mutex_unlock(&c->lock);
	return n;
}

uint64_t fdc_reopens(struct fdcache *c)
{
	return atomic_load_explicit(&c->reopens, memory_order_relaxed);
}
