/* SPDX-License-Identifier: MIT */
/*
 * tests/common/dropcaches.c — the drop_caches thread of the checkers.
 *
 * A drop opens /proc/sys/vm/drop_caches (a fresh open keeps the offset at
 * 0) and writes "2".  One drop runs at a time (@dropping): the thread
 * skips its turn if a checker's drop is under way, and a checker that
 * asks while one is under way waits for the *next* one to finish, since
 * the one under way may have passed its inode before it closed the file.
 * Checkers that arrive together share that next drop, so 64 threads
 * asking at once cost one or two drops, not 64 back to back.
 *
 * The thread sleeps on a condition variable for the interval, so that
 * dropcaches_stop() ends the sleep at once rather than polling a flag.
 * The interval runs from the end of one drop to the next (a drop can take
 * tens of ms: the kernel walks every superblock's inodes), so on a busy
 * machine drops get rarer, never back to back.
 *
 * The start first drops once itself, so that "not allowed" is said on the
 * caller's stderr before the run begins and no thread is left that can
 * do nothing.  A write that fails later (it should not) is said once and
 * ends the drops; the run goes on.
 *
 * Locking: @lock protects @stop, @started, @dropping and @failed; the
 * counters are atomics only so that the caller may read them at any time.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tests/common/dropcaches.h"

#define DROP_CACHES_PATH "/proc/sys/vm/drop_caches"

/* One drop of the dentry and inode caches.  Return: 0 or -errno. */
static int drop_once(void)
{
	int fd = open(DROP_CACHES_PATH, O_WRONLY | O_CLOEXEC);
	int ret = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, "2", 1) != 1)
		ret = errno ? -errno : -EIO;
	close(fd);
	return ret;
}

/*
 * Do one drop with @d->lock held across everything but the write itself.
 * Context: @d->lock held, no drop under way; drops and retakes it.
 */
static void drop_locked(struct dropcaches *d, bool asked)
{
	int ret;

	d->dropping = true;
	d->started++;
	pthread_mutex_unlock(&d->lock);
	ret = drop_once();
	pthread_mutex_lock(&d->lock);
	d->dropping = false;
	if (!ret) {
		atomic_fetch_add(&d->drops, 1);
		if (asked)
			atomic_fetch_add(&d->now_drops, 1);
	} else if (!d->failed) {
		fprintf(stderr, "%s: drop_caches: writing %s failed: %s; "
			"no more drops this run\n", d->who, DROP_CACHES_PATH,
			strerror(-ret));
		d->failed = true;
	}
	/* pairs with the wait in dropcaches_now() */
	pthread_cond_broadcast(&d->done);
}

/* The absolute CLOCK_MONOTONIC time @ms from now. */
static struct timespec deadline_after(unsigned ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	return ts;
}

static void *dropcaches_main(void *arg)
{
	struct dropcaches *d = arg;

	pthread_mutex_lock(&d->lock);
	while (!d->stop && !d->failed) {
		struct timespec until = deadline_after(d->interval_ms);

		/* sleep the interval, or until dropcaches_stop() signals */
		while (!d->stop &&
		       pthread_cond_timedwait(&d->wake, &d->lock, &until) != ETIMEDOUT)
			;
		/* a checker's drop under way stands for this turn's */
		if (!d->stop && !d->failed && !d->dropping)
			drop_locked(d, false);
	}
	pthread_mutex_unlock(&d->lock);
	return NULL;
}

int dropcaches_start(struct dropcaches *d, unsigned interval_ms, const char *who)
{
	pthread_condattr_t attr;
	int ret;

	d->interval_ms = interval_ms;
	d->who = who;
	ret = drop_once();
	if (ret) {
		fprintf(stderr, "%s: -D: cannot write %s: %s; running WITHOUT "
			"dropping the kernel's inodes\n", who, DROP_CACHES_PATH,
			strerror(-ret));
		return ret;
	}
	atomic_store(&d->drops, 1);
	pthread_mutex_init(&d->lock, NULL);
	pthread_cond_init(&d->done, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&d->wake, &attr);
	pthread_condattr_destroy(&attr);
	ret = pthread_create(&d->tid, NULL, dropcaches_main, d);
	if (ret) {
		fprintf(stderr, "%s: -D: cannot start the drop_caches thread: %s; "
			"running WITHOUT dropping the kernel's inodes\n", who,
			strerror(ret));
		goto out_destroy;
	}
	d->running = true;
	return 0;

out_destroy:
	pthread_cond_destroy(&d->wake);
	pthread_cond_destroy(&d->done);
	pthread_mutex_destroy(&d->lock);
	return -ret;
}

int dropcaches_now(struct dropcaches *d)
{
	uint64_t target;
	int ret;

	if (!d->running)
		return 0;
	pthread_mutex_lock(&d->lock);
	/* the first drop to start from now on; one under way may be too early */
	target = d->started + 1;
	while (!d->failed && (d->dropping || d->started < target)) {
		if (d->dropping)
			pthread_cond_wait(&d->done, &d->lock);
		else
			drop_locked(d, true);
	}
	ret = d->failed ? -EIO : 0;
	pthread_mutex_unlock(&d->lock);
	return ret;
}

void dropcaches_stop(struct dropcaches *d)
{
	if (!d->running)
		return;
	pthread_mutex_lock(&d->lock);
	d->stop = true;
	pthread_cond_signal(&d->wake);
	pthread_mutex_unlock(&d->lock);
	pthread_join(d->tid, NULL);
	d->running = false;
	pthread_cond_destroy(&d->wake);
	pthread_cond_destroy(&d->done);
	pthread_mutex_destroy(&d->lock);
}
