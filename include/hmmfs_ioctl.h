/* SPDX-License-Identifier: MIT */
/*
 * include/hmmfs_ioctl.h — the control ioctls, shared by the daemon and
 * hmmfsctl: the ABI.  Values it mirrors from cache/ are checked equal at
 * compile time (fs/ops_ioctl.c).
 *
 * hmmfsctl opens a file or directory of the mount and issues these; FUSE
 * forwards them to the daemon.  Every structure has a fixed size (FUSE
 * copies _IOC_SIZE bytes each way) and a version field first, so a newer
 * daemon can refuse an older tool with EINVAL instead of misreading it.
 */
#ifndef HMMFS_INCLUDE_HMMFS_IOCTL_H
#define HMMFS_INCLUDE_HMMFS_IOCTL_H

#include <linux/ioctl.h>
#include <stdint.h>

#define HMMFS_IOC_MAGIC 0xb7
#define HMMFS_IOC_VERSION 4

/**
 * struct hmmfs_ioc_stats - cache counters (hmmfsctl stats).
 * The counters are documented in cache/cache.h, struct cache_stats.
 * @cache_on: 0 when the mount runs without a cache (host_cache=0).
 * @device:   the device tier's backend, or "none".
 * @migrate:  the migration policy (-o migrate=).
 * @files_cached:   files with cache state, attached to a kernel inode or not.
 * @files_detached: of those, files the kernel has forgotten (their pages
 *                  stay cached until hmmfs's own policy evicts them).
 * @fds_open:       backing descriptors the daemon holds now.
 * @fd_reopens:     backing descriptors reopened by file handle.
 * @writeback_errors:  writebacks of dirty pages that failed (they stay
 *                  dirty and are retried).
 * @dirty_pages_stuck: dirty pages whose last writeback failed.
 * @written_bytes:  bytes written into the cache (against writeback_bytes).
 * @device_copy_sync, @device_copy_async: copy batches of CPU access to
 *                  device pages on the fast path and by the engine.
 * @device_readahead: device pages sequential reads got from copies made
 *                  ahead of them.
 */
struct hmmfs_ioc_stats {
	uint32_t version;
	uint32_t cache_on;
	char io_engine[16];
	uint64_t page_size;
	uint64_t host_cache;
	uint64_t host_pages;
	uint64_t dirty_pages;
	uint64_t writeback_pages;
	uint64_t hits;
	uint64_t misses;
	uint64_t readahead_pages;
	uint64_t evictions;
	uint64_t writeback_bytes;
	uint64_t backing_reads;
	uint64_t backing_writes;
	uint64_t throttled;
	char device[16];
	char migrate[16];
	uint64_t device_cache;
	uint64_t device_frames;
	uint64_t device_pages;
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
	uint64_t fd_reopens;
	uint64_t writeback_errors;
	uint64_t dirty_pages_stuck;
	uint64_t written_bytes;
	uint64_t device_copy_sync;
	uint64_t device_copy_async;
	uint64_t device_readahead;
};

/* Counters of the whole mount, from any file or directory of it. */
#define HMMFS_IOC_STATS _IOR(HMMFS_IOC_MAGIC, 1, struct hmmfs_ioc_stats)

/*
 * Write back: the file it is issued on, or everything when issued on the
 * mount's root directory.  Then sync BACKING.
 */
#define HMMFS_IOC_SYNC _IO(HMMFS_IOC_MAGIC, 2)

/*
 * Ranges: @offset and @length in bytes, both at most INT64_MAX; @length 0
 * means to the end of the file; a range running past the end is cut
 * there, one starting past it is refused with ERANGE.
 *
 * Bounded requests: one MIGRATE or DEVOP works on at most
 * HMMFS_IOC_MAX_WORK bytes of the range (holes it skips do not count) and
 * sets @next to where the rest starts, the end of the range when it is
 * all done; ask again from @next until then.  So however large a range
 * a caller names, one ioctl returns after bounded work, and a killed
 * caller stops between ioctls.  (@next came later: it changed the size,
 * and so the number, of these two ioctls.  The daemon still serves the
 * migrate of an older tool, HMMFS_IOC_MIGRATE_OLD, bounded the same way:
 * such a tool asked in steps of HMMFS_IOC_MAX_WORK, so its answers stay
 * whole.  An older devop asked for everything at once and gets ENOTTY
 * rather than a silently partial answer.)
 */
#define HMMFS_IOC_MAX_WORK (64ull << 20)


enum { HMMFS_TO_HOST = 0, HMMFS_TO_DEVICE = 1 };
/* To device unit K (-o devices=N): pages on other units move there too. */
#define HMMFS_TO_DEVICE_UNIT(k)	(0x100u | (uint32_t)(k))
#define HMMFS_TO_UNIT_MASK	0xffu

/**
 * struct hmmfs_ioc_migrate - move a file range between the tiers.
 * @to:    HMMFS_TO_DEVICE (cached pages, and data BACKING has, read in
 *         first; holes are skipped, not filled; to whichever device has
 *         room), HMMFS_TO_DEVICE_UNIT(k) (the same, to device k; EINVAL
 *         if there is no such device) or HMMFS_TO_HOST (pages on the
 *         device).
 * @moved: out: pages moved.
 * @next:  out: the offset to ask from for the rest (see above).
 * Needs the file open for reading.  ENOSPC: the target tier is full.
 */
struct hmmfs_ioc_migrate {
	uint32_t version;
	uint32_t to;
	uint64_t offset;
	uint64_t length;
	uint64_t moved;
	uint64_t next;
};

#define HMMFS_IOC_MIGRATE _IOWR(HMMFS_IOC_MAGIC, 3, struct hmmfs_ioc_migrate)

/* struct hmmfs_ioc_migrate without @next, as older tools send it. */
struct hmmfs_ioc_migrate_old {
	uint32_t version;
	uint32_t to;
	uint64_t offset;
	uint64_t length;
	uint64_t moved;
};

#define HMMFS_IOC_MIGRATE_OLD \
	_IOWR(HMMFS_IOC_MAGIC, 3, struct hmmfs_ioc_migrate_old)

enum { HMMFS_DEVOP_FILL = 0, HMMFS_DEVOP_XOR = 1, HMMFS_DEVOP_ADD = 2 };

/**
 * struct hmmfs_ioc_devop - a device-side operation on a file range.
 * @op:    HMMFS_DEVOP_FILL (byte = value), _XOR (byte ^= value) or _ADD
 *         (byte += value, modulo 256); only value's low 8 bits count,
 *         and value must be below 256.  With value 0 holes are
 *         skipped (the op leaves zeros as they are); otherwise they are
 *         written like data.
 * @pages: out: pages written.
 * @next:  out: the offset to ask from for the rest (see above).
 * Needs the file open for writing.
 */
struct hmmfs_ioc_devop {
	uint32_t version;
	uint32_t op;
	uint64_t value;
	uint64_t offset;
	uint64_t length;
	uint64_t pages;
	uint64_t next;
};

#define HMMFS_IOC_DEVOP _IOWR(HMMFS_IOC_MAGIC, 4, struct hmmfs_ioc_devop)

/* Residency flags of an extent. */
enum {
	HMMFS_RES_HOST = 1u << 0,
	HMMFS_RES_DEVICE = 1u << 1,
	HMMFS_RES_DIRTY = 1u << 2,
	HMMFS_RES_WRITEBACK = 1u << 3,
	HMMFS_RES_SHARED = 1u << 4,
};

struct hmmfs_ioc_extent {
	uint64_t first;		/* first page */
	uint64_t count;		/* pages */
	uint32_t flags;		/* HMMFS_RES_* */
	uint32_t units;		/* bit k: on device k (0 from older daemons) */
};

#define HMMFS_RES_MAX_EXTENTS 256

/**
 * struct hmmfs_ioc_residency - where a file range's cached pages are.
 * @n_ext:   out: extents in @ext (runs of cached pages with equal flags;
 *           pages not cached are not listed).
 * @next:    out: the offset to ask from for the rest (offset + length
 *           when everything fitted).
 * @page_size, @pages .. @shared: out: page counts of the part covered.
 * Needs the file open for reading.
 */
struct hmmfs_ioc_residency {
	uint32_t version;
	uint32_t n_ext;
	uint64_t offset;
	uint64_t length;
	uint64_t next;
	uint64_t page_size;
	uint64_t pages, host, device, dirty, writeback, shared;
	struct hmmfs_ioc_extent ext[HMMFS_RES_MAX_EXTENTS];
};

#define HMMFS_IOC_RESIDENCY _IOWR(HMMFS_IOC_MAGIC, 5, struct hmmfs_ioc_residency)

/* The dedupe knobs, in the order of struct hmmfs_ioc_ksm's knobs[]. */
enum {
	HMMFS_KSM_RUN, HMMFS_KSM_PAGES_TO_SCAN, HMMFS_KSM_SLEEP_MILLISECS,
	HMMFS_KSM_MAX_PAGE_SHARING, HMMFS_KSM_USE_ZERO_PAGES,
	HMMFS_KSM_MERGE_ACROSS_TIERS, HMMFS_KSM_NR_KNOBS
};

/**
 * struct hmmfs_ioc_ksm - dedupe knobs and statistics (hmmfsctl ksm).
 * @set_mask: in: bit i set: knobs[i] is a new value (the mount's owner or
 *            root only; EPERM otherwise, ERANGE for a value out of range).
 * @knobs:    in: new values; out: the values now.
 * The counters (out) are named as Linux KSM's; see cache/wp.h.
 */
struct hmmfs_ioc_ksm {
	uint32_t version;
	uint32_t set_mask;
	uint32_t knobs[HMMFS_KSM_NR_KNOBS];
	uint64_t pages_shared;
	uint64_t pages_sharing;
	uint64_t pages_unshared;
	uint64_t pages_volatile;
	uint64_t full_scans;
	uint64_t cow_breaks;
	uint64_t zero_pages;
	uint64_t pages_scanned;
	uint64_t saved_host_bytes;
	uint64_t saved_device_bytes;
};

#define HMMFS_IOC_KSM _IOWR(HMMFS_IOC_MAGIC, 6, struct hmmfs_ioc_ksm)

/*
 * struct hmmfs_ioc_ops - the FUSE requests the daemon served since mount,
 * per opcode (linux/fuse.h's numbers, index = opcode; hmmfsctl stats
 * names them).  A request is counted when the daemon reads it; its
 * latency runs from that read to the write of its reply on the same
 * thread, so requests without a reply (FORGET, BATCH_FORGET, INTERRUPT)
 * and replies sent from another thread are counted but not timed.
 * @count:   requests read.
 * @timed:   requests whose latency is in @total_ns and @hist.
 * @errors:  of those, replies with an error (ENOENT of LOOKUP included).
 * @total_ns: their summed latency.
 * @hist:    their latency histogram: bucket 0 counts latencies under
 *           2 us, bucket b (1 <= b < last) those in [2^b, 2^(b+1)) us, the
 *           last bucket everything longer.
 * @available: 0 when the daemon does not see its own device I/O (libfuse
 *           kept it, said at mount): then every counter is 0.
 */
#define HMMFS_OPS_MAX 64
#define HMMFS_OPS_BUCKETS 22

struct hmmfs_ioc_op {
	uint64_t count;
	uint64_t timed;
	uint64_t errors;
	uint64_t total_ns;
	uint64_t hist[HMMFS_OPS_BUCKETS];
};

struct hmmfs_ioc_ops {
	uint32_t version;
	uint32_t available;
	struct hmmfs_ioc_op op[HMMFS_OPS_MAX];
};

#define HMMFS_IOC_OPS _IOR(HMMFS_IOC_MAGIC, 7, struct hmmfs_ioc_ops)

/**
 * struct hmmfs_ioc_file_stats - one file's counters (hmmfsctl stats FILE).
 * @size:      the file's size as the cache knows it.
 * @pages, @dirty, @writeback: its cached pages (host and device), those
 *             newer than BACKING, those being written to it.
 * @hits .. @migrations_to_host: as struct hmmfs_ioc_stats's fields of
 *             the same names, for this file, since the cache took it in
 *             (a file the cache dropped starts again from zero).
 * Needs the file open for reading; ENODEV on a mount without a cache.
 * Where pages are (host, device, shared) is the residency ioctl's.
 */
struct hmmfs_ioc_file_stats {
	uint32_t version;
	uint32_t reserved0;
	uint64_t page_size;
	uint64_t size;
	uint64_t pages, dirty, writeback;
	uint64_t hits, misses, readahead_pages;
	uint64_t bounce_reads, bounce_writes;
	uint64_t written_bytes, writeback_bytes;
	uint64_t migrations_to_device, migrations_to_host;
	uint64_t reserved[4];
};

#define HMMFS_IOC_FILE_STATS _IOR(HMMFS_IOC_MAGIC, 8, struct hmmfs_ioc_file_stats)

/**
 * struct hmmfs_ioc_devices - each device of the tier (-o devices=N).
 * @count:  devices (0: no device tier).
 * @dev[k]: device k: @pages cached there (replicas not counted), its
 *          frames in all, in use and the most ever in use, copies into it
 *          and out of it (each queued copy counts once, whatever its
 *          size), device write faults taken there, @replicas held there
 *          now, and @replicas_dropped so far (collapsed by a write or
 *          evicted for room); of the copies in, those from another
 *          device by the peer path (@peer_in) or through host memory
 *          (@staged_in); @name, the backend's name for it (opencl:
 *          "platform / device"), NUL-terminated.
 * From any file or directory of the mount; ENODEV without a cache.
 */
#define HMMFS_MAX_DEVICES 8

struct hmmfs_ioc_device {
	uint64_t pages;
	uint64_t frames, frames_used, frames_hwm;
	uint64_t copies_in, copies_out;
	uint64_t faults;
	uint64_t replicas, replicas_dropped;
	uint64_t peer_in, staged_in;
	char name[96];
};

struct hmmfs_ioc_devices {
	uint32_t version;
	uint32_t count;
	struct hmmfs_ioc_device dev[HMMFS_MAX_DEVICES];
};

#define HMMFS_IOC_DEVICES _IOR(HMMFS_IOC_MAGIC, 9, struct hmmfs_ioc_devices)

/**
 * struct hmmfs_ioc_replicate - read-only copies of a file range on
 * devices, the pages staying where they are (-o devices=N).
 * @units:  in: bit k: a replica on device k (EINVAL: none, or a device
 *          the mount does not have).
 * @copies: out: replicas made.
 * @next:   out: as for HMMFS_IOC_MIGRATE (bounded the same way).
 * The first write to a page, by the CPU or a device, drops its replicas.
 * Needs the file open for reading.  ENOSPC: a device is full of pages
 * that are not replicas.
 */
struct hmmfs_ioc_replicate {
	uint32_t version;
	uint32_t units;
	uint64_t offset;
	uint64_t length;
	uint64_t copies;
	uint64_t next;
};

#define HMMFS_IOC_REPLICATE _IOWR(HMMFS_IOC_MAGIC, 10, struct hmmfs_ioc_replicate)

enum { HMMFS_DEVREAD_XXH64 = 0 };
#define HMMFS_DEVREAD_START 1u	/* begin a new hash at @offset */

/**
 * struct hmmfs_ioc_devread - a read-only device operation on a file
 * range: the XXH64 (seed 0) of its bytes, computed on device @device from
 * the copies there (pages elsewhere are replicated there first; holes
 * hash as zeros).  It never faults and changes no byte.
 * @op:     HMMFS_DEVREAD_XXH64.
 * @flags:  HMMFS_DEVREAD_START on the first request of a range; later
 *          ones go on from the last @next, on the same open file.
 * @device: the device.
 * @pages:  out: pages hashed on the device by this request.
 * @next:   out: bounded like HMMFS_IOC_MIGRATE (holes count here).
 * @done:   out: 1 when the range (or the file) ended with this request;
 *          then @result is the hash.
 * Needs the file open for reading.  EINVAL: a device the mount lacks, or
 * a request that does not go on from where the last one stopped.
 */
struct hmmfs_ioc_devread {
	uint32_t version;
	uint32_t op;
	uint32_t flags;
	uint32_t device;
	uint64_t offset;
	uint64_t length;
	uint64_t pages;
	uint64_t next;
	uint64_t result;
	uint32_t done;
	uint32_t reserved;
};

#define HMMFS_IOC_DEVREAD _IOWR(HMMFS_IOC_MAGIC, 11, struct hmmfs_ioc_devread)

#endif
