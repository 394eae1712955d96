/* SPDX-License-Identifier: MIT */
/*
 * cache/readahead.c — how far a read from BACKING reads ahead.
 *
 * Misses of a sequential reader also read ahead (ra_update): the window
 * starts at 8 pages and doubles per sequential read up to 256 pages
 * (1 MiB of 4 KiB pages); a random read resets it.  A read is sequential
 * when it starts where the last one on the same open file ended.
 *
 * A random miss right after a run of cached pages reads ahead as many
 * pages as that run (ra_context): a stream that the kernel sends on
 * several opens, or random reads filling a file in, look random on each
 * open file but not in the file's pages.  This is the "context" case of
 * mm/readahead.c's idea: the cached run is the history.  It is capped at
 * 1 MiB and an eighth of the cache, so readahead cannot thrash the cache.
 *
 * This file only sizes the window.  The read path (read.c, read_gather)
 * inserts the readahead pages after the requested ones and reads them all
 * in one batch (pages_read, file.c); readahead pages never wait for a
 * frame, and readahead stops at the first page already cached.  Copying
 * the next read's device pages ahead is devra.c.
 *
 * Locking: none.  struct cache_ra belongs to one open file, but the
 * kernel may send reads on it at once, so its fields are atomics updated
 * relaxed: a lost update only misjudges one read's pattern.  ra_context
 * looks pages up under rcu_read_lock() without taking references; a page
 * found and gone meanwhile also only misjudges one read.
 */
#include "cache/cache_int.h"
#include "cache/rcu.h"

#define RA_MIN_PAGES 8
#define RA_MAX_BYTES (1u << 20)

/* Grow the readahead window of a sequential reader; reset it otherwise. */
unsigned int ra_update(struct cache *c, struct cache_ra *ra, off_t off,
		       size_t len)
{
	unsigned int max = (unsigned int)(RA_MAX_BYTES >> c->page_shift);
	off_t next;
	unsigned int window;

	if (!ra)
		return 0;
	next = atomic_load_explicit(&ra->next, memory_order_relaxed);
	window = atomic_load_explicit(&ra->window, memory_order_relaxed);
	if (off == next && off != 0)
		window = window ? window * 2 : RA_MIN_PAGES;
	else if (off != next)
		window = 0;
	if (window > max)
		window = max ? max : 1;
	atomic_store_explicit(&ra->window, window, memory_order_relaxed);
	atomic_store_explicit(&ra->next, off + (off_t)len, memory_order_relaxed);
	return window;
}

/*
 * Readahead for a read that is not sequential on its open file but lands
 * just after pages already cached: a stream that the kernel sends on
 * several opens, or random reads filling a file in.  As the kernel's own
 * readahead does (the "context" case of mm/readahead.c's idea), the run of
 * cached pages before @first is taken as history: read ahead as many pages
 * as that run is long, up to RA_MAX_BYTES and an eighth of the cache, when
 * it is at least as long as the request.  Only a miss at @first looks; lookups are lock-free, and a
 * page found meanwhile gone only misjudges one read.
 */
unsigned int ra_context(struct cfile *f, struct cache_ra *ra,
			uint64_t first, uint64_t last)
{
	struct cache *c = f->cache;
	unsigned int max = (unsigned int)(RA_MAX_BYTES >> c->page_shift);
	uint64_t want = last - first + 1;
	unsigned int run = 0;
	bool miss;

	if (!ra)
		return 0;	/* the caller wants no readahead */
	if (max > c->frames.max_frames / 8)
		max = (unsigned int)(c->frames.max_frames / 8);	/* no thrashing */

	rcu_read_lock();
	miss = !index_lookup(f, first);
	while (miss && run < max && run < first && index_lookup(f, first - run - 1))
		run++;
	cache_rcu_read_unlock();
	return miss && run >= want ? run : 0;
}
