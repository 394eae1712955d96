/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/test_cache_migrate.c — cache/migrate.c and the device paths
 * of read.c, write.c and writeback.c, on the hostsim device, against real
 * backing files under /var/tmp.
 *
 * Covered: the migration state machine (host -> device -> host, flags,
 * frames freed in each tier, counters); reads of device pages through
 * bounce buffers; CPU writes into device pages (they stay there, dirty);
 * the device write fault (read-only until a device write, dirty and
 * read-write after, read-only again once written back); writeback of
 * device pages while they stay on the device; demotion when host frames
 * run out and eviction of clean device pages when device frames run out;
 * the promote policy; bounce-pool exhaustion: one buffer shared by eight
 * readers and a writer makes them wait (bounce_waits) but never deadlocks
 * and never returns wrong bytes; bounded requests over a sparse 1 TiB
 * file (holes skipped, one step of a devop that writes holes, @next).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cache/cache_int.h"
#include "fault/fault.h"
#include "tests/unit/unit.h"

#define PS 4096

static char dir[] = "/var/tmp/hmmfs-unit-migrate.XXXXXX";
static bool dir_made;

struct mfix {
	struct cache *c;
	struct cfile *f;
	int fd;
};

static unsigned char pat(size_t i)
{
	return (unsigned char)(i * 7 + i / PS + 3);
}

static void mfix_open(struct mfix *x, size_t pages, size_t host_cache,
		      size_t device_cache, const char *policy, size_t bounce)
{
	struct cache_config cfg = {
		.page_size = PS, .host_cache = host_cache,
		.dirty_background = host_cache / 4, .dirty_limit = host_cache / 2,
		.dirty_expire_ms = 30000, .io_engine = "psync",
		.device = "hostsim", .device_cache = device_cache,
		.migrate = policy, .bounce_buffers = bounce,
	};

	x->fd = unit_backing_file(dir, &dir_made, "f", pages * PS, pat);
	x->c = unit_cache(&cfg);
	x->f = unit_cache_file(x->c, dir, "f");
}

static void mfix_close(struct mfix *x)
{
	cache_file_close(x->f);
	cache_destroy(x->c);
	close(x->fd);
}

static struct cache_stats st_of(struct mfix *x)
{
	struct cache_stats st;

	cache_get_stats(x->c, &st);
	return st;
}

static struct cache_res_counts res_of(struct mfix *x)
{
	struct cache_extent ext[64];
	struct cache_res_counts cnt;
	size_t n;
	off_t next;

	CU_ASSERT_EQUAL(cache_residency(x->f, 0, 0, 0, ext, 64, &n, &next, &cnt), 0);
	return cnt;
}

/* The file reads back as the pattern, with [@off, @off + @len) = @byte. */
static bool reads_back(struct mfix *x, size_t size, size_t off, size_t len,
		       int byte)
{
	unsigned char *b = malloc(size);
	bool ok = cache_read(x->f, b, size, 0, NULL) == (ssize_t)size;

	for (size_t i = 0; ok && i < size; i++)
		ok = b[i] == (i >= off && i < off + len ? (unsigned char)byte : pat(i));
	free(b);
	return ok;
}

/*
 * As reads_back(), with no overwritten range, one page at a time through
 * cache_read_vec(): the zero-copy path, whose device pages take bounce
 * buffers (-EAGAIN, the caller's cue for the copying path, counts as
 * reading nothing wrong).
 */
static bool reads_back_vec(struct mfix *x, size_t size)
{
	struct cache_read_vec *v = malloc(sizeof(*v));	/* 8 KiB */
	bool ok = v != NULL;

	for (size_t off = 0; ok && off < size; off += PS) {
		ssize_t n = cache_read_vec(x->f, PS, (off_t)off, NULL, v);
		size_t at = off;

		if (n == -EAGAIN)
			continue;
		ok = n == PS;
		for (int k = 0; ok && k < v->n; k++)
			for (size_t i = 0; ok && i < v->iov[k].iov_len; i++, at++)
				ok = ((unsigned char *)v->iov[k].iov_base)[i] == pat(at);
		if (n >= 0)
			cache_read_vec_done(x->f, v);
	}
	free(v);
	return ok;
}

static void test_state_machine(void)
{
	struct mfix x;
	struct cache_res_counts r;
	uint64_t moved;

	mfix_open(&x, 32, 1 << 20, 1 << 20, "bounce", 16);
	CU_ASSERT_TRUE(reads_back(&x, 32 * PS, 0, 0, 0));
	CU_ASSERT_EQUAL(st_of(&x).host_pages, 32);
	CU_ASSERT_EQUAL(cache_migrate(x.f, 0, 0, true, CACHE_UNIT_ANY, &moved, NULL), 0);
	CU_ASSERT_EQUAL(moved, 32);
	r = res_of(&x);
	CU_ASSERT_EQUAL(r.device, 32);
	CU_ASSERT_EQUAL(r.host, 0);
	CU_ASSERT_EQUAL(st_of(&x).host_pages, 0);	/* host frames freed */
	CU_ASSERT_EQUAL(dev_frames_used(x.c->dev), 32);
	CU_ASSERT_EQUAL(x.c->frames.nfree, 32);
	/* already there: nothing moves, no error */
	CU_ASSERT_EQUAL(cache_migrate(x.f, 0, 0, true, CACHE_UNIT_ANY, &moved, NULL), 0);
	CU_ASSERT_EQUAL(moved, 0);
	/* bounce reads; the pages stay on the device (policy bounce) */
	CU_ASSERT_TRUE(reads_back(&x, 32 * PS, 0, 0, 0));
	CU_ASSERT_EQUAL(st_of(&x).bounce_reads, 32);
	CU_ASSERT_EQUAL(res_of(&x).device, 32);
	/* back: part of it */
	CU_ASSERT_EQUAL(cache_migrate(x.f, 8 * PS, 8 * PS, false, CACHE_UNIT_ANY, &moved, NULL), 0);
	CU_ASSERT_EQUAL(moved, 8);
	r = res_of(&x);
	CU_ASSERT_EQUAL(r.host, 8);
	CU_ASSERT_EQUAL(r.device, 24);
	rcu_barrier();	/* the device frames go after a grace period */
	CU_ASSERT_EQUAL(dev_frames_used(x.c->dev), 24);
	CU_ASSERT_EQUAL(st_of(&x).migrations_to_host, 8);
	CU_ASSERT_TRUE(reads_back(&x, 32 * PS, 0, 0, 0));
	/* bad ranges */
	CU_ASSERT_EQUAL(cache_migrate(x.f, -1, 0, true, CACHE_UNIT_ANY, &moved, NULL), -EINVAL);
	CU_ASSERT_EQUAL(cache_migrate(x.f, 33 * PS, 0, true, CACHE_UNIT_ANY, &moved, NULL), -ERANGE);
	mfix_close(&x);
}

static void test_cpu_write_and_writeback(void)
{
	struct mfix x;
	char w[3 * PS], b[3 * PS];
	uint64_t moved;

	mfix_open(&x, 16, 1 << 20, 1 << 20, "bounce", 16);
	CU_ASSERT_EQUAL(cache_migrate(x.f, 0, 0, true, CACHE_UNIT_ANY, &moved, NULL), 0);
	CU_ASSERT_EQUAL(moved, 16);
	memset(w, 'w', sizeof(w));
	CU_ASSERT_EQUAL(cache_write(x.f, w, 2 * PS + 10, PS - 5), 2 * PS + 10);
	CU_ASSERT_EQUAL(st_of(&x).bounce_writes, 4);	/* 4 pages touched */
	CU_ASSERT_EQUAL(res_of(&x).device, 16);
	CU_ASSERT_EQUAL(res_of(&x).dirty, 4);
	CU_ASSERT_TRUE(reads_back(&x, 16 * PS, PS - 5, 2 * PS + 10, 'w'));
	/* written back while they stay on the device */
	CU_ASSERT_EQUAL(cache_fsync(x.f, false), 0);
	CU_ASSERT_EQUAL(res_of(&x).dirty, 0);
	CU_ASSERT_EQUAL(res_of(&x).device, 16);
	CU_ASSERT_EQUAL(pread(x.fd, b, sizeof(b), PS - 5), (ssize_t)sizeof(b));
	CU_ASSERT_EQUAL(memcmp(b, w, 2 * PS + 10), 0);
	CU_ASSERT_EQUAL(b[2 * PS + 10], (char)pat(3 * PS + 5));
	mfix_close(&x);
}

static void test_device_write_fault(void)
{
	struct mfix x;
	struct cpage *p;
	uint64_t pages;

	mfix_open(&x, 4, 1 << 20, 1 << 20, "bounce", 16);
	CU_ASSERT_EQUAL(cache_migrate(x.f, 0, 0, true, CACHE_UNIT_ANY, &pages, NULL), 0);
	p = page_lookup_get(x.f, 1);
	CU_ASSERT_FATAL(p != NULL);
	/* device-resident, mapped read-only, clean */
	CU_ASSERT_TRUE(page_test_device(&p->ps));
	CU_ASSERT_FALSE(page_test_dev_rw(&p->ps));
	CU_ASSERT_FALSE(dev_writable(x.c->dev, page_daddr(p)));
	CU_ASSERT_EQUAL(cache_devop(x.f, PS, PS, CACHE_DEVOP_FILL, 'f', &pages, NULL), 0);
	CU_ASSERT_EQUAL(pages, 1);
	CU_ASSERT_EQUAL(st_of(&x).device_faults, 1);
	/* the fault made it dirty and read-write */
	CU_ASSERT_TRUE(page_test_dirty(&p->ps));
	CU_ASSERT_TRUE(page_test_dev_rw(&p->ps));
	CU_ASSERT_TRUE(dev_writable(x.c->dev, page_daddr(p)));
	/* a second device write: no fault, already writable */
	CU_ASSERT_EQUAL(cache_devop(x.f, PS, 10, CACHE_DEVOP_ADD, 1, &pages, NULL), 0);
	CU_ASSERT_EQUAL(st_of(&x).device_faults, 1);
	/* writeback maps it read-only again (clear_page_dirty_for_io) */
	CU_ASSERT_EQUAL(cache_fsync(x.f, false), 0);
	CU_ASSERT_FALSE(page_test_dirty(&p->ps));
	CU_ASSERT_FALSE(page_test_dev_rw(&p->ps));
	CU_ASSERT_FALSE(dev_writable(x.c->dev, page_daddr(p)));
	CU_ASSERT_EQUAL(cache_devop(x.f, PS, 1, CACHE_DEVOP_XOR, 1, &pages, NULL), 0);
	CU_ASSERT_EQUAL(st_of(&x).device_faults, 2);
	page_put(p);
	{
		unsigned char b[PS];

		CU_ASSERT_EQUAL(cache_read(x.f, b, PS, PS, NULL), PS);
		CU_ASSERT_EQUAL(b[0], (unsigned char)(('f' + 1) ^ 1));
		CU_ASSERT_EQUAL(b[9], 'f' + 1);
		CU_ASSERT_EQUAL(b[10], 'f');
	}
	CU_ASSERT_EQUAL(cache_devop(x.f, 0, 0, CACHE_DEVOP_ADD, 256, &pages, NULL), -EINVAL);
	mfix_close(&x);
}

static void test_demote_and_evict(void)
{
	struct mfix x;
	struct cache_stats st;

	/* 16 host frames, 32 device frames, a 128-page file */
	mfix_open(&x, 128, 16 * PS, 32 * PS, "bounce", 16);
	CU_ASSERT_TRUE(reads_back(&x, 128 * PS, 0, 0, 0));
	st = st_of(&x);
	CU_ASSERT_TRUE(st.migrations_to_device > 0);
	CU_ASSERT_TRUE(st.device_evictions > 0);
	CU_ASSERT_TRUE(st.host_pages <= 16);
	CU_ASSERT_TRUE(st.device_pages <= 32);
	/* dirty pages too: demoted dirty, written back from the device */
	{
		char w[64 * PS];

		memset(w, 'd', sizeof(w));
		CU_ASSERT_EQUAL(cache_write(x.f, w, sizeof(w), 0), (ssize_t)sizeof(w));
		CU_ASSERT_EQUAL(cache_fsync(x.f, false), 0);
		CU_ASSERT_EQUAL(pread(x.fd, w, sizeof(w), 0), (ssize_t)sizeof(w));
		for (size_t i = 0; i < sizeof(w); i++)
			if (w[i] != 'd') {
				CU_FAIL("BACKING lost a demoted dirty page");
				break;
			}
	}
	CU_ASSERT_TRUE(reads_back(&x, 128 * PS, 0, 64 * PS, 'd'));
	mfix_close(&x);
}

static void test_promote_policy(void)
{
	struct mfix x;
	uint64_t moved;

	mfix_open(&x, 8, 1 << 20, 1 << 20, "promote", 16);
	CU_ASSERT_EQUAL(cache_migrate(x.f, 0, 0, true, CACHE_UNIT_ANY, &moved, NULL), 0);
	CU_ASSERT_TRUE(reads_back(&x, 8 * PS, 0, 0, 0));	/* served, then promoted */
	CU_ASSERT_EQUAL(res_of(&x).host, 8);
	CU_ASSERT_EQUAL(st_of(&x).migrations_to_host, 8);
	mfix_close(&x);
	/* adaptive: the third read of a page brings it back */
	mfix_open(&x, 8, 1 << 20, 1 << 20, "adaptive", 16);
	CU_ASSERT_EQUAL(cache_migrate(x.f, 0, 0, true, CACHE_UNIT_ANY, &moved, NULL), 0);
	CU_ASSERT_TRUE(reads_back(&x, 8 * PS, 0, 0, 0));
	CU_ASSERT_TRUE(reads_back(&x, 8 * PS, 0, 0, 0));
	CU_ASSERT_EQUAL(res_of(&x).device, 8);
	CU_ASSERT_TRUE(reads_back(&x, 8 * PS, 0, 0, 0));
	CU_ASSERT_EQUAL(res_of(&x).host, 8);
	mfix_close(&x);
}

struct rd {
	struct mfix *x;
	int bad;
};

static void *rd_main(void *arg)
{
	struct rd *r = arg;

	for (int i = 0; i < 50; i++)
		if (!(i % 2 ? reads_back_vec(r->x, 64 * PS) :
			      reads_back(r->x, 64 * PS, 0, 0, 0)))
			r->bad++;
	return NULL;
}

/*
 * One bounce buffer, eight readers of 64 device pages (the copying path,
 * which needs none, and the zero-copy path, which needs one a page) and
 * a writeback.
 */
static void test_bounce_exhaustion(void)
{
	struct mfix x;
	struct rd r[8];
	pthread_t th[8];
	uint64_t moved, pages;

	mfix_open(&x, 64, 1 << 20, 1 << 20, "bounce", 1);
	CU_ASSERT_EQUAL(cache_migrate(x.f, 0, 0, true, CACHE_UNIT_ANY, &moved, NULL), 0);
	for (int i = 0; i < 8; i++) {
		r[i] = (struct rd){ .x = &x };
		pthread_create(&th[i], NULL, rd_main, &r[i]);
	}
	/* device pages dirtied and written back meanwhile: writeback needs
	 * the only buffer too (dirty bytes equal to the pattern's) */
	for (int i = 0; i < 20; i++) {
		CU_ASSERT_EQUAL(cache_devop(x.f, 0, 0, CACHE_DEVOP_XOR, 0, &pages, NULL), 0);
		CU_ASSERT_EQUAL(cache_fsync(x.f, false), 0);
	}
	for (int i = 0; i < 8; i++) {
		pthread_join(th[i], NULL);
		CU_ASSERT_EQUAL(r[i].bad, 0);
	}
	CU_ASSERT_TRUE(st_of(&x).bounce_waits > 0);
	CU_ASSERT_EQUAL(bounce_in_use(x.c->bounce), 0);
	mfix_close(&x);
}

/*
 * Reads of device pages through each copy path (the synchronous fast path
 * and the device's engine), by the copying and the zero-copy read paths,
 * return the same bytes; an injected device-to-host copy failure is -EIO
 * through both and leaves the pages where they were.
 */
static void test_copy_paths(void)
{
	static const enum dev_copy_path paths[] = { DEV_PATH_SYNC, DEV_PATH_ASYNC };
	struct mfix x;
	uint64_t moved;
	char buf[3 * PS], err[128];

	mfix_open(&x, 32, 1 << 20, 1 << 20, "bounce", 64);
	CU_ASSERT_EQUAL(cache_migrate(x.f, 0, 0, true, CACHE_UNIT_ANY, &moved, NULL), 0);
	CU_ASSERT_EQUAL(moved, 32);
	for (size_t i = 0; i < 2; i++) {
		uint64_t before = dev_copy_batches(x.c->dev, paths[i]);

		dev_copy_path_set(x.c->dev, paths[i]);
		CU_ASSERT_TRUE(reads_back(&x, 32 * PS, 0, 0, 0));
		CU_ASSERT_TRUE(reads_back_vec(&x, 32 * PS));
		CU_ASSERT_TRUE(dev_copy_batches(x.c->dev, paths[i]) > before);
		setenv("HMMFS_FAULT", "dev_copy:eio:dir=d2h", 1);
		CU_ASSERT_EQUAL_FATAL(fault_init(err, sizeof(err)), 0);
		CU_ASSERT_EQUAL(cache_read(x.f, buf, sizeof(buf), PS + 5, NULL), -EIO);
		unsetenv("HMMFS_FAULT");
		CU_ASSERT_EQUAL_FATAL(fault_init(err, sizeof(err)), 0);
	}
	dev_copy_path_set(x.c->dev, DEV_PATH_AUTO);
	CU_ASSERT_EQUAL(res_of(&x).device, 32);
	CU_ASSERT_TRUE(reads_back(&x, 32 * PS, 0, 0, 0));
	mfix_close(&x);
}

static void test_no_device(void)
{
	struct cache_config cfg = {
		.page_size = PS, .host_cache = 1 << 20, .dirty_background = 1 << 18,
		.dirty_limit = 1 << 19, .dirty_expire_ms = 30000,
		.io_engine = "psync", .device = "none",
	};
	struct cache *c;
	char err[128];

	CU_ASSERT_EQUAL_FATAL(cache_create(&cfg, &c, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(cache_start(c, err, sizeof(err)), 0);
	CU_ASSERT_PTR_NULL(cache_device_name(c));
	cache_destroy(c);
	cfg.device = "hostsim";
	cfg.migrate = "sometimes";
	CU_ASSERT_EQUAL(cache_create(&cfg, &c, err, sizeof(err)), -EINVAL);
}

/*
 * Requests are bounded and skip holes: a 1 TiB file with data in pages
 * 0, 1 and at 1 GiB, and a page written into a hole at 100 MiB.
 */
static void test_bounded_sparse(void)
{
	const off_t tib = (off_t)1 << 40, gib = (off_t)1 << 30;
	unsigned char b[PS];
	struct cache_res_counts r;
	uint64_t moved;
	off_t next;
	struct mfix x;
	char path[300];
	int pfd;

	mfix_open(&x, 2, 1 << 20, 128 << 20, "bounce", 16);
	cache_file_close(x.f);	/* grow BACKING behind it, then open again */
	for (size_t i = 0; i < PS; i++)
		b[i] = pat(i);
	CU_ASSERT_EQUAL(pwrite(x.fd, b, PS, gib), PS);
	CU_ASSERT_EQUAL(ftruncate(x.fd, tib), 0);
	snprintf(path, sizeof(path), "%s/f", dir);
	pfd = open(path, O_PATH | O_CLOEXEC);
	CU_ASSERT_FATAL(cache_file_open(x.c, pfd, &x.f) == 0);
	close(pfd);
	/* the data pages only, the whole TiB in one request */
	CU_ASSERT_EQUAL(cache_migrate(x.f, 0, 0, true, CACHE_UNIT_ANY, &moved, &next), 0);
	CU_ASSERT_EQUAL(moved, 3);
	CU_ASSERT_EQUAL(next, tib);
	r = res_of(&x);
	CU_ASSERT_EQUAL(r.pages, 3);
	CU_ASSERT_EQUAL(r.device, 3);
	/* a cached page in a hole moves too */
	CU_ASSERT_EQUAL(cache_write(x.f, b, PS, 100 << 20), PS);
	CU_ASSERT_EQUAL(cache_migrate(x.f, 0, 0, true, CACHE_UNIT_ANY, &moved, &next), 0);
	CU_ASSERT_EQUAL(moved, 1);
	CU_ASSERT_EQUAL(cache_migrate(x.f, PS, 0, false, CACHE_UNIT_ANY, &moved, &next), 0);
	CU_ASSERT_EQUAL(moved, 3);
	CU_ASSERT_EQUAL(next, tib);
	/* a value that writes holes: one bounded step, then where to go on */
	CU_ASSERT_EQUAL(cache_devop(x.f, 0, 0, CACHE_DEVOP_ADD, 1, &moved, &next), 0);
	CU_ASSERT_EQUAL(next, (off_t)CACHE_REQUEST_BYTES);
	CU_ASSERT_EQUAL(moved, CACHE_REQUEST_BYTES / PS);
	CU_ASSERT_EQUAL(res_of(&x).pages, CACHE_REQUEST_BYTES / PS + 2);
	CU_ASSERT_EQUAL(cache_read(x.f, b, PS, PS, NULL), PS);
	CU_ASSERT_EQUAL(b[0], (unsigned char)(pat(PS) + 1));
	CU_ASSERT_EQUAL(cache_read(x.f, b, PS, 2 * PS, NULL), PS);
	CU_ASSERT_EQUAL(b[0], 1);	/* a hole, written */
	mfix_close(&x);
}

int register_cache_migrate(void)
{
	static const CU_TestInfo tests[] = {
		{ "migration state machine", test_state_machine },
		{ "CPU writes into device pages, writeback", test_cpu_write_and_writeback },
		{ "device write fault", test_device_write_fault },
		{ "demotion and device eviction", test_demote_and_evict },
		{ "promote and adaptive policies", test_promote_policy },
		{ "bounce pool exhaustion", test_bounce_exhaustion },
		{ "device reads: both copy paths, faults", test_copy_paths },
		{ "no device tier", test_no_device },
		{ "bounded requests skip holes", test_bounded_sparse },
		CU_TEST_INFO_NULL,
	};

	return unit_add_suite("cache_migrate", tests);
}
