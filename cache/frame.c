/* SPDX-License-Identifier: MIT */
/*
 * cache/frame.c — host page frames.
 *
 * All frames come from one anonymous mapping of host_cache bytes, mapped
 * with MAP_NORESERVE: a frame costs resident memory only once it has been
 * handed out and written, so the daemon's RSS follows what the cache really
 * holds and never exceeds host_cache plus the per-page metadata.  One
 * arena also gives aligned frames (page_size alignment, enough for
 * O_DIRECT) and a single region to register with io_uring or pin for a
 * device.  Freed frames go on a stack and are reused first; frames never
 * handed out are taken from the "bump" end.  A mutex guards both; it is
 * held for a few instructions per page allocated or freed.
 *
 * A thread that finds no frame and cannot make one (cache_frame_get())
 * sleeps on @freed until a frame is freed, with a timeout, instead of
 * polling: frame_free() counts every free and signals when someone waits.
 * The caller reads the count before it tries to allocate, so a frame
 * freed between its failed try and its sleep ends the sleep at once.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>

#include "cache/cache_int.h"

int frame_pool_init(struct frame_pool *fp, size_t page_size, size_t max_frames)
{
	pthread_condattr_t ca;

	fp->page_size = page_size;
	fp->max_frames = max_frames;
	fp->nfree = 0;
	fp->bump = 0;
	fp->free = calloc(max_frames ? max_frames : 1, sizeof(*fp->free));
	if (!fp->free)
		return -ENOMEM;
	fp->base = mmap(NULL, max_frames * page_size, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (fp->base == MAP_FAILED) {
		int err = -errno;

		free(fp->free);
		return err;
	}
	pthread_mutex_init(&fp->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&fp->freed, &ca);
	pthread_condattr_destroy(&ca);
	atomic_init(&fp->frees, 0);
	fp->waiters = 0;
	return 0;
}

void frame_pool_destroy(struct frame_pool *fp)
{
	munmap(fp->base, fp->max_frames * fp->page_size);
	free(fp->free);
	pthread_cond_destroy(&fp->freed);
	pthread_mutex_destroy(&fp->lock);
}

/* Return: a frame, or NULL when all are in use (the caller evicts). */
void *frame_alloc(struct frame_pool *fp)
{
	size_t n = SIZE_MAX;

	pthread_mutex_lock(&fp->lock);
	if (fp->nfree)
		n = fp->free[--fp->nfree];
	else if (fp->bump < fp->max_frames)
		n = fp->bump++;
	pthread_mutex_unlock(&fp->lock);
	return n == SIZE_MAX ? NULL : fp->base + n * fp->page_size;
}

void frame_free(struct frame_pool *fp, void *frame)
{
	size_t n = (size_t)((char *)frame - fp->base) / fp->page_size;

	pthread_mutex_lock(&fp->lock);
	fp->free[fp->nfree++] = (uint32_t)n;
	atomic_fetch_add_explicit(&fp->frees, 1, memory_order_relaxed);
	if (fp->waiters)
		pthread_cond_signal(&fp->freed);
	pthread_mutex_unlock(&fp->lock);
}

uint64_t frame_frees(struct frame_pool *fp)
{
	/* no lock: frame_wait_freed() looks again under it */
	return atomic_load_explicit(&fp->frees, memory_order_relaxed);
}

void frame_wait_freed(struct frame_pool *fp, uint64_t seen, unsigned int ms)
{
	struct timespec until;

	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += ms / 1000;
	until.tv_nsec += (long)(ms % 1000) * 1000000;
	if (until.tv_nsec >= 1000000000) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&fp->lock);
	fp->waiters++;
	while (atomic_load_explicit(&fp->frees, memory_order_relaxed) == seen &&
	       pthread_cond_timedwait(&fp->freed, &fp->lock, &until) == 0)
		;
	fp->waiters--;
	pthread_mutex_unlock(&fp->lock);
}
