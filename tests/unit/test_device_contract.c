/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/test_device_contract.c — device/: the contract every backend
 * keeps, run against each backend named in HMMFS_TEST_DEVICES (a comma
 * list; default "hostsim").  Frames: allocation to exhaustion, -ENOSPC,
 * reuse.  Copies both ways and on the device, a batch of 256 on one fence,
 * fill, the compute ops with exact bytes, compare, the device page table
 * (new frames read-only; a device write to a read-only frame faults and
 * changes nothing; read-write after dev_protect), range checks, four
 * threads at once, and an unknown backend.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "device/device.h"
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
		{ "range checks", test_ranges },
		{ "four threads", test_threads },
		{ "unknown backend, too small", test_unknown_backend },
		CU_TEST_INFO_NULL,
	};
	const char *env = getenv("HMMFS_TEST_DEVICES");

	snprintf(backends, sizeof(backends), "%s", env && *env ? env : "hostsim");
	printf("device contract: backends %s\n", backends);
	return unit_add_suite("device_contract", tests);
}
