/* SPDX-License-Identifier: MIT */
/*
 * fs/inode.h — the inode table: FUSE node ids <-> backing objects.
 *
 * Every object the kernel knows by a node id is a struct hmm_inode, keyed by
 * the backing (st_dev, st_ino) and reaching it through an O_PATH descriptor,
 * never a path.  The descriptors live in a bounded cache (fdcache.h, in the
 * table): take one with itab_fd_get() around each use, put it back with
 * itab_fd_put(); a closed one is reopened by the object's file handle.
 *
 * Node ids.  Each inode has one (->nodeid; the root is FUSE_ROOT_ID), the
 * key of a second hash through which requests find it (itab_by_nodeid).
 * It stays valid until the kernel's lookup count drops to zero through
 * forget, which is exact: every reply that hands out an entry adds one
 * (itab_lookup_insert), every forget subtracts what it names; after that
 * it may stay valid as a dormant inode (itab_forget), for the kernel's
 * file handles, which name a node id and a generation.  Where BACKING is
 * the root of its file system and its handles are (inode number,
 * generation) with a 32-bit number (ext4, XFS, tmpfs), an object on it
 * gets the persistent node id generation << 32 | number and that
 * generation: a daemon mounted later gives it the same ones and can
 * reopen it from the node id alone (itab_open_key), so file handles
 * survive an unmount.
 * Other objects, and one whose persistent id is taken (a retired inode of
 * the same object), get a node id from a counter and a generation from
 * another, seeded per daemon so that an old handle never matches.
 *
 * Inode numbers: all of the mount is one st_dev to its users, but BACKING
 * may hold other file systems mounted inside it (and btrfs subvolumes are
 * devices of their own), whose inode numbers repeat those of BACKING.  So
 * the number reported (->fino) is BACKING's st_ino for objects on the
 * device of BACKING's root, and (n << 48 | st_ino) for the n-th other
 * device seen: unique as long as inode numbers fit in 48 bits, which is
 * logged once when they do not, and the same for the daemon's lifetime,
 * across forget and lookup, since device numbers are never forgotten.
 *
 * Locking: one mutex, itab->lock, guards the hash chains, the dormant
 * list and every ->nlookup, ->dormant and ->sleeping; lookups wait for a
 * sleeping inode on itab->slept (with itab->lock).  Inode fields other
 * than those are set before the inode is published and never change,
 * except ->kcache_* and ->own_changes, which ->lock guards.  The release
 * hook runs with no table lock held.
 * Lock order (the full list: cache/cache_int.h): itab->lock, then
 * hmm_inode->lock (never the other way round);
 * itab->lock, then itab->fdc.lock.
 */
#ifndef HMMFS_FS_INODE_H
#define HMMFS_FS_INODE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

#include "fs/fdcache.h"

/**
 * struct hmm_inode - one backing object the kernel holds a node id for.
 * @fde:       the backing object's O_PATH descriptor and file handle, in
 *             itab->fdc: use through itab_fd_get()/itab_fd_put().
 * @dev, @ino: the backing identity, the table key; immutable.
 * @fino:      the inode number reported to the kernel; immutable.
 * @type:      S_IFMT bits of the backing object; immutable.
 * @nlookup:   kernel lookup count; itab->lock.
 * @next:      hash chain, or the retired list; itab->lock.
 * @retired:   on itab->retired, not in a chain: a removed object whose
 *             number BACKING gave to another (itab_lookup_insert), or
 *             one the kernel must look up afresh (ops_file.c, open_kernel_stale);
 *             itab->lock.
 * @lock:      guards the cache_* fields and @own_changes.
 * @nodeid:    the node id handed to the kernel (see "Node ids" above);
 *             immutable once the inode is in the table.
 * @gen:       generation, sent with the node id in every entry: the
 *             kernel's file handles carry both; immutable likewise.
 * @dormant:   forgotten by the kernel and kept for its file handles (see
 *             itab_forget()); itab->lock.
 * @sleeping:  on its way to dormant: lookups wait (itab->slept);
 *             itab->lock.
 * @next_id:   chain of the node-id hash (itab->ids); itab->lock.
 * @dprev, @dnext: the dormant list, oldest first; itab->lock.
 * @kcache_mtime, @kcache_size, @kcache_valid: backing mtime and size when the
 *             file was last closed, to decide whether the kernel's page cache
 *             of it is still good at the next open (close-to-open); used
 *             when hmmfs runs without its own cache.
 * @own_changes: SETATTRs of ours changing BACKING's size or mtime now
 *             (ops_file.c): an open meanwhile must not take them for someone
 *             else's; @lock.
 * @cfile:     the page cache's state for this file (struct cfile), set once
 *             under @lock at the first open, freed with the inode through
 *             itab->release.  Load with acquire.
 * @atime_due: under relatime, the next read sets atime (atime.c); atomic.
 * @nopen:     open files of the inode (struct hmm_file); atomic.
 */
struct hmm_inode {
	struct fdc_entry fde;
	dev_t dev;
	ino_t ino;
	ino_t fino;
	mode_t type;
	uint64_t nlookup;
	struct hmm_inode *next;
	bool retired;
	uint64_t nodeid;
	uint32_t gen;
	bool dormant, sleeping;
	struct hmm_inode *next_id;
	struct hmm_inode *dprev, *dnext;
	pthread_mutex_t lock;
	struct timespec kcache_mtime;
	off_t kcache_size;
	int kcache_valid;
	int own_changes;
	void *_Atomic cfile;
	_Atomic int atime_due;
	_Atomic int nopen;
};

/**
 * struct itab - the table.
 * @lock:    guards @buckets, @nbuckets, @count and every inode's
 *           ->nlookup and ->next.
 * @slept:   broadcast when a sleeping inode is dormant or freed.
 * @buckets: hash chains, keyed by (dev, ino).
 * @ids:     every inode but the root, retired ones too, chained by node
 *           id in @nid_buckets chains; @nids of them.
 * @dormant_first, @dormant_last, @ndormant: the dormant inodes, oldest
 *           first, and how many; at most @dormant_max (0: none are kept).
 * @next_gen, @next_key: the next counter generation and node id.
 * @key_type, @key_len: the handle layout persistent node ids are made
 *           from (BACKING root's); type 0: none.
 * @count:   inodes in the table, the root excluded.
 * @root:    the root inode: never in a chain, never freed by forget.
 * @devs:    devices other than the root's seen so far, for inode numbers;
 *           @devs[i] has prefix i + 1.  Guarded by @lock; never shrinks.
 * @ndevs, @devs_cap: used and allocated entries of @devs.
 * @wide_logged: an inode number too wide for its prefix was logged.
 * @retired: inodes the kernel still holds whose number now names another
 *           object; freed at forget, or at destroy.
 * @release: called for an inode about to be freed (before its fd closes),
 *           with @release_arg; may be NULL.
 * @fdc:     the inodes' backing descriptors (its own lock).
 */
struct itab {
	pthread_mutex_t lock;
	pthread_cond_t slept;
	struct hmm_inode *retired;
	struct hmm_inode **buckets;
	struct hmm_inode **ids;
	size_t nbuckets, nid_buckets, nids;
	struct hmm_inode *dormant_first, *dormant_last;
	size_t ndormant, dormant_max;
	uint32_t next_gen;
	uint64_t next_key;
	int key_type;
	unsigned int key_len;
	size_t count;
	struct hmm_inode root;
	dev_t *devs;
	size_t ndevs, devs_cap;
	int wide_logged;
	void (*release)(void *arg, struct hmm_inode *inode);
	void *release_arg;
	struct fdcache fdc;
};

/* Handle kinds a persistent node id is made from (see "Node ids"). */
#define ITAB_FH_INO32_GEN	1	/* FILEID_INO32_GEN: ext4, XFS; tmpfs */
#define ITAB_FH_XFS_INO64_GEN	0x81	/* XFS with 64-bit numbers */

/*
 * Take ownership of @root_fd (an O_PATH fd of BACKING); the descriptor
 * cache gets its default bound (fdc_set_max() changes it) and finds out
 * whether BACKING has handles (fdc_no_handles()).  Return 0 or -errno.
 */
int itab_init(struct itab *t, int root_fd, const struct stat *st);

/* Close every descriptor and free every inode. */
void itab_destroy(struct itab *t);

/**
 * itab_lookup_insert() - find or add the inode for @st, and count a lookup.
 * @t:   the table.
 * @fd:  an O_PATH descriptor of the object; always consumed (kept by a new
 *       inode, or by a known one whose cached descriptor was closed;
 *       else closed).
 * @st:  its attributes (dev, ino, mode).
 * @out: the inode, with ->nlookup raised by one.
 *
 * Context: takes and releases t->lock.
 * Return: 0, or -ENOMEM (and @fd is closed).
 */
/*
 * itab_retire_inode() - take @in out of the table: the next lookup of its
 * object makes a new inode, with a new node id; the kernel's lookups of
 * @in keep it until they are forgotten.
 */
void itab_retire_inode(struct itab *t, struct hmm_inode *in);

int itab_lookup_insert(struct itab *t, int fd, const struct stat *st,
		       struct hmm_inode **out);

/**
 * itab_forget() - drop @n kernel lookups; at zero the inode goes dormant
 * (see below) or is freed.
 * Context: takes and releases t->lock.  Forgetting more than was looked up
 * is a kernel bug; it is logged and the count clamps at zero.
 */
void itab_forget(struct itab *t, struct hmm_inode *inode, uint64_t n);

/*
 * Dormant inodes.  The kernel forgets inodes whenever it likes, but file
 * handles it gave out (name_to_handle_at, NFS export) name the node id and
 * generation, and after a forget it resolves one by looking up "." in
 * that node id.  So an inode whose count drops to zero keeps its node
 * id, generation and backing file handle, with no descriptor and no cache
 * state (the release hook runs), while its object can be reopened by
 * handle: up to @max of them, the oldest freed first.  An inode without a
 * handle, or kept for an object that lost its last name, is freed as
 * before.  A lookup of a dormant inode's object wakes it; one that comes
 * while the inode is on its way (->sleeping) waits for it.
 * @max 0 (the default) keeps none.
 */
void itab_set_dormant_max(struct itab *t, size_t max);

/*
 * itab_get_by_id() - the inode whose node id is @id, dormant or not, with
 * ->nlookup raised by one; NULL if there is none (freed, or never made).
 * Context: takes and releases t->lock; waits while the inode sleeps.
 */
struct hmm_inode *itab_get_by_id(struct itab *t, uint64_t id);

/* Dormant inodes now (for tests and statistics). */
size_t itab_dormant_count(struct itab *t);

/*
 * itab_by_nodeid() - the inode of node id @id (not the root's), or NULL;
 * no count is raised: for requests on node ids the kernel holds.
 * Context: takes and releases t->lock.
 */
struct hmm_inode *itab_by_nodeid(struct itab *t, uint64_t id);

/*
 * itab_persist() - give objects on BACKING's device persistent node ids
 * from now on, if its handles are of a kind they can be made from.  Only
 * where BACKING is the root of its file system: a node id opens any
 * object of it (itab_open_key).  Return: whether they are given.
 */
bool itab_persist(struct itab *t);

/*
 * itab_open_key() - open the object whose persistent node id is @key (an
 * O_PATH descriptor), with no inode in the table.  Return: the descriptor
 * or -errno (-ESTALE: no such object, or no persistent node ids).
 */
int itab_open_key(struct itab *t, uint64_t key);

/**
 * itab_ino() - the inode number reported for backing object (@dev, @ino).
 * For directory entries, which come without a lookup.
 * Context: takes and releases t->lock.
 */
ino_t itab_ino(struct itab *t, dev_t dev, ino_t ino);

/* Number of inodes other than the root (for tests and statistics). */
size_t itab_count(struct itab *t);

/*
 * itab_keep() - the object (@dev, @ino) lost its last name through the
 * mount; if the kernel still knows its inode, keep @fd (an O_PATH
 * descriptor of it, consumed) as that inode's until it is freed: the
 * handle may no longer open it (fdcache.c, "Pinned entries").
 * Context: takes and releases t->lock, then t->fdc.lock under it.
 */
void itab_keep(struct itab *t, dev_t dev, ino_t ino, int fd);

/*
 * itab_fd_get() - @inode's backing O_PATH descriptor, referenced; give it
 * back with itab_fd_put().  An inode with open files keeps one reference
 * per open file.  Return: the descriptor or -errno (-ESTALE: the object
 * is gone from BACKING).
 */
static inline int itab_fd_get(struct itab *t, struct hmm_inode *inode)
{
	return fdc_get(&t->fdc, &inode->fde);
}

static inline void itab_fd_put(struct itab *t, struct hmm_inode *inode)
{
	fdc_put(&t->fdc, &inode->fde);
}

/* BACKING's root: pinned, so usable without get and put. */
static inline int itab_root_fd(struct itab *t)
{
	return t->root.fde.fd;
}

#endif
