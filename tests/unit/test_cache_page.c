/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/test_cache_page.c — cache/page.c: flag helpers, the page lock
 * excluding threads, many waiters on one page all woken, waiters on one
 * page never woken by activity on another, and waiting for writeback.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#include "cache/page.h"
#include "tests/unit/unit.h"

static void nap_ms(long ms)
{
	nanosleep(&(struct timespec){ .tv_sec = ms / 1000,
				      .tv_nsec = (ms % 1000) * 1000000 }, NULL);
}

static void test_flag_helpers(void)
{
	struct page_state p = { 0 };

	CU_ASSERT_FALSE(page_test_uptodate(&p));
	page_set_uptodate(&p);
	page_set_dirty(&p);
	CU_ASSERT_TRUE(page_test_uptodate(&p));
	CU_ASSERT_EQUAL(page_flags(&p), PG_BIT(PG_uptodate) | PG_BIT(PG_dirty));
	CU_ASSERT_TRUE(page_test_clear_dirty(&p));
	CU_ASSERT_FALSE(page_test_clear_dirty(&p));
	CU_ASSERT_FALSE(page_test_set_writeback(&p));
	CU_ASSERT_TRUE(page_test_set_writeback(&p));
	page_end_writeback(&p);
	CU_ASSERT_EQUAL(page_flags(&p), PG_BIT(PG_uptodate));
	CU_ASSERT_TRUE(cache_page_trylock(&p));
	CU_ASSERT_FALSE(cache_page_trylock(&p));
	CU_ASSERT_TRUE(page_test_locked(&p));
	cache_page_unlock(&p);
	CU_ASSERT_EQUAL(page_flags(&p), PG_BIT(PG_uptodate));
}

/* 8 threads add to a plain counter under the page lock. */
static struct page_state lock_page;
static long lock_counter;

static void *lock_worker(void *arg)
{
	(void)arg;
	for (int i = 0; i < 20000; i++) {
		cache_page_lock(&lock_page);
		lock_counter++;
		cache_page_unlock(&lock_page);
	}
	return NULL;
}

static void test_lock_excludes(void)
{
	pthread_t th[8];

	for (int i = 0; i < 8; i++)
		pthread_create(&th[i], NULL, lock_worker, NULL);
	for (int i = 0; i < 8; i++)
		pthread_join(th[i], NULL);
	CU_ASSERT_EQUAL(lock_counter, 8 * 20000);
	CU_ASSERT_EQUAL(page_flags(&lock_page), 0);	/* no stale PG_waiters */
}

/* Waiters record whether they returned, and how often they were woken. */
struct waiter {
	struct page_state *page;
	enum page_flag flag;
	atomic_int done;
	uint64_t wakeups;
};

static void *wait_worker(void *arg)
{
	struct waiter *w = arg;

	page_wait_wakeups = 0;
	cache_page_wait_bit(w->page, w->flag);
	w->wakeups = page_wait_wakeups;
	atomic_store(&w->done, 1);
	return NULL;
}

static int count_done(struct waiter *w, int n)
{
	int d = 0;

	for (int i = 0; i < n; i++)
		d += atomic_load(&w[i].done);
	return d;
}

static void test_many_waiters_one_page(void)
{
	struct page_state p = { 0 };
	struct waiter w[32];
	pthread_t th[32];

	CU_ASSERT_TRUE_FATAL(cache_page_trylock(&p));
	for (int i = 0; i < 32; i++) {
		w[i] = (struct waiter){ .page = &p, .flag = PG_locked };
		pthread_create(&th[i], NULL, wait_worker, &w[i]);
	}
	nap_ms(100);
	CU_ASSERT_EQUAL(count_done(w, 32), 0);		/* all still asleep */
	CU_ASSERT_TRUE(page_flags(&p) & PG_BIT(PG_waiters));
	cache_page_unlock(&p);
	for (int i = 0; i < 32; i++)
		pthread_join(th[i], NULL);
	CU_ASSERT_EQUAL(count_done(w, 32), 32);
}

static void test_other_pages_do_not_wake(void)
{
	struct page_state pages[64] = { 0 };
	struct waiter w;
	pthread_t th;

	CU_ASSERT_TRUE_FATAL(cache_page_trylock(&pages[0]));
	w = (struct waiter){ .page = &pages[0], .flag = PG_locked };
	pthread_create(&th, NULL, wait_worker, &w);
	nap_ms(50);
	/* busy lock traffic, with sleepers, on 63 other pages */
	for (int round = 0; round < 200; round++) {
		for (int i = 1; i < 64; i++) {
			cache_page_lock(&pages[i]);
			atomic_fetch_or(&pages[i].state, PG_BIT(PG_waiters));
			cache_page_unlock(&pages[i]);
		}
	}
	CU_ASSERT_EQUAL(atomic_load(&w.done), 0);
	cache_page_unlock(&pages[0]);
	pthread_join(th, NULL);
	CU_ASSERT_EQUAL(atomic_load(&w.done), 1);
	CU_ASSERT_EQUAL(w.wakeups, 1);	/* woken once: by its own page */
}

static void test_wait_writeback(void)
{
	struct page_state p = { 0 };
	struct waiter w = { .page = &p, .flag = PG_writeback };
	pthread_t th;

	CU_ASSERT_FALSE(page_test_set_writeback(&p));
	pthread_create(&th, NULL, wait_worker, &w);
	nap_ms(50);
	/* the lock coming and going is not the end of writeback */
	cache_page_lock(&p);
	cache_page_unlock(&p);
	nap_ms(20);
	CU_ASSERT_EQUAL(atomic_load(&w.done), 0);
	page_end_writeback(&p);
	pthread_join(th, NULL);
	CU_ASSERT_EQUAL(atomic_load(&w.done), 1);
	CU_ASSERT_FALSE(page_test_writeback(&p));
}

int register_cache_page(void)
{
	static const CU_TestInfo tests[] = {
		{ "flag helpers", test_flag_helpers },
		{ "lock excludes threads", test_lock_excludes },
		{ "many waiters on one page", test_many_waiters_one_page },
		{ "other pages do not wake a waiter", test_other_pages_do_not_wake },
		{ "wait for writeback", test_wait_writeback },
		CU_TEST_INFO_NULL,
	};

	return unit_add_suite("cache_page", tests);
}
