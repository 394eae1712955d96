/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/test_bounce_pool.c — bounce/pool.c: buffers are distinct,
 * aligned and inside the region; a get takes what is free on every shard
 * (never waits while one is free, gives fewer than asked); spares are
 * all-or-none and capped at half the pool; and eight threads taking and
 * putting with waits on a small pool never get a buffer twice and never
 * hang, with spares taken beside them.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bounce/pool.h"
#include "tests/unit/unit.h"

#define BUF 4096

/* Every buffer of @bufs lies in @bp's region, on a buffer boundary, once. */
static void check_bufs(struct bounce_pool *bp, void **bufs, size_t n)
{
	size_t len, nbuf;
	char *base = bounce_pool_region(bp, &len);
	unsigned char *seen;

	nbuf = len / BUF;
	seen = calloc(nbuf, 1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(seen);
	for (size_t i = 0; i < n; i++) {
		size_t at = (size_t)((char *)bufs[i] - base);

		CU_ASSERT_FATAL((char *)bufs[i] >= base && at < len);
		CU_ASSERT_EQUAL(at % BUF, 0);
		CU_ASSERT_EQUAL(seen[at / BUF], 0);
		seen[at / BUF] = 1;
	}
	free(seen);
}

static void test_get_put(void)
{
	struct bounce_pool *bp;
	void *bufs[300], *more;

	CU_ASSERT_EQUAL(bounce_pool_create(0, BUF, &bp), -EINVAL);
	CU_ASSERT_EQUAL(bounce_pool_create(8, 1000, &bp), -EINVAL);
	CU_ASSERT_EQUAL_FATAL(bounce_pool_create(256, BUF, &bp), 0);
	CU_ASSERT_EQUAL(bounce_get(bp, bufs, 0, true), 0);
	CU_ASSERT_EQUAL(bounce_get(bp, bufs, 100, true), 100);
	/* fewer than asked, from every shard, and no wait with none left */
	CU_ASSERT_EQUAL(bounce_get(bp, bufs + 100, 200, true), 156);
	CU_ASSERT_EQUAL(bounce_get(bp, &more, 1, false), 0);
	CU_ASSERT_EQUAL(bounce_in_use(bp), 256);
	check_bufs(bp, bufs, 256);
	bounce_put(bp, bufs, 256);
	CU_ASSERT_EQUAL(bounce_in_use(bp), 0);
	CU_ASSERT_EQUAL(bounce_get(bp, bufs, 256, false), 256);
	check_bufs(bp, bufs, 256);
	bounce_put(bp, bufs, 256);
	bounce_pool_destroy(bp);
}

static void test_spares(void)
{
	struct bounce_pool *bp;
	void *bufs[64], *sp[64];

	CU_ASSERT_EQUAL_FATAL(bounce_pool_create(64, BUF, &bp), 0);
	CU_ASSERT_EQUAL(bounce_get_spare(bp, sp, 0), 0);
	CU_ASSERT_EQUAL(bounce_get_spare(bp, sp, 33), 0);	/* over half */
	CU_ASSERT_EQUAL(bounce_get_spare(bp, sp, 20), 20);
	CU_ASSERT_EQUAL(bounce_get_spare(bp, sp + 20, 13), 0);
	CU_ASSERT_EQUAL(bounce_get_spare(bp, sp + 20, 12), 12);
	CU_ASSERT_EQUAL(bounce_in_use(bp), 32);
	bounce_put_spare(bp, sp, 32);
	/* all or none: 24 free is not 32, and the 24 stay free */
	CU_ASSERT_EQUAL(bounce_get(bp, bufs, 40, false), 40);
	CU_ASSERT_EQUAL(bounce_get_spare(bp, sp, 32), 0);
	CU_ASSERT_EQUAL(bounce_in_use(bp), 40);
	CU_ASSERT_EQUAL(bounce_get_spare(bp, sp, 24), 24);
	check_bufs(bp, sp, 24);
	bounce_put_spare(bp, sp, 24);
	bounce_put(bp, bufs, 40);
	CU_ASSERT_EQUAL(bounce_in_use(bp), 0);
	bounce_pool_destroy(bp);
}

#define THREADS 8
#define ROUNDS 20000

struct taker {
	struct bounce_pool *bp;
	_Atomic unsigned char *owner;	/* per buffer: 0 free, else id + 1 */
	char *base;
	unsigned int id, seed;
	bool spares;
	int bad;
};

/* Mark @bufs as ours; one already marked was handed out twice. */
static void own(struct taker *t, void **bufs, size_t n, bool take)
{
	for (size_t i = 0; i < n; i++) {
		size_t b = (size_t)((char *)bufs[i] - t->base) / BUF;
		unsigned char want = take ? 0 : (unsigned char)(t->id + 1);

		if (!atomic_compare_exchange_strong(&t->owner[b], &want,
						    take ? (unsigned char)(t->id + 1) : 0))
			t->bad++;
		if (take)
			memset(bufs[i], (int)t->id, 64);
	}
}

static void *taker_main(void *arg)
{
	struct taker *t = arg;
	void *bufs[64];

	for (int r = 0; r < ROUNDS; r++) {
		size_t want = 1 + (size_t)rand_r(&t->seed) % 64, n;

		n = t->spares && r % 2 ? bounce_get_spare(t->bp, bufs, want) :
		    bounce_get(t->bp, bufs, want, true);
		if (!n && !(t->spares && r % 2))
			t->bad++;	/* a waiting get returns at least one */
		own(t, bufs, n, true);
		own(t, bufs, n, false);
		if (t->spares && r % 2)
			bounce_put_spare(t->bp, bufs, n);
		else
			bounce_put(t->bp, bufs, n);
	}
	return NULL;
}

static void test_threads(void)
{
	struct taker t[THREADS];
	pthread_t th[THREADS];
	struct bounce_pool *bp;
	size_t len;
	_Atomic unsigned char *owner = calloc(128, 1);

	CU_ASSERT_PTR_NOT_NULL_FATAL(owner);
	CU_ASSERT_EQUAL_FATAL(bounce_pool_create(128, BUF, &bp), 0);
	for (unsigned int i = 0; i < THREADS; i++) {
		t[i] = (struct taker){ .bp = bp, .owner = owner, .id = i,
				       .base = bounce_pool_region(bp, &len),
				       .seed = i * 7919 + 1, .spares = i == 0 };
		pthread_create(&th[i], NULL, taker_main, &t[i]);
	}
	for (unsigned int i = 0; i < THREADS; i++) {
		pthread_join(th[i], NULL);
		CU_ASSERT_EQUAL(t[i].bad, 0);
	}
	CU_ASSERT_EQUAL(bounce_in_use(bp), 0);
	bounce_pool_destroy(bp);
	free((void *)owner);
}

int register_bounce_pool(void)
{
	static const CU_TestInfo tests[] = {
		{ "get and put over the shards", test_get_put },
		{ "spares: all or none, half at most", test_spares },
		{ "eight threads, waits and spares", test_threads },
		CU_TEST_INFO_NULL,
	};

	return unit_add_suite("bounce_pool", tests);
}
