/* SPDX-License-Identifier: MIT */
/*
 * cache/ksm.c — merging identical cached pages across files, as Linux KSM
 * merges identical anonymous pages.
 *
 * DOC: Overview
 *
 * A scanner thread (-o ksm=on, or the run knob) walks every file's cached
 * pages, pages_to_scan of them per wake-up, sleeping sleep_millisecs in
 * between.  It looks only at pages that are uptodate, clean, not under
 * writeback and not shared already, and takes each one's page lock with a
 * trylock (a busy page is simply passed over this time).  For each page:
 *
 *  1. Hash its bytes with XXH3 (a device page is copied to a bounce buffer
 *     first).  A page seen for the first time, or whose hash changed since
 *     the scanner last saw it, is volatile: it is changing, and merging it
 *     would only buy a copy-on-write soon, so it just has its hash
 *     recorded (this is KSM's checksum test).
 *  2. Look for the hash in the stable table: frames already shared.  A
 *     hash match is only a hint (XXH3 is not a cryptographic hash, and a
 *     test forces collisions): the bytes are compared in full, memcmp on
 *     the host, dev_compare on the device, before anything is merged.
 *     A frame already shared by max_page_sharing pages takes no more.
 *  3. Else look in the unstable table: pages hashed in this pass that had
 *     no twin yet.  A match whose page is still unchanged and compares
 *     equal byte for byte becomes a new stable frame (that page keeps its
 *     frame, now shared), and our page joins it.
 *  4. Else our page goes into the unstable table.  The unstable table is
 *     emptied after every full scan, since its pages may have changed.
 *
 * Merging a page: its frame pointer (or device address) is switched to the
 * shared frame, it is write-protected (WP_SHARED), and its own frame is
 * freed after an RCU grace period (call_rcu), since a reader without the
 * page lock may still be copying from it (cache/read.c reads inside RCU
 * read-side sections).  Both frames hold the same bytes, so a reader sees
 * the same data whichever it got.  With use_zero_pages, an all-zero page
 * (checked byte for byte, not by hash) joins its tier's one zero frame.
 * Pages merge within a tier unless merge_across_tiers is set; then a page
 * joins an equal frame in the other tier and moves there.
 *
 * Scope (-o ksm_scope): two pages merge only if their files have the same
 * owner (cfile->uid, st_uid), unless the scope is all.  A merge is a
 * content oracle: a copy-on-write break is slower than a plain write, and
 * the residency ioctl shows sharing, so a user who can guess a page of a
 * file he cannot read could test the guess against it.  With the owner as
 * the scope, the oracle only answers about the user's own files.  A
 * stable frame remembers its owner (ksm_frame.uid); the owners are read
 * with both pages locked, and a chown (cache_file_set_uid) stores the new
 * owner before it locks each page of the file to unshare it
 * (ksm_unshare_file), so no page can join a frame of its old owner after
 * the chown has passed it.  The zero frame is shared by every owner: an
 * all-zero page says nothing about anyone else's bytes.
 *
 * Breaking a share (ksm_cow_locked): a write to a shared page first copies
 * the frame to a new private one (host memcpy, or a device-to-device
 * copy), so only the written file sees the change.  A CPU write to a
 * shared device page when the device has no free frame copies it to the
 * host instead (the page moves home); a device write gets -ENOSPC.  The shared frame is
 * freed, after a grace period, when its last page leaves it (a copy, an
 * eviction, a truncate).  Shared pages are never dirty, so writeback never
 * meets them.
 *
 * Moving a shared frame (ksm_move_shared_locked): a migration that meets
 * a shared page moves the frame and every page on it together, as the
 * kernel's rmap walk moves a KSM page: copy the frame into the other tier
 * once, try-lock every sharer through the frame's page list (the reverse
 * map; any busy one and the move is off until next time), mark the frame
 * moving so that no page joins it, switch each page to the new frame, and
 * free the old one after a grace period.  A zero page moves alone, to the
 * other tier's zero frame.
 *
 * Locking: page lock, then ksm->lock (the tables, the sharers counts, the
 * knobs and counters).  Under ksm->lock only other pages' locks are
 * *tried*, never waited for.  The scanner's cursor is guarded by
 * cache->files_lock; while it scans a window of a file it holds the file
 * through cfile->users, as the flusher does, so a closing file waits for
 * at most one window; ksm_forget_file() then removes the file's unstable
 * entries.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xxhash.h>

#include "cache/rcu.h"
#include "cache/ksm_int.h"
#include "lib/lockcheck.h"

#define KSM_BUCKETS 65536	/* per table; chains stay short up to millions */
#define KSM_WINDOW 256		/* page indexes looked at per collect */

struct ksm_unstable {
	struct ksm_unstable *next;
	uint64_t hash;
	struct cfile *file;
	uint64_t index;
};

/**
 * struct ksm - the scanner and its tables.
 * @lock:     guards everything below except the cursor.
 * @stable, @unstable: hash tables of KSM_BUCKETS chains.
 * @zero:     the zero frame of each tier ([0] host, [1] device), or NULL.
 * @nodes, @sharers, @zero_sharers: per tier, for the statistics.
 * @cur, @cur_index: the scanner's cursor; cache->files_lock.
 */
struct ksm {
	struct cache *c;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	pthread_t thread;
	int stop, started;
	struct ksm_knobs knobs;
	struct ksm_frame **stable;
	struct ksm_unstable **unstable;
	struct ksm_frame *zero[2];
	uint64_t nodes[2], sharers[2], zero_sharers[2];
	uint64_t unshared, volatile_now, volatile_last, full_scans;
	uint64_t cow_breaks, scanned;
	bool scope_all;
	struct cfile *cur;
	uint64_t cur_index;
};

static uint64_t ksm_xxh3(const void *data, size_t len)
{
	return XXH3_64bits(data, len);
}

static uint64_t (*ksm_hash)(const void *, size_t) = ksm_xxh3;

uint64_t ksm_hash_bytes(const void *data, size_t len)
{
	return ksm_hash(data, len);
}

void ksm_set_hash_for_testing(uint64_t (*fn)(const void *data, size_t len))
{
	ksm_hash = fn ? fn : ksm_xxh3;
}

static struct ksm *ksm_of(const struct cpage *p)
{
	return p->file->cache->ksm;
}

/* The owner of @p's file.  Context: page locked (see "Scope" above). */
static uint32_t page_uid(const struct cpage *p)
{
	return atomic_load(&p->file->uid);
}

/* May pages of owners @a and @b share a frame? */
static bool ksm_same_scope(const struct ksm *k, uint32_t a, uint32_t b)
{
	return k->scope_all || a == b;
}

/* ---- the tables --------------------------------------------------------- */

static size_t bucket(uint64_t hash)
{
	return (size_t)(hash % KSM_BUCKETS);
}

static int tier(const struct ksm_frame *s)
{
	return s->frame ? 0 : 1;
}

/* @p leaves its shared frame, freed with its last page.  Context: k->lock. */
static void ksm_frame_leave_locked(struct ksm *k, struct cpage *p)
{
	struct ksm_frame *s = p->shared, **pp;

	mutex_assert_held(&k->lock);
	clist_del(&p->shared_link);
	k->sharers[tier(s)]--;
	if (s->zero)
		k->zero_sharers[tier(s)]--;
	if (--s->sharers || s->zero)
		return;
	for (pp = &k->stable[bucket(s->hash)]; *pp; pp = &(*pp)->next)
		if (*pp == s) {
			*pp = s->next;
			break;
		}
	k->nodes[tier(s)]--;
	frame_free_deferred(k->c, s->frame, s->daddr);
	free(s);
}

void ksm_unshare_removed(struct cpage *p)
{
	struct ksm *k = ksm_of(p);

	pthread_mutex_lock(&k->lock);
	ksm_frame_leave_locked(k, p);
	pthread_mutex_unlock(&k->lock);
	p->shared = NULL;
	page_clear_shared(&p->ps);
}

void ksm_forget_file(struct ksm *k, struct cfile *f)
{
	if (!k)
		return;
	pthread_mutex_lock(&k->lock);
	/* a walk of every bucket per closed file made unlink 2x slower */
	for (size_t b = 0; b < KSM_BUCKETS && k->unshared; b++)
		for (struct ksm_unstable **pp = &k->unstable[b]; *pp;) {
			struct ksm_unstable *u = *pp;

			if (u->file == f) {
				*pp = u->next;
				free(u);
				k->unshared--;
			} else {
				pp = &u->next;
			}
		}
	pthread_mutex_unlock(&k->lock);
}

static void unstable_clear_locked(struct ksm *k)
{
	mutex_assert_held(&k->lock);

	for (size_t b = 0; b < KSM_BUCKETS; b++)
		while (k->unstable[b]) {
			struct ksm_unstable *u = k->unstable[b];

			k->unstable[b] = u->next;
			free(u);
		}
	k->unshared = 0;
}

/* ---- comparing ---------------------------------------------------------- */

static bool all_zero(const void *data, size_t len)
{
	const uint64_t *w = data;

	for (size_t i = 0; i < len / sizeof(*w); i++)
		if (w[i])
			return false;
	return true;
}

/*
 * Are the bytes of page @p (a host copy of them at @pdata) equal to those
 * of the frame @frame / device frame @daddr?  Device against device is
 * compared on the device; otherwise on the host.
 */
static bool ksm_same(struct cache *c, struct cpage *p, const void *pdata,
		     void *frame, dev_addr_t daddr)
{
	size_t ps = c->cfg.page_size;
	struct dev_fence fence = DEV_FENCE_INIT;
	void *bb;
	bool same;

	if (frame)
		return !memcmp(pdata, frame, ps);
	if (page_test_device(&p->ps)) {
		if (dev_compare(c->dev, page_daddr(p), daddr, ps, &fence) ||
		    dev_fence_wait(c->dev, &fence))
			return false;
		return atomic_load(&fence.result) == 0;
	}
	if (!bounce_get(c->bounce, &bb, 1, false))
		return false;	/* no buffer free: not now */
	same = !dev_copy_to_host(c->dev, bb, daddr, ps, &fence) &&
	       !dev_fence_wait(c->dev, &fence) && !memcmp(pdata, bb, ps);
	bounce_put(c->bounce, &bb, 1);
	return same;
}

/* ---- merging ------------------------------------------------------------- */

/*
 * Point page @p at shared frame @s (sharers already counted), moving it to
 * @s's tier if it is in the other one, and free its old frame after a
 * grace period.  Context: page locked, ksm->lock not held.
 */
static void page_join_locked(struct ksm *k, struct cpage *p, struct ksm_frame *s)
{
	struct cache *c = k->c;
	bool was_dev = page_test_device(&p->ps), to_dev = !s->frame;
	void *old_frame = was_dev ? NULL : page_frame(p);
	dev_addr_t old_daddr = was_dev ? page_daddr(p) : DEV_ADDR_NONE;

	lock_assert(page_test_locked(&p->ps));
	p->shared = s;
	wp_protect(p, WP_SHARED);
	if (was_dev == to_dev) {
		if (to_dev)	/* @s may lie on another unit */
			page_daddr_switch_locked(c, p, s->daddr);
		else
			atomic_store_explicit(&p->frame, s->frame, memory_order_relaxed);
	} else {
		page_switch_tier_locked(c, p, s->frame, s->daddr);
	}
	frame_free_deferred(c, old_frame, old_daddr);
}

/* A stable frame equal to @p's bytes with room, counted as taken; or NULL. */
static struct ksm_frame *stable_find(struct ksm *k, struct cpage *p,
				     const void *data, uint64_t h)
{
	bool dev = page_test_device(&p->ps);
	struct ksm_frame *s;

	pthread_mutex_lock(&k->lock);
	for (s = k->stable[bucket(h)]; s; s = s->next) {
		if (s->hash != h || s->zero || s->moving ||
		    s->sharers >= k->knobs.max_page_sharing ||
		    !ksm_same_scope(k, s->uid, page_uid(p)))
			continue;
		if (!k->knobs.merge_across_tiers && (tier(s) == 1) != dev)
			continue;
		if (ksm_same(k->c, p, data, s->frame, s->daddr))
			break;	/* a hash match alone is only a hint */
	}
	if (s) {
		s->sharers++;
		k->sharers[tier(s)]++;
		clist_add_head(&s->pages, &p->shared_link);
	}
	pthread_mutex_unlock(&k->lock);
	return s;
}

/* The tier's zero frame, made on first use.  Context: k->lock. */
static struct ksm_frame *zero_frame_locked(struct ksm *k, bool dev)
{
	struct cache *c = k->c;
	struct ksm_frame *z = k->zero[dev];
	struct dev_fence fence = DEV_FENCE_INIT;

	mutex_assert_held(&k->lock);
	if (z)
		return z;
	z = calloc(1, sizeof(*z));
	if (!z)
		return NULL;
	z->zero = true;
	z->daddr = DEV_ADDR_NONE;
	clist_init(&z->pages);
	if (!dev) {
		z->frame = frame_alloc(&c->frames);
		if (z->frame)
			memset(z->frame, 0, c->cfg.page_size);
	} else if (dev_frame_alloc(c->dev, &z->daddr) ||
		   dev_fill(c->dev, z->daddr, 0, c->cfg.page_size, &fence) ||
		   dev_fence_wait(c->dev, &fence)) {
		if (z->daddr != DEV_ADDR_NONE)
			dev_frame_free(c->dev, z->daddr);
		z->daddr = DEV_ADDR_NONE;
	}
	if (!z->frame && z->daddr == DEV_ADDR_NONE) {
		free(z);
		return NULL;
	}
	k->zero[dev] = z;
	return z;
}

static void merge_zero(struct ksm *k, struct cpage *p)
{
	bool dev = page_test_device(&p->ps);
	struct ksm_frame *z;

	pthread_mutex_lock(&k->lock);
	z = zero_frame_locked(k, dev);
	if (z) {
		z->sharers++;
		k->sharers[dev]++;
		k->zero_sharers[dev]++;
		clist_add_head(&z->pages, &p->shared_link);
	}
	pthread_mutex_unlock(&k->lock);
	if (z)
		page_join_locked(k, p, z);
}

/*
 * An unstable-table page equal to @p: returned locked and referenced, its
 * entry removed.  Context: ksm->lock held; only tries page locks.
 */
static struct cpage *unstable_match_locked(struct ksm *k, struct cpage *p,
					   const void *data, uint64_t h)
{
	bool dev = page_test_device(&p->ps);

	mutex_assert_held(&k->lock);
	for (struct ksm_unstable **pp = &k->unstable[bucket(h)]; *pp;) {
		struct ksm_unstable *u = *pp;
		struct cpage *q;
		uint32_t s;

		if (u->hash != h || (u->file == p->file && u->index == p->index)) {
			pp = &u->next;
			continue;
		}
		q = page_lookup_get(u->file, u->index);
		if (q && cache_page_trylock(&q->ps)) {
			s = page_flags(&q->ps);
			if (q->ksm_hash == h && (s & PG_BIT(PG_uptodate)) &&
			    ksm_same_scope(k, page_uid(q), page_uid(p)) &&
			    !(s & (PG_BIT(PG_dirty) | PG_BIT(PG_writeback) |
				   PG_BIT(PG_shared))) &&
			    (k->knobs.merge_across_tiers ||
			     !!(s & PG_BIT(PG_device)) == dev) &&
			    ksm_same(k->c, p, data,
				     (s & PG_BIT(PG_device)) ? NULL : page_frame(q),
				     (s & PG_BIT(PG_device)) ? page_daddr(q) : DEV_ADDR_NONE)) {
				*pp = u->next;
				free(u);
				k->unshared--;
				return q;
			}
			cache_page_unlock(&q->ps);
		}
		if (q)
			page_put(q);
		pp = &u->next;	/* busy or different: keep it */
	}
	return NULL;
}

/*
 * Make @q's frame a new stable frame, shared by @q and @p (which joins it
 * next).  Context: q and p locked, k->lock held.
 */
static struct ksm_frame *stable_new_locked(struct ksm *k, struct cpage *q,
					   struct cpage *p, uint64_t h)
{
	struct ksm_frame *s = calloc(1, sizeof(*s));
	bool dev = page_test_device(&q->ps);

	mutex_assert_held(&k->lock);
	lock_assert(page_test_locked(&q->ps) && page_test_locked(&p->ps));
	if (!s)
		return NULL;
	s->hash = h;
	s->uid = page_uid(q);	/* and @p's, unless the scope is all */
	s->frame = dev ? NULL : page_frame(q);
	s->daddr = dev ? page_daddr(q) : DEV_ADDR_NONE;
	s->sharers = 2;		/* q, and the page about to join */
	clist_init(&s->pages);
	clist_add_head(&s->pages, &q->shared_link);
	clist_add_head(&s->pages, &p->shared_link);
	s->next = k->stable[bucket(h)];
	k->stable[bucket(h)] = s;
	k->nodes[dev]++;
	k->sharers[dev] += 2;
	q->shared = s;
	wp_protect(q, WP_SHARED);
	return s;
}

static void unstable_insert_locked(struct ksm *k, struct cpage *p, uint64_t h)
{
	struct ksm_unstable *u = malloc(sizeof(*u));

	mutex_assert_held(&k->lock);
	if (!u)
		return;
	*u = (struct ksm_unstable){ .next = k->unstable[bucket(h)], .hash = h,
				    .file = p->file, .index = p->index };
	k->unstable[bucket(h)] = u;
	k->unshared++;
}

/* Steps 2-4 for a page whose hash held still.  Context: page locked. */
static void ksm_try_merge(struct ksm *k, struct cpage *p, const void *data,
			  uint64_t h)
{
	struct ksm_frame *s = stable_find(k, p, data, h);
	struct cpage *q;

	if (s) {
		page_join_locked(k, p, s);
		return;
	}
	pthread_mutex_lock(&k->lock);
	q = unstable_match_locked(k, p, data, h);
	s = q ? stable_new_locked(k, q, p, h) : NULL;
	if (!q)
		unstable_insert_locked(k, p, h);
	pthread_mutex_unlock(&k->lock);
	if (q) {
		if (s)
			page_join_locked(k, p, s);
		cache_page_unlock(&q->ps);
		page_put(q);
	}
}

/* Is @p a candidate at all?  (flags snapshot) */
static bool ksm_candidate(uint32_t s)
{
	return (s & PG_BIT(PG_uptodate)) &&
	       !(s & (PG_BIT(PG_dirty) | PG_BIT(PG_writeback) | PG_BIT(PG_shared) |
		      PG_BIT(PG_locked)));
}

/* Step 1 and the rest for one page.  Context: holds a reference on @p. */
static void ksm_scan_page(struct ksm *k, struct cpage *p,
			  const struct ksm_knobs *kn)
{
	struct cache *c = k->c;
	size_t ps = c->cfg.page_size;
	struct dev_fence fence = DEV_FENCE_INIT;
	void *bb = NULL;
	const void *data;
	uint64_t h;

	if (!ksm_candidate(page_flags(&p->ps)) || !cache_page_trylock(&p->ps))
		return;
	if (!ksm_candidate(page_flags(&p->ps) & ~PG_BIT(PG_locked)))
		goto out_unlock;
	if (page_test_device(&p->ps)) {
		if (!bounce_get(c->bounce, &bb, 1, false))
			goto out_unlock;	/* no buffer free: next pass */
		if (dev_copy_to_host(c->dev, bb, page_daddr(p), ps, &fence) ||
		    dev_fence_wait(c->dev, &fence))
			goto out_put;
		data = bb;
	} else {
		data = page_frame(p);
	}
	h = ksm_hash(data, ps);
	pthread_mutex_lock(&k->lock);
	k->scanned++;
	pthread_mutex_unlock(&k->lock);
	if (kn->use_zero_pages && all_zero(data, ps)) {
		merge_zero(k, p);
		goto out_put;
	}
	if (!p->ksm_pass || p->ksm_hash != h) {	/* new or changing: volatile */
		if (p->ksm_pass) {
			pthread_mutex_lock(&k->lock);
			k->volatile_now++;
			pthread_mutex_unlock(&k->lock);
		}
		p->ksm_hash = h;
		p->ksm_pass = 1;
		goto out_put;
	}
	ksm_try_merge(k, p, data, h);
out_put:
	if (bb)
		bounce_put(c->bounce, &bb, 1);
out_unlock:
	cache_page_unlock(&p->ps);
}

/* ---- copy on write -------------------------------------------------------- */

/*
 * A private copy of shared device page @p on the device (on any unit:
 * @p is counted where the copy lands).  Return 0/-errno.
 */
static int cow_on_device(struct cache *c, struct cpage *p, struct ksm_frame *s)
{
	struct dev_fence fence = DEV_FENCE_INIT;
	dev_addr_t a;
	int ret = dev_frame_get(c, CACHE_UNIT_ANY, &a, 1);

	if (ret)
		return ret;
	ret = dev_copy_on_device(c->dev, a, s->daddr, c->cfg.page_size, &fence);
	if (!ret)
		ret = dev_fence_wait(c->dev, &fence);
	if (ret) {
		dev_frame_free(c->dev, a);
		return ret == -ENODEV ? -EIO : ret;
	}
	page_daddr_switch_locked(c, p, a);
	return 0;
}

/*
 * A private copy of shared device page @p on the host, for a CPU write
 * when the device is full (of dirty pages: clean ones would have made
 * room): the page moves home.  Return 0/-errno.
 */
static int cow_to_host(struct cache *c, struct cpage *p, struct ksm_frame *s)
{
	struct dev_fence fence = DEV_FENCE_INIT;
	void *nf = cache_frame_get(c, true);
	int ret;

	if (!nf)
		return -ENOMEM;
	ret = dev_copy_to_host(c->dev, nf, s->daddr, c->cfg.page_size, &fence);
	if (!ret)
		ret = dev_fence_wait(c->dev, &fence);
	if (ret) {
		frame_free(&c->frames, nf);
		return ret == -ENODEV ? -EIO : ret;
	}
	page_switch_tier_locked(c, p, nf, DEV_ADDR_NONE);
	return 0;
}

int ksm_cow_locked(struct cpage *p, bool on_device)
{
	struct ksm *k = ksm_of(p);
	struct cache *c = p->file->cache;
	struct ksm_frame *s = p->shared;
	int ret = 0;

	assert(page_test_locked(&p->ps) && page_test_shared(&p->ps));
	if (page_test_device(&p->ps)) {
		ret = cow_on_device(c, p, s);
		if (ret == -ENOSPC && !on_device)
			ret = cow_to_host(c, p, s);
		if (ret)
			return ret == -ENOSPC && !on_device ? -ENOMEM : ret;
	} else {
		void *nf = cache_frame_get(c, true);

		if (!nf)
			return -ENOMEM;
		memcpy(nf, s->frame, c->cfg.page_size);
		atomic_store_explicit(&p->frame, nf, memory_order_relaxed);
	}
	wp_unprotect(p, WP_SHARED);
	p->ksm_pass = 0;	/* about to change: volatile again */
	pthread_mutex_lock(&k->lock);
	k->cow_breaks++;
	ksm_frame_leave_locked(k, p);
	pthread_mutex_unlock(&k->lock);
	p->shared = NULL;
	return 0;
}

/*
 * Every page of @f is looked at under its lock, not only those PG_shared
 * when collected: the scanner may have merged one (under the old owner)
 * since, and the lock orders it after the new owner's store.
 */
int ksm_unshare_file(struct ksm *k, struct cfile *f)
{
	struct cpage **v;
	size_t n;
	int ret, r;

	if (!k)
		return 0;
	ret = file_collect_pages(f, 0, UINT64_MAX, 0, &v, &n);
	for (size_t i = 0; i < n; i++) {
		struct cpage *p = v[i];

		cache_page_lock(&p->ps);
		if (page_test_shared(&p->ps) && !p->shared->zero) {
			r = ksm_cow_locked(p, false);
			if (r && !ret)
				ret = r;
		}
		cache_page_unlock(&p->ps);
		page_put(p);
	}
	free(v);
	return ret;
}

/* ---- moving a shared frame ----------------------------------------------- */

/* A zero page moves alone: it joins the other tier's zero frame. */
static int ksm_move_zero_locked(struct ksm *k, struct cpage *p, bool to_dev)
{
	struct cache *c = k->c;
	struct ksm_frame *z;

	lock_assert(page_test_locked(&p->ps));
	pthread_mutex_lock(&k->lock);
	z = zero_frame_locked(k, to_dev);
	if (z) {
		ksm_frame_leave_locked(k, p);
		z->sharers++;
		k->sharers[to_dev]++;
		k->zero_sharers[to_dev]++;
		clist_add_head(&z->pages, &p->shared_link);
	}
	pthread_mutex_unlock(&k->lock);
	if (!z)
		return 0;
	p->shared = z;
	page_switch_tier_locked(c, p, z->frame, z->daddr);
	if (to_dev)
		cache_inval(c, p->file, p->index, 1);
	return 1;
}

/* A frame in the other tier holding @s's bytes, in *@frame or *@daddr. */
static int ksm_frame_copy(struct cache *c, struct ksm_frame *s, bool to_dev,
			  void **frame, dev_addr_t *daddr)
{
	struct dev_fence fence = DEV_FENCE_INIT;
	size_t ps = c->cfg.page_size;
	int ret, r;

	*frame = NULL;
	*daddr = DEV_ADDR_NONE;
	if (to_dev) {
		ret = dev_frame_get(c, CACHE_UNIT_ANY, daddr, 1);
		if (!ret)
			ret = dev_copy_to_device(c->dev, *daddr, s->frame, ps, &fence);
	} else {
		*frame = cache_frame_get(c, false);
		ret = *frame ? dev_copy_to_host(c->dev, *frame, s->daddr, ps, &fence) :
			       -ENOSPC;
	}
	r = dev_fence_wait(c->dev, &fence);
	if (!ret)
		ret = r;
	if (ret && *frame)
		frame_free(&c->frames, *frame);
	if (ret && *daddr != DEV_ADDR_NONE)
		dev_frame_free(c->dev, *daddr);
	return ret;
}

static bool page_in(const struct cpage *q, struct cpage *const *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (v[i] == q)
			return true;
	return false;
}

/*
 * Lock every page on @s but those in @held (the caller holds them locked)
 * into @v, only trying: a page lock is never waited for under k->lock.
 * Return: how many, or -EBUSY (then none is left locked).  Context:
 * k->lock.
 */
static ssize_t ksm_lock_sharers_locked(struct ksm_frame *s,
				       struct cpage *const *held, size_t nheld,
				       struct cpage **v)
{
	ssize_t n = 0;

	for (struct clist *l = s->pages.next; l != &s->pages; l = l->next) {
		struct cpage *q = clist_entry(l, struct cpage, shared_link);

		if (page_in(q, held, nheld))
			continue;
		if (!cache_page_trylock(&q->ps)) {
			while (n)
				cache_page_unlock(&v[--n]->ps);
			return -EBUSY;
		}
		v[n++] = q;
	}
	return n;
}

/* Point every page on @s (all locked) at its new frame. */
static void ksm_switch_sharers(struct cache *c, struct ksm_frame *s,
			       void *frame, dev_addr_t daddr)
{
	for (struct clist *l = s->pages.next; l != &s->pages; l = l->next) {
		struct cpage *q = clist_entry(l, struct cpage, shared_link);

		page_switch_tier_locked(c, q, frame, daddr);
		if (!frame)
			cache_inval(c, q->file, q->index, 1);
	}
}

int ksm_move_shared_locked(struct cpage *p, bool to_dev,
			   struct cpage *const *held, size_t nheld)
{
	struct ksm *k = ksm_of(p);
	struct cache *c = k->c;
	struct ksm_frame *s = p->shared;
	void *old_frame = s->frame, *frame;
	dev_addr_t old_daddr = s->daddr, daddr;
	unsigned int moved;
	struct cpage **v;
	ssize_t n;
	int ret;

	assert(page_test_locked(&p->ps) && page_test_shared(&p->ps));
	if ((tier(s) == 1) == to_dev)
		return 0;
	if (s->zero)
		return ksm_move_zero_locked(k, p, to_dev);
	/* @s lives while @p, locked, shares it; its bytes never change */
	ret = ksm_frame_copy(c, s, to_dev, &frame, &daddr);
	if (ret)
		return ret == -ENOSPC ? 0 : ret;
	pthread_mutex_lock(&k->lock);
	v = malloc(s->sharers * sizeof(*v));
	n = !v ? -ENOMEM : s->moving ? -EBUSY :
	    ksm_lock_sharers_locked(s, held, nheld, v);
	if (n >= 0)
		s->moving = true;	/* no page joins it meanwhile */
	pthread_mutex_unlock(&k->lock);
	if (n < 0) {
		free(v);
		frame_free_deferred(c, frame, daddr);
		return n == -EBUSY ? 0 : (int)n;
	}
	/* every sharer is locked: the list holds still without k->lock */
	ksm_switch_sharers(c, s, frame, daddr);
	pthread_mutex_lock(&k->lock);
	moved = s->sharers;
	k->nodes[tier(s)]--;
	k->sharers[tier(s)] -= moved;
	s->frame = frame;
	s->daddr = daddr;
	k->nodes[tier(s)]++;
	k->sharers[tier(s)] += moved;
	s->moving = false;
	pthread_mutex_unlock(&k->lock);
	while (n)
		cache_page_unlock(&v[--n]->ps);
	free(v);
	if (to_dev)
		ctr_inc(c, migrations_to_device, moved);
	else
		ctr_inc(c, migrations_to_host, moved);
	/* readers that saw a page in the old tier finish before it goes */
	frame_free_deferred(c, old_frame, old_daddr);
	return (int)moved;
}

/* ---- the walk ---------------------------------------------------------------- */

/*
 * The cursor: the file being walked and the next page index.  It holds no
 * reference between scans (a file closing must not wait for a sleeping
 * scanner): it is guarded by cache->files_lock, and a closing file moves
 * it on (ksm_file_unlinked_locked).  While it scans a window, the scanner
 * holds the file through cfile->users.
 */

/* The cursor's file, held; the first file when it is unset.  */
static struct cfile *ksm_cursor_get(struct ksm *k, uint64_t *index)
{
	struct cache *c = k->c;
	struct cfile *f;

	pthread_mutex_lock(&c->files_lock);
	if (!k->cur && !clist_empty(&c->files)) {
		k->cur = clist_entry(c->files.next, struct cfile, file_link);
		k->cur_index = 0;
	}
	f = k->cur;
	*index = k->cur_index;
	if (f)
		atomic_fetch_add(&f->users, 1);
	pthread_mutex_unlock(&c->files_lock);
	return f;
}

/* Advance to @f's next file.  Context: files_lock.  Return: wrapped. */
static bool ksm_cursor_next_locked(struct ksm *k, struct cfile *f)
{
	struct cache *c = k->c;
	struct clist *next = f->file_link.next;

	mutex_assert_held(&k->c->files_lock);
	k->cur_index = 0;
	if (next == &c->files || next == &f->file_link) {
		k->cur = NULL;	/* the end of the list: a full scan is done */
		return next == &c->files;
	}
	k->cur = clist_entry(next, struct cfile, file_link);
	return false;
}

void ksm_file_unlinked_locked(struct ksm *k, struct cfile *f)
{
	if (k && k->cur == f)
		ksm_cursor_next_locked(k, f);
}

static void ksm_full_scan_done(struct ksm *k)
{
	pthread_mutex_lock(&k->lock);
	k->full_scans++;
	k->volatile_last = k->volatile_now;
	k->volatile_now = 0;
	unstable_clear_locked(k);
	pthread_mutex_unlock(&k->lock);
}

/*
 * Scan the window of @f from @first; move the cursor.  Return: pages
 * (at least 1, for progress); *@wrapped: a full scan ended.
 */
static size_t ksm_scan_window(struct ksm *k, struct cfile *f, uint64_t first,
			      const struct ksm_knobs *kn, bool *wrapped)
{
	struct cache *c = k->c;
	uint64_t last = first + KSM_WINDOW - 1;
	bool end = first > (uint64_t)cache_file_size(f) >> c->page_shift;

	struct cpage **v = NULL;
	size_t n = 0;

	if (!end)
		file_collect_pages(f, first, last, PG_BIT(PG_uptodate), &v, &n);
	for (size_t i = 0; i < n; i++) {
		ksm_scan_page(k, v[i], kn);
		page_put(v[i]);
	}
	free(v);
	pthread_mutex_lock(&c->files_lock);
	if (k->cur == f) {
		if (end)
			*wrapped = ksm_cursor_next_locked(k, f);
		else
			k->cur_index = last + 1;
	}
	pthread_mutex_unlock(&c->files_lock);
	if (*wrapped)
		ksm_full_scan_done(k);
	return n ? n : 1;
}

size_t ksm_scan(struct ksm *k, size_t budget)
{
	struct ksm_knobs kn;
	size_t done = 0;

	pthread_mutex_lock(&k->lock);
	kn = k->knobs;
	pthread_mutex_unlock(&k->lock);
	while (done < budget) {
		uint64_t first;
		struct cfile *f = ksm_cursor_get(k, &first);
		bool wrapped = false;

		if (!f)
			break;
		done += ksm_scan_window(k, f, first, &kn, &wrapped);
		atomic_fetch_sub(&f->users, 1);
		if (wrapped)
			break;	/* at most one full scan per call */
	}
	return done;
}

static void *ksm_main(void *arg)
{
	struct ksm *k = arg;

	pthread_mutex_lock(&k->lock);
	while (!k->stop) {
		struct timespec ts;
		size_t n = k->knobs.pages_to_scan;
		unsigned int ms = k->knobs.sleep_millisecs;

		if (!k->knobs.run) {
			pthread_cond_wait(&k->cond, &k->lock);
			continue;
		}
		pthread_mutex_unlock(&k->lock);
		ksm_scan(k, n);
		pthread_mutex_lock(&k->lock);
		if (k->stop)
			break;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += (long)(ms % 1000) * 1000000;
		ts.tv_sec += ms / 1000 + ts.tv_nsec / 1000000000;
		ts.tv_nsec %= 1000000000;
		if (ms)
			pthread_cond_timedwait(&k->cond, &k->lock, &ts);
	}
	pthread_mutex_unlock(&k->lock);
	return NULL;
}

/* ---- life cycle and control ---------------------------------------------- */

static int knobs_check(const struct ksm_knobs *kn)
{
	if (kn->run > 1 || kn->pages_to_scan < 1 || kn->pages_to_scan > 1000000 ||
	    kn->sleep_millisecs > 60000 || kn->max_page_sharing < 2 ||
	    kn->max_page_sharing > 1u << 20 || kn->use_zero_pages > 1 ||
	    kn->merge_across_tiers > 1)
		return -ERANGE;
	return 0;
}

int ksm_create(struct cache *c, const struct ksm_knobs *kn, struct ksm **out)
{
	struct ksm *k;
	int ret = knobs_check(kn);

	if (ret)
		return ret;
	k = calloc(1, sizeof(*k));
	if (!k)
		return -ENOMEM;
	k->stable = calloc(KSM_BUCKETS, sizeof(*k->stable));
	k->unstable = calloc(KSM_BUCKETS, sizeof(*k->unstable));
	if (!k->stable || !k->unstable) {
		free(k->stable);
		free(k->unstable);
		free(k);
		return -ENOMEM;
	}
	k->c = c;
	k->knobs = *kn;
	k->scope_all = c->cfg.ksm_scope_all;
	pthread_mutex_init(&k->lock, NULL);
	pthread_cond_init(&k->cond, NULL);
	*out = k;
	return 0;
}

int ksm_start(struct ksm *k)
{
	int ret = -pthread_create(&k->thread, NULL, ksm_main, k);

	if (!ret)
		k->started = 1;
	return ret;
}

/* Stop the scanner; it lets go of its file.  Call before files close. */
void ksm_stop(struct ksm *k)
{
	if (!k || !k->started)
		return;
	pthread_mutex_lock(&k->lock);
	k->stop = 1;
	pthread_cond_broadcast(&k->cond);
	pthread_mutex_unlock(&k->lock);
	pthread_join(k->thread, NULL);
	k->started = 0;
}

void ksm_destroy(struct ksm *k)
{
	if (!k)
		return;
	ksm_stop(k);
	pthread_mutex_lock(&k->lock);	/* alone now; for the assertion */
	unstable_clear_locked(k);
	pthread_mutex_unlock(&k->lock);
	for (int t = 0; t < 2; t++)
		if (k->zero[t]) {	/* every page left it: files are closed */
			if (k->zero[t]->frame)
				frame_free(&k->c->frames, k->zero[t]->frame);
			else
				dev_frame_free(k->c->dev, k->zero[t]->daddr);
			free(k->zero[t]);
		}
	pthread_mutex_destroy(&k->lock);
	pthread_cond_destroy(&k->cond);
	free(k->stable);
	free(k->unstable);
	free(k);
}

void ksm_get(struct ksm *k, struct ksm_knobs *kn, struct ksm_stats *st)
{
	size_t ps = k->c->cfg.page_size;

	pthread_mutex_lock(&k->lock);
	*kn = k->knobs;
	*st = (struct ksm_stats){
		.pages_shared = k->nodes[0] + k->nodes[1],
		.pages_sharing = k->sharers[0] + k->sharers[1] - k->nodes[0] -
				 k->nodes[1] - k->zero_sharers[0] - k->zero_sharers[1],
		.pages_unshared = k->unshared,
		.pages_volatile = k->full_scans ? k->volatile_last : k->volatile_now,
		.full_scans = k->full_scans,
		.cow_breaks = k->cow_breaks,
		.zero_pages = k->zero_sharers[0] + k->zero_sharers[1],
		.pages_scanned = k->scanned,
	};
	for (int t = 0; t < 2; t++) {
		uint64_t saved = k->sharers[t] - k->nodes[t] - (k->zero[t] ? 1 : 0);

		if (k->sharers[t] < k->nodes[t] + (k->zero[t] ? 1 : 0))
			saved = 0;
		if (t == 0)
			st->saved_host_bytes = saved * ps;
		else
			st->saved_device_bytes = saved * ps;
	}
	pthread_mutex_unlock(&k->lock);
}

int ksm_set(struct ksm *k, const struct ksm_knobs *kn, uint32_t mask)
{
	struct ksm_knobs in = *kn, next;
	int ret;

	pthread_mutex_lock(&k->lock);
	next = k->knobs;
	for (unsigned int i = 0; i < KSM_NR_KNOBS; i++)
		if (mask & (1u << i))
			*ksm_knob_ref(&next, i) = *ksm_knob_ref(&in, i);
	ret = knobs_check(&next);
	if (!ret) {
		k->knobs = next;
		pthread_cond_broadcast(&k->cond);
	}
	pthread_mutex_unlock(&k->lock);
	return ret;
}
