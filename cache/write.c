/* SPDX-License-Identifier: MIT */
/*
 * cache/write.c — the write path: cache_write() and cache_write_all().
 *
 * A write first waits while too much of the cache is dirty
 * (cache_throttle, writeback.c), then goes page by page (write_page).  It
 * locks each page in turn (found or inserted by page_find_or_create,
 * file.c) and resolves the page's write protection (wp_fault_locked): it
 * waits for writeback of the page to end (stable pages: BACKING must get
 * the bytes as they were when writeback took them) and copies a page
 * dedupe shares.  It keeps the page's one dirty range free of gaps
 * (page_dirty_prepare_locked), copies the bytes and marks them dirty.  A
 * host page is read first only if the write covers it partly and it is
 * not uptodate and lies below EOF (past EOF it is zeroed).  A device page
 * either comes back to the host first (write_wants_host: migrate=promote,
 * or the third CPU access under migrate=adaptive, unless anti-thrash holds
 * it) or is written where it is, through a bounce buffer, its device
 * mapping read-only meanwhile (write_device_page_locked).  The file size
 * grows before the page can be written back: the flusher cuts BACKING to
 * the cache's size after each run.  Writers never hold two page locks at
 * once.
 *
 * Lost device units.  Once a unit is lost, the range's pages on lost
 * units are dropped first (file_drop_lost_pages, truncate.c); a page that
 * fails with EIO because another unit was lost meanwhile has the rest of
 * the range's dropped too, and is tried again.
 *
 * Locking: f->trunc_lock shared for the whole write, so that it lands
 * wholly before or after a truncate; then one page lock at a time, and
 * cfile->lock inside it for the size and mtime.
 */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "cache/cache_int.h"
#include "lib/lockcheck.h"

/*
 * The CPU writes [@from, @to) of a device-resident page: the device
 * mapping goes read-only for the update (a device write meanwhile would
 * fault and wait for the page lock), the bytes go through a bounce buffer
 * into the page's device frame, and the page stays on the device.  Only
 * the written bytes are copied: the device frame already holds the rest.
 * Context: page locked, not under writeback, not shared.
 */
static int write_device_page_locked(struct cpage *p, size_t from, size_t to,
				    const char *src)
{
	struct cache *c = p->file->cache;
	void *bb;
	int ret = wp_fault_locked(p, WP_BOUNCE);	/* read-only for the update */

	lock_assert(page_test_locked(&p->ps));
	if (ret)
		return ret;
	bounce_get(c->bounce, &bb, 1, true);
	memcpy((char *)bb + from, src, to - from);
	ret = dev_copy_batch(c->dev, &(struct dev_copy){ .dir = DEV_H2D,
			     .host = (char *)bb + from, .dst = page_daddr(p) + from,
			     .len = to - from }, 1);
	bounce_put(c->bounce, &bb, 1);
	if (ret)
		return ret == -ENODEV ? -EIO : ret;
	fctr_inc(p->file, bounce_writes, 1);
	return 0;
}

/*
 * Should a CPU write bring device page @p back to the host first?  Writes
 * count as CPU accesses for migrate=adaptive, as reads do.
 */
static bool write_wants_host(struct cache *c, struct cpage *p)
{
	unsigned int n = atomic_fetch_add_explicit(&p->cpu_reads, 1,
						   memory_order_relaxed) + 1;

	if (c->policy == MIGRATE_BOUNCE || page_thrash_hold(c, p))
		return false;
	return c->policy == MIGRATE_PROMOTE || n >= 3;
}

/* Write into a host-resident page.  Context: page locked. */
static int write_host_page_locked(struct cfile *f, struct cpage *p,
				  size_t from, size_t to, const char *src,
				  off_t size)
{
	size_t ps = f->cache->cfg.page_size;
	int ret = 0;

	lock_assert(page_test_locked(&p->ps));
	if (!page_test_uptodate(&p->ps) && (from || to < ps)) {
		if ((off_t)(p->index * ps) >= size)
			memset(page_frame(p), 0, ps);	/* wholly past EOF */
		else
			ret = pages_read(f, &p, 1);
	}
	if (!ret) {
		memcpy((char *)page_frame(p) + from, src, to - from);
		page_set_uptodate(&p->ps);
	}
	return ret;
}

/* Write into one page: [from, to) of page @index from @src. */
static int write_page(struct cfile *f, uint64_t index, size_t from, size_t to,
		      const char *src, off_t size)
{
	struct cache *c = f->cache;
	size_t ps = c->cfg.page_size;
	bool created;
	struct cpage *p = page_find_or_create(f, index, &created, true);
	int ret = 0;

	if (!p)
		return -ENOMEM;
	if (!created)
		cache_page_lock(&p->ps);
	ret = wp_fault_locked(p, WP_CPU);	/* stable pages; copy if shared */
	if (!ret && page_test_device(&p->ps) && write_wants_host(c, p))
		pages_to_host_locked(c, &p, 1, true);	/* else: stays there */
	if (!ret)	/* one dirty range per page, with no gap in it */
		ret = page_dirty_prepare_locked(p, from, to);
	if (!ret)
		ret = page_test_device(&p->ps) ?
		      write_device_page_locked(p, from, to, src) :
		      write_host_page_locked(f, p, from, to, src, size);
	if (!ret) {
		off_t end = (off_t)(index * ps + to);

		/*
		 * The size grows before the page can be written back: the
		 * flusher cuts BACKING to the cache's size after each run.
		 */
		pthread_mutex_lock(&f->lock);
		if (end > f->size)
			f->size = end;
		clock_gettime(CLOCK_REALTIME, &f->mtime);
		pthread_mutex_unlock(&f->lock);
		page_mark_dirty_range_locked(p, from, to);
		file_content_changed(f);
	}
	cache_page_unlock(&p->ps);
	page_put(p);
	return ret;
}

ssize_t cache_write(struct cfile *f, const void *buf, size_t len, off_t off)
{
	struct cache *c = f->cache;
	size_t ps = c->cfg.page_size, done = 0;
	uint32_t lost;
	off_t size;
	int ret;

	if (off < 0 || (off_t)len < 0 || off + (off_t)len < off)
		return -EINVAL;
	ret = cache_throttle(c);
	if (ret)
		return ret;
	pthread_rwlock_rdlock(&f->trunc_lock);	/* wholly before or after one */
	size = cache_file_size(f);
	lost = cache_lost_units(c);
	if (lost && len)
		file_drop_lost_pages(f, (uint64_t)off >> c->page_shift,
				     (uint64_t)(off + (off_t)len - 1) >> c->page_shift);
	while (done < len) {
		off_t o = off + (off_t)done;
		uint64_t index = (uint64_t)o >> c->page_shift;
		size_t from = (size_t)(o & (off_t)(ps - 1));
		size_t to = from + (len - done) < ps ? from + (len - done) : ps;

		ret = write_page(f, index, from, to, (const char *)buf + done, size);
		if (ret == -EIO && cache_lost_units(c) != lost) {
			lost = cache_lost_units(c);	/* lost meanwhile */
			file_drop_lost_pages(f, index, (uint64_t)(off + (off_t)len - 1) >>
						       c->page_shift);
			continue;
		}
		if (ret)
			break;
		done += to - from;
	}
	pthread_rwlock_unlock(&f->trunc_lock);
	fctr_inc(f, written_bytes, done);
	return done ? (ssize_t)done : ret;
}

ssize_t cache_write_all(struct cfile *f, const void *buf, size_t len, off_t off)
{
	size_t done = 0;
	ssize_t n = 0;

	while (done < len) {
		n = cache_write(f, (const char *)buf + done, len - done, off + (off_t)done);
		if (n <= 0)
			break;
		done += (size_t)n;
	}
	if (done == len)
		return (ssize_t)len;
	if (!n)
		n = -EIO;
	if (done)	/* else the error alone says it: nothing was taken */
		cache_log_file(f, "%s: write-back from the kernel: %s after part of "
			       "it; %llu bytes not taken (the kernel is told the error)",
			       strerror((int)-n), len - done);
	return n;
}
