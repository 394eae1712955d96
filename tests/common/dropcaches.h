/* SPDX-License-Identifier: MIT */
/*
 * tests/common/dropcaches.h — a thread that makes the kernel forget inodes.
 *
 * The checkers (hmmfsx, hmmfscrash) start one with -D MS: every MS
 * milliseconds it writes "2" to /proc/sys/vm/drop_caches, so the kernel
 * drops its unused dentries and inodes (and their page cache) and sends
 * FORGET for every hmmfs inode no one holds open.  hmmfs must keep a
 * file's cache state across that (detach at FORGET, reattach at LOOKUP)
 * without ever showing stale data or losing dirty data; the checkers'
 * models catch it if it does.
 *
 * Inodes a descriptor holds stay, so the background drops alone seldom
 * meet a data file that a checker keeps open.  dropcaches_now() is for the
 * checker's own quiet moments: it closes its file, has a drop done at
 * once, and opens the file again, so that the next open is (unless
 * another descriptor or a mapping holds the inode) a LOOKUP after a FORGET.
 *
 * Writing the file needs root.  When it cannot be written the start says
 * so on stderr, once, and the run goes on without the thread: a checker
 * run by a user still checks data, visibly without this stress.
 */
#ifndef HMMFS_TESTS_COMMON_DROPCACHES_H
#define HMMFS_TESTS_COMMON_DROPCACHES_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/**
 * struct dropcaches - one dropping thread; zero it before dropcaches_start().
 * @tid:       the thread, valid while @running.
 * @lock:      protects @stop, @started, @dropping and @failed.
 * @wake:      signalled by dropcaches_stop(), so the thread ends its sleep
 *             at once instead of finishing it.
 * @done:      broadcast at the end of every drop (dropcaches_now() waits).
 * @stop:      set by dropcaches_stop().
 * @dropping:  a drop is under way (only one at a time).
 * @started:   drops started since the thread began.
 * @failed:    a write failed (said on stderr): no more drops.
 * @running:   the thread was started and is not joined yet.
 * @interval_ms: time from the end of one drop to the thread's next.
 * @drops:     drops done, by the thread and by dropcaches_now().
 * @now_drops: of those, the ones dropcaches_now() did.
 * @who:       the program's name, for messages.
 */
struct dropcaches {
	pthread_t tid;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	pthread_cond_t done;
	bool stop;
	bool dropping;
	uint64_t started;
	bool failed;
	bool running;
	unsigned interval_ms;
	_Atomic uint64_t drops;
	_Atomic uint64_t now_drops;
	const char *who;
};

/*
 * Start dropping the kernel's dentry and inode caches every @interval_ms
 * ms.  Return: 0 if the thread runs; -errno if /proc/sys/vm/drop_caches
 * cannot be written or the thread cannot start (said on stderr; the
 * caller goes on without it).
 */
int dropcaches_start(struct dropcaches *d, unsigned interval_ms, const char *who);

/*
 * Return once a drop that started after the call has finished: the
 * caller's closed file has been offered to the kernel's shrinker.  Does
 * the drop in the calling thread, or waits for the one another caller
 * started after it; a no-op when the thread is not running.  Context:
 * any thread, between dropcaches_start() and dropcaches_stop().
 * Return: 0, or -EIO if drops failed (said on stderr).
 */
int dropcaches_now(struct dropcaches *d);

/*
 * Stop the thread and join it; a no-op if it never started.  Afterwards
 * @d->drops says how many drops were done.
 */
void dropcaches_stop(struct dropcaches *d);

#endif
