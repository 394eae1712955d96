/* SPDX-License-Identifier: MIT */
/*
 * cache/replica.c — read-only replicas of a page on other device units.
 *
 * A page has one primary copy, the one every CPU access uses: its host
 * frame, or its device frame (PG_device).  With several devices
 * (-o devices=N) a page may also have replicas: copies of its current
 * bytes in frames of other units, which device-side readers use where
 * they live (a read-only devop on device K).  Replicas are made by
 * hmmfsctl replicate (cache_replicate, migrate.c), clean or dirty pages
 * alike (dirtiness is about BACKING, and a replica holds the page's
 * current bytes), and pages on frames dedupe shares too (each page gets
 * its own replica).
 *
 * Write protection.  A replica frame is never mapped read-write.  While a
 * page has any, it carries a write-protection reason of its own,
 * WP_REPLICATED (PG_replicated), and a device-resident primary is mapped
 * read-only too (WP_DEVICE_RO), so every write, by the CPU or the device,
 * reaches wp_fault_locked(), which collapses the replicas
 * (page_collapse_locked) before the write goes on: one write path, a new
 * reason.  Truncate and punch-hole remove pages (page_remove_locked) or
 * zero a tail through the same fault.  Writeback reads the primary and
 * leaves the replicas alone: it changes no byte.
 *
 * States of a page's replicas (every change under the page lock):
 *   none        @replicas NULL, PG_replicated clear;
 *   replicated  PG_replicated, @replicas a chain of copies, at most one
 *               per unit and none on the primary's unit.
 * pages_replicate_locked() adds copies; page_collapse_locked() (a write,
 * a removal) frees them all; rep_evict() frees one when its unit runs
 * out of frames: for a page moving there (replicas go before any page:
 * they cost nothing to drop), or for a newer replica (never one the same
 * request made: that would only churn); replica_take_locked() hands one
 * over when the primary moves to its unit, which then needs no copy.  The last one gone clears
 * PG_replicated.
 *
 * Readers.  CPU reads use the primary only.  Device readers (a hash on
 * device K) find the copy on K with the page locked, then read it with
 * the page unlocked inside an RCU read-side section (so that hashes of
 * one file on several devices run side by side): a replica's frame is
 * freed only after a grace period (frame_free_deferred), as a migrated
 * page's old frame is.  Residency reads @rep_units, a relaxed atomic
 * mirror of the chain.
 *
 * Locking: the page lock, then cache->rep_lock for @rep_lru, a leaf lock
 * of its own: page removal collapses replicas, and the LRU scans remove
 * pages with lru_lock held.  Eviction holds rep_lock and only trylocks
 * pages.  A page under removal holds its lock, so an eviction that sees
 * its replica on the list (rep_lock held) cannot lock it, and the
 * collapse that removal runs needs rep_lock to unlist it: the page
 * outlives the look.
 */
#include <assert.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>

#include "cache/cache_int.h"
#include "cache/rcu.h"
#include "lib/lockcheck.h"

uint32_t page_units(const struct cpage *p)
{
	struct cpage *q = (struct cpage *)p;
	uint32_t u = atomic_load_explicit(&q->rep_units, memory_order_relaxed);

	if (page_test_device(&q->ps))
		u |= 1u << dev_addr_unit(page_daddr(q));
	return u;
}

dev_addr_t page_addr_on_unit_locked(const struct cpage *p, unsigned int unit)
{
	if (page_test_device(&((struct cpage *)p)->ps) &&
	    dev_addr_unit(page_daddr(p)) == unit)
		return page_daddr(p);
	for (const struct replica *r = p->replicas; r; r = r->next)
		if (dev_addr_unit(r->addr) == unit)
			return r->addr;
	return DEV_ADDR_NONE;
}

/* Take @r off @p's chain.  Context: page locked (and rep_lock, or @r off
 * its list already). */
static void replica_unlink_locked(struct cpage *p, struct replica *r)
{
	struct replica **pp = &p->replicas;

	lock_assert(page_test_locked(&p->ps));
	while (*pp != r)
		pp = &(*pp)->next;
	*pp = r->next;
	atomic_fetch_and_explicit(&p->rep_units, ~(1u << dev_addr_unit(r->addr)),
				  memory_order_relaxed);
	if (!p->replicas)
		wp_unprotect(p, WP_REPLICATED);
}

static void replica_free_rcu(struct rcu_head *head)
{
	struct replica *r = container_of(head, struct replica, rcu);

	cache_rcu_reclaim();
	dev_frame_free(r->cache->dev, r->addr);
	free(r);
}

/*
 * Free an unlinked replica and its frame after a grace period, since a
 * device reader (xxh64_feed) may still be reading it; @now: the caller
 * waited for one already (and needs the frame at once).
 */
static void replica_free(struct cache *c, struct replica *r, bool now)
{
	unsigned int unit = dev_addr_unit(r->addr);

	atomic_fetch_sub(&c->nr_unit_replicas[unit], 1);
	atomic_fetch_add(&c->unit_replica_drops[unit], 1);
	if (now) {
		dev_frame_free(c->dev, r->addr);
		free(r);
		return;
	}
	cache_rcu_defer();
	call_rcu(&r->rcu, replica_free_rcu);
}

/* Link the new replica @r of @p at @a on its unit. */
static void replica_link_locked(struct cache *c, struct cpage *p,
				struct replica *r, dev_addr_t a)
{
	unsigned int unit = dev_addr_unit(a);

	lock_assert(page_test_locked(&p->ps));
	*r = (struct replica){ .page = p, .addr = a, .next = p->replicas, .cache = c };
	pthread_mutex_lock(&c->rep_lock);
	clist_add_head(&c->rep_lru[unit], &r->lru);
	pthread_mutex_unlock(&c->rep_lock);
	p->replicas = r;
	atomic_fetch_or_explicit(&p->rep_units, 1u << unit, memory_order_relaxed);
	atomic_fetch_add(&c->nr_unit_replicas[unit], 1);
	wp_protect(p, WP_REPLICATED);
}

/*
 * May @p get a replica on @unit now?  A page on a frame dedupe shares
 * may: the replica is the page's own copy of the shared bytes (one per
 * page, not per frame).  Context: page locked.
 */
static bool page_may_replicate(const struct cpage *p, unsigned int unit)
{
	if (!page_test_uptodate(&((struct cpage *)p)->ps))
		return false;
	return page_addr_on_unit_locked(p, unit) == DEV_ADDR_NONE;
}

/*
 * Give every page of @pp a replica on @unit, the copies as one batch
 * (dev_copy_batch): from host frames, or from other units (by the peer
 * path, or staged through the host: device.c).
 * A page with a copy there already and one that is not uptodate are
 * skipped.  A full unit gives up replicas of earlier requests (@seq: this
 * one's), never a page: a replica is a spare copy that pushes no data out
 * (replica_frame_get).  Context: every page locked.
 * Return: 0, or -errno (-ENOSPC: the unit is full of pages and of this
 * request's replicas); *@made: replicas made, either way.
 */
/*
 * A frame on @unit for a replica of request @seq: a free one, or one an
 * older replica gives up.  Never a page's: a replica is a spare copy and
 * pushes no data out.
 */
static int replica_frame_get(struct cache *c, unsigned int unit, uint64_t seq,
			     size_t want, dev_addr_t *a)
{
	int ret = dev_frame_alloc_on(c->dev, unit, a);

	if (ret == -ENOSPC && rep_evict(c, unit, want, seq))
		ret = dev_frame_alloc_on(c->dev, unit, a);
	return ret;
}

int pages_replicate_locked(struct cache *c, struct cpage **pp, size_t n,
			   unsigned int unit, uint64_t seq, size_t *made)
{
	struct replica **rv = calloc(n, sizeof(*rv));
	struct dev_copy *cps = malloc(n * sizeof(*cps));
	dev_addr_t *to = malloc(n * sizeof(*to));
	size_t ps = c->cfg.page_size, ncp = 0;
	int ret = 0, r = 0;

	*made = 0;
	if (!rv || !cps || !to) {
		free(rv);
		free(cps);
		free(to);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n && !ret; i++) {
		struct cpage *p = pp[i];

		assert(page_test_locked(&p->ps));
		if (!page_may_replicate(p, unit))
			continue;
		rv[i] = malloc(sizeof(**rv));
		if (!rv[i] || (ret = replica_frame_get(c, unit, seq, n - i, &to[i]))) {
			free(rv[i]);
			rv[i] = NULL;
			ret = ret ? ret : -ENOMEM;
			break;
		}
		cps[ncp++] = page_test_device(&p->ps) ?
			(struct dev_copy){ .dir = DEV_D2D, .dst = to[i],
					   .src = page_daddr(p), .len = ps } :
			(struct dev_copy){ .dir = DEV_H2D, .dst = to[i],
					   .host = page_frame(p), .len = ps };
	}
	if (ncp)	/* one batch: per unit, and between units at once */
		r = dev_copy_batch(c->dev, cps, ncp);
	for (size_t i = 0; i < n; i++) {
		if (!rv[i])
			continue;
		if (r) {	/* the copies may be partial: none counts */
			dev_frame_free(c->dev, to[i]);
			free(rv[i]);
			continue;
		}
		replica_link_locked(c, pp[i], rv[i], to[i]);
		rv[i]->seq = seq;
		(*made)++;
	}
	free(rv);
	free(cps);
	free(to);
	if (r)
		ret = r;
	return ret == -ENODEV ? -EIO : ret;
}

void page_collapse_locked(struct cpage *p)
{
	struct cache *c = p->file->cache;
	struct replica *r = p->replicas, *next;

	lock_assert(page_test_locked(&p->ps));
	assert(page_test_locked(&p->ps));
	if (!r)
		return;
	pthread_mutex_lock(&c->rep_lock);
	for (struct replica *x = r; x; x = x->next)
		clist_del(&x->lru);
	pthread_mutex_unlock(&c->rep_lock);
	p->replicas = NULL;
	atomic_store_explicit(&p->rep_units, 0, memory_order_relaxed);
	wp_unprotect(p, WP_REPLICATED);
	for (; r; r = next) {
		next = r->next;
		replica_free(c, r, false);
	}
}

dev_addr_t replica_take_locked(struct cache *c, struct cpage *p, int unit)
{
	struct replica *r = p->replicas;
	dev_addr_t a;

	lock_assert(page_test_locked(&p->ps));
	while (r && unit != CACHE_UNIT_ANY && dev_addr_unit(r->addr) != (unsigned int)unit)
		r = r->next;
	if (!r)
		return DEV_ADDR_NONE;
	pthread_mutex_lock(&c->rep_lock);
	clist_del(&r->lru);
	pthread_mutex_unlock(&c->rep_lock);
	replica_unlink_locked(p, r);
	a = r->addr;
	atomic_fetch_sub(&c->nr_unit_replicas[dev_addr_unit(a)], 1);
	free(r);
	return a;
}

size_t rep_evict(struct cache *c, unsigned int unit, size_t want, uint64_t before)
{
	struct clist *lru = &c->rep_lru[unit];
	struct replica *victims = NULL, *next;
	size_t done = 0, scan;

	pthread_mutex_lock(&c->rep_lock);
	scan = atomic_load(&c->nr_unit_replicas[unit]) + 1;
	while (done < want && scan-- && !clist_empty(lru)) {
		struct replica *r = clist_entry(lru->prev, struct replica, lru);
		struct cpage *p = r->page;

		clist_del(&r->lru);
		if (r->seq >= before || !cache_page_trylock(&p->ps)) {
			clist_add_head(lru, &r->lru);	/* busy, or the asker's */
			continue;
		}
		replica_unlink_locked(p, r);
		cache_page_unlock(&p->ps);
		r->next = victims;
		victims = r;
		done++;
	}
	pthread_mutex_unlock(&c->rep_lock);
	if (!victims)
		return 0;
	/* unlinked: no reader finds them now; those reading wait out a grace
	 * period, then the frames are free at once for the caller */
	synchronize_rcu();
	cache_rcu_reclaim();
	for (; victims; victims = next) {
		next = victims->next;
		replica_free(c, victims, true);
	}
	return done;
}
