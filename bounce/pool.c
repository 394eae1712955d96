/* SPDX-License-Identifier: MIT */
/*
 * bounce/pool.c — bounce buffers: a bounded, deadlock-free pool.
 *
 * Life cycle.  All buffers are carved from one anonymous mapping (page
 * aligned, so O_DIRECT and GPU pinning both accept them) and sit on a free
 * stack.  A user takes between one and the number it wants
 * (bounce_get), queues device copies into or out of them, does its
 * memcpy or backing I/O, and puts them back (bounce_put), which wakes
 * waiters.
 *
 * Back-pressure without deadlock.  When the pool is empty, callers sleep
 * on a condition variable until a buffer comes back.  The pool cannot
 * deadlock because of two rules: bounce_get() never sleeps while a buffer
 * is free (it hands out fewer than asked instead), and a caller never
 * sleeps in bounce_get() while holding buffers itself.  So every holder
 * can finish with the buffers it has: holders wait only for device copies
 * and backing I/O, never for a page lock, another buffer or writeback
 * (the cache takes its buffers after any such wait; see cache/file.c and
 * cache/writeback.c).  Writeback, which also needs buffers to clean
 * device pages, obeys the same rules, so memory pressure cannot starve
 * it of buffers forever.
 *
 * Spares.  The one holder that keeps buffers between requests is the
 * cache's readahead from the device: bytes copied for a request that has
 * not come yet.  It takes them with bounce_get_spare(), which never waits
 * and never lets spares hold more than half the pool; the other half
 * obeys the rules above, so waiters still always wake.
 *
 * Fault injection: bounce:starve (fault/fault.h) makes bounce_get() hand
 * out one buffer at a time, so every caller's "fewer than asked" path runs.
 *
 * Locking: one mutex guards the stack and the counters it pairs with.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "bounce/pool.h"
#include "fault/fault.h"

/**
 * struct bounce_pool - the pool.
 * @base:     the region, @nbuf * @buf_size bytes.
 * @lock:     guards @free, @nfree, @waiters.
 * @cond:     signalled when buffers come back and someone waits.
 * @free:     stack of free buffers.
 * @spares:   buffers out through bounce_get_spare(), at most @nbuf / 2.
 * @waits:    times a caller slept (relaxed atomic, for stats).
 */
struct bounce_pool {
	char *base;
	size_t nbuf, buf_size;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	void **free;
	size_t nfree;
	unsigned int waiters;
	size_t spares;
	_Atomic uint64_t waits;
};

int bounce_pool_create(size_t nbuf, size_t buf_size, struct bounce_pool **out)
{
	struct bounce_pool *bp;

	if (!nbuf || buf_size < 4096 || (buf_size & (buf_size - 1)))
		return -EINVAL;
	bp = calloc(1, sizeof(*bp));
	if (!bp)
		return -ENOMEM;
	bp->free = calloc(nbuf, sizeof(*bp->free));
	bp->base = mmap(NULL, nbuf * buf_size, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (!bp->free || bp->base == MAP_FAILED) {
		if (bp->base != MAP_FAILED && bp->base)
			munmap(bp->base, nbuf * buf_size);
		free(bp->free);
		free(bp);
		return -ENOMEM;
	}
	bp->nbuf = nbuf;
	bp->buf_size = buf_size;
	for (size_t i = 0; i < nbuf; i++)
		bp->free[bp->nfree++] = bp->base + (nbuf - 1 - i) * buf_size;
	pthread_mutex_init(&bp->lock, NULL);
	pthread_cond_init(&bp->cond, NULL);
	*out = bp;
	return 0;
}

void bounce_pool_destroy(struct bounce_pool *bp)
{
	if (!bp)
		return;
	munmap(bp->base, bp->nbuf * bp->buf_size);
	pthread_mutex_destroy(&bp->lock);
	pthread_cond_destroy(&bp->cond);
	free(bp->free);
	free(bp);
}

void *bounce_pool_region(const struct bounce_pool *bp, size_t *len)
{
	*len = bp->nbuf * bp->buf_size;
	return bp->base;
}

size_t bounce_get(struct bounce_pool *bp, void **bufs, size_t want, bool wait)
{
	size_t n = 0;

	if (!want)
		return 0;
	if (want > 1 && fault_hit(FAULT_BOUNCE, NULL) == FAULT_STARVE)
		want = 1;
	pthread_mutex_lock(&bp->lock);
	if (!bp->nfree && wait) {
		atomic_fetch_add_explicit(&bp->waits, 1, memory_order_relaxed);
		bp->waiters++;
		while (!bp->nfree)
			pthread_cond_wait(&bp->cond, &bp->lock);
		bp->waiters--;
	}
	while (n < want && bp->nfree)
		bufs[n++] = bp->free[--bp->nfree];
	pthread_mutex_unlock(&bp->lock);
	return n;
}

void bounce_put(struct bounce_pool *bp, void *const *bufs, size_t n)
{
	if (!n)
		return;
	pthread_mutex_lock(&bp->lock);
	/* last first: the next bounce_get() pops them in the same order, so
	 * buffers that were adjacent stay adjacent (one copy can cover them) */
	for (size_t i = n; i-- > 0;)
		bp->free[bp->nfree++] = bufs[i];
	if (bp->waiters)
		pthread_cond_broadcast(&bp->cond);
	pthread_mutex_unlock(&bp->lock);
}

size_t bounce_get_spare(struct bounce_pool *bp, void **bufs, size_t want)
{
	size_t n = 0;

	pthread_mutex_lock(&bp->lock);
	if (want && bp->spares + want <= bp->nbuf / 2 && bp->nfree >= want) {
		for (; n < want; n++)
			bufs[n] = bp->free[--bp->nfree];
		bp->spares += n;
	}
	pthread_mutex_unlock(&bp->lock);
	return n;
}

void bounce_put_spare(struct bounce_pool *bp, void *const *bufs, size_t n)
{
	if (!n)
		return;
	pthread_mutex_lock(&bp->lock);
	bp->spares -= n;
	pthread_mutex_unlock(&bp->lock);
	bounce_put(bp, bufs, n);
}

uint64_t bounce_waits(const struct bounce_pool *bp)
{
	return atomic_load_explicit(&((struct bounce_pool *)bp)->waits,
				    memory_order_relaxed);
}

size_t bounce_in_use(const struct bounce_pool *bp)
{
	size_t n;

	pthread_mutex_lock(&((struct bounce_pool *)bp)->lock);
	n = bp->nbuf - bp->nfree;
	pthread_mutex_unlock(&((struct bounce_pool *)bp)->lock);
	return n;
}
