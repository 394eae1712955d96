/* SPDX-License-Identifier: MIT */
/*
 * device/xxh64_lanes.h — XXH64 on a device, the part every backend with
 * a hash kernel shares (cuda, opencl).
 *
 * XXH64 is serial within each of its four lanes, so a device kernel can
 * only fold the lanes over whole 32-byte stripes, each lane by one
 * thread.  Everything else stays in the caller's libxxhash state
 * (XXH64_state_t): the lanes go to the device and back around each fold
 * (v[], total_len), and bytes that do not make whole 8-byte-aligned
 * stripes (a span's head while the state holds part of a stripe, its
 * tail, a span that is not aligned) are read back and given to
 * XXH64_update(), which buffers them as for any caller.  Page-aligned
 * ranges are therefore all device work.
 *
 * Addresses here are the backend's own (cuda: a CUdeviceptr; opencl: a
 * buffer and an offset in one number); the helpers never look inside
 * them except for their alignment.
 */
#ifndef HMMFS_DEVICE_XXH64_LANES_H
#define HMMFS_DEVICE_XXH64_LANES_H

#include <stddef.h>
#include <stdint.h>

#define XXH_STATIC_LINKING_ONLY	/* XXH64_state_t's lanes */
#include <xxhash.h>

#if XXH_VERSION_NUMBER < 801
#error "device/xxh64_lanes.c needs the XXH64_state_t of xxHash 0.8.1 (lanes v[4])"
#endif

#define XL_CHECK_BYTES (3 * 4096)	/* the pattern xl_check() hashes */

/* What a backend provides; each call waits for its work.  Return 0 or -errno. */
struct xl_ops {
	/*
	 * Fold @lanes over @n spans {address, length} in order: each span
	 * 8-byte aligned, its length a multiple of 32.
	 */
	int (*fold)(void *ctx, const uint64_t (*spans)[2], size_t n, uint64_t lanes[4]);
	/* Copy @len bytes at device address @a to @buf. */
	int (*read)(void *ctx, uint64_t a, void *buf, size_t len);
	/* Copy @len bytes of @buf to device address @a (xl_check() only). */
	int (*write)(void *ctx, uint64_t a, const void *buf, size_t len);
};

/**
 * struct xl_run - one hash pass in progress.
 * @ops, @ctx: the backend.
 * @st:        the caller's state.
 * @spans:     the backend's table of @max spans, gathered up to a fold.
 * @n, @bytes: spans gathered and their length.
 */
struct xl_run {
	const struct xl_ops *ops;
	void *ctx;
	XXH64_state_t *st;
	uint64_t (*spans)[2];
	size_t n, max;
	uint64_t bytes;
};

/* Feed [@a, @a + @len), then (after the last span) xl_flush(). */
int xl_feed(struct xl_run *x, uint64_t a, size_t len);
int xl_flush(struct xl_run *x);

/*
 * Hash a pattern of every span shape at @pattern (XL_CHECK_BYTES of
 * device memory the caller owns) and compare with libxxhash.  Return: 1
 * if the kernel agrees, 0 if not, or the device's -errno.
 */
int xl_check(const struct xl_ops *ops, void *ctx, uint64_t pattern,
	     uint64_t (*spans)[2], size_t max);

/*
 * xl_check() once per device, its answer kept in *@verdict (0: not yet,
 * 1: the kernel agrees, -1: it does not, which is logged naming @who).
 * Return: 0 if the kernel may be used, -EOPNOTSUPP if not (the caller's
 * device.c hashes through host copies), or the device's -errno (the
 * check runs again next time).
 */
int xl_check_once(_Atomic int *verdict, const char *who, const struct xl_ops *ops,
		  void *ctx, uint64_t pattern, uint64_t (*spans)[2], size_t max);

#endif
