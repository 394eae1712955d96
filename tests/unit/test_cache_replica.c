/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/test_cache_replica.c — cache/replica.c and the device XXH64
 * (migrate.c), on three hostsim devices, against real backing files
 * under /var/tmp.
 *
 * Covered: replicas made on every device and counted there; the XXH64 of
 * the file computed on each device equal to the host's; collapse on a
 * CPU write, on a device write (devop), on truncate (whole pages and the
 * EOF page's tail); a full device dropping replicas before pages; a move
 * of the primary to a device that holds a replica taking it (no copy).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#include "cache/cache_int.h"
#include "cache/rcu.h"
#include "tests/unit/unit.h"

#define PS 4096
#define ALL3 0x7u

static char dir[] = "/var/tmp/hmmfs-unit-replica.XXXXXX";
static bool dir_made;

struct rfix {
	struct cache *c;
	struct cfile *f;
	int fd;
	size_t pages;
};

static unsigned char pat(size_t i)
{
	return (unsigned char)(i * 13 + i / PS + 5);
}

/* @pages of pattern, three devices of @dev_pages frames each. */
static void rfix_open(struct rfix *x, size_t pages, size_t dev_pages)
{
	struct cache_config cfg = {
		.page_size = PS, .host_cache = 4 << 20,
		.dirty_background = 1 << 20, .dirty_limit = 2 << 20,
		.dirty_expire_ms = 30000, .io_engine = "psync",
		.device = "hostsim", .device_cache = dev_pages * PS, .devices = 3,
		.migrate = "bounce", .bounce_buffers = 64,
	};

	x->fd = unit_backing_file(dir, &dir_made, "f", pages * PS, pat);
	x->pages = pages;
	x->c = unit_cache(&cfg);
	x->f = unit_cache_file(x->c, dir, "f");
}

static void rfix_close(struct rfix *x)
{
	cache_file_close(x->f);
	cache_destroy(x->c);
	close(x->fd);
}

static struct cache_device_stats dev_st(struct rfix *x, unsigned int k)
{
	struct cache_device_stats st;

	rcu_barrier();	/* a collapsed replica's frame is freed after a grace period */
	cache_device_get_stats(x->c, k, &st);
	return st;
}

/* Where page @index's copies are (bit k: device k), or ~0u if not cached. */
static uint32_t units_of(struct rfix *x, uint64_t index)
{
	struct cache_extent ext[1];
	struct cache_res_counts cnt;
	size_t n;
	off_t next;

	if (cache_residency(x->f, (off_t)(index * PS), PS, 0, ext, 1, &n, &next, &cnt) ||
	    !n)
		return ~0u;
	return ext[0].units;
}

/* The XXH64 of the whole file computed on device @unit, or 0 on error. */
static uint64_t hash_on(struct rfix *x, unsigned int unit, uint64_t *pages)
{
	struct cache_xxh64 *h = cache_xxh64_new(0);
	off_t at = 0, size = cache_file_size(x->f), next;
	uint64_t d = 0, n;

	*pages = 0;
	while (h && at < size) {
		if (cache_devread_xxh64(x->f, at, size - at, unit, h, &n, &next) ||
		    next <= at)
			break;
		*pages += n;
		at = next;
	}
	if (h && at >= size)
		d = cache_xxh64_digest(h);
	cache_xxh64_free(h);
	return d;
}

/* The XXH64 of what the file should hold: the pattern, [@off, +@len) = @byte. */
static uint64_t hash_expected(size_t size, size_t off, size_t len, int byte)
{
	unsigned char *b = malloc(size);
	uint64_t d;

	for (size_t i = 0; i < size; i++)
		b[i] = i >= off && i < off + len ? (unsigned char)byte : pat(i);
	d = XXH64(b, size, 0);
	free(b);
	return d;
}

static void replicate_all(struct rfix *x, uint32_t units, uint64_t want)
{
	uint64_t copies = 0;

	CU_ASSERT_EQUAL(cache_replicate(x->f, 0, 0, units, &copies, NULL), 0);
	CU_ASSERT_EQUAL(copies, want);
}

static void test_replicas_made_and_hashed(void)
{
	struct rfix x;
	uint64_t pages, want = hash_expected(16 * PS, 0, 0, 0);

	rfix_open(&x, 16, 64);
	replicate_all(&x, ALL3, 48);
	for (unsigned int k = 0; k < 3; k++) {
		CU_ASSERT_EQUAL(dev_st(&x, k).replicas, 16);
		CU_ASSERT_EQUAL(dev_st(&x, k).pages, 0);	/* replicas only */
	}
	CU_ASSERT_EQUAL(units_of(&x, 0), ALL3);
	replicate_all(&x, ALL3, 0);	/* there already */
	for (unsigned int k = 0; k < 3; k++) {
		CU_ASSERT_EQUAL(hash_on(&x, k, &pages), want);
		CU_ASSERT_EQUAL(pages, 16);
		CU_ASSERT_EQUAL(dev_st(&x, k).copies_in, 16);	/* none more */
	}
	/* not a unit the tier has; no unit at all */
	CU_ASSERT_EQUAL(cache_replicate(x.f, 0, 0, 1u << 3, &pages, NULL), -EINVAL);
	CU_ASSERT_EQUAL(cache_replicate(x.f, 0, 0, 0, &pages, NULL), -EINVAL);
	rfix_close(&x);
}

static void test_collapse_on_cpu_write(void)
{
	struct rfix x;
	uint64_t pages;
	char z = 'z';

	rfix_open(&x, 16, 64);
	replicate_all(&x, ALL3, 48);
	CU_ASSERT_EQUAL(cache_write(x.f, &z, 1, 3 * PS + 7), 1);
	CU_ASSERT_EQUAL(units_of(&x, 3), 0);	/* the host copy only */
	CU_ASSERT_EQUAL(units_of(&x, 4), ALL3);
	for (unsigned int k = 0; k < 3; k++) {
		CU_ASSERT_EQUAL(dev_st(&x, k).replicas, 15);
		CU_ASSERT_EQUAL(dev_st(&x, k).frames_used, 15);	/* its frame freed */
		CU_ASSERT_EQUAL(dev_st(&x, k).replicas_dropped, 1);
	}
	/* the devices hash the new byte: page 3 is read where it now is */
	CU_ASSERT_EQUAL(hash_on(&x, 1, &pages), hash_expected(16 * PS, 3 * PS + 7, 1, 'z'));
	CU_ASSERT_EQUAL(units_of(&x, 3), 1u << 1);	/* replicated there again */
	rfix_close(&x);
}

static void test_collapse_on_device_write(void)
{
	struct rfix x;
	uint64_t pages;
	off_t next;
	char b[PS];

	rfix_open(&x, 16, 64);
	replicate_all(&x, ALL3, 48);
	CU_ASSERT_EQUAL(cache_devop(x.f, 5 * PS, PS, CACHE_DEVOP_FILL, 'D', &pages,
				    &next), 0);
	CU_ASSERT_EQUAL(pages, 1);
	/* one copy left, on the device that wrote, which took a replica as
	 * the page (no copy) */
	CU_ASSERT_EQUAL(__builtin_popcount(units_of(&x, 5)), 1);
	CU_ASSERT_EQUAL(dev_st(&x, 0).copies_in + dev_st(&x, 1).copies_in +
			dev_st(&x, 2).copies_in, 48);
	CU_ASSERT_EQUAL(dev_st(&x, 0).replicas + dev_st(&x, 1).replicas +
			dev_st(&x, 2).replicas, 45);
	CU_ASSERT_EQUAL(cache_fsync(x.f, false), 0);
	CU_ASSERT_EQUAL(pread(x.fd, b, PS, 5 * PS), PS);
	CU_ASSERT_EQUAL(memchr(b, 'D', PS) == b && b[PS - 1] == 'D', 1);
	CU_ASSERT_EQUAL(hash_on(&x, 2, &pages), hash_expected(16 * PS, 5 * PS, PS, 'D'));
	rfix_close(&x);
}

static void test_collapse_on_truncate(void)
{
	struct rfix x;
	uint64_t pages;

	rfix_open(&x, 16, 64);
	replicate_all(&x, ALL3, 48);
	CU_ASSERT_EQUAL(cache_truncate(x.f, 7 * PS + 100), 0);
	for (unsigned int k = 0; k < 3; k++) {
		/* pages 8..15 gone with their replicas; page 7's tail zeroed */
		CU_ASSERT_EQUAL(dev_st(&x, k).replicas, 7);
		CU_ASSERT_EQUAL(dev_st(&x, k).frames_used, 7);
	}
	CU_ASSERT_EQUAL(units_of(&x, 7), 0);
	CU_ASSERT_EQUAL(units_of(&x, 6), ALL3);
	CU_ASSERT_EQUAL(hash_on(&x, 0, &pages), hash_expected(7 * PS + 100, 0, 0, 0));
	rfix_close(&x);
}

/* A device of 32 frames: replicas go first when its own pages need room. */
static void test_full_device_drops_replicas_first(void)
{
	struct cache_stats st;
	struct rfix x;
	uint64_t moved;

	rfix_open(&x, 48, 32);
	CU_ASSERT_EQUAL(cache_replicate(x.f, 0, 24 * PS, 1u << 1, &moved, NULL), 0);
	CU_ASSERT_EQUAL(moved, 24);
	CU_ASSERT_EQUAL(cache_migrate(x.f, 24 * PS, 24 * PS, true, 1, &moved, NULL), 0);
	CU_ASSERT_EQUAL(moved, 24);
	CU_ASSERT_EQUAL(dev_st(&x, 1).pages, 24);
	CU_ASSERT_EQUAL(dev_st(&x, 1).replicas, 8);
	CU_ASSERT_EQUAL(dev_st(&x, 1).replicas_dropped, 16);
	cache_get_stats(x.c, &st);
	CU_ASSERT_EQUAL(st.device_evictions, 0);
	CU_ASSERT_EQUAL(hash_on(&x, 0, &moved), hash_expected(48 * PS, 0, 0, 0));
	rfix_close(&x);
}

/*
 * Replicas never push data out: on a device of 32 frames holding 8 pages,
 * a replicate of 48 pages makes 24 and says ENOSPC, without evicting a
 * page or a replica of its own; a later request may take older replicas.
 */
static void test_replicas_push_nothing_out(void)
{
	struct cache_stats st;
	struct rfix x;
	uint64_t n;

	rfix_open(&x, 48, 32);
	CU_ASSERT_EQUAL(cache_migrate(x.f, 40 * PS, 8 * PS, true, 1, &n, NULL), 0);
	CU_ASSERT_EQUAL(n, 8);
	CU_ASSERT_EQUAL(cache_replicate(x.f, 0, 40 * PS, 1u << 1, &n, NULL), -ENOSPC);
	CU_ASSERT_EQUAL(n, 24);
	CU_ASSERT_EQUAL(dev_st(&x, 1).pages, 8);
	CU_ASSERT_EQUAL(dev_st(&x, 1).replicas, 24);
	CU_ASSERT_EQUAL(dev_st(&x, 1).replicas_dropped, 0);
	cache_get_stats(x.c, &st);
	CU_ASSERT_EQUAL(st.device_evictions, 0);
	/* a new request: the older replicas make room */
	CU_ASSERT_EQUAL(cache_replicate(x.f, 24 * PS, 16 * PS, 1u << 1, &n, NULL), 0);
	CU_ASSERT_EQUAL(n, 16);
	CU_ASSERT_EQUAL(dev_st(&x, 1).replicas, 24);
	CU_ASSERT_EQUAL(dev_st(&x, 1).replicas_dropped, 16);
	rfix_close(&x);
}

/* The primary moving to a device with a replica takes it: no copy. */
static void test_move_takes_replica(void)
{
	struct rfix x;
	uint64_t moved, in;

	rfix_open(&x, 16, 64);
	replicate_all(&x, 1u << 2, 16);
	in = dev_st(&x, 2).copies_in;
	CU_ASSERT_EQUAL(cache_migrate(x.f, 0, 0, true, 2, &moved, NULL), 0);
	CU_ASSERT_EQUAL(moved, 16);
	CU_ASSERT_EQUAL(dev_st(&x, 2).copies_in, in);
	CU_ASSERT_EQUAL(dev_st(&x, 2).pages, 16);
	CU_ASSERT_EQUAL(dev_st(&x, 2).replicas, 0);
	CU_ASSERT_EQUAL(units_of(&x, 9), 1u << 2);
	/* and replicas of device pages come from the device */
	replicate_all(&x, 1u << 0, 16);
	CU_ASSERT_EQUAL(units_of(&x, 9), (1u << 2) | (1u << 0));
	CU_ASSERT_EQUAL(hash_on(&x, 0, &moved), hash_expected(16 * PS, 0, 0, 0));
	rfix_close(&x);
}

int register_cache_replica(void)
{
	static const CU_TestInfo tests[] = {
		{ "replicas made on three devices, hashed on each",
		  test_replicas_made_and_hashed },
		{ "a CPU write collapses them", test_collapse_on_cpu_write },
		{ "a device write collapses them", test_collapse_on_device_write },
		{ "truncate collapses them", test_collapse_on_truncate },
		{ "a full device drops replicas first",
		  test_full_device_drops_replicas_first },
		{ "a move to a replica's device takes it", test_move_takes_replica },
		{ "replicas push nothing out", test_replicas_push_nothing_out },
		CU_TEST_INFO_NULL,
	};

	return unit_add_suite("cache_replica", tests);
}
