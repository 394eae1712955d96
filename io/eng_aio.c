/* SPDX-License-Identifier: MIT */
/*
 * io/eng_aio.c — the "aio" engine: Linux native AIO through libaio.
 *
 * One io_context per thread with room for the engine's depth.  A batch is
 * one io_submit() of all its iocbs and io_getevents() until every one has
 * completed; a request finishes when its event arrives (->data points back
 * at it).  Native AIO is asynchronous only for O_DIRECT files; on buffered
 * ones the kernel does the work inside io_submit(), which is still correct.
 */
#include <errno.h>
#include <libaio.h>
#include <stdlib.h>

#include "io/io.h"

struct aio_ctx {
	io_context_t ctx;
	unsigned int depth;
	struct iocb *iocbs;
	struct iocb **ptrs;
	struct io_event *events;
};

static void aio_ctx_free(void *p)
{
	struct aio_ctx *a = p;

	if (!a)
		return;
	io_destroy(a->ctx);
	free(a->iocbs);
	free(a->ptrs);
	free(a->events);
	free(a);
}

static void *aio_ctx_new(unsigned int depth)
{
	struct aio_ctx *a = calloc(1, sizeof(*a));
	int ret;

	if (!a)
		return NULL;
	a->depth = depth;
	a->iocbs = calloc(depth, sizeof(*a->iocbs));
	a->ptrs = calloc(depth, sizeof(*a->ptrs));
	a->events = calloc(depth, sizeof(*a->events));
	ret = (a->iocbs && a->ptrs && a->events) ? io_setup((int)depth, &a->ctx)
						  : -ENOMEM;
	if (ret) {
		free(a->iocbs);
		free(a->ptrs);
		free(a->events);
		free(a);
		errno = -ret;
		return NULL;
	}
	return a;
}

static void aio_prep(struct iocb *cb, struct io_req *r)
{
	switch (r->op) {
	case IO_READ:
		if (r->iovcnt)
			io_prep_preadv(cb, r->fd, r->iov, (int)r->iovcnt, r->off);
		else
			io_prep_pread(cb, r->fd, r->buf, r->len, r->off);
		break;
	case IO_WRITE:
		if (r->iovcnt)
			io_prep_pwritev(cb, r->fd, r->iov, (int)r->iovcnt, r->off);
		else
			io_prep_pwrite(cb, r->fd, r->buf, r->len, r->off);
		break;
	case IO_FSYNC:
		io_prep_fsync(cb, r->fd);
		break;
	default:
		io_prep_fdsync(cb, r->fd);
	}
	cb->data = r;
}

static int aio_submit_wait(void *p, struct io_req **reqs, unsigned int n)
{
	struct aio_ctx *a = p;
	unsigned int done = 0, failed = 0;
	long submitted = 0;

	for (unsigned int i = 0; i < n; i++) {
		aio_prep(&a->iocbs[i], reqs[i]);
		a->ptrs[i] = &a->iocbs[i];
	}
	/*
	 * io_submit() stops at an iocb it refuses (a bad descriptor): that
	 * request fails on its own and the rest are submitted after it.
	 */
	while (submitted < n) {
		int r = io_submit(a->ctx, (long)(n - submitted), a->ptrs + submitted);

		if (r == -EINTR || r == -EAGAIN)
			continue;
		if (r < 0) {
			reqs[submitted]->res = r;
			a->ptrs[submitted] = NULL;	/* never completes */
			submitted++;
			failed++;
			continue;
		}
		submitted += r;
	}
	n -= failed;
	while (done < n) {
		int got = io_getevents(a->ctx, 1, (long)(n - done), a->events, NULL);

		if (got == -EINTR)
			continue;
		if (got < 0)
			return got;	/* cannot happen with a valid context */
		for (int i = 0; i < got; i++) {
			struct io_req *r = a->events[i].data;

			r->res = (ssize_t)(long)a->events[i].res;
		}
		done += (unsigned int)got;
	}
	return 0;
}

const struct io_engine_ops io_engine_aio = {
	.name = "aio",
	.version = IO_ENGINE_OPS_VERSION,
	.ctx_new = aio_ctx_new,
	.ctx_free = aio_ctx_free,
	.submit_wait = aio_submit_wait,
};
