/* SPDX-License-Identifier: MIT */
/*
 * lib/lockcheck.h — a *_locked function asserts the lock it expects.
 *
 * A function named *_locked is called with a lock held, and the name does
 * not say which: the page lock (PG_locked), a file's lock, lru_lock,
 * ksm->lock or files_lock.  Each one's first lines say it with these
 * macros, which check it in a debug build (`make DEBUG=1`, which CI runs)
 * and are no code otherwise:
 *
 *   mutex_assert_held(&c->lru_lock)   the calling thread holds the mutex:
 *                                     glibc records the owner's thread id
 *                                     in every mutex it locks
 *                                     (__data.__owner), and the thread's
 *                                     id is read once per thread
 *   lock_assert(cond)                 any other condition on a lock, e.g.
 *                                     page_test_locked(&p->ps) (the page
 *                                     lock has no owner to compare)
 *
 * Debian's glibc does not elide locks unless told to (the
 * glibc.elision.enable tunable), so the owner is always recorded.
 */
#ifndef HMMFS_LIB_LOCKCHECK_H
#define HMMFS_LIB_LOCKCHECK_H

#include <assert.h>
#include <pthread.h>
#include <sys/types.h>
#include <unistd.h>

#ifdef HMMFS_DEBUG
static inline pid_t lockcheck_tid(void)
{
	static __thread pid_t tid;

	if (!tid)
		tid = gettid();
	return tid;
}
#define mutex_assert_held(m)	assert((m)->__data.__owner == lockcheck_tid())
#define lock_assert(cond)	assert(cond)
#else
#define mutex_assert_held(m)	((void)(m))
#define lock_assert(cond)	((void)0)
#endif

#endif
