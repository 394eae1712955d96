/* SPDX-License-Identifier: MIT */
/*
 * io/eng_psync.c — the "psync" engine: preadv/pwritev in the caller.
 *
 * No context and no queue: each request is one system call (two or more
 * only when interrupted), done one after the other.  The baseline the
 * other engines are measured against, and what works everywhere.
 */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "io/io.h"

static void *psync_ctx_new(unsigned int depth)
{
	(void)depth;
	return malloc(1);	/* nothing to keep; not NULL */
}

static void psync_ctx_free(void *ctx)
{
	free(ctx);
}

static ssize_t psync_one(struct io_req *r)
{
	struct iovec one = { r->buf, r->len };
	const struct iovec *iov = r->iovcnt ? r->iov : &one;
	int cnt = r->iovcnt ? (int)r->iovcnt : 1;
	ssize_t n;

	do {
		switch (r->op) {
		case IO_READ:
			n = preadv(r->fd, iov, cnt, r->off);
			break;
		case IO_WRITE:
			n = pwritev(r->fd, iov, cnt, r->off);
			break;
		case IO_FSYNC:
			n = fsync(r->fd);
			break;
		case IO_FDATASYNC:
			n = fdatasync(r->fd);
			break;
		default:
			errno = EINVAL;
			n = -1;
		}
	} while (n < 0 && errno == EINTR);
	return n < 0 ? -errno : n;
}

static int psync_submit_wait(void *ctx, struct io_req **reqs, unsigned int n)
{
	(void)ctx;
	for (unsigned int i = 0; i < n; i++)
		reqs[i]->res = psync_one(reqs[i]);
	return 0;
}

const struct io_engine_ops io_engine_psync = {
	.name = "psync",
	.version = IO_ENGINE_OPS_VERSION,
	.ctx_new = psync_ctx_new,
	.ctx_free = psync_ctx_free,
	.submit_wait = psync_submit_wait,
};
