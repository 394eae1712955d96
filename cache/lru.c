/* SPDX-License-Identifier: MIT */
/*
 * cache/lru.c — choosing pages to evict: two lists, scan-resistant.
 *
 * Like Linux's active/inactive LRU (and 2Q), pages live on one of two
 * lists.  A new page goes to the head of the inactive list.  A cache hit
 * only sets PG_referenced (an atomic bit, no lock).  Eviction takes pages
 * from the inactive tail:
 *   - referenced since it was added: used twice, so it is promoted to the
 *     active head (PG_active) and survives;
 *   - locked, dirty, under writeback or in use: skipped (rotated to the
 *     inactive head); dirty pages are the flusher's to write back first;
 *   - otherwise: its reference count is frozen and it is dropped.
 * The active list is kept to at most half of the cache: its tail goes
 * back to the inactive head (a referenced tail page gets one more round
 * on the active list instead).
 *
 * Why this resists scans: one sequential pass over a file larger than the
 * cache touches each page once, so every page of the pass stays inactive
 * and is evicted in turn, while the hot working set, used more than once,
 * sits on the active list that the pass never reaches.
 *
 * With a device tier, host memory running out first demotes the inactive
 * tail to the device (lru_demote: the same walk, but the pages are
 * isolated, locked, and moved by migrate.c instead of dropped), and the
 * device has its own list, coldest at the tail, from which clean pages
 * are dropped when device memory runs out (dev_lru_evict).  A device page
 * read by the CPU gets PG_referenced and one more round.
 *
 * Locking: cache->lru_lock guards the lists and each page's ->lru.
 * Eviction holds it and only *tries* page locks, since page lock holders
 * take lru_lock (lru_add) — the order is page lock, then lru_lock.
 */
#include "cache/cache_int.h"
#include "lib/lockcheck.h"

void lru_add(struct cache *c, struct cpage *p)
{
	pthread_mutex_lock(&c->lru_lock);
	clist_add_head(&c->inactive, &p->lru);
	pthread_mutex_unlock(&c->lru_lock);
}

void lru_del_locked(struct cache *c, struct cpage *p)
{
	mutex_assert_held(&c->lru_lock);

	if (page_test_clear_active(&p->ps))
		c->nr_active--;
	clist_del(&p->lru);
}

static void lru_move_head(struct clist *head, struct cpage *p)
{
	clist_del(&p->lru);
	clist_add_head(head, &p->lru);
}

/* Keep the active list at most half of the cache. */
static void lru_balance_locked(struct cache *c)
{
	size_t limit = atomic_load(&c->nr_pages) / 2, budget = c->nr_active;

	mutex_assert_held(&c->lru_lock);
	while (c->nr_active > limit && budget--) {
		struct cpage *p = clist_entry(c->active.prev, struct cpage, lru);

		if (page_test_clear_referenced(&p->ps)) {
			lru_move_head(&c->active, p);	/* still hot */
			continue;
		}
		page_clear_active(&p->ps);
		c->nr_active--;
		lru_move_head(&c->inactive, p);
	}
}

/* Try to drop @p (the inactive tail).  Return: 1 if dropped. */
static int lru_try_drop_locked(struct cache *c, struct cpage *p)
{
	uint32_t s;

	mutex_assert_held(&c->lru_lock);
	if (page_test_clear_referenced(&p->ps)) {
		page_set_active(&p->ps);
		c->nr_active++;
		lru_move_head(&c->active, p);
		return 0;
	}
	if (!cache_page_trylock(&p->ps))
		goto out_rotate;
	s = page_flags(&p->ps);
	if (s & (PG_BIT(PG_dirty) | PG_BIT(PG_writeback)))
		goto out_unlock;
	if (page_remove_locked(p))	/* in use: ref was not just the index's */
		goto out_unlock;
	clist_del(&p->lru);
	page_free_deferred(p);
	ctr_inc(c, evictions, 1);
	return 1;

out_unlock:
	cache_page_unlock(&p->ps);
out_rotate:
	lru_move_head(&c->inactive, p);
	return 0;
}

size_t lru_evict(struct cache *c, size_t want)
{
	size_t done = 0, scan;

	pthread_mutex_lock(&c->lru_lock);
	lru_balance_locked(c);
	scan = 2 * atomic_load(&c->nr_pages) + 2;
	while (done < want && scan-- && !clist_empty(&c->inactive)) {
		struct cpage *p = clist_entry(c->inactive.prev, struct cpage, lru);

		done += (size_t)lru_try_drop_locked(c, p);
		if (clist_empty(&c->inactive))
			lru_balance_locked(c);
	}
	pthread_mutex_unlock(&c->lru_lock);
	return done;
}

#define DEMOTE_MAX 64

/*
 * Isolate up to @want pages from the inactive tail for demotion: locked,
 * referenced and off the lists.  Context: lru_lock held.
 */
static size_t lru_isolate_locked(struct cache *c, struct cpage **out,
				 size_t want)
{
	size_t n = 0, scan = 2 * atomic_load(&c->nr_pages) + 2;

	mutex_assert_held(&c->lru_lock);
	lru_balance_locked(c);
	while (n < want && scan-- && !clist_empty(&c->inactive)) {
		struct cpage *p = clist_entry(c->inactive.prev, struct cpage, lru);
		uint32_t s;

		if (page_test_clear_referenced(&p->ps)) {
			page_set_active(&p->ps);
			c->nr_active++;
			lru_move_head(&c->active, p);
			continue;
		}
		if (!cache_page_trylock(&p->ps)) {
			lru_move_head(&c->inactive, p);
			continue;
		}
		s = page_flags(&p->ps);
		if ((s & PG_BIT(PG_writeback)) || !(s & PG_BIT(PG_uptodate)) ||
		    page_thrash_hold(c, p) || !page_get_unless_zero(p)) {
			cache_page_unlock(&p->ps);
			lru_move_head(&c->inactive, p);
			continue;
		}
		clist_del(&p->lru);
		out[n++] = p;
		if (clist_empty(&c->inactive))
			lru_balance_locked(c);
	}
	return n;
}

size_t lru_demote(struct cache *c, size_t want)
{
	struct cpage *v[DEMOTE_MAX];
	size_t n;
	int moved;

	if (want > DEMOTE_MAX)
		want = DEMOTE_MAX;
	pthread_mutex_lock(&c->lru_lock);
	n = lru_isolate_locked(c, v, want);
	pthread_mutex_unlock(&c->lru_lock);
	if (!n)
		return 0;
	moved = pages_to_device_locked(c, v, n, true, CACHE_UNIT_ANY);
	pthread_mutex_lock(&c->lru_lock);
	for (size_t i = 0; i < n; i++)
		if (!page_test_device(&v[i]->ps))	/* not moved: back it goes */
			clist_add_head(&c->inactive, &v[i]->lru);
	pthread_mutex_unlock(&c->lru_lock);
	for (size_t i = 0; i < n; i++) {
		cache_page_unlock(&v[i]->ps);
		page_put(v[i]);
	}
	return moved > 0 ? (size_t)moved : 0;
}

size_t dev_lru_evict(struct cache *c, unsigned int unit, size_t want)
{
	struct clist *lru = &c->dev_lru[unit];
	size_t done = 0, scan;
	bool dirty = false;

	pthread_mutex_lock(&c->lru_lock);
	scan = 2 * atomic_load(&c->nr_unit_pages[unit]) + 2;
	while (done < want && scan-- && !clist_empty(lru)) {
		struct cpage *p = clist_entry(lru->prev, struct cpage, lru);

		if (page_test_clear_referenced(&p->ps) || !cache_page_trylock(&p->ps)) {
			lru_move_head(lru, p);
			continue;
		}
		if (page_flags(&p->ps) & (PG_BIT(PG_dirty) | PG_BIT(PG_writeback)) ||
		    page_remove_locked(p)) {
			dirty |= page_test_dirty(&p->ps);
			cache_page_unlock(&p->ps);
			lru_move_head(lru, p);
			continue;
		}
		clist_del(&p->lru);
		page_free_deferred(p);
		ctr_inc(c, device_evictions, 1);
		done++;
	}
	pthread_mutex_unlock(&c->lru_lock);
	if (dirty)	/* dirty device pages are the flusher's to clean first */
		pthread_cond_signal(&c->flush_cond);
	return done;
}
