/* SPDX-License-Identifier: MIT */
/*
 * tests/fakecuda/fakecuda.c — a fake CUDA driver (libfakecuda.so) for the
 * tests, which run where there is no GPU.  The cuda backend loads it
 * instead of libcuda.so.1 when env HMMFS_CUDA_LIB names it.
 *
 * It implements the driver entry points device/cuda.c resolves, over host
 * memory: a CUdeviceptr is a host address from malloc.  It is strict where
 * the real driver is, so that the backend's mistakes show up here:
 *   - streams are asynchronous: each has a worker thread that runs its
 *     operations in order, so a result read before its event or stream was
 *     synchronized is stale (and a data race the sanitizers see);
 *   - memory, stream and event calls need the context current on the
 *     calling thread (CUDA_ERROR_INVALID_CONTEXT otherwise);
 *   - device ranges must lie inside one live allocation, and host ranges
 *     may be registered once (CUDA_ERROR_INVALID_VALUE,
 *     CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED / _NOT_REGISTERED);
 *   - kernel parameters are copied at launch, as the driver does.
 * Kernels: cuModuleLoadData takes PTX text; cuModuleGetFunction finds a
 * function only if the PTX has an ".entry NAME(" for it and NAME is one of
 * the kernels of device/cuda_int.h, which run as the equivalent C.
 *
 * Fault injection, read when the primary context is first retained (that
 * is, at each open of the backend):
 *   FAKECUDA_FAIL_ALLOC=1   cuMemAlloc returns CUDA_ERROR_OUT_OF_MEMORY
 *   FAKECUDA_LOSE_AFTER=N   the device is lost once N copies and launches
 *                           have been queued: the next one is accepted
 *                           but never runs, and from then on every call
 *                           that allocates, queues or waits returns
 *                           CUDA_ERROR_DEVICE_UNAVAILABLE (events can
 *                           still be created and recorded, so where the
 *                           loss shows is deterministic)
 *   FAKECUDA_BAD_XXH64=1    the xxh64 kernel computes wrong lanes (the
 *                           backend's check at open must catch it)
 *   FAKECUDA_DEVICES=N      how many GPUs cuDeviceGetCount reports
 *                           (default 1, at most 8; 0: cuInit says
 *                           CUDA_ERROR_NO_DEVICE).  Each has its own
 *                           primary context; their memory is all this
 *                           process's, so cuMemcpyPeerAsync is a copy.
 *
 * The xxh64 kernel checks its spans as it runs: one not 8-byte aligned, of
 * a length not a multiple of 32, or outside device memory is a fault, and
 * the device is lost (a real GPU's misaligned-address error is sticky).
 * fakecuda_launches(NAME) tells the tests how often a kernel ran.
 *
 * Locking: fk_lock guards the global state (allocations, registrations,
 * context refcount); each stream's lock guards its queue and counters.
 * Never both at once.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "device/cuda_int.h"

#define FK_API __attribute__((visibility("default")))

enum fk_kind { FK_COPY, FK_FILL, FK_XOR, FK_ADD, FK_COMPARE, FK_XXH64, FK_NOP };

struct fk_op {
	enum fk_kind kind;
	void *dst;
	const void *src;
	size_t len;
	uint8_t value;
	uint32_t *flag;		/* FK_COMPARE */
	uint64_t *lanes;	/* FK_XXH64: dst is the spans, len their number */
	struct fk_op *next;
};

/**
 * struct CUstream_st - a stream: a FIFO run by its own thread.
 * @queued, @done: operations queued and finished so far; an event
 *                 recorded at @queued == n completes when @done >= n.
 */
struct CUstream_st {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct fk_op *head, *tail;
	uint64_t queued, done;
	bool stop;
	pthread_t thread;
};

struct CUevent_st {
	struct CUstream_st *stream;	/* NULL: never recorded */
	uint64_t seq;
};

struct CUmod_st {
	char *ptx;
};

struct CUfunc_st {
	const char *name;
	enum fk_kind kind;
	_Atomic unsigned long launches;
};

static struct CUfunc_st fk_funcs[] = {
	{ .name = CUDA_KERNEL_FILL, .kind = FK_FILL },
	{ .name = CUDA_KERNEL_XOR, .kind = FK_XOR },
	{ .name = CUDA_KERNEL_ADD, .kind = FK_ADD },
	{ .name = CUDA_KERNEL_COMPARE, .kind = FK_COMPARE },
	{ .name = CUDA_KERNEL_XXH64, .kind = FK_XXH64 },
};

struct fk_range {
	uintptr_t start;
	size_t len;
	struct fk_range *next;
};

/* One primary context per GPU; its address is the CUcontext. */
#define FK_MAX_DEVICES 8

static struct fk_ctx {
	int refs;
} fk_ctx[FK_MAX_DEVICES];
static int fk_refs_all;	/* every context's refs: 0 means a fresh start */

static pthread_mutex_t fk_lock = PTHREAD_MUTEX_INITIALIZER;
static struct fk_range *fk_allocs, *fk_registered;	/* fk_lock */
static int fk_ndevices = 1;
static bool fk_fail_alloc, fk_bad_xxh64;
static long fk_lose_after = -1;
static _Atomic long fk_ops;
static _Atomic bool fk_lost;
static _Thread_local struct fk_ctx *fk_current;

static void fk_read_env(void)
{
	const char *s;

	s = getenv("FAKECUDA_DEVICES");
	fk_ndevices = s && *s ? atoi(s) : 1;
	s = getenv("FAKECUDA_FAIL_ALLOC");
	fk_fail_alloc = s && atoi(s) > 0;
	s = getenv("FAKECUDA_BAD_XXH64");
	fk_bad_xxh64 = s && atoi(s) > 0;
	s = getenv("FAKECUDA_LOSE_AFTER");
	fk_lose_after = s && *s ? atol(s) : -1;
}

/* Bookkeeping calls (events): the context must be current. */
static CUresult fk_check_ctx(void)
{
	if (!fk_current || !fk_current->refs)
		return CUDA_ERROR_INVALID_CONTEXT;
	return CUDA_SUCCESS;
}

/* Calls that allocate, queue or wait: also the device must be there. */
static CUresult fk_check(void)
{
	if (atomic_load(&fk_lost))
		return CUDA_ERROR_DEVICE_UNAVAILABLE;
	return fk_check_ctx();
}

static bool fk_in(struct fk_range *list, uintptr_t p, size_t len)
{
	for (struct fk_range *r = list; r; r = r->next)
		if (p >= r->start && len <= r->len && p - r->start <= r->len - len)
			return true;
	return false;
}

static bool fk_device_range(CUdeviceptr p, size_t len)
{
	bool ok;

	pthread_mutex_lock(&fk_lock);
	ok = len && fk_in(fk_allocs, (uintptr_t)p, len);
	pthread_mutex_unlock(&fk_lock);
	return ok;
}

static uint64_t fk_xxh64_round(uint64_t acc, uint64_t w)
{
	acc += w * 0xC2B2AE3D27D4EB4Full;
	acc = acc << 31 | acc >> 33;
	return acc * 0x9E3779B185EBCA87ull;
}

/* The xxh64 kernel: lane t folds word t of each stripe (little-endian). */
static void fk_xxh64(struct fk_op *o)
{
	const uint64_t (*sp)[2] = o->dst;

	for (size_t i = 0; i < o->len; i++) {
		const unsigned char *p = (const unsigned char *)(uintptr_t)sp[i][0];

		if (sp[i][0] % 8 || sp[i][1] % 32 || !fk_device_range(sp[i][0], sp[i][1])) {
			fprintf(stderr, "fakecuda: " CUDA_KERNEL_XXH64 ": span %zu "
				"(%#llx, %llu bytes) is not aligned or not device memory: "
				"the device is lost\n", i, (unsigned long long)sp[i][0],
				(unsigned long long)sp[i][1]);
			atomic_store(&fk_lost, true);
			return;
		}
		for (uint64_t s = 0; s < sp[i][1]; s += 32)
			for (int t = 0; t < 4; t++) {
				uint64_t w;

				memcpy(&w, p + s + 8 * t, 8);
				o->lanes[t] = fk_xxh64_round(o->lanes[t], w);
			}
	}
	if (fk_bad_xxh64)
		o->lanes[0] ^= 1;
}

static void fk_run(struct fk_op *o)
{
	uint8_t *p = o->dst;

	switch (o->kind) {
	case FK_COPY:
		memmove(o->dst, o->src, o->len);
		break;
	case FK_FILL:
		memset(p, o->value, o->len);
		break;
	case FK_XOR:
		for (size_t i = 0; i < o->len; i++)
			p[i] ^= o->value;
		break;
	case FK_ADD:
		for (size_t i = 0; i < o->len; i++)
			p[i] = (uint8_t)(p[i] + o->value);
		break;
	case FK_COMPARE:
		if (memcmp(o->dst, o->src, o->len))
			*o->flag = 1;
		break;
	case FK_XXH64:
		fk_xxh64(o);
		break;
	case FK_NOP:
		break;
	}
}

static void *fk_stream_main(void *arg)
{
	struct CUstream_st *s = arg;

	pthread_mutex_lock(&s->lock);
	for (;;) {
		struct fk_op *o;

		while (!s->head && !s->stop)
			pthread_cond_wait(&s->cond, &s->lock);
		if (!s->head)
			break;
		o = s->head;
		s->head = o->next;
		if (!s->head)
			s->tail = NULL;
		pthread_mutex_unlock(&s->lock);
		fk_run(o);
		free(o);
		pthread_mutex_lock(&s->lock);
		s->done++;
		pthread_cond_broadcast(&s->cond);
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

/*
 * Queue @tmpl on @s (NULL: the default stream, run at once).  Counts
 * towards FAKECUDA_LOSE_AFTER; the operation that crosses it is accepted
 * and dropped.
 */
static CUresult fk_queue(struct CUstream_st *s, const struct fk_op *tmpl)
{
	long n = atomic_fetch_add(&fk_ops, 1) + 1;
	struct fk_op *o;

	if (fk_lose_after >= 0 && n > fk_lose_after) {
		atomic_store(&fk_lost, true);
		return CUDA_SUCCESS;
	}
	if (!s) {
		fk_run((struct fk_op *)tmpl);
		return CUDA_SUCCESS;
	}
	o = malloc(sizeof(*o));
	if (!o)
		return CUDA_ERROR_OUT_OF_MEMORY;
	*o = *tmpl;
	o->next = NULL;
	pthread_mutex_lock(&s->lock);
	if (s->tail)
		s->tail->next = o;
	else
		s->head = o;
	s->tail = o;
	s->queued++;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
	return CUDA_SUCCESS;
}

static void fk_wait(struct CUstream_st *s, uint64_t seq)
{
	pthread_mutex_lock(&s->lock);
	while (s->done < seq)
		pthread_cond_wait(&s->cond, &s->lock);
	pthread_mutex_unlock(&s->lock);
}

FK_API CUresult cuInit(unsigned int flags)
{
	if (flags)
		return CUDA_ERROR_INVALID_VALUE;
	pthread_mutex_lock(&fk_lock);
	if (!fk_refs_all)
		fk_read_env();
	pthread_mutex_unlock(&fk_lock);
	return fk_ndevices > 0 ? CUDA_SUCCESS : CUDA_ERROR_NO_DEVICE;
}

FK_API CUresult cuDeviceGetCount(int *n)
{
	*n = fk_ndevices;
	return CUDA_SUCCESS;
}

FK_API CUresult cuDeviceGet(CUdevice *d, int ordinal)
{
	if (ordinal < 0 || ordinal >= fk_ndevices || ordinal >= FK_MAX_DEVICES)
		return CUDA_ERROR_INVALID_DEVICE;
	*d = ordinal;
	return CUDA_SUCCESS;
}

FK_API CUresult cuDevicePrimaryCtxRetain(CUcontext *ctx, CUdevice d)
{
	if (d < 0 || d >= FK_MAX_DEVICES)
		return CUDA_ERROR_INVALID_DEVICE;
	pthread_mutex_lock(&fk_lock);
	if (!fk_refs_all++) {
		/* a fresh start: fresh devices, faults re-read */
		fk_read_env();
		atomic_store(&fk_ops, 0);
		atomic_store(&fk_lost, false);
	}
	fk_ctx[d].refs++;
	pthread_mutex_unlock(&fk_lock);
	*ctx = (CUcontext)(void *)&fk_ctx[d];
	return CUDA_SUCCESS;
}

FK_API CUresult cuDevicePrimaryCtxRelease_v2(CUdevice d)
{
	if (d < 0 || d >= FK_MAX_DEVICES)
		return CUDA_ERROR_INVALID_DEVICE;
	pthread_mutex_lock(&fk_lock);
	if (fk_ctx[d].refs) {
		fk_ctx[d].refs--;
		fk_refs_all--;
	}
	pthread_mutex_unlock(&fk_lock);
	return CUDA_SUCCESS;
}

/* Is @ctx one of ours? */
static bool fk_is_ctx(CUcontext ctx)
{
	uintptr_t p = (uintptr_t)(void *)ctx, lo = (uintptr_t)&fk_ctx[0];

	return p >= lo && p < (uintptr_t)&fk_ctx[FK_MAX_DEVICES] &&
	       (p - lo) % sizeof(fk_ctx[0]) == 0;
}

FK_API CUresult cuCtxSetCurrent(CUcontext ctx)
{
	if (ctx && !fk_is_ctx(ctx))
		return CUDA_ERROR_INVALID_CONTEXT;
	fk_current = (struct fk_ctx *)(void *)ctx;
	return CUDA_SUCCESS;
}

FK_API CUresult cuMemAlloc_v2(CUdeviceptr *p, size_t len)
{
	CUresult r = fk_check();
	struct fk_range *a;

	if (r)
		return r;
	if (!len)
		return CUDA_ERROR_INVALID_VALUE;
	if (fk_fail_alloc)
		return CUDA_ERROR_OUT_OF_MEMORY;
	a = malloc(sizeof(*a));
	if (!a)
		return CUDA_ERROR_OUT_OF_MEMORY;
	a->start = (uintptr_t)malloc(len);
	if (!a->start) {
		free(a);
		return CUDA_ERROR_OUT_OF_MEMORY;
	}
	a->len = len;
	pthread_mutex_lock(&fk_lock);
	a->next = fk_allocs;
	fk_allocs = a;
	pthread_mutex_unlock(&fk_lock);
	*p = a->start;
	return CUDA_SUCCESS;
}

/* Remove the range starting at @p from @list; NULL if there is none. */
static struct fk_range *fk_unlink(struct fk_range **list, uintptr_t p)
{
	for (struct fk_range **pp = list; *pp; pp = &(*pp)->next)
		if ((*pp)->start == p) {
			struct fk_range *r = *pp;

			*pp = r->next;
			return r;
		}
	return NULL;
}

/* Freeing works on a lost device too: the backend must be able to close. */
FK_API CUresult cuMemFree_v2(CUdeviceptr p)
{
	struct fk_range *a;

	pthread_mutex_lock(&fk_lock);
	a = fk_unlink(&fk_allocs, (uintptr_t)p);
	pthread_mutex_unlock(&fk_lock);
	if (!a)
		return CUDA_ERROR_INVALID_VALUE;
	free((void *)a->start);
	free(a);
	return CUDA_SUCCESS;
}

FK_API CUresult cuMemHostRegister_v2(void *p, size_t len, unsigned int flags)
{
	CUresult r = fk_check();
	struct fk_range *a;

	(void)flags;
	if (r)
		return r;
	if (!p || !len)
		return CUDA_ERROR_INVALID_VALUE;
	a = malloc(sizeof(*a));
	if (!a)
		return CUDA_ERROR_OUT_OF_MEMORY;
	*a = (struct fk_range){ .start = (uintptr_t)p, .len = len };
	pthread_mutex_lock(&fk_lock);
	for (struct fk_range *x = fk_registered; x; x = x->next)
		if ((uintptr_t)p < x->start + x->len && x->start < (uintptr_t)p + len) {
			pthread_mutex_unlock(&fk_lock);
			free(a);
			return CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED;
		}
	a->next = fk_registered;
	fk_registered = a;
	pthread_mutex_unlock(&fk_lock);
	return CUDA_SUCCESS;
}

FK_API CUresult cuMemHostUnregister(void *p)
{
	struct fk_range *a;

	pthread_mutex_lock(&fk_lock);
	a = fk_unlink(&fk_registered, (uintptr_t)p);
	pthread_mutex_unlock(&fk_lock);
	if (!a)
		return CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED;
	free(a);
	return CUDA_SUCCESS;
}

static CUresult fk_copy(void *dst, const void *src, size_t len, CUstream s)
{
	struct fk_op o = { .kind = FK_COPY, .dst = dst, .src = src, .len = len };

	return fk_queue(s, &o);
}

FK_API CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr dst, const void *src, size_t len,
				     CUstream s)
{
	CUresult r = fk_check();

	if (r)
		return r;
	if (!src || !fk_device_range(dst, len))
		return CUDA_ERROR_INVALID_VALUE;
	return fk_copy((void *)(uintptr_t)dst, src, len, s);
}

FK_API CUresult cuMemcpyDtoHAsync_v2(void *dst, CUdeviceptr src, size_t len,
				     CUstream s)
{
	CUresult r = fk_check();

	if (r)
		return r;
	if (!dst || !fk_device_range(src, len))
		return CUDA_ERROR_INVALID_VALUE;
	return fk_copy(dst, (const void *)(uintptr_t)src, len, s);
}

FK_API CUresult cuMemcpyDtoDAsync_v2(CUdeviceptr dst, CUdeviceptr src, size_t len,
				     CUstream s)
{
	CUresult r = fk_check();

	if (r)
		return r;
	if (!fk_device_range(dst, len) || !fk_device_range(src, len))
		return CUDA_ERROR_INVALID_VALUE;
	return fk_copy((void *)(uintptr_t)dst, (const void *)(uintptr_t)src, len, s);
}

/*
 * A copy from one GPU's memory to another's, on @s (of the destination's
 * context): every GPU's memory is this process's, so it is a plain copy.
 */
FK_API CUresult cuMemcpyPeerAsync(CUdeviceptr dst, CUcontext dst_ctx,
				  CUdeviceptr src, CUcontext src_ctx, size_t len,
				  CUstream s)
{
	CUresult r = fk_check();

	if (r)
		return r;
	if (!fk_is_ctx(dst_ctx) || !fk_is_ctx(src_ctx))
		return CUDA_ERROR_INVALID_CONTEXT;
	if (!fk_device_range(dst, len) || !fk_device_range(src, len))
		return CUDA_ERROR_INVALID_VALUE;
	return fk_copy((void *)(uintptr_t)dst, (const void *)(uintptr_t)src, len, s);
}

FK_API CUresult cuStreamCreate(CUstream *out, unsigned int flags)
{
	CUresult r = fk_check();
	struct CUstream_st *s;

	(void)flags;
	if (r)
		return r;
	s = calloc(1, sizeof(*s));
	if (!s)
		return CUDA_ERROR_OUT_OF_MEMORY;
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->cond, NULL);
	if (pthread_create(&s->thread, NULL, fk_stream_main, s)) {
		free(s);
		return CUDA_ERROR_OUT_OF_MEMORY;
	}
	*out = s;
	return CUDA_SUCCESS;
}

/* Like the driver: the stream's queued work still runs. */
FK_API CUresult cuStreamDestroy_v2(CUstream s)
{
	if (!s)
		return CUDA_ERROR_INVALID_HANDLE;
	pthread_mutex_lock(&s->lock);
	s->stop = true;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
	pthread_join(s->thread, NULL);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->cond);
	free(s);
	return CUDA_SUCCESS;
}

FK_API CUresult cuStreamSynchronize(CUstream s)
{
	CUresult r = fk_check();
	uint64_t seq;

	if (r)
		return r;
	if (s) {
		pthread_mutex_lock(&s->lock);
		seq = s->queued;
		pthread_mutex_unlock(&s->lock);
		fk_wait(s, seq);
	}
	return atomic_load(&fk_lost) ? CUDA_ERROR_DEVICE_UNAVAILABLE : CUDA_SUCCESS;
}

FK_API CUresult cuEventCreate(CUevent *out, unsigned int flags)
{
	CUresult r = fk_check_ctx();

	(void)flags;
	if (r)
		return r;
	*out = calloc(1, sizeof(**out));
	return *out ? CUDA_SUCCESS : CUDA_ERROR_OUT_OF_MEMORY;
}

FK_API CUresult cuEventDestroy_v2(CUevent e)
{
	free(e);
	return CUDA_SUCCESS;
}

/* Recording overwrites: the event now stands for the stream's work so far. */
FK_API CUresult cuEventRecord(CUevent e, CUstream s)
{
	CUresult r = fk_check_ctx();

	if (r)
		return r;
	if (!e || !s)
		return CUDA_ERROR_INVALID_HANDLE;
	pthread_mutex_lock(&s->lock);
	e->stream = s;
	e->seq = s->queued;
	pthread_mutex_unlock(&s->lock);
	return CUDA_SUCCESS;
}

FK_API CUresult cuEventSynchronize(CUevent e)
{
	CUresult r = fk_check();

	if (r)
		return r;
	if (!e)
		return CUDA_ERROR_INVALID_HANDLE;
	if (e->stream)
		fk_wait(e->stream, e->seq);
	return atomic_load(&fk_lost) ? CUDA_ERROR_DEVICE_UNAVAILABLE : CUDA_SUCCESS;
}

FK_API CUresult cuEventQuery(CUevent e)
{
	CUresult r = fk_check();
	bool done = true;

	if (r)
		return r;
	if (!e)
		return CUDA_ERROR_INVALID_HANDLE;
	if (e->stream) {
		pthread_mutex_lock(&e->stream->lock);
		done = e->stream->done >= e->seq;
		pthread_mutex_unlock(&e->stream->lock);
	}
	if (atomic_load(&fk_lost))
		return CUDA_ERROR_DEVICE_UNAVAILABLE;
	return done ? CUDA_SUCCESS : CUDA_ERROR_NOT_READY;
}

FK_API CUresult cuModuleLoadData(CUmodule *out, const void *image)
{
	CUresult r = fk_check();
	const char *ptx = image;

	if (r)
		return r;
	if (!ptx || !strstr(ptx, ".version ") || !strstr(ptx, ".target "))
		return CUDA_ERROR_INVALID_PTX;
	*out = calloc(1, sizeof(**out));
	if (!*out)
		return CUDA_ERROR_OUT_OF_MEMORY;
	(*out)->ptx = strdup(ptx);
	return CUDA_SUCCESS;
}

FK_API CUresult cuModuleUnload(CUmodule m)
{
	if (!m)
		return CUDA_ERROR_INVALID_HANDLE;
	free(m->ptx);
	free(m);
	return CUDA_SUCCESS;
}

FK_API CUresult cuModuleGetFunction(CUfunction *out, CUmodule m, const char *name)
{
	char entry[128];

	if (!m || !name)
		return CUDA_ERROR_INVALID_HANDLE;
	snprintf(entry, sizeof(entry), ".entry %s(", name);
	if (!strstr(m->ptx, entry))
		return CUDA_ERROR_NOT_FOUND;
	for (size_t i = 0; i < sizeof(fk_funcs) / sizeof(fk_funcs[0]); i++)
		if (!strcmp(fk_funcs[i].name, name)) {
			*out = &fk_funcs[i];
			return CUDA_SUCCESS;
		}
	return CUDA_ERROR_NOT_FOUND;
}

/* The parameters are read now, as the driver copies them at launch. */
FK_API CUresult cuLaunchKernel(CUfunction f, unsigned int gx, unsigned int gy,
			       unsigned int gz, unsigned int bx, unsigned int by,
			       unsigned int bz, unsigned int shmem, CUstream s,
			       void **params, void **extra)
{
	CUresult r = fk_check();
	struct fk_op o = { .kind = FK_NOP };
	unsigned long long len;

	if (r)
		return r;
	if (!f || !params || extra || !gx || !gy || !gz || !bx || !by || !bz ||
	    (unsigned long long)bx * by * bz > 1024 || shmem > 48 * 1024)
		return CUDA_ERROR_INVALID_VALUE;
	o.kind = f->kind;
	o.dst = (void *)(uintptr_t)*(CUdeviceptr *)params[0];
	atomic_fetch_add(&f->launches, 1);
	if (f->kind == FK_XXH64) {
		len = *(unsigned long long *)params[1];
		o.lanes = (uint64_t *)(uintptr_t)*(CUdeviceptr *)params[2];
		if (gx != 1 || bx * by * bz != 4 || !len ||
		    !fk_device_range((CUdeviceptr)(uintptr_t)o.dst, len * 16) ||
		    !fk_device_range((CUdeviceptr)(uintptr_t)o.lanes, 32))
			return CUDA_ERROR_INVALID_VALUE;
		o.len = len;
		return fk_queue(s, &o);
	}
	if (f->kind == FK_COMPARE) {
		o.src = (const void *)(uintptr_t)*(CUdeviceptr *)params[1];
		len = *(unsigned long long *)params[2];
		o.flag = (uint32_t *)(uintptr_t)*(CUdeviceptr *)params[3];
		if (!fk_device_range((CUdeviceptr)(uintptr_t)o.src, len) ||
		    !fk_device_range((CUdeviceptr)(uintptr_t)o.flag, sizeof(uint32_t)))
			return CUDA_ERROR_INVALID_VALUE;
	} else {
		len = *(unsigned long long *)params[1];
		o.value = (uint8_t)*(uint32_t *)params[2];
	}
	o.len = len;
	if (!fk_device_range((CUdeviceptr)(uintptr_t)o.dst, len))
		return CUDA_ERROR_INVALID_VALUE;
	return fk_queue(s, &o);
}

static const struct fk_error {
	CUresult r;
	const char *name, *text;
} fk_errors[] = {
	{ CUDA_SUCCESS, "CUDA_SUCCESS", "no error" },
	{ CUDA_ERROR_INVALID_VALUE, "CUDA_ERROR_INVALID_VALUE", "invalid argument" },
	{ CUDA_ERROR_OUT_OF_MEMORY, "CUDA_ERROR_OUT_OF_MEMORY", "out of memory" },
	{ CUDA_ERROR_DEVICE_UNAVAILABLE, "CUDA_ERROR_DEVICE_UNAVAILABLE",
	  "CUDA-capable device(s) is/are busy or unavailable" },
	{ CUDA_ERROR_NO_DEVICE, "CUDA_ERROR_NO_DEVICE",
	  "no CUDA-capable device is detected" },
	{ CUDA_ERROR_INVALID_CONTEXT, "CUDA_ERROR_INVALID_CONTEXT",
	  "invalid device context" },
	{ CUDA_ERROR_INVALID_PTX, "CUDA_ERROR_INVALID_PTX",
	  "a PTX JIT compilation failed" },
	{ CUDA_ERROR_INVALID_HANDLE, "CUDA_ERROR_INVALID_HANDLE",
	  "invalid resource handle" },
	{ CUDA_ERROR_NOT_FOUND, "CUDA_ERROR_NOT_FOUND", "named symbol not found" },
	{ CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED,
	  "CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED",
	  "part or all of the requested memory range is already mapped" },
	{ CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED,
	  "CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED",
	  "pointer does not correspond to a registered memory region" },
};

static const struct fk_error *fk_error_find(CUresult r)
{
	for (size_t i = 0; i < sizeof(fk_errors) / sizeof(fk_errors[0]); i++)
		if (fk_errors[i].r == r)
			return &fk_errors[i];
	return NULL;
}

FK_API CUresult cuGetErrorName(CUresult r, const char **out)
{
	const struct fk_error *e = fk_error_find(r);

	*out = e ? e->name : NULL;
	return e ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

FK_API CUresult cuGetErrorString(CUresult r, const char **out)
{
	const struct fk_error *e = fk_error_find(r);

	*out = e ? e->text : NULL;
	return e ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

/* For the tests: how many times kernel @name was launched. */
FK_API unsigned long fakecuda_launches(const char *name)
{
	for (size_t i = 0; i < sizeof(fk_funcs) / sizeof(fk_funcs[0]); i++)
		if (!strcmp(fk_funcs[i].name, name))
			return atomic_load(&fk_funcs[i].launches);
	return 0;
}
