/* SPDX-License-Identifier: MIT */
/*
 * cache/truncate.c — dropping a file's pages: truncate, ranges dropped to
 * keep the cache coherent with BACKING, and pages on lost device units.
 *
 * Dropping.  A page is removed locked and with its reference count frozen
 * from 1 (the index's own) to 0 (page_remove_locked, file.c), so nobody
 * else holds it.  A dropper that finds other users backs off (-EAGAIN)
 * and tries again, holding no reference of its own meanwhile: two
 * droppers of one page that each kept one would wait for each other
 * forever.  So file_drop_range() walks the range by index, not by
 * collected references, looks the page up again for each try and gives
 * up its reference under the page lock just before the try
 * (page_drop_index).  Others hold pages only while they work on them, so
 * a page is retried until it is gone, with a backoff of 50 us doubling to
 * 5 ms, each sleep randomized so that racing droppers fall out of step.
 * Pages on a lost device unit (file_drop_lost_pages) are tried a few
 * times only, and their dirty ones stay: their bytes went with the
 * device, and reads of them fail with EIO.
 *
 * Truncate (truncate_locked).  The size changes first, so writeback cuts
 * what it writes there.  The clean pages past the new EOF are dropped
 * before BACKING shrinks (which also waits out their writeback) and all
 * of them, dirty ones too, after; the EOF page's tail is zeroed last, so
 * bytes past EOF read as zero if the file grows again.  If BACKING
 * refuses the truncate, the file keeps its size and its data.
 *
 * Locking: cache_truncate() takes f->trunc_lock exclusive, so writes and
 * hmmfs's own changes of BACKING (which take it shared) land wholly
 * before or after.  Droppers hold one page lock at a time; a removed page
 * leaves the LRU under lru_lock.  cfile->lock is taken for the size and
 * bookkeeping, never around a page lock.
 */
#include <errno.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cache/cache_int.h"
#include "cache/rcu.h"
#include "lib/lockcheck.h"

/*
 * Backoff of a dropper that found a page in use: 50 us, doubling to 5 ms,
 * each sleep drawn between half and all of that, so that droppers racing
 * for one page (two O_TRUNC opens, a truncate and a close) fall out of
 * step instead of colliding again on every try.
 */
#define DROP_BACKOFF_MIN_US 50
#define DROP_BACKOFF_MAX_US 5000

static void drop_backoff(unsigned int *us)
{
	static _Thread_local uint32_t seed;
	unsigned int t;

	if (!seed)	/* per thread: its stack address and the time */
		seed = ((uint32_t)(uintptr_t)&t ^ (uint32_t)time(NULL)) | 1;
	seed ^= seed << 13;	/* xorshift32 */
	seed ^= seed >> 17;
	seed ^= seed << 5;
	t = *us / 2 + seed % (*us / 2 + 1);
	nanosleep(&(struct timespec){ .tv_nsec = (long)t * 1000 }, NULL);
	if (*us < DROP_BACKOFF_MAX_US)
		*us *= 2;
}

/*
 * One try at dropping the page at @index of @f, discarding dirty data
 * when @discard.  The caller holds no reference of its own while it backs
 * off and tries again: two droppers that each kept one while waiting for
 * the other's to go (page_remove_locked needs the index's alone) waited
 * for each other forever.  Our own reference goes before the removal is
 * tried, under the page lock, which keeps the page from being removed and
 * freed by anyone else.
 * Return: 0 when no page is left there (dropped now, or by someone else,
 * who owns the removal once the count is 0) or a dirty one is kept (not
 * @discard); -EAGAIN when others hold it: back off, then try again.
 */
static int page_drop_index(struct cfile *f, uint64_t index, bool discard)
{
	struct cache *c = f->cache;
	struct cpage *p = page_lookup_get(f, index);

	if (!p)
		return 0;
	cache_page_lock(&p->ps);
	cache_page_wait_writeback(&p->ps);
	if (page_test_dirty(&p->ps)) {
		if (!discard) {
			cache_page_unlock(&p->ps);
			page_put(p);
			return 0;	/* keep data we could not write */
		}
		page_cancel_dirty_locked(p);
	}
	page_put(p);
	if (page_remove_locked(p)) {
		/*
		 * Without a reference the page lives on only by RCU once it is
		 * unlocked (its next holder may remove it, and the unlock's
		 * wake-up still touches its state word).
		 */
		rcu_read_lock();
		cache_page_unlock(&p->ps);
		cache_rcu_read_unlock();
		return -EAGAIN;
	}
	pthread_mutex_lock(&c->lru_lock);
	lru_del_locked(c, p);
	pthread_mutex_unlock(&c->lru_lock);
	page_free_deferred(p);
	return 0;
}

static int first_index(struct cpage *p, void *arg)
{
	cache_rcu_found(p);
	*(uint64_t *)arg = p->index;
	return 1;
}

/* The index of the first page of @f in [@first, @last]; false if none. */
static bool file_next_index(struct cfile *f, uint64_t first, uint64_t last,
			    uint64_t *index)
{
	int found;

	rcu_read_lock();
	found = index_for_each(f, first, last, first_index, index);
	cache_rcu_read_unlock();
	return found > 0;
}

/* Is page @i of @f on a device that is gone? */
static bool page_on_lost_unit(struct cfile *f, uint64_t i)
{
	struct cpage *p = page_lookup_get(f, i);
	bool lost;

	if (!p)
		return false;
	lost = page_test_device(&p->ps) &&
	       dev_unit_lost(f->cache->dev, dev_addr_unit(page_daddr(p)));
	page_put(p);
	return lost;
}

#define DROP_LOST_TRIES 16	/* then the access fails with EIO */

void file_drop_lost_pages(struct cfile *f, uint64_t first, uint64_t last)
{
	uint64_t i = first;

	while (file_next_index(f, i, last, &i)) {
		unsigned int backoff_us = DROP_BACKOFF_MIN_US;

		for (int t = 0; t < DROP_LOST_TRIES && page_on_lost_unit(f, i) &&
				page_drop_index(f, i, false) == -EAGAIN; t++)
			drop_backoff(&backoff_us);
		if (i == last)
			break;
		i++;
	}
}

/*
 * Drop the pages in [first, last]; dirty ones too when @discard.  Walks
 * indexes, not collected references, for the reason page_drop_index()
 * gives; retries a page until it is gone, since others hold pages only
 * while they work on them (lookups, writeback, migration, dedupe).
 */
void file_drop_range(struct cfile *f, uint64_t first, uint64_t last,
		     bool discard)
{
	uint64_t i = first;

	while (file_next_index(f, i, last, &i)) {
		unsigned int backoff_us = DROP_BACKOFF_MIN_US;

		while (page_drop_index(f, i, discard) == -EAGAIN)
			drop_backoff(&backoff_us);
		if (i == last)
			break;
		i++;
	}
}

/* Zero a device page from @from to its end.  Context: page locked. */
static void page_zero_device_tail_locked(struct cpage *p, size_t from)
{
	struct cache *c = p->file->cache;
	struct dev_fence fence = DEV_FENCE_INIT;

	lock_assert(page_test_locked(&p->ps));
	if (!dev_fill(c->dev, page_daddr(p) + from, 0, c->cfg.page_size - from,
		      &fence))
		dev_fence_wait(c->dev, &fence);
}

/*
 * Zero the cached tail of the page holding EOF @size (if cached).
 * Return: 0, or -errno when a shared page could not be copied first (the
 * caller reports it: the tail must not come back if the file grows).
 */
static int page_zero_tail(struct cfile *f, off_t size)
{
	struct cache *c = f->cache;
	size_t ps = c->cfg.page_size, from = (size_t)(size % (off_t)ps);
	struct cpage *p;
	int ret;

	if (!from)
		return 0;
	p = page_lookup_get(f, (uint64_t)size >> c->page_shift);
	if (!p)
		return 0;
	cache_page_lock(&p->ps);
	ret = wp_fault_locked(p, WP_CPU);	/* a shared page is copied first */
	if (!ret)
		page_clip_dirty_locked(p, from);
	if (!ret && page_test_device(&p->ps))
		page_zero_device_tail_locked(p, from);
	else if (!ret && page_test_uptodate(&p->ps))
		memset((char *)page_frame(p) + from, 0, ps - from);
	cache_page_unlock(&p->ps);
	page_put(p);
	return ret;
}

/*
 * The size changes first, so writeback cuts what it writes there.  The
 * clean pages past the new EOF are dropped before BACKING shrinks (which
 * also waits out their writeback) and all of them, dirty ones too, after;
 * the EOF page's tail is zeroed last: a migration or devop (which read
 * pages in without the kernel's ordering against truncate) may have read
 * old bytes from BACKING in between.  If BACKING refuses the truncate, the
 * file keeps its size and its data: nothing dirty was discarded yet.
 * This is cache_truncate()'s work.  Context: f->trunc_lock held.
 */
static int truncate_locked(struct cfile *f, off_t size)
{
	struct cache *c = f->cache;
	size_t ps = c->cfg.page_size;
	uint64_t keep = ((uint64_t)size + ps - 1) >> c->page_shift;
	struct stat st;
	off_t old;
	int ret;

	pthread_mutex_lock(&f->lock);
	old = f->size;
	f->size = size;
	f->own_changes++;
	pthread_mutex_unlock(&f->lock);
	file_drop_range(f, keep, UINT64_MAX, false);
	if (ftruncate(f->fd, size) < 0) {
		ret = -errno;
		pthread_mutex_lock(&f->lock);
		if (f->size == size)	/* unless a truncate or write since */
			f->size = old;
		f->own_changes--;
		pthread_mutex_unlock(&f->lock);
		return ret;
	}
	file_drop_range(f, keep, UINT64_MAX, true);
	/* bytes past the new EOF must read as zero if it grows again */
	ret = page_zero_tail(f, size);
	file_content_changed(f);
	pthread_mutex_lock(&f->lock);
	if (!ret && fstat(f->fd, &st) == 0) {
		f->seen_size = st.st_size;
		f->seen_mtime = st.st_mtim;
		/* the truncate's mtime is BACKING's; dirty pages keep it there */
		f->mtime = f->nr_dirty ? st.st_mtim : (struct timespec){ 0 };
	}
	f->own_changes--;
	pthread_mutex_unlock(&f->lock);
	return ret;
}

int cache_truncate(struct cfile *f, off_t size)
{
	int ret;

	if (size < 0)
		return -EINVAL;
	pthread_rwlock_wrlock(&f->trunc_lock);	/* see struct cfile */
	ret = truncate_locked(f, size);
	pthread_rwlock_unlock(&f->trunc_lock);
	return ret;
}
