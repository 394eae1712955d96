/* SPDX-License-Identifier: MIT */
/*
 * cache/wp.c — write protection: one mechanism, four reasons.
 *
 * A page must not change underneath whoever relies on its bytes:
 *   WP_SHARED     dedupe shares its frame with other pages (PG_shared);
 *   WP_WRITEBACK  BACKING is being written from it (PG_writeback);
 *   WP_DEVICE_RO  the device maps it read-only (PG_device, PG_dev_rw
 *                 clear; also the device page table's bit);
 *   WP_REPLICATED read-only copies live on other devices (PG_replicated,
 *                 cache/replica.c); a device primary is WP_DEVICE_RO too.
 * The reasons are bits of the page's one state word, so reading them is
 * one atomic snapshot, and a page can hold several at once.
 *
 * Every writer takes the page lock and calls wp_fault_locked() before it
 * changes a byte: the CPU write path (cache/write.c), the bounce path for
 * device pages (write.c), device operations (cache/migrate.c), and truncate
 * zeroing a page's tail.  The fault resolves the reasons in a fixed order:
 *   1. writeback: wait for it to end (stable pages; the page lock keeps a
 *      new writeback from starting);
 *   2. shared: copy the frame and drop the share (ksm.c, ksm_cow_locked);
 *   3. replicated: free every replica (page_collapse_locked), so no copy
 *      elsewhere keeps the old bytes;
 *   4. device read-only: a device write gets the mapping upgraded and the
 *      page dirtied (page_mkwrite); a CPU write through a bounce buffer
 *      instead makes the mapping read-only for the update, so a device
 *      write meanwhile would fault and wait for the page lock.
 * Writeback protects with WP_WRITEBACK and, for a device page,
 * WP_DEVICE_RO again (clear_page_dirty_for_io), and drops WP_WRITEBACK
 * when the write ends.
 */
#include "cache/cache_int.h"
#include "cache/ksm_int.h"

uint32_t wp_reasons(const struct cpage *p)
{
	uint32_t s = page_flags(&p->ps), r = 0;

	if (s & PG_BIT(PG_shared))
		r |= WP_SHARED;
	if (s & PG_BIT(PG_writeback))
		r |= WP_WRITEBACK;
	if ((s & PG_BIT(PG_device)) && !(s & PG_BIT(PG_dev_rw)))
		r |= WP_DEVICE_RO;
	if (s & PG_BIT(PG_replicated))
		r |= WP_REPLICATED;
	return r;
}

void wp_protect(struct cpage *p, enum wp_reason r)
{
	struct cache *c = p->file->cache;

	switch (r) {
	case WP_SHARED:
		page_set_shared(&p->ps);
		break;
	case WP_WRITEBACK:
		page_test_set_writeback(&p->ps);
		break;
	case WP_DEVICE_RO:
		page_clear_dev_rw(&p->ps);
		dev_protect(c->dev, page_daddr(p), false);
		break;
	case WP_REPLICATED:
		page_set_replicated(&p->ps);
		if (page_test_device(&p->ps))	/* a device write must fault */
			wp_protect(p, WP_DEVICE_RO);
		break;
	}
}

void wp_unprotect(struct cpage *p, enum wp_reason r)
{
	struct cache *c = p->file->cache;

	switch (r) {
	case WP_SHARED:
		page_clear_shared(&p->ps);
		break;
	case WP_WRITEBACK:
		page_end_writeback(&p->ps);
		break;
	case WP_DEVICE_RO:
		dev_protect(c->dev, page_daddr(p), true);
		page_set_dev_rw(&p->ps);
		break;
	case WP_REPLICATED:	/* the replicas are gone (replica.c) */
		page_clear_replicated(&p->ps);
		break;
	}
}

int wp_fault_locked(struct cpage *p, enum wp_writer who)
{
	struct cache *c = p->file->cache;
	uint32_t r;
	int ret;

	assert(page_test_locked(&p->ps));
	for (;;) {
		r = wp_reasons(p);
		if (r & WP_WRITEBACK) {
			cache_page_wait_writeback(&p->ps);
			continue;
		}
		if (r & WP_SHARED) {
			ret = ksm_cow_locked(p, who == WP_DEVICE);
			if (ret)
				return ret;
			continue;
		}
		if (r & WP_REPLICATED) {	/* the other copies go first */
			page_collapse_locked(p);
			continue;
		}
		break;
	}
	if (!page_test_device(&p->ps))
		return 0;
	if (who == WP_DEVICE && (r & WP_DEVICE_RO)) {	/* the device write fault */
		/* the device may write anywhere in the page: all of it is dirty */
		page_mark_dirty_range_locked(p, 0, c->cfg.page_size);
		wp_unprotect(p, WP_DEVICE_RO);
		ctr_inc(c, device_faults, 1);
	} else if (who == WP_BOUNCE && !(r & WP_DEVICE_RO)) {
		wp_protect(p, WP_DEVICE_RO);	/* read-only for the CPU update */
	}
	return 0;
}
