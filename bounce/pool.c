/* SPDX-License-Identifier: MIT */
/*
 * bounce/pool.c — bounce buffers: a bounded, deadlock-free pool.
 *
 * Life cycle.  All buffers are carved from one anonymous mapping (page
 * aligned, so O_DIRECT and GPU pinning both accept them) and sit on free
 * stacks.  A user takes between one and the number it wants
 * (bounce_get), queues device copies into or out of them, does its
 * memcpy or backing I/O, and puts them back (bounce_put), which wakes
 * waiters.
 *
 * Shards.  The free buffers are spread over one stack per CPU (up to
 * POOL_SHARDS_MAX, and no shard under POOL_SHARD_MIN buffers), each with
 * its own lock, so readers on different CPUs do not serialise on one
 * lock.  A thread takes from its CPU's stack first and then from the
 * others in turn, and puts back onto its CPU's stack; a stack can hold
 * every buffer, so nothing is ever refused for room.  Puts push last
 * first, so buffers that were adjacent stay adjacent (one device copy
 * can cover them).
 *
 * Back-pressure without deadlock.  When every stack is empty, callers
 * sleep on a condition variable until a buffer comes back.  The pool cannot
 * deadlock because of two rules: bounce_get() never sleeps while a buffer
 * is free (it hands out fewer than asked instead), and a caller never
 * sleeps in bounce_get() while holding buffers itself.  So every holder
 * can finish with the buffers it has: holders wait only for device copies
 * and backing I/O, never for a page lock, another buffer or writeback
 * (the cache takes its buffers after any such wait; see cache/read.c,
 * cache/write.c and cache/writeback.c).  Writeback, which also needs buffers to clean
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
 * No lost wake-up.  A sleeper takes @wait_lock, counts itself in
 * @waiters, then looks at every stack once more and sleeps only if all
 * are empty; a put pushes (under the stack's lock) and then reads
 * @waiters.  If the sleeper looked at that stack before the push, its
 * count came before that look, so the putter sees it and broadcasts
 * under @wait_lock, which it can only take once the sleeper waits.
 *
 * Locking: each shard's lock guards its stack; @wait_lock and @cond only
 * serve sleepers.  Order: @wait_lock, then a shard's lock (a sleeper's
 * last look); a shard's lock is never held while taking another lock.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bounce/pool.h"
#include "fault/fault.h"

#define POOL_SHARDS_MAX 16
#define POOL_SHARD_MIN 64	/* buffers per shard at least */

/* One CPU's free stack, on its own cache line. */
struct pool_shard {
	pthread_mutex_t lock;
	void **free;
	size_t nfree;
} __attribute__((aligned(64)));

/**
 * struct bounce_pool - the pool.
 * @base:     the region, @nbuf * @buf_size bytes.
 * @shards:   @nshards free stacks (see above).
 * @wait_lock, @cond: sleepers wait there for a put.
 * @waiters:  sleepers (or about to be).
 * @spares:   buffers out through bounce_get_spare(), at most @nbuf / 2.
 * @waits:    times a caller slept (relaxed, for stats).
 */
struct bounce_pool {
	char *base;
	size_t nbuf, buf_size;
	unsigned int nshards;
	struct pool_shard *shards;
	pthread_mutex_t wait_lock;
	pthread_cond_t cond;
	_Atomic unsigned int waiters;
	_Atomic size_t spares;
	_Atomic uint64_t waits;
};

static unsigned int pool_nshards(size_t nbuf)
{
	long cpus = sysconf(_SC_NPROCESSORS_CONF);
	size_t n = cpus > 0 ? (size_t)cpus : 1;

	if (n > POOL_SHARDS_MAX)
		n = POOL_SHARDS_MAX;
	if (n > nbuf / POOL_SHARD_MIN)
		n = nbuf / POOL_SHARD_MIN;
	return n ? (unsigned int)n : 1;
}

static void pool_free(struct bounce_pool *bp)
{
	if (bp->base && bp->base != MAP_FAILED)
		munmap(bp->base, bp->nbuf * bp->buf_size);
	for (unsigned int i = 0; bp->shards && i < bp->nshards; i++) {
		pthread_mutex_destroy(&bp->shards[i].lock);
		free(bp->shards[i].free);
	}
	free(bp->shards);
	pthread_mutex_destroy(&bp->wait_lock);
	pthread_cond_destroy(&bp->cond);
	free(bp);
}

/* Deal the buffers out to the shards, a block each, lowest on top. */
static int pool_fill(struct bounce_pool *bp)
{
	size_t per = bp->nbuf / bp->nshards;

	for (unsigned int i = 0; i < bp->nshards; i++) {
		struct pool_shard *s = &bp->shards[i];
		size_t first = i * per, end = i + 1 == bp->nshards ? bp->nbuf : first + per;

		s->free = calloc(bp->nbuf, sizeof(*s->free));
		if (!s->free)
			return -ENOMEM;
		for (size_t b = end; b-- > first;)
			s->free[s->nfree++] = bp->base + b * bp->buf_size;
	}
	return 0;
}

int bounce_pool_create(size_t nbuf, size_t buf_size, struct bounce_pool **out)
{
	struct bounce_pool *bp;

	if (!nbuf || buf_size < 4096 || (buf_size & (buf_size - 1)))
		return -EINVAL;
	bp = calloc(1, sizeof(*bp));
	if (!bp)
		return -ENOMEM;
	pthread_mutex_init(&bp->wait_lock, NULL);
	pthread_cond_init(&bp->cond, NULL);
	bp->nbuf = nbuf;
	bp->buf_size = buf_size;
	bp->nshards = pool_nshards(nbuf);
	bp->shards = aligned_alloc(64, bp->nshards * sizeof(*bp->shards));
	bp->base = mmap(NULL, nbuf * buf_size, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	for (unsigned int i = 0; bp->shards && i < bp->nshards; i++) {
		bp->shards[i] = (struct pool_shard){ .nfree = 0 };
		pthread_mutex_init(&bp->shards[i].lock, NULL);
	}
	if (!bp->shards || bp->base == MAP_FAILED || pool_fill(bp)) {
		pool_free(bp);
		return -ENOMEM;
	}
	*out = bp;
	return 0;
}

void bounce_pool_destroy(struct bounce_pool *bp)
{
	if (bp)
		pool_free(bp);
}

void *bounce_pool_region(const struct bounce_pool *bp, size_t *len)
{
	*len = bp->nbuf * bp->buf_size;
	return bp->base;
}

/* The shard of the CPU this thread runs on (a hint: it may move). */
static unsigned int shard_home(const struct bounce_pool *bp)
{
	int cpu = bp->nshards > 1 ? sched_getcpu() : 0;

	return cpu > 0 ? (unsigned int)cpu % bp->nshards : 0;
}

static size_t shard_take(struct pool_shard *s, void **bufs, size_t want)
{
	size_t n = 0;

	pthread_mutex_lock(&s->lock);
	while (n < want && s->nfree)
		bufs[n++] = s->free[--s->nfree];
	pthread_mutex_unlock(&s->lock);
	return n;
}

/* Take up to @want buffers from the shards, this CPU's first. */
static size_t pool_take(struct bounce_pool *bp, void **bufs, size_t want)
{
	unsigned int home = shard_home(bp);
	size_t n = 0;

	for (unsigned int k = 0; k < bp->nshards && n < want; k++)
		n += shard_take(&bp->shards[(home + k) % bp->nshards], bufs + n,
				want - n);
	return n;
}

size_t bounce_get(struct bounce_pool *bp, void **bufs, size_t want, bool wait)
{
	size_t n;

	if (!want)
		return 0;
	if (want > 1 && fault_hit(FAULT_BOUNCE, NULL) == FAULT_STARVE)
		want = 1;
	n = pool_take(bp, bufs, want);
	if (n || !wait)
		return n;
	atomic_fetch_add_explicit(&bp->waits, 1, memory_order_relaxed);
	pthread_mutex_lock(&bp->wait_lock);
	atomic_fetch_add(&bp->waiters, 1);	/* before the last look */
	while (!(n = pool_take(bp, bufs, want)))
		pthread_cond_wait(&bp->cond, &bp->wait_lock);
	atomic_fetch_sub(&bp->waiters, 1);
	pthread_mutex_unlock(&bp->wait_lock);
	return n;
}

void bounce_put(struct bounce_pool *bp, void *const *bufs, size_t n)
{
	struct pool_shard *s;

	if (!n)
		return;
	s = &bp->shards[shard_home(bp)];
	pthread_mutex_lock(&s->lock);
	for (size_t i = n; i-- > 0;)	/* last first: see above */
		s->free[s->nfree++] = bufs[i];
	pthread_mutex_unlock(&s->lock);
	if (atomic_load(&bp->waiters)) {	/* after the push */
		pthread_mutex_lock(&bp->wait_lock);
		pthread_cond_broadcast(&bp->cond);
		pthread_mutex_unlock(&bp->wait_lock);
	}
}

size_t bounce_get_spare(struct bounce_pool *bp, void **bufs, size_t want)
{
	size_t held = atomic_load(&bp->spares), n;

	do {
		if (!want || held + want > bp->nbuf / 2)
			return 0;
	} while (!atomic_compare_exchange_weak(&bp->spares, &held, held + want));
	n = pool_take(bp, bufs, want);
	if (n == want)
		return n;
	bounce_put(bp, bufs, n);	/* all or none */
	atomic_fetch_sub(&bp->spares, want);
	return 0;
}

void bounce_put_spare(struct bounce_pool *bp, void *const *bufs, size_t n)
{
	bounce_put(bp, bufs, n);
	atomic_fetch_sub(&bp->spares, n);
}

uint64_t bounce_waits(const struct bounce_pool *bp)
{
	return atomic_load_explicit(&((struct bounce_pool *)bp)->waits,
				    memory_order_relaxed);
}

/* Exact when the pool is quiet; a moment's estimate while buffers move. */
size_t bounce_in_use(const struct bounce_pool *bp)
{
	struct bounce_pool *pool = (struct bounce_pool *)bp;
	size_t nfree = 0;

	for (unsigned int i = 0; i < pool->nshards; i++) {
		pthread_mutex_lock(&pool->shards[i].lock);
		nfree += pool->shards[i].nfree;
		pthread_mutex_unlock(&pool->shards[i].lock);
	}
	return pool->nbuf - nfree;
}
