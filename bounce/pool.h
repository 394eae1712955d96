/* SPDX-License-Identifier: MIT */
/*
 * bounce/pool.h — a bounded pool of bounce buffers.
 *
 * A bounce buffer is host memory that data of a device-resident page
 * passes through on its way to or from the CPU or BACKING: one page each,
 * aligned for O_DIRECT, carved from one region that can be pinned for a
 * GPU (bounce_pool_region()).  See pool.c for the life cycle and why the
 * pool cannot deadlock.
 */
#ifndef HMMFS_BOUNCE_POOL_H
#define HMMFS_BOUNCE_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct bounce_pool;

/* @nbuf buffers of @buf_size bytes (a power of two, >= 4096). */
int bounce_pool_create(size_t nbuf, size_t buf_size, struct bounce_pool **out);
void bounce_pool_destroy(struct bounce_pool *bp);

/* The one region all buffers lie in (to pin it). */
void *bounce_pool_region(const struct bounce_pool *bp, size_t *len);

/**
 * bounce_get() - take up to @want buffers.
 * @bufs: receives them.
 * @wait: sleep while none is free (else return 0 at once).
 *
 * Never waits while at least one buffer is free: it returns what it can.
 * A caller that needs more uses what it got, puts it back and asks again.
 * Context: the caller must not hold buffers of its own when it waits.
 * Return: buffers taken (>= 1 when @wait).
 */
size_t bounce_get(struct bounce_pool *bp, void **bufs, size_t want, bool wait);

/* Give back @n buffers and wake waiters. */
void bounce_put(struct bounce_pool *bp, void *const *bufs, size_t n);

/**
 * bounce_get_spare() - take exactly @want buffers to keep across requests.
 *
 * For data copied ahead of the request that will want it (the cache's
 * readahead from the device).  Never waits: takes all @want or none, and
 * none if spares would then hold more than half the pool, so the other
 * half always circulates (pool.c).  Give them back with
 * bounce_put_spare().  Return: @want or 0.
 */
size_t bounce_get_spare(struct bounce_pool *bp, void **bufs, size_t want);
void bounce_put_spare(struct bounce_pool *bp, void *const *bufs, size_t n);

/* Times a caller had to wait for a buffer; buffers in use now. */
uint64_t bounce_waits(const struct bounce_pool *bp);
size_t bounce_in_use(const struct bounce_pool *bp);

#endif
