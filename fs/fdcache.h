/* SPDX-License-Identifier: MIT */
/*
 * fs/fdcache.h — a bounded LRU cache of the inode table's O_PATH
 * descriptors, reopened on demand by file handle (see fdcache.c).
 *
 * Each inode (fs/inode.h) embeds a struct fdc_entry.  Users of an inode's
 * backing object take a referenced descriptor with fdc_get() and give it
 * back with fdc_put(); a descriptor is closed only when nobody holds it,
 * it is the least recently used, and more than @max are open.  A closed
 * one is reopened by the handle kept since the inode was made.
 *
 * Lock order: fdcache->lock is innermost: it is taken under itab->lock
 * (fdc_keep, from itab_keep) and under hmm_inode->lock
 * (inode_cfile_get), and nothing is taken under it.
 */
#ifndef HMMFS_FS_FDCACHE_H
#define HMMFS_FS_FDCACHE_H

#include <fcntl.h>	/* struct file_handle (_GNU_SOURCE) */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * The default bound: a quarter of the soft limit on descriptors, at most
 * FDC_DEFAULT_MAX.  1024 descriptors keep about 1024 inodes' worth of
 * *at() calls free of reopens, enough for one large directory walk; the
 * rest of the limit is for open files (each holds its own), the cache's
 * I/O descriptors and whatever the limit is lowered to later.
 */
#define FDC_DEFAULT_MAX 1024
#define FDC_MIN_MAX 16	/* the bound never shrinks below this (fdc_shrink) */

/**
 * struct fdc_entry - one inode's backing descriptor.
 * @fd:    the O_PATH|O_NOFOLLOW descriptor, or -1 while closed; c->lock.
 * @refs:  users now (fdc_get), open files, and one for fdc_keep(); while
 *         not zero @fd stays open; c->lock.
 * @kept:  fdc_keep() took its reference (taken once, never dropped: the
 *         object may have no name left to be found by); c->lock.
 * @prev, @next: on c->lru while @fd is open, @refs is 0 and @fh is set;
 *         c->lock.
 * @fh:    the object's file handle; NULL when it has none (the fallback:
 *         @fd then stays open for the entry's life).  Immutable.
 * @mount_fd: the descriptor @fh is opened against (c->mounts); immutable.
 */
struct fdc_entry {
	int fd;
	unsigned int refs;
	bool kept;
	struct fdc_entry *prev, *next;
	struct file_handle *fh;
	int mount_fd;
};

/* A device seen below BACKING and the directory handles are opened on. */
struct fdc_mount {
	dev_t dev;
	int fd;		/* O_RDONLY|O_DIRECTORY: open_by_handle_at wants no O_PATH */
};

/**
 * struct fdcache - the cache.
 * @lock:    guards everything below but @reopens, and every entry's
 *           @fd, @refs, @kept, @prev, @next.
 * @lru:     list head; @lru.next is the most recently used.
 * @open:    entries whose @fd is open (cached, in use or kept for good).
 * @max:     the bound on @open that eviction keeps to, as far as entries
 *           not in use allow.
 * @mounts, @nmounts, @mounts_cap: one mount descriptor per device.
 * @no_handles: 0 when handles work on BACKING, else the errno that said
 *           they do not (every entry then keeps its descriptor).
 * @reopens: descriptors reopened by handle (stats: fd_reopens); atomic.
 * @evictions: descriptors closed by the bound; c->lock.
 */
struct fdcache {
	pthread_mutex_t lock;
	struct fdc_entry lru;
	size_t open;
	size_t max;
	struct fdc_mount *mounts;
	size_t nmounts, mounts_cap;
	int no_handles;
	_Atomic uint64_t reopens;
	uint64_t evictions;
};

/*
 * fdc_init() - set up @c with bound @max (0: the default) for BACKING's
 * root @root_fd on device @root_dev, and find out whether handles work
 * there (name_to_handle_at, then open_by_handle_at of the root's own
 * handle: BACKING's file system must support handles and the daemon needs
 * CAP_DAC_READ_SEARCH).  @root_fd stays the caller's.
 * Return: 0 or -ENOMEM.  Handles not working is not an error: see
 * fdc_no_handles().
 */
int fdc_init(struct fdcache *c, size_t max, int root_fd, dev_t root_dev);

/* Close the mount descriptors; every entry must be gone. */
void fdc_destroy(struct fdcache *c);

/* The default bound for the current soft limit on descriptors. */
size_t fdc_default_max(void);

/* Change the bound (0: the default); closes what is over it. */
void fdc_set_max(struct fdcache *c, size_t max);

/* 0 if handles work, else the errno of the probe (EOPNOTSUPP, EPERM...). */
int fdc_no_handles(struct fdcache *c);

/*
 * fdc_entry_init() - make @e own @fd, an O_PATH descriptor of an object on
 * device @dev (S_IFMT @type), and take its handle.  The descriptor is
 * cached at once, at the LRU's head (so another may be closed).  @pinned:
 * it is never closed (the root).  name_to_handle_at runs unlocked; only a
 * device seen the first time is probed under c->lock.
 */
void fdc_entry_init(struct fdcache *c, struct fdc_entry *e, int fd, dev_t dev,
		    mode_t type, bool pinned);

/* Close @e's descriptor (in use or not: the entry is going away). */
void fdc_entry_destroy(struct fdcache *c, struct fdc_entry *e);

/*
 * fdc_get() - @e's descriptor, referenced: reopened by handle if it was
 * closed.  Give it back with fdc_put().
 * Context: takes c->lock; open_by_handle_at runs without it.
 * Return: the descriptor, or -errno (-ESTALE: the object is gone).
 */
int fdc_get(struct fdcache *c, struct fdc_entry *e);

/* Drop a reference fdc_get() took.  Context: takes c->lock. */
/* Is @e's descriptor open now (its object alive, while it is)? */
bool fdc_is_open(struct fdcache *c, struct fdc_entry *e);

/*
 * The same as fdc_get(), but only if the descriptor is open now (no
 * reopen by handle): -1 otherwise.  A reference taken goes back with
 * fdc_put().
 */
int fdc_get_open(struct fdcache *c, struct fdc_entry *e);
void fdc_put(struct fdcache *c, struct fdc_entry *e);

/*
 * fdc_keep() - @e's object may have lost its last name: keep its
 * descriptor open until the entry goes.  @fd is an O_PATH descriptor of
 * the same object, consumed (kept if @e has none open, else closed).
 */
void fdc_keep(struct fdcache *c, struct fdc_entry *e, int fd);

/*
 * fdc_let_go() - @e's inode was forgotten and is to be kept dormant: close
 * its descriptor unless it is in use, so a dormant inode holds none (nor
 * a removed file's space).  Return: false if @e cannot be reopened by
 * handle (it has none, or is kept: its object lost its last name), and
 * so must not be kept.
 */
bool fdc_let_go(struct fdcache *c, struct fdc_entry *e);

/* Room for any file handle. */
union fdc_handle_buf {
	struct file_handle fh;
	char buf[sizeof(struct file_handle) + MAX_HANDLE_SZ];
};

/*
 * fdc_open_handle() - open @fh, a handle of an object on device @dev, as
 * an O_PATH descriptor.  Return: the descriptor, or -errno (-ESTALE: no
 * such object, or handles do not work on @dev).
 */
int fdc_open_handle(struct fdcache *c, dev_t dev, struct file_handle *fh);

/*
 * fdc_offer() - @fd, a fresh O_PATH descriptor of @e's object (a lookup
 * opened it by name), is consumed: it becomes @e's cached descriptor if
 * @e has none open, saving a reopen by handle, else it is closed.
 */
void fdc_offer(struct fdcache *c, struct fdc_entry *e, int fd);

/*
 * fdc_shrink() - an open failed with EMFILE or ENFILE: lower the bound to
 * half the descriptors now cached (not below FDC_MIN_MAX) and close the
 * surplus.  Return: true if a descriptor was closed (worth a retry).
 */
bool fdc_shrink(struct fdcache *c);

/* Statistics: descriptors open in entries, the bound, reopens. */
size_t fdc_open_count(struct fdcache *c);
size_t fdc_max(struct fdcache *c);
uint64_t fdc_reopens(struct fdcache *c);

#endif
