/* SPDX-License-Identifier: MIT */
/*
 * device/opencl.c — device memory on any OpenCL device: a vendor's GPU,
 * or POCL's CPU devices (which is how every test run gets a real device
 * runtime, with real queues, events and run-time compiled kernels).
 *
 * Loading.  The ICD loader (libOpenCL.so.1, or the file named by env
 * HMMFS_OPENCL_LIB) is dlopen()ed at open and its entry points looked up
 * with dlsym(), so hmmfs builds without OpenCL headers and runs without
 * OpenCL: open then fails with a message that says how to get a runtime.
 * The library is never dlclose()d (runtimes keep threads of their own).
 *
 * Picking a device.  -o cl_platform=P picks the platform (default 0);
 * the device of unit k is gpus[k] among the platform's devices (-o gpu=,
 * as for cuda: gpu=0:1 is two devices).  Each unit has its own context.
 * POCL's "basic" device is refused: it runs commands inline in the
 * threads that queue them, and with several threads queueing it
 * deadlocked inside POCL 3.1 (the daemon hung under fio with 4 jobs).
 *
 * Memory.  One context per unit; device memory is cl_mem buffers of
 * @chunk bytes each (CL_DEVICE_MAX_MEM_ALLOC_SIZE, rounded down to whole
 * frames), so a device_cache larger than one allocation may be: address a
 * is byte a % chunk of buffer a / chunk, and every operation is split
 * where it crosses from one buffer into the next (ocl_piece()).
 *
 * Queues.  OCL_NQUEUES in-order queues; each thread is given one,
 * round-robin, the first time it queues anything, and queues all its
 * work there, so one thread's operations run in order (callers rely on
 * it, as with hostsim and cuda).  Kernel objects hold their arguments, so
 * each queue has its own, and its @klock is held from clSetKernelArg to
 * the enqueue.
 *
 * Fences.  A fence's half for this unit is f->priv[@slot], a pooled
 * struct ocl_fence: per queue, the event of the fence's latest operation
 * there (an in-order queue finishes in order, so that one event covers
 * the fence's earlier ones).  fence_wait waits those events, checks their
 * status, detaches the record and returns it to the pool.  compare sets a
 * flag word in a small buffer of the record; the wait reads it back.
 *
 * Errors.  Runtime results become -errno (ocl_errno()): host memory
 * -ENOMEM; a device that is gone or out of resources (CL_OUT_OF_RESOURCES,
 * CL_DEVICE_NOT_AVAILABLE, a failed event) -ENODEV, which makes
 * dev_fence_wait() mark the device lost; the backend then refuses all
 * work (@lost).  The fault point dev_lost makes that happen on purpose.
 * Each failure is logged with the runtime's error code.
 *
 * Locking.  The runtime is thread-safe.  Fence records come from the
 * unit's pool (@recs: device.h's dev_rec_pool, its lock a leaf); each
 * record's r.lock guards its events while threads queue on one fence; a
 * queue's @klock guards its kernel objects.  Order: record lock, then
 * klock.
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "device/device.h"
#include "device/opencl_int.h"
#include "device/xxh64_lanes.h"
#include "fault/fault.h"
#include "log/log.h"
#include "lib/compiler.h"
#include "lib/lockcheck.h"

#define OCL_NQUEUES	4
#define OCL_BLOCK	256		/* work-items per group */
#define OCL_MAX_GROUPS	1024		/* groups; the loops stride */
#define OCL_INSTALL	"install an OpenCL driver for your device, or POCL for " \
			"the CPU (Debian: apt install ocl-icd-libopencl1 pocl-opencl-icd)"

/*
 * The kernels: byte loops over a grid-stride index, so any length runs
 * in one launch.  HMMFS_CL_BROKEN (the cl_build fault) makes the build
 * fail for real, with the compiler's log.
 */
static const char ocl_source[] =
	"#ifdef HMMFS_CL_BROKEN\n"
	"this does not compile: the cl_build fault was injected\n"
	"#endif\n"
	"#define BYTE_OP(name, expr)						\\\n"
	"__kernel void name(__global uchar *p, ulong off, ulong len, uint v)	\\\n"
	"{									\\\n"
	"	for (ulong i = get_global_id(0); i < len; i += get_global_size(0)) \\\n"
	"		p[off + i] = (expr);					\\\n"
	"}\n"
	"BYTE_OP(" OCL_KERNEL_FILL ", (uchar)v)\n"
	"BYTE_OP(" OCL_KERNEL_XOR ", (uchar)(p[off + i] ^ v))\n"
	"BYTE_OP(" OCL_KERNEL_ADD ", (uchar)(p[off + i] + v))\n"
	"__kernel void " OCL_KERNEL_COMPARE "(__global const uchar *a, ulong aoff,\n"
	"		__global const uchar *b, ulong boff, ulong len,\n"
	"		__global uint *flag)\n"
	"{\n"
	"	for (ulong i = get_global_id(0); i < len; i += get_global_size(0))\n"
	"		if (a[aoff + i] != b[boff + i]) {\n"
	"			*flag = 1;\n"
	"			return;\n"
	"		}\n"
	"}\n"
	/* work-item t folds word t of each 32-byte stripe into lane t */
	"__kernel void " OCL_KERNEL_XXH64 "(__global const uchar *mem,\n"
	"		__global const ulong *spans, ulong first, ulong n,\n"
	"		__global ulong *lanes)\n"
	"{\n"
	"	uint t = get_global_id(0);\n"
	"	ulong acc;\n"
	"\n"
	"	if (t >= 4)\n"
	"		return;\n"
	"	acc = lanes[t];\n"
	"	for (ulong s = first; s < first + n; s++) {\n"
	"		ulong at = spans[2 * s] & 0xFFFFFFFFFFFFUL;\n"	/* see xaddr() */
	"		ulong end = at + spans[2 * s + 1];\n"
	"\n"
	"		for (ulong p = at + 8 * t; p < end; p += 32) {\n"
	"			acc += *(__global const ulong *)(mem + p) * 0xC2B2AE3D27D4EB4FUL;\n"
	"			acc = rotate(acc, (ulong)31) * 0x9E3779B185EBCA87UL;\n"
	"		}\n"
	"	}\n"
	"	lanes[t] = acc;\n"
	"}\n";

enum ocl_kernel { OCL_K_FILL, OCL_K_XOR, OCL_K_ADD, OCL_K_COMPARE, OCL_K_XXH64,
		  OCL_K_NR };

static const char *const ocl_kernel_names[OCL_K_NR] = {
	[OCL_K_FILL] = OCL_KERNEL_FILL, [OCL_K_XOR] = OCL_KERNEL_XOR,
	[OCL_K_ADD] = OCL_KERNEL_ADD, [OCL_K_COMPARE] = OCL_KERNEL_COMPARE,
	[OCL_K_XXH64] = OCL_KERNEL_XXH64,
};

/* The runtime's entry points; ocl_syms[] names them. */
struct ocl_api {
	cl_int (*GetPlatformIDs)(cl_uint, cl_platform_id *, cl_uint *);
	cl_int (*GetPlatformInfo)(cl_platform_id, cl_platform_info, size_t, void *,
				  size_t *);
	cl_int (*GetDeviceIDs)(cl_platform_id, cl_device_type, cl_uint,
			       cl_device_id *, cl_uint *);
	cl_int (*GetDeviceInfo)(cl_device_id, cl_device_info, size_t, void *, size_t *);
	cl_context (*CreateContext)(const cl_context_properties *, cl_uint,
				    const cl_device_id *, void *, void *, cl_int *);
	cl_int (*ReleaseContext)(cl_context);
	cl_command_queue (*CreateCommandQueue)(cl_context, cl_device_id,
					       cl_command_queue_properties, cl_int *);
	cl_int (*ReleaseCommandQueue)(cl_command_queue);
	cl_mem (*CreateBuffer)(cl_context, cl_mem_flags, size_t, void *, cl_int *);
	cl_int (*ReleaseMemObject)(cl_mem);
	cl_int (*EnqueueReadBuffer)(cl_command_queue, cl_mem, cl_uint, size_t, size_t,
				    void *, cl_uint, const cl_event *, cl_event *);
	cl_int (*EnqueueWriteBuffer)(cl_command_queue, cl_mem, cl_uint, size_t, size_t,
				     const void *, cl_uint, const cl_event *, cl_event *);
	cl_int (*EnqueueCopyBuffer)(cl_command_queue, cl_mem, cl_mem, size_t, size_t,
				    size_t, cl_uint, const cl_event *, cl_event *);
	cl_program (*CreateProgramWithSource)(cl_context, cl_uint, const char **,
					      const size_t *, cl_int *);
	cl_int (*BuildProgram)(cl_program, cl_uint, const cl_device_id *, const char *,
			       void *, void *);
	cl_int (*GetProgramBuildInfo)(cl_program, cl_device_id, cl_program_build_info,
				      size_t, void *, size_t *);
	cl_int (*ReleaseProgram)(cl_program);
	cl_kernel (*CreateKernel)(cl_program, const char *, cl_int *);
	cl_int (*ReleaseKernel)(cl_kernel);
	cl_int (*SetKernelArg)(cl_kernel, cl_uint, size_t, const void *);
	cl_int (*EnqueueNDRangeKernel)(cl_command_queue, cl_kernel, cl_uint,
				       const size_t *, const size_t *, const size_t *,
				       cl_uint, const cl_event *, cl_event *);
	cl_int (*Flush)(cl_command_queue);
	cl_int (*Finish)(cl_command_queue);
	cl_int (*WaitForEvents)(cl_uint, const cl_event *);
	cl_int (*ReleaseEvent)(cl_event);
};

static const struct {
	const char *name;
	size_t off;
} ocl_syms[] = {
#define OCL_SYM(field) { "cl" #field, offsetof(struct ocl_api, field) }
	OCL_SYM(GetPlatformIDs), OCL_SYM(GetPlatformInfo), OCL_SYM(GetDeviceIDs),
	OCL_SYM(GetDeviceInfo), OCL_SYM(CreateContext), OCL_SYM(ReleaseContext),
	OCL_SYM(CreateCommandQueue), OCL_SYM(ReleaseCommandQueue),
	OCL_SYM(CreateBuffer), OCL_SYM(ReleaseMemObject), OCL_SYM(EnqueueReadBuffer),
	OCL_SYM(EnqueueWriteBuffer), OCL_SYM(EnqueueCopyBuffer),
	OCL_SYM(CreateProgramWithSource), OCL_SYM(BuildProgram),
	OCL_SYM(GetProgramBuildInfo), OCL_SYM(ReleaseProgram), OCL_SYM(CreateKernel),
	OCL_SYM(ReleaseKernel), OCL_SYM(SetKernelArg), OCL_SYM(EnqueueNDRangeKernel),
	OCL_SYM(Flush), OCL_SYM(Finish), OCL_SYM(WaitForEvents), OCL_SYM(ReleaseEvent),
#undef OCL_SYM
};

/**
 * struct ocl_fence - this unit's half of a dev_fence (its priv[slot]).
 * @r:         the pool's part (device.h's struct dev_rec): r.lock guards
 *             the rest while threads queue on the fence.
 * @last:      per queue: the event of the fence's latest operation there.
 * @compared:  a compare was queued since the last wait.
 * @flag:      the compare kernel's flag word (NULL until the first);
 *             zero whenever the record is in the pool.
 * @xlanes, @xspans, @xpattern, @xtable: the xxh64 kernel's scratch
 *             (device: lanes, spans, the check's pattern; host: spans),
 *             made on the record's first hash.
 */
struct ocl_fence {
	struct dev_rec r;
	cl_event last[OCL_NQUEUES];
	bool compared;
	cl_mem flag;
	cl_mem xlanes, xspans, xpattern;
	uint64_t (*xtable)[2];
};

/* A queue and the kernel objects only it uses (@klock). */
struct ocl_queue {
	cl_command_queue q;
	pthread_mutex_t klock;
	cl_kernel k[OCL_K_NR];
};

/**
 * struct ocl_dev - an open OpenCL device.
 * @chunk, @nbufs, @buf: device memory, @nbufs buffers of @chunk bytes.
 * @name:    "platform / device", for hmmfsctl stats.
 * @lost:    the device is gone: every call fails with -ENODEV.
 * @xxh64_verdict: the xxh64 kernel's check: 0 not run yet, 1 passed,
 *           -1 failed (hashes go through the host).
 */
struct ocl_dev {
	struct ocl_api api;
	char lib[256];
	char name[DEV_NAME_MAX];
	unsigned int slot;
	cl_device_id dev;
	cl_context ctx;
	cl_program prog;
	struct ocl_queue queue[OCL_NQUEUES];
	unsigned int nqueues;
	size_t chunk;
	unsigned int nbufs;
	cl_mem *buf;
	struct dev_rec_pool recs;
	_Atomic bool lost;
	_Atomic int xxh64_verdict;
};

/* Which queue this thread uses (index + 1; 0: none yet). */
static _Thread_local unsigned int ocl_tls_queue;
static _Atomic unsigned int ocl_next_queue;

static unsigned int ocl_thread_queue(void)
{
	if (!ocl_tls_queue)
		ocl_tls_queue = atomic_fetch_add(&ocl_next_queue, 1) % OCL_NQUEUES + 1;
	return ocl_tls_queue - 1;
}

/* A runtime result as -errno; a lost device (-ENODEV) stays lost. */
static int ocl_errno(struct ocl_dev *od, cl_int r)
{
	switch (r) {
	case CL_SUCCESS:
		return 0;
	case CL_OUT_OF_HOST_MEMORY:
		return -ENOMEM;
	case CL_MEM_OBJECT_ALLOCATION_FAILURE:
	case CL_OUT_OF_RESOURCES:
	case CL_DEVICE_NOT_AVAILABLE:
	case CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST:
		atomic_store(&od->lost, true);
		return -ENODEV;
	default:
		return -EIO;
	}
}

static int ocl_fail(struct ocl_dev *od, const char *what, cl_int r)
{
	log_err("opencl: %s: %s: OpenCL error %d", od->name, what, (int)r);
	return ocl_errno(od, r);
}

/*
 * A small buffer of our own could not be made: short of memory, which
 * the caller may survive, not a lost device.
 */
static int ocl_fail_alloc(struct ocl_dev *od, const char *what, cl_int r)
{
	log_err("opencl: %s: %s: OpenCL error %d", od->name, what, (int)r);
	if (r == CL_MEM_OBJECT_ALLOCATION_FAILURE || r == CL_OUT_OF_RESOURCES ||
	    r == CL_OUT_OF_HOST_MEMORY)
		return -ENOMEM;
	return ocl_errno(od, r);
}

/* A failure while queueing on @f: a lost device is kept for its wait. */
static int ocl_fail_queue(struct ocl_dev *od, struct dev_fence *f,
			  const char *what, cl_int r)
{
	int ret = ocl_fail(od, what, r), none = 0;

	if (ret == -ENODEV)
		atomic_compare_exchange_strong(&f->error, &none, ret);
	return ret;
}

/* Before queueing: is the device still there?  (Also the dev_lost fault.) */
static int ocl_usable(struct ocl_dev *od, struct dev_fence *f)
{
	if (fault_hit(FAULT_DEV_LOST, NULL)) {
		log_err("opencl: %s: lost (dev_lost fault injected)", od->name);
		atomic_store(&od->lost, true);
	}
	if (!atomic_load(&od->lost))
		return 0;
	if (f) {
		int none = 0;

		atomic_compare_exchange_strong(&f->error, &none, -ENODEV);
	}
	return -ENODEV;
}

/* @f's record for this unit, attached on first use. */
static struct ocl_fence *ocl_fence_get(struct ocl_dev *od, struct dev_fence *f)
{
	return (struct ocl_fence *)dev_rec_get(&od->recs, f, od->slot);
}

/* Before queueing on @f: the record, locked; or NULL with *@ret. */
static struct ocl_fence *ocl_queue_begin(struct ocl_dev *od, struct dev_fence *f,
					 int *ret)
{
	struct ocl_fence *rec;

	*ret = ocl_usable(od, f);
	if (*ret)
		return NULL;
	rec = ocl_fence_get(od, f);
	if (!rec) {
		*ret = -ENOMEM;
		return NULL;
	}
	pthread_mutex_lock(&rec->r.lock);
	return rec;
}

/* @ev is the fence's latest operation on queue @q.  Context: rec locked. */
static void ocl_note(struct ocl_dev *od, struct ocl_fence *rec, unsigned int q,
		     cl_event ev, struct dev_fence *f)
{
	if (rec->last[q])
		od->api.ReleaseEvent(rec->last[q]);
	else
		atomic_fetch_add_explicit(&f->pending, 1, memory_order_relaxed);
	rec->last[q] = ev;
}

/*
 * The piece of [@a, @a + @len) that lies in one buffer: its buffer and
 * offset there; returns its length.
 */
static size_t ocl_piece(const struct ocl_dev *od, dev_addr_t a, size_t len,
			cl_mem *buf, size_t *off)
{
	size_t room;

	*buf = od->buf[a / od->chunk];
	*off = a % od->chunk;
	room = od->chunk - *off;
	return len < room ? len : room;
}

/* Queue one copy, split at buffer boundaries.  Context: rec locked. */
static int ocl_copy_locked(struct ocl_dev *od, struct ocl_fence *rec,
			   const struct dev_copy *cp, struct dev_fence *f)
{
	unsigned int q = ocl_thread_queue();
	cl_command_queue cq = od->queue[q].q;
	size_t done = 0;

	mutex_assert_held(&rec->r.lock);
	while (done < cp->len) {
		size_t n = cp->len - done, doff, soff;
		cl_mem dbuf, sbuf;
		const char *what;
		cl_event ev = NULL;
		cl_int r;

		if (cp->dir == DEV_H2D) {
			what = "clEnqueueWriteBuffer";
			n = ocl_piece(od, cp->dst + done, n, &dbuf, &doff);
			r = od->api.EnqueueWriteBuffer(cq, dbuf, CL_FALSE, doff, n,
						       (char *)cp->host + done, 0,
						       NULL, &ev);
		} else if (cp->dir == DEV_D2H) {
			what = "clEnqueueReadBuffer";
			n = ocl_piece(od, cp->src + done, n, &sbuf, &soff);
			r = od->api.EnqueueReadBuffer(cq, sbuf, CL_FALSE, soff, n,
						      (char *)cp->host + done, 0,
						      NULL, &ev);
		} else {
			what = "clEnqueueCopyBuffer";
			n = ocl_piece(od, cp->src + done, n, &sbuf, &soff);
			n = ocl_piece(od, cp->dst + done, n, &dbuf, &doff);
			r = od->api.EnqueueCopyBuffer(cq, sbuf, dbuf, soff, doff, n, 0,
						      NULL, &ev);
		}
		if (r)
			return ocl_fail_queue(od, f, what, r);
		ocl_note(od, rec, q, ev, f);
		done += n;
	}
	return 0;
}

static int ocl_copy(struct dev_unit *d, const struct dev_copy *cp,
		    struct dev_fence *f)
{
	struct ocl_dev *od = d->priv;
	struct ocl_fence *rec;
	int ret;

	rec = ocl_queue_begin(od, f, &ret);
	if (!rec)
		return ret;
	ret = ocl_copy_locked(od, rec, cp, f);
	pthread_mutex_unlock(&rec->r.lock);
	return ret;
}

/*
 * Launch kernel @k of this thread's queue over @len bytes; @set sets its
 * arguments (under the queue's klock).  Context: rec locked.
 */
static int ocl_launch_locked(struct ocl_dev *od, struct ocl_fence *rec,
			     enum ocl_kernel k, size_t len,
			     cl_int (*set)(struct ocl_dev *, cl_kernel, const void *),
			     const void *args, struct dev_fence *f)
{
	unsigned int q = ocl_thread_queue();
	struct ocl_queue *oq = &od->queue[q];
	size_t groups = (len + OCL_BLOCK - 1) / OCL_BLOCK, global;
	cl_event ev = NULL;
	cl_int r;

	mutex_assert_held(&rec->r.lock);
	if (groups > OCL_MAX_GROUPS)
		groups = OCL_MAX_GROUPS;
	global = (groups ? groups : 1) * OCL_BLOCK;
	pthread_mutex_lock(&oq->klock);
	r = set(od, oq->k[k], args);
	if (!r)
		r = od->api.EnqueueNDRangeKernel(oq->q, oq->k[k], 1, NULL, &global,
						 NULL, 0, NULL, &ev);	/* its own group size */
	pthread_mutex_unlock(&oq->klock);
	if (r)
		return ocl_fail_queue(od, f, ocl_kernel_names[k], r);
	ocl_note(od, rec, q, ev, f);
	return 0;
}

struct ocl_byte_args {
	cl_mem buf;
	cl_ulong off, len;
	cl_uint v;
};

static cl_int ocl_set_byte_args(struct ocl_dev *od, cl_kernel k, const void *p)
{
	const struct ocl_byte_args *a = p;
	cl_int r = od->api.SetKernelArg(k, 0, sizeof(a->buf), &a->buf);

	r = r ? r : od->api.SetKernelArg(k, 1, sizeof(a->off), &a->off);
	r = r ? r : od->api.SetKernelArg(k, 2, sizeof(a->len), &a->len);
	return r ? r : od->api.SetKernelArg(k, 3, sizeof(a->v), &a->v);
}

static int ocl_compute(struct dev_unit *d, enum dev_op_kind op, dev_addr_t dst,
		       size_t len, uint64_t value, struct dev_fence *f)
{
	static const enum ocl_kernel kernel[DEV_OP_NR] = {
		[DEV_OP_FILL] = OCL_K_FILL, [DEV_OP_XOR] = OCL_K_XOR,
		[DEV_OP_ADD] = OCL_K_ADD,
	};
	struct ocl_dev *od = d->priv;
	struct ocl_fence *rec;
	size_t done = 0;
	int ret;

	rec = ocl_queue_begin(od, f, &ret);
	if (!rec)
		return ret;
	while (!ret && done < len) {
		struct ocl_byte_args a = { .v = (uint8_t)value };
		size_t off, n = ocl_piece(od, dst + done, len - done, &a.buf, &off);

		a.off = off;
		a.len = n;
		ret = ocl_launch_locked(od, rec, kernel[op], n, ocl_set_byte_args, &a, f);
		done += n;
	}
	pthread_mutex_unlock(&rec->r.lock);
	return ret;
}

struct ocl_cmp_args {
	cl_mem a, b, flag;
	cl_ulong aoff, boff, len;
};

static cl_int ocl_set_cmp_args(struct ocl_dev *od, cl_kernel k, const void *p)
{
	const struct ocl_cmp_args *a = p;
	cl_int r = od->api.SetKernelArg(k, 0, sizeof(a->a), &a->a);

	r = r ? r : od->api.SetKernelArg(k, 1, sizeof(a->aoff), &a->aoff);
	r = r ? r : od->api.SetKernelArg(k, 2, sizeof(a->b), &a->b);
	r = r ? r : od->api.SetKernelArg(k, 3, sizeof(a->boff), &a->boff);
	r = r ? r : od->api.SetKernelArg(k, 4, sizeof(a->len), &a->len);
	return r ? r : od->api.SetKernelArg(k, 5, sizeof(a->flag), &a->flag);
}

/* The record's flag word, created zeroed on its first compare. */
static int ocl_flag(struct ocl_dev *od, struct ocl_fence *rec)
{
	uint32_t zero = 0;
	cl_int r;

	if (rec->flag)
		return 0;
	rec->flag = od->api.CreateBuffer(od->ctx, CL_MEM_READ_WRITE, sizeof(zero),
					 NULL, &r);
	if (r) {
		rec->flag = NULL;
		return ocl_fail_alloc(od, "the compare flag", r);
	}
	r = od->api.EnqueueWriteBuffer(od->queue[0].q, rec->flag, CL_TRUE, 0,
				       sizeof(zero), &zero, 0, NULL, NULL);
	if (r) {
		od->api.ReleaseMemObject(rec->flag);
		rec->flag = NULL;
		return ocl_fail(od, "the compare flag", r);
	}
	return 0;
}

static int ocl_compare(struct dev_unit *d, dev_addr_t a, dev_addr_t b, size_t len,
		       struct dev_fence *f)
{
	struct ocl_dev *od = d->priv;
	struct ocl_fence *rec;
	size_t done = 0;
	int ret;

	rec = ocl_queue_begin(od, f, &ret);
	if (!rec)
		return ret;
	ret = ocl_flag(od, rec);
	if (!ret)
		rec->compared = true;	/* the wait reads the flag and resets it */
	while (!ret && done < len) {
		struct ocl_cmp_args c = { .flag = rec->flag };
		size_t aoff, boff, n = ocl_piece(od, a + done, len - done, &c.a, &aoff);

		n = ocl_piece(od, b + done, n, &c.b, &boff);
		c.aoff = aoff;
		c.boff = boff;
		c.len = n;
		ret = ocl_launch_locked(od, rec, OCL_K_COMPARE, n, ocl_set_cmp_args, &c, f);
		done += n;
	}
	pthread_mutex_unlock(&rec->r.lock);
	return ret;
}

/* After @rec's compares finished: the flag into @f, and back to 0. */
static int ocl_collect(struct ocl_dev *od, struct ocl_fence *rec, struct dev_fence *f)
{
	cl_command_queue q = od->queue[ocl_thread_queue()].q;
	uint32_t v = 0;
	cl_int r;

	r = od->api.EnqueueReadBuffer(q, rec->flag, CL_TRUE, 0, sizeof(v), &v, 0,
				      NULL, NULL);
	if (!r && v) {
		atomic_store(&f->result, 1);
		v = 0;
		r = od->api.EnqueueWriteBuffer(q, rec->flag, CL_TRUE, 0, sizeof(v), &v,
					       0, NULL, NULL);
	}
	return r ? ocl_fail(od, "reading the compare flag", r) : 0;
}

static int ocl_fence_wait(struct dev_unit *d, struct dev_fence *f)
{
	struct ocl_dev *od = d->priv;
	struct ocl_fence *rec;
	int ret = 0, first;

	rec = (struct ocl_fence *)dev_rec_detach(f, od->slot);
	if (rec) {
		pthread_mutex_lock(&rec->r.lock);
		for (unsigned int q = 0; q < OCL_NQUEUES; q++) {
			cl_int r;

			if (!rec->last[q])
				continue;
			r = od->api.WaitForEvents(1, &rec->last[q]);
			if (r && !ret)
				ret = ocl_fail(od, "waiting for the device", r);
			od->api.ReleaseEvent(rec->last[q]);
			rec->last[q] = NULL;
		}
		if (rec->compared) {	/* also after an error: the flag goes back to 0 */
			int c = ocl_collect(od, rec, f);

			ret = ret ? ret : c;
		}
		rec->compared = false;
		pthread_mutex_unlock(&rec->r.lock);
		dev_rec_put(&od->recs, &rec->r);
	}
	atomic_store_explicit(&f->pending, 0, memory_order_relaxed);
	first = atomic_exchange(&f->error, 0);
	return first ? first : ret;
}

/* The synchronous path: queued on this thread's queue, waited at once. */
static int ocl_copy_sync(struct dev_unit *d, const struct dev_copy *cp, size_t n)
{
	struct dev_fence f = DEV_FENCE_INIT;
	int ret = 0, r;

	for (size_t i = 0; i < n && !ret; i++)
		ret = ocl_copy(d, &cp[i], &f);
	r = ocl_fence_wait(d, &f);
	return ret ? ret : r;
}

/*
 * XXH64 on the device (the xxh64 op): the kernel folds the lanes over
 * the whole stripes of a list of spans, device/xxh64_lanes.c does the
 * rest.  An address given to xxh64_lanes.c is a buffer number (above
 * OCL_XADDR_SHIFT; @nbufs: the check's pattern) and an offset in it.
 * Everything runs on this thread's queue and is waited for before the op
 * returns; the fence record lends its scratch.
 */
#define OCL_XADDR_SHIFT	48
#define OCL_XXH64_SPANS	1024

struct ocl_xxh64_ctx {
	struct ocl_dev *od;
	struct dev_fence *f;
	struct ocl_fence *rec;
	cl_command_queue q;
};

static cl_mem xaddr_buf(const struct ocl_xxh64_ctx *x, uint64_t a, size_t *off)
{
	unsigned int b = (unsigned int)(a >> OCL_XADDR_SHIFT);

	*off = a & ((1ull << OCL_XADDR_SHIFT) - 1);
	return b < x->od->nbufs ? x->od->buf[b] : x->rec->xpattern;
}

static uint64_t xaddr(const struct ocl_dev *od, dev_addr_t a)
{
	return (a / od->chunk) << OCL_XADDR_SHIFT | a % od->chunk;
}

struct ocl_xxh64_args {
	cl_mem mem, spans, lanes;
	cl_ulong first, n;
};

static cl_int ocl_set_xxh64_args(struct ocl_dev *od, cl_kernel k, const void *p)
{
	const struct ocl_xxh64_args *a = p;
	cl_int r = od->api.SetKernelArg(k, 0, sizeof(a->mem), &a->mem);

	r = r ? r : od->api.SetKernelArg(k, 1, sizeof(a->spans), &a->spans);
	r = r ? r : od->api.SetKernelArg(k, 2, sizeof(a->first), &a->first);
	r = r ? r : od->api.SetKernelArg(k, 3, sizeof(a->n), &a->n);
	return r ? r : od->api.SetKernelArg(k, 4, sizeof(a->lanes), &a->lanes);
}

/* One launch per run of spans in one buffer; the lanes stay on the device. */
static int ocl_xxh64_fold(void *ctx, const uint64_t (*sp)[2], size_t n,
			  uint64_t lanes[4])
{
	struct ocl_xxh64_ctx *x = ctx;
	struct ocl_dev *od = x->od;
	struct ocl_queue *oq = &od->queue[ocl_thread_queue()];
	size_t global = 4;
	cl_int r;

	r = od->api.EnqueueWriteBuffer(x->q, x->rec->xlanes, CL_FALSE, 0,
				       4 * sizeof(uint64_t), lanes, 0, NULL, NULL);
	if (!r)	/* as they are: the kernel drops the buffer number */
		r = od->api.EnqueueWriteBuffer(x->q, x->rec->xspans, CL_FALSE, 0,
					       n * sizeof(*sp), sp, 0, NULL, NULL);
	for (size_t i = 0, j; !r && i < n; i = j) {
		struct ocl_xxh64_args a = { .spans = x->rec->xspans,
					    .lanes = x->rec->xlanes, .first = i };
		size_t off;

		a.mem = xaddr_buf(x, sp[i][0], &off);
		for (j = i + 1; j < n && sp[j][0] >> OCL_XADDR_SHIFT ==
					 sp[i][0] >> OCL_XADDR_SHIFT; j++)
			;
		a.n = j - i;
		pthread_mutex_lock(&oq->klock);
		r = ocl_set_xxh64_args(od, oq->k[OCL_K_XXH64], &a);
		if (!r)
			r = od->api.EnqueueNDRangeKernel(x->q, oq->k[OCL_K_XXH64], 1, NULL,
							 &global, NULL, 0, NULL, NULL);
		pthread_mutex_unlock(&oq->klock);
	}
	if (!r)
		r = od->api.EnqueueReadBuffer(x->q, x->rec->xlanes, CL_TRUE, 0,
					      4 * sizeof(uint64_t), lanes, 0, NULL, NULL);
	if (r)	/* the writes queued read @lanes and the table: let them end */
		od->api.Finish(x->q);
	return r ? ocl_fail_queue(od, x->f, "the xxh64 kernel", r) : 0;
}

static int ocl_xxh64_read(void *ctx, uint64_t a, void *buf, size_t len)
{
	struct ocl_xxh64_ctx *x = ctx;
	size_t off;
	cl_mem m = xaddr_buf(x, a, &off);
	cl_int r = x->od->api.EnqueueReadBuffer(x->q, m, CL_TRUE, off, len, buf, 0,
						NULL, NULL);

	return r ? ocl_fail_queue(x->od, x->f, "clEnqueueReadBuffer (xxh64)", r) : 0;
}

static int ocl_xxh64_write(void *ctx, uint64_t a, const void *buf, size_t len)
{
	struct ocl_xxh64_ctx *x = ctx;
	size_t off;
	cl_mem m = xaddr_buf(x, a, &off);
	cl_int r = x->od->api.EnqueueWriteBuffer(x->q, m, CL_TRUE, off, len, buf, 0,
						 NULL, NULL);

	return r ? ocl_fail_queue(x->od, x->f, "clEnqueueWriteBuffer (xxh64)", r) : 0;
}

static const struct xl_ops ocl_xl_ops = {
	.fold = ocl_xxh64_fold, .read = ocl_xxh64_read, .write = ocl_xxh64_write,
};

/* The record's scratch, made on its first hash. */
static int ocl_xxh64_scratch(struct ocl_dev *od, struct ocl_fence *rec)
{
	const struct { cl_mem *m; size_t len; } want[] = {
		{ &rec->xlanes, 4 * sizeof(uint64_t) },
		{ &rec->xspans, OCL_XXH64_SPANS * 2 * sizeof(uint64_t) },
		{ &rec->xpattern, XL_CHECK_BYTES },
	};
	cl_int r = CL_SUCCESS;

	if (!rec->xtable &&
	    !(rec->xtable = malloc(OCL_XXH64_SPANS * sizeof(*rec->xtable))))
		return -ENOMEM;
	for (size_t i = 0; i < ARRAY_SIZE(want); i++) {
		if (*want[i].m)
			continue;
		*want[i].m = od->api.CreateBuffer(od->ctx, CL_MEM_READ_WRITE, want[i].len,
						  NULL, &r);
		if (r) {
			*want[i].m = NULL;
			return ocl_fail_alloc(od, "the xxh64 scratch", r);
		}
	}
	return 0;
}

/*
 * Before the first hash on a device, check the kernel against libxxhash
 * (xl_check()).  Return: 0 if it may be used, -EOPNOTSUPP if not, or the
 * device's -errno (the check runs again next time).
 */
static int ocl_xxh64_check(struct ocl_xxh64_ctx *x)
{
	char who[DEV_NAME_MAX + 16];

	snprintf(who, sizeof(who), "opencl: %s", x->od->name);
	return xl_check_once(&x->od->xxh64_verdict, who, &ocl_xl_ops, x,
			     (uint64_t)x->od->nbufs << OCL_XADDR_SHIFT, x->rec->xtable,
			     OCL_XXH64_SPANS);
}

static int ocl_xxh64(struct dev_unit *d, const struct dev_span *sp, size_t n,
		     void *state, struct dev_fence *f)
{
	struct ocl_dev *od = d->priv;
	struct ocl_xxh64_ctx x = { .od = od, .f = f,
				   .q = od->queue[ocl_thread_queue()].q };
	struct xl_run run = { .ops = &ocl_xl_ops, .ctx = &x, .st = state,
			      .max = OCL_XXH64_SPANS };
	int ret;

	if (atomic_load(&od->xxh64_verdict) < 0)
		return -EOPNOTSUPP;	/* device.c hashes through host copies */
	x.rec = ocl_queue_begin(od, f, &ret);
	if (!x.rec)
		return ret;
	ret = ocl_xxh64_scratch(od, x.rec);
	if (!ret)
		ret = ocl_xxh64_check(&x);
	run.spans = x.rec->xtable;
	for (size_t i = 0; i < n && !ret; i++)	/* a piece per buffer it is in */
		for (size_t done = 0, piece, off; !ret && done < sp[i].len; done += piece) {
			piece = ocl_piece(od, sp[i].addr + done, sp[i].len - done,
					  &(cl_mem){ 0 }, &off);
			ret = xl_feed(&run, xaddr(od, sp[i].addr + done), piece);
		}
	if (!ret)
		ret = xl_flush(&run);
	pthread_mutex_unlock(&x.rec->r.lock);
	return ret;
}

/* ---- open and close ---- */

static int ocl_resolve(struct ocl_dev *od, void *lib, char *err, size_t errlen)
{
	for (size_t i = 0; i < ARRAY_SIZE(ocl_syms); i++) {
		void *p = dlsym(lib, ocl_syms[i].name);

		if (!p) {
			snprintf(err, errlen, "opencl: %s has no %s: not an OpenCL "
				 "ICD loader", od->lib, ocl_syms[i].name);
			return -ENOSYS;
		}
		memcpy((char *)&od->api + ocl_syms[i].off, &p, sizeof(p));
	}
	return 0;
}

/* The platform and device @cfg names; their names into od->name. */
static int ocl_pick(struct ocl_dev *od, const struct device_config *cfg,
		    char *err, size_t errlen)
{
	cl_platform_id plat[16];
	cl_device_id devs[64];
	cl_uint nplat = 0, ndev = 0;
	char pname[64] = "?", dname[96] = "?";
	cl_int r;

	r = od->api.GetPlatformIDs(16, plat, &nplat);
	if (nplat > 16)
		nplat = 16;	/* the rest are out of reach of cl_platform= */
	if (r == CL_PLATFORM_NOT_FOUND_KHR || (!r && !nplat)) {
		const char *vendors = getenv("OCL_ICD_VENDORS");	/* the loader's */

		snprintf(err, errlen, "opencl: no OpenCL platform: the ICD loader (%s) "
			 "found no driver in %s; %s", od->lib,
			 vendors && *vendors ? vendors : "/etc/OpenCL/vendors",
			 OCL_INSTALL);
		return -ENODEV;
	}
	if (r) {
		snprintf(err, errlen, "opencl: clGetPlatformIDs: OpenCL error %d", (int)r);
		return -ENODEV;
	}
	if (cfg->cl_platform >= (int)nplat || cfg->cl_platform < 0) {
		snprintf(err, errlen, "opencl: no platform %d (%u found; cl_platform= "
			 "picks one)", cfg->cl_platform, nplat);
		return -ENODEV;
	}
	od->api.GetPlatformInfo(plat[cfg->cl_platform], CL_PLATFORM_NAME,
				sizeof(pname) - 1, pname, NULL);
	r = od->api.GetDeviceIDs(plat[cfg->cl_platform], CL_DEVICE_TYPE_ALL, 64, devs,
				 &ndev);
	if (ndev > 64)
		ndev = 64;
	if (r == CL_DEVICE_NOT_FOUND)
		ndev = 0;
	else if (r) {
		snprintf(err, errlen, "opencl: %s: clGetDeviceIDs: OpenCL error %d",
			 pname, (int)r);
		return -ENODEV;
	}
	if (cfg->gpu < 0 || cfg->gpu >= (int)ndev) {
		snprintf(err, errlen, "opencl: platform %d (%s) has no device %d (%u "
			 "found; gpu= picks one)", cfg->cl_platform, pname, cfg->gpu, ndev);
		return -ENODEV;
	}
	od->dev = devs[cfg->gpu];
	od->api.GetDeviceInfo(od->dev, CL_DEVICE_NAME, sizeof(dname) - 1, dname, NULL);
	snprintf(od->name, sizeof(od->name), "%s / %s", pname, dname);
	if (strstr(pname, "Portable Computing Language") && !strncmp(dname, "basic", 5)) {
		snprintf(err, errlen, "opencl: POCL's basic device deadlocks when "
			 "several threads queue at once (seen with POCL 3.1): use "
			 "POCL_DEVICES=pthread");
		return -ENODEV;
	}
	return 0;
}

/* Device memory: buffers of whole frames, each at most one allocation. */
static int ocl_alloc(struct ocl_dev *od, const struct device_config *cfg,
		     char *err, size_t errlen)
{
	cl_ulong max = 0;
	cl_int r;

	od->api.GetDeviceInfo(od->dev, CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof(max),
			      &max, NULL);
	if (getenv("HMMFS_OPENCL_CHUNK"))	/* tests: several buffers */
		max = strtoull(getenv("HMMFS_OPENCL_CHUNK"), NULL, 0);
	od->chunk = max < cfg->mem_bytes ? max / cfg->frame_size * cfg->frame_size :
					   cfg->mem_bytes;
	if (!od->chunk) {
		snprintf(err, errlen, "opencl: %s: allocations of at most %llu bytes, "
			 "under one frame", od->name, (unsigned long long)max);
		return -ENODEV;
	}
	if ((cfg->mem_bytes + od->chunk - 1) / od->chunk >= 1u << 15) {
		snprintf(err, errlen, "opencl: %s: allocations of at most %llu bytes "
			 "would take over 32768 buffers", od->name, (unsigned long long)max);
		return -ENODEV;
	}
	od->nbufs = (unsigned int)((cfg->mem_bytes + od->chunk - 1) / od->chunk);
	od->buf = calloc(od->nbufs, sizeof(*od->buf));
	if (!od->buf)
		return -ENOMEM;
	for (unsigned int i = 0; i < od->nbufs; i++) {
		size_t len = i + 1 < od->nbufs ? od->chunk :
			     cfg->mem_bytes - (size_t)i * od->chunk;

		od->buf[i] = od->api.CreateBuffer(od->ctx, CL_MEM_READ_WRITE, len, NULL, &r);
		if (r) {
			snprintf(err, errlen, "opencl: %s: a buffer of %zu bytes (%u of "
				 "%u): OpenCL error %d", od->name, len, i + 1, od->nbufs,
				 (int)r);
			return r == CL_OUT_OF_HOST_MEMORY ? -ENOMEM : -ENODEV;
		}
	}
	return 0;
}

/* Build the kernels; a failure's message carries the compiler's log. */
static int ocl_build(struct ocl_dev *od, char *err, size_t errlen)
{
	const char *src = ocl_source;
	const char *opts = fault_hit(FAULT_CL_BUILD, NULL) ? "-DHMMFS_CL_BROKEN" : "";
	char log[1024] = "";
	cl_int r;

	od->prog = od->api.CreateProgramWithSource(od->ctx, 1, &src, NULL, &r);
	if (r) {
		snprintf(err, errlen, "opencl: %s: clCreateProgramWithSource: OpenCL "
			 "error %d", od->name, (int)r);
		return -ENODEV;
	}
	r = od->api.BuildProgram(od->prog, 1, &od->dev, opts, NULL, NULL);
	if (r) {
		od->api.GetProgramBuildInfo(od->prog, od->dev, CL_PROGRAM_BUILD_LOG,
					    sizeof(log) - 1, log, NULL);
		for (char *p = log; *p; p++)	/* one line in the log */
			if (*p == '\n')
				*p = strchr(" \n", p[1]) ? ' ' : '|';
		snprintf(err, errlen, "opencl: %s: building the kernels failed (OpenCL "
			 "error %d); the compiler said: %s", od->name, (int)r, log);
		return -ENODEV;
	}
	return 0;
}

static int ocl_queues(struct ocl_dev *od, char *err, size_t errlen)
{
	cl_int r = CL_SUCCESS;

	for (; od->nqueues < OCL_NQUEUES; od->nqueues++) {
		struct ocl_queue *oq = &od->queue[od->nqueues];

		oq->q = od->api.CreateCommandQueue(od->ctx, od->dev, 0, &r);
		for (int k = 0; !r && k < OCL_K_NR; k++)
			oq->k[k] = od->api.CreateKernel(od->prog, ocl_kernel_names[k], &r);
		if (r) {
			snprintf(err, errlen, "opencl: %s: a queue and its kernels: "
				 "OpenCL error %d", od->name, (int)r);
			for (int k = 0; k < OCL_K_NR; k++)
				if (oq->k[k])
					od->api.ReleaseKernel(oq->k[k]);
			if (oq->q)
				od->api.ReleaseCommandQueue(oq->q);
			return -ENODEV;
		}
		pthread_mutex_init(&oq->klock, NULL);
	}
	return 0;
}

/* At close: a record's events and buffers. */
static void ocl_rec_release(struct dev_rec *r, void *arg)
{
	struct ocl_fence *rec = (struct ocl_fence *)r;
	struct ocl_dev *od = arg;
	cl_mem mems[] = { rec->flag, rec->xlanes, rec->xspans, rec->xpattern };

	for (int q = 0; q < OCL_NQUEUES; q++)
		if (rec->last[q])
			od->api.ReleaseEvent(rec->last[q]);
	for (size_t i = 0; i < ARRAY_SIZE(mems); i++)
		if (mems[i])
			od->api.ReleaseMemObject(mems[i]);
	free(rec->xtable);
}

static void ocl_free(struct ocl_dev *od)
{
	for (unsigned int i = 0; i < od->nqueues; i++) {
		struct ocl_queue *oq = &od->queue[i];

		if (!atomic_load(&od->lost))
			od->api.Finish(oq->q);
		for (int k = 0; k < OCL_K_NR; k++)
			od->api.ReleaseKernel(oq->k[k]);
		od->api.ReleaseCommandQueue(oq->q);
		pthread_mutex_destroy(&oq->klock);
	}
	dev_rec_pool_destroy(&od->recs, ocl_rec_release, od);
	for (unsigned int i = 0; od->buf && i < od->nbufs; i++)
		if (od->buf[i])
			od->api.ReleaseMemObject(od->buf[i]);
	free(od->buf);
	if (od->prog)
		od->api.ReleaseProgram(od->prog);
	if (od->ctx)
		od->api.ReleaseContext(od->ctx);
	free(od);
}

static int ocl_open(struct dev_unit *d, const struct device_config *cfg,
		    char *err, size_t errlen)
{
	const char *env = getenv("HMMFS_OPENCL_LIB");
	struct ocl_dev *od = calloc(1, sizeof(*od));
	void *lib;
	cl_int r;
	int ret;

	if (!od)
		return -ENOMEM;
	dev_rec_pool_init(&od->recs, sizeof(struct ocl_fence));
	snprintf(od->lib, sizeof(od->lib), "%s", env && *env ? env : "libOpenCL.so.1");
	snprintf(od->name, sizeof(od->name), "device %d", cfg->gpu);
	od->slot = d->id;
	lib = dlopen(od->lib, RTLD_NOW | RTLD_LOCAL);
	if (!lib) {
		snprintf(err, errlen, "opencl: cannot load the OpenCL ICD loader: %s; %s",
			 dlerror(), OCL_INSTALL);
		ret = -ENODEV;
		goto out_free;
	}
	ret = ocl_resolve(od, lib, err, errlen);
	if (!ret)
		ret = ocl_pick(od, cfg, err, errlen);
	if (ret)
		goto out_free;
	od->ctx = od->api.CreateContext(NULL, 1, &od->dev, NULL, NULL, &r);
	if (r) {
		snprintf(err, errlen, "opencl: %s: clCreateContext: OpenCL error %d",
			 od->name, (int)r);
		od->ctx = NULL;
		ret = -ENODEV;
		goto out_free;
	}
	ret = ocl_alloc(od, cfg, err, errlen);
	if (!ret)
		ret = ocl_build(od, err, errlen);
	if (!ret)
		ret = ocl_queues(od, err, errlen);
	if (ret)
		goto out_free;
	snprintf(d->name, sizeof(d->name), "%s", od->name);
	d->priv = od;
	return 0;

out_free:
	ocl_free(od);
	return ret;
}

static void ocl_close(struct dev_unit *d)
{
	ocl_free(d->priv);
}

const struct dev_ops dev_opencl_ops = {
	.name		= "opencl",
	.version	= DEV_OPS_VERSION,
	.open		= ocl_open,
	.close		= ocl_close,
	.copy		= ocl_copy,
	.copy_sync	= ocl_copy_sync,
	.compute	= ocl_compute,
	.compare	= ocl_compare,
	.xxh64		= ocl_xxh64,
	.fence_wait	= ocl_fence_wait,
};
