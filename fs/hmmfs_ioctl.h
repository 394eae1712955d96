/* SPDX-License-Identifier: MIT */
/*
 * fs/hmmfs_ioctl.h — the control ioctls, shared by the daemon and hmmfsctl.
 *
 * hmmfsctl opens a file or directory of the mount and issues these; FUSE
 * forwards them to the daemon.  Every structure has a fixed size (FUSE
 * copies _IOC_SIZE bytes each way) and a version field first, so a newer
 * daemon can refuse an older tool with EINVAL instead of misreading it.
 */
#ifndef HMMFS_FS_IOCTL_H
#define HMMFS_FS_IOCTL_H

#include <linux/ioctl.h>
#include <stdint.h>

#define HMMFS_IOC_MAGIC 0xb7
#define HMMFS_IOC_VERSION 1

/**
 * struct hmmfs_ioc_stats - cache counters (hmmfsctl stats).
 * The counters are documented in cache/cache.h, struct cache_stats.
 * @cache_on: 0 when the mount runs without a cache (host_cache=0).
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
};

/* Counters of the whole mount, from any file or directory of it. */
#define HMMFS_IOC_STATS _IOR(HMMFS_IOC_MAGIC, 1, struct hmmfs_ioc_stats)

/*
 * Write back: the file it is issued on, or everything when issued on the
 * mount's root directory.  Then sync BACKING.
 */
#define HMMFS_IOC_SYNC _IO(HMMFS_IOC_MAGIC, 2)

#endif
