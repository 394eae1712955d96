/* SPDX-License-Identifier: MIT */
/*
 * cache/cache_int.h — structures shared by the files of cache/, and the
 * one lock-order list of hmmfs.
 *
 * Lock order (outermost first), with who takes each lock.  fs/ and the
 * device backends keep the same list: this is the only copy, and
 * docs/ARCHITECTURE.md points here.
 *
 *  fs/ (before any lock of the cache's)
 *    itab->lock          the inode table (fs/inode.c)
 *      hmm_inode->lock   an inode's close-to-open fields and the attach of
 *                        its cfile (fs/ops_file.c); the cache's locks come after
 *                        it (attach takes files_lock)
 *        fdc->lock       the descriptor cache (fs/fdcache.c), innermost:
 *                        under itab->lock in itab_keep(), under
 *                        hmm_inode->lock when a cfile is attached
 *
 *  cache/
 *    cache->files_lock   every cfile, attached or detached: the list, the
 *                        identity table, attach counts, the dedupe cursor
 *                        (lifetime.c, ksm.c); taken with no page lock held;
 *                        inside it only cfile->lock and idle_lock
 *    0. cfile->trunc_lock  writer-preferring rwlock: cache_truncate()
 *                        exclusive; cache_write() and
 *                        cache_file_change_begin().._end() shared
 *                        (truncate.c, write.c, coherence.c);
 *                        nothing that holds a page lock or another lock
 *                        takes it
 *    1. page lock        PG_locked: cache_page_lock(), cache_page_trylock()
 *                        (page.h); one at a time, except a reader's batch of
 *                        fresh pages and migration/devop batches, which lock
 *                        in ascending index order (migrate.c), and a shared
 *                        frame's move, which holds its batch and only tries
 *                        the frame's other pages (ksm.c)
 *    2. cfile->lock      a file's size, mtime, dirty and writeback counts,
 *                        latched error (coherence.c, truncate.c, file.c,
 *                        write.c, writeback.c, lifetime.c)
 *    3. cache->lru_lock  the active, inactive and device lists (lru.c,
 *                        migrate.c); eviction holds it and only tries page
 *                        locks, so it never waits against this order
 *    4. cache->dirty_lock  the list of files with dirty pages, the
 *                        flusher's conditions (writeback.c)
 *    5. ksm->lock        dedupe tables and counts; only page trylocks
 *                        inside (ksm.c)
 *    6. leaves, nothing taken inside them: the frame pool's lock
 *                        (frame.c), each device unit's frame lock
 *                        (device/device.c), the bounce pool's per-CPU shard
 *                        locks (bounce/pool.c; alone, or under its wait_lock
 *                        by a caller about to sleep), hostsim's queue lock,
 *                        devra->lock (devra.c), cache->rep_lock (replica.c;
 *                        page removal collapses replicas with lru_lock held;
 *                        replica eviction holds it and only tries page
 *                        locks), cache->idle_lock (lifetime.c; page removal
 *                        queues a file with the page locked and lru_lock
 *                        held), log_lock (log/log.c)
 *    7. inside device/ backends, under nothing of the cache's but the page
 *                        locks a copy's caller holds: a fence record's lock
 *                        (cuda.c, opencl.c; held while queueing on the
 *                        fence, and by the xxh64 op across its own waits),
 *                        then opencl's per-queue klock (a queue's kernel
 *                        objects, from setting their arguments to the
 *                        enqueue); a unit's dev_rec_pool lock (device.c) is
 *                        a leaf
 *
 * A thread that waits for a frame holds no page lock it could be waited on
 * for (readers hold only fresh, not-yet-read pages, which no writer or
 * writeback waits for).  The bounce pool is a resource, not a lock:
 * buffers are taken after any wait for a page lock or writeback and never
 * while holding other buffers.  The page index is read under RCU without
 * locks.
 */
#ifndef HMMFS_CACHE_CACHE_INT_H
#define HMMFS_CACHE_CACHE_INT_H

#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <urcu-bp.h>

#include "io/io.h"
#include "bounce/pool.h"
#include "device/device.h"
#include "cache/wp.h"
#include "cache/cache.h"
#include "cache/page.h"
#include "lib/list.h"
#include "lib/time.h"

/**
 * struct cpage - one cached page.
 * @ps:       state word (page.h): lock, uptodate, dirty, writeback, ...
 * @ref:      references: 1 held by the file's index while the page is in
 *            it, 1 per user.  Removal freezes it from 1 to 0.
 * @index:    page number in the file; immutable.
 * @file:     the file; immutable.
 * @frame:    the host frame while host-resident (NULL on the device).
 * @daddr:    the device frame while PG_device (else DEV_ADDR_NONE).
 *            Both change only under the page lock, during a migration;
 *            a reader without the lock reads them inside an RCU read-side
 *            section after checking PG_device (see migrate.c).
 * @dirtied_ms: when the page last turned dirty (monotonic ms); page lock.
 * @dirty_from, @dirty_to: while PG_dirty, the bytes [from, to) of the page
 *            that are newer than BACKING, the only ones writeback writes
 *            (another writer of BACKING may have changed the rest);
 *            from >= to: none (already written, see writeback.c).  Page
 *            lock; stable while under writeback.
 * @migrated_ms: when it last changed tier; page lock.
 * @migrations: tier changes in the current thrash window; page lock.
 * @cpu_reads: CPU accesses (reads served by bounce, writes) since it
 *            reached the device (adaptive promotion); relaxed atomic.
 * @shared:   the frame shared by dedupe while PG_shared (cache/ksm.c);
 *            page lock.
 * @shared_link: on @shared's list of pages; ksm->lock.
 * @ksm_hash: the hash the dedupe scanner last saw; @ksm_pass: it saw one.
 *            Page lock.
 * @rep_units: bit k: a read-only replica is on device unit k (relaxed
 *            atomic, for residency; written under the page lock).
 * @replicas: those replicas, a chain (replica.c); page lock.
 * @lru:      the host active or inactive list, or the device list;
 *            cache->lru_lock.
 * @rcu:      deferred free after removal.
 */
struct cpage {
	struct page_state ps;
	_Atomic int ref;
	uint64_t index;
	struct cfile *file;
	_Atomic(void *) frame;
	_Atomic dev_addr_t daddr;
	uint64_t dirtied_ms;
	uint32_t dirty_from, dirty_to;
	uint64_t migrated_ms;
	unsigned int migrations;
	_Atomic unsigned int cpu_reads;
	struct ksm_frame *shared;
	struct clist shared_link;
	uint64_t ksm_hash;
	uint32_t ksm_pass;
	_Atomic uint32_t rep_units;
	struct replica *replicas;
	struct clist lru;
	struct rcu_head rcu;
};

/*
 * A page's frame and device address: relaxed loads, since PG_device
 * (set and cleared with release, tested with acquire) orders them.
 */
static inline void *page_frame(const struct cpage *p)
{
	return atomic_load_explicit(&((struct cpage *)p)->frame, memory_order_relaxed);
}

static inline dev_addr_t page_daddr(const struct cpage *p)
{
	return atomic_load_explicit(&((struct cpage *)p)->daddr, memory_order_relaxed);
}

/* One file's share of some cache_counters (cache_file_get_stats()). */
struct file_counters {
	_Atomic uint64_t hits, misses, readahead_pages;
	_Atomic uint64_t bounce_reads, bounce_writes;
	_Atomic uint64_t written_bytes, writeback_bytes;
	_Atomic uint64_t migrations_to_device, migrations_to_host;
};

/**
 * struct cfile - the cache's state for one backing file.
 * @cache:   the cache.
 * @root:    the page index: a radix tree of struct rnode (index.c).
 * @fd:      descriptor for backing I/O, or -1 while the file is detached
 *           and clean (lifetime.c): it changes only then, when no I/O on
 *           the file can be in flight.
 * @direct:  @fd is O_DIRECT.
 * @read_run: the most pages one backing read of a miss may cover
 *           (file.c, page_runs_build()); set with @fd.
 * @bfd:     a buffered descriptor of the same file when @fd is O_DIRECT,
 *           for writes of part of a page and small batches (writeback.c),
 *           opened on first use under @lock, closed with @fd; or -1.
 * @lock:    guards everything below.
 * @trunc_lock: a truncate (cache_truncate) takes it exclusive: the new
 *           size, the pages dropped and BACKING cut as one step.  Writes
 *           (cache_write) and BACKING changes (cache_file_change_begin to
 *           _end) take it shared, so each happens wholly before or after a
 *           truncate.  Two truncates at once could cut BACKING in the
 *           other order than they set @size (BACKING 1000 bytes long under
 *           a cache that says 0); a write landing inside one kept its size
 *           and lost its pages (64 KiB of zeros, BACKING empty).  The
 *           kernel orders both for us except an O_TRUNC open without
 *           writeback_cache.  Writer-preferring, so a stream of writes
 *           does not starve a truncate.  Taken before any page lock and
 *           @lock.
 * @size:    the file size as the cache sees it.
 * @mtime:   when the cache last changed data, which BACKING is given once
 *           the file is clean (writeback.c); 0: BACKING's own mtime stands.
 * @seen_size, @seen_mtime: BACKING's size and mtime the last time the
 *           cache wrote it or looked (close-to-open checks).
 * @outside_changed: writeback found BACKING changed by someone else
 *           before writing over it (file_note_outside_change); the next
 *           revalidation drops the clean pages and takes BACKING's size.
 * @kernel_stale: a revalidation other than an open's (a getattr) took
 *           an outside change: the next open must still tell the kernel,
 *           whose copy of the file that getattr could not drop.
 * @own_changes: hmmfs's own changes of BACKING outside writeback in
 *           flight (truncate, fallocate, copy_file_range, times); while
 *           any is, BACKING's state is ours, never someone else's.
 * @nr_dirty: dirty pages of this file.
 * @nr_writeback: pages of this file taken for writeback whose write and
 *           follow-up (size cut, seen_*) are not done yet.
 * @oldest_dirty_ms: when the oldest of them turned dirty.
 * @wb_err:  a writeback error not yet reported (fsync or close).
 * @dirty_link: on cache->dirty_files while @nr_dirty > 0; dirty_lock.
 * @users:   the flusher's references (it works on a file without its
 *           lock); cache_file_close() waits for them.
 * @owner:   the fs layer's name for the file (its inode number), handed
 *           to the invalidation hook; set once after open.
 * @uid:     the file's owner (st_uid) for dedupe's scope; stored before
 *           cache_file_set_uid() locks the pages it unshares, read by
 *           the scanner with the page locked (the page lock orders them).
 * @file_link: on cache->files; cache->files_lock.
 * @rcu:     deferred free of the index and the structure at close.
 * @dev, @ino: the backing object's identity, the key of cache->ftab;
 *           immutable.
 * @hnext:   cache->ftab chain; cache->files_lock.
 * @hashed:  in cache->ftab; files_lock.
 * @attached: kernel inodes using the file (lifetime.c); changed under
 *           files_lock, atomic so page removal may test it.  0: detached,
 *           kept for its pages until the cache's own policy drops them.
 * @holds:   open files (and setattrs) using @fd: it stays open while
 *           there are any; @lock.
 * @nr_pages: pages in the index (atomic; host and device).
 * @content_gen: bumped after any cached byte of the file changes or its
 *           page goes (file_content_changed()): bytes copied ahead of a
 *           read (devra.c) are good only while it has not moved.
 * @stuck:   dirty pages the last writeback of the file left dirty
 *           because it failed (counted in cache->nr_stuck); @lock.
 * @wb_retry_ms: the flusher's backoff for a failing file; @lock.
 * @idle_link: on cache->idle_files, or empty; cache->idle_lock.
 * @ctr:     the file's own counters (hmmfsctl stats FILE); relaxed atomics.
 * @hlen, @htype, @handle: the object's file handle (name_to_handle_at),
 *           which names one object for its lifetime (the inode number
 *           plus a generation): a reused inode number has another.
 *           @hlen 0: BACKING gives no handles.  Immutable.
 */
struct cfile {
	struct cache *cache;
	_Atomic(void *) root;
	int fd;
	int direct;
	unsigned int read_run;
	int bfd;
	pthread_mutex_t lock;
	pthread_rwlock_t trunc_lock;
	off_t size;
	struct timespec mtime;
	off_t seen_size;
	struct timespec seen_mtime;
	bool outside_changed;
	bool kernel_stale;
	int own_changes;
	uint64_t nr_dirty;
	uint64_t nr_writeback;
	_Atomic uint64_t oldest_dirty_ms;
	int wb_err;
	struct clist dirty_link;
	_Atomic int users;
	uint64_t owner;
	_Atomic uint32_t uid;
	struct clist file_link;
	struct rcu_head rcu;
	dev_t dev;
	ino_t ino;
	struct cfile *hnext;
	bool hashed;
	_Atomic int attached;
	unsigned int holds;
	_Atomic uint64_t nr_pages;
	_Atomic uint64_t content_gen;
	uint64_t stuck;
	uint64_t wb_retry_ms;
	struct clist idle_link;
	struct file_counters ctr;
	unsigned int hlen;
	int htype;
	unsigned char handle[];
};

/**
 * struct frame_pool - host page frames, carved from one arena.
 * @base:    the arena, max_frames * page_size bytes, mapped lazily.
 * @lock:    guards @free, @nfree, @bump, @frees and @waiters.
 * @freed:   signalled by frame_free() when someone waits (CLOCK_MONOTONIC).
 * @free:    stack of free frame numbers.
 * @bump:    frames never handed out yet start here (untouched memory
 *           costs no RSS).
 * @frees:   frames freed so far (frame_wait_freed() compares it); changed
 *           under @lock, read without it by frame_frees().
 * @waiters: threads in frame_wait_freed().
 */
struct frame_pool {
	char *base;
	size_t page_size;
	size_t max_frames;
	pthread_mutex_t lock;
	pthread_cond_t freed;
	uint32_t *free;
	size_t nfree;
	size_t bump;
	_Atomic uint64_t frees;
	unsigned int waiters;
};

/* Counters; relaxed atomics, read by cache_get_stats(). */
struct cache_counters {
	_Atomic uint64_t hits, misses, readahead_pages, evictions;
	_Atomic uint64_t writeback_bytes, written_bytes, backing_reads, backing_writes;
	_Atomic uint64_t throttled;
	_Atomic uint64_t migrations_to_device, migrations_to_host;
	_Atomic uint64_t bounce_reads, bounce_writes, device_faults;
	_Atomic uint64_t device_evictions, thrash_holds;
	_Atomic uint64_t writeback_errors;
	_Atomic uint64_t device_readahead;
};

/* What CPU access to a device-resident page does (-o migrate=). */
enum migrate_policy {
	MIGRATE_BOUNCE,		/* serve it through a bounce buffer, always */
	MIGRATE_PROMOTE,	/* move it back to the host first */
	MIGRATE_ADAPTIVE,	/* bounce, but promote pages the CPU reads often */
};

/**
 * struct cache - the page cache.
 * @cfg:         the configuration (sizes already checked).
 * @page_shift:  log2(page_size).
 * @frames:      host frames.
 * @io:          the backing I/O engine.
 * @lru_lock:    guards @active, @inactive, @nr_active and every page's ->lru.
 * @active, @inactive: eviction lists (see lru.c).
 * @nr_pages:    pages in the cache (atomic).
 * @dirty_lock:  guards @dirty_files, @stop, and pairs with @flush_cond and
 *               @clean_cond.
 * @nr_dirty, @nr_writeback: pages (atomic).
 * @dirty_files: files with dirty pages.
 * @flusher:     the flusher thread; @flush_cond wakes it, @clean_cond wakes
 *               throttled writers.
 * @last_wb_err: error of the flusher's last pass that made no progress (a
 *               writer over the limit gets it instead of waiting forever).
 * @dev:         the device tier, or NULL (device=none).
 * @bounce:      bounce buffers (with @dev only).
 * @policy:      -o migrate=.
 * @dev_lru:     per device unit, its resident pages, coldest at the tail;
 *               lru_lock.
 * @nr_dev_pages: pages on the device tier (atomic); @nr_unit_pages: on
 *               each unit (dev_pages_inc/_dec keep both).
 * @rep_lock:    guards @rep_lru; a leaf (page removal, which collapses
 *               replicas, runs with lru_lock held).
 * @rep_seq:     numbers replicating requests (a request never evicts the
 *               replicas it made itself).
 * @rep_lru:     per unit, its replicas (struct replica), oldest at the
 *               tail, the first to go when the unit is full; @rep_lock.
 * @nr_unit_replicas, @unit_replica_drops: per unit, replicas now, and
 *               replicas dropped (evicted or collapsed) so far (atomic).
 * @files_lock:  guards @files (every cfile, attached or detached), @ftab,
 *               @nr_files, @nr_detached and the dedupe cursor.
 * @ftab, @ftab_size: hash of every cfile by (dev, ino) (lifetime.c).
 * @nr_files, @nr_detached: cfiles in @ftab, and of those the detached.
 * @idle_lock:   guards @idle_files and every ->idle_link; a leaf lock.
 * @idle_files:  files that may give up their descriptor, or (detached,
 *               with no page left) be freed: the flusher looks at them
 *               (cache_files_sweep).
 * @nr_stuck:    sum of every file's ->stuck (atomic).
 * @nr_fds:      files' backing descriptors open now (atomic).
 * @ksm:         the dedupe scanner (cache/ksm.c).
 */
struct cache {
	struct cache_config cfg;
	unsigned int page_shift;
	size_t bg_pages, limit_pages;
	struct frame_pool frames;
	struct io_engine *io;
	pthread_mutex_t lru_lock;
	struct clist active, inactive;
	size_t nr_active;
	_Atomic size_t nr_pages;
	pthread_mutex_t dirty_lock;
	_Atomic size_t nr_dirty, nr_writeback;
	struct clist dirty_files;
	pthread_t flusher;
	pthread_cond_t flush_cond, clean_cond;
	int stop;
	int started;
	int last_wb_err;
	struct device *dev;
	struct bounce_pool *bounce;
	enum migrate_policy policy;
	struct clist dev_lru[DEV_MAX_UNITS];
	_Atomic size_t nr_dev_pages;
	_Atomic size_t nr_unit_pages[DEV_MAX_UNITS];
	pthread_mutex_t rep_lock;
	_Atomic uint64_t rep_seq;
	struct clist rep_lru[DEV_MAX_UNITS];
	_Atomic size_t nr_unit_replicas[DEV_MAX_UNITS];
	_Atomic uint64_t unit_replica_drops[DEV_MAX_UNITS];
	pthread_mutex_t files_lock;
	struct clist files;
	struct cfile **ftab;
	size_t ftab_size;
	size_t nr_files, nr_detached;
	pthread_mutex_t idle_lock;
	struct clist idle_files;
	_Atomic uint64_t nr_stuck;
	_Atomic uint64_t nr_fds;
	struct ksm *ksm;
	struct cache_counters ctr;
};

static inline uint64_t cache_now_ms(void)
{
	return mono_ms();
}

/* A page now lives at device address @a, or no longer does. */
static inline void dev_pages_inc(struct cache *c, dev_addr_t a)
{
	atomic_fetch_add(&c->nr_dev_pages, 1);
	atomic_fetch_add(&c->nr_unit_pages[dev_addr_unit(a)], 1);
}

static inline void dev_pages_dec(struct cache *c, dev_addr_t a)
{
	atomic_fetch_sub(&c->nr_dev_pages, 1);
	atomic_fetch_sub(&c->nr_unit_pages[dev_addr_unit(a)], 1);
}

#define ctr_inc(c, name, n) \
	atomic_fetch_add_explicit(&(c)->ctr.name, (n), memory_order_relaxed)

/* Count in the cache's counter and in file @f's of the same name. */
#define fctr_inc(f, name, n) do {					\
	ctr_inc((f)->cache, name, n);					\
	atomic_fetch_add_explicit(&(f)->ctr.name, (n), memory_order_relaxed); \
} while (0)

/* frame.c */
int frame_pool_init(struct frame_pool *fp, size_t page_size, size_t max_frames);
void frame_pool_destroy(struct frame_pool *fp);
void *frame_alloc(struct frame_pool *fp);
void frame_free(struct frame_pool *fp, void *frame);
/* How many frames were freed so far: the @seen of frame_wait_freed(). */
uint64_t frame_frees(struct frame_pool *fp);
/* Sleep until a frame is freed after @seen was read, or @ms pass. */
void frame_wait_freed(struct frame_pool *fp, uint64_t seen, unsigned int ms);

/* lru.c */
void lru_add(struct cache *c, struct cpage *p);
void lru_del_locked(struct cache *c, struct cpage *p);
size_t lru_evict(struct cache *c, size_t want);

/*
 * Contiguous pages go to BACKING as one vectored request of at most this
 * many pages (1 MiB of 4 KiB pages): O_DIRECT I/O one page at a time is
 * bound by the device's request rate.
 */
#define CACHE_MAX_RUN 256

/**
 * struct page_runs - pages cut into runs of consecutive indexes.
 * @reqs:  one request per run; ->priv is the run's first position in the
 *         page array, ->iovcnt (or 1) its length.
 * @iovs:  one iovec per page.
 * @tail_fd: the buffered descriptor for writes of part of a page and
 *         small batches (writeback.c: file_tail_fd(), the file's own,
 *         not closed here), else -1.
 */
struct page_runs {
	struct io_req *reqs;
	struct iovec *iovs;
	size_t nreqs;
	int tail_fd;
};

/* file.c */
/* Room for requests over @n pages, none yet; 0 or -ENOMEM. */
int page_runs_alloc(struct page_runs *r, size_t n);
int page_runs_build(struct cfile *f, struct cpage **pp, void *const *data,
		    size_t n, int op, struct page_runs *r);
void page_runs_free(struct page_runs *r);
size_t page_run_len(const struct io_req *req);

/* index.c */
struct cpage *index_lookup(struct cfile *f, uint64_t index);
struct cpage *index_insert(struct cfile *f, struct cpage *p);
void index_remove(struct cfile *f, struct cpage *p);
int index_for_each(struct cfile *f, uint64_t first, uint64_t last,
		   int (*fn)(struct cpage *p, void *arg), void *arg);
void index_destroy(struct cfile *f);

/* file.c */
struct cpage *page_lookup_get(struct cfile *f, uint64_t index);
void page_put(struct cpage *p);
int page_remove_locked(struct cpage *p);
void page_free_deferred(struct cpage *p);
int file_collect_pages(struct cfile *f, uint64_t first, uint64_t last,
		       uint32_t need_flags, struct cpage ***out, size_t *count);
bool page_get_unless_zero(struct cpage *p);
void *cache_frame_get(struct cache *c, bool may_wait);
/*
 * Find page @index of @f, or insert a new one (locked, not uptodate,
 * *@created set); either way referenced.  Without @may_wait, NULL rather
 * than wait for a frame.  Used by the read and write paths.
 */
struct cpage *page_find_or_create(struct cfile *f, uint64_t index,
				  bool *created, bool may_wait);
/*
 * Read pages @pp (locked, not uptodate, in index order) from BACKING in
 * one batch; bytes past EOF read as zeros.  The caller marks them
 * uptodate and unlocks them.  Return: 0 or -errno.
 */
int pages_read(struct cfile *f, struct cpage **pp, size_t n);
void file_touch_mtime(struct cfile *f);

/* read.c */
size_t read_copies_add(struct dev_copy *cps, size_t n, dev_addr_t src,
		       char *dst, size_t len);
void read_vec_iov_add(struct cache_read_vec *v, char *p, size_t n);
int file_populate(struct cfile *f, uint64_t first, uint64_t last,
		  struct cpage ***out, size_t *count);

/* readahead.c */
/*
 * The readahead window, in pages, of a read of [@off, @off + @len) on the
 * open file of @ra: doubled (up to 1 MiB) if it starts where the last
 * read ended, else reset to 0.  0 without @ra.
 */
unsigned int ra_update(struct cache *c, struct cache_ra *ra, off_t off,
		       size_t len);
/*
 * Readahead, in pages, for a miss at @first (a request to @last) that
 * follows a run of cached pages at least as long as the request: that
 * run's length (capped); else 0, and 0 without @ra.
 */
unsigned int ra_context(struct cfile *f, struct cache_ra *ra,
			uint64_t first, uint64_t last);

/* truncate.c */
/*
 * Pages of [@first, @last] on a lost device: clean ones go (BACKING has
 * their bytes, and the access reads them again), dirty ones stay (their
 * bytes went with the device: reads fail with EIO, close reports them).
 * A page others hold is tried a few times.  Call only once
 * cache_lost_units() is not 0.
 */
void file_drop_lost_pages(struct cfile *f, uint64_t first, uint64_t last);

/*
 * The tier's lost units, bit k for unit k (0: none, or no tier).  An
 * access that failed retries once more only when this grew meanwhile, so
 * its retries are bounded by the units.
 */
static inline uint32_t cache_lost_units(const struct cache *c)
{
	return c->dev ? dev_lost_units(c->dev) : 0;
}
void file_drop_range(struct cfile *f, uint64_t first, uint64_t last,
		     bool discard);

/* replica.c */
/**
 * struct replica - a read-only copy of a page on another device unit.
 * @lru:  on cache->rep_lru[unit]; cache->rep_lock.
 * @page: the page it copies.
 * @addr: its device frame (never mapped read-write).
 * @next: the page's next replica; page lock.
 * @seq:  the replicating request that made it (cache->rep_seq).
 * @cache, @rcu: for the free after a grace period (no allocation then:
 *        page removal frees replicas with lru_lock held).
 */
struct replica {
	struct clist lru;
	struct cpage *page;
	dev_addr_t addr;
	struct replica *next;
	uint64_t seq;
	struct cache *cache;
	struct rcu_head rcu;
};

int pages_replicate_locked(struct cache *c, struct cpage **pp, size_t n,
			   unsigned int unit, uint64_t seq, size_t *made);
void page_collapse_locked(struct cpage *p);
dev_addr_t replica_take_locked(struct cache *c, struct cpage *p, int unit);
dev_addr_t page_addr_on_unit_locked(const struct cpage *p, unsigned int unit);
size_t rep_evict(struct cache *c, unsigned int unit, size_t want, uint64_t before);
uint32_t page_units(const struct cpage *p);

/* migrate.c */
int pages_to_device_locked(struct cache *c, struct cpage **pp, size_t n,
			   bool automatic, int unit);
int pages_to_host_locked(struct cache *c, struct cpage **pp, size_t n,
			 bool automatic);
size_t lru_demote(struct cache *c, size_t want);
size_t dev_lru_evict(struct cache *c, unsigned int unit, size_t want);
int dev_frame_get(struct cache *c, int unit, dev_addr_t *a, size_t want);
void frame_free_deferred(struct cache *c, void *frame, dev_addr_t daddr);
void page_switch_tier_locked(struct cache *c, struct cpage *p, void *frame,
			     dev_addr_t daddr);
void page_daddr_switch_locked(struct cache *c, struct cpage *p, dev_addr_t to);
bool page_thrash_hold(struct cache *c, struct cpage *p);
void pages_promote_hot(struct cache *c, struct cpage **pp, size_t n);
void cache_inval(struct cache *c, struct cfile *f, uint64_t first, uint64_t n);

/* writeback.c */
int cache_flusher_start(struct cache *c);
void cache_flusher_stop(struct cache *c);
void page_mark_dirty_locked(struct cpage *p);
int page_dirty_prepare_locked(struct cpage *p, size_t from, size_t to);
void page_mark_dirty_range_locked(struct cpage *p, size_t from, size_t to);
void page_clip_dirty_locked(struct cpage *p, size_t end);
void page_cancel_dirty_locked(struct cpage *p);
int file_writeback(struct cfile *f, uint64_t first, uint64_t last, bool wait);
int cache_throttle(struct cache *c);
int cache_reclaim_dirty(struct cache *c);
void file_wait_unused(struct cfile *f);

/*
 * Some cached byte of @f changed, or a page of it went: readahead copies
 * taken before (devra.c) are stale.  Call after the change is complete
 * and before it is acknowledged.
 */
static inline void file_content_changed(struct cfile *f)
{
	atomic_fetch_add_explicit(&f->content_gen, 1, memory_order_release);
}

/* coherence.c */
/*
 * Writeback is about to write @n pages of @f to BACKING: if BACKING
 * changed since the cache last looked, note it in @outside_changed, since
 * after the write its size and mtime are the cache's own again.  Judged
 * only when these @n pages are the file's only writeback in flight.
 */
void file_note_outside_change(struct cfile *f, size_t n);
/* Remember BACKING's size and mtime as ours.  Context: @f->lock held. */
void file_note_backing_locked(struct cfile *f);

/* devra.c */
ssize_t devra_serve(struct cfile *f, struct cache_ra *ra, off_t off,
		    size_t len, struct cache_read_vec *v);
void devra_start(struct cfile *f, struct cache_ra *ra, off_t next,
		 size_t len, struct cache_read_vec *v);
void devra_wait(struct cfile *f, struct cache_read_vec *v);
void devra_finish(struct cfile *f, struct cache_read_vec *v);

/* lifetime.c */
int cache_ftab_init(struct cache *c);
void file_page_gone(struct cfile *f);
void file_idle_queue(struct cfile *f);
void cache_files_sweep(struct cache *c);
uint64_t cache_files_close_all(struct cache *c);
void cache_log_file(struct cfile *f, const char *fmt, const char *err,
		    uint64_t bytes);

#endif
