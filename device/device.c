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
 * unit_compute(), the only device-side write, checks every frame of its
 * range and returns -EFAULT (the device write fault) without queueing
 * anything if one is read-only; the cache's fault handler marks the page
 * dirty, maps it read-write with unit_protect() and retries.  The bit is
 * read and written with relaxed atomics: the cache orders unit_protect()
 * against unit_compute() of the same frame with the page lock, so the bit
 * never has to carry ordering of its own.
 *
 * Several devices.  struct device is a set of units (-o devices=N), each
 * a backend instance with its own allocation, frames, page table, copy
 * engine and cost estimates (struct dev_unit; everything above is per
 * unit).  An address carries its unit in its top bits (dev_addr_unit;
 * unit 0's addresses are plain offsets), so the cache names device memory
 * exactly as before and the dev_* functions at the bottom of this file
 * find the unit from the address.  A fence notes the units it has
 * operations on and dev_fence_wait() waits on each.  Copies and compares
 * between two units go through a host buffer and are done before the
 * call returns (no peer path yet); a batch runs per unit.
 *
 * Checks.  Every address and length is checked against the allocation
 * here, so a backend never sees an out-of-range request.
 *
 * Faults.  unit_frame_alloc() and the copy functions run the fault hooks
 * (fault/fault.h: dev_alloc, dev_copy) first, so every backend fails the
 * same way: an allocation with -ENOSPC (or the rule's errno), a copy at
 * queueing time, before anything was queued.
 *
 * Two paths for a batch of copies.  A reader of one device page wants
 * its 4 KiB now: handing the copy to an engine thread and sleeping on a
 * fence costs a wake-up or two, several times the copy itself.  So a
 * backend may offer copy_sync, which runs a batch in the calling thread
 * (hostsim: memcpy; cuda: its own stream, polled).  unit_copy_batch()
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

#include <xxhash.h>

#include "device/device.h"
#include "fault/fault.h"
#include "log/log.h"
#include "lib/compiler.h"
#include "lib/time.h"

static const struct dev_ops *dev_backends[] = {
	&dev_cuda_ops,
	&dev_hostsim_ops,
	&dev_opencl_ops,
};

static const struct dev_ops *dev_backend_find(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(dev_backends); i++)
		if (!strcmp(dev_backends[i]->name, name))
			return dev_backends[i];
	return NULL;
}

static void unit_protect(struct dev_unit *d, dev_addr_t a, bool rw);

static int unit_open(const struct device_config *cfg, unsigned int id,
		     struct dev_unit **out, char *err, size_t errlen)
{
	const struct dev_ops *ops = dev_backend_find(cfg->backend);
	size_t fs = cfg->frame_size, words;
	struct dev_unit *d;
	int ret;

	if (!ops) {
		snprintf(err, errlen, "unknown device backend '%s' (hostsim, cuda, opencl or none)",
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
	d->id = id;
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
	if (!d->name[0])
		snprintf(d->name, sizeof(d->name), "%s %d", ops->name,
			 strcmp(ops->name, "cuda") ? (int)id : cfg->gpu);
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

static void unit_close(struct dev_unit *d)
{
	if (!d)
		return;
	d->ops->close(d);
	pthread_mutex_destroy(&d->lock);
	free(d->free);
	free(d->writable);
	free(d);
}

bool dev_unit_cut_short(struct dev_unit *d)
{
	return atomic_load_explicit(&d->hurry, memory_order_relaxed) ||
	       (d->cfg.cancelled && d->cfg.cancelled(d->cfg.cancel_arg));
}

static const char *unit_name(const struct dev_unit *d)
{
	return d->ops->name;
}

static size_t unit_frames_total(const struct dev_unit *d)
{
	return d->nframes;
}

static size_t unit_frames_used(const struct dev_unit *d)
{
	return atomic_load_explicit(&((struct dev_unit *)d)->used,
				    memory_order_relaxed);
}

static size_t unit_frames_hwm(struct dev_unit *d)
{
	size_t n;

	pthread_mutex_lock(&d->lock);
	n = d->bump;
	pthread_mutex_unlock(&d->lock);
	return n;
}

static size_t dev_frame_no(const struct dev_unit *d, dev_addr_t a)
{
	return (size_t)(a / d->cfg.frame_size);
}

static int unit_frame_alloc(struct dev_unit *d, dev_addr_t *out)
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
	unit_protect(d, (dev_addr_t)n * d->cfg.frame_size, false);
	atomic_fetch_add_explicit(&d->used, 1, memory_order_relaxed);
	*out = (dev_addr_t)n * d->cfg.frame_size;
	return 0;
}

static void unit_frame_free(struct dev_unit *d, dev_addr_t a)
{
	size_t n = dev_frame_no(d, a);

	unit_protect(d, a, false);
	pthread_mutex_lock(&d->lock);
	d->free[d->nfree++] = (uint32_t)n;
	pthread_mutex_unlock(&d->lock);
	atomic_fetch_sub_explicit(&d->used, 1, memory_order_relaxed);
}

static void unit_protect(struct dev_unit *d, dev_addr_t a, bool rw)
{
	size_t n = dev_frame_no(d, a);
	uint64_t bit = 1ull << (n % 64);

	if (rw)
		atomic_fetch_or_explicit(&d->writable[n / 64], bit, memory_order_relaxed);
	else
		atomic_fetch_and_explicit(&d->writable[n / 64], ~bit, memory_order_relaxed);
}

static bool unit_writable(struct dev_unit *d, dev_addr_t a)
{
	size_t n = dev_frame_no(d, a);

	return atomic_load_explicit(&d->writable[n / 64], memory_order_relaxed) &
	       (1ull << (n % 64));
}

/* Is [a, a + len) inside device memory? */
static bool dev_range_ok(const struct dev_unit *d, dev_addr_t a, size_t len)
{
	return len && a < d->cfg.mem_bytes && len <= d->cfg.mem_bytes - a;
}

static int dev_lost_err(struct dev_unit *d)
{
	return atomic_load_explicit(&d->lost, memory_order_relaxed) ? -ENODEV : 0;
}

static int unit_host_register(struct dev_unit *d, void *p, size_t len)
{
	return d->ops->host_register ? d->ops->host_register(d, p, len) : 0;
}

static void unit_host_unregister(struct dev_unit *d, void *p)
{
	if (d->ops->host_unregister)
		d->ops->host_unregister(d, p);
}

/* @ret is a backend's answer: -ENODEV means unit @d is gone (said once). */
static int unit_lost_note(struct dev_unit *d, int ret)
{
	if (ret == -ENODEV && !atomic_exchange(&d->lost, 1))
		log_err("device %u (%s: %s) lost: its clean pages are read again "
			"from BACKING, its dirty ones are reported as lost",
			d->id, d->ops->name, d->name);
	return ret;
}

static int dev_queue_copy(struct dev_unit *d, const struct dev_copy *cp,
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
	return ret ? ret : unit_lost_note(d, d->ops->copy(d, cp, f));
}

/* Are the device ranges of @cp inside device memory? */
static bool dev_copy_ok(const struct dev_unit *d, const struct dev_copy *cp)
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

static int unit_copy_to_device(struct dev_unit *d, dev_addr_t dst, const void *src,
		       size_t len, struct dev_fence *f)
{
	struct dev_copy cp = { .dir = DEV_H2D, .host = (void *)src, .dst = dst,
			       .len = len };

	if (!dev_range_ok(d, dst, len) || !src)
		return -EINVAL;
	return dev_queue_copy(d, &cp, f);
}

static int unit_copy_to_host(struct dev_unit *d, void *dst, dev_addr_t src, size_t len,
		     struct dev_fence *f)
{
	struct dev_copy cp = { .dir = DEV_D2H, .host = dst, .src = src, .len = len };

	if (!dev_range_ok(d, src, len) || !dst)
		return -EINVAL;
	return dev_queue_copy(d, &cp, f);
}

static int unit_copy_on_device(struct dev_unit *d, dev_addr_t dst, dev_addr_t src,
		       size_t len, struct dev_fence *f)
{
	struct dev_copy cp = { .dir = DEV_D2D, .dst = dst, .src = src, .len = len };

	if (!dev_range_ok(d, dst, len) || !dev_range_ok(d, src, len))
		return -EINVAL;
	return dev_queue_copy(d, &cp, f);
}

static int unit_fill(struct dev_unit *d, dev_addr_t dst, uint8_t byte, size_t len,
	     struct dev_fence *f)
{
	int ret;

	if (!dev_range_ok(d, dst, len))
		return -EINVAL;
	ret = dev_lost_err(d);
	return ret ? ret : unit_lost_note(d, d->ops->compute(d, DEV_OP_FILL, dst, len,
							     byte, f));
}

static int unit_compute(struct dev_unit *d, enum dev_op_kind op, dev_addr_t dst,
		size_t len, uint64_t value, struct dev_fence *f)
{
	size_t fs = d->cfg.frame_size;
	int ret;

	if ((unsigned int)op >= DEV_OP_NR || !dev_range_ok(d, dst, len))
		return -EINVAL;
	for (dev_addr_t a = dst - dst % fs; a < dst + len; a += fs)
		if (!unit_writable(d, a))
			return -EFAULT;	/* the device write fault */
	ret = dev_lost_err(d);
	return ret ? ret : unit_lost_note(d, d->ops->compute(d, op, dst, len, value, f));
}

/* Compare through two host copies, for backends without ->compare. */
static int dev_compare_on_host(struct dev_unit *d, dev_addr_t a, dev_addr_t b,
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

static int unit_compare(struct dev_unit *d, dev_addr_t a, dev_addr_t b, size_t len,
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
	return unit_lost_note(d, d->ops->compare(d, a, b, len, f));
}

static int unit_fence_wait(struct dev_unit *d, struct dev_fence *f)
{
	return unit_lost_note(d, d->ops->fence_wait(d, f));
}

/* ---- copy batches: the synchronous fast path or the engine ---------- */

#define DEV_COST_SMALL	(16u << 10)	/* batches that teach the fixed cost */
#define DEV_COST_LARGE	(256u << 10)	/* ... and those that teach per byte */
#define DEV_PATH_PROBE	64		/* every 64th batch tries the other way */

uint64_t dev_clock_ns(void)
{
	return mono_ns();
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

static enum dev_copy_path dev_path_choose(struct dev_unit *d, size_t bytes)
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
static int dev_copy_async(struct dev_unit *d, const struct dev_copy *cp, size_t n)
{
	struct dev_fence fence = DEV_FENCE_INIT;
	int ret = 0, r;

	for (size_t i = 0; i < n && !ret; i++)
		ret = d->ops->copy(d, &cp[i], &fence);
	r = d->ops->fence_wait(d, &fence);
	return ret ? ret : r;
}

static int dev_copy_run(struct dev_unit *d, enum dev_copy_path path,
			const struct dev_copy *cp, size_t n, size_t bytes)
{
	uint64_t t0 = dev_clock_ns();
	int ret = path == DEV_PATH_SYNC ? d->ops->copy_sync(d, cp, n)
					: dev_copy_async(d, cp, n);

	if (!ret)
		dev_cost_learn(&d->cost[path], bytes, dev_clock_ns() - t0);
	return unit_lost_note(d, ret);
}

static int unit_copy_batch(struct dev_unit *d, const struct dev_copy *cp, size_t n)
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

static void unit_copy_path_set(struct dev_unit *d, enum dev_copy_path path)
{
	d->path = path;
}

static uint64_t unit_copy_batches(struct dev_unit *d, enum dev_copy_path path)
{
	return atomic_load_explicit(&d->cost[path].batches, memory_order_relaxed);
}

/* ---- the set: several units, found by address ----------------------- */

/* The unit @a names, or NULL. */
static struct dev_unit *unit_of(const struct device *d, dev_addr_t a)
{
	unsigned int k = dev_addr_unit(a);

	return k < d->nunits ? d->unit[k] : NULL;
}

static dev_addr_t unit_addr(const struct dev_unit *u, dev_addr_t off)
{
	return ((dev_addr_t)u->id << DEV_UNIT_SHIFT) | off;
}

/* Note that @f has operations on @u until its next wait. */
static void fence_note(struct dev_fence *f, const struct dev_unit *u)
{
	atomic_fetch_or_explicit(&f->units, 1u << u->id, memory_order_relaxed);
}

int dev_open(const struct device_config *cfg, struct device **out,
	     char *err, size_t errlen)
{
	unsigned int n = cfg->units ? cfg->units : 1;
	struct device *d;
	int ret = 0;

	if (n > DEV_MAX_UNITS) {
		snprintf(err, errlen, "at most %d devices", DEV_MAX_UNITS);
		return -EINVAL;
	}
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	for (unsigned int k = 0; k < n && !ret; k++) {
		struct device_config uc = *cfg;
		char uerr[256];

		if (n > 1)
			uc.gpu = cfg->gpus[k];
		ret = unit_open(&uc, k, &d->unit[k], uerr, sizeof(uerr));
		if (ret) {
			if (n > 1)
				snprintf(err, errlen, "device %u: %s", k, uerr);
			else
				snprintf(err, errlen, "%s", uerr);
			break;
		}
		d->nunits = k + 1;
	}
	if (ret) {
		dev_close(d);
		return ret;
	}
	*out = d;
	return 0;
}

void dev_close(struct device *d)
{
	if (!d)
		return;
	for (unsigned int k = 0; k < d->nunits; k++)
		unit_close(d->unit[k]);
	free(d);
}

void dev_hurry(struct device *d)
{
	for (unsigned int k = 0; d && k < d->nunits; k++)
		atomic_store(&d->unit[k]->hurry, 1);
}

const char *dev_name(const struct device *d)
{
	return unit_name(d->unit[0]);
}

unsigned int dev_units(const struct device *d)
{
	return d->nunits;
}

void dev_unit_stats(const struct device *d, unsigned int k,
		    struct dev_unit_stats *st)
{
	struct dev_unit *u = d->unit[k];

	st->frames = unit_frames_total(u);
	st->frames_used = unit_frames_used(u);
	st->frames_hwm = unit_frames_hwm(u);
	st->copies_in = atomic_load_explicit(&u->copies_in, memory_order_relaxed);
	st->copies_out = atomic_load_explicit(&u->copies_out, memory_order_relaxed);
	st->faults = atomic_load_explicit(&u->faults, memory_order_relaxed);
	st->peer_in = atomic_load_explicit(&u->peer_in, memory_order_relaxed);
	st->staged_in = atomic_load_explicit(&u->staged_in, memory_order_relaxed);
	snprintf(st->name, sizeof(st->name), "%s", u->name);
}

bool dev_unit_lost(const struct device *d, unsigned int k)
{
	return k < d->nunits && atomic_load(&d->unit[k]->lost);
}

uint32_t dev_lost_units(const struct device *d)
{
	uint32_t mask = 0;

	for (unsigned int k = 0; k < d->nunits; k++)
		if (atomic_load(&d->unit[k]->lost))
			mask |= 1u << k;
	return mask;
}

bool dev_lost(const struct device *d)
{
	return dev_lost_units(d) != 0;
}

int dev_frame_alloc_on(struct device *d, unsigned int k, dev_addr_t *out)
{
	dev_addr_t off;
	int ret;

	if (k >= d->nunits)
		return -EINVAL;
	ret = unit_frame_alloc(d->unit[k], &off);
	if (!ret)
		*out = unit_addr(d->unit[k], off);
	return ret;
}

/* Spread frames: the unit with the most free frames gives one. */
int dev_frame_alloc(struct device *d, dev_addr_t *out)
{
	unsigned int best = 0;
	size_t most = 0;

	for (unsigned int k = 0; k < d->nunits; k++) {
		struct dev_unit *u = d->unit[k];
		size_t free_frames = u->nframes - unit_frames_used(u);

		if (free_frames > most) {
			most = free_frames;
			best = k;
		}
	}
	return dev_frame_alloc_on(d, best, out);
}

void dev_frame_free(struct device *d, dev_addr_t a)
{
	struct dev_unit *u = unit_of(d, a);

	if (u)
		unit_frame_free(u, dev_addr_offset(a));
}

size_t dev_frames_total(const struct device *d)
{
	size_t n = 0;

	for (unsigned int k = 0; k < d->nunits; k++)
		n += unit_frames_total(d->unit[k]);
	return n;
}

size_t dev_frames_used(const struct device *d)
{
	size_t n = 0;

	for (unsigned int k = 0; k < d->nunits; k++)
		n += unit_frames_used(d->unit[k]);
	return n;
}

size_t dev_frames_hwm(struct device *d)
{
	size_t n = 0;

	for (unsigned int k = 0; k < d->nunits; k++)
		n += unit_frames_hwm(d->unit[k]);
	return n;
}

void dev_protect(struct device *d, dev_addr_t a, bool rw)
{
	struct dev_unit *u = unit_of(d, a);

	if (u)
		unit_protect(u, dev_addr_offset(a), rw);
}

bool dev_writable(struct device *d, dev_addr_t a)
{
	struct dev_unit *u = unit_of(d, a);

	return u && unit_writable(u, dev_addr_offset(a));
}

/*
 * Pinning host memory is process-wide (cuda registers it PORTABLE: every
 * context sees it pinned), and all units share one backend: once, on the
 * first unit.
 */
int dev_host_register(struct device *d, void *p, size_t len)
{
	return unit_host_register(d->unit[0], p, len);
}

void dev_host_unregister(struct device *d, void *p)
{
	unit_host_unregister(d->unit[0], p);
}

int dev_copy_to_device(struct device *d, dev_addr_t dst, const void *src,
		       size_t len, struct dev_fence *f)
{
	struct dev_unit *u = unit_of(d, dst);
	int ret;

	if (!u)
		return -EINVAL;
	ret = unit_copy_to_device(u, dev_addr_offset(dst), src, len, f);
	if (!ret) {
		fence_note(f, u);
		atomic_fetch_add_explicit(&u->copies_in, 1, memory_order_relaxed);
	}
	return ret;
}

int dev_copy_to_host(struct device *d, void *dst, dev_addr_t src, size_t len,
		     struct dev_fence *f)
{
	struct dev_unit *u = unit_of(d, src);
	int ret;

	if (!u)
		return -EINVAL;
	ret = unit_copy_to_host(u, dst, dev_addr_offset(src), len, f);
	if (!ret) {
		fence_note(f, u);
		atomic_fetch_add_explicit(&u->copies_out, 1, memory_order_relaxed);
	}
	return ret;
}

/*
 * A copy from one unit to another through host memory, done before
 * returning: the staging buffer must outlive it.
 */
static int copy_staged(struct dev_unit *to, dev_addr_t dst, struct dev_unit *from,
		       dev_addr_t src, size_t len)
{
	struct dev_fence f = DEV_FENCE_INIT;
	void *buf = malloc(len);
	int ret, r;

	if (!buf)
		return -ENOMEM;
	ret = unit_copy_to_host(from, buf, src, len, &f);
	r = unit_fence_wait(from, &f);
	ret = ret ? ret : r;
	if (!ret) {
		ret = unit_copy_to_device(to, dst, buf, len, &f);
		r = unit_fence_wait(to, &f);
		ret = ret ? ret : r;
	}
	free(buf);
	if (!ret) {
		atomic_fetch_add_explicit(&from->copies_out, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&to->copies_in, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&to->staged_in, 1, memory_order_relaxed);
	}
	return ret;
}

/*
 * A copy between units: queued on @f by the backend's peer path where
 * there is one, else staged through the host (and done on return).
 */
static int copy_across(struct dev_unit *to, dev_addr_t dst, struct dev_unit *from,
		       dev_addr_t src, size_t len, struct dev_fence *f)
{
	int ret;

	if (!to->ops->copy_peer || to->cfg.no_peer || to->ops != from->ops)
		return copy_staged(to, dst, from, src, len);
	if (!dev_range_ok(to, dst, len) || !dev_range_ok(from, src, len))
		return -EINVAL;
	ret = dev_lost_err(to) ?: dev_lost_err(from);
	if (!ret)
		ret = to->ops->copy_peer(to, dst, from, src, len, f);
	if (!ret) {
		fence_note(f, to);
		atomic_fetch_add_explicit(&from->copies_out, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&to->copies_in, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&to->peer_in, 1, memory_order_relaxed);
	}
	return ret;
}

int dev_copy_on_device(struct device *d, dev_addr_t dst, dev_addr_t src,
		       size_t len, struct dev_fence *f)
{
	struct dev_unit *to = unit_of(d, dst), *from = unit_of(d, src);
	int ret;

	if (!to || !from)
		return -EINVAL;
	if (to != from)
		return copy_across(to, dev_addr_offset(dst), from,
				   dev_addr_offset(src), len, f);
	ret = unit_copy_on_device(to, dev_addr_offset(dst), dev_addr_offset(src),
				  len, f);
	if (!ret) {
		fence_note(f, to);
		atomic_fetch_add_explicit(&to->copies_in, 1, memory_order_relaxed);
	}
	return ret;
}

int dev_fill(struct device *d, dev_addr_t dst, uint8_t byte, size_t len,
	     struct dev_fence *f)
{
	struct dev_unit *u = unit_of(d, dst);
	int ret;

	if (!u)
		return -EINVAL;
	ret = unit_fill(u, dev_addr_offset(dst), byte, len, f);
	if (!ret)
		fence_note(f, u);
	return ret;
}

int dev_compute(struct device *d, enum dev_op_kind op, dev_addr_t dst,
		size_t len, uint64_t value, struct dev_fence *f)
{
	struct dev_unit *u = unit_of(d, dst);
	int ret;

	if (!u)
		return -EINVAL;
	ret = unit_compute(u, op, dev_addr_offset(dst), len, value, f);
	if (!ret)
		fence_note(f, u);
	else if (ret == -EFAULT)
		atomic_fetch_add_explicit(&u->faults, 1, memory_order_relaxed);
	return ret;
}

/* Compare ranges on two units through host copies, done before returning. */
static int compare_across(struct dev_unit *ua, dev_addr_t a, struct dev_unit *ub,
			  dev_addr_t b, size_t len, struct dev_fence *f)
{
	struct dev_fence local = DEV_FENCE_INIT;
	char *x = malloc(len), *y = malloc(len);
	int ret = -ENOMEM, r;

	if (x && y) {
		ret = unit_copy_to_host(ua, x, a, len, &local);
		r = unit_fence_wait(ua, &local);
		ret = ret ? ret : r;
		if (!ret) {
			ret = unit_copy_to_host(ub, y, b, len, &local);
			r = unit_fence_wait(ub, &local);
			ret = ret ? ret : r;
		}
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
	struct dev_unit *ua = unit_of(d, a), *ub = unit_of(d, b);
	int ret;

	if (!ua || !ub)
		return -EINVAL;
	if (ua != ub)
		return compare_across(ua, dev_addr_offset(a), ub, dev_addr_offset(b),
				      len, f);
	ret = unit_compare(ua, dev_addr_offset(a), dev_addr_offset(b), len, f);
	if (!ret)
		fence_note(f, ua);
	return ret;
}

/* Wait on every unit @f has operations on; the first error. */
int dev_fence_wait(struct device *d, struct dev_fence *f)
{
	uint32_t units = atomic_exchange_explicit(&f->units, 0, memory_order_relaxed);
	int ret = 0;

	if (!units)
		return unit_fence_wait(d->unit[0], f);	/* nothing queued */
	for (unsigned int k = 0; k < d->nunits; k++) {
		int r;

		if (!(units & (1u << k)))
			continue;
		r = unit_fence_wait(d->unit[k], f);
		if (r && !ret)
			ret = r;
	}
	return ret;
}

/*
 * @cp with device addresses made offsets into @u: the copies of @cp on
 * unit @u (both ends on it, or one end on the host) go to @out.
 * Return: how many.
 */
static size_t batch_pick(const struct dev_copy *cp, size_t n, unsigned int k,
			 struct dev_copy *out)
{
	size_t m = 0;

	for (size_t i = 0; i < n; i++) {
		dev_addr_t a = cp[i].dir == DEV_D2H ? cp[i].src : cp[i].dst;

		if (dev_addr_unit(a) != k ||
		    (cp[i].dir == DEV_D2D && dev_addr_unit(cp[i].src) != k))
			continue;
		out[m] = cp[i];
		out[m].src = dev_addr_offset(cp[i].src);
		out[m].dst = dev_addr_offset(cp[i].dst);
		m++;
	}
	return m;
}

static void batch_count(struct dev_unit *u, const struct dev_copy *cp, size_t n)
{
	for (size_t i = 0; i < n; i++)
		atomic_fetch_add_explicit(cp[i].dir == DEV_D2H ? &u->copies_out :
					  &u->copies_in, 1, memory_order_relaxed);
}

/* Is @cp a copy between two units? */
static bool copy_is_across(const struct dev_copy *cp)
{
	return cp->dir == DEV_D2D && dev_addr_unit(cp->dst) != dev_addr_unit(cp->src);
}

/* Can every copy between units of @cp go by the peer path? */
static bool batch_has_peer(struct device *d, const struct dev_copy *cp, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct dev_unit *to, *from;

		if (!copy_is_across(&cp[i]))
			continue;
		to = unit_of(d, cp[i].dst);
		from = unit_of(d, cp[i].src);
		if (!to || !from || !to->ops->copy_peer || to->cfg.no_peer ||
		    to->ops != from->ops)
			return false;
	}
	return true;
}

/*
 * The copies between units of @cp through host memory, in two steps for
 * all of them: out of their source units into one staging buffer, one
 * wait; then into their destination units, one wait.
 */
static int batch_across_staged(struct device *d, const struct dev_copy *cp,
			       size_t n, size_t bytes)
{
	struct dev_fence f = DEV_FENCE_INIT;
	char *buf = malloc(bytes);
	size_t at = 0;
	int ret = 0, r;

	if (!buf)
		return -ENOMEM;
	for (size_t i = 0; i < n && !ret; i++) {
		if (!copy_is_across(&cp[i]))
			continue;
		ret = dev_copy_to_host(d, buf + at, cp[i].src, cp[i].len, &f);
		at += cp[i].len;
	}
	r = dev_fence_wait(d, &f);
	ret = ret ? ret : r;
	at = 0;
	for (size_t i = 0; i < n && !ret; i++) {
		struct dev_unit *to = unit_of(d, cp[i].dst);

		if (!copy_is_across(&cp[i]))
			continue;
		ret = dev_copy_to_device(d, cp[i].dst, buf + at, cp[i].len, &f);
		if (!ret)
			atomic_fetch_add_explicit(&to->staged_in, 1, memory_order_relaxed);
		at += cp[i].len;
	}
	r = dev_fence_wait(d, &f);
	free(buf);
	return ret ? ret : r;
}

/* The copies between units of @cp: all queued, one wait.  Return: how
 * many there were in *@m, 0 or -errno. */
static int batch_across(struct device *d, const struct dev_copy *cp, size_t n,
			size_t *m)
{
	struct dev_fence f = DEV_FENCE_INIT;
	size_t bytes = 0;
	int ret = 0, r;

	*m = 0;
	for (size_t i = 0; i < n; i++)
		if (copy_is_across(&cp[i])) {
			if (!unit_of(d, cp[i].dst) || !unit_of(d, cp[i].src))
				return -EINVAL;
			bytes += cp[i].len;
			(*m)++;
		}
	if (!*m)
		return 0;
	if (!batch_has_peer(d, cp, n))
		return batch_across_staged(d, cp, n, bytes);
	for (size_t i = 0; i < n && !ret; i++)
		if (copy_is_across(&cp[i]))
			ret = dev_copy_on_device(d, cp[i].dst, cp[i].src, cp[i].len, &f);
	r = dev_fence_wait(d, &f);
	return ret ? ret : r;
}

/*
 * Per unit, its copies as one batch; copies between units all queued at
 * once (peer) or staged through the host in two steps.  The common case,
 * one unit, copies nothing.
 */
int dev_copy_batch(struct device *d, const struct dev_copy *cp, size_t n)
{
	struct dev_copy stack[64], *mine = n <= 64 ? stack : malloc(n * sizeof(*mine));
	size_t done = 0;
	int ret = 0;

	if (!mine)
		return -ENOMEM;
	for (unsigned int k = 0; k < d->nunits && !ret; k++) {
		size_t m = batch_pick(cp, n, k, mine);

		if (!m)
			continue;
		ret = unit_copy_batch(d->unit[k], mine, m);
		if (!ret)
			batch_count(d->unit[k], mine, m);
		done += m;
	}
	if (!ret && done < n) {
		size_t m;

		ret = batch_across(d, cp, n, &m);
		done += m;
	}
	if (!ret && done < n)
		ret = -EINVAL;	/* an address of no unit */
	if (mine != stack)
		free(mine);
	return ret;
}

void dev_copy_path_set(struct device *d, enum dev_copy_path path)
{
	for (unsigned int k = 0; k < d->nunits; k++)
		unit_copy_path_set(d->unit[k], path);
}

uint64_t dev_copy_batches(struct device *d, enum dev_copy_path path)
{
	uint64_t n = 0;

	for (unsigned int k = 0; k < d->nunits; k++)
		n += unit_copy_batches(d->unit[k], path);
	return n;
}

/* Hash through host copies, for backends without ->xxh64. */
static int xxh64_on_host(struct dev_unit *u, const struct dev_span *sp, size_t n,
			 void *state)
{
	struct dev_fence f = DEV_FENCE_INIT;
	int ret = 0, r;

	for (size_t i = 0; i < n && !ret; i++) {
		void *buf = malloc(sp[i].len);

		if (!buf)
			return -ENOMEM;
		ret = unit_copy_to_host(u, buf, sp[i].addr, sp[i].len, &f);
		r = unit_fence_wait(u, &f);
		ret = ret ? ret : r;
		if (!ret)
			XXH64_update(state, buf, sp[i].len);
		free(buf);
	}
	return ret;
}

int dev_xxh64(struct device *d, const struct dev_span *sp, size_t n,
	      void *xxh64_state)
{
	struct dev_fence f = DEV_FENCE_INIT;
	struct dev_span *local;
	struct dev_unit *u;
	int ret, r;

	if (!n)
		return 0;
	u = unit_of(d, sp[0].addr);
	if (!u || !(local = malloc(n * sizeof(*local))))
		return u ? -ENOMEM : -EINVAL;
	for (size_t i = 0; i < n; i++) {
		local[i] = (struct dev_span){ dev_addr_offset(sp[i].addr), sp[i].len };
		if (unit_of(d, sp[i].addr) != u || !dev_range_ok(u, local[i].addr,
								  local[i].len)) {
			free(local);
			return -EINVAL;
		}
	}
	ret = dev_lost_err(u);
	if (!ret && !u->ops->xxh64) {
		ret = xxh64_on_host(u, local, n, xxh64_state);
	} else if (!ret) {
		ret = u->ops->xxh64(u, local, n, xxh64_state, &f);
		r = unit_fence_wait(u, &f);
		ret = ret ? ret : r;
		if (ret == -EOPNOTSUPP)
			ret = xxh64_on_host(u, local, n, xxh64_state);
	}
	free(local);
	return ret;
}

/* ---- fence records of the backends that keep them (cuda, opencl) ---- */

void dev_rec_pool_init(struct dev_rec_pool *p, size_t size)
{
	pthread_mutex_init(&p->lock, NULL);
	p->free = p->all = NULL;
	p->size = size;
}

void dev_rec_put(struct dev_rec_pool *p, struct dev_rec *r)
{
	pthread_mutex_lock(&p->lock);
	r->next_free = p->free;
	p->free = r;
	pthread_mutex_unlock(&p->lock);
}

/*
 * The release of the compare-and-swap pairs with the acquire loads of
 * other threads queueing on @f (dev_rec_peek) and with the exchange of
 * the wait (dev_rec_detach).
 */
struct dev_rec *dev_rec_get(struct dev_rec_pool *p, struct dev_fence *f,
			    unsigned int slot)
{
	struct dev_rec *r = dev_rec_peek(f, slot);
	void *expected = NULL;

	if (r)
		return r;
	pthread_mutex_lock(&p->lock);
	r = p->free;
	if (r) {
		p->free = r->next_free;
	} else if ((r = calloc(1, p->size))) {
		pthread_mutex_init(&r->lock, NULL);
		r->next_all = p->all;
		p->all = r;
	}
	pthread_mutex_unlock(&p->lock);
	if (!r)
		return NULL;
	if (!__atomic_compare_exchange_n(&f->priv[slot], &expected, r, false,
					 __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
		dev_rec_put(p, r);	/* another thread attached one first */
		r = expected;
	}
	return r;
}

struct dev_rec *dev_rec_peek(struct dev_fence *f, unsigned int slot)
{
	return __atomic_load_n(&f->priv[slot], __ATOMIC_ACQUIRE);
}

struct dev_rec *dev_rec_detach(struct dev_fence *f, unsigned int slot)
{
	return __atomic_exchange_n(&f->priv[slot], NULL, __ATOMIC_ACQ_REL);
}

void dev_rec_pool_destroy(struct dev_rec_pool *p,
			  void (*release)(struct dev_rec *r, void *arg), void *arg)
{
	struct dev_rec *r, *next;

	for (r = p->all; r; r = next) {
		next = r->next_all;
		release(r, arg);
		pthread_mutex_destroy(&r->lock);
		free(r);
	}
	p->all = p->free = NULL;
	pthread_mutex_destroy(&p->lock);
}
