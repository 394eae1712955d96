/* SPDX-License-Identifier: MIT */
/*
 * cache/cache.h — the hmmfs page cache: the one public header of cache/.
 *
 * hmmfs keeps file data in its own cache of fixed-size pages.  fs/ calls
 * the functions below for every read and write of file data and for the
 * operations that change data or size behind them (truncate, fallocate,
 * copy_file_range, fsync).  Pages are written back to BACKING later, by a
 * flusher thread, by fsync, or before their frames are reused.
 *
 * Lock order: the one list is at the top of cache/cache_int.h (fs/ takes
 * its own locks before any of the cache's; the cache's functions take
 * theirs inside).
 *
 * Every function returns 0 (or a count) on success and -errno on failure.
 */
#ifndef HMMFS_CACHE_CACHE_H
#define HMMFS_CACHE_CACHE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "cache/wp.h"

struct cache;
struct cfile;

/**
 * struct cache_config - what the cache is built with.
 * @page_size:       bytes per page, a power of two, 4 KiB to 64 KiB.
 * @host_cache:      byte budget for page frames in host memory.
 * @dirty_background: dirty bytes above which the flusher starts.
 * @dirty_limit:     dirty bytes above which writers are throttled.
 * @dirty_expire_ms: a page dirty this long is written back.
 * @io_engine:       "uring", "aio" or "psync".
 * @device:          device tier backend ("hostsim", "cuda"), or NULL or
 *                   "none" for no device tier.
 * @device_cache:    device memory budget in bytes.
 * @device_bw, @device_lat_ns, @gpu: passed to the backend (device.h).
 * @devices:         how many devices, each with @device_cache.
 * @gpus:            cuda, opencl: the GPU of each device (NULL: @gpu,
 *                   @gpu + 1...).
 * @cl_platform:     opencl: the platform.
 * @device_no_peer:  copies between devices through host memory, even
 *                   where the backend has a peer path.
 * @migrate:         "bounce", "promote" or "adaptive" (NULL: adaptive).
 * @device_copy:     "auto", "sync" or "async" (NULL: auto): see
 *                   dev_copy_batch() in device/device.h.
 * @bounce_buffers:  bounce buffers, one page each.
 * @inval:           called when pages of a file move to the device, so
 *                   the kernel's copy of [@off, @off + @len) can be
 *                   dropped (CPU access must come back to hmmfs).  Called
 *                   with page locks held: it must only queue the work.
 *                   @owner is what cache_file_set_owner() gave.  May be
 *                   NULL.
 * @inval_arg:       its first argument.
 * @cancelled:       asked between chunks of a migrate or devop request:
 *                   true when the caller has gone (the FUSE request was
 *                   interrupted, the daemon is ending), so the request
 *                   stops early and says where the rest starts.  After
 *                   at least one chunk, so requests make progress.  Also
 *                   asked by the thread's long device waits, which then
 *                   skip their modelled delay (device_config).  Any
 *                   thread may call it, at any time until cache_destroy().
 *                   May be NULL.
 * @cancel_arg:      its argument.
 * @ksm:             start the dedupe scanner (-o ksm=on); its other knobs
 *                   start at Linux KSM's defaults and change at run time.
 * @ksm_scope_all:   dedupe may merge pages of files of different owners
 *                   (-o ksm_scope=all); else only of files whose owners
 *                   (cache_file_set_uid) are the same.
 */
struct cache_config {
	size_t page_size;
	size_t host_cache;
	size_t dirty_background;
	size_t dirty_limit;
	unsigned int dirty_expire_ms;
	const char *io_engine;
	const char *device;
	size_t device_cache;
	uint64_t device_bw;
	uint64_t device_lat_ns;
	unsigned int devices;
	bool device_no_peer;
	int gpu;
	const unsigned int *gpus;
	int cl_platform;
	const char *migrate;
	const char *device_copy;
	size_t bounce_buffers;
	void (*inval)(void *arg, uint64_t owner, off_t off, off_t len);
	void *inval_arg;
	bool (*cancelled)(void *arg);
	void *cancel_arg;
	bool ksm;
	bool ksm_scope_all;
};

/**
 * struct cache_stats - counters, named as hmmfsctl stats prints them.
 * @host_pages:      pages with a host frame now.
 * @dirty_pages:     pages newer than BACKING now.
 * @writeback_pages: pages being written to BACKING now.
 * @hits:            page lookups served from the cache.
 * @misses:          page lookups that had to read BACKING.
 * @readahead_pages: pages read ahead of a sequential reader.
 * @evictions:       pages dropped to make room.
 * @writeback_bytes: bytes written back to BACKING.
 * @written_bytes:   bytes written into the cache (WRITE requests: with the
 *                   writeback cache, the kernel's write-back of its pages);
 *                   writeback_bytes / written_bytes is the amplification.
 * @backing_reads:   read requests issued to BACKING.
 * @backing_writes:  write requests issued to BACKING.
 * @throttled:       times a writer waited for the dirty limit.
 * @device_pages:    pages on the device now.
 * @device_frames:   device frames in all (the device_cache budget).
 * @migrations_to_device, @migrations_to_host: pages moved between tiers.
 * @bounce_reads:    CPU reads of device pages (each page's bytes copied
 *                   off the device into a bounce buffer or straight into
 *                   the reader's buffer).
 * @bounce_writes:   CPU writes into device pages through a bounce buffer.
 * @bounce_waits:    times a user of bounce buffers waited for one.
 * @device_faults:   device writes to read-only pages (made dirty, mapped
 *                   read-write).
 * @device_evictions: device pages dropped to make room.
 * @thrash_holds:    automatic migrations refused because the page moved
 *                   too often lately (anti-thrash).
 * @host_frames_used, @device_frames_used: frames holding data now (fewer
 *                   than pages when dedupe shares frames).
 * @device_frames_hwm: the most device frames ever in use (hostsim's device
 *                   memory lives in the daemon: this much of its RSS is
 *                   device memory, not overhead).
 * @files_cached:    files with cache state, attached or detached.
 * @files_detached:  of those, files the kernel forgot.
 * @fds_open:        backing descriptors the cache holds now.
 * @writeback_errors: page writes to BACKING that failed (the pages stay
 *                   dirty and are retried).
 * @dirty_pages_stuck: dirty pages whose file's last writeback failed.
 * @device_copy_sync, @device_copy_async: batches of copies of CPU reads
 *                   and writes of device pages run on the synchronous
 *                   fast path and by the device's engine (dev_copy_batch).
 * @device_readahead: device pages a sequential read got from bytes copied
 *                   ahead while the read before it was answered (devra.c).
 */
struct cache_stats {
	uint64_t host_pages;
	uint64_t dirty_pages;
	uint64_t writeback_pages;
	uint64_t hits;
	uint64_t misses;
	uint64_t readahead_pages;
	uint64_t evictions;
	uint64_t writeback_bytes;
	uint64_t written_bytes;
	uint64_t backing_reads;
	uint64_t backing_writes;
	uint64_t throttled;
	uint64_t device_pages;
	uint64_t device_frames;
	uint64_t migrations_to_device;
	uint64_t migrations_to_host;
	uint64_t bounce_reads;
	uint64_t bounce_writes;
	uint64_t bounce_waits;
	uint64_t device_faults;
	uint64_t device_evictions;
	uint64_t thrash_holds;
	uint64_t host_frames_used;
	uint64_t device_frames_used;
	uint64_t device_frames_hwm;
	uint64_t files_cached;
	uint64_t files_detached;
	uint64_t fds_open;
	uint64_t writeback_errors;
	uint64_t dirty_pages_stuck;
	uint64_t device_copy_sync;
	uint64_t device_copy_async;
	uint64_t device_readahead;
};

/* Residency of a run of pages (cache_residency). */
enum {
	CACHE_RES_HOST = 1u << 0,	/* in a host frame */
	CACHE_RES_DEVICE = 1u << 1,	/* in device memory */
	CACHE_RES_DIRTY = 1u << 2,	/* newer than BACKING */
	CACHE_RES_WRITEBACK = 1u << 3,	/* being written to BACKING */
	CACHE_RES_SHARED = 1u << 4,	/* frame shared with other pages */
};

/**
 * struct cache_extent - consecutive cached pages with the same flags.
 * @first: first page number.  @count: pages.  @flags: CACHE_RES_*.
 * @units: bit k: their copy is on device unit k.
 */
struct cache_extent {
	uint64_t first;
	uint64_t count;
	uint32_t flags;
	uint32_t units;
};

/* Page counts of a residency query. */
struct cache_res_counts {
	uint64_t pages, host, device, dirty, writeback, shared;
};

/**
 * struct cache_ra - sequential readahead state of one open file.
 * @next:   the offset a sequential reader asks for next.
 * @window: pages to read ahead (0: not sequential yet).
 *
 * @ahead:  bytes of device pages copied for the read expected next, or
 *          NULL (devra.c); freed by cache_ra_drop().
 * @device_ahead: copy device pages ahead for this open file at all (set
 *          by the opener, where the kernel does not read ahead itself:
 *          O_DIRECT, direct_io; with its own readahead a copy ahead is
 *          more often wasted than used).
 *
 * The kernel may send reads on one open file at once (its own readahead),
 * so all are atomics, updated relaxed: a lost update only misjudges one
 * read's pattern (@ahead is taken and given by exchange).
 */
struct devra;
struct cache_ra {
	_Atomic off_t next;
	_Atomic unsigned int window;
	struct devra *_Atomic ahead;
	bool device_ahead;
};

/* Build the cache.  @err gets a message on failure. */
int cache_create(const struct cache_config *cfg, struct cache **out,
		 char *err, size_t errlen);

/*
 * Open the device tier and start the flusher thread.  Call after any fork
 * (daemonizing): threads and GPU contexts do not survive fork.  Without
 * it there is no device tier, and writeback happens only in fsync, when
 * frames are needed, and at cache_destroy().  @err gets a message on
 * failure.
 */
int cache_start(struct cache *c, char *err, size_t errlen);

/*
 * The daemon is ending (a signal, an unmount): device waits stop waiting
 * out modelled delays, so the writeback that follows is not stretched by
 * device_bw or device_lat.  Any thread; may be called more than once.
 */
void cache_hurry(struct cache *c);

/*
 * Write back everything, stop the flusher, free everything.  Return: 0, or
 * -EIO when dirty data could not be written (each file logged with the
 * bytes lost).
 */
int cache_destroy(struct cache *c);

const char *cache_io_engine_name(const struct cache *c);
size_t cache_page_size(const struct cache *c);
void cache_get_stats(struct cache *c, struct cache_stats *st);

/**
 * struct cache_file_stats - one file's counters (hmmfsctl stats FILE).
 * @size:   its size as the cache knows it.
 * @pages, @dirty, @writeback: its cached pages (host and device), those
 *          newer than BACKING, those being written.
 * The rest count as cache_stats's fields of the same names, for this file
 * only, since the cache took the file in (a file it dropped starts again
 * from zero); dedupe's moves between tiers are not counted per file.
 */
struct cache_file_stats {
	uint64_t size, pages, dirty, writeback;
	uint64_t hits, misses, readahead_pages;
	uint64_t bounce_reads, bounce_writes;
	uint64_t written_bytes, writeback_bytes;
	uint64_t migrations_to_device, migrations_to_host;
};

void cache_file_get_stats(struct cfile *f, struct cache_file_stats *st);

/* One device unit's figures (hmmfsctl stats: "devices"). */
struct cache_device_stats {
	uint64_t pages, frames, frames_used, frames_hwm;
	uint64_t copies_in, copies_out, faults;
	uint64_t replicas, replicas_dropped;
	uint64_t peer_in, staged_in;
	char name[96];		/* the backend's, e.g. "POCL / cpu" */
};

/* Device units of the tier (0: none, at most CACHE_MAX_DEVICES); @st
 * for unit @k < that. */
#define CACHE_MAX_DEVICES 8
unsigned int cache_devices(const struct cache *c);
void cache_device_get_stats(struct cache *c, unsigned int k,
			    struct cache_device_stats *st);

/**
 * cache_file_attach() - the cache's state for one backing regular file,
 * found by the object's identity: a file the kernel forgot (detached) is
 * found again while it is the same object, unchanged (lifetime.c).
 * @path_fd: an O_PATH descriptor of the file (not kept).
 * @st:      its attributes, or NULL (then fstat'ed).
 * @create:  make one when there is none; else *@out may be NULL.
 * @out:     the file, attached; give it back with cache_file_detach().
 * Return: 0 or -errno.
 */
int cache_file_attach(struct cache *c, int path_fd, const struct stat *st,
		      bool create, struct cfile **out);

/* Attach (making one) and hold: for unit tests and simple users. */
int cache_file_open(struct cache *c, int path_fd, struct cfile **out);

/*
 * The kernel forgot the file: write its dirty pages back and keep its
 * pages, detached, until the cache's own policy drops them.  A failed
 * writeback keeps them dirty for the flusher to retry.  An object that
 * is gone (link count 0, asked of @path_fd, an O_PATH descriptor of it,
 * or -1 for the cache's own if it has one) is dropped with all its pages.
 */
void cache_file_detach(struct cfile *f, int path_fd);

/* Unhold and detach: the counterpart of cache_file_open(). */
void cache_file_close(struct cfile *f);

/*
 * An open file starts (hold) and ends (unhold) I/O on @f: while any hold
 * is left, the cache keeps a backing descriptor of it, opened from
 * @path_fd; without one it needs none unless pages are dirty.  Data
 * operations, truncate and the range ioctls need a hold.  Return: 0 or
 * -errno (the descriptor could not be opened).
 */
int cache_file_hold(struct cfile *f, int path_fd);
void cache_file_unhold(struct cfile *f);

/* Files with cache state, and of those the detached ones. */
void cache_file_counts(struct cache *c, uint64_t *cached, uint64_t *detached);

/* The file size as the cache sees it (writes not yet written back count). */
off_t cache_file_size(struct cfile *f);

/*
 * Close-to-open check, at open, against BACKING's attributes @st (an
 * fstat of the opened file): if BACKING's size or mtime differ from
 * what the cache last saw, or writeback found BACKING changed before it
 * wrote over it, and no page is dirty, drop the cached pages and take
 * BACKING's size.  @fd is a descriptor of the backing file (O_PATH will
 * do), or -1: a change seen in @st is looked at again through it, because
 * @st may have been taken in the middle of a change of ours (a truncate,
 * then the times the kernel sends with it) that has ended since.
 * Return: true if the cache was dropped, now or by a getattr's check
 * since the last open (the kernel's copy and attributes should go too).
 */
bool cache_file_revalidate(struct cfile *f, int fd, const struct stat *st);

/*
 * Put the cache's size, mtime (if newer) and the blocks its dirty pages
 * will take into BACKING's attributes @st, after the same check as
 * cache_file_revalidate() against @st and @fd.
 */
void cache_file_fix_attr(struct cfile *f, int fd, struct stat *st);

/*
 * Times were set explicitly (utimensat): the cache's own mtime must no
 * longer override them.  Call after writing the file back.
 */
void cache_file_times_set(struct cfile *f);

/* Read up to @len bytes at @off into @buf.  Return: bytes read (0 at EOF). */
ssize_t cache_read(struct cfile *f, void *buf, size_t len, off_t off,
		   struct cache_ra *ra);

/*
 * A read answered straight from the cache's frames and bounce buffers:
 * @iov points into them, and they are held (pages referenced, an RCU
 * read-side section open, bounce buffers taken) until
 * cache_read_vec_done(), so the caller can hand @iov to writev(2) with no
 * copy of its own.  The rest is the cache's.
 */
#define CACHE_READ_VEC_MAX 256
struct cache_read_vec {
	struct iovec iov[CACHE_READ_VEC_MAX];
	int n;
	struct cpage *pages[CACHE_READ_VEC_MAX];
	size_t npages;
	void *bufs[CACHE_READ_VEC_MAX];
	size_t nbufs;
	bool in_rcu;
	struct devra *served, *ahead;
	struct cache_ra *ra;
};

/*
 * cache_read_vec() - read up to @len bytes at @off into @v's iovec.
 * Return: bytes (0 at EOF, @v empty), -EAGAIN when the read does not fit
 * this path (too long, or bounce buffers short: use cache_read()), or
 * -errno.  On success call cache_read_vec_done() from the same thread.
 */
ssize_t cache_read_vec(struct cfile *f, size_t len, off_t off,
		       struct cache_ra *ra, struct cache_read_vec *v);
void cache_read_vec_done(struct cfile *f, struct cache_read_vec *v);

/* The open file of @ra is closing: free what its readahead holds. */
void cache_ra_drop(struct cfile *f, struct cache_ra *ra);

/*
 * Write @len bytes at @off into the cache.  Return: @len, fewer when an
 * error stopped it after some (as write(2)), or -errno.
 */
ssize_t cache_write(struct cfile *f, const void *buf, size_t len, off_t off);

/*
 * cache_write() for the kernel's write-back (FUSE_WRITE_CACHE): all of it
 * or an error.  The kernel takes any count in the reply to a write-back
 * as all of it (seen: fsync returned 0 and BACKING missed the rest), so a
 * short one would lose the rest without a word; when
 * only part was taken, the file and the bytes not taken are logged.
 */
ssize_t cache_write_all(struct cfile *f, const void *buf, size_t len, off_t off);

/* Change the file size in the cache and in BACKING. */
int cache_truncate(struct cfile *f, off_t size);

/*
 * Write back the dirty pages in [@start, @end) and wait for them; with
 * @drop, also drop the range's pages from the cache afterwards.
 */
int cache_writeback_range(struct cfile *f, off_t start, off_t end, bool drop);

/*
 * hmmfs itself changes BACKING behind the cache (fallocate,
 * copy_file_range, setting times): between begin and end no revalidation
 * takes BACKING's state for someone else's change.  End remembers
 * BACKING's new state and, with @end >= 0, grows the cache's size to
 * @end (not read back from BACKING, whose size is briefly a whole page
 * longer while the flusher writes a partial last page).
 */
void cache_file_change_begin(struct cfile *f);
void cache_file_change_end(struct cfile *f, off_t end);

/* fsync: write back, wait, sync BACKING; report a latched error. */
int cache_fsync(struct cfile *f, bool datasync);

/* close: report (and clear) a writeback error latched since the last one. */
int cache_file_check_error(struct cfile *f);

/* Write back every dirty page of every file and sync them. */
int cache_sync_all(struct cache *c);

/* Dedupe: its knobs and statistics; change knobs (@mask: bit i = field i). */
void cache_ksm_get(struct cache *c, struct ksm_knobs *knobs,
		   struct ksm_stats *st);
int cache_ksm_set(struct cache *c, const struct ksm_knobs *knobs, uint32_t mask);

/* The device backend's name, or NULL without a device tier. */
const char *cache_device_name(const struct cache *c);

/* The fs layer's name for @f, given to the invalidation hook. */
void cache_file_set_owner(struct cfile *f, uint64_t owner);
/*
 * cache_file_set_uid() - the file's owner changed (chown): dedupe merges
 * by owner, so unless the scope is all, the file's shared pages get
 * private copies now.  The owner starts as BACKING's st_uid at open.
 * Context: no page of @f locked.  Return: 0, or -errno if some page
 * could not be copied (it stays shared).
 */
int cache_file_set_uid(struct cfile *f, uint32_t uid);
/* The file's owner as dedupe knows it. */
uint32_t cache_file_uid(struct cfile *f);

/* No device unit in particular: the one with the most free frames. */
#define CACHE_UNIT_ANY (-1)

/* The most of a file's range one migrate or devop request works on. */
#define CACHE_REQUEST_BYTES ((uint64_t)64 << 20)

/**
 * cache_migrate() - move the cached pages of [@off, @off + @len) to the
 * device (@to_device; pages BACKING has data for are read first if not
 * cached, holes are skipped) or back to host memory.  Works on at most
 * CACHE_REQUEST_BYTES of the range, less when cancelled (cache_config).
 * @unit:  the device unit to move to (pages on other units move too), or
 *         -1: any, by room.
 * @moved: pages moved.
 * @next:  NULL, or where the rest of the range starts (@off + @len,
 *         clipped to the file, when it was all done).
 * Return: 0; -ENODEV without a device tier; -ENOSPC if the device (or
 * the host cache) filled up before the whole range moved; -errno.
 */
int cache_migrate(struct cfile *f, off_t off, off_t len, bool to_device,
		  int unit, uint64_t *moved, off_t *next);

/* Device-side operations on file data (cache_devop). */
enum cache_devop_kind {
	CACHE_DEVOP_FILL,	/* every byte = value */
	CACHE_DEVOP_XOR,	/* every byte ^= value */
	CACHE_DEVOP_ADD,	/* every byte += value, modulo 256 */
};

/**
 * cache_devop() - a device-side operation over [@off, @off + @len) of
 * the file, clipped to its size: the pages are moved to the device
 * first, and the writes go through the device write fault.  With @value
 * 0 holes are skipped (they stay zeros); works on at most
 * CACHE_REQUEST_BYTES of the range.
 * @op:    enum cache_devop_kind; @value: 0..255.
 * @pages: pages written.
 * @next:  NULL, or where the rest of the range starts.
 * Return: 0, -ENODEV without a device tier, -EINVAL, -errno.
 */
int cache_devop(struct cfile *f, off_t off, off_t len,
		enum cache_devop_kind op, uint64_t value, uint64_t *pages,
		off_t *next);

/**
 * cache_replicate() - give the cached pages of [@off, @off + @len) (read
 * in first, as for a migration) a read-only replica on every device unit
 * of the mask @units, keeping where they are.  A write collapses them
 * (cache/replica.c).  Works on at most CACHE_REQUEST_BYTES of the range.
 * @copies: replicas made.  @next: as for cache_migrate().
 * Return: 0; -ENODEV without a device tier; -EINVAL for a unit the tier
 * does not have; -ENOSPC if a unit is full (replicas push out only older
 * replicas, never pages); -errno.
 */
int cache_replicate(struct cfile *f, off_t off, off_t len, uint32_t units,
		    uint64_t *copies, off_t *next);

/*
 * Read-only device operations: the XXH64 of a file range computed on one
 * device, from the copies that live there (pages elsewhere get a replica
 * there first; holes hash as zeros).  A hash runs over several requests,
 * each bounded like a migration: create it at the range's start, call
 * cache_devread_xxh64() from where the last one stopped (*@next) until
 * the range is done, then take the digest.
 */
struct cache_xxh64;
struct cache_xxh64 *cache_xxh64_new(off_t at);
void cache_xxh64_free(struct cache_xxh64 *h);
off_t cache_xxh64_at(const struct cache_xxh64 *h);
uint64_t cache_xxh64_digest(const struct cache_xxh64 *h);
/*
 * Hash [@off, @off + @len) of @f on device @unit into @h, which must be at
 * @off.  @pages: pages hashed on the device.  Return: 0 (*@next: where the
 * rest starts), -ENODEV without a device tier, -EINVAL for a unit the tier
 * lacks or an @off that is not where @h stands, -errno.
 */
int cache_devread_xxh64(struct cfile *f, off_t off, off_t len, unsigned int unit,
			struct cache_xxh64 *h, uint64_t *pages, off_t *next);

/**
 * cache_residency() - where the cached pages of [@off, @off + @len) are.
 * @ext, @max: up to @max extents of cached pages (gaps are not cached).
 * @n:     extents stored.
 * @next:  where to continue (@off + @len when all fitted).
 * @cnt:   page counts of the part covered.
 * @hide:  CACHE_RES_* flags to leave out, as if no page had them (a
 *         caller who may not learn what they say; extents are then
 *         cut as if they did not exist).
 */
int cache_residency(struct cfile *f, off_t off, off_t len, uint32_t hide,
		    struct cache_extent *ext, size_t max, size_t *n,
		    off_t *next, struct cache_res_counts *cnt);

#endif
