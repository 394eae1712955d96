/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/test_device_cuda.c — device/cuda.c against the fake driver
 * ($BUILD/tests/libfakecuda.so, built by make; each test points
 * HMMFS_CUDA_LIB at it, or elsewhere, and puts the old value back): what
 * the contract suite cannot reach.  Open fails cleanly without a driver,
 * with a library that is not a driver, without a GPU, with a GPU ordinal
 * too high, and when device memory runs out; a device lost mid-run makes
 * dev_fence_wait() return -ENODEV and marks the device lost (a call the
 * driver refuses marks it at once); host
 * registration; one fence shared by two threads on different streams.
 * Without the fake library (BUILD unset) each test says so and passes.
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <xxhash.h>

#include "device/cuda_int.h"
#include "device/device.h"
#include "tests/unit/unit.h"

#define FS 4096

static char fake_lib[512];
static char saved_lib[512];
static int had_lib;

static const char *fault_vars[] = {
	"FAKECUDA_FAIL_ALLOC", "FAKECUDA_LOSE_AFTER", "FAKECUDA_DEVICES",
	"FAKECUDA_BAD_XXH64",
};

/* Point HMMFS_CUDA_LIB at @lib (NULL: the fake).  false: no fake built. */
static bool use_lib(const char *lib)
{
	const char *old = getenv("HMMFS_CUDA_LIB");

	if (!fake_lib[0]) {
		printf("\n  (skipped: no fake driver; BUILD is not set)\n");
		return false;
	}
	had_lib = old != NULL;
	snprintf(saved_lib, sizeof(saved_lib), "%s", old ? old : "");
	setenv("HMMFS_CUDA_LIB", lib ? lib : fake_lib, 1);
	return true;
}

static void restore_lib(void)
{
	if (had_lib)
		setenv("HMMFS_CUDA_LIB", saved_lib, 1);
	else
		unsetenv("HMMFS_CUDA_LIB");
	for (size_t i = 0; i < sizeof(fault_vars) / sizeof(fault_vars[0]); i++)
		unsetenv(fault_vars[i]);
}

static int open_cuda(struct device **d, int gpu, size_t frames, char *err,
		     size_t errlen)
{
	struct device_config cfg = { .backend = "cuda", .mem_bytes = frames * FS,
				     .frame_size = FS, .gpu = gpu };

	err[0] = '\0';
	*d = NULL;
	return dev_open(&cfg, d, err, errlen);
}

static void test_no_driver(void)
{
	struct device *d;
	char err[256];

	if (!use_lib("/nonexistent/libcuda.so.1"))
		return;
	CU_ASSERT_EQUAL(open_cuda(&d, 0, 16, err, sizeof(err)), -ENODEV);
	CU_ASSERT_PTR_NULL(d);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "cannot load the CUDA driver"));
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "/nonexistent/libcuda.so.1"));
	restore_lib();
}

static void test_not_a_driver(void)
{
	struct device *d;
	char err[256];

	/* a library that loads but has no driver entry points */
	if (!use_lib("libc.so.6"))
		return;
	CU_ASSERT_EQUAL(open_cuda(&d, 0, 16, err, sizeof(err)), -ENOSYS);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "has no cuInit"));
	restore_lib();
}

static void test_no_gpu(void)
{
	struct device *d;
	char err[256];

	if (!use_lib(NULL))
		return;
	setenv("FAKECUDA_DEVICES", "0", 1);
	CU_ASSERT_EQUAL(open_cuda(&d, 0, 16, err, sizeof(err)), -ENODEV);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "CUDA_ERROR_NO_DEVICE"));
	setenv("FAKECUDA_DEVICES", "1", 1);
	CU_ASSERT_EQUAL(open_cuda(&d, 1, 16, err, sizeof(err)), -ENODEV);
	CU_ASSERT_STRING_EQUAL(err, "cuda: no GPU 1 (1 found)");
	restore_lib();
}

static void test_out_of_memory(void)
{
	struct device *d;
	char err[256];

	if (!use_lib(NULL))
		return;
	setenv("FAKECUDA_FAIL_ALLOC", "1", 1);
	CU_ASSERT_EQUAL(open_cuda(&d, 0, 16, err, sizeof(err)), -ENOMEM);
	CU_ASSERT_PTR_NULL(d);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "cuMemAlloc of 65536 bytes"));
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "CUDA_ERROR_OUT_OF_MEMORY"));
	/* the next open, with memory, works: nothing was left half-done */
	unsetenv("FAKECUDA_FAIL_ALLOC");
	CU_ASSERT_EQUAL(open_cuda(&d, 0, 16, err, sizeof(err)), 0);
	dev_close(d);
	restore_lib();
}

static void test_lost_device(void)
{
	struct dev_fence f = DEV_FENCE_INIT;
	char buf[FS], err[256];
	struct device *d;
	dev_addr_t a;

	if (!use_lib(NULL))
		return;
	setenv("FAKECUDA_LOSE_AFTER", "3", 1);
	CU_ASSERT_EQUAL_FATAL(open_cuda(&d, 0, 16, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL_FATAL(dev_frame_alloc(d, &a), 0);
	memset(buf, 0x11, FS);
	for (int i = 0; i < 3; i++)
		CU_ASSERT_EQUAL(dev_copy_to_device(d, a, buf, FS, &f), 0);
	CU_ASSERT_EQUAL(dev_fence_wait(d, &f), 0);
	CU_ASSERT_FALSE(dev_lost(d));
	/* the fourth is accepted, and the device falls off the bus */
	CU_ASSERT_EQUAL(dev_copy_to_host(d, buf, a, FS, &f), 0);
	CU_ASSERT_EQUAL(dev_fence_wait(d, &f), -ENODEV);
	CU_ASSERT_TRUE(dev_lost(d));
	/* from now on nothing is queued */
	CU_ASSERT_EQUAL(dev_copy_to_device(d, a, buf, FS, &f), -ENODEV);
	CU_ASSERT_EQUAL(dev_fill(d, a, 0, FS, &f), -ENODEV);
	CU_ASSERT_EQUAL(dev_fence_wait(d, &f), 0);
	dev_close(d);
	restore_lib();
}

static void test_lost_at_queue(void)
{
	struct dev_fence f = DEV_FENCE_INIT;
	char buf[FS], err[256];
	struct device *d;
	dev_addr_t a;

	if (!use_lib(NULL))
		return;
	setenv("FAKECUDA_LOSE_AFTER", "0", 1);
	CU_ASSERT_EQUAL_FATAL(open_cuda(&d, 0, 16, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL_FATAL(dev_frame_alloc(d, &a), 0);
	memset(buf, 0x22, FS);
	CU_ASSERT_EQUAL(dev_copy_to_device(d, a, buf, FS, &f), 0);
	/* the driver refuses the next call: lost now, and the fence keeps it */
	CU_ASSERT_EQUAL(dev_copy_to_device(d, a, buf, FS, &f), -ENODEV);
	CU_ASSERT_TRUE(dev_lost(d));
	CU_ASSERT_EQUAL(dev_fence_wait(d, &f), -ENODEV);
	CU_ASSERT_TRUE(dev_lost(d));
	dev_close(d);
	restore_lib();
}

static void test_host_register(void)
{
	struct dev_fence f = DEV_FENCE_INIT;
	char *src = malloc(4 * FS), *dst = malloc(4 * FS), err[256];
	struct device *d;

	if (!use_lib(NULL))
		goto out_free;
	CU_ASSERT_EQUAL_FATAL(open_cuda(&d, 0, 16, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(dev_host_register(d, src, 4 * FS), 0);
	CU_ASSERT_EQUAL(dev_host_register(d, src + FS, FS), -EEXIST);
	CU_ASSERT_EQUAL(dev_host_register(d, dst, 4 * FS), 0);
	for (int i = 0; i < 4 * FS; i++)
		src[i] = (char)(i * 13);
	CU_ASSERT_EQUAL(dev_copy_to_device(d, 0, src, 4 * FS, &f), 0);
	CU_ASSERT_EQUAL(dev_copy_to_host(d, dst, 0, 4 * FS, &f), 0);
	CU_ASSERT_EQUAL(dev_fence_wait(d, &f), 0);
	CU_ASSERT_EQUAL(memcmp(src, dst, 4 * FS), 0);
	dev_host_unregister(d, src);
	dev_host_unregister(d, dst);
	/* a second unregister is the driver's error, printed, nothing more */
	dev_host_unregister(d, dst);
	dev_close(d);
	restore_lib();
out_free:
	free(src);
	free(dst);
}

struct sharer {
	struct device *d;
	struct dev_fence *f;
	pthread_barrier_t *go;
	char *src;
	dev_addr_t a;
	int ret;
};

static void *sharer_main(void *arg)
{
	struct sharer *s = arg;

	s->ret = dev_copy_to_device(s->d, s->a, s->src, 64 * FS, s->f);
	pthread_barrier_wait(s->go);
	return NULL;
}

static void test_shared_fence(void)
{
	struct dev_fence f = DEV_FENCE_INIT;
	char *src = malloc(64 * FS), *dst = malloc(64 * FS), err[256];
	pthread_barrier_t go;
	struct sharer s;
	struct device *d;
	pthread_t th;

	if (!use_lib(NULL))
		goto out_free;
	CU_ASSERT_EQUAL_FATAL(open_cuda(&d, 0, 128, err, sizeof(err)), 0);
	memset(src, 0x3c, 64 * FS);
	pthread_barrier_init(&go, NULL, 2);
	s = (struct sharer){ .d = d, .f = &f, .go = &go, .src = src, .a = 64 * FS };
	/* the other thread queues on its own stream; one wait covers both */
	CU_ASSERT_EQUAL(dev_fill(d, 0, 0xc3, 64 * FS, &f), 0);
	pthread_create(&th, NULL, sharer_main, &s);
	pthread_barrier_wait(&go);
	CU_ASSERT_EQUAL(dev_fence_wait(d, &f), 0);
	CU_ASSERT_EQUAL(s.ret, 0);
	pthread_join(th, NULL);
	CU_ASSERT_EQUAL(dev_copy_to_host(d, dst, 64 * FS, 64 * FS, &f), 0);
	CU_ASSERT_EQUAL(dev_fence_wait(d, &f), 0);
	CU_ASSERT_EQUAL(memcmp(src, dst, 64 * FS), 0);
	CU_ASSERT_EQUAL(dev_copy_to_host(d, dst, 0, 64 * FS, &f), 0);
	CU_ASSERT_EQUAL(dev_fence_wait(d, &f), 0);
	memset(src, 0xc3, 64 * FS);
	CU_ASSERT_EQUAL(memcmp(src, dst, 64 * FS), 0);
	CU_ASSERT_PTR_NULL(f.priv[0]);	/* nothing stays attached after a wait */
	pthread_barrier_destroy(&go);
	dev_close(d);
	restore_lib();
out_free:
	free(src);
	free(dst);
}

/*
 * Two GPUs behind one struct device (gpu=0,devices=2 over the fake's two
 * contexts): a copy between them by the peer path (cuMemcpyPeerAsync) or
 * staged through the host, one fence over both GPUs, and nothing left
 * attached to the fence after its wait.
 */
static void test_two_gpus(void)
{
	struct device_config cfg = { .backend = "cuda", .mem_bytes = 16 * FS,
				     .frame_size = FS, .units = 2, .gpus = { 0, 1 } };
	struct dev_fence f = DEV_FENCE_INIT;
	static char src[FS], got[2][FS];
	struct dev_unit_stats st;
	struct device *d = NULL;
	dev_addr_t a0, a1;
	char err[256];

	if (!use_lib(NULL))
		return;
	setenv("FAKECUDA_DEVICES", "2", 1);
	for (int peer = 1; peer >= 0; peer--) {
		cfg.no_peer = !peer;
		CU_ASSERT_EQUAL_FATAL(dev_open(&cfg, &d, err, sizeof(err)), 0);
		CU_ASSERT_EQUAL(dev_units(d), 2);
		CU_ASSERT_EQUAL(dev_frame_alloc_on(d, 0, &a0), 0);
		CU_ASSERT_EQUAL(dev_frame_alloc_on(d, 1, &a1), 0);
		memset(src, 'g' + peer, sizeof(src));
		CU_ASSERT_EQUAL(dev_copy_to_device(d, a1, src, FS, &f), 0);
		CU_ASSERT_EQUAL(dev_fence_wait(d, &f), 0);
		CU_ASSERT_EQUAL(dev_copy_on_device(d, a0, a1, FS, &f), 0);
		CU_ASSERT_EQUAL(dev_fence_wait(d, &f), 0);
		/* one fence over both GPUs */
		CU_ASSERT_EQUAL(dev_copy_to_host(d, got[0], a0, FS, &f), 0);
		CU_ASSERT_EQUAL(dev_copy_to_host(d, got[1], a1, FS, &f), 0);
		CU_ASSERT_EQUAL(dev_fence_wait(d, &f), 0);
		CU_ASSERT_EQUAL(memcmp(got[0], src, FS), 0);
		CU_ASSERT_EQUAL(memcmp(got[1], src, FS), 0);
		CU_ASSERT_PTR_NULL(f.priv[0]);
		CU_ASSERT_PTR_NULL(f.priv[1]);
		dev_unit_stats(d, 0, &st);
		CU_ASSERT_EQUAL(st.peer_in, (uint64_t)peer);
		CU_ASSERT_EQUAL(st.staged_in, (uint64_t)!peer);
		dev_frame_free(d, a0);
		dev_frame_free(d, a1);
		dev_close(d);
	}
	/* a third GPU the driver does not have */
	cfg.units = 3;
	cfg.gpus[2] = 2;
	CU_ASSERT_EQUAL(dev_open(&cfg, &d, err, sizeof(err)), -ENODEV);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "device 2: "));
	restore_lib();
}

/* The fake's count of launches of kernel @name (the backend loaded it). */
static unsigned long launches(const char *name)
{
	void *lib = dlopen(fake_lib, RTLD_NOW | RTLD_NOLOAD);
	unsigned long (*count)(const char *) = lib ? dlsym(lib, "fakecuda_launches") : NULL;
	unsigned long n = count ? count(name) : 0;

	CU_ASSERT_PTR_NOT_NULL(count);
	if (lib)
		dlclose(lib);
	return n;
}

/* Hash 8 pages on the GPU; true if it equals libxxhash over them. */
static bool hash_pages(struct device *d, unsigned long *kernel_runs)
{
	struct dev_fence f = DEV_FENCE_INIT;
	static unsigned char pat[8 * FS];
	struct dev_span sp[8];
	XXH64_state_t *st = XXH64_createState();
	unsigned long before;
	bool same;
	dev_addr_t a;

	for (int i = 0; i < 8 * FS; i++)
		pat[i] = (unsigned char)(i ^ (i >> 9));
	for (int i = 0; i < 8; i++) {
		CU_ASSERT_EQUAL_FATAL(dev_frame_alloc(d, &a), 0);
		CU_ASSERT_EQUAL(dev_copy_to_device(d, a, pat + i * FS, FS, &f), 0);
		sp[i] = (struct dev_span){ a, FS };
	}
	CU_ASSERT_EQUAL(dev_fence_wait(d, &f), 0);
	XXH64_reset(st, 0);
	before = launches(CUDA_KERNEL_XXH64);
	CU_ASSERT_EQUAL(dev_xxh64(d, sp, 8, st), 0);
	*kernel_runs = launches(CUDA_KERNEL_XXH64) - before;
	for (int i = 0; i < 8; i++)
		dev_frame_free(d, sp[i].addr);
	same = XXH64_digest(st) == XXH64(pat, sizeof(pat), 0);
	XXH64_freeState(st);
	return same;
}

/*
 * devop xxh64 runs the PTX kernel: whole pages are one launch, after the
 * kernel's check on the first hash.  A kernel that gets the lanes wrong
 * (FAKECUDA_BAD_XXH64) fails that check and is not used again: the hash
 * is right, through host copies.
 */
static void test_xxh64_kernel(void)
{
	unsigned long runs;
	struct device *d;
	char err[256];

	if (!use_lib(NULL))
		return;
	CU_ASSERT_EQUAL_FATAL(open_cuda(&d, 0, 16, err, sizeof(err)), 0);
	CU_ASSERT_TRUE(hash_pages(d, &runs));	/* the check runs first */
	CU_ASSERT_TRUE(runs > 1);
	CU_ASSERT_TRUE(hash_pages(d, &runs));
	CU_ASSERT_EQUAL(runs, 1);
	dev_close(d);
	setenv("FAKECUDA_BAD_XXH64", "1", 1);
	CU_ASSERT_EQUAL_FATAL(open_cuda(&d, 0, 16, err, sizeof(err)), 0);
	CU_ASSERT_TRUE(hash_pages(d, &runs));	/* the check fails */
	CU_ASSERT_TRUE(hash_pages(d, &runs));
	CU_ASSERT_EQUAL(runs, 0);
	dev_close(d);
	restore_lib();
}

int register_device_cuda(void)
{
	static const CU_TestInfo tests[] = {
		{ "no driver library: -ENODEV with a message", test_no_driver },
		{ "a library without cuInit: -ENOSYS", test_not_a_driver },
		{ "no GPU, GPU ordinal too high: -ENODEV", test_no_gpu },
		{ "device memory allocation fails: -ENOMEM", test_out_of_memory },
		{ "device lost mid-run: -ENODEV, marked lost", test_lost_device },
		{ "device lost at queue time: the fence reports it", test_lost_at_queue },
		{ "host_register pins once; copies through it", test_host_register },
		{ "one fence, two threads, two streams", test_shared_fence },
		{ "two GPUs: peer and staged copies, one fence", test_two_gpus },
		{ "xxh64: the kernel, checked before its first use", test_xxh64_kernel },
		CU_TEST_INFO_NULL,
	};
	const char *build = getenv("BUILD");

	if (build && *build) {
		snprintf(fake_lib, sizeof(fake_lib), "%s/tests/libfakecuda.so", build);
		if (access(fake_lib, R_OK))
			fake_lib[0] = '\0';
	}
	return unit_add_suite("device_cuda", tests);
}
