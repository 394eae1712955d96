/* SPDX-License-Identifier: MIT */
/*
 * cache/ksm_int.h — dedupe internals shared by ksm.c, wp.c and the rest
 * of the cache (as Linux keeps mm/ksm.c beside mm/filemap.c, sharing
 * mm/internal.h).
 */
#ifndef HMMFS_CACHE_KSM_INT_H
#define HMMFS_CACHE_KSM_INT_H

#include "cache/cache_int.h"
#include "cache/wp.h"

/**
 * struct ksm_frame - a frame shared by merged pages (a stable-tree node).
 * @next:    hash chain of the stable table; ksm->lock.
 * @hash:    the XXH3 hash of its bytes; immutable.
 * @frame:   the host frame, or NULL when @daddr is used.
 * @daddr:   the device frame, or DEV_ADDR_NONE.
 * @sharers: how many pages share it; ksm->lock.
 * @pages:   those pages (their ->shared_link), the reverse map a move to
 *           the other tier walks; ksm->lock.
 * @zero:    the tier's all-zero frame (never freed while the cache lives).
 * @moving:  being moved to the other tier: no page may join it; ksm->lock.
 * @uid:     the owner of the files whose pages share it (not of a zero
 *           frame); with ksm_scope=uid only pages of such files join it.
 *
 * Its bytes never change: every page on it is write-protected (WP_SHARED)
 * and copies before it writes.  @frame and @daddr change only in a move,
 * with every sharer's page lock held.
 */
struct ksm_frame {
	struct ksm_frame *next;
	uint64_t hash;
	void *frame;
	dev_addr_t daddr;
	unsigned int sharers;
	struct clist pages;
	bool zero;
	bool moving;
	uint32_t uid;
};

/*
 * Copy-on-write of a shared page; @on_device: the copy must stay on the
 * device (a device write).  Context: page locked.  Return 0/-errno.
 */
int ksm_cow_locked(struct cpage *p, bool on_device);

#endif
