/* SPDX-License-Identifier: MIT */
/*
 * device/device.h — device memory behind one ops table.
 *
 * Device memory is memory the CPU cannot address: a GPU's, or the hostsim
 * backend's private arena.  Code outside a backend names it only by a
 * device address (dev_addr_t), an integer offset into the device's one
 * big allocation, never a pointer, so nothing but the backend can touch
 * it.  Everything that moves bytes is asynchronous, like a DMA engine:
 * a copy is queued against a fence and the caller waits on the fence once
 * for a whole batch.
 *
 * The device tier may be several devices of one backend (units): an
 * address names its unit in its top bits (DEV_UNIT_SHIFT), and every
 * dev_* function finds the unit from the address.
 *
 * This file has two halves:
 *   - struct dev_ops, what a backend provides (hostsim.c, cuda.c);
 *   - the dev_* functions the cache calls (device.c).  device.c carves the
 *     backend's one allocation into frames and keeps the device page table:
 *     one bit per frame saying whether the device maps it read-write.  A
 *     device-side write (dev_compute) to a frame mapped read-only does not
 *     run: it returns -EFAULT, the device write fault, which the cache
 *     handles like page_mkwrite and then retries.
 *
 * Every function returns 0 or -errno.
 */
#ifndef HMMFS_DEVICE_DEVICE_H
#define HMMFS_DEVICE_DEVICE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A byte address in device memory: an offset, never a CPU pointer. */
typedef uint64_t dev_addr_t;

#define DEV_ADDR_NONE UINT64_MAX

/*
 * Several devices: an address names its unit in its top bits (unit 0's
 * addresses are plain offsets); each unit has its own allocation from 0.
 */
#define DEV_MAX_UNITS	8
#define DEV_UNIT_SHIFT	48
#define DEV_NAME_MAX	96	/* a unit's name for people: "POCL / cpu" */

static inline unsigned int dev_addr_unit(dev_addr_t a)
{
	return (unsigned int)(a >> DEV_UNIT_SHIFT);
}

static inline dev_addr_t dev_addr_offset(dev_addr_t a)
{
	return a & ((1ull << DEV_UNIT_SHIFT) - 1);
}

struct device;

/**
 * struct device_config - what to open.
 * @backend:    "hostsim" or "cuda" ("none" is handled by the caller).
 * @mem_bytes:  device memory to allocate (the device_cache budget).
 * @frame_size: bytes per frame (the cache's page size).
 * @bw:         hostsim: copy bandwidth model in bytes/s (0: unlimited).
 * @lat_ns:     hostsim: latency added to each queued operation.
 * @units:      how many devices (0 or 1: one); each gets @mem_bytes.
 * @no_peer:    copies between units always go through host memory, even
 *              where the backend has a peer path (-o device_peer=off).
 * @gpu:        cuda, opencl: the GPU (opencl: the device of the
 *              platform) of unit 0; unit k takes @gpus[k] when @units > 1.
 * @cl_platform: opencl: which platform.
 * @cancelled:  asked by a thread waiting out a modelled delay (hostsim):
 *              true when the request it serves was interrupted, so that
 *              the wait ends now.  May be NULL.
 * @cancel_arg: its argument.
 */
struct device_config {
	const char *backend;
	size_t mem_bytes;
	size_t frame_size;
	uint64_t bw;
	uint64_t lat_ns;
	unsigned int units;
	bool no_peer;
	int gpu;
	int gpus[DEV_MAX_UNITS];
	int cl_platform;
	bool (*cancelled)(void *arg);
	void *cancel_arg;
};

struct dev_unit;

/**
 * struct dev_fence - completion of a batch of queued operations.
 * @pending: operations queued against the fence and not finished
 *           (cuda: queued since the last wait).
 * @error:   the first error of any of them (0 if none).
 * @result:  dev_compare: 0 if the ranges were equal, else non-zero.
 * @hurry:   set by a waiter that must not wait out modelled delays (its
 *           request was interrupted); the operations still run.
 * @units:   bit k: operations were queued on unit k since the last wait
 *           (device.c waits on each).
 * @priv:    the backends' own, one slot per unit (a fence may span
 *           units); zero-initialise.  cuda: while operations are queued
 *           on that unit, its per-stream event record (see cuda.c).
 *
 * Initialise with DEV_FENCE_INIT, queue any number of operations, then
 * dev_fence_wait() once; the fence may then be reused.
 */
struct dev_fence {
	_Atomic uint32_t pending;
	_Atomic int error;
	_Atomic int result;
	_Atomic int hurry;
	_Atomic uint32_t units;
	void *priv[DEV_MAX_UNITS];
};

#define DEV_FENCE_INIT { 0 }

/* Device-side operations over a range (hmmfsctl devop). */
enum dev_op_kind {
	DEV_OP_FILL,	/* every byte = value (low 8 bits) */
	DEV_OP_XOR,	/* every byte ^= value (low 8 bits) */
	DEV_OP_ADD,	/* every byte += value (low 8 bits), modulo 256 */
	DEV_OP_NR
};

/* A range of device memory. */
struct dev_span {
	dev_addr_t addr;
	size_t len;
};

/* Which way a copy goes. */
enum dev_copy_dir {
	DEV_H2D,
	DEV_D2H,
	DEV_D2D
};

/**
 * struct dev_copy - one queued copy.
 * @dir:  direction.
 * @host: host side (H2D: source, D2H: destination); unused for D2D.
 * @dst, @src: device side; for H2D only @dst is used, for D2H only @src.
 * @len:  bytes.
 */
struct dev_copy {
	enum dev_copy_dir dir;
	void *host;
	dev_addr_t dst;
	dev_addr_t src;
	size_t len;
};

/**
 * struct dev_ops - a device-memory backend.
 *
 * Queued operations may run in any order relative to each other, except
 * that all operations queued by one thread on one fence are complete when
 * fence_wait() returns.  Host memory given to copies is either inside a
 * range passed to host_register() (pinned: full speed) or any other host
 * memory (the backend may stage it).
 */
struct dev_ops {
	const char *name;
	int version;	/* DEV_OPS_VERSION */

	/*
	 * Open the device and allocate @cfg->mem_bytes of device memory as
	 * one allocation whose addresses run from 0.  Store backend state
	 * in d->priv.  Required.  Return: 0, or -errno with a message for
	 * the user in @err.
	 */
	int (*open)(struct dev_unit *d, const struct device_config *cfg,
		    char *err, size_t errlen);
	/* Wait for everything queued, free it all.  Required. */
	void (*close)(struct dev_unit *d);
	/*
	 * Pin [@p, @p + @len) of host memory for fast copies (the frame
	 * arena, the bounce pool).  Not required.
	 */
	int (*host_register)(struct dev_unit *d, void *p, size_t len);
	void (*host_unregister)(struct dev_unit *d, void *p);
	/* Queue a copy.  Required.  Return: 0 if queued, or -errno. */
	int (*copy)(struct dev_unit *d, const struct dev_copy *cp,
		    struct dev_fence *f);
	/*
	 * Run the @n copies @cp now and return when they are all done: the
	 * synchronous fast path, in the calling thread, with no hand-off to
	 * another thread and no sleep for a short wait (hostsim: memcpy under
	 * its model; cuda: queued on the thread's stream, then polled).  Not
	 * required.  dev_copy_batch() picks it or copy + fence_wait by
	 * measured cost.  Return: 0 or -errno (-ENODEV: the device is lost).
	 */
	int (*copy_sync)(struct dev_unit *d, const struct dev_copy *cp, size_t n);
	/*
	 * Queue @op with @value over [@dst, @dst + @len) of device memory
	 * (DEV_OP_FILL also serves dev_fill()).  Required.
	 */
	int (*compute)(struct dev_unit *d, enum dev_op_kind op, dev_addr_t dst,
		       size_t len, uint64_t value, struct dev_fence *f);
	/*
	 * Queue a comparison of [@a, @a + @len) with [@b, @b + @len); the
	 * fence's result becomes non-zero if they differ (it is never reset
	 * to zero by a later equal comparison).  Not required: without it
	 * device.c compares through host copies.
	 */
	int (*compare)(struct dev_unit *d, dev_addr_t a, dev_addr_t b,
		       size_t len, struct dev_fence *f);
	/*
	 * Queue a read-only pass over @n spans of device memory, in order,
	 * feeding their bytes to the XXH64 state @xxh64_state (an
	 * XXH64_state_t of the caller's, valid until the fence is waited).
	 * Not required: without it, or when it returns -EOPNOTSUPP having
	 * touched nothing, device.c hashes host copies.
	 */
	int (*xxh64)(struct dev_unit *d, const struct dev_span *sp, size_t n,
		     void *xxh64_state, struct dev_fence *f);
	/*
	 * Queue a peer copy from unit @from (same backend) to unit @d, on
	 * @d's engine: no staging in host memory.  Not required: without it
	 * (or with device_config.no_peer) copies between units go through a
	 * host buffer.
	 */
	int (*copy_peer)(struct dev_unit *d, dev_addr_t dst, struct dev_unit *from,
			 dev_addr_t src, size_t len, struct dev_fence *f);
	/*
	 * Wait for every operation queued on @f.  Required.  Return: the
	 * fence's first error (a lost device: -ENODEV; a bad address: -EFAULT
	 * must never happen, since device.c checks addresses).
	 */
	int (*fence_wait)(struct dev_unit *d, struct dev_fence *f);
};

#define DEV_OPS_VERSION 1

/*
 * Fence records, for backends that keep state per fence (cuda, opencl):
 * a record is the backend's half of a dev_fence, f->priv[unit], from the
 * first operation queued on the fence to its wait, and then goes back to
 * its unit's pool.  The backend's record type begins with a struct
 * dev_rec, whose @lock guards the backend's fields while threads queue
 * on the fence.  Records are freed only by dev_rec_pool_destroy(), at
 * close, so a record loaded from f->priv stays valid.
 */
struct dev_rec {
	pthread_mutex_t lock;
	struct dev_rec *next_free, *next_all;
};

/* A unit's records: @lock guards @free and @all (a leaf). */
struct dev_rec_pool {
	pthread_mutex_t lock;
	struct dev_rec *free, *all;
	size_t size;		/* of the backend's record type */
};

void dev_rec_pool_init(struct dev_rec_pool *p, size_t size);
/* @f's record for unit @slot, attached (made zeroed, or reused) if none. */
struct dev_rec *dev_rec_get(struct dev_rec_pool *p, struct dev_fence *f,
			    unsigned int slot);
/* @f's record for @slot, or NULL; it stays attached. */
struct dev_rec *dev_rec_peek(struct dev_fence *f, unsigned int slot);
/* Detach @f's record for @slot (the wait's); NULL if none. */
struct dev_rec *dev_rec_detach(struct dev_fence *f, unsigned int slot);
void dev_rec_put(struct dev_rec_pool *p, struct dev_rec *r);
/* At close: @release frees each record's backend resources, then the record goes. */
void dev_rec_pool_destroy(struct dev_rec_pool *p,
			  void (*release)(struct dev_rec *r, void *arg), void *arg);

/*
 * The two ways dev_copy_batch() runs a batch: the backend's synchronous
 * fast path, or queued to its engine with one fence wait.
 */
enum dev_copy_path {
	DEV_PATH_SYNC,
	DEV_PATH_ASYNC,
	DEV_PATH_NR,
	DEV_PATH_AUTO = DEV_PATH_NR	/* choose by measured cost */
};

/**
 * struct dev_path_cost - what running a batch one way has cost, learnt
 * from the batches run that way (a moving average; see device.c).
 * @fixed_ns:    per batch, whatever its size: hand-off, latency, wake-up.
 * @ps_per_byte: per byte moved, in picoseconds.
 * @batches:     batches run this way.
 */
struct dev_path_cost {
	_Atomic uint64_t fixed_ns;
	_Atomic uint64_t ps_per_byte;
	_Atomic uint64_t batches;
};

/**
 * struct dev_unit - one open device: one backend instance, one allocation.
 * @ops:       its backend.
 * @priv:      the backend's state.
 * @cfg:       what it was opened with (@cfg.gpu: its GPU).
 * @id:        its number in the set (the top bits of its addresses).
 * @nframes:   frames in device memory.
 * @lock:      guards @free and @nfree.
 * @free:      stack of free frame numbers; frames from @bump up were
 *             never handed out.
 * @writable:  the device page table: one bit per frame, set while the
 *             device maps it read-write.  Atomic words; see dev_protect().
 * @lost:      set once the backend reported the device gone.
 * @hurry:     set by dev_hurry(): modelled delays are no longer waited.
 * @used:      frames handed out.
 * @cost:      per enum dev_copy_path, what a batch costs that way.
 * @choices:   batches dev_copy_batch() chose a path for (it tries the
 *             other path every DEV_PATH_PROBE-th time, to keep learning).
 * @path:      DEV_PATH_AUTO, or the path every batch takes (-o device_copy).
 * @copies_in, @copies_out, @faults: counters for dev_unit_stats().
 * @peer_in, @staged_in: of @copies_in, those from another unit, by the
 *             peer path or through host memory.
 * @name:      for people (hmmfsctl stats): the backend may set it at
 *             open (opencl: "platform / device"); else "BACKEND N".
 */
struct dev_unit {
	const struct dev_ops *ops;
	void *priv;
	struct device_config cfg;
	unsigned int id;
	size_t nframes;
	pthread_mutex_t lock;
	uint32_t *free;
	size_t nfree, bump;
	_Atomic uint64_t *writable;
	_Atomic int lost;
	_Atomic int hurry;
	_Atomic size_t used;
	struct dev_path_cost cost[DEV_PATH_NR];
	_Atomic uint64_t choices;
	enum dev_copy_path path;
	_Atomic uint64_t copies_in, copies_out, faults;
	_Atomic uint64_t peer_in, staged_in;
	char name[DEV_NAME_MAX];
};

/**
 * struct device - the device tier: one or more units of one backend
 * (-o devices=N with hostsim, a GPU per unit with cuda).  Every dev_*
 * function below takes it and finds the unit from the address.
 */
struct device {
	unsigned int nunits;
	struct dev_unit *unit[DEV_MAX_UNITS];
};

/* Per-unit figures (hmmfsctl stats: "devices"). */
struct dev_unit_stats {
	uint64_t frames, frames_used, frames_hwm;
	uint64_t copies_in, copies_out, faults;
	uint64_t peer_in, staged_in;
	char name[DEV_NAME_MAX];
};

extern const struct dev_ops dev_hostsim_ops;
extern const struct dev_ops dev_cuda_ops;
extern const struct dev_ops dev_opencl_ops;

/* Open the backend @cfg->backend.  @err gets a message on failure. */
int dev_open(const struct device_config *cfg, struct device **out,
	     char *err, size_t errlen);
void dev_close(struct device *d);
/*
 * The daemon is ending: from now on no wait is stretched by a bandwidth
 * or latency model (hostsim), so what is left to write back goes at the
 * speed of memory.  Waits already sleeping end within milliseconds.
 */
void dev_hurry(struct device *d);
/* For backends: should a wait of this thread end its modelled delay now?
 * (dev_hurry(), or the thread's request was interrupted:
 * device_config.cancelled) */
bool dev_unit_cut_short(struct dev_unit *u);
const char *dev_name(const struct device *d);
unsigned int dev_units(const struct device *d);
void dev_unit_stats(const struct device *d, unsigned int unit,
		    struct dev_unit_stats *st);
/* Has a unit been reported gone? */
bool dev_lost(const struct device *d);
/* Has unit @k been reported gone? */
bool dev_unit_lost(const struct device *d, unsigned int k);
/* The units reported gone, bit k for unit k. */
uint32_t dev_lost_units(const struct device *d);

/*
 * A free frame (mapped read-only) on @unit, or on the unit with the most
 * free frames (dev_frame_alloc).  Return: 0, or -ENOSPC when full.
 */
int dev_frame_alloc(struct device *d, dev_addr_t *out);
int dev_frame_alloc_on(struct device *d, unsigned int unit, dev_addr_t *out);
void dev_frame_free(struct device *d, dev_addr_t a);
/* Frames of all units: in all, in use, the most ever in use at once. */
size_t dev_frames_total(const struct device *d);
size_t dev_frames_used(const struct device *d);
size_t dev_frames_hwm(struct device *d);

int dev_host_register(struct device *d, void *p, size_t len);
void dev_host_unregister(struct device *d, void *p);

/* Queue copies; wait with dev_fence_wait(). */
int dev_copy_to_device(struct device *d, dev_addr_t dst, const void *src,
		       size_t len, struct dev_fence *f);
int dev_copy_to_host(struct device *d, void *dst, dev_addr_t src, size_t len,
		     struct dev_fence *f);
int dev_copy_on_device(struct device *d, dev_addr_t dst, dev_addr_t src,
		       size_t len, struct dev_fence *f);
/*
 * dev_copy_batch() - run @n copies (any directions) and wait for them:
 * through the backend's synchronous fast path or its engine, whichever
 * has been cheaper for a batch of this many bytes (see device.c).  For
 * the latency-bound callers (a read or write of a few device pages);
 * bulk movers queue on fences.  Return: 0, or the first -errno.
 */
int dev_copy_batch(struct device *d, const struct dev_copy *cp, size_t n);
/* Force a path for every batch, or DEV_PATH_AUTO (the default). */
void dev_copy_path_set(struct device *d, enum dev_copy_path path);
/* Batches run each way so far (for stats). */
uint64_t dev_copy_batches(struct device *d, enum dev_copy_path path);
/* Driver-side fill (not a device write: ignores the page table). */
int dev_fill(struct device *d, dev_addr_t dst, uint8_t byte, size_t len,
	     struct dev_fence *f);

/*
 * dev_compute() - a device-side write: @op over [@dst, @dst + @len).
 * Return: 0 if queued; -EFAULT, the device write fault, if a frame of the
 * range is mapped read-only (nothing was queued).
 */
int dev_compute(struct device *d, enum dev_op_kind op, dev_addr_t dst,
		size_t len, uint64_t value, struct dev_fence *f);

/* Queue a compare of two device ranges (result in the fence). */
int dev_compare(struct device *d, dev_addr_t a, dev_addr_t b, size_t len,
		struct dev_fence *f);

int dev_fence_wait(struct device *d, struct dev_fence *f);

/*
 * dev_xxh64() - a read-only device operation: feed the bytes of @n spans,
 * all on one unit, in order, to the XXH64 state @xxh64_state (an
 * XXH64_state_t), and wait for it.  It never faults: replicas and
 * read-only frames are read like any other.  Return: 0 or -errno.
 */
int dev_xxh64(struct device *d, const struct dev_span *sp, size_t n,
	      void *xxh64_state);

/* CLOCK_MONOTONIC in nanoseconds (the backends' models and the cost model). */
uint64_t dev_clock_ns(void);

/*
 * The device page table.  dev_protect() maps frame @a read-write (@rw) or
 * read-only.  Making a frame read-only is ordered before any later
 * dev_compute() by the caller's own locking (the cache holds the page
 * lock around both).
 */
void dev_protect(struct device *d, dev_addr_t a, bool rw);
bool dev_writable(struct device *d, dev_addr_t a);

#endif
