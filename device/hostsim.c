/* SPDX-License-Identifier: MIT */
/*
 * device/hostsim.c — a simulated device: private memory, a copy engine.
 *
 * Device memory is an anonymous mapping (MAP_NORESERVE: untouched memory
 * costs nothing) that only this file's code touches: the copy-engine
 * thread, and callers of the synchronous fast path (hostsim_copy_sync);
 * the rest of hmmfs holds integer addresses into it, so the CPU paths
 * really must go through copies, as with a GPU.
 *
 * Queue.  Operations go into a bounded ring under one mutex; the engine
 * thread takes every queued operation at once, runs them in order, and
 * completes each: it stores the first error in its fence and decrements
 * the fence's pending count, waking the fence's waiter (a futex on that
 * count) when it reaches zero.  Submitters wait while the ring is full.
 *
 * Model.  With device_bw or device_lat set, an operation of len bytes
 * queued at time t finishes no earlier than t + lat and no earlier than
 * len / bw after the previous one finished: latency overlaps between
 * queued operations (as on a DMA engine with several in flight), the
 * bandwidth is shared.  The engine waits until then.  A synchronous batch
 * is charged the same way, as one operation of its total length queued
 * when it starts, and its caller waits until it may finish.  Waits under
 * HS_SPIN_NS spin: a sleep ends up to the timer slack (50 us) late, five
 * times the PCIe-like latency modelled.  Without a model, operations run
 * as fast as memcpy.
 *
 * A way out.  At device_bw=1M and device_lat=10s one operation is modelled
 * to take seconds, and a caller whose request was interrupted, or a daemon
 * told to stop, must not wait that out: longer waits sleep in HS_SLICE_NS
 * slices and between them ask dev_unit_cut_short() (the caller's own
 * question; the engine learns it from the fence's @hurry flag, which the
 * waiter sets).  A wait cut short runs its operation at once: the bytes are
 * still moved, only the modelled time is skipped.
 *
 * Device-to-host copies are the device's side of a CPU read, which may
 * race a write of the same page by design (lib/racy.h); they are marked
 * so for ThreadSanitizer.
 *
 * Loss.  The dev_lost fault makes the simulated device go away as a real
 * one can: from then on every operation fails with -ENODEV (hs_usable()),
 * so the cache's lost-device path runs on the default backend too.
 *
 * Locking: q_lock guards the ring, @stop and @busy_until.  The fence
 * protocol is lock-free: see hostsim_complete() and hostsim_fence_wait().
 */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <xxhash.h>

#include "lib/racy.h"	/* macros only: the read-race marking */
#include "device/device.h"
#include "fault/fault.h"
#include "log/log.h"
#include "lib/lockcheck.h"

#define HS_RING 4096
#define HS_SPIN_NS 100000	/* waits shorter than this spin */
#define HS_SLICE_NS 10000000	/* a longer wait looks every 10 ms whether to end */

enum hs_kind { HS_COPY, HS_COMPUTE, HS_COMPARE, HS_XXH64 };

struct hs_op {
	enum hs_kind kind;
	struct dev_copy cp;		/* HS_COPY */
	enum dev_op_kind op;		/* HS_COMPUTE */
	dev_addr_t a, b;		/* HS_COMPUTE: a; HS_COMPARE: a, b */
	const struct dev_span *sp;	/* HS_XXH64: @n spans into @state */
	size_t n;
	void *state;
	size_t len;
	uint64_t value;
	uint64_t queued_ns;
	struct dev_fence *fence;
};

/**
 * struct hostsim - the simulated device.
 * @dev:        the device it backs (dev_unit_cut_short(), @dev->hurry).
 * @mem:        device memory; touched only by @engine.
 * @q_lock:     guards @ring, @head, @count, @stop, @busy_until.
 * @q_cond:     wakes the engine; @space_cond wakes full-ring submitters.
 * @busy_until: when the modelled copy engine is next free (ns).
 */
struct hostsim {
	struct dev_unit *dev;
	char *mem;
	size_t mem_bytes;
	uint64_t bw, lat_ns;
	pthread_t engine;
	pthread_mutex_t q_lock;
	pthread_cond_t q_cond, space_cond;
	struct hs_op ring[HS_RING];
	size_t head, count;
	int stop;
	uint64_t busy_until;
	_Atomic bool lost;
};

static inline void hs_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#else
	__asm__ __volatile__("" ::: "memory");
#endif
}

/*
 * Should the wait for @f's operation end its modelled delay now?  The
 * engine learns a waiter's wish from f->hurry (set in hostsim_fence_wait);
 * a synchronous batch (@f NULL) runs in its caller, which asks for itself.
 */
static bool hs_cut_short(struct hostsim *hs, struct dev_fence *f)
{
	if (!f)
		return dev_unit_cut_short(hs->dev);
	return atomic_load_explicit(&f->hurry, memory_order_relaxed) ||
	       atomic_load_explicit(&hs->dev->hurry, memory_order_relaxed);
}

/*
 * Wait until CLOCK_MONOTONIC reaches @ns: sleep in slices of at most
 * HS_SLICE_NS, looking between them whether the wait is cut short, then
 * spin the end.
 */
static void hs_wait_until(struct hostsim *hs, uint64_t ns, struct dev_fence *f)
{
	uint64_t now, wake;

	while ((now = dev_clock_ns()) + HS_SPIN_NS < ns) {
		if (hs_cut_short(hs, f))
			return;
		wake = ns - HS_SPIN_NS;
		if (wake > now + HS_SLICE_NS)
			wake = now + HS_SLICE_NS;
		clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME,
				&(struct timespec){ .tv_sec = (time_t)(wake / 1000000000ull),
						    .tv_nsec = (long)(wake % 1000000000ull) },
				NULL);
	}
	while (dev_clock_ns() < ns)
		hs_cpu_relax();
}

/*
 * Finish one operation of @f.  The error is stored before the count drops
 * (release), so a waiter that sees zero (acquire) sees the error.
 */
static void hostsim_complete(struct dev_fence *f, int err)
{
	int none = 0;

	if (err)
		atomic_compare_exchange_strong(&f->error, &none, err);
	if (atomic_fetch_sub_explicit(&f->pending, 1, memory_order_acq_rel) == 1)
		syscall(SYS_futex, &f->pending, FUTEX_WAKE_PRIVATE, INT_MAX,
			NULL, NULL, 0);
}

static void hs_compute(char *p, enum dev_op_kind op, size_t len, uint8_t v)
{
	switch (op) {
	case DEV_OP_FILL:
		memset(p, v, len);
		break;
	case DEV_OP_XOR:
		for (size_t i = 0; i < len; i++)
			p[i] = (char)(p[i] ^ v);
		break;
	case DEV_OP_ADD:
		for (size_t i = 0; i < len; i++)
			p[i] = (char)(p[i] + v);
		break;
	default:
		break;
	}
}

static void hs_copy(struct hostsim *hs, const struct dev_copy *cp)
{
	if (cp->dir == DEV_H2D) {
		memcpy(hs->mem + cp->dst, cp->host, cp->len);
	} else if (cp->dir == DEV_D2H) {
		racy_read_begin();
		memcpy(cp->host, hs->mem + cp->src, cp->len);
		racy_read_end();
	} else {
		memmove(hs->mem + cp->dst, hs->mem + cp->src, cp->len);
	}
}

static void hs_run(struct hostsim *hs, const struct hs_op *o)
{
	switch (o->kind) {
	case HS_COPY:
		hs_copy(hs, &o->cp);
		break;
	case HS_COMPUTE:
		hs_compute(hs->mem + o->a, o->op, o->len, (uint8_t)o->value);
		break;
	case HS_COMPARE:
		if (memcmp(hs->mem + o->a, hs->mem + o->b, o->len))
			atomic_store(&o->fence->result, 1);
		break;
	case HS_XXH64:
		racy_read_begin();
		for (size_t i = 0; i < o->n; i++)
			XXH64_update(o->state, hs->mem + o->sp[i].addr, o->sp[i].len);
		racy_read_end();
		break;
	}
}

/*
 * When the model lets an operation of @len bytes queued at @queued_ns
 * finish (0: no model).  Context: q_lock held.
 */
static uint64_t hs_model_locked(struct hostsim *hs, uint64_t queued_ns, size_t len)
{
	uint64_t now = dev_clock_ns(), start, done;

	mutex_assert_held(&hs->q_lock);
	if (!hs->bw && !hs->lat_ns)
		return 0;
	start = hs->busy_until > now ? hs->busy_until : now;
	done = start + (hs->bw ? (uint64_t)((double)len * 1e9 / (double)hs->bw) : 0);
	hs->busy_until = done;
	if (done < queued_ns + hs->lat_ns)
		done = queued_ns + hs->lat_ns;
	return done;
}

static void *hostsim_engine(void *arg)
{
	struct hostsim *hs = arg;
	struct hs_op batch[64];

	pthread_mutex_lock(&hs->q_lock);
	for (;;) {
		size_t n = 0;
		uint64_t when[64];

		while (!hs->count && !hs->stop)
			pthread_cond_wait(&hs->q_cond, &hs->q_lock);
		if (!hs->count && hs->stop)
			break;
		while (hs->count && n < 64) {
			batch[n] = hs->ring[hs->head];
			when[n] = hs_model_locked(hs, batch[n].queued_ns, batch[n].len);
			hs->head = (hs->head + 1) % HS_RING;
			hs->count--;
			n++;
		}
		pthread_cond_broadcast(&hs->space_cond);
		pthread_mutex_unlock(&hs->q_lock);
		for (size_t i = 0; i < n; i++) {
			if (when[i])
				hs_wait_until(hs, when[i], batch[i].fence);
			hs_run(hs, &batch[i]);
			hostsim_complete(batch[i].fence, 0);
		}
		pthread_mutex_lock(&hs->q_lock);
	}
	pthread_mutex_unlock(&hs->q_lock);
	return NULL;
}

/*
 * Before any work: is the "device" still there?  Only the dev_lost fault
 * takes it away, as a runtime reporting a lost GPU would; then every
 * operation fails with -ENODEV, and a fence queued on keeps the loss for
 * its wait.
 */
static int hs_usable(struct hostsim *hs, struct dev_fence *f)
{
	int none = 0;

	if (fault_hit(FAULT_DEV_LOST, NULL) && !atomic_exchange(&hs->lost, true))
		log_err("hostsim: lost (dev_lost fault injected)");
	if (!atomic_load(&hs->lost))
		return 0;
	if (f)
		atomic_compare_exchange_strong(&f->error, &none, -ENODEV);
	return -ENODEV;
}

static int hostsim_queue(struct dev_unit *d, struct hs_op *o)
{
	struct hostsim *hs = d->priv;
	int ret = hs_usable(hs, o->fence);

	if (ret)
		return ret;

	o->queued_ns = hs->lat_ns ? dev_clock_ns() : 0;
	atomic_fetch_add_explicit(&o->fence->pending, 1, memory_order_relaxed);
	pthread_mutex_lock(&hs->q_lock);
	while (hs->count == HS_RING)
		pthread_cond_wait(&hs->space_cond, &hs->q_lock);
	hs->ring[(hs->head + hs->count) % HS_RING] = *o;
	if (hs->count++ == 0)
		pthread_cond_signal(&hs->q_cond);
	pthread_mutex_unlock(&hs->q_lock);
	return 0;
}

static int hostsim_open(struct dev_unit *d, const struct device_config *cfg,
			char *err, size_t errlen)
{
	struct hostsim *hs = calloc(1, sizeof(*hs));
	int ret;

	if (!hs)
		return -ENOMEM;
	hs->dev = d;
	hs->mem_bytes = cfg->mem_bytes;
	hs->bw = cfg->bw;
	hs->lat_ns = cfg->lat_ns;
	hs->mem = mmap(NULL, hs->mem_bytes, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (hs->mem == MAP_FAILED) {
		ret = -errno;
		snprintf(err, errlen, "hostsim: cannot map %zu bytes of device memory: %s",
			 hs->mem_bytes, strerror(errno));
		free(hs);
		return ret;
	}
	pthread_mutex_init(&hs->q_lock, NULL);
	pthread_cond_init(&hs->q_cond, NULL);
	pthread_cond_init(&hs->space_cond, NULL);
	ret = -pthread_create(&hs->engine, NULL, hostsim_engine, hs);
	if (ret) {
		snprintf(err, errlen, "hostsim: cannot start the copy engine: %s",
			 strerror(-ret));
		munmap(hs->mem, hs->mem_bytes);
		free(hs);
		return ret;
	}
	d->priv = hs;
	return 0;
}

static void hostsim_close(struct dev_unit *d)
{
	struct hostsim *hs = d->priv;

	pthread_mutex_lock(&hs->q_lock);
	hs->stop = 1;
	pthread_cond_signal(&hs->q_cond);
	pthread_mutex_unlock(&hs->q_lock);
	pthread_join(hs->engine, NULL);
	munmap(hs->mem, hs->mem_bytes);
	pthread_mutex_destroy(&hs->q_lock);
	pthread_cond_destroy(&hs->q_cond);
	pthread_cond_destroy(&hs->space_cond);
	free(hs);
}

static int hostsim_copy(struct dev_unit *d, const struct dev_copy *cp,
			struct dev_fence *f)
{
	struct hs_op o = { .kind = HS_COPY, .cp = *cp, .len = cp->len, .fence = f };

	return hostsim_queue(d, &o);
}

/*
 * The synchronous fast path: the caller is the copy engine for its own
 * batch, charged by the model like one queued operation.
 */
static int hostsim_copy_sync(struct dev_unit *d, const struct dev_copy *cp,
			     size_t n)
{
	struct hostsim *hs = d->priv;
	uint64_t done = 0;
	size_t bytes = 0;
	int ret = hs_usable(hs, NULL);

	if (ret)
		return ret;
	if (hs->bw || hs->lat_ns) {
		for (size_t i = 0; i < n; i++)
			bytes += cp[i].len;
		pthread_mutex_lock(&hs->q_lock);
		done = hs_model_locked(hs, dev_clock_ns(), bytes);
		pthread_mutex_unlock(&hs->q_lock);
	}
	for (size_t i = 0; i < n; i++)
		hs_copy(hs, &cp[i]);
	if (done)
		hs_wait_until(hs, done, NULL);
	return 0;
}

static int hostsim_compute(struct dev_unit *d, enum dev_op_kind op, dev_addr_t dst,
			   size_t len, uint64_t value, struct dev_fence *f)
{
	struct hs_op o = { .kind = HS_COMPUTE, .op = op, .a = dst, .len = len,
			   .value = value, .fence = f };

	return hostsim_queue(d, &o);
}

static int hostsim_compare(struct dev_unit *d, dev_addr_t a, dev_addr_t b,
			   size_t len, struct dev_fence *f)
{
	struct hs_op o = { .kind = HS_COMPARE, .a = a, .b = b, .len = len,
			   .fence = f };

	return hostsim_queue(d, &o);
}

/*
 * The peer path: every unit's memory is in this process, so the engine
 * of @d copies straight from @from's arena, charged like any copy.
 */
static int hostsim_copy_peer(struct dev_unit *d, dev_addr_t dst,
			     struct dev_unit *from, dev_addr_t src, size_t len,
			     struct dev_fence *f)
{
	struct hostsim *peer = from->priv;
	struct hs_op o = { .kind = HS_COPY, .len = len, .fence = f,
			   .cp = { .dir = DEV_H2D, .host = peer->mem + src,
				   .dst = dst, .len = len } };

	return hostsim_queue(d, &o);
}

/* The read-only hash pass runs in the engine, charged as one read. */
static int hostsim_xxh64(struct dev_unit *d, const struct dev_span *sp, size_t n,
			 void *state, struct dev_fence *f)
{
	struct hs_op o = { .kind = HS_XXH64, .sp = sp, .n = n, .state = state,
			   .fence = f };

	for (size_t i = 0; i < n; i++)
		o.len += sp[i].len;
	return hostsim_queue(d, &o);
}

/*
 * Sleep until every operation of @f is done; pairs with hostsim_complete().
 * Every HS_SLICE_NS it asks whether its wait should be cut short, and if
 * so tells the engine through f->hurry.
 */
static int hostsim_fence_wait(struct dev_unit *d, struct dev_fence *f)
{
	const struct timespec slice = { .tv_nsec = HS_SLICE_NS };
	uint32_t v;

	while ((v = atomic_load_explicit(&f->pending, memory_order_acquire))) {
		if (!atomic_load_explicit(&f->hurry, memory_order_relaxed) &&
		    dev_unit_cut_short(d))
			atomic_store_explicit(&f->hurry, 1, memory_order_relaxed);
		syscall(SYS_futex, &f->pending, FUTEX_WAIT_PRIVATE, v, &slice,
			NULL, 0);
	}
	atomic_store_explicit(&f->hurry, 0, memory_order_relaxed);
	return atomic_exchange(&f->error, 0);
}

const struct dev_ops dev_hostsim_ops = {
	.name		= "hostsim",
	.version	= DEV_OPS_VERSION,
	.open		= hostsim_open,
	.close		= hostsim_close,
	.copy		= hostsim_copy,
	.copy_sync	= hostsim_copy_sync,
	.compute	= hostsim_compute,
	.compare	= hostsim_compare,
	.xxh64		= hostsim_xxh64,
	.copy_peer	= hostsim_copy_peer,
	.fence_wait	= hostsim_fence_wait,
};
