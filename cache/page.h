/* SPDX-License-Identifier: MIT */
/*
 * cache/page.h — a cached page: one state word, per-page lock and wait.
 *
 * Every cached page has one 32-bit state word holding all of its flags.
 * Flags change with atomic read-modify-write operations only, so a page's
 * state is always one consistent snapshot.  PG_locked is the page lock; a
 * thread that must wait for any flag to clear sleeps on a futex on the
 * page's own state word (see page.c for the protocol and its trade-off).
 *
 * The helpers below are generated from one list, like the kernel's
 * page-flags.h.  Flags that must only be taken with a test (the lock and
 * writeback) get no plain "set" helper: use cache_page_trylock()/
 * cache_page_lock() and page_test_set_writeback().
 */
#ifndef HMMFS_CACHE_PAGE_H
#define HMMFS_CACHE_PAGE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* Bit numbers in page->state. */
enum page_flag {
	PG_locked,	/* I/O or a state change in progress; exclusive */
	PG_waiters,	/* someone sleeps on this page's futex */
	PG_uptodate,	/* the frame holds the file's current bytes */
	PG_dirty,	/* the frame is newer than BACKING */
	PG_writeback,	/* being written to BACKING */
	PG_error,	/* the last backing I/O of this page failed */
	PG_referenced,	/* used since the eviction scan last looked */
	PG_active,	/* on the active (protected) list */
	/* room for the device tier and write protection */
	PG_device,	/* the only copy lives in device memory */
	PG_dev_rw,	/* the device maps it read-write */
	PG_shared,	/* frame shared by dedupe (cache/ksm.c) */
	PG_replicated,	/* read-only copies on other devices (replica.c) */
	PG_NR_FLAGS
};

_Static_assert(PG_NR_FLAGS <= 32, "page flags fit the 32-bit futex word");

#define PG_BIT(f) (1u << (f))

/**
 * struct page_state - the part of a page that page.c manages.
 * @state: the flags; a futex word.  Updated with atomics only.
 *
 * It is embedded in the cache's page structure (cache.h), so page.c has no
 * notion of files or frames and can be tested alone.
 */
struct page_state {
	_Atomic uint32_t state;
};

static inline uint32_t page_flags(const struct page_state *p)
{
	return atomic_load_explicit(&((struct page_state *)p)->state,
				    memory_order_acquire);
}

/* PAGE_FLAG(Name, flag): page_test_name, page_set_name, page_clear_name. */
#define PAGE_FLAG_TEST(name, flag)                                          \
	static inline bool page_test_##name(const struct page_state *p)     \
	{                                                                   \
		return page_flags(p) & PG_BIT(flag);                        \
	}
#define PAGE_FLAG_SET(name, flag)                                           \
	static inline void page_set_##name(struct page_state *p)            \
	{                                                                   \
		atomic_fetch_or_explicit(&p->state, PG_BIT(flag),           \
					 memory_order_release);             \
	}
#define PAGE_FLAG_CLEAR(name, flag)                                         \
	static inline void page_clear_##name(struct page_state *p)          \
	{                                                                   \
		atomic_fetch_and_explicit(&p->state, ~PG_BIT(flag),         \
					  memory_order_release);            \
	}
#define PAGE_FLAG_TESTSET(name, flag)                                       \
	static inline bool page_test_set_##name(struct page_state *p)       \
	{                                                                   \
		return atomic_fetch_or_explicit(&p->state, PG_BIT(flag),    \
						memory_order_acq_rel) &     \
		       PG_BIT(flag);                                        \
	}
#define PAGE_FLAG_TESTCLEAR(name, flag)                                     \
	static inline bool page_test_clear_##name(struct page_state *p)     \
	{                                                                   \
		return atomic_fetch_and_explicit(&p->state, ~PG_BIT(flag),  \
						 memory_order_acq_rel) &    \
		       PG_BIT(flag);                                        \
	}
#define PAGE_FLAG(name, flag)                                               \
	PAGE_FLAG_TEST(name, flag)                                          \
	PAGE_FLAG_SET(name, flag)                                           \
	PAGE_FLAG_CLEAR(name, flag)                                         \
	PAGE_FLAG_TESTSET(name, flag)                                       \
	PAGE_FLAG_TESTCLEAR(name, flag)

/*
 * The store-release in page_set_uptodate() pairs with the load-acquire in
 * page_test_uptodate(): a reader that sees the flag sees the frame's bytes.
 */
PAGE_FLAG(uptodate, PG_uptodate)
PAGE_FLAG(dirty, PG_dirty)
PAGE_FLAG(error, PG_error)
PAGE_FLAG(referenced, PG_referenced)
PAGE_FLAG(active, PG_active)
PAGE_FLAG(device, PG_device)
PAGE_FLAG(dev_rw, PG_dev_rw)
PAGE_FLAG(shared, PG_shared)
PAGE_FLAG(replicated, PG_replicated)
/* Only test-and-set exists for writeback; ending it wakes waiters. */
PAGE_FLAG_TEST(writeback, PG_writeback)
PAGE_FLAG_TESTSET(writeback, PG_writeback)
PAGE_FLAG_TEST(locked, PG_locked)

/**
 * cache_page_trylock() - take the page lock if it is free.
 * Return: true if the caller now holds it.
 */
static inline bool cache_page_trylock(struct page_state *p)
{
	return !(atomic_fetch_or_explicit(&p->state, PG_BIT(PG_locked),
					  memory_order_acquire) &
		 PG_BIT(PG_locked));
}

/**
 * cache_page_lock() - take the page lock, sleeping while another holds it.
 * Context: may sleep; the caller holds no page lock of a page it waits on.
 */
void cache_page_lock(struct page_state *p);

/**
 * cache_page_unlock() - release the page lock and wake its waiters.
 * Context: the caller holds the lock.
 */
void cache_page_unlock(struct page_state *p);

/* End writeback and wake whoever waits for it. */
void page_end_writeback(struct page_state *p);

/**
 * cache_page_wait_bit() - sleep until @flag is clear on @p.
 * Return: the state word seen with @flag clear.
 */
uint32_t cache_page_wait_bit(struct page_state *p, enum page_flag flag);

static inline void cache_page_wait_writeback(struct page_state *p)
{
	cache_page_wait_bit(p, PG_writeback);
}

/*
 * How often this thread's futex sleeps ended (woken, not a changed word).
 * Thread-local so it costs no shared cache line; tests use it to show a
 * waiter on one page is never woken for another.
 */
extern _Thread_local uint64_t page_wait_wakeups;

#endif
