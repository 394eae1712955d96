/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/test_wp_ksm.c — cache/ksm.c and cache/wp.c on a real cache (hostsim
 * device) over backing files under /var/tmp, driving the scanner by hand
 * (ksm_scan) with the scanner thread idle.
 *
 * Covered: the hash against xxHash's published known answer and a fixed
 * vector; two equal files merge into one frame per page, read back
 * right, and report pages_shared/pages_sharing and frames in use; a
 * write copies first and only its file changes; a page changing between
 * passes is volatile and not merged; max_page_sharing caps a frame; a
 * forced hash collision (every page hashes alike) never merges different
 * bytes; all-zero pages share the zero frame; device-resident pages merge
 * on the device and serve bounce reads; a shared page is evicted and the
 * frame lives on for its other sharer; a shared frame migrates between
 * tiers with all its pages, and zero pages to the other zero frame; a
 * CPU write to a shared device page with the device full copies it home;
 * files of different owners never merge, and a new owner unshares.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#include "cache/cache_int.h"
#include "fault/fault.h"
#include "tests/unit/unit.h"

#define PS 4096

static char dir[] = "/var/tmp/hmmfs-unit-ksm.XXXXXX";
static bool dir_made;
static unsigned int kfix_devices;	/* 0: one device */

struct kfix {
	struct cache *c;
	struct cfile *f[5];
	int fd[5];
	int n;
};

/* Page i of file @file: byte value, per @mode (0: same in every file). */
static unsigned char kbyte(int mode, int file, size_t i)
{
	if (mode == 1)
		return 0;
	return (unsigned char)(i * 13 + i / PS + (mode == 2 ? file * 101 : 0));
}

static void kfix_open(struct kfix *x, int nfiles, size_t pages, int mode,
		      size_t host_cache)
{
	struct cache_config cfg = {
		.page_size = PS, .host_cache = host_cache,
		.dirty_background = host_cache / 4, .dirty_limit = host_cache / 2,
		.dirty_expire_ms = 30000, .io_engine = "psync",
		.device = "hostsim", .device_cache = 8 << 20, .bounce_buffers = 16,
		.devices = kfix_devices,
	};
	unsigned char *b = malloc(pages * PS);
	char err[256], path[300];

	if (!dir_made) {	/* once: the name made may itself end in X */
		CU_ASSERT_FATAL(mkdtemp(dir) != NULL);
		dir_made = true;
	}
	CU_ASSERT_FATAL(cache_create(&cfg, &x->c, err, sizeof(err)) == 0);
	CU_ASSERT_FATAL(cache_start(x->c, err, sizeof(err)) == 0);
	x->n = nfiles;
	for (int f = 0; f < nfiles; f++) {
		int pfd;

		snprintf(path, sizeof(path), "%s/k%d", dir, f);
		x->fd[f] = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		for (size_t i = 0; i < pages * PS; i++)
			b[i] = kbyte(mode, f, i);
		CU_ASSERT_FATAL(pwrite(x->fd[f], b, pages * PS, 0) == (ssize_t)(pages * PS));
		pfd = open(path, O_PATH | O_CLOEXEC);
		CU_ASSERT_FATAL(cache_file_open(x->c, pfd, &x->f[f]) == 0);
		close(pfd);
		CU_ASSERT_FATAL(cache_read(x->f[f], b, pages * PS, 0, NULL) ==
				(ssize_t)(pages * PS));
	}
	free(b);
}

static void kfix_close(struct kfix *x)
{
	for (int f = 0; f < x->n; f++) {
		cache_file_close(x->f[f]);
		close(x->fd[f]);
	}
	cache_destroy(x->c);
	ksm_set_hash_for_testing(NULL);
}

static struct ksm_stats kst(struct kfix *x)
{
	struct ksm_knobs kn;
	struct ksm_stats st;

	cache_ksm_get(x->c, &kn, &st);
	return st;
}

static void knob(struct kfix *x, int i, uint32_t v)
{
	struct ksm_knobs kn = { 0 };

	((uint32_t *)&kn)[i] = v;
	CU_ASSERT_EQUAL(cache_ksm_set(x->c, &kn, 1u << i), 0);
}

/* Two full passes: hashes recorded, then merged. */
static void scan_passes(struct kfix *x, int passes)
{
	uint64_t want = kst(x).full_scans + (uint64_t)passes;

	for (int i = 0; i < 1000 && kst(x).full_scans < want; i++)
		ksm_scan(x->c->ksm, 100000);
}

static bool file_reads(struct kfix *x, int f, size_t pages, int mode,
		       size_t poke_at, int poke)
{
	unsigned char *b = malloc(pages * PS);
	bool ok = cache_read(x->f[f], b, pages * PS, 0, NULL) == (ssize_t)(pages * PS);

	for (size_t i = 0; ok && i < pages * PS; i++)
		ok = b[i] == (poke >= 0 && i == poke_at ? (unsigned char)poke :
			      kbyte(mode, f, i));
	free(b);
	return ok;
}

static struct cache_stats cst(struct kfix *x)
{
	struct cache_stats st;

	cache_get_stats(x->c, &st);
	return st;
}

static void test_hash_vectors(void)
{
	unsigned char b[PS];

	for (int i = 0; i < PS; i++)
		b[i] = (unsigned char)(i * 7 + 3);
	CU_ASSERT_EQUAL(ksm_hash_bytes("", 0), 0x2D06800538D394C2ull);	/* xxHash's */
	CU_ASSERT_EQUAL(ksm_hash_bytes(b, PS), 0xd7428746842be37eull);
}

static void test_merge_and_cow(void)
{
	struct kfix x;
	struct ksm_stats st;
	char w = 'W';

	kfix_open(&x, 2, 64, 0, 1 << 20);
	CU_ASSERT_EQUAL(cst(&x).host_frames_used, 128);
	scan_passes(&x, 3);
	st = kst(&x);
	CU_ASSERT_EQUAL(st.pages_shared, 64);
	CU_ASSERT_EQUAL(st.pages_sharing, 64);
	CU_ASSERT_EQUAL(st.saved_host_bytes, 64 * PS);
	/* the old frames go after a grace period */
	rcu_barrier();
	CU_ASSERT_EQUAL(cst(&x).host_frames_used, 64);
	CU_ASSERT_TRUE(file_reads(&x, 0, 64, 0, 0, -1));
	CU_ASSERT_TRUE(file_reads(&x, 1, 64, 0, 0, -1));
	/* a write copies first: only file 1 sees it */
	CU_ASSERT_EQUAL(cache_write(x.f[1], &w, 1, 5 * PS + 7), 1);
	CU_ASSERT_EQUAL(kst(&x).cow_breaks, 1);
	CU_ASSERT_TRUE(file_reads(&x, 0, 64, 0, 0, -1));
	CU_ASSERT_TRUE(file_reads(&x, 1, 64, 0, 5 * PS + 7, 'W'));
	CU_ASSERT_EQUAL(cache_fsync(x.f[1], false), 0);
	{
		char b;

		CU_ASSERT_EQUAL(pread(x.fd[1], &b, 1, 5 * PS + 7), 1);
		CU_ASSERT_EQUAL(b, 'W');
		CU_ASSERT_EQUAL(pread(x.fd[0], &b, 1, 5 * PS + 7), 1);
		CU_ASSERT_EQUAL((unsigned char)b, kbyte(0, 0, 5 * PS + 7));
	}
	kfix_close(&x);
}

/* The XXH64 of file @f (@pages) computed on device @unit; 0 on error. */
static uint64_t khash_on(struct kfix *x, int f, size_t pages, unsigned int unit)
{
	struct cache_xxh64 *h = cache_xxh64_new(0);
	off_t next = 0;
	uint64_t n, d = 0;

	if (h && cache_devread_xxh64(x->f[f], 0, (off_t)(pages * PS), unit, h, &n,
				     &next) == 0 && next == (off_t)(pages * PS))
		d = cache_xxh64_digest(h);
	cache_xxh64_free(h);
	return d;
}

static uint64_t khash_want(int f, size_t pages, size_t poke_at, int poke)
{
	unsigned char *b = malloc(pages * PS);
	uint64_t d;

	for (size_t i = 0; i < pages * PS; i++)
		b[i] = poke >= 0 && i == poke_at ? (unsigned char)poke : kbyte(0, f, i);
	d = XXH64(b, pages * PS, 0);
	free(b);
	return d;
}

/*
 * Sharing and replication compose: pages on shared frames get replicas
 * of their own; a write to one copies the frame (cow), then drops that
 * page's replicas; the other file's replicas of the same bytes stay.
 */
static void test_replicated_shared_pages(void)
{
	struct kfix x;
	uint64_t copies;
	char w = 'W';

	kfix_devices = 3;
	kfix_open(&x, 2, 16, 0, 1 << 20);
	kfix_devices = 0;
	scan_passes(&x, 3);
	CU_ASSERT_EQUAL(kst(&x).pages_sharing, 16);
	CU_ASSERT_EQUAL(cache_replicate(x.f[0], 0, 0, 1u << 1, &copies, NULL), 0);
	CU_ASSERT_EQUAL(copies, 16);
	CU_ASSERT_EQUAL(cache_replicate(x.f[1], 0, 0, 1u << 2, &copies, NULL), 0);
	CU_ASSERT_EQUAL(copies, 16);
	CU_ASSERT_EQUAL(cache_write(x.f[1], &w, 1, 5 * PS + 7), 1);
	CU_ASSERT_EQUAL(kst(&x).cow_breaks, 1);
	CU_ASSERT_TRUE(file_reads(&x, 0, 16, 0, 0, -1));
	CU_ASSERT_TRUE(file_reads(&x, 1, 16, 0, 5 * PS + 7, 'W'));
	/* each device hashes what its file holds now */
	CU_ASSERT_EQUAL(khash_on(&x, 0, 16, 1), khash_want(0, 16, 0, -1));
	CU_ASSERT_EQUAL(khash_on(&x, 1, 16, 2), khash_want(1, 16, 5 * PS + 7, 'W'));
	kfix_close(&x);
}

static void test_volatile(void)
{
	struct kfix x;
	char w[PS];

	kfix_open(&x, 2, 4, 0, 1 << 20);
	scan_passes(&x, 1);	/* hashes recorded */
	for (int i = 0; i < 4; i++)	/* both files change between passes */
		for (int f = 0; f < 2; f++) {
			memset(w, 'a' + i, sizeof(w));
			CU_ASSERT_EQUAL(cache_write(x.f[f], w, PS, (off_t)i * PS), PS);
			CU_ASSERT_EQUAL(cache_fsync(x.f[f], false), 0);
		}
	scan_passes(&x, 1);
	CU_ASSERT_TRUE(kst(&x).pages_volatile >= 8);
	CU_ASSERT_EQUAL(kst(&x).pages_shared, 0);
	scan_passes(&x, 2);	/* they held still since: now they merge */
	CU_ASSERT_EQUAL(kst(&x).pages_shared, 4);
	kfix_close(&x);
}

static void test_max_page_sharing(void)
{
	struct kfix x;
	struct ksm_stats st;

	kfix_open(&x, 5, 1, 0, 1 << 20);
	knob(&x, 3, 2);	/* max_page_sharing */
	scan_passes(&x, 4);
	st = kst(&x);
	CU_ASSERT_EQUAL(st.pages_shared, 2);	/* 2 + 2, and one alone */
	CU_ASSERT_EQUAL(st.pages_sharing, 2);
	for (int f = 0; f < 5; f++)
		CU_ASSERT_TRUE(file_reads(&x, f, 1, 0, 0, -1));
	kfix_close(&x);
}

static uint64_t same_hash(const void *data, size_t len)
{
	(void)data;
	(void)len;
	return 42;
}

static void test_forced_collision(void)
{
	struct kfix x;

	ksm_set_hash_for_testing(same_hash);
	kfix_open(&x, 3, 16, 2, 1 << 20);	/* every file different */
	scan_passes(&x, 4);
	CU_ASSERT_EQUAL(kst(&x).pages_shared, 0);	/* hashes alike: no merge */
	CU_ASSERT_EQUAL(cst(&x).host_frames_used, 48);
	for (int f = 0; f < 3; f++)
		CU_ASSERT_TRUE(file_reads(&x, f, 16, 2, 0, -1));
	kfix_close(&x);
}

static void test_zero_pages(void)
{
	struct kfix x;

	kfix_open(&x, 2, 32, 1, 1 << 20);
	knob(&x, 4, 1);	/* use_zero_pages */
	scan_passes(&x, 1);
	CU_ASSERT_EQUAL(kst(&x).zero_pages, 64);
	CU_ASSERT_EQUAL(kst(&x).pages_shared, 0);
	rcu_barrier();
	CU_ASSERT_EQUAL(cst(&x).host_frames_used, 1);	/* the zero frame */
	CU_ASSERT_TRUE(file_reads(&x, 0, 32, 1, 0, -1));
	kfix_close(&x);
}

static void test_device_pages(void)
{
	struct kfix x;
	uint64_t moved;

	kfix_open(&x, 2, 32, 0, 1 << 20);
	for (int f = 0; f < 2; f++)
		CU_ASSERT_EQUAL(cache_migrate(x.f[f], 0, 0, true, CACHE_UNIT_ANY, &moved, NULL), 0);
	CU_ASSERT_EQUAL(dev_frames_used(x.c->dev), 64);
	scan_passes(&x, 3);
	CU_ASSERT_EQUAL(kst(&x).pages_shared, 32);
	CU_ASSERT_EQUAL(kst(&x).saved_device_bytes, 32 * PS);
	rcu_barrier();
	CU_ASSERT_EQUAL(dev_frames_used(x.c->dev), 32);
	CU_ASSERT_TRUE(file_reads(&x, 0, 32, 0, 0, -1));	/* bounce reads */
	CU_ASSERT_TRUE(file_reads(&x, 1, 32, 0, 0, -1));
	/* a device write to a shared device page copies on the device */
	{
		uint64_t pages;

		CU_ASSERT_EQUAL(cache_devop(x.f[0], 0, 1, CACHE_DEVOP_FILL, 'd', &pages, NULL), 0);
		CU_ASSERT_EQUAL(kst(&x).cow_breaks, 1);
		CU_ASSERT_TRUE(file_reads(&x, 0, 32, 0, 0, 'd'));
		CU_ASSERT_TRUE(file_reads(&x, 1, 32, 0, 0, -1));
	}
	kfix_close(&x);
}

/*
 * A shared frame migrates between tiers as one: migrating one file moves
 * each of its shared frames, and every page of the other files on it,
 * with one copy per frame; a page a write unshared meanwhile stays put.
 */
static void test_migrate_shared(void)
{
	struct kfix x;
	uint64_t moved;

	kfix_open(&x, 3, 16, 0, 1 << 20);
	scan_passes(&x, 3);
	CU_ASSERT_EQUAL_FATAL(kst(&x).pages_shared, 16);
	CU_ASSERT_EQUAL(kst(&x).pages_sharing, 32);
	CU_ASSERT_EQUAL(cache_migrate(x.f[0], 0, 0, true, CACHE_UNIT_ANY, &moved, NULL), 0);
	CU_ASSERT_EQUAL(moved, 48);
	rcu_barrier();
	CU_ASSERT_EQUAL(dev_frames_used(x.c->dev), 16);
	CU_ASSERT_EQUAL(cst(&x).host_frames_used, 0);
	CU_ASSERT_EQUAL(cst(&x).device_pages, 48);
	CU_ASSERT_EQUAL(kst(&x).saved_device_bytes, 32 * PS);
	CU_ASSERT_EQUAL(kst(&x).saved_host_bytes, 0);
	for (int f = 0; f < 3; f++)
		CU_ASSERT_TRUE(file_reads(&x, f, 16, 0, 0, -1));	/* bounce */
	/* unshare page 0 of file 1 on the device, then bring file 2 home */
	CU_ASSERT_EQUAL(cache_write(x.f[1], "w", 1, 0), 1);
	CU_ASSERT_EQUAL(cache_migrate(x.f[2], 0, 0, false, CACHE_UNIT_ANY, &moved, NULL), 0);
	CU_ASSERT_EQUAL(moved, 47);
	rcu_barrier();
	CU_ASSERT_EQUAL(dev_frames_used(x.c->dev), 1);	/* file 1's own page */
	CU_ASSERT_EQUAL(cst(&x).host_frames_used, 16);
	CU_ASSERT_TRUE(file_reads(&x, 0, 16, 0, 0, -1));
	CU_ASSERT_TRUE(file_reads(&x, 1, 16, 0, 0, 'w'));
	CU_ASSERT_TRUE(file_reads(&x, 2, 16, 0, 0, -1));
	kfix_close(&x);
}

/*
 * A CPU write to a shared device page while the device has no frame to
 * spare copies the page home instead of failing.
 */
static void test_cow_device_full(void)
{
	struct kfix x;
	uint64_t moved;
	char err[256];

	kfix_open(&x, 2, 4, 0, 1 << 20);
	for (int f = 0; f < 2; f++)
		CU_ASSERT_EQUAL(cache_migrate(x.f[f], 0, 0, true, CACHE_UNIT_ANY, &moved, NULL), 0);
	scan_passes(&x, 3);
	CU_ASSERT_EQUAL_FATAL(kst(&x).pages_shared, 4);
	/* the next two device frame allocations fail: the COW's, its retry */
	setenv("HMMFS_FAULT", "dev_alloc:enospc:count=2", 1);
	CU_ASSERT_EQUAL_FATAL(fault_init(err, sizeof(err)), 0);
	unsetenv("HMMFS_FAULT");
	CU_ASSERT_EQUAL(cache_write(x.f[0], "w", 1, 0), 1);
	CU_ASSERT_EQUAL(kst(&x).cow_breaks, 1);
	{	/* page 0 of file 0 went home, dirty and private */
		struct cache_extent e;
		struct cache_res_counts cnt;
		size_t n;
		off_t next;

		CU_ASSERT_EQUAL(cache_residency(x.f[0], 0, PS, 0, &e, 1, &n, &next, &cnt), 0);
		CU_ASSERT_EQUAL(n, 1);
		CU_ASSERT_EQUAL(e.flags, CACHE_RES_HOST | CACHE_RES_DIRTY);
	}
	CU_ASSERT_TRUE(file_reads(&x, 0, 4, 0, 0, 'w'));
	CU_ASSERT_TRUE(file_reads(&x, 1, 4, 0, 0, -1));
	kfix_close(&x);
}

/* A zero page moves alone, to the other tier's zero frame. */
static void test_migrate_zero_pages(void)
{
	struct kfix x;
	uint64_t moved;

	kfix_open(&x, 2, 8, 1, 1 << 20);
	knob(&x, 4, 1);	/* use_zero_pages */
	scan_passes(&x, 1);
	CU_ASSERT_EQUAL_FATAL(kst(&x).zero_pages, 16);
	CU_ASSERT_EQUAL(cache_migrate(x.f[0], 0, 0, true, CACHE_UNIT_ANY, &moved, NULL), 0);
	CU_ASSERT_EQUAL(moved, 8);
	rcu_barrier();
	CU_ASSERT_EQUAL(dev_frames_used(x.c->dev), 1);	/* the device zero frame */
	CU_ASSERT_EQUAL(kst(&x).zero_pages, 16);
	CU_ASSERT_TRUE(file_reads(&x, 0, 8, 1, 0, -1));
	CU_ASSERT_TRUE(file_reads(&x, 1, 8, 1, 0, -1));
	kfix_close(&x);
}

static void test_evict_shared(void)
{
	struct kfix x;

	kfix_open(&x, 2, 8, 0, 1 << 20);
	scan_passes(&x, 3);
	CU_ASSERT_EQUAL(kst(&x).pages_shared, 8);
	/* file 0 drops its pages: the frames live on for file 1 */
	CU_ASSERT_EQUAL(cache_writeback_range(x.f[0], 0, 8 * PS, true), 0);
	CU_ASSERT_EQUAL(kst(&x).pages_sharing, 0);
	CU_ASSERT_EQUAL(kst(&x).pages_shared, 8);
	CU_ASSERT_TRUE(file_reads(&x, 1, 8, 0, 0, -1));
	CU_ASSERT_TRUE(file_reads(&x, 0, 8, 0, 0, -1));	/* read again */
	kfix_close(&x);
}

/*
 * ksm_scope=uid (a zeroed config): pages of files of different owners
 * never merge; a file given a new owner lets go of its old owner's frames
 * at once and later merges with its new owner's files.
 */
static void test_scope_uid(void)
{
	struct cache_extent e;
	struct cache_res_counts cnt;
	struct kfix x;
	struct ksm_stats st;
	size_t n;
	off_t next;

	kfix_open(&x, 3, 64, 0, 1 << 20);	/* three equal files */
	CU_ASSERT_EQUAL(cache_file_set_uid(x.f[2], 1000), 0);
	CU_ASSERT_EQUAL(cache_file_uid(x.f[2]), 1000);
	scan_passes(&x, 3);
	st = kst(&x);
	CU_ASSERT_EQUAL(st.pages_shared, 64);	/* f0 and f1 only */
	CU_ASSERT_EQUAL(st.pages_sharing, 64);
	CU_ASSERT_EQUAL(cache_residency(x.f[2], 0, 0, 0, &e, 1, &n, &next, &cnt), 0);
	CU_ASSERT_EQUAL(cnt.pages, 64);
	CU_ASSERT_EQUAL(cnt.shared, 0);
	/* f1 changes owner: copies now, f0 is left alone on its frames */
	CU_ASSERT_EQUAL(cache_file_set_uid(x.f[1], 1000), 0);
	CU_ASSERT_EQUAL(kst(&x).pages_sharing, 0);
	CU_ASSERT_EQUAL(cache_residency(x.f[1], 0, 0, 0, &e, 1, &n, &next, &cnt), 0);
	CU_ASSERT_EQUAL(cnt.shared, 0);
	scan_passes(&x, 3);
	st = kst(&x);
	CU_ASSERT_EQUAL(st.pages_sharing, 64);	/* f1 with f2, not with f0 */
	CU_ASSERT_EQUAL(st.pages_shared, 128);
	/* a hidden flag is as if no page had it: one extent, none shared */
	CU_ASSERT_EQUAL(cache_residency(x.f[1], 0, 0, CACHE_RES_SHARED, &e, 1, &n,
					&next, &cnt), 0);
	CU_ASSERT_EQUAL(cnt.pages, 64);
	CU_ASSERT_EQUAL(cnt.shared, 0);
	CU_ASSERT_EQUAL(e.count, 64);
	CU_ASSERT_EQUAL(e.flags & CACHE_RES_SHARED, 0);
	for (int f = 0; f < 3; f++)
		CU_ASSERT_TRUE(file_reads(&x, f, 64, 0, 0, -1));
	kfix_close(&x);
}

int register_wp_ksm(void)
{
	static const CU_TestInfo tests[] = {
		{ "hash known answers", test_hash_vectors },
		{ "merge, then copy on write", test_merge_and_cow },
		{ "volatile pages wait", test_volatile },
		{ "max_page_sharing", test_max_page_sharing },
		{ "a forced hash collision never merges", test_forced_collision },
		{ "zero pages", test_zero_pages },
		{ "device pages merge on the device", test_device_pages },
		{ "a shared page evicted", test_evict_shared },
		{ "a shared frame migrates as one", test_migrate_shared },
		{ "zero pages migrate to the zero frame", test_migrate_zero_pages },
		{ "COW of a device page, the device full", test_cow_device_full },
		{ "ksm_scope=uid: owners never share", test_scope_uid },
		{ "shared pages replicated, a write collapses one",
		  test_replicated_shared_pages },
		CU_TEST_INFO_NULL,
	};

	return unit_add_suite("wp_ksm", tests);
}
