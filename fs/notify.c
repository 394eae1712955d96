/* SPDX-License-Identifier: MIT */
/*
 * fs/notify.c — dropping the kernel's cached copy of file ranges.
 *
 * When pages move to the device, the kernel's FUSE page cache must forget
 * them, or CPU reads would never come back to hmmfs (and its bounce path).
 * The cache asks for that while it holds page locks, and sending the
 * notification can block in the kernel until a read of the same range
 * completes, and that read may be waiting in this daemon for one of those
 * page locks.  So the cache only queues the request (notify_inval, the
 * cache's inval hook) and one thread sends them, holding no lock while it
 * does.  Adjacent ranges of one file are merged in the queue.
 *
 * notify_inval_attr_now() drops only the kernel's attributes of a file,
 * from the calling thread: no page is touched, so nothing can wait.
 *
 * notify_flush() lets a control ioctl wait until what it queued was sent,
 * so `hmmfsctl migrate` returns with the kernel cache already dropped, and
 * an O_DIRECT write reply only once the kernel's stale copy of the written
 * range is gone (ops_data.c, direct_write_inval).  The notifier runs with or
 * without the page cache.
 *
 * Locking: n->lock guards the queue and the counters.
 */
#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "fs/fs.h"
#include "lib/compiler.h"

struct inval_req {
	struct inval_req *next;
	uint64_t ino;
	off_t off, len;
};

/**
 * struct notifier - the queue and its thread.
 * @head, @tail: requests not sent yet, oldest first.
 * @queued, @sent: requests ever queued and sent (merged ones count once).
 */
struct notifier {
	struct fuse_session *se;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond, sent_cond;
	struct inval_req *head, **tail;
	uint64_t queued, sent;
	int stop;
};

static void *notify_main(void *arg)
{
	struct notifier *n = arg;

	pthread_mutex_lock(&n->lock);
	while (!n->stop) {
		struct inval_req *r = n->head;

		if (!r) {
			pthread_cond_wait(&n->cond, &n->lock);
			continue;
		}
		n->head = r->next;
		if (!n->head)
			n->tail = &n->head;
		pthread_mutex_unlock(&n->lock);
		/* -ENOENT (forgotten inode) and the like: nothing to drop */
		fuse_lowlevel_notify_inval_inode(n->se, r->ino, r->off, r->len);
		free(r);
		pthread_mutex_lock(&n->lock);
		n->sent++;
		pthread_cond_broadcast(&n->sent_cond);
	}
	pthread_mutex_unlock(&n->lock);
	return NULL;
}

void notify_inval(void *arg, uint64_t ino, off_t off, off_t len)
{
	struct hmmfs *fs = arg;
	struct notifier *n = fs->notifier;
	struct inval_req *r, *last;

	if (!n)
		return;
	pthread_mutex_lock(&n->lock);
	last = n->head ? container_of(n->tail, struct inval_req, next) : NULL;
	if (last && last->ino == ino && last->off + last->len == off) {
		last->len += len;	/* merge with the newest request */
		pthread_mutex_unlock(&n->lock);
		return;
	}
	r = malloc(sizeof(*r));
	if (r) {	/* without memory, the kernel keeps a copy: only slower */
		*r = (struct inval_req){ .ino = ino, .off = off, .len = len };
		*n->tail = r;
		n->tail = &r->next;
		n->queued++;
		pthread_cond_signal(&n->cond);
	}
	pthread_mutex_unlock(&n->lock);
}

/*
 * Attributes only: the kernel then takes no lock a request in flight may
 * hold (fuse_reverse_inval_inode with a negative offset touches no page),
 * so a worker may send it itself, synchronously, before its reply.
 */
void notify_inval_attr_now(struct hmmfs *fs, uint64_t ino)
{
	fuse_lowlevel_notify_inval_inode(fs->se, ino, -1, 0);
}

int notify_flush(struct hmmfs *fs, unsigned int timeout_ms)
{
	struct notifier *n = fs->notifier;
	struct timespec ts;
	uint64_t target;
	int ret = 0;

	if (!n)
		return 0;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += timeout_ms / 1000;
	ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&n->lock);
	target = n->queued;
	while (n->sent < target && !ret)
		ret = -pthread_cond_timedwait(&n->sent_cond, &n->lock, &ts);
	pthread_mutex_unlock(&n->lock);
	return ret;
}

int notify_start(struct hmmfs *fs)
{
	struct notifier *n = calloc(1, sizeof(*n));
	int ret;

	if (!n)
		return -ENOMEM;
	n->se = fs->se;
	n->tail = &n->head;
	pthread_mutex_init(&n->lock, NULL);
	pthread_cond_init(&n->cond, NULL);
	pthread_cond_init(&n->sent_cond, NULL);
	ret = -pthread_create(&n->thread, NULL, notify_main, n);
	if (ret) {
		free(n);
		return ret;
	}
	fs->notifier = n;
	return 0;
}

void notify_stop(struct hmmfs *fs)
{
	struct notifier *n = fs->notifier;

	if (!n)
		return;
	pthread_mutex_lock(&n->lock);
	n->stop = 1;
	pthread_cond_signal(&n->cond);
	pthread_mutex_unlock(&n->lock);
	pthread_join(n->thread, NULL);
	fs->notifier = NULL;	/* the cache may still call: it finds none */
	while (n->head) {
		struct inval_req *r = n->head;

		n->head = r->next;
		free(r);
	}
	pthread_mutex_destroy(&n->lock);
	pthread_cond_destroy(&n->cond);
	pthread_cond_destroy(&n->sent_cond);
	free(n);
}
