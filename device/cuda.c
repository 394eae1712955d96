/* SPDX-License-Identifier: MIT */
/*
 * device/cuda.c — device memory on an NVIDIA GPU through the CUDA driver API.
 *
 * Loading.  The driver (libcuda.so.1, or the file named by env
 * HMMFS_CUDA_LIB, which the tests point at a fake) is dlopen()ed at open
 * and the entry points are looked up with dlsym(), so hmmfs builds without
 * a CUDA toolkit and runs without a driver: then open fails with a message
 * and -ENODEV.  The library is never dlclose()d: the real driver keeps
 * threads of its own, and a second open finds it loaded.
 *
 * Memory.  open retains the GPU's primary context (shared with anything
 * else in the process that uses the GPU) and makes one cuMemAlloc of
 * mem_bytes; device address a is base + a.  host_register page-locks a
 * host range with cuMemHostRegister, so copies from the frame arena and
 * the bounce pool are DMA at full speed; other host memory still works,
 * the driver stages it.  Every driver call is made with the context
 * current on the calling thread (cuda_enter()).
 *
 * Several GPUs.  Each unit of the device set (-o devices=N) is one GPU
 * with its own cuda_dev: context, allocation, streams and fence records;
 * a unit's half of a fence is f->priv[@slot], so one fence may span GPUs
 * (device.c waits on each).  A copy from another GPU is queued with
 * cuMemcpyPeerAsync on this one's stream (copy_peer).
 *
 * Streams.  CUDA_NSTREAMS non-blocking streams.  Each thread is given one
 * of them, round-robin, the first time it queues anything, and queues all
 * its work there: one thread's operations therefore run in the order it
 * queued them (hostsim does the same, and callers rely on it, e.g. a fill
 * then a compute on one fence), while several threads' copies are in
 * flight on different streams, on both copy engines, at once.
 *
 * Fences.  The backend's half of a struct dev_fence is @priv, which points
 * to a struct cuda_fence while operations are queued on it: one event per
 * stream, recorded on that stream after each operation queued there on
 * behalf of the fence.  A stream runs in order, so once the fence's event
 * of each stream it used has completed, every operation queued on the
 * fence by any thread has.  fence_wait synchronizes those events, then
 * detaches the record and returns it to the device's pool (fences live in
 * callers' stack frames and have no destructor, so nothing may stay
 * attached after a wait).  @pending counts operations queued since the
 * last wait; @error keeps the first error seen when queueing.
 *
 * The synchronous fast path (copy_sync).  A batch goes on the thread's
 * stream like any copy, then its events are polled with cuEventQuery for
 * up to CUDA_SPIN_NS before the blocking wait: a 4 KiB copy over PCIe is
 * done in a few microseconds, sooner than a sleeping thread is woken.
 *
 * Kernels.  fill, xor, add and compare are PTX kernels written by hand
 * (cuda_ptx below: byte loops over a grid-stride index), loaded with
 * cuModuleLoadData, which JIT-compiles them for whatever GPU is present.
 * compare writes 1 to a flag word in device memory owned by the fence
 * record; fence_wait copies it back and, if set, sets the fence's result.
 * xxh64 (the read-only device op) folds XXH64's four lanes over a list of
 * spans, with the host keeping the rest of the hash (cuda_xxh64() below);
 * it is checked against libxxhash before its first use and left unused
 * if it disagrees.  ptxas of CUDA 13 assembles the module for sm_75 to sm_90.
 *
 * Errors.  Driver results become -errno (cuda_errno()): out of memory
 * -ENOMEM; the errors after which the context is unusable (lost device,
 * illegal address, launch failure, ECC...) -ENODEV, which makes
 * dev_fence_wait() mark the device lost.  Each failure is printed on
 * stderr with the driver's own name and text for it.  A -ENODEV at queue
 * time is also kept in the fence, so the caller's next fence_wait reports
 * the loss too.
 *
 * Locking.  The driver is thread-safe.  Fence records come from the unit's
 * pool (@recs: device.h's dev_rec_pool, its lock a leaf); each record's
 * r.lock guards its events and flags while threads queue on one fence.
 * Attaching a record to f->priv[slot] is one compare-and-swap.
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "device/cuda_int.h"
#include "device/device.h"
#include "device/xxh64_lanes.h"
#include "log/log.h"
#include "lib/compiler.h"
#include "lib/lockcheck.h"

#define CUDA_NSTREAMS	8
#define CUDA_BLOCK	256		/* threads per block */
#define CUDA_MAX_GRID	1024		/* blocks; the loops stride */
#define CUDA_SPIN_NS	20000		/* copy_sync polls this long, then sleeps */
#define CUDA_XXH64_SPANS 1024		/* spans per launch of the xxh64 kernel */

/*
 * The kernels.  Each thread starts at byte ctaid.x * ntid.x + tid.x and
 * steps by the whole grid (nctaid.x * ntid.x), so any length runs in one
 * launch of at most CUDA_MAX_GRID blocks.  ld/st .u8 move a byte through a
 * 32-bit register (PTX allows the wider register); st.u8 keeps the low 8
 * bits, which is the modulo-256 of DEV_OP_ADD.  .target sm_50 is the
 * oldest the driver still JITs from; newer GPUs compile it for themselves.
 */
#define CUDA_PTX_INDEX							\
	"	mov.u32 %r2, %ctaid.x;\n"				\
	"	mov.u32 %r3, %ntid.x;\n"				\
	"	mov.u32 %r4, %tid.x;\n"					\
	"	mov.u32 %r5, %nctaid.x;\n"				\
	"	mul.wide.u32 %rd3, %r2, %r3;\n"				\
	"	cvt.u64.u32 %rd4, %r4;\n"				\
	"	add.u64 %rd3, %rd3, %rd4;\n"				\
	"	mul.wide.u32 %rd5, %r5, %r3;\n"

/* fill, xor, add: (u64 dst, u64 len, u32 value); @body changes %r6. */
#define CUDA_PTX_BYTE_OP(name, load, body)				\
	".visible .entry " name "(\n"					\
	"	.param .u64 " name "_dst,\n"				\
	"	.param .u64 " name "_len,\n"				\
	"	.param .u32 " name "_val\n"				\
	")\n"								\
	"{\n"								\
	"	.reg .pred %p<2>;\n"					\
	"	.reg .b32 %r<8>;\n"					\
	"	.reg .b64 %rd<8>;\n"					\
	"\n"								\
	"	ld.param.u64 %rd1, [" name "_dst];\n"			\
	"	ld.param.u64 %rd2, [" name "_len];\n"			\
	"	ld.param.u32 %r1, [" name "_val];\n"			\
	"	cvta.to.global.u64 %rd1, %rd1;\n"			\
	CUDA_PTX_INDEX							\
	"	setp.ge.u64 %p1, %rd3, %rd2;\n"				\
	"	@%p1 bra $L_" name "_done;\n"				\
	"$L_" name "_loop:\n"						\
	"	add.u64 %rd6, %rd1, %rd3;\n"				\
	load								\
	body								\
	"	st.global.u8 [%rd6], %r6;\n"				\
	"	add.u64 %rd3, %rd3, %rd5;\n"				\
	"	setp.lt.u64 %p1, %rd3, %rd2;\n"				\
	"	@%p1 bra $L_" name "_loop;\n"				\
	"$L_" name "_done:\n"						\
	"	ret;\n"							\
	"}\n\n"

#define CUDA_PTX_LOAD	"	ld.global.u8 %r6, [%rd6];\n"

/* XXH64's primes 1 and 2, as PTX writes an unsigned 64-bit literal */
#define CUDA_XXH64_P1	"0x9E3779B185EBCA87U"
#define CUDA_XXH64_P2	"0xC2B2AE3D27D4EB4FU"

static const char cuda_ptx[] =
	".version 6.0\n"
	".target sm_50\n"
	".address_size 64\n\n"
	CUDA_PTX_BYTE_OP(CUDA_KERNEL_FILL, "", "	mov.u32 %r6, %r1;\n")
	CUDA_PTX_BYTE_OP(CUDA_KERNEL_XOR, CUDA_PTX_LOAD, "	xor.b32 %r6, %r6, %r1;\n")
	CUDA_PTX_BYTE_OP(CUDA_KERNEL_ADD, CUDA_PTX_LOAD, "	add.u32 %r6, %r6, %r1;\n")
	/* compare: (u64 a, u64 b, u64 len, u64 flag); stops at a difference */
	".visible .entry " CUDA_KERNEL_COMPARE "(\n"
	"	.param .u64 cmp_a,\n"
	"	.param .u64 cmp_b,\n"
	"	.param .u64 cmp_len,\n"
	"	.param .u64 cmp_flag\n"
	")\n"
	"{\n"
	"	.reg .pred %p<3>;\n"
	"	.reg .b32 %r<9>;\n"
	"	.reg .b64 %rd<10>;\n"
	"\n"
	"	ld.param.u64 %rd1, [cmp_a];\n"
	"	ld.param.u64 %rd7, [cmp_b];\n"
	"	ld.param.u64 %rd2, [cmp_len];\n"
	"	ld.param.u64 %rd8, [cmp_flag];\n"
	"	cvta.to.global.u64 %rd1, %rd1;\n"
	"	cvta.to.global.u64 %rd7, %rd7;\n"
	"	cvta.to.global.u64 %rd8, %rd8;\n"
	CUDA_PTX_INDEX
	"	setp.ge.u64 %p1, %rd3, %rd2;\n"
	"	@%p1 bra $L_cmp_done;\n"
	"$L_cmp_loop:\n"
	"	add.u64 %rd6, %rd1, %rd3;\n"
	"	add.u64 %rd9, %rd7, %rd3;\n"
	"	ld.global.u8 %r6, [%rd6];\n"
	"	ld.global.u8 %r7, [%rd9];\n"
	"	setp.ne.u32 %p2, %r6, %r7;\n"
	"	@%p2 bra $L_cmp_differ;\n"
	"	add.u64 %rd3, %rd3, %rd5;\n"
	"	setp.lt.u64 %p1, %rd3, %rd2;\n"
	"	@%p1 bra $L_cmp_loop;\n"
	"$L_cmp_done:\n"
	"	ret;\n"
	"$L_cmp_differ:\n"
	"	mov.u32 %r8, 1;\n"
	"	st.global.u32 [%rd8], %r8;\n"
	"	ret;\n"
	"}\n\n"
	/*
	 * xxh64: (u64 spans, u64 nspans, u64 lanes); one block of four
	 * threads, thread t folding word t of every 32-byte stripe of the
	 * spans, in order, into lanes[t] (XXH64's round: acc += w * P2,
	 * acc = rotl(acc, 31), acc *= P1).  A span is {u64 address, u64
	 * length}: 8-byte aligned, the length a multiple of 32.
	 */
	".visible .entry " CUDA_KERNEL_XXH64 "(\n"
	"	.param .u64 x_spans,\n"
	"	.param .u64 x_nspans,\n"
	"	.param .u64 x_lanes\n"
	")\n"
	"{\n"
	"	.reg .pred %p<3>;\n"
	"	.reg .b32 %r<2>;\n"
	"	.reg .b64 %rd<12>;\n"
	"\n"
	"	ld.param.u64 %rd1, [x_spans];\n"
	"	ld.param.u64 %rd2, [x_nspans];\n"
	"	ld.param.u64 %rd3, [x_lanes];\n"
	"	cvta.to.global.u64 %rd1, %rd1;\n"
	"	cvta.to.global.u64 %rd3, %rd3;\n"
	"	mov.u32 %r1, %tid.x;\n"
	"	setp.ge.u32 %p1, %r1, 4;\n"
	"	@%p1 bra $L_x_done;\n"
	"	mul.wide.u32 %rd4, %r1, 8;\n"		/* this lane's word */
	"	add.u64 %rd5, %rd3, %rd4;\n"
	"	ld.global.u64 %rd6, [%rd5];\n"		/* acc */
	"	setp.eq.u64 %p1, %rd2, 0;\n"
	"	@%p1 bra $L_x_store;\n"
	"$L_x_span:\n"
	"	ld.global.u64 %rd7, [%rd1];\n"
	"	ld.global.u64 %rd8, [%rd1+8];\n"
	"	cvta.to.global.u64 %rd7, %rd7;\n"
	"	add.u64 %rd8, %rd7, %rd8;\n"		/* the span's end */
	"	add.u64 %rd7, %rd7, %rd4;\n"
	"	setp.ge.u64 %p2, %rd7, %rd8;\n"
	"	@%p2 bra $L_x_next;\n"
	"$L_x_stripe:\n"
	"	ld.global.u64 %rd9, [%rd7];\n"
	"	mul.lo.u64 %rd9, %rd9, " CUDA_XXH64_P2 ";\n"
	"	add.u64 %rd6, %rd6, %rd9;\n"
	"	shl.b64 %rd10, %rd6, 31;\n"
	"	shr.b64 %rd11, %rd6, 33;\n"
	"	or.b64 %rd6, %rd10, %rd11;\n"
	"	mul.lo.u64 %rd6, %rd6, " CUDA_XXH64_P1 ";\n"
	"	add.u64 %rd7, %rd7, 32;\n"
	"	setp.lt.u64 %p2, %rd7, %rd8;\n"
	"	@%p2 bra $L_x_stripe;\n"
	"$L_x_next:\n"
	"	add.u64 %rd1, %rd1, 16;\n"
	"	sub.u64 %rd2, %rd2, 1;\n"
	"	setp.ne.u64 %p1, %rd2, 0;\n"
	"	@%p1 bra $L_x_span;\n"
	"$L_x_store:\n"
	"	st.global.u64 [%rd5], %rd6;\n"
	"$L_x_done:\n"
	"	ret;\n"
	"}\n";

/* The driver's entry points; cuda_syms[] names them. */
struct cuda_api {
	CUresult (*Init)(unsigned int);
	CUresult (*DeviceGetCount)(int *);
	CUresult (*DeviceGet)(CUdevice *, int);
	CUresult (*DevicePrimaryCtxRetain)(CUcontext *, CUdevice);
	CUresult (*DevicePrimaryCtxRelease)(CUdevice);
	CUresult (*CtxSetCurrent)(CUcontext);
	CUresult (*MemAlloc)(CUdeviceptr *, size_t);
	CUresult (*MemFree)(CUdeviceptr);
	CUresult (*MemHostRegister)(void *, size_t, unsigned int);
	CUresult (*MemHostUnregister)(void *);
	CUresult (*MemcpyHtoDAsync)(CUdeviceptr, const void *, size_t, CUstream);
	CUresult (*MemcpyDtoHAsync)(void *, CUdeviceptr, size_t, CUstream);
	CUresult (*MemcpyDtoDAsync)(CUdeviceptr, CUdeviceptr, size_t, CUstream);
	CUresult (*MemcpyPeerAsync)(CUdeviceptr, CUcontext, CUdeviceptr, CUcontext,
				    size_t, CUstream);
	CUresult (*StreamCreate)(CUstream *, unsigned int);
	CUresult (*StreamDestroy)(CUstream);
	CUresult (*StreamSynchronize)(CUstream);
	CUresult (*EventCreate)(CUevent *, unsigned int);
	CUresult (*EventDestroy)(CUevent);
	CUresult (*EventRecord)(CUevent, CUstream);
	CUresult (*EventSynchronize)(CUevent);
	CUresult (*EventQuery)(CUevent);
	CUresult (*ModuleLoadData)(CUmodule *, const void *);
	CUresult (*ModuleUnload)(CUmodule);
	CUresult (*ModuleGetFunction)(CUfunction *, CUmodule, const char *);
	CUresult (*LaunchKernel)(CUfunction, unsigned int, unsigned int,
				 unsigned int, unsigned int, unsigned int,
				 unsigned int, unsigned int, CUstream, void **,
				 void **);
	CUresult (*GetErrorString)(CUresult, const char **);
	CUresult (*GetErrorName)(CUresult, const char **);
};

/* Versioned names first: cuda.h maps the plain names to these. */
static const struct {
	const char *name, *alt;
	size_t off;
} cuda_syms[] = {
#define CUDA_SYM(field, name, alt) { name, alt, offsetof(struct cuda_api, field) }
	CUDA_SYM(Init, "cuInit", NULL),
	CUDA_SYM(DeviceGetCount, "cuDeviceGetCount", NULL),
	CUDA_SYM(DeviceGet, "cuDeviceGet", NULL),
	CUDA_SYM(DevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain", NULL),
	CUDA_SYM(DevicePrimaryCtxRelease, "cuDevicePrimaryCtxRelease_v2",
		 "cuDevicePrimaryCtxRelease"),
	CUDA_SYM(CtxSetCurrent, "cuCtxSetCurrent", NULL),
	CUDA_SYM(MemAlloc, "cuMemAlloc_v2", NULL),
	CUDA_SYM(MemFree, "cuMemFree_v2", NULL),
	CUDA_SYM(MemHostRegister, "cuMemHostRegister_v2", "cuMemHostRegister"),
	CUDA_SYM(MemHostUnregister, "cuMemHostUnregister", NULL),
	CUDA_SYM(MemcpyHtoDAsync, "cuMemcpyHtoDAsync_v2", NULL),
	CUDA_SYM(MemcpyDtoHAsync, "cuMemcpyDtoHAsync_v2", NULL),
	CUDA_SYM(MemcpyDtoDAsync, "cuMemcpyDtoDAsync_v2", NULL),
	CUDA_SYM(MemcpyPeerAsync, "cuMemcpyPeerAsync", NULL),
	CUDA_SYM(StreamCreate, "cuStreamCreate", NULL),
	CUDA_SYM(StreamDestroy, "cuStreamDestroy_v2", "cuStreamDestroy"),
	CUDA_SYM(StreamSynchronize, "cuStreamSynchronize", NULL),
	CUDA_SYM(EventCreate, "cuEventCreate", NULL),
	CUDA_SYM(EventDestroy, "cuEventDestroy_v2", "cuEventDestroy"),
	CUDA_SYM(EventRecord, "cuEventRecord", NULL),
	CUDA_SYM(EventSynchronize, "cuEventSynchronize", NULL),
	CUDA_SYM(EventQuery, "cuEventQuery", NULL),
	CUDA_SYM(ModuleLoadData, "cuModuleLoadData", NULL),
	CUDA_SYM(ModuleUnload, "cuModuleUnload", NULL),
	CUDA_SYM(ModuleGetFunction, "cuModuleGetFunction", NULL),
	CUDA_SYM(LaunchKernel, "cuLaunchKernel", NULL),
	CUDA_SYM(GetErrorString, "cuGetErrorString", NULL),
	CUDA_SYM(GetErrorName, "cuGetErrorName", NULL),
#undef CUDA_SYM
};

/**
 * struct cuda_fence - the backend's half of a dev_fence (its @priv).
 * @lock:       guards @ev, @recorded, @unsynced, @compared and @flag
 *              while threads queue on the fence.
 * @ev:         per stream: recorded after the fence's latest operation
 *              on that stream; created on first use, kept in the pool.
 * @recorded:   bit s: @ev[s] was recorded since the last wait.
 * @unsynced:   bit s: an operation went on stream s but its event could
 *              not be recorded; the wait synchronizes the whole stream.
 * @compared:   a compare was queued since the last wait.
 * @flag:       device word the compare kernel sets to 1; 0 until the
 *              first compare, zero whenever the record is in the pool.
 * @xbuf:       device scratch of the xxh64 kernel (its lanes, then
 *              CUDA_XXH64_SPANS spans); 0 until the record's first hash.
 * @xspans:     the host side of @xbuf's spans, as they are gathered.
 * @r:          the pool's part (device.h's struct dev_rec), its lock first.
 */
struct cuda_fence {
	struct dev_rec r;
	CUevent ev[CUDA_NSTREAMS];
	uint32_t recorded, unsynced;
	bool compared;
	CUdeviceptr flag, xbuf;
	uint64_t (*xspans)[2];
};

/**
 * struct cuda_dev - an open GPU.
 * @api:        the driver's entry points.
 * @lib:        the driver's path, for messages.
 * @dev, @ctx:  the GPU and its retained primary context.
 * @slot:       its unit number: its half of a fence is f->priv[@slot].
 * @base:       device address 0.
 * @mod, @fn:   the PTX module and its kernels (by enum dev_op_kind;
 *              @fn_compare and @fn_xxh64 apart).
 * @xxh64_verdict: the xxh64 kernel's check (xxh64_checked()): 0 not run
 *              yet, 1 passed, -1 failed (hashes go through the host).
 * @stream:     the streams threads are given; @ctl is for fence_wait's
 *              own small copies.
 * @recs:       the fence records (device.h's dev_rec_pool).
 */
struct cuda_dev {
	struct cuda_api api;
	char lib[256];
	int gpu;
	unsigned int slot;
	CUdevice dev;
	CUcontext ctx;
	CUdeviceptr base;
	CUmodule mod;
	CUfunction fn[DEV_OP_NR], fn_compare, fn_xxh64;
	_Atomic int xxh64_verdict;
	CUstream stream[CUDA_NSTREAMS], ctl;
	struct dev_rec_pool recs;
};

/* Which stream this thread uses (index + 1; 0: none yet). */
static _Thread_local unsigned int cuda_tls_stream;
static _Atomic unsigned int cuda_next_stream;

static bool cuda_lost_result(CUresult r)
{
	switch (r) {
	case CUDA_ERROR_NOT_INITIALIZED:
	case CUDA_ERROR_DEINITIALIZED:
	case CUDA_ERROR_STUB_LIBRARY:
	case CUDA_ERROR_INSUFFICIENT_DRIVER:
	case CUDA_ERROR_DEVICE_UNAVAILABLE:
	case CUDA_ERROR_NO_DEVICE:
	case CUDA_ERROR_INVALID_DEVICE:
	case CUDA_ERROR_INVALID_CONTEXT:
	case CUDA_ERROR_ECC_UNCORRECTABLE:
	case CUDA_ERROR_NVLINK_UNCORRECTABLE:
	case CUDA_ERROR_ILLEGAL_ADDRESS:
	case CUDA_ERROR_LAUNCH_TIMEOUT:
	case CUDA_ERROR_CONTEXT_IS_DESTROYED:
	case CUDA_ERROR_ASSERT:
	case CUDA_ERROR_HARDWARE_STACK_ERROR:
	case CUDA_ERROR_ILLEGAL_INSTRUCTION:
	case CUDA_ERROR_MISALIGNED_ADDRESS:
	case CUDA_ERROR_INVALID_ADDRESS_SPACE:
	case CUDA_ERROR_INVALID_PC:
	case CUDA_ERROR_LAUNCH_FAILED:
	case CUDA_ERROR_SYSTEM_NOT_READY:
	case CUDA_ERROR_SYSTEM_DRIVER_MISMATCH:
		return true;
	default:
		return false;
	}
}

/* The -errno for driver result @r (not CUDA_SUCCESS). */
static int cuda_result_errno(CUresult r)
{
	if (cuda_lost_result(r))
		return -ENODEV;
	switch (r) {
	case CUDA_ERROR_OUT_OF_MEMORY:
	case CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES:
		return -ENOMEM;
	case CUDA_ERROR_INVALID_VALUE:
	case CUDA_ERROR_INVALID_HANDLE:
		return -EINVAL;
	case CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED:
		return -EEXIST;
	case CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED:
	case CUDA_ERROR_NOT_FOUND:
		return -ENOENT;
	case CUDA_ERROR_INVALID_IMAGE:
	case CUDA_ERROR_NO_BINARY_FOR_GPU:
	case CUDA_ERROR_INVALID_PTX:
	case CUDA_ERROR_JIT_COMPILER_NOT_FOUND:
	case CUDA_ERROR_UNSUPPORTED_PTX_VERSION:
		return -ENOEXEC;
	case CUDA_ERROR_NOT_PERMITTED:
		return -EPERM;
	case CUDA_ERROR_NOT_SUPPORTED:
		return -EOPNOTSUPP;
	default:
		return -EIO;
	}
}

/* "CUDA_ERROR_X (text)" for @r into @buf. */
static const char *cuda_describe(const struct cuda_api *api, CUresult r,
				 char *buf, size_t len)
{
	const char *name = NULL, *text = NULL;

	if (api->GetErrorName && api->GetErrorName(r, &name) != CUDA_SUCCESS)
		name = NULL;
	if (api->GetErrorString && api->GetErrorString(r, &text) != CUDA_SUCCESS)
		text = NULL;
	snprintf(buf, len, "%s%s%s%s", name ? name : "CUDA error",
		 text ? " (" : "", text ? text : "", text ? ")" : "");
	if (!name && !text)
		snprintf(buf, len, "CUDA error %d", r);
	return buf;
}

/* Print the failure of driver call @what on stderr; return its -errno. */
static int cuda_fail(struct cuda_dev *cd, const char *what, CUresult r)
{
	char msg[256];

	log_err("cuda: GPU %d: %s: %s", cd->gpu, what,
		cuda_describe(&cd->api, r, msg, sizeof(msg)));
	return cuda_result_errno(r);
}

/*
 * As cuda_fail(), for an operation being queued on @f: a lost device is
 * also kept as the fence's error, so the next wait reports it and
 * dev_fence_wait() marks the device lost.
 */
static int cuda_fail_queue(struct cuda_dev *cd, struct dev_fence *f,
			   const char *what, CUresult r)
{
	int ret = cuda_fail(cd, what, r), none = 0;

	if (ret == -ENODEV)
		atomic_compare_exchange_strong(&f->error, &none, ret);
	return ret;
}

/* Make the context current on this thread; every entry point starts here. */
static int cuda_enter(struct cuda_dev *cd)
{
	CUresult r = cd->api.CtxSetCurrent(cd->ctx);

	return r ? cuda_fail(cd, "cuCtxSetCurrent", r) : 0;
}

static unsigned int cuda_thread_stream(void)
{
	if (!cuda_tls_stream)
		cuda_tls_stream = atomic_fetch_add_explicit(&cuda_next_stream, 1,
				memory_order_relaxed) % CUDA_NSTREAMS + 1;
	return cuda_tls_stream - 1;
}

/* The record of @f, attached now if it has none. */
static struct cuda_fence *cuda_fence_get(struct cuda_dev *cd, struct dev_fence *f)
{
	return (struct cuda_fence *)dev_rec_get(&cd->recs, f, cd->slot);
}

/*
 * Before queueing on @f: enter @cd's context, attach @f's record if it
 * has none, lock it.  Return: the record, locked; or NULL with *@ret.
 */
static struct cuda_fence *cuda_queue_begin(struct cuda_dev *cd, struct dev_fence *f,
					   int *ret)
{
	struct cuda_fence *rec;

	*ret = cuda_enter(cd);
	if (*ret)
		return NULL;
	rec = cuda_fence_get(cd, f);
	if (!rec) {
		*ret = -ENOMEM;
		return NULL;
	}
	pthread_mutex_lock(&rec->r.lock);
	return rec;
}

/*
 * An operation went on stream @s for @f: record the fence's event there.
 * If that fails the operation is still queued, so the wait falls back to
 * synchronizing the stream.  Context: @rec->r.lock held.
 */
static int cuda_fence_record_locked(struct cuda_dev *cd, struct cuda_fence *rec,
				    unsigned int s, struct dev_fence *f)
{
	mutex_assert_held(&rec->r.lock);

	CUresult r = CUDA_SUCCESS;
	const char *what = "cuEventCreate";

	atomic_fetch_add_explicit(&f->pending, 1, memory_order_relaxed);
	if (!rec->ev[s])
		r = cd->api.EventCreate(&rec->ev[s], CU_EVENT_DISABLE_TIMING);
	if (!r) {
		what = "cuEventRecord";
		r = cd->api.EventRecord(rec->ev[s], cd->stream[s]);
	}
	if (r) {
		rec->unsynced |= 1u << s;
		return cuda_fail_queue(cd, f, what, r);
	}
	rec->recorded |= 1u << s;
	return 0;
}

static int cuda_copy(struct dev_unit *d, const struct dev_copy *cp,
		     struct dev_fence *f)
{
	struct cuda_dev *cd = d->priv;
	struct cuda_fence *rec;
	unsigned int s = cuda_thread_stream();
	const char *what;
	CUresult r;
	int ret;

	rec = cuda_queue_begin(cd, f, &ret);
	if (!rec)
		return ret;
	switch (cp->dir) {
	case DEV_H2D:
		what = "cuMemcpyHtoDAsync";
		r = cd->api.MemcpyHtoDAsync(cd->base + cp->dst, cp->host, cp->len,
					    cd->stream[s]);
		break;
	case DEV_D2H:
		what = "cuMemcpyDtoHAsync";
		r = cd->api.MemcpyDtoHAsync(cp->host, cd->base + cp->src, cp->len,
					    cd->stream[s]);
		break;
	default:
		what = "cuMemcpyDtoDAsync";
		r = cd->api.MemcpyDtoDAsync(cd->base + cp->dst, cd->base + cp->src,
					    cp->len, cd->stream[s]);
		break;
	}
	ret = r ? cuda_fail_queue(cd, f, what, r)
		: cuda_fence_record_locked(cd, rec, s, f);
	pthread_mutex_unlock(&rec->r.lock);
	return ret;
}

/*
 * The peer path: a copy from GPU @from's memory into this one's, queued on
 * this thread's stream of the destination (the driver uses peer access
 * where the GPUs have it, and stages otherwise).
 */
static int cuda_copy_peer(struct dev_unit *d, dev_addr_t dst, struct dev_unit *from,
			  dev_addr_t src, size_t len, struct dev_fence *f)
{
	struct cuda_dev *cd = d->priv, *peer = from->priv;
	unsigned int s = cuda_thread_stream();
	struct cuda_fence *rec;
	CUresult r;
	int ret;

	rec = cuda_queue_begin(cd, f, &ret);
	if (!rec)
		return ret;
	r = cd->api.MemcpyPeerAsync(cd->base + dst, cd->ctx, peer->base + src,
				    peer->ctx, len, cd->stream[s]);
	ret = r ? cuda_fail_queue(cd, f, "cuMemcpyPeerAsync", r)
		: cuda_fence_record_locked(cd, rec, s, f);
	pthread_mutex_unlock(&rec->r.lock);
	return ret;
}

/* Launch @fn over @len bytes with @args on this thread's stream. */
static int cuda_launch_locked(struct cuda_dev *cd, struct cuda_fence *rec,
			      CUfunction fn, size_t len, void **args,
			      struct dev_fence *f)
{
	mutex_assert_held(&rec->r.lock);

	size_t blocks = (len + CUDA_BLOCK - 1) / CUDA_BLOCK;
	unsigned int s = cuda_thread_stream();
	CUresult r;

	if (blocks > CUDA_MAX_GRID)
		blocks = CUDA_MAX_GRID;
	r = cd->api.LaunchKernel(fn, (unsigned int)blocks, 1, 1, CUDA_BLOCK, 1, 1,
				 0, cd->stream[s], args, NULL);
	if (r)
		return cuda_fail_queue(cd, f, "cuLaunchKernel", r);
	return cuda_fence_record_locked(cd, rec, s, f);
}

static int cuda_compute(struct dev_unit *d, enum dev_op_kind op, dev_addr_t dst,
			size_t len, uint64_t value, struct dev_fence *f)
{
	struct cuda_dev *cd = d->priv;
	CUdeviceptr p = cd->base + dst;
	unsigned long long n = len;
	uint32_t v = (uint8_t)value;
	void *args[] = { &p, &n, &v };
	struct cuda_fence *rec;
	int ret;

	rec = cuda_queue_begin(cd, f, &ret);
	if (!rec)
		return ret;
	ret = cuda_launch_locked(cd, rec, cd->fn[op], len, args, f);
	pthread_mutex_unlock(&rec->r.lock);
	return ret;
}

/* Copy @v to the device word @w and wait for it, on the control stream. */
static int cuda_word_set(struct cuda_dev *cd, CUdeviceptr w, uint32_t v)
{
	CUresult r = cd->api.MemcpyHtoDAsync(w, &v, sizeof(v), cd->ctl);

	if (!r)
		r = cd->api.StreamSynchronize(cd->ctl);
	return r ? cuda_fail(cd, "setting the compare flag", r) : 0;
}

static int cuda_compare(struct dev_unit *d, dev_addr_t a, dev_addr_t b,
			size_t len, struct dev_fence *f)
{
	struct cuda_dev *cd = d->priv;
	CUdeviceptr pa = cd->base + a, pb = cd->base + b;
	unsigned long long n = len;
	void *args[] = { &pa, &pb, &n, NULL };
	struct cuda_fence *rec;
	CUresult r;
	int ret;

	rec = cuda_queue_begin(cd, f, &ret);
	if (!rec)
		return ret;
	if (!rec->flag) {
		r = cd->api.MemAlloc(&rec->flag, sizeof(uint32_t));
		if (r) {
			rec->flag = 0;
			ret = cuda_fail_queue(cd, f, "cuMemAlloc (compare flag)", r);
			goto out_unlock;
		}
		ret = cuda_word_set(cd, rec->flag, 0);
		if (ret) {
			cd->api.MemFree(rec->flag);
			rec->flag = 0;
			goto out_unlock;
		}
	}
	args[3] = &rec->flag;
	ret = cuda_launch_locked(cd, rec, cd->fn_compare, len, args, f);
	if (!ret)
		rec->compared = true;
out_unlock:
	pthread_mutex_unlock(&rec->r.lock);
	return ret;
}

/* After the compares of @rec finished: result into @f, flag back to 0. */
static int cuda_fence_collect(struct cuda_dev *cd, struct cuda_fence *rec,
			      struct dev_fence *f)
{
	uint32_t v = 0;
	CUresult r;

	r = cd->api.MemcpyDtoHAsync(&v, rec->flag, sizeof(v), cd->ctl);
	if (!r)
		r = cd->api.StreamSynchronize(cd->ctl);
	if (r)
		return cuda_fail(cd, "reading the compare flag", r);
	if (!v)
		return 0;
	atomic_store(&f->result, 1);
	return cuda_word_set(cd, rec->flag, 0);
}

static int cuda_fence_wait(struct dev_unit *d, struct dev_fence *f)
{
	struct cuda_dev *cd = d->priv;
	struct cuda_fence *rec;
	int ret = 0, first;

	rec = (struct cuda_fence *)dev_rec_detach(f, cd->slot);
	if (rec) {
		pthread_mutex_lock(&rec->r.lock);
		ret = cuda_enter(cd);
		for (unsigned int s = 0; !ret && s < CUDA_NSTREAMS; s++) {
			CUresult r = CUDA_SUCCESS;
			const char *what = "cuEventSynchronize";

			if (rec->recorded & (1u << s))
				r = cd->api.EventSynchronize(rec->ev[s]);
			if (!r && (rec->unsynced & (1u << s))) {
				what = "cuStreamSynchronize";
				r = cd->api.StreamSynchronize(cd->stream[s]);
			}
			if (r)
				ret = cuda_fail(cd, what, r);
		}
		if (!ret && rec->compared)
			ret = cuda_fence_collect(cd, rec, f);
		rec->recorded = rec->unsynced = 0;
		rec->compared = false;
		pthread_mutex_unlock(&rec->r.lock);
		dev_rec_put(&cd->recs, &rec->r);
	}
	atomic_store_explicit(&f->pending, 0, memory_order_relaxed);
	first = atomic_exchange(&f->error, 0);
	return first ? first : ret;
}

/*
 * XXH64 on the GPU (the xxh64 op): the kernel folds the lanes over the
 * whole stripes of a list of spans, device/xxh64_lanes.c does the rest.
 * Everything runs on this thread's stream and is waited for before the
 * op returns; the fence record lends its scratch (@xbuf, @xspans) and
 * keeps a loss of the device for the fence's wait.
 */
struct cuda_xxh64_ctx {
	struct cuda_dev *cd;
	struct dev_fence *f;
	struct cuda_fence *rec;
	CUstream s;
};

/* After @r, the result of queueing on x->s: wait for the stream. */
static int xxh64_wait(struct cuda_xxh64_ctx *x, const char *what, CUresult r)
{
	if (!r)
		r = x->cd->api.StreamSynchronize(x->s);
	return r ? cuda_fail_queue(x->cd, x->f, what, r) : 0;
}

static int cuda_xxh64_fold(void *ctx, const uint64_t (*sp)[2], size_t n,
			   uint64_t lanes[4])
{
	struct cuda_xxh64_ctx *x = ctx;
	struct cuda_dev *cd = x->cd;
	CUdeviceptr dlanes = x->rec->xbuf, dspans = dlanes + 4 * sizeof(uint64_t);
	unsigned long long nspans = n;
	void *args[] = { &dspans, &nspans, &dlanes };
	CUresult r;

	r = cd->api.MemcpyHtoDAsync(dlanes, lanes, 4 * sizeof(uint64_t), x->s);
	if (!r)
		r = cd->api.MemcpyHtoDAsync(dspans, sp, n * sizeof(*sp), x->s);
	if (!r)
		r = cd->api.LaunchKernel(cd->fn_xxh64, 1, 1, 1, 4, 1, 1, 0, x->s,
					 args, NULL);
	if (!r)
		r = cd->api.MemcpyDtoHAsync(lanes, dlanes, 4 * sizeof(uint64_t), x->s);
	return xxh64_wait(x, "the xxh64 kernel", r);
}

static int cuda_xxh64_read(void *ctx, uint64_t a, void *buf, size_t len)
{
	struct cuda_xxh64_ctx *x = ctx;

	return xxh64_wait(x, "cuMemcpyDtoHAsync (xxh64)",
			  x->cd->api.MemcpyDtoHAsync(buf, a, len, x->s));
}

static int cuda_xxh64_write(void *ctx, uint64_t a, const void *buf, size_t len)
{
	struct cuda_xxh64_ctx *x = ctx;

	return xxh64_wait(x, "cuMemcpyHtoDAsync (xxh64 check)",
			  x->cd->api.MemcpyHtoDAsync(a, buf, len, x->s));
}

static const struct xl_ops cuda_xl_ops = {
	.fold = cuda_xxh64_fold, .read = cuda_xxh64_read, .write = cuda_xxh64_write,
};

/*
 * The record's scratch, allocated on its first hash: the lanes, the
 * spans, then XL_CHECK_BYTES for the kernel's check.
 */
static int xxh64_scratch(struct cuda_dev *cd, struct cuda_fence *rec)
{
	size_t bytes = 4 * sizeof(uint64_t) + CUDA_XXH64_SPANS * sizeof(*rec->xspans) +
		       XL_CHECK_BYTES;
	CUresult r;

	if (!rec->xspans && !(rec->xspans = malloc(CUDA_XXH64_SPANS *
						   sizeof(*rec->xspans))))
		return -ENOMEM;
	if (rec->xbuf)
		return 0;
	r = cd->api.MemAlloc(&rec->xbuf, bytes);
	if (r) {
		rec->xbuf = 0;
		return cuda_fail(cd, "cuMemAlloc (xxh64 scratch)", r);
	}
	return 0;
}

/*
 * Before the first hash on a GPU, check the kernel against libxxhash
 * (xl_check()); a driver that compiles the PTX differently, or a kernel
 * bug, then costs speed (host copies) rather than wrong hashes.  Return:
 * 0 if the kernel may be used, -EOPNOTSUPP if not, or the device's
 * -errno (the check runs again next time).
 */
static int xxh64_check(struct cuda_xxh64_ctx *x)
{
	struct cuda_dev *cd = x->cd;
	CUdeviceptr pattern = x->rec->xbuf + 4 * sizeof(uint64_t) +
			      CUDA_XXH64_SPANS * sizeof(*x->rec->xspans);
	char who[32];

	snprintf(who, sizeof(who), "cuda: GPU %d", cd->gpu);
	return xl_check_once(&cd->xxh64_verdict, who, &cuda_xl_ops, x, pattern,
			     x->rec->xspans, CUDA_XXH64_SPANS);
}

static int cuda_xxh64(struct dev_unit *d, const struct dev_span *sp, size_t n,
		      void *state, struct dev_fence *f)
{
	struct cuda_dev *cd = d->priv;
	struct cuda_xxh64_ctx x = { .cd = cd, .f = f,
				    .s = cd->stream[cuda_thread_stream()] };
	struct xl_run run = { .ops = &cuda_xl_ops, .ctx = &x, .st = state,
			      .max = CUDA_XXH64_SPANS };
	int ret;

	if (atomic_load(&cd->xxh64_verdict) < 0)
		return -EOPNOTSUPP;	/* device.c hashes through host copies */
	x.rec = cuda_queue_begin(cd, f, &ret);
	if (!x.rec)
		return ret;
	ret = xxh64_scratch(cd, x.rec);
	if (!ret)
		ret = xxh64_check(&x);
	run.spans = x.rec->xspans;
	for (size_t i = 0; i < n && !ret; i++)
		ret = xl_feed(&run, cd->base + sp[i].addr, sp[i].len);
	if (!ret)
		ret = xl_flush(&run);
	pthread_mutex_unlock(&x.rec->r.lock);
	return ret;
}

/* Poll the events of @f until they complete or CUDA_SPIN_NS pass. */
static void cuda_fence_spin(struct cuda_dev *cd, struct dev_fence *f)
{
	struct cuda_fence *rec = (struct cuda_fence *)dev_rec_peek(f, cd->slot);
	uint64_t until = dev_clock_ns() + CUDA_SPIN_NS;

	if (!rec)
		return;
	pthread_mutex_lock(&rec->r.lock);
	for (unsigned int s = 0; s < CUDA_NSTREAMS; s++) {
		if (!(rec->recorded & (1u << s)))
			continue;
		while (cd->api.EventQuery(rec->ev[s]) == CUDA_ERROR_NOT_READY)
			if (dev_clock_ns() > until)
				goto out;	/* the blocking wait takes over */
	}
out:
	pthread_mutex_unlock(&rec->r.lock);
}

static int cuda_copy_sync(struct dev_unit *d, const struct dev_copy *cp, size_t n)
{
	struct dev_fence f = DEV_FENCE_INIT;
	int ret = 0, r;

	for (size_t i = 0; i < n && !ret; i++)
		ret = cuda_copy(d, &cp[i], &f);
	if (!ret)
		cuda_fence_spin(d->priv, &f);
	r = cuda_fence_wait(d, &f);
	return ret ? ret : r;
}

static int cuda_host_register(struct dev_unit *d, void *p, size_t len)
{
	struct cuda_dev *cd = d->priv;
	CUresult r;
	int ret;

	ret = cuda_enter(cd);
	if (ret)
		return ret;
	r = cd->api.MemHostRegister(p, len, CU_MEMHOSTREGISTER_PORTABLE);
	return r ? cuda_fail(cd, "cuMemHostRegister", r) : 0;
}

static void cuda_host_unregister(struct dev_unit *d, void *p)
{
	struct cuda_dev *cd = d->priv;
	CUresult r;

	if (cuda_enter(cd))
		return;
	r = cd->api.MemHostUnregister(p);
	if (r)
		cuda_fail(cd, "cuMemHostUnregister", r);
}

/* Look up every entry point in @lib.  Return: 0, or -ENOSYS with @err. */
static int cuda_resolve(struct cuda_dev *cd, void *lib, char *err, size_t errlen)
{
	for (size_t i = 0; i < ARRAY_SIZE(cuda_syms); i++) {
		void *sym = dlsym(lib, cuda_syms[i].name);

		if (!sym && cuda_syms[i].alt)
			sym = dlsym(lib, cuda_syms[i].alt);
		if (!sym) {
			snprintf(err, errlen, "cuda: %s has no %s (driver too old?)",
				 cd->lib, cuda_syms[i].name);
			return -ENOSYS;
		}
		memcpy((char *)&cd->api + cuda_syms[i].off, &sym, sizeof(sym));
	}
	return 0;
}

/* For open: message @what's failure into @err too. */
static int cuda_open_fail(struct cuda_dev *cd, const char *what, CUresult r,
			  char *err, size_t errlen)
{
	char msg[200];

	snprintf(err, errlen, "cuda: GPU %d: %s: %s", cd->gpu, what,
		 cuda_describe(&cd->api, r, msg, sizeof(msg)));
	return cuda_fail(cd, what, r);
}

static int cuda_open(struct dev_unit *d, const struct device_config *cfg,
		     char *err, size_t errlen)
{
	static const char *const names[DEV_OP_NR] = {
		[DEV_OP_FILL] = CUDA_KERNEL_FILL,
		[DEV_OP_XOR] = CUDA_KERNEL_XOR,
		[DEV_OP_ADD] = CUDA_KERNEL_ADD,
	};
	const char *env = getenv("HMMFS_CUDA_LIB");
	struct cuda_dev *cd = calloc(1, sizeof(*cd));
	unsigned int nstreams = 0;
	char what[64];
	int count = 0, ret;
	void *lib;
	CUresult r;

	if (!cd)
		return -ENOMEM;
	snprintf(cd->lib, sizeof(cd->lib), "%s", env && *env ? env : "libcuda.so.1");
	cd->gpu = cfg->gpu;
	cd->slot = d->id;
	lib = dlopen(cd->lib, RTLD_NOW | RTLD_LOCAL);
	if (!lib) {
		snprintf(err, errlen, "cuda: cannot load the CUDA driver: %s "
			 "(no NVIDIA driver installed?)", dlerror());
		ret = -ENODEV;
		goto out_free;
	}
	ret = cuda_resolve(cd, lib, err, errlen);
	if (ret)
		goto out_free;
	r = cd->api.Init(0);
	if (!r)
		r = cd->api.DeviceGetCount(&count);
	if (r) {
		ret = cuda_open_fail(cd, "cuInit", r, err, errlen);
		goto out_free;
	}
	if (cfg->gpu < 0 || cfg->gpu >= count) {
		snprintf(err, errlen, "cuda: no GPU %d (%d found)", cfg->gpu, count);
		ret = -ENODEV;
		goto out_free;
	}
	r = cd->api.DeviceGet(&cd->dev, cfg->gpu);
	if (!r)
		r = cd->api.DevicePrimaryCtxRetain(&cd->ctx, cd->dev);
	if (r) {
		ret = cuda_open_fail(cd, "cuDevicePrimaryCtxRetain", r, err, errlen);
		goto out_free;
	}
	r = cd->api.CtxSetCurrent(cd->ctx);
	if (r) {
		ret = cuda_open_fail(cd, "cuCtxSetCurrent", r, err, errlen);
		goto out_release_ctx;
	}
	r = cd->api.MemAlloc(&cd->base, cfg->mem_bytes);
	if (r) {
		snprintf(what, sizeof(what), "cuMemAlloc of %zu bytes", cfg->mem_bytes);
		ret = cuda_open_fail(cd, what, r, err, errlen);
		goto out_release_ctx;
	}
	r = cd->api.ModuleLoadData(&cd->mod, cuda_ptx);
	if (r) {
		ret = cuda_open_fail(cd, "cuModuleLoadData (the kernels' PTX)", r,
				     err, errlen);
		goto out_free_mem;
	}
	for (int op = 0; op < DEV_OP_NR; op++) {
		r = cd->api.ModuleGetFunction(&cd->fn[op], cd->mod, names[op]);
		if (r) {
			ret = cuda_open_fail(cd, names[op], r, err, errlen);
			goto out_unload;
		}
	}
	r = cd->api.ModuleGetFunction(&cd->fn_compare, cd->mod, CUDA_KERNEL_COMPARE);
	if (r) {
		ret = cuda_open_fail(cd, CUDA_KERNEL_COMPARE, r, err, errlen);
		goto out_unload;
	}
	r = cd->api.ModuleGetFunction(&cd->fn_xxh64, cd->mod, CUDA_KERNEL_XXH64);
	if (r) {
		ret = cuda_open_fail(cd, CUDA_KERNEL_XXH64, r, err, errlen);
		goto out_unload;
	}
	r = cd->api.StreamCreate(&cd->ctl, CU_STREAM_NON_BLOCKING);
	if (r) {
		ret = cuda_open_fail(cd, "cuStreamCreate", r, err, errlen);
		goto out_unload;
	}
	for (; nstreams < CUDA_NSTREAMS; nstreams++) {
		r = cd->api.StreamCreate(&cd->stream[nstreams], CU_STREAM_NON_BLOCKING);
		if (r) {
			ret = cuda_open_fail(cd, "cuStreamCreate", r, err, errlen);
			goto out_destroy_streams;
		}
	}
	dev_rec_pool_init(&cd->recs, sizeof(struct cuda_fence));
	d->priv = cd;
	return 0;

out_destroy_streams:
	while (nstreams--)
		cd->api.StreamDestroy(cd->stream[nstreams]);
	cd->api.StreamDestroy(cd->ctl);
out_unload:
	cd->api.ModuleUnload(cd->mod);
out_free_mem:
	cd->api.MemFree(cd->base);
out_release_ctx:
	cd->api.DevicePrimaryCtxRelease(cd->dev);
out_free:
	free(cd);
	return ret;
}

/* At close: a record's events and device words. */
static void cuda_rec_release(struct dev_rec *r, void *arg)
{
	struct cuda_fence *rec = (struct cuda_fence *)r;
	struct cuda_dev *cd = arg;

	for (int s = 0; s < CUDA_NSTREAMS; s++)
		if (rec->ev[s])
			cd->api.EventDestroy(rec->ev[s]);
	if (rec->flag)
		cd->api.MemFree(rec->flag);
	if (rec->xbuf)
		cd->api.MemFree(rec->xbuf);
	free(rec->xspans);
}

static void cuda_close(struct dev_unit *d)
{
	struct cuda_dev *cd = d->priv;

	/* a lost device fails these; there is nothing left to wait for then */
	if (!cuda_enter(cd))
		for (int s = 0; s < CUDA_NSTREAMS; s++)
			cd->api.StreamSynchronize(cd->stream[s]);
	dev_rec_pool_destroy(&cd->recs, cuda_rec_release, cd);
	for (int s = 0; s < CUDA_NSTREAMS; s++)
		cd->api.StreamDestroy(cd->stream[s]);
	cd->api.StreamDestroy(cd->ctl);
	cd->api.ModuleUnload(cd->mod);
	cd->api.MemFree(cd->base);
	cd->api.DevicePrimaryCtxRelease(cd->dev);
	free(cd);
}

const struct dev_ops dev_cuda_ops = {
	.name		 = "cuda",
	.version	 = DEV_OPS_VERSION,
	.open		 = cuda_open,
	.close		 = cuda_close,
	.host_register	 = cuda_host_register,
	.host_unregister = cuda_host_unregister,
	.copy		 = cuda_copy,
	.copy_sync	 = cuda_copy_sync,
	.compute	 = cuda_compute,
	.compare	 = cuda_compare,
	.xxh64		 = cuda_xxh64,
	.copy_peer	 = cuda_copy_peer,
	.fence_wait	 = cuda_fence_wait,
};
