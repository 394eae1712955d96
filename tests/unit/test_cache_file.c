/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/test_cache_file.c — cache/file.c, read.c, write.c, truncate.c,
 * coherence.c, lru.c, writeback.c against real backing files in a
 * temporary directory (under /var/tmp, so O_DIRECT works where the file
 * system allows it).
 *
 * Covered: round trips at odd offsets; a hit does not touch BACKING;
 * concurrent misses on one page share one backing read (the read is slowed
 * through the I/O engine's fault hook so the threads really overlap);
 * read-modify-write of partial pages; truncate zeroing what lies past EOF;
 * two truncates of the same pages at once both finishing;
 * readahead of a sequential reader; scan resistance of eviction; a tiny
 * cache whose dirty pages are evicted constantly; dirty throttling; a
 * failing backing write kept dirty, reported once at fsync, and written
 * once the fault clears; writeback never writing past EOF; close-to-open
 * revalidation.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cache/cache_int.h"
#include "tests/unit/unit.h"

#define PS 4096

static char dir[] = "/var/tmp/hmmfs-unit-cache.XXXXXX";
static int dir_made;

/* A backing file with @len bytes of pattern @seed (0: empty). */
static int backing_file(const char *name, size_t len, unsigned int seed)
{
	char path[256];
	int fd;

	if (!dir_made) {
		CU_ASSERT_FATAL(mkdtemp(dir) != NULL);
		dir_made = 1;
	}
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	CU_ASSERT_FATAL(fd >= 0);
	if (len) {
		unsigned char *b = malloc(len);

		CU_ASSERT_FATAL(b != NULL);
		for (size_t i = 0; i < len; i++)
			b[i] = (unsigned char)(seed * 31 + i * 7 + i / 4096);
		CU_ASSERT_FATAL(pwrite(fd, b, len, 0) == (ssize_t)len);
		free(b);
	}
	return fd;
}

static unsigned char pattern(unsigned int seed, size_t i)
{
	return (unsigned char)(seed * 31 + i * 7 + i / 4096);
}

struct fixture {
	struct cache *c;
	struct cfile *f;
	int fd;		/* the test's own view of the backing file */
};

static void fixture_open(struct fixture *x, const char *name, size_t len,
			 size_t host_cache, size_t dirty_limit)
{
	struct cache_config cfg = {
		.page_size = PS, .host_cache = host_cache,
		.dirty_background = dirty_limit / 2, .dirty_limit = dirty_limit,
		.dirty_expire_ms = 30000, .io_engine = "psync",
	};
	char err[256], path[64];
	int pfd;

	x->fd = backing_file(name, len, 1);
	CU_ASSERT_FATAL(cache_create(&cfg, &x->c, err, sizeof(err)) == 0);
	CU_ASSERT_FATAL(cache_start(x->c, err, sizeof(err)) == 0);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", x->fd);
	pfd = open(path, O_PATH | O_CLOEXEC);
	CU_ASSERT_FATAL(pfd >= 0);
	CU_ASSERT_FATAL(cache_file_open(x->c, pfd, &x->f) == 0);
	close(pfd);
}

static void fixture_close(struct fixture *x)
{
	cache_file_close(x->f);
	cache_destroy(x->c);
	close(x->fd);
}

static struct cache_stats stats(struct fixture *x)
{
	struct cache_stats st;

	cache_get_stats(x->c, &st);
	return st;
}

/* dirty_background equal to dirty_limit: writers must still get through. */
static void test_equal_dirty_limits(void)
{
	struct cache_config cfg = {
		.page_size = PS, .host_cache = 1 << 20, .dirty_background = 64 << 10,
		.dirty_limit = 64 << 10, .dirty_expire_ms = 3600000, .io_engine = "psync",
	};
	struct fixture x;
	char err[256], path[64], w[64 * 1024];
	int pfd;

	x.fd = backing_file("eq", 0, 1);
	CU_ASSERT_FATAL(cache_create(&cfg, &x.c, err, sizeof(err)) == 0);
	CU_ASSERT_FATAL(cache_start(x.c, err, sizeof(err)) == 0);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", x.fd);
	pfd = open(path, O_PATH | O_CLOEXEC);
	CU_ASSERT_FATAL(cache_file_open(x.c, pfd, &x.f) == 0);
	close(pfd);
	memset(w, 'e', sizeof(w));
	for (int i = 0; i < 16; i++)	/* 1 MiB through a 64 KiB dirty limit */
		CU_ASSERT_EQUAL(cache_write(x.f, w, sizeof(w), (off_t)i * (off_t)sizeof(w)),
				(ssize_t)sizeof(w));
	CU_ASSERT_EQUAL(cache_fsync(x.f, false), 0);
	fixture_close(&x);
}

static void test_round_trip(void)
{
	struct fixture x;
	char w[10000], r[10000], b[10000];

	fixture_open(&x, "rt", 3 * PS, 1 << 20, 256 << 10);
	for (size_t i = 0; i < sizeof(w); i++)
		w[i] = (char)(i * 13 + 5);
	CU_ASSERT_EQUAL(cache_write(x.f, w, sizeof(w), 5000), (ssize_t)sizeof(w));
	CU_ASSERT_EQUAL(cache_file_size(x.f), 15000);
	CU_ASSERT_EQUAL(cache_read(x.f, r, sizeof(r), 5000, NULL), (ssize_t)sizeof(r));
	CU_ASSERT_EQUAL(memcmp(w, r, sizeof(w)), 0);
	/* bytes before the write are BACKING's, read-modify-write kept them */
	CU_ASSERT_EQUAL(cache_read(x.f, r, 5000, 0, NULL), 5000);
	for (size_t i = 0; i < 5000; i++)
		if ((unsigned char)r[i] != pattern(1, i)) {
			CU_FAIL("bytes before a partial-page write changed");
			break;
		}
	CU_ASSERT_EQUAL(cache_fsync(x.f, false), 0);
	CU_ASSERT_EQUAL(pread(x.fd, b, sizeof(b), 5000), (ssize_t)sizeof(b));
	CU_ASSERT_EQUAL(memcmp(w, b, sizeof(w)), 0);
	CU_ASSERT_EQUAL(lseek(x.fd, 0, SEEK_END), 15000);	/* exact size */
	CU_ASSERT_EQUAL(cache_read(x.f, r, 100, 15000, NULL), 0);	/* EOF */
	fixture_close(&x);
}

static void test_hit_skips_backing(void)
{
	struct fixture x;
	char r[PS];
	struct cache_stats a, b;

	fixture_open(&x, "hit", 4 * PS, 1 << 20, 256 << 10);
	CU_ASSERT_EQUAL(cache_read(x.f, r, PS, PS, NULL), PS);
	a = stats(&x);
	CU_ASSERT_EQUAL(cache_read(x.f, r, PS, PS, NULL), PS);
	b = stats(&x);
	CU_ASSERT_EQUAL(b.backing_reads, a.backing_reads);
	CU_ASSERT_EQUAL(b.hits, a.hits + 1);
	CU_ASSERT_EQUAL(b.misses, a.misses);
	for (size_t i = 0; i < PS; i++)
		if ((unsigned char)r[i] != pattern(1, PS + i)) {
			CU_FAIL("cached bytes differ from BACKING");
			break;
		}
	fixture_close(&x);
}

/* The fault hook: every backing read takes 100 ms. */
static int slow_read(struct io_req *req, void *arg)
{
	(void)arg;
	if (req->op == IO_READ)
		nanosleep(&(struct timespec){ .tv_nsec = 100000000 }, NULL);
	return 0;
}

struct reader {
	struct cfile *f;
	char buf[PS];
	ssize_t n;
	pthread_barrier_t *bar;
};

static void *reader_main(void *arg)
{
	struct reader *r = arg;

	pthread_barrier_wait(r->bar);
	r->n = cache_read(r->f, r->buf, PS, 2 * PS, NULL);
	return NULL;
}

static void test_coalesced_misses(void)
{
	struct fixture x;
	struct reader rd[8];
	pthread_t th[8];
	pthread_barrier_t bar;

	fixture_open(&x, "coalesce", 4 * PS, 1 << 20, 256 << 10);
	io_engine_set_fault(x.c->io, slow_read, NULL);
	pthread_barrier_init(&bar, NULL, 8);
	for (int i = 0; i < 8; i++) {
		rd[i] = (struct reader){ .f = x.f, .bar = &bar };
		pthread_create(&th[i], NULL, reader_main, &rd[i]);
	}
	for (int i = 0; i < 8; i++) {
		pthread_join(th[i], NULL);
		CU_ASSERT_EQUAL(rd[i].n, PS);
		CU_ASSERT_EQUAL(memcmp(rd[i].buf, rd[0].buf, PS), 0);
	}
	CU_ASSERT_EQUAL(stats(&x).backing_reads, 1);
	CU_ASSERT_EQUAL(stats(&x).misses, 1);
	CU_ASSERT_EQUAL(stats(&x).hits, 7);
	io_engine_set_fault(x.c->io, NULL, NULL);
	pthread_barrier_destroy(&bar);
	fixture_close(&x);
}

static void test_truncate_zeroes_tail(void)
{
	struct fixture x;
	char r[PS], ones[PS];

	fixture_open(&x, "trunc", 2 * PS, 1 << 20, 256 << 10);
	memset(ones, 1, sizeof(ones));
	CU_ASSERT_EQUAL(cache_write(x.f, ones, PS, 0), PS);
	CU_ASSERT_EQUAL(cache_truncate(x.f, 100), 0);
	CU_ASSERT_EQUAL(cache_file_size(x.f), 100);
	CU_ASSERT_EQUAL(lseek(x.fd, 0, SEEK_END), 100);
	CU_ASSERT_EQUAL(cache_truncate(x.f, 3 * PS), 0);
	CU_ASSERT_EQUAL(cache_read(x.f, r, PS, 0, NULL), PS);
	CU_ASSERT_EQUAL(memcmp(r, ones, 100), 0);
	for (size_t i = 100; i < PS; i++)
		if (r[i]) {
			CU_FAIL("byte past the truncation point is not zero");
			break;
		}
	CU_ASSERT_EQUAL(cache_fsync(x.f, false), 0);
	CU_ASSERT_EQUAL(lseek(x.fd, 0, SEEK_END), 3 * PS);
	fixture_close(&x);
}

struct dropper {
	struct cfile *f;
	pthread_barrier_t *bar;
	int rounds;
};

static void *dropper_main(void *arg)
{
	struct dropper *d = arg;

	for (int i = 0; i < d->rounds; i++) {
		pthread_barrier_wait(d->bar);
		cache_truncate(d->f, 0);
		pthread_barrier_wait(d->bar);
	}
	return NULL;
}

/*
 * Two truncates of the same pages at once both finish (issue 13, item 1):
 * each used to keep a reference to every page it meant to drop while it
 * waited for the other's to go, and both waited forever.  A dropper that
 * is still running after 20 s is reported, and left behind.
 */
static void test_concurrent_drops_finish(void)
{
	enum { NDROP = 2, ROUNDS = 50, PAGES = 64 };
	static char w[PAGES * PS];
	struct dropper d[NDROP];
	pthread_barrier_t bar;
	pthread_t th[NDROP];
	struct timespec deadline, now = { 0 };
	int joined = 0;
	struct fixture x;

	fixture_open(&x, "drops", 0, 1 << 20, 1 << 20);
	memset(w, 'd', sizeof(w));
	CU_ASSERT_FATAL(pthread_barrier_init(&bar, NULL, NDROP + 1) == 0);
	for (int i = 0; i < NDROP; i++) {
		d[i] = (struct dropper){ .f = x.f, .bar = &bar, .rounds = ROUNDS };
		CU_ASSERT_FATAL(pthread_create(&th[i], NULL, dropper_main, &d[i]) == 0);
	}
	for (int r = 0; r < ROUNDS; r++) {
		CU_ASSERT_EQUAL(cache_write(x.f, w, sizeof(w), 0), (ssize_t)sizeof(w));
		pthread_barrier_wait(&bar);	/* go */
		clock_gettime(CLOCK_MONOTONIC, &deadline);
		deadline.tv_sec += 20;
		while (stats(&x).host_pages && now.tv_sec < deadline.tv_sec) {
			nanosleep(&(struct timespec){ .tv_nsec = 1000000 }, NULL);
			clock_gettime(CLOCK_MONOTONIC, &now);
		}
		if (stats(&x).host_pages) {
			CU_FAIL("two concurrent truncates still had pages to drop after 20 s");
			return;	/* the droppers spin on: leave the fixture to them */
		}
		pthread_barrier_wait(&bar);	/* both returned */
	}
	for (int i = 0; i < NDROP; i++)
		joined += pthread_join(th[i], NULL) == 0;
	CU_ASSERT_EQUAL(joined, NDROP);
	CU_ASSERT_EQUAL(cache_file_size(x.f), 0);
	CU_ASSERT_EQUAL(lseek(x.fd, 0, SEEK_END), 0);
	pthread_barrier_destroy(&bar);
	fixture_close(&x);
}

struct racing_write {
	struct cfile *f;
	pthread_barrier_t *bar;
	const char *buf;
	size_t len;
	int rounds;
};

static void *racing_write_main(void *arg)
{
	struct racing_write *w = arg;

	for (int i = 0; i < w->rounds; i++) {
		pthread_barrier_wait(w->bar);
		cache_write(w->f, w->buf, w->len, 0);
		pthread_barrier_wait(w->bar);
	}
	return NULL;
}

/*
 * A write of many pages and a truncate to 0 at once (an O_TRUNC open is
 * not ordered against writes by the kernel without writeback_cache) end
 * as one after the other: the file is empty, or holds the whole write,
 * and BACKING the same after fsync.  A write landing between the
 * truncate's new size and its drop of the pages used to leave its size
 * with its pages gone: 64 pages of zeros, and BACKING empty.
 */
static void test_write_and_truncate_ordered(void)
{
	enum { ROUNDS = 300, PAGES = 64 };
	static char w[PAGES * PS], r[PAGES * PS];
	struct racing_write rw;
	pthread_barrier_t bar;
	pthread_t th;
	struct fixture x;
	int bad = 0;

	fixture_open(&x, "wtrunc", 0, 4 << 20, 4 << 20);
	memset(w, 'w', sizeof(w));
	CU_ASSERT_FATAL(pthread_barrier_init(&bar, NULL, 2) == 0);
	rw = (struct racing_write){ .f = x.f, .bar = &bar, .buf = w, .len = sizeof(w),
				    .rounds = ROUNDS };
	CU_ASSERT_FATAL(pthread_create(&th, NULL, racing_write_main, &rw) == 0);
	for (int i = 0; i < ROUNDS; i++) {
		off_t size;

		pthread_barrier_wait(&bar);	/* go */
		cache_truncate(x.f, 0);
		pthread_barrier_wait(&bar);	/* both done */
		size = cache_file_size(x.f);
		if (size != 0 && (size != (off_t)sizeof(w) ||
				  cache_read(x.f, r, sizeof(r), 0, NULL) != (ssize_t)sizeof(r) ||
				  memcmp(r, w, sizeof(w)))) {
			bad++;
			continue;
		}
		if (cache_fsync(x.f, false) || lseek(x.fd, 0, SEEK_END) != size)
			bad++;
	}
	pthread_join(th, NULL);
	CU_ASSERT_EQUAL(bad, 0);
	pthread_barrier_destroy(&bar);
	fixture_close(&x);
}

static void test_readahead(void)
{
	struct fixture x;
	struct cache_ra ra = { 0 };
	char r[PS];

	fixture_open(&x, "ra", 256 * PS, 4 << 20, 256 << 10);
	for (int i = 0; i < 64; i++)
		CU_ASSERT_EQUAL(cache_read(x.f, r, PS, (off_t)i * PS, &ra), PS);
	CU_ASSERT(stats(&x).readahead_pages > 0);
	/* 64 pages read, far fewer backing misses than pages */
	CU_ASSERT(stats(&x).misses < 16);
	/* contiguous pages went to BACKING as runs, not page by page */
	CU_ASSERT(stats(&x).backing_reads * 4 <=
		  stats(&x).misses + stats(&x).readahead_pages);
	fixture_close(&x);
}

/*
 * A read that is not sequential on its open file but lands right after
 * cached pages reads ahead as many pages as that run (mm's "context"
 * readahead); one with nothing cached before it reads only itself.
 */
static void test_readahead_context(void)
{
	struct fixture x;
	struct cache_ra ra = { 0 }, other = { 0 };
	char r[PS];

	fixture_open(&x, "rac", 256 * PS, 4 << 20, 256 << 10);
	/* a lone page far from anything cached: no readahead */
	CU_ASSERT_EQUAL(cache_read(x.f, r, PS, 200 * PS, &ra), PS);
	CU_ASSERT_EQUAL(stats(&x).readahead_pages, 0);
	/* pages 0..15 cached by another open file, backwards (no readahead) */
	for (int i = 15; i >= 0; i--)
		CU_ASSERT_EQUAL(cache_read(x.f, r, PS, (off_t)i * PS, &other), PS);
	CU_ASSERT_EQUAL(stats(&x).readahead_pages, 0);
	uint64_t before = stats(&x).readahead_pages;
	/* page 16 on this open file is not sequential for it (last at 200) */
	CU_ASSERT_EQUAL(cache_read(x.f, r, PS, 16 * PS, &ra), PS);
	CU_ASSERT_EQUAL(stats(&x).readahead_pages - before, 16);
	/* and what was read ahead is served without BACKING */
	uint64_t reads = stats(&x).backing_reads;
	for (int i = 17; i <= 32; i++)
		CU_ASSERT_EQUAL(cache_read(x.f, r, PS, (off_t)i * PS, NULL), PS);
	CU_ASSERT_EQUAL(stats(&x).backing_reads, reads);
	fixture_close(&x);
}

static void test_scan_resistance(void)
{
	struct fixture x;
	struct cache_stats before, after;
	char r[PS];

	/* 64-page cache; hot set of 16 pages, used twice */
	fixture_open(&x, "scan", 1100 * PS, 64 * PS, 16 * PS);
	for (int round = 0; round < 2; round++)
		for (int i = 0; i < 16; i++)
			CU_ASSERT_EQUAL(cache_read(x.f, r, PS, (off_t)i * PS, NULL), PS);
	/* one pass over 1000 other pages, each read once */
	for (int i = 100; i < 1100; i++)
		CU_ASSERT_EQUAL(cache_read(x.f, r, PS, (off_t)i * PS, NULL), PS);
	CU_ASSERT(stats(&x).evictions >= 900);
	before = stats(&x);
	for (int i = 0; i < 16; i++)
		CU_ASSERT_EQUAL(cache_read(x.f, r, PS, (off_t)i * PS, NULL), PS);
	after = stats(&x);
	CU_ASSERT_EQUAL(after.hits - before.hits, 16);	/* the hot set survived */
	CU_ASSERT_EQUAL(after.misses, before.misses);
	CU_ASSERT(after.host_pages <= 64);
	fixture_close(&x);
}

static void test_tiny_cache_dirty_eviction(void)
{
	struct fixture x;
	char w[3 * PS + 100], r[sizeof(w)];

	/* 16 pages; write 40x that, reading back as we go */
	fixture_open(&x, "tiny", 0, 16 * PS, 4 * PS);
	for (int i = 0; i < 200; i++) {
		memset(w, 'a' + i % 26, sizeof(w));
		CU_ASSERT_EQUAL_FATAL(cache_write(x.f, w, sizeof(w),
						  (off_t)i * (off_t)sizeof(w)),
				      (ssize_t)sizeof(w));
		CU_ASSERT(stats(&x).host_pages <= 16);
	}
	for (int i = 0; i < 200; i++) {
		CU_ASSERT_EQUAL(cache_read(x.f, r, sizeof(r), (off_t)i * (off_t)sizeof(r),
					   NULL), (ssize_t)sizeof(r));
		memset(w, 'a' + i % 26, sizeof(w));
		if (memcmp(w, r, sizeof(w))) {
			CU_FAIL("data lost through eviction of dirty pages");
			break;
		}
	}
	CU_ASSERT(stats(&x).evictions > 0);
	CU_ASSERT_EQUAL(cache_fsync(x.f, false), 0);
	CU_ASSERT_EQUAL(lseek(x.fd, 0, SEEK_END), 200 * (off_t)sizeof(w));
	CU_ASSERT_EQUAL(stats(&x).dirty_pages, 0);
	fixture_close(&x);
}

/* The fault hook: every backing write takes 1 ms. */
static int slow_write(struct io_req *req, void *arg)
{
	(void)arg;
	if (req->op == IO_WRITE)
		nanosleep(&(struct timespec){ .tv_nsec = 1000000 }, NULL);
	return 0;
}

/* Writers against a 32-page dirty limit on a 256-page cache. */
struct writer {
	struct cfile *f;
	int id;
	int ok;
};

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	char buf[PS];

	memset(buf, 'A' + w->id, sizeof(buf));
	w->ok = 1;
	for (int i = 0; i < 200; i++)
		if (cache_write(w->f, buf, PS, ((off_t)i * 4 + w->id) * PS) != PS)
			w->ok = 0;
	return NULL;
}

static void test_dirty_throttle(void)
{
	struct fixture x;
	struct writer wr[4];
	pthread_t th[4];
	char r[PS];

	fixture_open(&x, "throttle", 0, 256 * PS, 32 * PS);
	/* slow writeback so the writers outrun it */
	io_engine_set_fault(x.c->io, slow_write, NULL);
	for (int i = 0; i < 4; i++) {
		wr[i] = (struct writer){ .f = x.f, .id = i };
		pthread_create(&th[i], NULL, writer_main, &wr[i]);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		CU_ASSERT_EQUAL(wr[i].ok, 1);	/* throttled, never failed */
	}
	io_engine_set_fault(x.c->io, NULL, NULL);
	CU_ASSERT(stats(&x).throttled > 0);
	CU_ASSERT(stats(&x).dirty_pages <= 32 + 4);
	for (int i = 0; i < 800; i++) {
		CU_ASSERT_EQUAL(cache_read(x.f, r, PS, (off_t)i * PS, NULL), PS);
		if (r[0] != 'A' + i % 4 || r[PS - 1] != 'A' + i % 4) {
			CU_FAIL("a throttled write was lost");
			break;
		}
	}
	fixture_close(&x);
}

/* The fault hook: backing writes fail while *arg is set. */
static int fail_writes(struct io_req *req, void *arg)
{
	return req->op == IO_WRITE && *(volatile int *)arg ? -EIO : 0;
}

static void test_write_error_kept_dirty(void)
{
	struct fixture x;
	char w[PS], b[PS];
	int failing = 1;

	fixture_open(&x, "eio", 0, 64 * PS, 16 * PS);
	memset(w, 'z', sizeof(w));
	io_engine_set_fault(x.c->io, fail_writes, &failing);
	CU_ASSERT_EQUAL(cache_write(x.f, w, PS, 0), PS);
	CU_ASSERT_EQUAL(cache_fsync(x.f, false), -EIO);
	CU_ASSERT_EQUAL(stats(&x).dirty_pages, 1);	/* kept for a retry */
	CU_ASSERT_EQUAL(cache_file_check_error(x.f), 0);	/* reported once */
	failing = 0;
	CU_ASSERT_EQUAL(cache_fsync(x.f, false), 0);
	CU_ASSERT_EQUAL(stats(&x).dirty_pages, 0);
	CU_ASSERT_EQUAL(pread(x.fd, b, PS, 0), PS);
	CU_ASSERT_EQUAL(memcmp(w, b, PS), 0);
	io_engine_set_fault(x.c->io, NULL, NULL);
	fixture_close(&x);
}

/* The fault hook: note the furthest end of any backing write in *arg. */
static int note_write_end(struct io_req *req, void *arg)
{
	off_t end = req->off + (off_t)req->len;

	if (req->iovcnt) {
		end = req->off;
		for (unsigned int i = 0; i < req->iovcnt; i++)
			end += (off_t)req->iov[i].iov_len;
	}
	if (req->op == IO_WRITE && end > *(off_t *)arg)
		*(off_t *)arg = end;
	return 0;
}

/*
 * Writeback never puts bytes past EOF into BACKING, not even for a moment
 * (a crash then would leave the file longer): the EOF page's write stops
 * at EOF, alone or at the end of a multi-page run.
 */
static void test_writeback_stops_at_eof(void)
{
	static const size_t sizes[] = { 1000, 3 * PS + 100, 5 * PS - 1 };
	struct fixture x;
	char w[5 * PS], b[5 * PS];

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		off_t furthest = 0;

		fixture_open(&x, "eof", 0, 64 * PS, 16 * PS);
		memset(w, 'a' + (int)i, sizeof(w));
		io_engine_set_fault(x.c->io, note_write_end, &furthest);
		CU_ASSERT_EQUAL(cache_write(x.f, w, sizes[i], 0), (ssize_t)sizes[i]);
		CU_ASSERT_EQUAL(cache_fsync(x.f, false), 0);
		io_engine_set_fault(x.c->io, NULL, NULL);
		CU_ASSERT_EQUAL(furthest, (off_t)sizes[i]);
		CU_ASSERT_EQUAL(lseek(x.fd, 0, SEEK_END), (off_t)sizes[i]);
		CU_ASSERT_EQUAL(pread(x.fd, b, sizeof(b), 0), (ssize_t)sizes[i]);
		CU_ASSERT_EQUAL(memcmp(w, b, sizes[i]), 0);
		fixture_close(&x);
	}
}

static void test_revalidate_after_outside_change(void)
{
	struct fixture x;
	struct stat st;
	char r[8];

	fixture_open(&x, "c2o", 100, 64 * PS, 16 * PS);
	CU_ASSERT_EQUAL(cache_read(x.f, r, 8, 0, NULL), 8);
	CU_ASSERT_FATAL(fstat(x.fd, &st) == 0);
	CU_ASSERT_FALSE(cache_file_revalidate(x.f, -1, &st));	/* nothing changed */
	CU_ASSERT_EQUAL(pwrite(x.fd, "OUTSIDE!", 8, 0), 8);
	CU_ASSERT_EQUAL(pwrite(x.fd, "x", 1, 200), 1);	/* size changes too */
	CU_ASSERT_FATAL(fstat(x.fd, &st) == 0);
	CU_ASSERT_TRUE(cache_file_revalidate(x.f, -1, &st));
	CU_ASSERT_EQUAL(cache_file_size(x.f), 201);
	CU_ASSERT_EQUAL(cache_read(x.f, r, 8, 0, NULL), 8);
	CU_ASSERT_EQUAL(memcmp(r, "OUTSIDE!", 8), 0);
	fixture_close(&x);
}

static void test_config_errors(void)
{
	struct cache_config cfg = {
		.page_size = 3000, .host_cache = 1 << 20, .dirty_limit = 1 << 18,
		.dirty_background = 1 << 17, .dirty_expire_ms = 1000,
		.io_engine = "psync",
	};
	struct cache *c;
	char err[256];

	CU_ASSERT_EQUAL(cache_create(&cfg, &c, err, sizeof(err)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "page_size"));
	cfg.page_size = PS;
	cfg.host_cache = 4 * PS;
	CU_ASSERT_EQUAL(cache_create(&cfg, &c, err, sizeof(err)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "host_cache"));
	cfg.host_cache = 1 << 20;
	cfg.io_engine = "nope";
	CU_ASSERT_EQUAL(cache_create(&cfg, &c, err, sizeof(err)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "io_engine"));
}

static int suite_cleanup(void)
{
	char cmd[300];

	if (dir_made) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		if (system(cmd) != 0)
			return 1;
	}
	return 0;
}

int register_cache_file(void)
{
	static const CU_TestInfo tests[] = {
		{ "round trip at odd offsets", test_round_trip },
		{ "a hit does not read BACKING", test_hit_skips_backing },
		{ "concurrent misses share one read", test_coalesced_misses },
		{ "truncate zeroes past EOF", test_truncate_zeroes_tail },
		{ "concurrent truncates finish", test_concurrent_drops_finish },
		{ "a write and a truncate at once are ordered",
		  test_write_and_truncate_ordered },
		{ "sequential readahead", test_readahead },
		{ "readahead after cached pages", test_readahead_context },
		{ "eviction resists a scan", test_scan_resistance },
		{ "tiny cache evicts dirty pages", test_tiny_cache_dirty_eviction },
		{ "writers throttled, not failed", test_dirty_throttle },
		{ "write error kept dirty, reported once", test_write_error_kept_dirty },
		{ "writeback stops at EOF", test_writeback_stops_at_eof },
		{ "close-to-open revalidation", test_revalidate_after_outside_change },
		{ "configuration errors", test_config_errors },
		{ "dirty_background equal to dirty_limit", test_equal_dirty_limits },
		CU_TEST_INFO_NULL,
	};
	CU_pSuite s = CU_add_suite("cache_file", NULL, suite_cleanup);

	if (!s)
		return CU_get_error();
	for (const CU_TestInfo *t = tests; t->pName; t++)
		if (!CU_add_test(s, t->pName, t->pTestFunc))
			return CU_get_error();
	return 0;
}
