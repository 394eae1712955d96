/* SPDX-License-Identifier: MIT */
/*
 * cache/migrate.c — moving pages between host memory and the device.
 *
 * A page is host-resident (a host frame, PG_device clear) or
 * device-resident (a device frame, PG_device set, no host frame).  Only
 * uptodate pages not under writeback move, and only with the page lock
 * held, so writers (who take the page lock) wait for a migration to end.
 * Readers take no page lock and are never blocked by one:
 *
 *   host -> device: copy the frame to a new device frame; store the
 *   device address, then set PG_device (release); wait for an RCU grace
 *   period; only then free the host frame.  A reader checks PG_device
 *   (acquire) inside an RCU read-side section (cache/read.c): if it saw
 *   the page on the host it copies from the old frame, which lives until
 *   its section ends; if it saw PG_device it finds the device address.
 *
 *   device -> host: the mirror image: copy into a new host frame, store
 *   it, clear PG_device (release), and free the device frame after a
 *   grace period (call_rcu: the promoting reader does not wait for it).
 *   A reader that saw PG_device still has its device frame until its
 *   device-to-host copy is done.
 *
 * Pages move in batches (all copies on one fence, one grace period for
 * the batch), because a grace period costs far more than a page copy;
 * demotion waits for it (synchronize_rcu) since its caller needs the host
 * frames back at once.
 *
 * Automatic migration.  When host frames run out, cache_frame_get()
 * demotes cold pages from the inactive tail to the device (lru.c,
 * lru_demote), dirty ones too: they stay dirty there and are written back
 * through bounce buffers.  When device frames run out, the coldest clean
 * device pages are dropped (dev_lru_evict).  CPU reads of device pages
 * are served through bounce buffers; with migrate=promote a CPU access
 * brings the page back to the host, with migrate=adaptive only a page the
 * CPU has read a few times (PROMOTE_READS).
 *
 * Anti-thrash.  Each page remembers when it last changed tier and how
 * often it did within THRASH_WINDOW_MS.  A page that moved THRASH_MOVES
 * times in that window is held where it is for THRASH_HOLD_MS: automatic
 * migrations skip it (explicit ones, hmmfsctl migrate, do not).
 *
 * The device write fault.  A device page is mapped read-only on the
 * device until a device-side write faults (dev_compute returns -EFAULT);
 * wp_fault_locked(WP_DEVICE) (cache/wp.c) then does what page_mkwrite does:
 * waits for writeback of the page, copies it if dedupe shares it, marks it
 * dirty, maps it read-write.  Taking the page for writeback maps it
 * read-only again (writeback.c).
 *
 * Explicit requests (the migrate and devop ioctls) are bounded and skip
 * holes: see "Bounded requests" below, at scan_next().
 *
 * Locking: every function here that ends in _locked runs with the page
 * locks of its pages held; batches lock pages in ascending index order
 * (and writers hold one page lock only), so batches cannot deadlock.
 * Lists move under cache->lru_lock, inside the page locks.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#include "cache/cache_int.h"
#include "lib/racy.h"
#include "cache/rcu.h"
#include "lib/lockcheck.h"
#include "lib/compiler.h"

#define THRASH_WINDOW_MS 2000
#define THRASH_MOVES 4
#define THRASH_HOLD_MS 1000
#define PROMOTE_READS 3
#define MIGRATE_CHUNK 64	/* pages per explicit migration batch */

struct deferred_frame {
	struct rcu_head rcu;
	struct cache *c;
	void *frame;
	dev_addr_t daddr;
};

static void frame_free_rcu(struct rcu_head *head)
{
	struct deferred_frame *d = (struct deferred_frame *)head;

	cache_rcu_reclaim();
	if (d->frame)
		frame_free(&d->c->frames, d->frame);
	else
		dev_frame_free(d->c->dev, d->daddr);
	free(d);
}

/* Free a host frame or a device frame once no reader can be using it. */
void frame_free_deferred(struct cache *c, void *frame, dev_addr_t daddr)
{
	struct deferred_frame *d = malloc(sizeof(*d));

	if (!d) {	/* rare: wait for the readers here instead */
		synchronize_rcu();
		if (frame)
			frame_free(&c->frames, frame);
		else
			dev_frame_free(c->dev, daddr);
		return;
	}
	*d = (struct deferred_frame){ .c = c, .frame = frame, .daddr = daddr };
	cache_rcu_defer();
	call_rcu(&d->rcu, frame_free_rcu);
}

/* Record a tier change of @p.  Context: page locked. */
static void page_note_migration(struct cpage *p, uint64_t now)
{
	if (now - p->migrated_ms > THRASH_WINDOW_MS)
		p->migrations = 0;
	p->migrations++;
	p->migrated_ms = now;
}

bool page_thrash_hold(struct cache *c, struct cpage *p)
{
	if (p->migrations < THRASH_MOVES ||
	    cache_now_ms() - p->migrated_ms > THRASH_HOLD_MS)
		return false;
	ctr_inc(c, thrash_holds, 1);
	return true;
}

void cache_inval(struct cache *c, struct cfile *f, uint64_t first, uint64_t n)
{
	size_t ps = c->cfg.page_size;

	if (c->cfg.inval && n)
		c->cfg.inval(c->cfg.inval_arg, f->owner, (off_t)(first * ps),
			     (off_t)(n * ps));
}

/* Tell the fs layer which runs of @pp moved to the device. */
static void pages_inval(struct cache *c, struct cpage **pp, const bool *moved,
			size_t n)
{
	for (size_t i = 0, j; i < n; i = j) {
		for (j = i + 1; j < n && moved[j] == moved[i] &&
				pp[j]->file == pp[i]->file &&
				pp[j]->index == pp[j - 1]->index + 1; j++)
			;
		if (moved[i])
			cache_inval(c, pp[i]->file, pp[i]->index, j - i);
	}
}

/* May @p move to the device now? */
static bool page_can_demote(struct cache *c, struct cpage *p, bool automatic)
{
	uint32_t s = page_flags(&p->ps);

	if ((s & (PG_BIT(PG_device) | PG_BIT(PG_writeback) | PG_BIT(PG_shared))) ||
	    !(s & PG_BIT(PG_uptodate)))
		return false;	/* a shared page moves with its frame */
	return !automatic || !page_thrash_hold(c, p);
}

/* Make room on a full unit: its replicas first (free to drop), then its
 * coldest clean pages.  Return: frames freed. */
static size_t unit_make_room(struct cache *c, unsigned int unit, size_t want)
{
	size_t n = rep_evict(c, unit, want, UINT64_MAX);

	return n ? n : dev_lru_evict(c, unit, want);
}

/*
 * A device frame on @unit (CACHE_UNIT_ANY: the unit with the most room),
 * making room on a full unit.
 */
int dev_frame_get(struct cache *c, int unit, dev_addr_t *a, size_t want)
{
	int ret;

	if (unit != CACHE_UNIT_ANY) {
		ret = dev_frame_alloc_on(c->dev, (unsigned int)unit, a);
		if (ret == -ENOSPC && unit_make_room(c, (unsigned int)unit, want))
			ret = dev_frame_alloc_on(c->dev, (unsigned int)unit, a);
		return ret;
	}
	ret = dev_frame_alloc(c->dev, a);
	for (unsigned int k = 0; ret == -ENOSPC && k < dev_units(c->dev); k++)
		if (unit_make_room(c, k, want))
			ret = dev_frame_alloc_on(c->dev, k, a);
	return ret;
}

/* Switch the copied pages to the device; free their host frames. */
static void pages_commit_to_device(struct cache *c, struct cpage **pp,
				   const dev_addr_t *to, bool *moved, size_t n)
{
	uint64_t now = cache_now_ms();
	size_t count = 0;

	pthread_mutex_lock(&c->lru_lock);
	for (size_t i = 0; i < n; i++) {
		struct cpage *p = pp[i];

		moved[i] = to[i] != DEV_ADDR_NONE;
		if (!moved[i])
			continue;
		atomic_store_explicit(&p->daddr, to[i], memory_order_relaxed);
		page_set_device(&p->ps);	/* pairs: readers' page_test_device */
		lru_del_locked(c, p);
		clist_add_head(&c->dev_lru[dev_addr_unit(to[i])], &p->lru);
		dev_pages_inc(c, to[i]);
		atomic_store_explicit(&p->cpu_reads, 0, memory_order_relaxed);
		page_note_migration(p, now);
		atomic_fetch_add_explicit(&p->file->ctr.migrations_to_device, 1,
					  memory_order_relaxed);
		count++;
	}
	pthread_mutex_unlock(&c->lru_lock);
	/* readers that saw the page on the host finish before its frame goes */
	synchronize_rcu();
	cache_rcu_reclaim();
	for (size_t i = 0; i < n; i++) {
		if (!moved[i])
			continue;
		frame_free(&c->frames, page_frame(pp[i]));
		atomic_store_explicit(&pp[i]->frame, NULL, memory_order_relaxed);
	}
	atomic_fetch_sub(&c->nr_pages, count);
	ctr_inc(c, migrations_to_device, count);
}

/*
 * The shared pages of @pp move with their frame and every other page on
 * it (cache/ksm.c).  Return: pages moved, or -errno if none moved.
 */
static int pages_move_shared_locked(struct cache *c, struct cpage **pp,
				    size_t n, bool to_dev, bool automatic)
{
	int moved = 0, err = 0;

	for (size_t i = 0; i < n; i++) {
		struct cpage *p = pp[i];
		int r;

		if (!page_test_shared(&p->ps) || page_test_device(&p->ps) == to_dev ||
		    (automatic && page_thrash_hold(c, p)))
			continue;
		r = ksm_move_shared_locked(p, to_dev, pp, n);
		if (r > 0)
			moved += r;
		else if (r < 0 && !err)
			err = r;
	}
	return moved ? moved : err;
}

/*
 * Device page @p now lives at @to on another unit, its bytes copied there
 * (or a replica there taken): switch the address under lru_lock; readers
 * that saw the old one finish before its frame goes (deferred free), as
 * after a migration.  Dirty pages stay dirty, a page the device maps
 * read-write stays so.  Context: page locked.
 */
static void page_unit_switch_locked(struct cache *c, struct cpage *p, dev_addr_t to)
{
	dev_addr_t old = page_daddr(p);

	lock_assert(page_test_locked(&p->ps));
	if (page_test_dev_rw(&p->ps))
		dev_protect(c->dev, to, true);
	pthread_mutex_lock(&c->lru_lock);
	atomic_store_explicit(&p->daddr, to, memory_order_release);
	clist_del(&p->lru);
	clist_add_head(&c->dev_lru[dev_addr_unit(to)], &p->lru);
	dev_pages_dec(c, old);
	dev_pages_inc(c, to);
	pthread_mutex_unlock(&c->lru_lock);
	dev_protect(c->dev, old, false);
	frame_free_deferred(c, NULL, old);
	atomic_fetch_add_explicit(&p->file->ctr.migrations_to_device, 1,
				  memory_order_relaxed);
	ctr_inc(c, migrations_to_device, 1);
}

/* May device page @p move to @unit?  Context: page locked. */
static bool page_may_change_unit(const struct cpage *p, unsigned int unit)
{
	uint32_t s = page_flags(&((struct cpage *)p)->ps);

	return (s & PG_BIT(PG_device)) && dev_addr_unit(page_daddr(p)) != unit &&
	       !(s & (PG_BIT(PG_shared) | PG_BIT(PG_writeback)));
}

/*
 * The device pages of @pp on other units than @unit move there: a
 * replica already there is taken as the page, the rest are copied in one
 * batch (device.c: the peer path, or staged through the host).  A full
 * unit stops it.  Return: pages moved, or -errno if none moved.
 */
static int pages_to_unit_locked(struct cache *c, struct cpage **pp, size_t n,
				unsigned int unit)
{
	dev_addr_t *to = malloc(n * sizeof(*to));
	struct dev_copy *cps = malloc(n * sizeof(*cps));
	size_t ncp = 0;
	int moved = 0, ret = 0;

	if (!to || !cps) {
		free(to);
		free(cps);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		struct cpage *p = pp[i];

		to[i] = DEV_ADDR_NONE;
		if (ret || !page_may_change_unit(p, unit))
			continue;
		to[i] = replica_take_locked(c, p, (int)unit);
		if (to[i] != DEV_ADDR_NONE)
			continue;	/* no copy needed */
		ret = dev_frame_get(c, (int)unit, &to[i], n - i);
		if (ret) {
			to[i] = DEV_ADDR_NONE;
			continue;	/* full: the rest stay */
		}
		cps[ncp++] = (struct dev_copy){ .dir = DEV_D2D, .dst = to[i],
						.src = page_daddr(p),
						.len = c->cfg.page_size };
	}
	if (ncp && (ret = dev_copy_batch(c->dev, cps, ncp)) != 0 && ret != -ENOSPC) {
		for (size_t i = 0; i < n; i++)	/* the copies may be partial */
			if (to[i] != DEV_ADDR_NONE)
				dev_frame_free(c->dev, to[i]);
		free(to);
		free(cps);
		return ret == -ENODEV ? -EIO : ret;
	}
	for (size_t i = 0; i < n; i++) {
		if (to[i] == DEV_ADDR_NONE)
			continue;
		page_unit_switch_locked(c, pp[i], to[i]);
		moved++;
	}
	free(to);
	free(cps);
	return moved ? moved : (ret == -ENOSPC ? 0 : ret);
}

/*
 * Move the host pages of @pp to the device: to @unit, or (CACHE_UNIT_ANY)
 * wherever there is room; with a unit, device pages on other units move
 * there too.  Return: pages moved, or -errno if none moved.
 */
int pages_to_device_locked(struct cache *c, struct cpage **pp, size_t n,
			   bool automatic, int unit)
{
	struct dev_fence fence = DEV_FENCE_INIT;
	dev_addr_t *to = malloc(n * sizeof(*to));
	bool *moved = calloc(n, sizeof(*moved));
	size_t queued = 0;
	int ret = 0, r;

	if (!to || !moved) {
		free(to);
		free(moved);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		to[i] = DEV_ADDR_NONE;
		assert(page_test_locked(&pp[i]->ps));
		if (ret || !page_can_demote(c, pp[i], automatic))
			continue;
		to[i] = replica_take_locked(c, pp[i], unit);
		if (to[i] != DEV_ADDR_NONE) {	/* a replica becomes the page */
			queued++;
			continue;
		}
		ret = dev_frame_get(c, unit, &to[i], n - i);
		if (ret)
			continue;	/* full: the rest stay on the host */
		ret = dev_copy_to_device(c->dev, to[i], page_frame(pp[i]),
					 c->cfg.page_size, &fence);
		if (ret) {
			dev_frame_free(c->dev, to[i]);
			to[i] = DEV_ADDR_NONE;
		} else {
			queued++;
		}
	}
	r = dev_fence_wait(c->dev, &fence);
	if (r) {	/* the copies may be partial: the pages stay on the host */
		for (size_t i = 0; i < n; i++)
			if (to[i] != DEV_ADDR_NONE)
				dev_frame_free(c->dev, to[i]);
		queued = 0;
		ret = r;
	} else if (queued) {
		pages_commit_to_device(c, pp, to, moved, n);
		pages_inval(c, pp, moved, n);
	}
	free(to);
	free(moved);
	r = pages_move_shared_locked(c, pp, n, true, automatic);
	if (r > 0)
		queued += (size_t)r;
	else if (r < 0 && !ret)
		ret = r;
	if (unit != CACHE_UNIT_ANY && !ret) {
		r = pages_to_unit_locked(c, pp, n, (unsigned int)unit);
		if (r > 0)
			queued += (size_t)r;
		else if (r < 0)
			ret = r;
	}
	if (queued)
		return (int)queued;
	return ret == -ENOSPC ? 0 : ret;
}

/* Switch the copied pages to the host; free their device frames. */
static void pages_commit_to_host(struct cache *c, struct cpage **pp,
				 void *const *to, size_t n)
{
	uint64_t now = cache_now_ms();
	size_t count = 0;

	pthread_mutex_lock(&c->lru_lock);
	for (size_t i = 0; i < n; i++) {
		struct cpage *p = pp[i];

		if (!to[i])
			continue;
		atomic_store_explicit(&p->frame, to[i], memory_order_relaxed);
		dev_pages_dec(c, page_daddr(p));
		page_clear_dev_rw(&p->ps);
		page_clear_device(&p->ps);	/* pairs: readers' page_test_device */
		clist_del(&p->lru);
		clist_add_head(&c->inactive, &p->lru);
		page_note_migration(p, now);
		atomic_fetch_add_explicit(&p->file->ctr.migrations_to_host, 1,
					  memory_order_relaxed);
		count++;
	}
	pthread_mutex_unlock(&c->lru_lock);
	/*
	 * Readers still copying from the device frames finish first: the
	 * frames are freed after a grace period, without waiting for it here
	 * (promotion runs in the read path; nobody needs the frames at once).
	 */
	for (size_t i = 0; i < n; i++) {
		if (!to[i])
			continue;
		frame_free_deferred(c, NULL, page_daddr(pp[i]));
		atomic_store_explicit(&pp[i]->daddr, DEV_ADDR_NONE, memory_order_relaxed);
	}
	atomic_fetch_add(&c->nr_pages, count);
	ctr_inc(c, migrations_to_host, count);
}

int pages_to_host_locked(struct cache *c, struct cpage **pp, size_t n,
			 bool automatic)
{
	struct dev_fence fence = DEV_FENCE_INIT;
	void **to = calloc(n, sizeof(*to));
	size_t queued = 0;
	int ret = 0, r;

	if (!to)
		return -ENOMEM;
	for (size_t i = 0; i < n && !ret; i++) {
		struct cpage *p = pp[i];

		assert(page_test_locked(&p->ps));
		if (!page_test_device(&p->ps) || page_test_writeback(&p->ps) ||
		    page_test_shared(&p->ps) || (automatic && page_thrash_hold(c, p)))
			continue;
		to[i] = cache_frame_get(c, false);
		if (!to[i]) {
			ret = -ENOSPC;
			break;
		}
		ret = dev_copy_to_host(c->dev, to[i], page_daddr(p),
				       c->cfg.page_size, &fence);
		if (ret) {
			frame_free(&c->frames, to[i]);
			to[i] = NULL;
		} else {
			queued++;
		}
	}
	r = dev_fence_wait(c->dev, &fence);
	if (r) {
		for (size_t i = 0; i < n; i++)
			if (to[i])
				frame_free(&c->frames, to[i]);
		queued = 0;
		ret = r;
	} else if (queued) {
		pages_commit_to_host(c, pp, to, n);
	}
	free(to);
	r = pages_move_shared_locked(c, pp, n, false, automatic);
	if (r > 0)
		queued += (size_t)r;
	else if (r < 0 && !ret)
		ret = r;
	if (queued)
		return (int)queued;
	return ret == -ENOSPC ? 0 : ret;
}

/*
 * Point device page @p at device frame @to, which already holds its bytes
 * (dedupe's shared frame, or a private copy of it): if @to lies on another
 * unit, the page's place on the per-unit lists and counts goes with it,
 * so that unit's eviction and budget see it.  The caller frees the old
 * frame after a grace period.  Context: page locked, on the device.
 */
void page_daddr_switch_locked(struct cache *c, struct cpage *p, dev_addr_t to)
{
	dev_addr_t old = page_daddr(p);

	lock_assert(page_test_locked(&p->ps));
	pthread_mutex_lock(&c->lru_lock);
	atomic_store_explicit(&p->daddr, to, memory_order_release);
	if (dev_addr_unit(to) != dev_addr_unit(old)) {
		clist_del(&p->lru);
		clist_add_head(&c->dev_lru[dev_addr_unit(to)], &p->lru);
		dev_pages_dec(c, old);
		dev_pages_inc(c, to);
	}
	pthread_mutex_unlock(&c->lru_lock);
}

/*
 * Move @p to the other tier without copying: its bytes are already in
 * @frame (to the host) or @daddr (to the device), a frame dedupe shares.
 * The caller frees the old frame after a grace period.  Context: page
 * locked, uptodate, clean, not under writeback.
 */
void page_switch_tier_locked(struct cache *c, struct cpage *p, void *frame,
			     dev_addr_t daddr)
{
	bool to_dev = frame == NULL;

	lock_assert(page_test_locked(&p->ps));
	pthread_mutex_lock(&c->lru_lock);
	lru_del_locked(c, p);
	if (to_dev) {
		atomic_store_explicit(&p->daddr, daddr, memory_order_relaxed);
		page_set_device(&p->ps);	/* pairs: readers' page_test_device */
		clist_add_head(&c->dev_lru[dev_addr_unit(daddr)], &p->lru);
		atomic_store_explicit(&p->frame, NULL, memory_order_relaxed);
		dev_pages_inc(c, daddr);
	} else {
		dev_pages_dec(c, page_daddr(p));
		atomic_store_explicit(&p->frame, frame, memory_order_relaxed);
		page_clear_dev_rw(&p->ps);
		page_clear_device(&p->ps);
		clist_add_head(&c->inactive, &p->lru);
		atomic_store_explicit(&p->daddr, DEV_ADDR_NONE, memory_order_relaxed);
	}
	pthread_mutex_unlock(&c->lru_lock);
	if (to_dev)
		atomic_fetch_sub(&c->nr_pages, 1);
	else
		atomic_fetch_add(&c->nr_pages, 1);
}

/* Does the policy want device page @p (just read by the CPU) on the host? */
static bool page_wants_promotion(struct cache *c, struct cpage *p)
{
	unsigned int reads = atomic_fetch_add_explicit(&p->cpu_reads, 1,
						       memory_order_relaxed) + 1;

	switch (c->policy) {
	case MIGRATE_PROMOTE:
		return true;
	case MIGRATE_ADAPTIVE:
		return reads >= PROMOTE_READS;
	default:
		return false;
	}
}

void pages_promote_hot(struct cache *c, struct cpage **pp, size_t n)
{
	struct cpage *batch[MIGRATE_CHUNK];
	size_t nb = 0;

	for (size_t i = 0; i < n; i++) {
		struct cpage *p = pp[i];

		if (!page_test_device(&p->ps) || !page_wants_promotion(c, p))
			continue;
		if (nb == MIGRATE_CHUNK || !cache_page_trylock(&p->ps))
			continue;	/* busy: another time */
		batch[nb++] = p;
	}
	if (nb)
		pages_to_host_locked(c, batch, nb, true);
	for (size_t i = 0; i < nb; i++)
		cache_page_unlock(&batch[i]->ps);
}

/* Clip [*off, *off + *len) to the file; len 0 means to EOF. */
static int range_clip(struct cfile *f, off_t *off, off_t *len)
{
	off_t size = cache_file_size(f);

	if (*off < 0 || *len < 0)
		return -EINVAL;
	if (*off > size)
		return -ERANGE;
	if (!*len || *len > size - *off)
		*len = size - *off;
	return 0;
}

static void pages_lock_all(struct cpage **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		cache_page_lock(&v[i]->ps);
}

static void pages_unlock_put_all(struct cpage **v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		cache_page_unlock(&v[i]->ps);
		page_put(v[i]);
	}
	free(v);
}

static size_t chunk_pages(struct cache *c)
{
	size_t n = c->frames.max_frames / 4;

	return n < 1 ? 1 : n > MIGRATE_CHUNK ? MIGRATE_CHUNK : n;
}

/*
 * Bounded requests.  An explicit request (hmmfsctl, the ioctls) works on
 * at most CACHE_REQUEST_BYTES of the file, in chunks of chunk_pages(), then
 * says where it stopped (@next), and the caller asks again from there:
 * however large the range a raw ioctl names, the daemon answers after
 * that much work, so the caller can be killed between requests, and the
 * only memory a request allocates is one chunk's page array.  Between
 * chunks a request also asks cache_config.cancelled: a caller killed in
 * the middle of one (the kernel sent an INTERRUPT), or a daemon that is
 * ending, stops it after the chunk, with @next saying where.
 *
 * Holes cost nothing.  A page that is neither cached nor backed by data
 * in BACKING (SEEK_DATA) reads as zeros: moving it would fill the cache
 * with zero pages and the index with nodes that live as long as the file
 * (index.c), which is how one migrate of a 1 TiB sparse file took
 * minutes and gigabytes.  So a request skips such runs without counting
 * them (each chunk it does work in counts as at least a full one), and
 * acts only on cached pages and on data BACKING really has
 * (an operation that turns zero bytes into something else, a devop with
 * a value other than 0, has to write the holes: it goes page by page).
 */
enum scan_mode {
	SCAN_CACHED,	/* cached pages only */
	SCAN_DATA,	/* cached pages and BACKING's data */
	SCAN_ALL,	/* every page of the range */
};

/**
 * struct scan - where a bounded request is.
 * @cur:    the first page not looked at yet.
 * @last:   the last page of the request's range.
 * @budget: pages the request may still work on.
 * @step:   pages per chunk.
 */
struct scan {
	struct cfile *f;
	enum scan_mode mode;
	uint64_t cur, last, budget, step;
	bool started;	/* a chunk was handed out */
};

/* Has the request's caller gone (cache_config.cancelled)? */
static bool request_cancelled(struct cache *c)
{
	return c->cfg.cancelled && c->cfg.cancelled(c->cfg.cancel_arg);
}

static void scan_init(struct scan *s, struct cfile *f, enum scan_mode mode,
		      uint64_t first, uint64_t last)
{
	struct cache *c = f->cache;
	uint64_t budget = CACHE_REQUEST_BYTES >> c->page_shift;

	*s = (struct scan){ .f = f, .mode = mode, .cur = first, .last = last,
			    .budget = budget ? budget : 1,
			    .step = chunk_pages(c) };
}

static int first_cached_one(struct cpage *p, void *arg)
{
	cache_rcu_found(p);
	*(uint64_t *)arg = p->index;
	return 1;	/* stop the walk */
}

/* The first cached page of @f in [@from, @last], or UINT64_MAX. */
static uint64_t first_cached(struct cfile *f, uint64_t from, uint64_t last)
{
	uint64_t index = UINT64_MAX;

	rcu_read_lock();
	index_for_each(f, from, last, first_cached_one, &index);
	cache_rcu_read_unlock();
	return index;
}

/*
 * The first page at or after @from that BACKING has data in, and in
 * *@end the last page of that run of data.  Return: UINT64_MAX when no
 * data follows.  A BACKING that cannot tell is all data.
 */
static uint64_t backing_data(struct cfile *f, uint64_t from, uint64_t *end)
{
	unsigned int shift = f->cache->page_shift;
	off_t d = lseek(f->fd, (off_t)(from << shift), SEEK_DATA), h;

	*end = UINT64_MAX;
	if (d < 0)
		return errno == ENXIO ? UINT64_MAX : from;
	h = lseek(f->fd, d, SEEK_HOLE);
	if (h > d)
		*end = (uint64_t)(h - 1) >> shift;
	return (uint64_t)d >> shift;
}

static uint64_t min3(uint64_t a, uint64_t b, uint64_t c)
{
	uint64_t m = a < b ? a : b;

	return m < c ? m : c;
}

/*
 * The next chunk of the request: pages [*@first, *@last], to read in
 * (*@populate: BACKING has data there, or the mode writes holes) or, in
 * a hole, only those cached.  Return: false when the request is done
 * (its range is covered) or has used its budget (@s->cur says where).
 */
static bool scan_next(struct scan *s, uint64_t *first, uint64_t *last,
		      bool *populate)
{
	uint64_t max = s->budget < s->step ? s->budget : s->step;
	uint64_t d = UINT64_MAX, dend = UINT64_MAX, c, stop, cost;

	if (s->cur > s->last || !s->budget)
		return false;
	if (s->started && request_cancelled(s->f->cache))
		return false;	/* the caller has gone: stop, say where */
	s->started = true;
	if (s->mode == SCAN_ALL)
		d = s->cur;
	else if (s->mode == SCAN_DATA)
		d = backing_data(s->f, s->cur, &dend);
	if (d == s->cur) {	/* in data */
		*first = s->cur;
		*populate = true;
	} else {	/* in a hole up to page d - 1 */
		stop = d - 1 < s->last ? d - 1 : s->last;
		c = first_cached(s->f, s->cur, stop);
		if (c != UINT64_MAX) {
			*first = c;
			*populate = false;
			dend = stop;
		} else if (d <= s->last) {
			*first = d;
			*populate = true;
		} else {
			s->cur = s->last + 1;	/* holes to the end */
			return false;
		}
	}
	*last = min3(dend, s->last, *first + max - 1);
	/*
	 * A chunk costs at least a full one: each chunk waits for a grace
	 * period, so a file of many short runs must not get more chunks per
	 * request than a dense one does.
	 */
	cost = *last - *first + 1 > s->step ? *last - *first + 1 : s->step;
	s->budget = s->budget > cost ? s->budget - cost : 0;
	s->cur = *last + 1;
	return true;
}

/* Where a request that stopped at @s should go on, in bytes. */
static void scan_next_offset(const struct scan *s, off_t end, off_t *next)
{
	if (next)
		*next = s->cur > s->last ? end :
			(off_t)(s->cur << s->f->cache->page_shift);
}

/*
 * The pages of a chunk, referenced, in index order: read in when
 * @populate, else those cached with any of @need.  Release them with
 * pages_unlock_put_all() once locked.
 */
static int chunk_get(struct cfile *f, uint64_t first, uint64_t last,
		     bool populate, uint32_t need, struct cpage ***v, size_t *n)
{
	int ret;

	if (populate) {
		ret = file_populate(f, first, last, v, n);
		if (!ret && !*n)
			ret = -ENOMEM;	/* not even one host frame to read into */
		return ret;
	}
	ret = file_collect_pages(f, first, last, need, v, n);
	if (ret) {
		for (size_t i = 0; i < *n; i++)
			page_put((*v)[i]);
		free(*v);
		*v = NULL;
	}
	return ret;
}

/* Move one chunk of pages.  Return: pages moved, or -errno. */
static int migrate_chunk(struct cfile *f, uint64_t first, uint64_t last,
			 bool to_device, int unit, bool populate)
{
	struct cache *c = f->cache;
	uint32_t need = to_device ? PG_BIT(PG_uptodate) : PG_BIT(PG_device);
	struct cpage **v;
	size_t n, want = 0;
	int ret;

	ret = chunk_get(f, first, last, populate, need, &v, &n);
	if (ret)
		return ret;
	pages_lock_all(v, n);
	for (size_t i = 0; i < n; i++)	/* dedupe's frames stay on their unit */
		if (page_test_device(&v[i]->ps) != to_device ||
		    (to_device && unit != CACHE_UNIT_ANY &&
		     page_may_change_unit(v[i], (unsigned int)unit)))
			want++;
	ret = to_device ? pages_to_device_locked(c, v, n, false, unit) :
			  pages_to_host_locked(c, v, n, false);
	pages_unlock_put_all(v, n);
	if (ret >= 0 && (size_t)ret < want)
		return -ENOSPC;	/* the target tier filled up */
	return ret;
}

/*
 * Begin a bounded request on [*@off, *@off + *@len), clipped to the file:
 * *@next (if wanted) says where the rest starts, the clipped end until
 * the request stops early.  Return: 1 to go on, 0 when the range is
 * empty, -ENODEV without a device tier, or -errno for the range.
 */
static int request_begin(struct cfile *f, off_t *off, off_t *len, off_t *next)
{
	int ret;

	if (next)
		*next = *off;
	if (!f->cache->dev)
		return -ENODEV;
	ret = range_clip(f, off, len);
	if (ret)
		return ret;
	if (next)
		*next = *off + *len;
	return *len ? 1 : 0;
}

int cache_migrate(struct cfile *f, off_t off, off_t len, bool to_device,
		  int unit, uint64_t *moved, off_t *next)
{
	struct cache *c = f->cache;
	unsigned int shift = c->page_shift;
	uint64_t first, last;
	struct scan s;
	bool populate;
	int ret;

	*moved = 0;
	ret = request_begin(f, &off, &len, next);
	if (ret <= 0)
		return ret;
	if (unit != CACHE_UNIT_ANY && (unit < 0 || (unsigned int)unit >= dev_units(c->dev)))
		return -EINVAL;
	scan_init(&s, f, to_device ? SCAN_DATA : SCAN_CACHED,
		  (uint64_t)off >> shift, (uint64_t)(off + len - 1) >> shift);
	while (scan_next(&s, &first, &last, &populate)) {
		uint32_t lost = cache_lost_units(c);

		if (lost)	/* clean pages there: BACKING has them */
			file_drop_lost_pages(f, first, last);
		ret = migrate_chunk(f, first, last, to_device, unit, populate);
		while (ret < 0 && cache_lost_units(c) != lost) {	/* lost meanwhile */
			lost = cache_lost_units(c);
			file_drop_lost_pages(f, first, last);
			ret = migrate_chunk(f, first, last, to_device, unit, populate);
		}
		if (ret < 0)
			return ret;
		*moved += (uint64_t)ret;
	}
	scan_next_offset(&s, off + len, next);
	return 0;
}

/* Replicate one chunk to every unit of @units, counting into *@made. */
static int replicate_chunk(struct cfile *f, uint64_t first, uint64_t last,
			   uint32_t units, uint64_t seq, bool populate,
			   uint64_t *made)
{
	struct cache *c = f->cache;
	struct cpage **v;
	size_t n, m;
	int ret;

	ret = chunk_get(f, first, last, populate, PG_BIT(PG_uptodate), &v, &n);
	if (ret)
		return ret;
	pages_lock_all(v, n);
	for (unsigned int k = 0; k < dev_units(c->dev) && !ret; k++) {
		if (!(units & (1u << k)))
			continue;
		ret = pages_replicate_locked(c, v, n, k, seq, &m);
		*made += m;
	}
	pages_unlock_put_all(v, n);
	return ret;
}

int cache_replicate(struct cfile *f, off_t off, off_t len, uint32_t units,
		    uint64_t *copies, off_t *next)
{
	struct cache *c = f->cache;
	unsigned int shift = c->page_shift;
	uint64_t first, last, seq = atomic_fetch_add(&c->rep_seq, 1);
	struct scan s;
	bool populate;
	int ret;

	*copies = 0;
	ret = request_begin(f, &off, &len, next);
	if (ret <= 0)
		return ret;
	if (!units || units >> dev_units(c->dev))
		return -EINVAL;
	scan_init(&s, f, SCAN_DATA, (uint64_t)off >> shift,
		  (uint64_t)(off + len - 1) >> shift);
	while (scan_next(&s, &first, &last, &populate)) {
		ret = replicate_chunk(f, first, last, units, seq, populate, copies);
		if (ret < 0)
			return ret;
	}
	scan_next_offset(&s, off + len, next);
	return 0;
}

/* Run @op over the part of page @p inside [off, end).  Context: locked. */
static int devop_page_locked(struct cache *c, struct cpage *p, int op,
			     uint64_t value, off_t off, off_t end,
			     struct dev_fence *fence)
{
	size_t ps = c->cfg.page_size;
	off_t pstart = (off_t)(p->index * ps);
	size_t from = off > pstart ? (size_t)(off - pstart) : 0;
	size_t to = end < pstart + (off_t)ps ? (size_t)(end - pstart) : ps;
	int ret;

	lock_assert(page_test_locked(&p->ps));
	if (!page_test_device(&p->ps))
		return -ENOSPC;	/* the device had no room for it */
	ret = dev_compute(c->dev, op, page_daddr(p) + from, to - from, value, fence);
	if (ret == -EFAULT) {	/* mapped read-only: the device write fault */
		ret = wp_fault_locked(p, WP_DEVICE);
		if (!ret)
			ret = dev_compute(c->dev, op, page_daddr(p) + from, to - from,
					  value, fence);
	}
	return ret;
}

/* One chunk of a devop.  Return: pages written, or -errno. */
static int devop_chunk(struct cfile *f, uint64_t first, uint64_t last,
		       bool populate, int op, uint64_t value, off_t off, off_t end)
{
	struct cache *c = f->cache;
	struct dev_fence fence = DEV_FENCE_INIT;
	struct cpage **v;
	size_t n, done = 0;
	int ret, r;

	ret = chunk_get(f, first, last, populate, PG_BIT(PG_uptodate), &v, &n);
	if (ret)
		return ret;
	pages_lock_all(v, n);
	ret = pages_to_device_locked(c, v, n, false, CACHE_UNIT_ANY);
	for (size_t i = 0; i < n && ret >= 0; i++) {
		ret = devop_page_locked(c, v[i], op, value, off, end, &fence);
		if (!ret)
			done++;
	}
	r = dev_fence_wait(c->dev, &fence);	/* before any page unlocks */
	if (done)
		file_content_changed(f);
	pages_unlock_put_all(v, n);
	if (ret >= 0)
		ret = r;
	if (done)
		cache_inval(c, f, first, last - first + 1);
	if (ret < 0)
		return ret == -ENODEV ? -EIO : ret;
	return (int)done;
}

int cache_devop(struct cfile *f, off_t off, off_t len,
		enum cache_devop_kind kind, uint64_t value, uint64_t *pages,
		off_t *next)
{
	static const enum dev_op_kind ops[] = {
		[CACHE_DEVOP_FILL] = DEV_OP_FILL, [CACHE_DEVOP_XOR] = DEV_OP_XOR,
		[CACHE_DEVOP_ADD] = DEV_OP_ADD,
	};
	struct cache *c = f->cache;
	int op;
	unsigned int shift = c->page_shift;
	uint64_t first, last;
	struct scan s;
	bool populate;
	int ret;

	*pages = 0;
	if ((unsigned int)kind >= ARRAY_SIZE(ops) || value > 255)
		return c->dev ? -EINVAL : -ENODEV;
	op = ops[kind];
	ret = request_begin(f, &off, &len, next);
	if (ret <= 0)
		return ret;
	ret = 0;
	/* with value 0, every op leaves zero bytes zero: holes stay holes */
	scan_init(&s, f, value ? SCAN_ALL : SCAN_DATA,
		  (uint64_t)off >> shift, (uint64_t)(off + len - 1) >> shift);
	while (!ret && scan_next(&s, &first, &last, &populate)) {
		int r = devop_chunk(f, first, last, populate, op, value, off,
				    off + len);

		if (r < 0)
			ret = r;
		else
			*pages += (uint64_t)r;
	}
	if (*pages)
		file_touch_mtime(f);
	if (!ret)
		scan_next_offset(&s, off + len, next);
	return ret;
}

/* ---- read-only device operations: XXH64 of a range on one device ---- */

/**
 * struct cache_xxh64 - a hash of a file range in progress, across
 * requests: @at is the next byte it takes.
 */
struct cache_xxh64 {
	XXH64_state_t *st;
	off_t at;
};

struct cache_xxh64 *cache_xxh64_new(off_t at)
{
	struct cache_xxh64 *h = malloc(sizeof(*h));

	if (!h)
		return NULL;
	h->st = XXH64_createState();
	if (!h->st) {
		free(h);
		return NULL;
	}
	XXH64_reset(h->st, 0);
	h->at = at;
	return h;
}

void cache_xxh64_free(struct cache_xxh64 *h)
{
	if (h) {
		XXH64_freeState(h->st);
		free(h);
	}
}

off_t cache_xxh64_at(const struct cache_xxh64 *h)
{
	return h->at;
}

uint64_t cache_xxh64_digest(const struct cache_xxh64 *h)
{
	return XXH64_digest(h->st);
}

/* Feed zeros up to @to (a hole).  At most one request's worth. */
static void xxh64_zeros(struct cache_xxh64 *h, off_t to)
{
	static const char zeros[4096];

	while (h->at < to) {
		size_t n = to - h->at < (off_t)sizeof(zeros) ? (size_t)(to - h->at) :
							       sizeof(zeros);

		XXH64_update(h->st, zeros, n);
		h->at += (off_t)n;
	}
}

/*
 * One piece of a chunk's hash, planned with the pages locked and fed
 * with them unlocked: a span on the device (XXH64_DEV), bytes the CPU
 * reads from a host frame (XXH64_HOST) or from a device page on another
 * unit (XXH64_DEVCPU: a page dedupe shares is not replicated), or zeros.
 */
enum xxh64_kind { XXH64_DEV, XXH64_HOST, XXH64_DEVCPU, XXH64_ZEROS };

struct xxh64_piece {
	enum xxh64_kind kind;
	dev_addr_t addr;	/* DEV, DEVCPU */
	const char *host;	/* HOST */
	size_t len;
};

/* Bytes of a device page on another unit, through a host copy. */
static int xxh64_devcpu(struct cache *c, dev_addr_t a, size_t n,
			struct cache_xxh64 *h)
{
	struct dev_fence f = DEV_FENCE_INIT;
	char *buf = malloc(n);
	int ret, r;

	if (!buf)
		return -ENOMEM;
	ret = dev_copy_to_host(c->dev, buf, a, n, &f);
	r = dev_fence_wait(c->dev, &f);
	ret = ret ? ret : r;
	if (!ret)
		XXH64_update(h->st, buf, n);
	free(buf);
	return ret;
}

/*
 * Feed the planned pieces in order, consecutive device spans as one
 * device operation.  Context: inside an RCU read-side section, the pages
 * referenced (not locked): a replica or frame a write or a migration lets
 * go is freed only after the section, so what is read stays allocated; a
 * write racing the hash may or may not be in it, as for a CPU read.
 */
static int xxh64_feed(struct cache *c, const struct xxh64_piece *pc, size_t n,
		      struct dev_span *sp, struct cache_xxh64 *h)
{
	size_t ns = 0;
	int ret = 0;

	for (size_t i = 0; i < n && !ret; i++) {
		if (pc[i].kind == XXH64_DEV) {
			sp[ns++] = (struct dev_span){ pc[i].addr, pc[i].len };
			continue;
		}
		ret = ns ? dev_xxh64(c->dev, sp, ns, h->st) : 0;
		ns = 0;
		if (ret)
			break;
		if (pc[i].kind == XXH64_HOST) {
			racy_read_begin();
			XXH64_update(h->st, pc[i].host, pc[i].len);
			racy_read_end();
		} else if (pc[i].kind == XXH64_DEVCPU) {
			ret = xxh64_devcpu(c, pc[i].addr, pc[i].len, h);
		} else {
			static const char zeros[4096];

			for (size_t z = 0; z < pc[i].len; z += sizeof(zeros))
				XXH64_update(h->st, zeros, pc[i].len - z < sizeof(zeros) ?
					     pc[i].len - z : sizeof(zeros));
		}
	}
	if (!ret && ns)
		ret = dev_xxh64(c->dev, sp, ns, h->st);
	return ret;
}

/*
 * Plan a chunk's pieces from @h->at.  Context: pages locked.  Return:
 * pieces, with *@cut set when a chunk of data came in short.
 */
static size_t xxh64_plan(struct cache *c, struct cpage **v, size_t n,
			 unsigned int unit, bool populate, off_t end,
			 struct cache_xxh64 *h, struct xxh64_piece *pc,
			 uint64_t *pages, bool *cut)
{
	size_t ps = c->cfg.page_size, np = 0;

	for (size_t i = 0; i < n; i++) {
		struct cpage *p = v[i];
		off_t pstart = (off_t)(p->index * ps);
		off_t from = pstart > h->at ? pstart : h->at;
		off_t to = pstart + (off_t)ps < end ? pstart + (off_t)ps : end;
		dev_addr_t a = page_addr_on_unit_locked(p, unit);
		size_t in = (size_t)(from - pstart), len = (size_t)(to - from);

		if (to <= from)
			continue;
		if (pstart > h->at && populate) {
			*cut = true;	/* a page of data missing: stop here */
			break;
		}
		if (pstart > h->at)	/* a hole between cached pages */
			pc[np++] = (struct xxh64_piece){ .kind = XXH64_ZEROS,
							 .len = (size_t)(pstart - h->at) };
		if (a != DEV_ADDR_NONE) {
			pc[np++] = (struct xxh64_piece){ .kind = XXH64_DEV,
							 .addr = a + in, .len = len };
			(*pages)++;
		} else if (page_test_device(&p->ps)) {
			pc[np++] = (struct xxh64_piece){ .kind = XXH64_DEVCPU,
							 .addr = page_daddr(p) + in,
							 .len = len };
		} else {
			pc[np++] = (struct xxh64_piece){ .kind = XXH64_HOST,
							 .host = (char *)page_frame(p) + in,
							 .len = len };
		}
		h->at = to;
	}
	return np;
}

/*
 * Hash one chunk: its pages on @unit (replicated there first when they
 * are elsewhere), zeros for the holes.  The pages are locked only to make
 * the replicas and plan; the hashing itself runs with them unlocked, so
 * hashes of one file on several devices run side by side.  A chunk of
 * data that came in short (no frames to read into) sets *@cut: the
 * request stops after what was hashed.  Return: 0 or -errno.
 */
static int xxh64_chunk(struct cfile *f, uint64_t first, uint64_t last,
		       bool populate, unsigned int unit, uint64_t seq, off_t end,
		       struct cache_xxh64 *h, uint64_t *pages, bool *cut)
{
	struct cache *c = f->cache;
	size_t ps = c->cfg.page_size, n, np, made;
	off_t chunk_end = (off_t)((last + 1) * ps) < end ? (off_t)((last + 1) * ps) : end;
	struct xxh64_piece *pc;
	struct dev_span *sp;
	struct cpage **v;
	int ret;

	xxh64_zeros(h, (off_t)(first * ps));	/* the hole the scan skipped */
	ret = chunk_get(f, first, last, populate, PG_BIT(PG_uptodate), &v, &n);
	if (ret)
		return ret;
	pc = malloc((2 * n + 1) * sizeof(*pc));
	sp = malloc((n + 1) * sizeof(*sp));
	pages_lock_all(v, n);
	ret = pages_replicate_locked(c, v, n, unit, seq, &made);
	if (ret == -ENOSPC)
		ret = 0;	/* what did not fit is read where it is */
	np = !ret && pc && sp ? xxh64_plan(c, v, n, unit, populate, end, h, pc,
					    pages, cut) : 0;
	if (!ret && (!pc || !sp))
		ret = -ENOMEM;
	rcu_read_lock();	/* before the pages unlock: see xxh64_feed() */
	for (size_t i = 0; i < n; i++)
		cache_page_unlock(&v[i]->ps);
	if (!ret)
		ret = xxh64_feed(c, pc, np, sp, h);
	cache_rcu_read_unlock();
	for (size_t i = 0; i < n; i++)
		page_put(v[i]);
	free(v);
	free(pc);
	free(sp);
	if (!ret && !*cut && h->at < chunk_end) {
		if (populate)
			*cut = true;	/* the data came in short at the end */
		else
			xxh64_zeros(h, chunk_end);
	}
	return ret == -ENODEV ? -EIO : ret;
}

int cache_devread_xxh64(struct cfile *f, off_t off, off_t len, unsigned int unit,
			struct cache_xxh64 *h, uint64_t *pages, off_t *next)
{
	struct cache *c = f->cache;
	unsigned int shift = c->page_shift;
	uint64_t first, last;
	bool populate, cut = false;
	uint64_t seq = atomic_fetch_add(&c->rep_seq, 1);
	struct scan s;
	off_t end;
	int ret;

	*pages = 0;
	*next = off;
	if (!c->dev)
		return -ENODEV;
	if (unit >= dev_units(c->dev) || off != h->at)
		return -EINVAL;
	ret = range_clip(f, &off, &len);
	if (ret)
		return ret;
	if (len > (off_t)CACHE_REQUEST_BYTES)	/* holes count: they are hashed */
		len = (off_t)CACHE_REQUEST_BYTES;
	end = off + len;
	*next = end;
	if (!len)
		return 0;
	scan_init(&s, f, SCAN_DATA, (uint64_t)off >> shift, (uint64_t)(end - 1) >> shift);
	while (!cut && scan_next(&s, &first, &last, &populate)) {
		ret = xxh64_chunk(f, first, last, populate, unit, seq, end, h, pages,
				  &cut);
		if (ret)
			return ret;
	}
	if (cut) {
		*next = h->at;
		return 0;
	}
	scan_next_offset(&s, end, next);
	xxh64_zeros(h, *next);	/* holes to where the request stopped */
	return 0;
}

static uint32_t page_res_flags(const struct cpage *p)
{
	uint32_t s = page_flags(&p->ps), r;

	r = (s & PG_BIT(PG_device)) ? CACHE_RES_DEVICE : CACHE_RES_HOST;
	if (s & PG_BIT(PG_dirty))
		r |= CACHE_RES_DIRTY;
	if (s & PG_BIT(PG_writeback))
		r |= CACHE_RES_WRITEBACK;
	if (s & PG_BIT(PG_shared))
		r |= CACHE_RES_SHARED;
	return r;
}

static void res_count(struct cache_res_counts *cnt, uint32_t fl)
{
	cnt->pages++;
	cnt->host += !!(fl & CACHE_RES_HOST);
	cnt->device += !!(fl & CACHE_RES_DEVICE);
	cnt->dirty += !!(fl & CACHE_RES_DIRTY);
	cnt->writeback += !!(fl & CACHE_RES_WRITEBACK);
	cnt->shared += !!(fl & CACHE_RES_SHARED);
}

int cache_residency(struct cfile *f, off_t off, off_t len, uint32_t hide,
		    struct cache_extent *ext, size_t max, size_t *n,
		    off_t *next, struct cache_res_counts *cnt)
{
	unsigned int shift = f->cache->page_shift;
	struct cpage **v;
	size_t nv;
	int ret;

	*n = 0;
	memset(cnt, 0, sizeof(*cnt));
	ret = range_clip(f, &off, &len);
	*next = off + len;
	if (ret || !len)
		return ret;
	ret = file_collect_pages(f, (uint64_t)off >> shift,
				 (uint64_t)(off + len - 1) >> shift, 0, &v, &nv);
	for (size_t i = 0; i < nv; i++) {
		struct cpage *p = v[i];
		uint32_t fl = page_res_flags(p) & ~hide, units = page_units(p);
		struct cache_extent *e = *n ? &ext[*n - 1] : NULL;

		if (e && e->flags == fl && e->units == units &&
		    e->first + e->count == p->index) {
			e->count++;
		} else if (*n < max) {
			ext[(*n)++] = (struct cache_extent){ p->index, 1, fl, units };
		} else {
			*next = (off_t)(p->index << shift);
			for (; i < nv; i++)
				page_put(v[i]);
			break;
		}
		res_count(cnt, fl);
		page_put(p);
	}
	free(v);
	return ret;
}
