/* SPDX-License-Identifier: MIT */
/*
 * io/io.c — the engine front end: per-thread contexts, faults, counts.
 *
 * Engine contexts (an io_uring ring, an AIO context) are not thread-safe,
 * and a lock around one shared context would serialise every worker of
 * the daemon on backing I/O.  So each thread gets its own context of each
 * open engine, made on first use and found through a small thread-local
 * table keyed by the engine's unique id (not its address, which a later
 * engine may reuse).  The engine keeps every context it made on a list,
 * under ->lock, and frees them all at close; the daemon's threads live as
 * long as the mount, so contexts are not freed per thread.
 *
 * io_submit_wait() runs the fault hooks, hands the batch to the engine in
 * pieces of at most ->depth requests (a small batch of writes it does
 * itself, engine_for()), and finishes short writes with pwritev: a write is
 * complete or failed when it returns.  Two hooks: the
 * per-engine one of io_engine_set_fault() (unit tests), and the daemon's
 * fault rules (fault/fault.h: backing_read, backing_write, slow_io), which
 * can fail a request, delay it, or make the engine's write come back
 * short, so that the finishing path runs on every engine.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/io.h"
#include "fault/fault.h"
#include "lib/compiler.h"

struct io_ctx_link {
	void *ctx;
	struct io_ctx_link *next;
};

/**
 * struct io_engine - an open engine.
 * @ops:    the engine.
 * @id:     unique among engines ever opened (thread-local lookups).
 * @depth:  requests per submission.
 * @inline_max: bytes of writes a batch may have to run in the caller
 *          (engine_for()); set before I/O starts.
 * @lock:   guards @ctxs.
 * @ctxs:   every context made, freed at close.
 * @fault:  the test hook and its argument (atomic: set while I/O runs).
 * @retired: hooks replaced while requests may still use them; ->lock.
 */
struct io_fault {
	int (*before)(struct io_req *req, void *arg);
	void *arg;
	struct io_fault *retired;	/* replaced hooks, freed at close */
};

struct io_engine {
	const struct io_engine_ops *ops;
	uint64_t id;
	unsigned int depth;
	size_t inline_max;
	pthread_mutex_t lock;
	struct io_ctx_link *ctxs;
	_Atomic(struct io_fault *) fault;
	struct io_fault *retired;
	_Atomic uint64_t reads, writes, bytes_read, bytes_written;
};

#define IO_INLINE_MAX (64u << 10)	/* bytes: see engine_for() */

#define TL_SLOTS 8

static _Atomic uint64_t engine_ids = 1;
static _Thread_local struct { uint64_t id; void *ctx; } tl_ctx[TL_SLOTS];

static const struct io_engine_ops *const engines[] = {
	&io_engine_uring, &io_engine_aio, &io_engine_psync,
};

int io_engine_open(const char *name, unsigned int depth, struct io_engine **out)
{
	const struct io_engine_ops *ops = NULL;
	struct io_engine *e;
	void *probe;

	for (size_t i = 0; i < ARRAY_SIZE(engines); i++)
		if (strcmp(engines[i]->name, name) == 0)
			ops = engines[i];
	if (!ops)
		return -EINVAL;
	/* make (and drop) one context now, so "cannot run here" shows at mount */
	probe = ops->ctx_new(depth);
	if (!probe)
		return errno ? -errno : -ENOSYS;
	ops->ctx_free(probe);
	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->ops = ops;
	e->id = atomic_fetch_add(&engine_ids, 1);
	e->depth = depth ? depth : 64;
	e->inline_max = IO_INLINE_MAX;
	pthread_mutex_init(&e->lock, NULL);
	*out = e;
	return 0;
}

void io_engine_close(struct io_engine *e)
{
	struct io_ctx_link *l = e->ctxs, *next;

	for (; l; l = next) {
		next = l->next;
		e->ops->ctx_free(l->ctx);
		free(l);
	}
	free(atomic_load(&e->fault));
	while (e->retired) {
		struct io_fault *f = e->retired;

		e->retired = f->retired;
		free(f);
	}
	pthread_mutex_destroy(&e->lock);
	free(e);
}

const char *io_engine_name(const struct io_engine *e)
{
	return e->ops->name;
}

/* This thread's context of @e, made on first use. */
static void *io_ctx_get(struct io_engine *e)
{
	struct io_ctx_link *l;
	int free_slot = -1;

	for (int i = 0; i < TL_SLOTS; i++) {
		if (tl_ctx[i].id == e->id)
			return tl_ctx[i].ctx;
		if (free_slot < 0 && !tl_ctx[i].ctx)
			free_slot = i;
	}
	l = calloc(1, sizeof(*l));
	if (!l)
		return NULL;
	l->ctx = e->ops->ctx_new(e->depth);
	if (!l->ctx) {
		free(l);
		return NULL;
	}
	pthread_mutex_lock(&e->lock);
	l->next = e->ctxs;
	e->ctxs = l;
	pthread_mutex_unlock(&e->lock);
	if (free_slot < 0)
		free_slot = (int)(e->id % TL_SLOTS);	/* evict: stays on the list */
	tl_ctx[free_slot].id = e->id;
	tl_ctx[free_slot].ctx = l->ctx;
	return l->ctx;
}

void io_engine_set_fault(struct io_engine *e,
			 int (*before)(struct io_req *req, void *arg), void *arg)
{
	struct io_fault *f = NULL, *old;

	if (before) {
		f = malloc(sizeof(*f));
		if (!f)
			return;
		f->before = before;
		f->arg = arg;
		f->retired = NULL;
	}
	old = atomic_exchange(&e->fault, f);
	if (old) {	/* a request may still be using it: free at close */
		pthread_mutex_lock(&e->lock);
		old->retired = e->retired;
		e->retired = old;
		pthread_mutex_unlock(&e->lock);
	}
}

static size_t req_bytes(const struct io_req *r)
{
	size_t n = r->len;

	if (r->iovcnt) {
		n = 0;
		for (unsigned int i = 0; i < r->iovcnt; i++)
			n += r->iov[i].iov_len;
	}
	return n;
}

/* Finish a short write with pwritev from where the engine stopped. */
static void write_finish(struct io_req *r, size_t total)
{
	struct iovec one = { r->buf, r->len }, iov[1024];
	const struct iovec *src = r->iovcnt ? r->iov : &one;
	unsigned int cnt = r->iovcnt ? r->iovcnt : 1;

	while (r->res >= 0 && (size_t)r->res < total) {
		size_t skip = (size_t)r->res;
		unsigned int n = 0;
		ssize_t w;

		for (unsigned int i = 0; i < cnt && n < 1024; i++) {
			if (skip >= src[i].iov_len) {
				skip -= src[i].iov_len;
				continue;
			}
			iov[n].iov_base = (char *)src[i].iov_base + skip;
			iov[n++].iov_len = src[i].iov_len - skip;
			skip = 0;
		}
		w = pwritev(r->fd, iov, (int)n, r->off + r->res);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			r->res = w < 0 ? -errno : -EIO;
			return;
		}
		r->res += w;
	}
}

/*
 * The daemon's fault rules for @r.  Return: true if @r is done (failed);
 * *@cut is set when the engine's write is to come back short.
 */
static bool fault_rules(struct io_req *r, bool *cut)
{
	struct fault_where w = { .fd = r->fd };
	int ret;

	if (r->op != IO_READ && r->op != IO_WRITE)
		return false;
	ret = fault_hit(r->op == IO_READ ? FAULT_BACKING_READ : FAULT_BACKING_WRITE,
			&w);
	if (ret < 0) {
		r->res = ret;
		return true;
	}
	*cut = ret == FAULT_SHORT;
	return false;
}

/*
 * backing_write:short: report the completed write @r as stopped half way,
 * on a 4 KiB boundary (O_DIRECT needs aligned offsets to go on), as an
 * engine may; write_finish() then writes the rest again.
 */
static void fault_cut_write(struct io_req *r)
{
	if (r->res > 0)
		r->res = (r->res / 2) & ~(ssize_t)4095;
}

/* Run the test hook on @r.  Return: true if @r is done (failed). */
static bool fault_before(struct io_engine *e, struct io_req *r, size_t *total)
{
	struct io_fault *f = atomic_load_explicit(&e->fault, memory_order_acquire);
	int ret;

	if (!f)
		return false;
	ret = f->before(r, f->arg);
	if (ret < 0) {
		r->res = ret;
		return true;
	}
	if (ret > 0 && (size_t)ret < *total && !r->iovcnt) {
		r->len = (size_t)ret;	/* a short request */
		*total = (size_t)ret;
	}
	return false;
}

static void count(struct io_engine *e, const struct io_req *r)
{
	if (r->res <= 0)
		return;
	if (r->op == IO_READ) {
		atomic_fetch_add_explicit(&e->reads, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&e->bytes_read, (uint64_t)r->res,
					  memory_order_relaxed);
	} else if (r->op == IO_WRITE) {
		atomic_fetch_add_explicit(&e->writes, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&e->bytes_written, (uint64_t)r->res,
					  memory_order_relaxed);
	}
}

/*
 * The engine for a submission: a batch of writes of at most ->inline_max
 * bytes in all (IO_INLINE_MAX unless a test changed it) runs in the
 * caller (psync), one request after the other.  A queue gains little for
 * a few small writes, and io_uring hands a buffered write that cannot
 * complete without blocking (ext4's, always) to a worker thread and wakes
 * us when it is done: two thread switches around a 4 KiB copy (the close
 * or fsync of a small file writes a page or a few).  Reads keep the
 * engine: a few O_DIRECT cache misses are worth reading at once.  psync
 * keeps no context, so the engine's is passed along unused.
 */
static const struct io_engine_ops *engine_for(const struct io_engine *e,
					      struct io_req **batch, unsigned int nb)
{
	size_t total = 0;

	for (unsigned int i = 0; i < nb && total <= e->inline_max; i++) {
		if (batch[i]->op != IO_WRITE)
			return e->ops;	/* reads: queued together, see above */
		total += req_bytes(batch[i]);
	}
	return total <= e->inline_max ? &io_engine_psync : e->ops;
}

bool io_engine_parallel(const struct io_engine *e)
{
	return e->ops == &io_engine_uring;
}

void io_engine_set_inline_max(struct io_engine *e, size_t bytes)
{
	e->inline_max = bytes;
}

int io_submit_wait(struct io_engine *e, struct io_req *reqs, unsigned int n)
{
	struct io_req *batch[256];
	size_t totals[256];
	bool cut[256];
	void *ctx = io_ctx_get(e);
	unsigned int i = 0;

	if (!ctx)
		return errno ? -errno : -ENOMEM;
	while (i < n) {
		unsigned int nb = 0;
		int ret;

		for (; i < n && nb < e->depth && nb < 256; i++) {
			size_t total = req_bytes(&reqs[i]);
			bool short_write = false;

			if (fault_rules(&reqs[i], &short_write) ||
			    fault_before(e, &reqs[i], &total))
				continue;
			cut[nb] = short_write;
			totals[nb] = total;
			batch[nb++] = &reqs[i];
		}
		if (!nb)
			continue;
		ret = engine_for(e, batch, nb)->submit_wait(ctx, batch, nb);
		for (unsigned int k = 0; k < nb; k++) {
			if (ret) {
				batch[k]->res = ret;
			} else if (batch[k]->op == IO_WRITE) {
				if (cut[k])
					fault_cut_write(batch[k]);
				write_finish(batch[k], totals[k]);
			}
			count(e, batch[k]);
		}
	}
	return 0;
}

void io_engine_stats(struct io_engine *e, struct io_engine_stats *st)
{
	st->reads = atomic_load(&e->reads);
	st->writes = atomic_load(&e->writes);
	st->bytes_read = atomic_load(&e->bytes_read);
	st->bytes_written = atomic_load(&e->bytes_written);
}

int io_open_backing(int dirfd, const char *path, int flags, mode_t mode,
		    int *direct)
{
	int fd = openat(dirfd, path, flags | O_DIRECT, mode);

	*direct = fd >= 0;
	if (fd < 0 && errno == EINVAL)	/* the file system refuses O_DIRECT */
		fd = openat(dirfd, path, flags & ~O_DIRECT, mode);
	return fd < 0 ? -errno : fd;
}
