/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/test_device_opencl.c — device/opencl.c on a real OpenCL
 * runtime (POCL's CPU devices in make check): what the contract suite
 * cannot reach.  Device memory in several buffers (HMMFS_OPENCL_CHUNK
 * makes them small), with copies, kernels, compares and the xxh64 kernel
 * across their ends; a device lost mid-run (the dev_lost fault) makes the fence wait
 * return -ENODEV and marks the device lost; a loader that is not one.
 * Where no OpenCL device can be opened, each test says so and passes
 * (tests/run.sh fails make check in that case: see integration-opencl).
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "device/device.h"
#include "fault/fault.h"
#include "tests/unit/unit.h"

#define FS 4096

static int open_opencl(struct device **d, size_t frames, char *err, size_t errlen)
{
	struct device_config cfg = { .backend = "opencl", .mem_bytes = frames * FS,
				     .frame_size = FS };

	err[0] = '\0';
	*d = NULL;
	return dev_open(&cfg, d, err, errlen);
}

/* Open, or say why not and return false. */
static bool open_or_skip(struct device **d, size_t frames)
{
	char err[512];
	int ret = open_opencl(d, frames, err, sizeof(err));

	if (ret == -ENODEV) {
		printf("\n  (skipped: %s)\n", err);
		return false;
	}
	CU_ASSERT_EQUAL_FATAL(ret, 0);
	return true;
}

/*
 * Buffers of 4 frames: a 6-frame copy each way, a copy on the device,
 * a fill and an xor, and compares that all cross from one buffer into
 * the next.
 */
static void test_buffers(void)
{
	struct dev_fence f = DEV_FENCE_INIT;
	size_t len = 6 * FS;
	char *src = malloc(len), *got = malloc(len), *want = malloc(len);
	struct device *d;

	setenv("HMMFS_OPENCL_CHUNK", "16384", 1);
	if (!open_or_skip(&d, 16))
		goto out;
	for (size_t i = 0; i < len; i++)
		src[i] = (char)(i * 31 + i / 4096);
	/* frames 1..6 span buffers 0 and 1; 9..14 span buffers 2 and 3 */
	CU_ASSERT_EQUAL(dev_copy_to_device(d, FS, src, len, &f), 0);
	CU_ASSERT_EQUAL(dev_fence_wait(d, &f), 0);
	CU_ASSERT_EQUAL(dev_copy_on_device(d, 9 * FS, FS, len, &f), 0);
	CU_ASSERT_EQUAL(dev_fence_wait(d, &f), 0);
	CU_ASSERT_EQUAL(dev_copy_to_host(d, got, 9 * FS, len, &f), 0);
	CU_ASSERT_EQUAL(dev_fence_wait(d, &f), 0);
	CU_ASSERT_EQUAL(memcmp(got, src, len), 0);
	CU_ASSERT_EQUAL(dev_compare(d, FS, 9 * FS, len, &f), 0);
	CU_ASSERT_EQUAL(dev_fence_wait(d, &f), 0);
	CU_ASSERT_EQUAL(atomic_load(&f.result), 0);
	/* the device page table: writable first, as the cache would */
	for (int i = 9; i < 15; i++)
		dev_protect(d, (dev_addr_t)i * FS, true);
	CU_ASSERT_EQUAL(dev_compute(d, DEV_OP_XOR, 9 * FS + 100, len - 200, 0x5a, &f), 0);
	CU_ASSERT_EQUAL(dev_fence_wait(d, &f), 0);
	memcpy(want, src, len);
	for (size_t i = 100; i < len - 100; i++)
		want[i] ^= 0x5a;
	CU_ASSERT_EQUAL(dev_copy_to_host(d, got, 9 * FS, len, &f), 0);
	CU_ASSERT_EQUAL(dev_fence_wait(d, &f), 0);
	CU_ASSERT_EQUAL(memcmp(got, want, len), 0);
	CU_ASSERT_EQUAL(dev_compare(d, FS, 9 * FS, len, &f), 0);
	CU_ASSERT_EQUAL(dev_fence_wait(d, &f), 0);
	CU_ASSERT_NOT_EQUAL(atomic_load(&f.result), 0);
	/* the xxh64 kernel over spans that cross into the next buffer */
	{
		struct dev_span sp[] = { { FS + 8, len - 8 }, { 9 * FS, len } };
		XXH64_state_t *st = XXH64_createState(), *want = XXH64_createState();

		XXH64_reset(st, 0);
		XXH64_reset(want, 0);
		XXH64_update(want, src + 8, len - 8);
		XXH64_update(want, got, len);
		CU_ASSERT_EQUAL(dev_xxh64(d, sp, 2, st), 0);
		CU_ASSERT_EQUAL(XXH64_digest(st), XXH64_digest(want));
		XXH64_freeState(st);
		XXH64_freeState(want);
	}
	/* one span across three buffer ends: frames 1 to 13 */
	{
		struct dev_span sp = { FS + 8, 12 * FS };
		char *all = malloc(sp.len);
		XXH64_state_t *st = XXH64_createState();

		CU_ASSERT_EQUAL(dev_copy_to_host(d, all, sp.addr, sp.len, &f), 0);
		CU_ASSERT_EQUAL(dev_fence_wait(d, &f), 0);
		XXH64_reset(st, 7);
		CU_ASSERT_EQUAL(dev_xxh64(d, &sp, 1, st), 0);
		CU_ASSERT_EQUAL(XXH64_digest(st), XXH64(all, sp.len, 7));
		XXH64_freeState(st);
		free(all);
	}
	dev_close(d);
out:
	unsetenv("HMMFS_OPENCL_CHUNK");
	free(src);
	free(got);
	free(want);
}

/* The device goes away after a few operations: -ENODEV, then lost. */
static void test_lost(void)
{
	struct dev_fence f = DEV_FENCE_INIT;
	char buf[FS], err[256];
	struct device *d;

	if (!open_or_skip(&d, 16))
		return;
	setenv("HMMFS_FAULT", "dev_lost:after=3", 1);
	CU_ASSERT_EQUAL_FATAL(fault_init(err, sizeof(err)), 0);
	memset(buf, 7, sizeof(buf));
	for (int i = 0; i < 3; i++)
		CU_ASSERT_EQUAL(dev_copy_to_device(d, 0, buf, FS, &f), 0);
	CU_ASSERT_EQUAL(dev_fence_wait(d, &f), 0);
	CU_ASSERT_FALSE(dev_lost(d));
	CU_ASSERT_EQUAL(dev_copy_to_host(d, buf, 0, FS, &f), -ENODEV);
	CU_ASSERT_EQUAL(dev_fence_wait(d, &f), -ENODEV);
	CU_ASSERT_TRUE(dev_lost(d));
	CU_ASSERT_EQUAL(dev_fill(d, 0, 1, FS, &f), -ENODEV);
	dev_fence_wait(d, &f);
	unsetenv("HMMFS_FAULT");
	CU_ASSERT_EQUAL(fault_init(err, sizeof(err)), 0);
	dev_close(d);
}

static void test_not_a_loader(void)
{
	struct device *d;
	char err[256];

	setenv("HMMFS_OPENCL_LIB", "libc.so.6", 1);
	CU_ASSERT_EQUAL(open_opencl(&d, 16, err, sizeof(err)), -ENOSYS);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "not an OpenCL ICD loader"));
	unsetenv("HMMFS_OPENCL_LIB");
}

int register_device_opencl(void)
{
	static const CU_TestInfo tests[] = {
		{ "device memory in several buffers", test_buffers },
		{ "device lost mid-run: -ENODEV, marked lost", test_lost },
		{ "a library that is not a loader: -ENOSYS", test_not_a_loader },
		CU_TEST_INFO_NULL,
	};

	return unit_add_suite("device_opencl", tests);
}
