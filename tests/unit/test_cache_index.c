/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/test_cache_index.c — cache/index.c: insert, lookup, remove;
 * one winner when two pages race for a slot; range walks in index order,
 * sparse and at the largest page numbers; and threads inserting, looking
 * up and removing over the same range at once.  Pages are plain structs
 * here, kept until the end, so no RCU is involved.
 */
#include <pthread.h>
#include <stdlib.h>

#include "cache/cache_int.h"
#include "tests/unit/unit.h"

static struct cpage *page_new(uint64_t index)
{
	struct cpage *p = calloc(1, sizeof(*p));

	CU_ASSERT_FATAL(p != NULL);
	p->index = index;
	atomic_init(&p->ref, 1);
	return p;
}

static void test_insert_lookup_remove(void)
{
	struct cfile f = { 0 };
	struct cpage *a = page_new(5), *b = page_new(5);

	CU_ASSERT_PTR_NULL(index_lookup(&f, 5));
	CU_ASSERT_PTR_EQUAL(index_insert(&f, a), a);
	CU_ASSERT_PTR_EQUAL(index_insert(&f, b), a);	/* slot taken: a wins */
	CU_ASSERT_PTR_EQUAL(index_lookup(&f, 5), a);
	CU_ASSERT_PTR_NULL(index_lookup(&f, 4));
	index_remove(&f, b);				/* not b's slot: no-op */
	CU_ASSERT_PTR_EQUAL(index_lookup(&f, 5), a);
	index_remove(&f, a);
	CU_ASSERT_PTR_NULL(index_lookup(&f, 5));
	index_destroy(&f);
	free(a);
	free(b);
}

struct walked {
	uint64_t last;
	size_t n;
	int unordered;
};

static int walk_fn(struct cpage *p, void *arg)
{
	struct walked *w = arg;

	if (w->n && p->index <= w->last)
		w->unordered = 1;
	w->last = p->index;
	w->n++;
	return 0;
}

static void test_walk_order_and_extremes(void)
{
	static const uint64_t idx[] = { 7, 0, (1ull << 50) + 3, 512, 511,
					1ull << 40, 262144, 1 };
	struct cpage *p[8];
	struct cfile f = { 0 };
	struct walked w = { 0 };

	for (int i = 0; i < 8; i++) {
		p[i] = page_new(idx[i]);
		CU_ASSERT_PTR_EQUAL(index_insert(&f, p[i]), p[i]);
	}
	CU_ASSERT_EQUAL(index_for_each(&f, 0, UINT64_MAX, walk_fn, &w), 0);
	CU_ASSERT_EQUAL(w.n, 8);
	CU_ASSERT_EQUAL(w.unordered, 0);
	CU_ASSERT_EQUAL(w.last, (1ull << 50) + 3);
	w = (struct walked){ 0 };
	index_for_each(&f, 2, 600, walk_fn, &w);	/* 7, 511, 512 */
	CU_ASSERT_EQUAL(w.n, 3);
	CU_ASSERT_EQUAL(w.last, 512);
	CU_ASSERT_PTR_EQUAL(index_lookup(&f, 1ull << 40), p[5]);
	index_destroy(&f);
	for (int i = 0; i < 8; i++)
		free(p[i]);
}

/* Threads over pages 0..4095: insert, check, remove, again. */
struct racer {
	struct cfile *f;
	struct cpage **pool;	/* 4096 pages per thread */
	unsigned int seed;
	int bad;
};

static void *racer_main(void *arg)
{
	struct racer *r = arg;

	for (int round = 0; round < 20000; round++) {
		uint64_t i = (uint64_t)(rand_r(&r->seed) % 4096);
		struct cpage *mine = r->pool[i], *got;

		got = index_insert(r->f, mine);
		if (!got || got->index != i)
			r->bad++;
		got = index_lookup(r->f, i);
		if (got && got->index != i)
			r->bad++;
		if (rand_r(&r->seed) % 2)
			index_remove(r->f, mine);
	}
	return NULL;
}

static void test_concurrent(void)
{
	struct cfile f = { 0 };
	struct racer r[4];
	pthread_t th[4];

	for (int t = 0; t < 4; t++) {
		r[t] = (struct racer){ .f = &f, .seed = (unsigned int)t + 1 };
		r[t].pool = calloc(4096, sizeof(*r[t].pool));
		for (int i = 0; i < 4096; i++)
			r[t].pool[i] = page_new((uint64_t)i);
	}
	for (int t = 0; t < 4; t++)
		pthread_create(&th[t], NULL, racer_main, &r[t]);
	for (int t = 0; t < 4; t++) {
		pthread_join(th[t], NULL);
		CU_ASSERT_EQUAL(r[t].bad, 0);
	}
	index_destroy(&f);
	for (int t = 0; t < 4; t++) {
		for (int i = 0; i < 4096; i++)
			free(r[t].pool[i]);
		free(r[t].pool);
	}
}

int register_cache_index(void)
{
	static const CU_TestInfo tests[] = {
		{ "insert, lookup, remove", test_insert_lookup_remove },
		{ "walks in order, sparse and huge", test_walk_order_and_extremes },
		{ "threads on one range", test_concurrent },
		CU_TEST_INFO_NULL,
	};

	return unit_add_suite("cache_index", tests);
}
