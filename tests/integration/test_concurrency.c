/* SPDX-License-Identifier: MIT */
/*
 * tests/integration/test_concurrency.c — concurrent I/O through one mount.
 *
 * append_two_threads: two threads, each with its own O_APPEND descriptor,
 * write 500 records of 64 bytes ("T<t> R<seq> " padded with the thread's
 * letter, ending in '\n').  The file must be exactly 2 * 500 * 64 bytes,
 * each 64-byte slot one intact record, each (thread, seq) present once and
 * each thread's records in order; checked through the mount and in
 * BACKING.
 * threads64: 64 threads each write and read back a private 256 KiB file
 * and their own region of two shared files (64 KiB page-aligned regions in
 * one, 50000-byte regions that share pages with the neighbours in the
 * other); afterwards every byte is checked through the mount and in
 * BACKING.  Threads never call CUnit; they record what went wrong and the
 * main thread asserts.
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/integration/harness.h"
#include "tests/integration/rw_tests.h"

#define REC 64
#define N_RECS 500

struct appender {
	int id;
	int err;	/* errno of the first failure */
};

static void format_record(char *rec, int thread, int seq)
{
	int n = snprintf(rec, REC, "T%d R%05d ", thread, seq);

	memset(rec + n, 'a' + thread, REC - 1 - (size_t)n);
	rec[REC - 1] = '\n';
}

static void *append_records(void *arg)
{
	struct appender *a = arg;
	char rec[REC + 1];
	int fd = open(MNT("log"), O_WRONLY | O_APPEND);
	int i;

	if (fd < 0) {
		a->err = errno;
		return NULL;
	}
	for (i = 0; i < N_RECS && !a->err; i++) {
		ssize_t n;

		format_record(rec, a->id, i);
		n = write(fd, rec, REC);
		if (n != REC)
			a->err = n < 0 ? errno : EIO;
	}
	close(fd);
	return NULL;
}

/* "" if @buf holds every record once and in order per thread, else why. */
static const char *check_records(const char *buf, size_t len)
{
	static char why[128];
	int next[2] = { 0, 0 }, t, seq;
	char expect[REC + 1];
	size_t off;

	if (len != 2 * N_RECS * REC) {
		snprintf(why, sizeof(why), "size %zu, expected %d", len,
			 2 * N_RECS * REC);
		return why;
	}
	for (off = 0; off < len; off += REC) {
		if (sscanf(buf + off, "T%d R%d ", &t, &seq) != 2 || t < 0 || t > 1 ||
		    seq != next[t]) {
			snprintf(why, sizeof(why), "bad record at offset %zu", off);
			return why;
		}
		format_record(expect, t, seq);
		if (memcmp(buf + off, expect, REC) != 0) {
			snprintf(why, sizeof(why), "torn record at offset %zu", off);
			return why;
		}
		next[t]++;
	}
	return "";
}

static void expect_records(const char *path)
{
	size_t cap = 2 * N_RECS * REC + 1;
	char *buf = malloc(cap);
	ssize_t n;

	IT_REQUIRE(buf != NULL, "out of memory");
	n = it_get(path, buf, cap);
	if (n < 0)
		IT_TRUE(false, "read %s: %s", path, it_errname((int)-n));
	else
		IT_TRUE(check_records(buf, (size_t)n)[0] == '\0', "%s: %s", path,
			check_records(buf, (size_t)n));
	free(buf);
}

void rw_append_two_threads(void)
{
	struct appender a[2] = { { 0, 0 }, { 1, 0 } };
	pthread_t th[2];
	int i;

	IT_REQUIRE_OK(it_put(MNT("log"), "", 0));
	for (i = 0; i < 2; i++)
		IT_REQUIRE_EQ(pthread_create(&th[i], NULL, append_records, &a[i]), 0);
	for (i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	IT_STR_EQ(it_errname(a[0].err), "0");
	IT_STR_EQ(it_errname(a[1].err), "0");
	expect_records(MNT("log"));
	expect_records(BACK("log"));
}

/* ---- 64 threads ------------------------------------------------------ */

#define N_THREADS 64
#define OWN_LEN (256 * 1024)
#define REGION_A (64 * 1024)
#define REGION_B 50000
#define SEED_A 7
#define SEED_B 8

struct worker {
	int id;
	char what[96];	/* first failure, "" if none */
};

static uint32_t own_seed(int id)
{
	return 100 + (uint32_t)id;
}

static void fail(struct worker *w, const char *step, long long detail)
{
	if (!w->what[0])
		snprintf(w->what, sizeof(w->what), "thread %d: %s (%lld, %s)", w->id,
			 step, detail, it_errname(errno));
}

static void own_file(struct worker *w)
{
	char rel[32];
	int fd;
	off_t bad;

	snprintf(rel, sizeof(rel), "own%02d", w->id);
	fd = open(MNT(rel), O_CREAT | O_RDWR | O_TRUNC, 0644);
	if (fd < 0) {
		fail(w, "open own file", fd);
		return;
	}
	if (it_pwrite_pattern(fd, 0, OWN_LEN, 16384, own_seed(w->id)) < 0)
		fail(w, "write own file", 0);
	bad = it_pread_check(fd, 0, OWN_LEN, 8192, own_seed(w->id));
	if (bad >= 0)
		fail(w, "read back own file at", bad);
	close(fd);
}

static void shared_region(struct worker *w, const char *rel, off_t region,
			  size_t chunk, uint32_t seed)
{
	off_t start = region * w->id, bad;
	int fd = open(MNT(rel), O_RDWR);

	if (fd < 0) {
		fail(w, rel, fd);
		return;
	}
	if (it_pwrite_pattern(fd, start, (size_t)region, chunk, seed) < 0)
		fail(w, "write shared region", (long long)start);
	bad = it_pread_check(fd, start, (size_t)region, 4096, seed);
	if (bad >= 0)
		fail(w, "read back shared region at", bad);
	close(fd);
}

static void *work(void *arg)
{
	struct worker *w = arg;

	own_file(w);
	shared_region(w, "shared_a", REGION_A, 4096, SEED_A);
	shared_region(w, "shared_b", REGION_B, 3000, SEED_B);
	return NULL;
}

static void expect_pattern_both(const char *rel, size_t len, uint32_t seed)
{
	off_t bad = it_file_check(MNT(rel), 0, len, seed);

	IT_TRUE(bad < 0, "mount %s: wrong data at %lld", rel, (long long)bad);
	bad = it_file_check(BACK(rel), 0, len, seed);
	IT_TRUE(bad < 0, "backing %s: wrong data at %lld", rel, (long long)bad);
}

static void expect_size(const char *path, off_t size)
{
	struct stat st;

	if (IT_OK(stat(path, &st)) == 0)
		IT_TRUE(st.st_size == size, "%s: size %lld, expected %lld", path,
			(long long)st.st_size, (long long)size);
}

static void check_all_files(void)
{
	char rel[32];
	int i;

	for (i = 0; i < N_THREADS; i++) {
		snprintf(rel, sizeof(rel), "own%02d", i);
		expect_pattern_both(rel, OWN_LEN, own_seed(i));
	}
	expect_pattern_both("shared_a", (size_t)N_THREADS * REGION_A, SEED_A);
	expect_pattern_both("shared_b", (size_t)N_THREADS * REGION_B, SEED_B);
	expect_size(BACK("shared_a"), (off_t)N_THREADS * REGION_A);
	expect_size(MNT("shared_b"), (off_t)N_THREADS * REGION_B);
}

void rw_threads64(void)
{
	static struct worker w[N_THREADS];
	pthread_t th[N_THREADS];
	int i, started = 0, failures = 0;
	const char *first = "";

	IT_REQUIRE_OK(it_put(MNT("shared_a"), "", 0));
	IT_REQUIRE_OK(it_put(MNT("shared_b"), "", 0));
	memset(w, 0, sizeof(w));
	for (i = 0; i < N_THREADS; i++) {
		w[i].id = i;
		if (pthread_create(&th[i], NULL, work, &w[i]) != 0)
			break;
		started++;
	}
	for (i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	IT_EQ(started, N_THREADS);
	for (i = 0; i < started; i++) {
		if (w[i].what[0] && !failures++)
			first = w[i].what;
	}
	IT_TRUE(failures == 0, "%d threads failed; first: %s", failures, first);
	check_all_files();
}

static const struct it_test tests[] = {
	{ "append_two_threads", rw_append_two_threads, 0, NULL },
	{ "threads64", rw_threads64, 0, NULL },
	{ NULL, NULL, 0, NULL },
};

const struct it_suite it_suite_concurrency = { "concurrency", NULL, 0, tests };
