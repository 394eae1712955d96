/* SPDX-License-Identifier: MIT */
/*
 * io/eng_uring.c — the "uring" engine (default): io_uring.
 *
 * One ring per thread, sized to the engine's depth.  A batch fills one SQE
 * per request, is submitted with one io_uring_submit_and_wait() for all of
 * it, and its completions are reaped until every request has one
 * (user_data points back at the request).  Vectored requests use
 * IORING_OP_READV/WRITEV, single buffers READ/WRITE.
 */
#include <errno.h>
#include <liburing.h>
#include <stdlib.h>

#include "io/io.h"

static void *uring_ctx_new(unsigned int depth)
{
	struct io_uring *ring = malloc(sizeof(*ring));
	int ret;

	if (!ring)
		return NULL;
	ret = io_uring_queue_init(depth, ring, 0);
	if (ret < 0) {
		free(ring);
		errno = -ret;
		return NULL;
	}
	return ring;
}

static void uring_ctx_free(void *p)
{
	io_uring_queue_exit(p);
	free(p);
}

static void uring_prep(struct io_uring_sqe *sqe, struct io_req *r)
{
	switch (r->op) {
	case IO_READ:
		if (r->iovcnt)
			io_uring_prep_readv(sqe, r->fd, r->iov, r->iovcnt, (__u64)r->off);
		else
			io_uring_prep_read(sqe, r->fd, r->buf, (unsigned int)r->len,
					   (__u64)r->off);
		break;
	case IO_WRITE:
		if (r->iovcnt)
			io_uring_prep_writev(sqe, r->fd, r->iov, r->iovcnt, (__u64)r->off);
		else
			io_uring_prep_write(sqe, r->fd, r->buf, (unsigned int)r->len,
					    (__u64)r->off);
		break;
	case IO_FSYNC:
		io_uring_prep_fsync(sqe, r->fd, 0);
		break;
	default:
		io_uring_prep_fsync(sqe, r->fd, IORING_FSYNC_DATASYNC);
	}
	io_uring_sqe_set_data(sqe, r);
}

static int uring_submit_wait(void *p, struct io_req **reqs, unsigned int n)
{
	struct io_uring *ring = p;
	unsigned int done = 0;
	int ret;

	for (unsigned int i = 0; i < n; i++) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(ring);

		if (!sqe)	/* n never exceeds the ring's depth */
			return -EBUSY;
		uring_prep(sqe, reqs[i]);
	}
	do
		ret = io_uring_submit_and_wait(ring, n);
	while (ret == -EINTR);
	if (ret < 0)
		return ret;
	while (done < n) {
		struct io_uring_cqe *cqe;

		ret = io_uring_wait_cqe(ring, &cqe);
		if (ret == -EINTR)
			continue;
		if (ret < 0)
			return ret;
		((struct io_req *)io_uring_cqe_get_data(cqe))->res = cqe->res;
		io_uring_cqe_seen(ring, cqe);
		done++;
	}
	return 0;
}

const struct io_engine_ops io_engine_uring = {
	.name = "uring",
	.version = IO_ENGINE_OPS_VERSION,
	.ctx_new = uring_ctx_new,
	.ctx_free = uring_ctx_free,
	.submit_wait = uring_submit_wait,
};
