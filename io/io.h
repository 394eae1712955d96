/* SPDX-License-Identifier: MIT */
/*
 * io/io.h — backing-file I/O: engines behind one ops table.
 *
 * The cache hands batches of requests to io_submit_wait(), which submits
 * them together and returns when all are complete.  Engines: "uring"
 * (io_uring, the default), "aio" (Linux AIO through libaio) and "psync"
 * (preadv/pwritev in the calling thread).  A request is one buffer, or a
 * vector of page frames for a run of consecutive pages.
 *
 * Thread safety: any thread may call io_submit_wait() at any time; each
 * thread gets its own engine context (ring, AIO context) on first use.
 */
#ifndef HMMFS_IO_IO_H
#define HMMFS_IO_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

enum io_op { IO_READ, IO_WRITE, IO_FSYNC, IO_FDATASYNC };

/**
 * struct io_req - one backing I/O.
 * @fd:     the backing file.
 * @op:     enum io_op.
 * @buf, @len: the buffer, when @iovcnt is 0.
 * @iov, @iovcnt: a vector of buffers (not copied: keep it until done).
 * @off:    file offset.
 * @res:    set on completion: bytes done, or -errno.  A read that stops
 *          short has reached EOF; a write is continued until done or failed.
 * @priv:   the caller's.
 */
struct io_req {
	int fd;
	int op;
	void *buf;
	size_t len;
	const struct iovec *iov;
	unsigned int iovcnt;
	off_t off;
	ssize_t res;
	void *priv;
};

struct io_engine;

/**
 * struct io_engine_ops - one I/O engine.
 * @name:    its -o io_engine= name.
 * @version: IO_ENGINE_OPS_VERSION.
 * @ctx_new: make a context for the calling thread with room for @depth
 *           requests in flight.  Required.  Return: the context or NULL
 *           (errno set).
 * @ctx_free: free a context (any thread, at engine close).  Required.
 * @submit_wait: issue @n requests (n <= depth) and wait for all of them,
 *           setting each ->res.  Required.  Return: 0, or -errno when the
 *           requests could not be issued at all (then none was).
 */
struct io_engine_ops {
	const char *name;
	int version;
	void *(*ctx_new)(unsigned int depth);
	void (*ctx_free)(void *ctx);
	int (*submit_wait)(void *ctx, struct io_req **reqs, unsigned int n);
};

#define IO_ENGINE_OPS_VERSION 1

extern const struct io_engine_ops io_engine_uring, io_engine_aio,
	io_engine_psync;

/* Open engine @name ("uring", "aio", "psync").  -EINVAL: unknown name;
 * other -errno: the engine cannot run here (e.g. io_uring disabled). */
int io_engine_open(const char *name, unsigned int depth, struct io_engine **out);
void io_engine_close(struct io_engine *e);
const char *io_engine_name(const struct io_engine *e);

/*
 * Do the requests of one batch run at the same time even where each
 * blocks in the kernel (a FUSE O_DIRECT read)?  io_uring: yes, it hands
 * them to its workers; aio's io_submit() blocks on such a read, and psync
 * runs them in turn.
 */
bool io_engine_parallel(const struct io_engine *e);

/* Issue @n requests and wait for all.  Return: 0 (results in ->res). */
int io_submit_wait(struct io_engine *e, struct io_req *reqs, unsigned int n);

/*
 * Batches of writes of at most @bytes in all run in the caller with
 * preadv/pwritev instead of the engine (default 64 KiB; 0: never).  For
 * tests of an engine itself; call before any I/O.
 */
void io_engine_set_inline_max(struct io_engine *e, size_t bytes);

/*
 * Fault injection for tests: @before runs before each request is issued;
 * a negative return completes the request with that error untouched, a
 * positive N shorter than the request cuts it to N bytes.  NULL: off.
 */
void io_engine_set_fault(struct io_engine *e,
			 int (*before)(struct io_req *req, void *arg), void *arg);

/* Counters since open. */
struct io_engine_stats {
	uint64_t reads, writes, bytes_read, bytes_written;
};
void io_engine_stats(struct io_engine *e, struct io_engine_stats *st);

/*
 * Open a backing file for the cache: O_DIRECT where the file system
 * allows it (*direct = 1), else buffered (*direct = 0).
 * Return: the descriptor or -errno.
 */
int io_open_backing(int dirfd, const char *path, int flags, mode_t mode,
		    int *direct);

#endif
