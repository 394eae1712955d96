/* SPDX-License-Identifier: MIT */
/*
 * cache/rcu.h — RCU for the page index (liburcu, "bulletproof" flavour).
 *
 * The bulletproof flavour needs no per-thread registration, which suits
 * libfuse's worker threads that hmmfs does not create.  Readers use
 * rcu_read_lock() and cache_rcu_read_unlock(); whoever queues a deferred
 * free calls cache_rcu_defer() first, and the free cache_rcu_reclaim().
 *
 * ThreadSanitizer cannot see the ordering a grace period gives (liburcu is
 * not instrumented), so in TSan builds every read-side unlock and
 * every call_rcu() is a release and every reclaim an acquire on one shared
 * token: what readers and the remover did happens-before the free, which
 * is exactly RCU's guarantee.  Likewise inserting a node publishes it
 * (release; rcu_assign_pointer inside liburcu) and finding one is an
 * acquire, so a reader sees the node as its inserter initialised it.  liburcu's own threads (call_rcu, table
 * resize) race in TSan's eyes inside the library; tests/tsan.supp hides
 * races whose frames are all in liburcu.
 */
#ifndef HMMFS_CACHE_RCU_H
#define HMMFS_CACHE_RCU_H

#include <urcu-bp.h>

#if defined(__SANITIZE_THREAD__)
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
extern char cache_rcu_token;
#define cache_rcu_read_unlock()                 \
	do {                                    \
		__tsan_release(&cache_rcu_token); \
		rcu_read_unlock();              \
	} while (0)
#define cache_rcu_reclaim() __tsan_acquire(&cache_rcu_token)
#define cache_rcu_defer() __tsan_release(&cache_rcu_token)
#define cache_rcu_publish(obj) __tsan_release(obj)
#define cache_rcu_found(obj) __tsan_acquire(obj)
#else
#define cache_rcu_read_unlock() rcu_read_unlock()
#define cache_rcu_reclaim() do { } while (0)
#define cache_rcu_defer() do { } while (0)
#define cache_rcu_publish(obj) do { (void)(obj); } while (0)
#define cache_rcu_found(obj) do { (void)(obj); } while (0)
#endif

#endif
