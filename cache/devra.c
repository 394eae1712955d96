/* SPDX-License-Identifier: MIT */
/*
 * cache/devra.c — readahead from the device: the next read of a
 * sequential reader of device pages is copied while the current reply is
 * on its way to the kernel.
 *
 * Why.  A CPU read of a device page costs a device-to-host copy on top of
 * the kernel's copy of the reply; a host page costs only the latter.  A
 * sequential reader's next request is predictable, so when
 * cache_read_vec() answers [off, off + len) for an open file whose reads
 * are sequential (struct cache_ra's window) and not cached by the kernel
 * (O_DIRECT or direct_io: the kernel's own readahead already overlaps
 * buffered reads, and copies ahead of it were wasted more often than
 * used, 5-8% slower on 2 cores), and the next @len bytes lie wholly in
 * device pages, devra_start() queues their copies on the
 * device's engine into spare bounce buffers (bounce_get_spare()).  The
 * engine copies while this thread writes the reply, one device request
 * per run of frames.  The range goes on the open file at once
 * (cache_ra->ahead), marked as being copied; cache_read_vec_done() waits
 * for the copies (usually done by then: devra_wait()) and marks it ready.
 * The next read of that range (devra_serve()) takes it, waits for it to
 * be ready if it is not yet (the request can come on another thread
 * before this one is done), is answered from the buffers with no device
 * copy, and queues the copy of the range after it.
 *
 * Staleness.  Parked bytes are a snapshot of the file, good only while
 * its content_gen has not moved since before the copies were queued:
 * every change of a cached byte bumps it once the change is made and
 * before it is acknowledged (CPU writes, device writes, truncate), and so
 * does every page removal (file_content_changed()).  Migrations move
 * bytes without changing them.  The copies hold references to their pages
 * and run inside the RCU read-side section of the read that queued them,
 * so neither a removal nor a migration frees a frame under them.
 *
 * Bounds.  One parked range per open file, at most CACHE_READ_VEC_MAX
 * pages.  Spares are at most half the bounce pool (pool.c says
 * why that keeps the pool deadlock-free); when none are to be had nothing
 * is copied ahead.  A parked range the next read does not want is given
 * back then, and cache_ra_drop() gives back the last one at close.
 *
 * Ownership and locking.  A range has two references: the read that
 * copies it (until cache_read_vec_done()) and the slot, cache_ra->ahead,
 * which changes hands by atomic exchange, so one read at most takes it;
 * the last reference frees it.  @lock and @cond only order the copier's
 * "ready" with a reader waiting for it; nothing else is taken under them.
 */
#include <pthread.h>
#include <stdlib.h>

#include "cache/cache_int.h"
#include "cache/rcu.h"

enum devra_state { DEVRA_COPYING, DEVRA_READY, DEVRA_FAILED };

/**
 * struct devra - bytes of device pages copied ahead of a read.
 * @off, @len: the range (@off page aligned; @len to EOF at most).
 * @gen:    the file's content_gen before the copies were queued.
 * @fence:  the copies.
 * @refs:   the copier's and the slot's (see above).
 * @state:  enum devra_state; @lock.
 * @n:      pages, one bounce buffer each (@bufs, spares).
 * @pages:  the pages, referenced by the copier; @npages of them.
 */
struct devra {
	off_t off;
	size_t len;
	uint64_t gen;
	struct dev_fence fence;
	_Atomic int refs;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int state;
	size_t n, npages;
	struct cpage *pages[CACHE_READ_VEC_MAX];
	void *bufs[CACHE_READ_VEC_MAX];
};

static void devra_pages_put(struct devra *s)
{
	for (size_t i = 0; i < s->npages; i++)
		page_put(s->pages[i]);
	s->npages = 0;
}

static void devra_put(struct cache *c, struct devra *s)
{
	if (atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) != 1)
		return;
	devra_pages_put(s);
	bounce_put_spare(c->bounce, s->bufs, s->n);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->cond);
	free(s);
}

static void devra_set_state(struct devra *s, enum devra_state state)
{
	pthread_mutex_lock(&s->lock);
	s->state = state;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
}

/* Wait until @s's copies are done.  Return: true if they succeeded. */
static bool devra_ready(struct devra *s)
{
	bool ok;

	pthread_mutex_lock(&s->lock);
	while (s->state == DEVRA_COPYING)
		pthread_cond_wait(&s->cond, &s->lock);
	ok = s->state == DEVRA_READY;
	pthread_mutex_unlock(&s->lock);
	return ok;
}

ssize_t devra_serve(struct cfile *f, struct cache_ra *ra, off_t off,
		    size_t len, struct cache_read_vec *v)
{
	struct cache *c = f->cache;
	size_t ps = c->cfg.page_size, done = 0;
	struct devra *s = ra ? atomic_exchange_explicit(&ra->ahead, NULL,
							memory_order_acquire) : NULL;

	if (!s)
		return 0;
	if (s->off != off || len > s->len ||
	    atomic_load_explicit(&f->content_gen, memory_order_acquire) != s->gen ||
	    !devra_ready(s)) {
		devra_put(c, s);
		return 0;
	}
	for (size_t k = 0; done < len; k++) {
		size_t n = len - done < ps ? len - done : ps;

		read_vec_iov_add(v, s->bufs[k], n);
		done += n;
	}
	v->served = s;
	fctr_inc(f, bounce_reads, (len + ps - 1) / ps);
	ctr_inc(c, device_readahead, (len + ps - 1) / ps);
	return (ssize_t)len;
}

/*
 * Reference pages [@first, @first + @n) into @s, stopping at the first
 * that is missing or not on the device.  Return: true if all are there.
 * Context: RCU read-side section (page_daddr() is read next).
 */
static bool devra_pages_get(struct cfile *f, struct devra *s, uint64_t first,
			    size_t n)
{
	for (size_t k = 0; k < n; k++) {
		struct cpage *p = page_lookup_get(f, first + k);

		if (!p)
			return false;
		s->pages[s->npages++] = p;
		cache_rcu_found(p);
		if (!page_test_device(&p->ps) || !page_test_uptodate(&p->ps))
			return false;
	}
	return true;
}

/* Queue the copies of @s's pages into its buffers.  Return: 0 or -errno. */
static int devra_queue(struct cache *c, struct devra *s)
{
	struct dev_copy cps[CACHE_READ_VEC_MAX];
	size_t ps = c->cfg.page_size, ncps = 0;
	int ret = 0;

	for (size_t k = 0; k < s->n; k++)	/* pairs: migrate.c release */
		ncps = read_copies_add(cps, ncps, page_daddr(s->pages[k]),
				       s->bufs[k], ps);
	for (size_t i = 0; i < ncps && !ret; i++)
		ret = dev_copy_to_host(c->dev, cps[i].host, cps[i].src, cps[i].len,
				       &s->fence);
	return ret;
}

/* A range of @n pages at @next, referenced and with its buffers, or NULL. */
static struct devra *devra_new(struct cfile *f, off_t next, size_t len,
			       size_t n)
{
	struct cache *c = f->cache;
	struct devra *s = malloc(sizeof(*s));

	if (!s)
		return NULL;
	*s = (struct devra){ .off = next, .len = len, .fence = DEV_FENCE_INIT,
			     .refs = 2, .state = DEVRA_COPYING };
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->cond, NULL);
	s->gen = atomic_load_explicit(&f->content_gen, memory_order_acquire);
	if (devra_pages_get(f, s, (uint64_t)next >> c->page_shift, n) &&
	    bounce_get_spare(c->bounce, s->bufs, n) == n) {
		s->n = n;
		return s;
	}
	atomic_store(&s->refs, 1);
	devra_put(c, s);
	return NULL;
}

/* Is page @index of @f cached on the device?  Context: RCU read side. */
static bool page_on_device(struct cfile *f, uint64_t index)
{
	struct cpage *p = index_lookup(f, index);

	if (!p)
		return false;
	cache_rcu_found(p);
	return page_test_device(&p->ps);
}

void devra_start(struct cfile *f, struct cache_ra *ra, off_t next,
		 size_t len, struct cache_read_vec *v)
{
	struct cache *c = f->cache;
	size_t ps = c->cfg.page_size, n;
	off_t size = cache_file_size(f);
	struct devra *s, *old;
	uint64_t first;

	if (!c->dev || !ra || !ra->device_ahead || next % (off_t)ps ||
	    next >= size || !len)
		return;
	/* a later read came meanwhile (the kernel's readahead sends several
	 * at once): it asked for this range already, a copy would be wasted */
	if (atomic_load_explicit(&ra->next, memory_order_relaxed) != next)
		return;
	if ((off_t)len > size - next)
		len = (size_t)(size - next);
	n = (len + ps - 1) / ps;
	first = (uint64_t)next >> c->page_shift;
	/* the host tier's sequential readers stop here */
	if (n > CACHE_READ_VEC_MAX || !page_on_device(f, first) ||
	    !page_on_device(f, first + n - 1))
		return;
	s = devra_new(f, next, len, n);
	if (!s)
		return;
	if (devra_queue(c, s)) {
		dev_fence_wait(c->dev, &s->fence);
		atomic_store(&s->refs, 1);
		devra_put(c, s);
		return;
	}
	v->ahead = s;
	old = atomic_exchange_explicit(&ra->ahead, s, memory_order_acq_rel);
	if (old)
		devra_put(c, old);
}

void devra_wait(struct cfile *f, struct cache_read_vec *v)
{
	struct devra *s = v->ahead;

	if (s)
		devra_set_state(s, dev_fence_wait(f->cache->dev, &s->fence) ?
				   DEVRA_FAILED : DEVRA_READY);
}

void devra_finish(struct cfile *f, struct cache_read_vec *v)
{
	struct cache *c = f->cache;
	struct devra *s = v->ahead;

	if (v->served)
		devra_put(c, v->served);
	v->served = NULL;
	if (!s)
		return;
	v->ahead = NULL;
	/* the copies are CPU reads of the pages, as the read's own are */
	pages_promote_hot(c, s->pages, s->npages);
	devra_pages_put(s);
	devra_put(c, s);
}

void cache_ra_drop(struct cfile *f, struct cache_ra *ra)
{
	struct devra *s = atomic_exchange_explicit(&ra->ahead, NULL,
						   memory_order_acquire);

	if (s)
		devra_put(f->cache, s);
}
