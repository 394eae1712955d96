/* SPDX-License-Identifier: MIT */
/*
 * cache/page.c — the page lock and per-page waiting.
 *
 * Each page's 32-bit state word (page.h) is also its futex.  A thread that
 * needs a flag clear (PG_locked, PG_writeback) does:
 *
 *	s = load(state); if !(s & flag): done
 *	cmpxchg(state, s, s | PG_waiters)        -- announce the sleeper
 *	futex_wait(state, s | PG_waiters)        -- sleeps only if unchanged
 *
 * and a thread clearing such a flag does:
 *
 *	old = fetch_and(state, ~(flag | PG_waiters))
 *	if (old & PG_waiters): futex_wake(state, all)
 *
 * No wake-up is lost: if the clear comes first, the waiter's cmpxchg fails
 * (it looks again and sees the flag clear) or futex_wait finds the word
 * changed and returns at once; if the cmpxchg comes first, the clearer sees
 * PG_waiters and wakes it.
 * The fetch_and clears PG_waiters, so every woken thread that still has to
 * wait sets it again; a page with no sleepers costs its clearer no syscall.
 *
 * The trade-off, against the kernel's hashed wait table: the kernel keeps
 * struct page small and shares 256 wait queues among all pages, so a wake
 * can disturb sleepers on unrelated pages that hash alike (it then filters
 * them, the "thundering herd" its comments discuss).  Here the futex is
 * the page's own word: sleepers on one page are never woken for another,
 * and a hot contended page slows only its own waiters.  We wake all of a
 * page's sleepers (they may wait for different flags) and they re-check;
 * the herd is bounded by the waiters of that one page.  The price is that
 * waiters cannot be woken in FIFO order: a lock is not fair.
 *
 * Memory ordering: taking the lock is an acquire (fetch_or), dropping it a
 * release (fetch_and), so what the holder wrote is seen by the next holder.
 */
#include "cache/page.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

_Thread_local uint64_t page_wait_wakeups;

static void futex_wait(_Atomic uint32_t *word, uint32_t expected)
{
	long r = syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, expected,
			 NULL, NULL, 0);

	if (r == 0)
		page_wait_wakeups++;
	/* EAGAIN: the word changed; EINTR: a signal.  Callers re-check. */
}

static void futex_wake_all(_Atomic uint32_t *word)
{
	syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

uint32_t cache_page_wait_bit(struct page_state *p, enum page_flag flag)
{
	uint32_t s = atomic_load_explicit(&p->state, memory_order_acquire);

	for (;;) {
		if (!(s & PG_BIT(flag)))
			return s;
		if (!(s & PG_BIT(PG_waiters)) &&
		    !atomic_compare_exchange_weak_explicit(&p->state, &s,
							   s | PG_BIT(PG_waiters),
							   memory_order_acquire,
							   memory_order_acquire))
			continue;	/* s was reloaded: look again */
		futex_wait(&p->state, s | PG_BIT(PG_waiters));
		s = atomic_load_explicit(&p->state, memory_order_acquire);
	}
}

/* Clear @flag (and PG_waiters); wake the sleepers if there were any. */
static void page_clear_and_wake(struct page_state *p, enum page_flag flag)
{
	uint32_t old = atomic_fetch_and_explicit(&p->state,
						 ~(PG_BIT(flag) | PG_BIT(PG_waiters)),
						 memory_order_release);

	if (old & PG_BIT(PG_waiters))
		futex_wake_all(&p->state);
}

void cache_page_lock(struct page_state *p)
{
	while (!cache_page_trylock(p))
		cache_page_wait_bit(p, PG_locked);
}

void cache_page_unlock(struct page_state *p)
{
	page_clear_and_wake(p, PG_locked);
}

void page_end_writeback(struct page_state *p)
{
	page_clear_and_wake(p, PG_writeback);
}
