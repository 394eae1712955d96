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
 * trunc_race (issue 13, item 1): 4 processes each loop TR_LOOPS times
 * {pwrite 64 KiB of their own byte at 0; close; open O_RDWR|O_TRUNC;
 * close} on one file, while one process truncate(2)s it to sizes around
 * its first pages, one runs HMMFS_IOC_MIGRATE both ways and
 * HMMFS_IOC_RESIDENCY on those pages, and one renames it away and back
 * and now and then unlinks and recreates it.  Two droppers of one page
 * used to wait for each other's page reference forever (page_drop).  All
 * must finish: a few seconds normally; if any still runs 5 s before the
 * harness's watchdog (HMMFS_IT_TIMEOUT, default 30 s) the test aborts the
 * FUSE connection (fusectl) and fails.  Then the file may only hold
 * written bytes and zeros and must equal BACKING, and 64 KiB written, cut
 * to 1000 bytes and extended to 70000 must read back as exactly that,
 * through the mount and in BACKING.
 * otrunc_vs_truncate: for OT_ROUNDS rounds of OT_ROUND_MS, two threads
 * truncate(2) one file to random sizes below 16 KiB while a third opens
 * it, O_TRUNC or not, and writes up to 4 KiB at 0; after each round the
 * file is opened and fsynced, and its size through the mount must be
 * BACKING's, and no call may fail.  Under the writeback cache with atomic
 * O_TRUNC opens the kernel set its own size to 0 after the OPEN in a
 * second step, so a truncate in between left the kernel's size wrong in
 * about one round of four; opens took our own truncates for outside
 * changes (ESTALE, or without the cache a retired node id that the
 * truncates kept using).  Also without the cache (_nocache).
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "include/hmmfs_ioctl.h"

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

/* ---- truncating racers ---------------------------------------------- */

#define TR_LOOPS 200
#define TR_WRITERS 4
#define TR_PROCS (TR_WRITERS + 3)
#define TR_LEN (64 * 1024)

/* What one racer did; shared with the forked racers. */
struct tr_racer {
	pid_t pid;
	_Atomic unsigned long loops;
	_Atomic int done;
	int err;		/* errno of an unexpected failure */
	char what[32];		/* the call that failed */
};

struct tr_shared {
	_Atomic int stop;	/* the writers are done */
	struct tr_racer r[TR_PROCS];
};

static void tr_fail(struct tr_racer *r, const char *what)
{
	if (!r->err) {
		r->err = errno ? errno : EIO;
		snprintf(r->what, sizeof(r->what), "%s", what);
	}
}

static void tr_writer(struct tr_racer *r, int id)
{
	static char buf[TR_LEN];
	int fd;

	memset(buf, 'A' + id, sizeof(buf));
	while (r->loops < TR_LOOPS && !r->err) {
		/* O_CREAT: the renamer may have taken the file away just now */
		fd = open(MNT("f"), O_RDWR | O_CREAT, 0644);
		if (fd < 0) {
			tr_fail(r, "open");
			break;
		}
		if (pwrite(fd, buf, TR_LEN, 0) != TR_LEN)
			tr_fail(r, "pwrite");
		close(fd);
		fd = open(MNT("f"), O_RDWR | O_TRUNC | O_CREAT, 0644);
		if (fd < 0) {
			tr_fail(r, "open O_TRUNC");
			break;
		}
		close(fd);
		r->loops++;
	}
}

static void tr_truncator(struct tr_shared *sh, struct tr_racer *r)
{
	static const off_t sizes[] = { 0, 1000, 4096, 65536, 70000, 131072, 8191 };

	while (!sh->stop && !r->err) {
		if (truncate(MNT("f"), sizes[r->loops % 7]) < 0 && errno != ENOENT)
			tr_fail(r, "truncate");
		r->loops++;
	}
}

static void tr_ioctls(struct tr_shared *sh, struct tr_racer *r)
{
	static struct hmmfs_ioc_residency res;
	int fd = -1;

	while (!sh->stop && !r->err) {
		if (fd < 0 || r->loops % 16 == 0) {
			if (fd >= 0)
				close(fd);
			fd = open(MNT("f"), O_RDONLY);
			if (fd < 0) {	/* renamed away or unlinked just now */
				r->loops++;
				continue;
			}
		}
		/* refusals are fine: past EOF, the device tier full */
		it_migrate(fd, r->loops & 1 ? HMMFS_TO_HOST : HMMFS_TO_DEVICE,
			   (r->loops % 3) * 4096, 128 * 1024, NULL);
		res = (struct hmmfs_ioc_residency){ .version = HMMFS_IOC_VERSION,
						    .length = 256 * 1024 };
		(void)ioctl(fd, HMMFS_IOC_RESIDENCY, &res);
		r->loops++;
	}
	if (fd >= 0)
		close(fd);
}

static void tr_renamer(struct tr_shared *sh, struct tr_racer *r)
{
	int fd;

	while (!sh->stop && !r->err) {
		if (r->loops % 8 == 7) {
			if (unlink(MNT("f")) < 0 && errno != ENOENT)
				tr_fail(r, "unlink");
			fd = open(MNT("f"), O_RDWR | O_CREAT, 0644);
			if (fd < 0)
				tr_fail(r, "recreate");
			else
				close(fd);
		} else if (rename(MNT("f"), MNT("away")) == 0) {
			if (rename(MNT("away"), MNT("f")) < 0)
				tr_fail(r, "rename back");
		} else if (errno != ENOENT) {
			tr_fail(r, "rename");
		}
		r->loops++;
		usleep(200);	/* let the others find the file most of the time */
	}
}

static void tr_racer_main(struct tr_shared *sh, int i)
{
	struct tr_racer *r = &sh->r[i];

	errno = 0;
	if (i < TR_WRITERS)
		tr_writer(r, i);
	else if (i == TR_WRITERS)
		tr_truncator(sh, r);
	else if (i == TR_WRITERS + 1)
		tr_ioctls(sh, r);
	else
		tr_renamer(sh, r);
	r->done = 1;
	_exit(0);
}

static long long tr_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* Abort the mount's FUSE connection: every request blocked on it fails. */
static void tr_abort_connection(void)
{
	char path[128];
	struct stat st;
	FILE *f;

	if (stat(it.mnt, &st) < 0)
		return;
	/* fusectl names a connection by the kernel's dev_t: major << 20 | minor */
	snprintf(path, sizeof(path), "/sys/fs/fuse/connections/%u/abort",
		 (major(st.st_dev) << 20) | minor(st.st_dev));
	f = fopen(path, "w");
	if (f) {
		fputs("1", f);
		fclose(f);
	}
}

/* Reap the racers; false if they were still running at the deadline. */
static bool tr_reap(struct tr_shared *sh, long long deadline_ms)
{
	bool reaped[TR_PROCS] = { false }, hung = false;
	int left = TR_PROCS, status, i;

	while (left > 0) {
		/* not waitpid(-1): the daemon is our child too */
		for (i = 0; i < TR_PROCS; i++)
			if (!reaped[i] && waitpid(sh->r[i].pid, &status, WNOHANG) > 0) {
				reaped[i] = true;
				left--;
			}
		if (!sh->stop) {
			for (i = 0; i < TR_WRITERS && sh->r[i].done; i++)
				;
			sh->stop = i == TR_WRITERS;
		}
		if (!hung && tr_now_ms() >= deadline_ms) {
			hung = true;
			sh->stop = 1;
			tr_abort_connection();	/* the racers' calls fail now */
			for (i = 0; i < TR_PROCS; i++)
				if (!sh->r[i].done)
					kill(sh->r[i].pid, SIGKILL);
		}
		usleep(10000);
	}
	return !hung;
}

/* @path holds only the writers' bytes and zeros; its bytes in @buf. */
static ssize_t tr_check_bytes(const char *path, char *buf, size_t cap)
{
	ssize_t n = it_get(path, buf, cap);

	IT_TRUE(n >= 0, "read %s: %s", path, it_errname((int)-n));
	for (ssize_t o = 0; o < n; o++)
		if (buf[o] && (buf[o] < 'A' || buf[o] >= 'A' + TR_WRITERS)) {
			IT_TRUE(false, "%s: byte %zd is 0x%02x, which no writer wrote",
				path, o, buf[o] & 0xff);
			break;
		}
	return n;
}

static void rw_trunc_race(void)
{
	static const char *const role[] = { "writer 0", "writer 1", "writer 2",
					    "writer 3", "truncator", "ioctls",
					    "renamer" };
	const char *env = getenv("HMMFS_IT_TIMEOUT");
	long long budget_s = (env && atoi(env) > 0 ? atoi(env) : 30) - 5;
	size_t cap = 256 * 1024;
	char *mbuf = malloc(cap), *bbuf = malloc(cap), want[70000];
	struct tr_shared *sh;
	long long start;
	ssize_t mn, bn;
	int i, fd;
	bool ok;

	IT_REQUIRE(mbuf && bbuf, "out of memory");
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	IT_REQUIRE(sh != MAP_FAILED, "mmap: %s", it_errname(errno));
	IT_REQUIRE_OK(it_put(MNT("f"), "", 0));
	start = tr_now_ms();
	for (i = 0; i < TR_PROCS; i++) {
		pid_t pid = fork();

		IT_REQUIRE(pid >= 0, "fork: %s", it_errname(errno));
		if (pid == 0)
			tr_racer_main(sh, i);
		sh->r[i].pid = pid;
	}
	ok = tr_reap(sh, start + (budget_s < 5 ? 5 : budget_s) * 1000);
	printf("\n  trunc_race: %s in %lld ms; loops:", ok ? "done" : "HUNG",
	       tr_now_ms() - start);
	for (i = 0; i < TR_PROCS; i++)
		printf(" %s %lu", role[i], sh->r[i].loops);
	printf("\n");
	IT_REQUIRE(ok, "the racers were still running after %lld s (livelock); "
		   "the FUSE connection was aborted", budget_s);
	for (i = 0; i < TR_PROCS; i++) {
		IT_TRUE(sh->r[i].done && !sh->r[i].err, "%s: %s: %s", role[i],
			sh->r[i].done ? sh->r[i].what : "killed",
			it_errname(sh->r[i].err));
		if (i < TR_WRITERS)
			IT_EQ(sh->r[i].loops, TR_LOOPS);
	}
	/* the race left written bytes and zeros, the same in BACKING */
	fd = open(MNT("f"), O_RDWR);
	IT_OK(fd >= 0 ? fsync(fd) : -1);
	if (fd >= 0)
		close(fd);
	mn = tr_check_bytes(MNT("f"), mbuf, cap);
	bn = tr_check_bytes(BACK("f"), bbuf, cap);
	IT_TRUE(mn == bn && (mn < 0 || memcmp(mbuf, bbuf, (size_t)mn) == 0),
		"after the race the mount has %zd bytes, BACKING %zd, or they differ",
		mn, bn);
	/* and the file still truncates cleanly: nothing stale shows through */
	memset(mbuf, 'A', TR_LEN);
	fd = open(MNT("f"), O_RDWR);
	IT_REQUIRE_OK(fd);
	IT_EQ(pwrite(fd, mbuf, TR_LEN, 0), TR_LEN);
	IT_OK(ftruncate(fd, 1000));
	IT_OK(ftruncate(fd, sizeof(want)));
	IT_OK(fsync(fd));
	close(fd);
	memset(want, 0, sizeof(want));
	memset(want, 'A', 1000);
	mn = it_get(MNT("f"), mbuf, cap);
	bn = it_get(BACK("f"), bbuf, cap);
	IT_TRUE(mn == sizeof(want) && !memcmp(mbuf, want, sizeof(want)),
		"mount: %zd bytes after write, truncate to 1000 and to 70000, "
		"or wrong bytes", mn);
	IT_TRUE(bn == sizeof(want) && !memcmp(bbuf, want, sizeof(want)),
		"BACKING: %zd bytes after write, truncate to 1000 and to 70000, "
		"or wrong bytes", bn);
	munmap(sh, sizeof(*sh));
	free(mbuf);
	free(bbuf);
}

/* ---- O_TRUNC opens against truncate(2) ------------------------------- */

#define OT_ROUNDS	30
#define OT_ROUND_MS	150

struct ot_racer {
	_Atomic int *stop;
	unsigned int seed;
	bool opener;
	int err;	/* errno of the first failure */
};

static void *ot_race(void *arg)
{
	struct ot_racer *r = arg;
	const char *path = MNT("ot");
	char buf[4096];

	memset(buf, 'o', sizeof(buf));
	while (!*r->stop && !r->err) {
		if (r->opener) {
			int fd = open(path, O_WRONLY | O_CLOEXEC |
					    (rand_r(&r->seed) & 1 ? O_TRUNC : 0));

			if (fd < 0 || write(fd, buf, rand_r(&r->seed) % sizeof(buf)) < 0)
				r->err = errno;
			if (fd >= 0 && close(fd) < 0)
				r->err = errno;
		} else if (truncate(path, rand_r(&r->seed) % 16384) < 0) {
			r->err = errno;
		}
	}
	return NULL;
}

static void rw_otrunc_vs_truncate(void)
{
	struct stat m, b;
	int bad = 0;

	IT_REQUIRE_OK(it_put(MNT("ot"), "", 0));
	for (int round = 0; round < OT_ROUNDS; round++) {
		_Atomic int stop = 0;
		struct ot_racer r[3];
		pthread_t th[3];
		int fd;

		for (int i = 0; i < 3; i++) {
			r[i] = (struct ot_racer){ &stop, (unsigned int)(round * 3 + i),
						  i == 2, 0 };
			IT_REQUIRE_EQ(pthread_create(&th[i], NULL, ot_race, &r[i]), 0);
		}
		usleep(OT_ROUND_MS * 1000);
		stop = 1;
		for (int i = 0; i < 3; i++) {
			pthread_join(th[i], NULL);
			IT_STR_EQ(it_errname(r[i].err), "0");
		}
		fd = IT_REQUIRE_OK(open(MNT("ot"), O_RDWR | O_CLOEXEC));
		IT_OK(fsync(fd));
		IT_OK(fstat(fd, &m));
		close(fd);
		IT_REQUIRE_OK(stat(BACK("ot"), &b));
		if (m.st_size != b.st_size && bad++ == 0)
			IT_TRUE(false, "round %d: %lld bytes through the mount, %lld in BACKING",
				round, (long long)m.st_size, (long long)b.st_size);
	}
	IT_EQ(bad, 0);
}

static const struct it_test tests[] = {
	{ "append_two_threads", rw_append_two_threads, 0, NULL },
	{ "threads64", rw_threads64, 0, NULL },
	{ "trunc_race", rw_trunc_race, 0, NULL },
	{ "otrunc_vs_truncate", rw_otrunc_vs_truncate, 0, NULL },
	{ "otrunc_vs_truncate_nocache", rw_otrunc_vs_truncate, 0, "host_cache=0" },
	{ NULL, NULL, 0, NULL },
};

const struct it_suite it_suite_concurrency = { "concurrency", NULL, 0, tests };
