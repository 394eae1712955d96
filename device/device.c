/* SPDX-License-Identifier: MIT */
/*
 * device/device.c — what every backend shares: frames, the device page
 * table, argument checks.
 *
 * Frames.  The backend allocates device memory once (ops->open); this
 * file carves it into frames of the cache's page size, like the host
 * frame pool: a stack of freed frame numbers, reused first, and a "bump"
 * index for frames never handed out.  A mutex guards both; it is held for
 * a few instructions per frame.
 *
 * The device page table.  One bit per frame in an array of atomic words:
 * set while the device maps the frame read-write.  Frames start read-only.
 * dev_compute(), the only device-side write, checks every frame of its
 * range and returns -EFAULT (the device write fault) without queueing
 * anything if one is read-only; the cache's fault handler marks the page
 * dirty, maps it read-write with dev_protect() and retries.  The bit is
 * read and written with relaxed atomics: the cache orders dev_protect()
 * against dev_compute() of the same frame with the page lock, so the bit
 * never has to carry ordering of its own.
 *
 * Checks.  Every address and length is checked against the allocation
 * here, so a backend never sees an out-of-range request.
 *
 * Faults.  dev_frame_alloc() and the copy functions run the fault hooks
 * (fault/fault.h: dev_alloc, dev_copy) first, so every backend fails the
 * same way: an allocation with -ENOSPC (or the rule's errno), a copy at
 * queueing time, before anything was queued.
 *
 * Two paths for a batch of copies.  A reader of one device page wants
 * its 4 KiB now: handing the copy to an engine thread and sleeping on a
 * fence costs a wake-up or two, several times the copy itself.  So a
 * backend may offer copy_sync, which runs a batch in the calling thread
 * (hostsim: memcpy; cuda: its own stream, polled).  dev_copy_batch()
 * picks a path per batch by what each has cost so far: every batch run
 * is timed, and each path keeps a moving average (1/8 weight) of a fixed
 * cost per batch, learnt from batches of at most DEV_COST_SMALL bytes,
 * and of a cost per byte, learnt from batches of at least DEV_COST_LARGE
 * bytes (the fixed part taken off).  A batch of B bytes goes the way
 * with the smaller fixed + B * per-byte.  A path with no estimate yet is
 * tried on the first small batch, and every DEV_PATH_PROBE-th batch goes
 * the other way, so a path that became cheaper (an engine no longer busy
 * with a migration) is noticed.  The estimates are relaxed
 * atomics; a lost update between racing threads only delays learning.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "device/device.h"
#include "fault/fault.h"
#include "log/log.h"

static const struct dev_ops *dev_backends[] = {
	&dev_cuda_ops,
	&dev_hostsim_ops,
};

static const struct dev_ops *dev_backend_find(const char *name)
{
	for (size_t i = 0; i < sizeof(dev_backends) / sizeof(dev_backends[0]); i++)
		if (!strcmp(dev_backends[i]->name, name))
			return dev_backends[i];
	return NULL;
}

int dev_open(const struct device_config *cfg, struct device **out,
	     char *err, size_t errlen)
{
	const struct dev_ops *ops = dev_backend_find(cfg->backend);
	size_t fs = cfg->frame_size, words;
	struct device *d;
	int ret;

	if (!ops) {
		snprintf(err, errlen, "unknown device backend '%s' (hostsim, cuda or none)",
			 cfg->backend);
		return -EINVAL;
	}
	if (ops->version != DEV_OPS_VERSION) {
		snprintf(err, errlen, "device backend %s: version %d, want %d",
			 ops->name, ops->version, DEV_OPS_VERSION);
		return -EINVAL;
	}
	if (!fs || (fs & (fs - 1)) || cfg->mem_bytes / fs < 1 ||
	    cfg->mem_bytes / fs > UINT32_MAX) {
		snprintf(err, errlen, "device_cache must hold 1 to 2^32 pages");
		return -EINVAL;
	}
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->ops = ops;
	d->cfg = *cfg;
	d->nframes = cfg->mem_bytes / fs;
	d->cfg.mem_bytes = d->nframes * fs;
	words = (d->nframes + 63) / 64;
	d->free = calloc(d->nframes, sizeof(*d->free));
	d->writable = calloc(words, sizeof(*d->writable));
	if (!d->free || !d->writable) {
		ret = -ENOMEM;
		snprintf(err, errlen, "no memory for the device frame table");
		goto out_free;
	}
	pthread_mutex_init(&d->lock, NULL);
	ret = ops->open(d, &d->cfg, err, errlen);
	if (ret)
		goto out_mutex;
	d->path = DEV_PATH_AUTO;
	*out = d;
	return 0;

out_mutex:
	pthread_mutex_destroy(&d->lock);
out_free:
	free(d->free);
	free(d->writable);
	free(d);
	return ret;
}

void dev_close(struct device *d)
{
	if (!d)
		return;
	d->ops->close(d);
	pthread_mutex_destroy(&d->lock);
	free(d->free);
	free(d->writable);
	free(d);
}

void dev_hurry(struct device *d)
{
	if (d)
		atomic_store(&d->hurry, 1);
}

bool dev_wait_cut_short(struct device *d)
{
	return atomic_load_explicit(&d->hurry, memory_order_relaxed) ||
	       (d->cfg.cancelled && d->cfg.cancelled(d->cfg.cancel_arg));
}

const char *dev_name(const struct device *d)
{
	return d->ops->name;
}

size_t dev_frames_total(const struct device *d)
{
	return d->nframes;
}

size_t dev_frames_used(const struct device *d)
{
	return atomic_load_explicit(&((struct device *)d)->used,
				    memory_order_relaxed);
}

size_t dev_frames_hwm(struct device *d)
{
	size_t n;

	pthread_mutex_lock(&d->lock);
	n = d->bump;
	pthread_mutex_unlock(&d->lock);
	return n;
}

static size_t dev_frame_no(const struct device *d, dev_addr_t a)
{
	return (size_t)(a / d->cfg.frame_size);
}

int dev_frame_alloc(struct device *d, dev_addr_t *out)
{
	size_t n = SIZE_MAX;
	int ret = fault_hit(FAULT_DEV_ALLOC, NULL);

	if (ret < 0)
		return ret;
	pthread_mutex_lock(&d->lock);
	if (d->nfree)
		n = d->free[--d->nfree];
	else if (d->bump < d->nframes)
		n = d->bump++;
	pthread_mutex_unlock(&d->lock);
	if (n == SIZE_MAX)
		return -ENOSPC;
	dev_protect(d, (dev_addr_t)n * d->cfg.frame_size, false);
	atomic_fetch_add_explicit(&d->used, 1, memory_order_relaxed);
	*out = (dev_addr_t)n * d->cfg.frame_size;
	return 0;
}

void dev_frame_free(struct device *d, dev_addr_t a)
{
	size_t n = dev_frame_no(d, a);

	dev_protect(d, a, false);
	pthread_mutex_lock(&d->lock);
	d->free[d->nfree++] = (uint32_t)n;
	pthread_mutex_unlock(&d->lock);
	atomic_fetch_sub_explicit(&d->used, 1, memory_order_relaxed);
}

void dev_protect(struct device *d, dev_addr_t a, bool rw)
{
	size_t n = dev_frame_no(d, a);
	uint64_t bit = 1ull << (n % 64);

	if (rw)
		atomic_fetch_or_explicit(&d->writable[n / 64], bit, memory_order_relaxed);
	else
		atomic_fetch_and_explicit(&d->writable[n / 64], ~bit, memory_order_relaxed);
}

bool dev_writable(struct device *d, dev_addr_t a)
{
	size_t n = dev_frame_no(d, a);

	return atomic_load_explicit(&d->writable[n / 64], memory_order_relaxed) &
	       (1ull << (n % 64));
}

/* Is [a, a + len) inside device memory? */
static bool dev_range_ok(const struct device *d, dev_addr_t a, size_t len)
{
	return len && a < d->cfg.mem_bytes && len <= d->cfg.mem_bytes - a;
}

static int dev_lost_err(struct device *d)
{
	return atomic_load_explicit(&d->lost, memory_order_relaxed) ? -ENODEV : 0;
}

int dev_host_register(struct device *d, void *p, size_t len)
{
	return d->ops->host_register ? d->ops->host_register(d, p, len) : 0;
}

void dev_host_unregister(struct device *d, void *p)
{
	if (d->ops->host_unregister)
		d->ops->host_unregister(d, p);
}

static int dev_queue_copy(struct device *d, const struct dev_copy *cp,
			  struct dev_fence *f)
{
	static const enum fault_dir dirs[] = {
		[DEV_H2D] = FAULT_DIR_H2D, [DEV_D2H] = FAULT_DIR_D2H,
		[DEV_D2D] = FAULT_DIR_D2D,
	};
	int ret = dev_lost_err(d);

	if (!ret) {
		ret = fault_hit(FAULT_DEV_COPY,
				&(struct fault_where){ .fd = -1, .dir = dirs[cp->dir] });
		ret = ret < 0 ? ret : 0;
	}
	return ret ? ret : d->ops->copy(d, cp, f);
}

/* Are the device ranges of @cp inside device memory? */
static bool dev_copy_ok(const struct device *d, const struct dev_copy *cp)
{
	switch (cp->dir) {
	case DEV_H2D:
		return cp->host && dev_range_ok(d, cp->dst, cp->len);
	case DEV_D2H:
		return cp->host && dev_range_ok(d, cp->src, cp->len);
	case DEV_D2D:
		return dev_range_ok(d, cp->dst, cp->len) &&
		       dev_range_ok(d, cp->src, cp->len);
	}
	return false;
}

int dev_copy_to_device(struct device *d, dev_addr_t dst, const void *src,
		       size_t len, struct dev_fence *f)
{
	struct dev_copy cp = { .dir = DEV_H2D, .host = (void *)src, .dst = dst,
			       .len = len };

	if (!dev_range_ok(d, dst, len) || !src)
		return -EINVAL;
	return dev_queue_copy(d, &cp, f);
}

int dev_copy_to_host(struct device *d, void *dst, dev_addr_t src, size_t len,
		     struct dev_fence *f)
{
	struct dev_copy cp = { .dir = DEV_D2H, .host = dst, .src = src, .len = len };

	if (!dev_range_ok(d, src, len) || !dst)
		return -EINVAL;
	return dev_queue_copy(d, &cp, f);
}

int dev_copy_on_device(struct device *d, dev_addr_t dst, dev_addr_t src,
		       size_t len, struct dev_fence *f)
{
	struct dev_copy cp = { .dir = DEV_D2D, .dst = dst, .src = src, .len = len };

	if (!dev_range_ok(d, dst, len) || !dev_range_ok(d, src, len))
		return -EINVAL;
	return dev_queue_copy(d, &cp, f);
}

int dev_fill(struct device *d, dev_addr_t dst, uint8_t byte, size_t len,
	     struct dev_fence *f)
{
	int ret;

	if (!dev_range_ok(d, dst, len))
		return -EINVAL;
	ret = dev_lost_err(d);
	return ret ? ret : d->ops->compute(d, DEV_OP_FILL, dst, len, byte, f);
}

int dev_compute(struct device *d, enum dev_op_kind op, dev_addr_t dst,
		size_t len, uint64_t value, struct dev_fence *f)
{
	size_t fs = d->cfg.frame_size;
	int ret;

	if ((unsigned int)op >= DEV_OP_NR || !dev_range_ok(d, dst, len))
		return -EINVAL;
	for (dev_addr_t a = dst - dst % fs; a < dst + len; a += fs)
		if (!dev_writable(d, a))
			return -EFAULT;	/* the device write fault */
	ret = dev_lost_err(d);
	return ret ? ret : d->ops->compute(d, op, dst, len, value, f);
}

/* Compare through two host copies, for backends without ->compare. */
static int dev_compare_on_host(struct device *d, dev_addr_t a, dev_addr_t b,
			       size_t len, struct dev_fence *f)
{
	struct dev_fence local = DEV_FENCE_INIT;
	char *x = malloc(len), *y = malloc(len);
	int ret = -ENOMEM;

	if (x && y) {
		ret = d->ops->copy(d, &(struct dev_copy){ .dir = DEV_D2H, .host = x,
				   .src = a, .len = len }, &local);
		if (!ret)
			ret = d->ops->copy(d, &(struct dev_copy){ .dir = DEV_D2H,
					   .host = y, .src = b, .len = len }, &local);
		if (!ret)
			ret = d->ops->fence_wait(d, &local);
		if (!ret && memcmp(x, y, len))
			atomic_store(&f->result, 1);
	}
	free(x);
	free(y);
	return ret;
}

int dev_compare(struct device *d, dev_addr_t a, dev_addr_t b, size_t len,
		struct dev_fence *f)
{
	int ret;

	if (!dev_range_ok(d, a, len) || !dev_range_ok(d, b, len))
		return -EINVAL;
	ret = dev_lost_err(d);
	if (ret)
		return ret;
	if (!d->ops->compare)
		return dev_compare_on_host(d, a, b, len, f);
	return d->ops->compare(d, a, b, len, f);
}

int dev_fence_wait(struct device *d, struct dev_fence *f)
{
	int ret = d->ops->fence_wait(d, f);

	if (ret == -ENODEV && !atomic_exchange(&d->lost, 1))
		log_err("device %s lost", d->ops->name);
	return ret;
}

/* ---- copy batches: the synchronous fast path or the engine ---------- */

#define DEV_COST_SMALL	(16u << 10)	/* batches that teach the fixed cost */
#define DEV_COST_LARGE	(256u << 10)	/* ... and those that teach per byte */
#define DEV_PATH_PROBE	64		/* every 64th batch tries the other way */

uint64_t dev_clock_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/*
 * *@avg moves 1/8 of the way to @sample.  The first sample is taken whole
 * (never as 0, which means "none yet"); later ones at most 4 times the
 * average, so one preempted batch does not turn a path away for long,
 * while a lasting change is still learnt within a few batches.
 */
static void dev_cost_ewma(_Atomic uint64_t *avg, uint64_t sample)
{
	uint64_t old = atomic_load_explicit(avg, memory_order_relaxed);
	int64_t step;

	if (!old) {
		atomic_store_explicit(avg, sample ? sample : 1, memory_order_relaxed);
		return;
	}
	if (sample > 4 * old)
		sample = 4 * old;
	step = ((int64_t)sample - (int64_t)old) / 8;
	atomic_store_explicit(avg, (uint64_t)((int64_t)old + step), memory_order_relaxed);
}

static uint64_t dev_cost_predict(struct dev_path_cost *c, size_t bytes)
{
	return atomic_load_explicit(&c->fixed_ns, memory_order_relaxed) +
	       atomic_load_explicit(&c->ps_per_byte, memory_order_relaxed) *
	       bytes / 1000;
}

/* A batch of @bytes took @ns: learn from it (see the top of the file). */
static void dev_cost_learn(struct dev_path_cost *c, size_t bytes, uint64_t ns)
{
	uint64_t per_byte = atomic_load_explicit(&c->ps_per_byte, memory_order_relaxed);
	uint64_t fixed = atomic_load_explicit(&c->fixed_ns, memory_order_relaxed);
	uint64_t moving = per_byte * bytes / 1000;

	if (bytes <= DEV_COST_SMALL)
		dev_cost_ewma(&c->fixed_ns, ns > moving ? ns - moving : 0);
	else if (bytes >= DEV_COST_LARGE)
		dev_cost_ewma(&c->ps_per_byte, (ns > fixed ? ns - fixed : 0) * 1000 / bytes);
	atomic_fetch_add_explicit(&c->batches, 1, memory_order_relaxed);
}

static enum dev_copy_path dev_path_choose(struct device *d, size_t bytes)
{
	enum dev_copy_path best;

	if (!d->ops->copy_sync)
		return DEV_PATH_ASYNC;
	if (d->path != DEV_PATH_AUTO)
		return d->path;
	for (int path = 0; path < DEV_PATH_NR; path++)	/* not tried yet */
		if (!atomic_load_explicit(&d->cost[path].fixed_ns, memory_order_relaxed) &&
		    bytes <= DEV_COST_SMALL)
			return path;
	best = dev_cost_predict(&d->cost[DEV_PATH_SYNC], bytes) <=
	       dev_cost_predict(&d->cost[DEV_PATH_ASYNC], bytes) ?
	       DEV_PATH_SYNC : DEV_PATH_ASYNC;
	if (atomic_fetch_add_explicit(&d->choices, 1, memory_order_relaxed) %
	    DEV_PATH_PROBE == DEV_PATH_PROBE - 1)
		best = best == DEV_PATH_SYNC ? DEV_PATH_ASYNC : DEV_PATH_SYNC;
	return best;
}

/* Queue every copy on one fence and wait once. */
static int dev_copy_async(struct device *d, const struct dev_copy *cp, size_t n)
{
	struct dev_fence fence = DEV_FENCE_INIT;
	int ret = 0, r;

	for (size_t i = 0; i < n && !ret; i++)
		ret = d->ops->copy(d, &cp[i], &fence);
	r = d->ops->fence_wait(d, &fence);
	return ret ? ret : r;
}

static int dev_copy_run(struct device *d, enum dev_copy_path path,
			const struct dev_copy *cp, size_t n, size_t bytes)
{
	uint64_t t0 = dev_clock_ns();
	int ret = path == DEV_PATH_SYNC ? d->ops->copy_sync(d, cp, n)
					: dev_copy_async(d, cp, n);

	if (!ret)
		dev_cost_learn(&d->cost[path], bytes, dev_clock_ns() - t0);
	if (ret == -ENODEV && !atomic_exchange(&d->lost, 1))
		log_err("device %s lost", d->ops->name);
	return ret;
}

int dev_copy_batch(struct device *d, const struct dev_copy *cp, size_t n)
{
	size_t bytes = 0;
	int ret;

	for (size_t i = 0; i < n; i++) {
		static const enum fault_dir dirs[] = {
			[DEV_H2D] = FAULT_DIR_H2D, [DEV_D2H] = FAULT_DIR_D2H,
			[DEV_D2D] = FAULT_DIR_D2D,
		};

		if (!dev_copy_ok(d, &cp[i]))
			return -EINVAL;
		ret = dev_lost_err(d);
		if (!ret)
			ret = fault_hit(FAULT_DEV_COPY, &(struct fault_where){
					.fd = -1, .dir = dirs[cp[i].dir] });
		if (ret < 0)
			return ret;
		bytes += cp[i].len;
	}
	return n ? dev_copy_run(d, dev_path_choose(d, bytes), cp, n, bytes) : 0;
}

void dev_copy_path_set(struct device *d, enum dev_copy_path path)
{
	d->path = path;
}

uint64_t dev_copy_batches(struct device *d, enum dev_copy_path path)
{
	return atomic_load_explicit(&d->cost[path].batches, memory_order_relaxed);
}
