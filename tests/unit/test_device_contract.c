/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/test_device_contract.c — device/: the contract every backend
 * keeps, run against each backend named in HMMFS_TEST_DEVICES (a comma
 * list; default "hostsim").  Frames: allocation to exhaustion, -ENOSPC,
 * reuse.  Copies both ways and on the device, a batch of 256 on one fence,
 * fill, the compute ops with exact bytes, compare, the device page table
 * (new frames read-only; a device write to a read-only frame faults and
 * changes nothing; read-write after dev_protect), range checks, four
 * threads at once, and an unknown backend.  Copy batches: both paths
 * (the synchronous fast path and the engine) move the same bytes, fail
 * the same way under fault injection, and, on hostsim, the cheaper one
 * is chosen while a kept-busy engine still completes what it is given.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "device/device.h"
#include "fault/fault.h"
#include "tests/unit/unit.h"

#define FS 4096
#define NFRAMES 512

static char backends[256];

static struct device *open_dev(const char *name, size_t frames)
{
	struct device_config cfg = { .backend = name, .mem_bytes = frames * FS,
				     .frame_size = FS };
	struct device *d = NULL;
	char err[256] = "";
	int ret = dev_open(&cfg, &d, err, sizeof(err));

	if (ret)
		fprintf(stderr, "device %s: %s\n", name, err);
	CU_ASSERT_EQUAL_FATAL(ret, 0);
	return d;
}

/* Run @fn once per backend under test. */
static void each_backend(void (*fn)(const char *name))
{
	char list[256], *save = NULL;

	snprintf(list, sizeof(list), "%s", backends);
	for (char *n = strtok_r(list, ",", &save); n; n = strtok_r(NULL, ",", &save))
		fn(n);
}

static void frames(const char *name)
{
	struct device *d = open_dev(name, 8);
	dev_addr_t a[9];

	CU_ASSERT_EQUAL(dev_frames_total(d), 8);
	for (int i = 0; i < 8; i++) {
		CU_ASSERT_EQUAL(dev_frame_alloc(d, &a[i]), 0);
		CU_ASSERT_EQUAL(a[i] % FS, 0);
		for (int j = 0; j < i; j++)
			CU_ASSERT_NOT_EQUAL(a[i], a[j]);
	}
	CU_ASSERT_EQUAL(dev_frames_used(d), 8);
	CU_ASSERT_EQUAL(dev_frame_alloc(d, &a[8]), -ENOSPC);
	dev_frame_free(d, a[3]);
	CU_ASSERT_EQUAL(dev_frame_alloc(d, &a[8]), 0);
	CU_ASSERT_EQUAL(a[8], a[3]);
	dev_close(d);
}

static void test_frames(void) { each_backend(frames); }

static void copies(const char *name)
{
	struct device *d = open_dev(name, NFRAMES);
	struct dev_fence f = DEV_FENCE_INIT;
	char *src = malloc(256 * FS), *dst = malloc(256 * FS);
	dev_addr_t a[256];

	for (size_t i = 0; i < 256 * FS; i++)
		src[i] = (char)(i * 7 + i / FS);
	memset(dst, 0, 256 * FS);
	for (int i = 0; i < 256; i++) {
		CU_ASSERT_EQUAL_FATAL(dev_frame_alloc(d, &a[i]), 0);
		CU_ASSERT_EQUAL(dev_copy_to_device(d, a[i], src + i * FS, FS, &f), 0);
	}
	CU_ASSERT_EQUAL(dev_fence_wait(d, &f), 0);
	/* back in reverse order, on the same fence, reused */
	for (int i = 255; i >= 0; i--)
		CU_ASSERT_EQUAL(dev_copy_to_host(d, dst + i * FS, a[i], FS, &f), 0);
	CU_ASSERT_EQUAL(dev_fence_wait(d, &f), 0);
	CU_ASSERT_EQUAL(memcmp(src, dst, 256 * FS), 0);
	/* on the device: frame 0 := frame 1, then partial ranges */
	CU_ASSERT_EQUAL(dev_copy_on_device(d, a[0], a[1], FS, &f), 0);
	CU_ASSERT_EQUAL(dev_fence_wait(d, &f), 0);
	CU_ASSERT_EQUAL(dev_copy_to_host(d, dst, a[0], FS, &f), 0);
	CU_ASSERT_EQUAL(dev_copy_to_host(d, dst + FS, a[2] + 100, 50, &f), 0);
	CU_ASSERT_EQUAL(dev_fence_wait(d, &f), 0);
	CU_ASSERT_EQUAL(memcmp(dst, src + FS, FS), 0);
	CU_ASSERT_EQUAL(memcmp(dst + FS, src + 2 * FS + 100, 50), 0);
	free(src);
	free(dst);
	dev_close(d);
}

static void test_copies(void) { each_backend(copies); }

static void compute(const char *name)
{
	struct device *d = open_dev(name, NFRAMES);
	struct dev_fence f = DEV_FENCE_INIT;
	unsigned char buf[FS], want[FS];
	dev_addr_t a;

	CU_ASSERT_EQUAL_FATAL(dev_frame_alloc(d, &a), 0);
	/* dev_fill is the driver's, not a device write: no fault */
	CU_ASSERT_EQUAL(dev_fill(d, a, 0x5a, FS, &f), 0);
	CU_ASSERT_EQUAL(dev_fence_wait(d, &f), 0);
	/* a new frame is mapped read-only: the device write faults */
	CU_ASSERT_FALSE(dev_writable(d, a));
	CU_ASSERT_EQUAL(dev_compute(d, DEV_OP_XOR, a, FS, 0xff, &f), -EFAULT);
	CU_ASSERT_EQUAL(dev_fence_wait(d, &f), 0);
	dev_protect(d, a, true);
	CU_ASSERT_TRUE(dev_writable(d, a));
	CU_ASSERT_EQUAL(dev_compute(d, DEV_OP_XOR, a + 10, 20, 0x0f, &f), 0);
	CU_ASSERT_EQUAL(dev_compute(d, DEV_OP_ADD, a + 20, 20, 0xb0, &f), 0);
	CU_ASSERT_EQUAL(dev_fence_wait(d, &f), 0);
	CU_ASSERT_EQUAL(dev_copy_to_host(d, buf, a, FS, &f), 0);
	CU_ASSERT_EQUAL(dev_fence_wait(d, &f), 0);
	memset(want, 0x5a, FS);
	for (int i = 10; i < 30; i++)
		want[i] ^= 0x0f;
	for (int i = 20; i < 40; i++)
		want[i] = (unsigned char)(want[i] + 0xb0);
	CU_ASSERT_EQUAL(memcmp(buf, want, FS), 0);
	/* freed and reallocated: read-only again */
	dev_frame_free(d, a);
	CU_ASSERT_EQUAL(dev_frame_alloc(d, &a), 0);
	CU_ASSERT_FALSE(dev_writable(d, a));
	CU_ASSERT_EQUAL(dev_compute(d, DEV_OP_FILL, a, FS, 1, &f), -EFAULT);
	dev_close(d);
}

static void test_compute(void) { each_backend(compute); }

static void compare(const char *name)
{
	struct device *d = open_dev(name, NFRAMES);
	struct dev_fence f = DEV_FENCE_INIT;
	dev_addr_t a, b;

	CU_ASSERT_EQUAL_FATAL(dev_frame_alloc(d, &a), 0);
	CU_ASSERT_EQUAL_FATAL(dev_frame_alloc(d, &b), 0);
	dev_fill(d, a, 7, FS, &f);
	dev_fill(d, b, 7, FS, &f);
	CU_ASSERT_EQUAL(dev_fence_wait(d, &f), 0);
	CU_ASSERT_EQUAL(dev_compare(d, a, b, FS, &f), 0);
	CU_ASSERT_EQUAL(dev_fence_wait(d, &f), 0);
	CU_ASSERT_EQUAL(atomic_load(&f.result), 0);
	dev_fill(d, b + FS - 1, 8, 1, &f);	/* the last byte differs */
	CU_ASSERT_EQUAL(dev_fence_wait(d, &f), 0);
	CU_ASSERT_EQUAL(dev_compare(d, a, b, FS, &f), 0);
	CU_ASSERT_EQUAL(dev_fence_wait(d, &f), 0);
	CU_ASSERT_NOT_EQUAL(atomic_load(&f.result), 0);
	dev_close(d);
}

static void test_compare(void) { each_backend(compare); }

/*
 * The read-only hash: spans that are whole pages, that end or begin in
 * a stripe, and that are not aligned, in one call and split over calls,
 * equal libxxhash over the same bytes; the bytes are left as they were.
 */
static void xxh64(const char *name)
{
	static const struct dev_span shape[] = {
		{ 0, FS }, { FS, FS }, { 2 * FS + 8, 104 }, { 2 * FS + 200, 1000 },
		{ 2 * FS + 1203, 777 }, { 2 * FS + 1025, 3000 }, { 3 * FS, FS },
		{ 2 * FS + 1, 1 },
	};
	const size_t nspans = sizeof(shape) / sizeof(shape[0]);
	struct device *d = open_dev(name, 8);
	struct dev_fence f = DEV_FENCE_INIT;
	unsigned char *pat = malloc(4 * FS), *back = malloc(4 * FS);
	struct dev_span sp[sizeof(shape) / sizeof(shape[0])];
	XXH64_state_t *want = XXH64_createState(), *got = XXH64_createState();
	dev_addr_t base;

	CU_ASSERT_EQUAL_FATAL(dev_frame_alloc(d, &base), 0);
	for (int i = 1; i < 4; i++) {
		dev_addr_t a;

		CU_ASSERT_EQUAL_FATAL(dev_frame_alloc(d, &a), 0);
		CU_ASSERT_EQUAL_FATAL(a, base + (dev_addr_t)i * FS);
	}
	for (int i = 0; i < 4 * FS; i++)
		pat[i] = (unsigned char)(i * 7 + i / 251);
	CU_ASSERT_EQUAL(dev_copy_to_device(d, base, pat, 4 * FS, &f), 0);
	CU_ASSERT_EQUAL(dev_fence_wait(d, &f), 0);
	XXH64_reset(want, 42);
	for (size_t i = 0; i < nspans; i++) {
		XXH64_update(want, pat + shape[i].addr, shape[i].len);
		sp[i] = (struct dev_span){ base + shape[i].addr, shape[i].len };
	}
	XXH64_reset(got, 42);
	CU_ASSERT_EQUAL(dev_xxh64(d, sp, nspans, got), 0);
	CU_ASSERT_EQUAL(XXH64_digest(got), XXH64_digest(want));
	XXH64_reset(got, 42);	/* one span per call: the state carries over */
	for (size_t i = 0; i < nspans; i++)
		CU_ASSERT_EQUAL(dev_xxh64(d, &sp[i], 1, got), 0);
	CU_ASSERT_EQUAL(XXH64_digest(got), XXH64_digest(want));
	CU_ASSERT_EQUAL(dev_copy_to_host(d, back, base, 4 * FS, &f), 0);
	CU_ASSERT_EQUAL(dev_fence_wait(d, &f), 0);
	CU_ASSERT_EQUAL(memcmp(back, pat, 4 * FS), 0);
	XXH64_freeState(want);
	XXH64_freeState(got);
	free(pat);
	free(back);
	dev_close(d);
}

static void test_xxh64(void) { each_backend(xxh64); }

static void ranges(const char *name)
{
	struct device *d = open_dev(name, 4);
	struct dev_fence f = DEV_FENCE_INIT;
	char buf[FS];

	CU_ASSERT_EQUAL(dev_copy_to_host(d, buf, 4 * FS, 1, &f), -EINVAL);
	CU_ASSERT_EQUAL(dev_copy_to_host(d, buf, 3 * FS + 1, FS, &f), -EINVAL);
	CU_ASSERT_EQUAL(dev_copy_to_device(d, UINT64_MAX - 10, buf, 20, &f), -EINVAL);
	CU_ASSERT_EQUAL(dev_copy_on_device(d, 0, 0, 0, &f), -EINVAL);
	CU_ASSERT_EQUAL(dev_fill(d, 2 * FS, 0, 3 * FS, &f), -EINVAL);
	CU_ASSERT_EQUAL(dev_compute(d, DEV_OP_NR, 0, 1, 0, &f), -EINVAL);
	CU_ASSERT_EQUAL(dev_fence_wait(d, &f), 0);
	dev_close(d);
}

static void test_ranges(void) { each_backend(ranges); }

struct hammer {
	struct device *d;
	int id, bad;
};

static void *hammer_main(void *arg)
{
	struct hammer *h = arg;
	struct dev_fence f = DEV_FENCE_INIT;
	char src[FS], dst[FS];
	dev_addr_t a;

	if (dev_frame_alloc(h->d, &a)) {
		h->bad++;
		return NULL;
	}
	for (int i = 0; i < 500; i++) {
		memset(src, h->id * 31 + i, FS);
		dev_copy_to_device(h->d, a, src, FS, &f);
		dev_fence_wait(h->d, &f);
		dev_copy_to_host(h->d, dst, a, FS, &f);
		if (dev_fence_wait(h->d, &f) || memcmp(src, dst, FS))
			h->bad++;
	}
	dev_frame_free(h->d, a);
	return NULL;
}

static void threads(const char *name)
{
	struct device *d = open_dev(name, NFRAMES);
	struct hammer h[4];
	pthread_t th[4];

	for (int i = 0; i < 4; i++) {
		h[i] = (struct hammer){ .d = d, .id = i };
		pthread_create(&th[i], NULL, hammer_main, &h[i]);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		CU_ASSERT_EQUAL(h[i].bad, 0);
	}
	CU_ASSERT_EQUAL(dev_frames_used(d), 0);
	dev_close(d);
}

static void test_threads(void) { each_backend(threads); }

/* Run @cp through @path; the batch counter of that path goes up by one. */
static int batch_on(struct device *d, enum dev_copy_path path,
		    const struct dev_copy *cp, size_t n)
{
	uint64_t before = dev_copy_batches(d, path);
	int ret;

	dev_copy_path_set(d, path);
	ret = dev_copy_batch(d, cp, n);
	dev_copy_path_set(d, DEV_PATH_AUTO);
	if (!ret)
		CU_ASSERT_EQUAL(dev_copy_batches(d, path), before + 1);
	return ret;
}

/*
 * Both paths, each direction: 16 frames in (one run of 3, then pages one
 * by one), back out whole and partly, and on the device.
 */
static void batches(const char *name)
{
	struct device *d = open_dev(name, 64);
	char *src = malloc(16 * FS), *dst = malloc(16 * FS);
	dev_addr_t a[16];

	for (size_t i = 0; i < 16 * FS; i++)
		src[i] = (char)(i * 13 + i / FS);
	for (int i = 0; i < 16; i++)
		CU_ASSERT_EQUAL_FATAL(dev_frame_alloc(d, &a[i]), 0);
	CU_ASSERT_EQUAL_FATAL(a[2], a[0] + 2 * FS);	/* new frames run in order */
	for (int path = 0; path < DEV_PATH_NR; path++) {
		struct dev_copy in[14], out[2];

		in[0] = (struct dev_copy){ .dir = DEV_H2D, .host = src, .dst = a[0],
					   .len = 3 * FS };
		for (int i = 3; i < 16; i++)
			in[i - 2] = (struct dev_copy){ .dir = DEV_H2D, .host = src + i * FS,
						       .dst = a[i], .len = FS };
		CU_ASSERT_EQUAL(batch_on(d, path, in, 14), 0);
		memset(dst, 0, 16 * FS);
		out[0] = (struct dev_copy){ .dir = DEV_D2H, .host = dst, .src = a[0],
					    .len = 16 * FS };
		CU_ASSERT_EQUAL(batch_on(d, path, out, 1), 0);
		CU_ASSERT_EQUAL(memcmp(dst, src, 16 * FS), 0);
		/* a part of a frame; frame 5 := frame 6 on the device */
		out[0] = (struct dev_copy){ .dir = DEV_D2D, .dst = a[5], .src = a[6],
					    .len = FS };
		out[1] = (struct dev_copy){ .dir = DEV_D2H, .host = dst, .src = a[9] + 7,
					    .len = 100 };
		CU_ASSERT_EQUAL(batch_on(d, path, out, 2), 0);
		CU_ASSERT_EQUAL(memcmp(dst, src + 9 * FS + 7, 100), 0);
		out[0] = (struct dev_copy){ .dir = DEV_D2H, .host = dst, .src = a[5],
					    .len = FS };
		CU_ASSERT_EQUAL(batch_on(d, path, out, 1), 0);
		CU_ASSERT_EQUAL(memcmp(dst, src + 6 * FS, FS), 0);
		/* out of range: refused before either path runs */
		out[0].src = dev_frames_total(d) * FS;
		CU_ASSERT_EQUAL(dev_copy_batch(d, out, 1), -EINVAL);
	}
	free(src);
	free(dst);
	dev_close(d);
}

static void test_batches(void) { each_backend(batches); }

/* An injected copy failure comes back from either path, then goes. */
static void batch_faults(const char *name)
{
	struct device *d = open_dev(name, 8);
	char buf[FS], err[128];
	dev_addr_t a;

	CU_ASSERT_EQUAL_FATAL(dev_frame_alloc(d, &a), 0);
	setenv("HMMFS_FAULT", "dev_copy:eio:dir=d2h", 1);
	CU_ASSERT_EQUAL_FATAL(fault_init(err, sizeof(err)), 0);
	for (int path = 0; path < DEV_PATH_NR; path++)
		CU_ASSERT_EQUAL(batch_on(d, path, &(struct dev_copy){ .dir = DEV_D2H,
				.host = buf, .src = a, .len = FS }, 1), -EIO);
	unsetenv("HMMFS_FAULT");
	CU_ASSERT_EQUAL_FATAL(fault_init(err, sizeof(err)), 0);
	for (int path = 0; path < DEV_PATH_NR; path++)
		CU_ASSERT_EQUAL(batch_on(d, path, &(struct dev_copy){ .dir = DEV_D2H,
				.host = buf, .src = a, .len = FS }, 1), 0);
	dev_close(d);
}

static void test_batch_faults(void) { each_backend(batch_faults); }

struct busy {
	struct device *d;
	dev_addr_t a, b;
	atomic_int stop;
	int errors;
};

/* Keep hostsim's engine busy with 4 MiB device-to-device copies. */
static void *busy_main(void *arg)
{
	struct busy *bz = arg;

	while (!atomic_load(&bz->stop)) {
		struct dev_fence f = DEV_FENCE_INIT;

		for (int i = 0; i < 4; i++)
			bz->errors += dev_copy_on_device(bz->d, bz->a, bz->b, 4 << 20, &f) != 0;
		bz->errors += dev_fence_wait(bz->d, &f) != 0;
	}
	return NULL;
}

/* 1-page batches in auto mode, each checked: how many went each way. */
static void auto_batches(struct device *d, dev_addr_t a, const char *want,
			 int n, uint64_t *sync, uint64_t *async)
{
	uint64_t s0 = dev_copy_batches(d, DEV_PATH_SYNC);
	uint64_t a0 = dev_copy_batches(d, DEV_PATH_ASYNC);
	char got[FS];

	for (int i = 0; i < n; i++) {
		memset(got, 0, FS);
		CU_ASSERT_EQUAL(dev_copy_batch(d, &(struct dev_copy){ .dir = DEV_D2H,
				.host = got, .src = a, .len = FS }, 1), 0);
		CU_ASSERT_EQUAL(memcmp(got, want, FS), 0);
	}
	*sync = dev_copy_batches(d, DEV_PATH_SYNC) - s0;
	*async = dev_copy_batches(d, DEV_PATH_ASYNC) - a0;
}

/*
 * hostsim: a 4 KiB batch costs a memcpy on the fast path and a hand-off
 * and a wake-up through the engine, so the fast path is chosen, and every
 * 64th batch still tries the engine.  With the engine kept busy the
 * engine's batches wait behind 4 MiB copies and still complete, and the
 * fast path stays the choice.
 */
static void test_batch_choice(void)
{
	struct device *d = open_dev("hostsim", 4096);	/* 16 MiB */
	struct busy bz = { .d = d };
	char want[FS];
	uint64_t sync, async;
	dev_addr_t a;
	pthread_t th;

	CU_ASSERT_EQUAL_FATAL(dev_frame_alloc(d, &a), 0);
	memset(want, 0x3c, FS);
	CU_ASSERT_EQUAL(batch_on(d, DEV_PATH_ASYNC, &(struct dev_copy){
			.dir = DEV_H2D, .host = want, .dst = a, .len = FS }, 1), 0);
	auto_batches(d, a, want, 640, &sync, &async);
	CU_ASSERT_EQUAL(sync + async, 640);
	CU_ASSERT_TRUE(sync > async);
	CU_ASSERT_TRUE(async >= 640 / 64 - 1);	/* the probes */
	bz.a = 4 << 20;
	bz.b = 8 << 20;
	CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, busy_main, &bz), 0);
	auto_batches(d, a, want, 320, &sync, &async);
	CU_ASSERT_TRUE(sync > async);
	CU_ASSERT_TRUE(async >= 320 / 64 - 1);
	/* forced through the busy engine: slow, complete */
	for (int i = 0; i < 4; i++) {
		char got[FS] = { 0 };

		CU_ASSERT_EQUAL(batch_on(d, DEV_PATH_ASYNC, &(struct dev_copy){
				.dir = DEV_D2H, .host = got, .src = a, .len = FS }, 1), 0);
		CU_ASSERT_EQUAL(memcmp(got, want, FS), 0);
	}
	atomic_store(&bz.stop, 1);
	pthread_join(th, NULL);
	CU_ASSERT_EQUAL(bz.errors, 0);
	dev_close(d);
}

/*
 * Several hostsim devices behind one struct device: addresses carry their
 * unit, frames come from the unit named (or the emptiest), copies and
 * compares between units go through the host, one fence may span units.
 */
static void test_units(void)
{
	struct device_config cfg = { .backend = "hostsim", .mem_bytes = 8 * FS,
				     .frame_size = FS, .units = 3 };
	struct dev_fence f = DEV_FENCE_INIT;
	static char src[FS], got[2][FS];
	struct dev_unit_stats st;
	struct dev_copy cp[2];
	dev_addr_t a0, a2, any, b1;
	struct device *d = NULL;
	char err[256];

	CU_ASSERT_EQUAL_FATAL(dev_open(&cfg, &d, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(dev_units(d), 3);
	CU_ASSERT_EQUAL(dev_frames_total(d), 24);
	CU_ASSERT_EQUAL(dev_frame_alloc_on(d, 0, &a0), 0);
	CU_ASSERT_EQUAL(dev_frame_alloc_on(d, 2, &a2), 0);
	CU_ASSERT_EQUAL(dev_addr_unit(a0), 0);
	CU_ASSERT_EQUAL(dev_addr_unit(a2), 2);
	CU_ASSERT_EQUAL(dev_frame_alloc_on(d, 3, &any), -EINVAL);
	CU_ASSERT_EQUAL(dev_frame_alloc(d, &any), 0);	/* the emptiest: unit 1 */
	CU_ASSERT_EQUAL(dev_addr_unit(any), 1);
	b1 = any;
	memset(src, 'u', sizeof(src));
	/* unit 2, then across to unit 0, then both back in one batch */
	CU_ASSERT_EQUAL(dev_copy_to_device(d, a2, src, FS, &f), 0);
	CU_ASSERT_EQUAL(dev_fence_wait(d, &f), 0);
	CU_ASSERT_EQUAL(dev_copy_on_device(d, a0, a2, FS, &f), 0);
	CU_ASSERT_EQUAL(dev_fence_wait(d, &f), 0);
	cp[0] = (struct dev_copy){ .dir = DEV_D2H, .host = got[0], .src = a0, .len = FS };
	cp[1] = (struct dev_copy){ .dir = DEV_D2D, .dst = b1, .src = a2, .len = FS };
	CU_ASSERT_EQUAL(dev_copy_batch(d, cp, 2), 0);
	CU_ASSERT_EQUAL(memcmp(got[0], src, FS), 0);
	/* one fence over two units */
	CU_ASSERT_EQUAL(dev_copy_to_host(d, got[0], a0, FS, &f), 0);
	CU_ASSERT_EQUAL(dev_copy_to_host(d, got[1], b1, FS, &f), 0);
	CU_ASSERT_EQUAL(dev_fence_wait(d, &f), 0);
	CU_ASSERT_EQUAL(memcmp(got[1], src, FS), 0);
	CU_ASSERT_EQUAL(dev_compare(d, a0, b1, FS, &f), 0);
	CU_ASSERT_EQUAL(dev_fence_wait(d, &f), 0);
	CU_ASSERT_EQUAL(atomic_load(&f.result), 0);
	/* an address of no unit */
	CU_ASSERT_EQUAL(dev_copy_to_host(d, got[0], (dev_addr_t)5 << DEV_UNIT_SHIFT,
					 FS, &f), -EINVAL);
	dev_unit_stats(d, 2, &st);
	CU_ASSERT_EQUAL(st.frames_used, 1);
	CU_ASSERT_EQUAL(st.copies_in, 1);
	CU_ASSERT(st.copies_out >= 2);	/* to unit 0, to unit 1 */
	dev_unit_stats(d, 0, &st);
	CU_ASSERT_EQUAL(st.copies_in, 1);
	CU_ASSERT_EQUAL(st.peer_in, 1);	/* hostsim has a peer path */
	CU_ASSERT_EQUAL(st.staged_in, 0);
	dev_frame_free(d, a0);
	dev_frame_free(d, a2);
	dev_frame_free(d, b1);
	CU_ASSERT_EQUAL(dev_frames_used(d), 0);
	dev_close(d);
	/* without the peer path: through host memory, the same bytes */
	cfg.no_peer = true;
	CU_ASSERT_EQUAL_FATAL(dev_open(&cfg, &d, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(dev_frame_alloc_on(d, 0, &a0), 0);
	CU_ASSERT_EQUAL(dev_frame_alloc_on(d, 2, &a2), 0);
	CU_ASSERT_EQUAL(dev_copy_to_device(d, a2, src, FS, &f), 0);
	CU_ASSERT_EQUAL(dev_copy_on_device(d, a0, a2, FS, &f), 0);
	CU_ASSERT_EQUAL(dev_fence_wait(d, &f), 0);
	CU_ASSERT_EQUAL(dev_copy_to_host(d, got[0], a0, FS, &f), 0);
	CU_ASSERT_EQUAL(dev_fence_wait(d, &f), 0);
	CU_ASSERT_EQUAL(memcmp(got[0], src, FS), 0);
	dev_unit_stats(d, 0, &st);
	CU_ASSERT_EQUAL(st.peer_in, 0);
	CU_ASSERT_EQUAL(st.staged_in, 1);
	dev_close(d);
	cfg.no_peer = false;
	cfg.units = DEV_MAX_UNITS + 1;
	CU_ASSERT_EQUAL(dev_open(&cfg, &d, err, sizeof(err)), -EINVAL);
}

static void test_unknown_backend(void)
{
	struct device_config cfg = { .backend = "fpga", .mem_bytes = 1 << 20,
				     .frame_size = FS };
	struct device *d;
	char err[128] = "";

	CU_ASSERT_EQUAL(dev_open(&cfg, &d, err, sizeof(err)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "fpga"));
	cfg.backend = "hostsim";
	cfg.mem_bytes = 100;	/* less than a frame */
	CU_ASSERT_EQUAL(dev_open(&cfg, &d, err, sizeof(err)), -EINVAL);
}

int register_device_contract(void)
{
	static const CU_TestInfo tests[] = {
		{ "frames: exhaustion and reuse", test_frames },
		{ "copies both ways, on the device, batched", test_copies },
		{ "fill, compute and the device write fault", test_compute },
		{ "compare", test_compare },
		{ "xxh64 over spans of every shape", test_xxh64 },
		{ "range checks", test_ranges },
		{ "four threads", test_threads },
		{ "copy batches: both paths, the same bytes", test_batches },
		{ "copy batches: injected faults on both paths", test_batch_faults },
		{ "copy batches: the cheaper path, a busy engine", test_batch_choice },
		{ "several devices: units by address", test_units },
		{ "unknown backend, too small", test_unknown_backend },
		CU_TEST_INFO_NULL,
	};
	const char *env = getenv("HMMFS_TEST_DEVICES");

	snprintf(backends, sizeof(backends), "%s", env && *env ? env : "hostsim");
	printf("device contract: backends %s\n", backends);
	return unit_add_suite("device_contract", tests);
}
