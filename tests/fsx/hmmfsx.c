/*
 * hmmfsx - an fsx-style data-integrity checker for hmmfs.
 *
 * Algorithm
 * ---------
 * hmmfsx creates NFILES files in DIR and keeps, for each one, an in-memory
 * model: the bytes the file must contain (zero beyond the model size) and,
 * per byte, the number of the operation that last set it.  It then runs
 * random operations, each applied both to the real file and to the model:
 *
 *   read          pread, compared with the model (reads past EOF included)
 *   write         pwrite of random bytes, anywhere up to MAXLEN (extends)
 *   mapread       mmap(MAP_SHARED) read within the size; the bytes after EOF
 *                 in the last page must read as zero
 *   mapwrite      mmap(MAP_SHARED) write within the size, then msync
 *   truncate      ftruncate to a smaller or larger size
 *   falloc, falloc_keep, punch, zero, collapse, insert
 *                 fallocate with mode 0, KEEP_SIZE, PUNCH_HOLE|KEEP_SIZE,
 *                 ZERO_RANGE (with or without KEEP_SIZE), COLLAPSE_RANGE and
 *                 INSERT_RANGE (the last two block-aligned)
 *   fsync, fdatasync, reopen (close and open again, sometimes with O_TRUNC)
 *   dropcache     posix_fadvise(DONTNEED): the kernel drops its cached pages,
 *                 so that later reads reach hmmfs
 *   dread, dwrite O_DIRECT pread/pwrite, block-aligned, on a second fd
 *   rename        rename the file away and back, its descriptors open
 *
 * Offsets and lengths are biased towards page boundaries, the current EOF,
 * tiny and page-multiple lengths, so that partial pages and file extension
 * are exercised often.  A mode the file system refuses with EOPNOTSUPP
 * (fallocate modes), ENODEV (shared mmap) or EINVAL (opening with O_DIRECT)
 * is disabled for the rest of the run, with a note printed once.
 *
 * After every operation fstat must report the model size; every read is
 * compared; every VERIFY ops (and at the end, after fsync) every file is read
 * in full and compared.  With -b BACKINGDIR the files are finally compared
 * with BACKINGDIR/name too, the file the mount mirrors; with -B also after
 * every fsync and fdatasync.
 *
 * Every operation is recorded in a ring of the last RING_SIZE operations.
 * On a mismatch hmmfsx prints the seed, the file, the first differing offset,
 * a hex dump of expected and actual bytes around it, which operation last set
 * the expected byte, whether re-reading gives the same result, and the ring;
 * it then exits 1.  All choices come from a xoshiro256** generator seeded
 * with -s, so a seed reproduces the same operation sequence (-v logs every
 * operation as it completes).
 *
 * With -j THREADS, independent checkers run in threads, each on its own
 * subset of the files (file i belongs to thread i % THREADS) with its own
 * generator stream; -n is split between them.
 *
 * With -K (dedupe stress), written data is one of four repeated byte values
 * (zero among them), so pages of different files are often identical, and
 * hmmfs's dedupe scanner is set to full speed with zero pages on: merges
 * and copy-on-write breaks happen under every operation.
 *
 * With -M, a migrator thread moves random ranges of random files between
 * hmmfs's host memory and its device tier (the HMMFS_IOC_MIGRATE ioctl)
 * for as long as the checkers run, so every operation also meets pages
 * that are on the device or on their way there or back.
 *
 * With -R N as well, on a mount with N devices (-o devices=N), half of
 * its calls place pages instead: on device K, as replicas on a random set
 * of devices, or hash a range on device K.  At the end, with no writer
 * left, every device's XXH64 of every file must equal the model's: a
 * device reads the replicas it holds, so a write that left one stale
 * shows there.
 *
 * With -D MS, a thread writes "2" to /proc/sys/vm/drop_caches every MS ms
 * for as long as the checkers run (tests/common/dropcaches.c): the kernel
 * forgets every inode no descriptor holds (files between a reopen's close
 * and open, renamed-away names, the directory's dentries), so hmmfs sees
 * FORGET and LOOKUP of the same files all the time and must keep or drop
 * their cached pages correctly.  A checker holds its files open, which
 * keeps their inodes, so one reopen in REOPEN_DROP_ONE_IN also waits,
 * between its close and its open, for a drop that started after the
 * close (dropcaches_now()): that file's next open is a LOOKUP after a
 * FORGET, unless something else holds the inode (with -M the migrator
 * keeps every file open, so there it seldom is).  Not root: said once,
 * the run goes on without drops.
 *
 * -X is for testing hmmfsx itself: it flips one model byte just before a
 * full verification, which must then fail.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <sys/ioctl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "include/hmmfs_ioctl.h"
#include "tests/common/dropcaches.h"

#define RING_SIZE		64
#define BLOCK			4096u	/* O_DIRECT and collapse/insert unit */
#define MIN_BUF			(64u * 1024)
#define DUMP_BEFORE		32
#define DUMP_AFTER		48
#define PROGRESS_EVERY_S	60.0
#define MAX_FILES		1024
#define MAX_THREADS		64
#define REOPEN_DROP_ONE_IN	8	/* with -D: reopens that drop in between */

enum op_kind {
	OP_READ, OP_WRITE, OP_MAPREAD, OP_MAPWRITE, OP_TRUNCATE,
	OP_FALLOC, OP_FALLOC_KEEP, OP_PUNCH, OP_ZERO, OP_COLLAPSE, OP_INSERT,
	OP_FSYNC, OP_FDATASYNC, OP_REOPEN, OP_DROPCACHE, OP_DREAD, OP_DWRITE,
	OP_RENAME, OP_KINDS
};

struct op_desc {
	const char *name;	/* short name, used in logs and the summary */
	const char *feature;	/* what gets disabled when refused */
	unsigned weight;	/* relative frequency */
	int falloc_mode;
};

static const struct op_desc op_table[OP_KINDS] = {
	[OP_READ]	= { "read", "pread", 16, 0 },
	[OP_WRITE]	= { "write", "pwrite", 20, 0 },
	[OP_MAPREAD]	= { "mapread", "mmap(MAP_SHARED)", 6, 0 },
	[OP_MAPWRITE]	= { "mapwrite", "mmap(MAP_SHARED)", 6, 0 },
	[OP_TRUNCATE]	= { "truncate", "ftruncate", 6, 0 },
	[OP_FALLOC]	= { "falloc", "fallocate(mode 0)", 3, 0 },
	[OP_FALLOC_KEEP] = { "falloc_keep", "fallocate(KEEP_SIZE)", 2,
			     FALLOC_FL_KEEP_SIZE },
	[OP_PUNCH]	= { "punch", "fallocate(PUNCH_HOLE|KEEP_SIZE)", 4,
			    FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE },
	[OP_ZERO]	= { "zero", "fallocate(ZERO_RANGE)", 4,
			    FALLOC_FL_ZERO_RANGE },
	[OP_COLLAPSE]	= { "collapse", "fallocate(COLLAPSE_RANGE)", 3,
			    FALLOC_FL_COLLAPSE_RANGE },
	[OP_INSERT]	= { "insert", "fallocate(INSERT_RANGE)", 3,
			    FALLOC_FL_INSERT_RANGE },
	[OP_FSYNC]	= { "fsync", "fsync", 2, 0 },
	[OP_FDATASYNC]	= { "fdatasync", "fdatasync", 2, 0 },
	[OP_REOPEN]	= { "reopen", "reopen", 3, 0 },
	[OP_DROPCACHE]	= { "dropcache", "posix_fadvise(DONTNEED)", 2, 0 },
	[OP_DREAD]	= { "dread", "O_DIRECT", 3, 0 },
	[OP_DWRITE]	= { "dwrite", "O_DIRECT", 3, 0 },
	[OP_RENAME]	= { "rename", "rename", 2, 0 },
};

enum step { STEP_OK, STEP_SKIP, STEP_FAIL };

/* op_record.mode of a reopen */
enum { REOPEN_TRUNC = 1, REOPEN_DROPPED = 2 };

struct config {
	uint64_t seed;
	uint64_t max_ops;
	bool ops_bounded;	/* false with -t and no -n */
	double seconds;		/* 0: no time bound */
	unsigned nfiles;
	unsigned threads;
	uint64_t maxlen;	/* no file grows beyond this */
	uint64_t maxoplen;	/* longest single read/write */
	unsigned verify_interval;
	const char *dir;
	const char *backing;
	bool backing_on_sync;	/* -B: compare BACKINGDIR after each fsync */
	bool quiet, verbose, keep, inject;
	bool migrate;		/* -M: a thread migrating random ranges */
	unsigned devices;	/* -R N: it also replicates over N devices */
	bool dedupe;		/* -K: data that dedupes, scanner at full speed */
	unsigned drop_ms;	/* -D: drop the kernel's inodes this often; 0 off */
	bool excluded[OP_KINDS];	/* -x: never chosen */
};

struct op_record {
	uint64_t num;
	enum op_kind kind;
	unsigned file;
	uint64_t off, len;
	uint64_t size_before, size_after;
	int mode;		/* fallocate mode; REOPEN_* flags for reopen */
};

struct test_file {
	unsigned index;
	char *name;		/* relative to DIR and BACKINGDIR */
	char *path;		/* DIR/name */
	int fd, direct_fd;
	uint64_t size;		/* model size */
	unsigned char *data;	/* model bytes, maxlen of them, 0 past size */
	uint32_t *writer;	/* op that last set each byte, 0 = none */
};

struct rng {
	uint64_t s[4];
};

struct checker {
	unsigned index;
	struct rng rng;
	struct test_file *files;
	unsigned nfiles;
	uint64_t max_ops;
	uint64_t opnum;		/* operations done so far */
	struct op_record ring[RING_SIZE];
	uint64_t counts[OP_KINDS];
	uint64_t verifies;
	bool disabled[OP_KINDS];
	bool injected;
	unsigned char *buf, *reread, *tail;	/* bufsize, bufsize, page */
	unsigned char *dbuf;			/* BLOCK aligned, dbufsize */
	double next_progress;
	enum step status;
};

static struct config cfg = {
	.nfiles = 4, .threads = 1, .maxlen = 256 * 1024,
	.maxoplen = 64 * 1024, .verify_interval = 64,
};
static uint64_t page_size;
static uint64_t bufsize, dbufsize;
static double start_time, deadline;
static atomic_bool any_failed;
/* -D: the drop_caches thread; dropcaches_now() from op_reopen */
static struct dropcaches dropper;
static atomic_uint_fast64_t total_ops;
static atomic_bool noted[OP_KINDS];
static pthread_mutex_t report_lock = PTHREAD_MUTEX_INITIALIZER;
static __thread sigjmp_buf *sigbus_jump;

/*
 * ThreadSanitizer cannot tell that a mapping one thread unmapped and one
 * another thread later got at the same address are unrelated, and reports a
 * race on it.  Built with TSan, threads hold this lock from mmap to munmap.
 */
#if defined(__SANITIZE_THREAD__)
#define HMMFSX_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define HMMFSX_TSAN 1
#endif
#endif
#ifdef HMMFSX_TSAN
static pthread_mutex_t tsan_map_lock = PTHREAD_MUTEX_INITIALIZER;
#endif

/* ---------------------------------------------------------------- utils */

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

static uint64_t max_u64(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

static double now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n, size);

	if (!p) {
		fprintf(stderr, "hmmfsx: out of memory\n");
		exit(2);
	}
	return p;
}

static char *join_path(const char *dir, const char *name)
{
	char *path;

	if (asprintf(&path, "%s/%s", dir, name) < 0) {
		fprintf(stderr, "hmmfsx: out of memory\n");
		exit(2);
	}
	return path;
}

static void note(const char *fmt, ...)
{
	va_list ap;

	if (cfg.quiet)
		return;
	va_start(ap, fmt);
	flockfile(stderr);
	fputs("hmmfsx: note: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	funlockfile(stderr);
	va_end(ap);
}

/* ------------------------------------------------------------------ rng */

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static void rng_seed(struct rng *r, uint64_t seed, unsigned stream)
{
	uint64_t x = seed ^ (0xd1b54a32d192ed03ULL * (stream + 1));

	for (int i = 0; i < 4; i++)
		r->s[i] = splitmix64(&x);
}

static uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static uint64_t rng_next(struct rng *r)
{
	uint64_t *s = r->s;
	uint64_t result = rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return result;
}

/* Uniform in [0, n); 0 when n is 0. */
static uint64_t rng_below(struct checker *c, uint64_t n)
{
	return n ? rng_next(&c->rng) % n : 0;
}

static void fill_random(struct checker *c, unsigned char *p, size_t len)
{
	if (cfg.dedupe) {	/* -K: one of four byte values, so files share pages */
		memset(p, (int)(rng_below(c, 4) * 0x55), len);
		return;
	}
	while (len) {
		uint64_t v = rng_next(&c->rng);
		size_t n = len < 8 ? len : 8;

		memcpy(p, &v, n);
		p += n;
		len -= n;
	}
}

/* base +- spread, not below 0. */
static uint64_t jitter(struct checker *c, uint64_t base, uint64_t spread)
{
	uint64_t d = rng_below(c, 2 * spread + 1);

	return base + d >= spread ? base + d - spread : 0;
}

/* An offset in [0, limit), limit >= 1: uniform, near a page boundary, near
 * EOF, or inside the current data. */
static uint64_t pick_offset(struct checker *c, uint64_t limit, uint64_t size)
{
	uint64_t off;

	switch (rng_below(c, 4)) {
	case 0:
		off = rng_below(c, limit);
		break;
	case 1:
		off = jitter(c, rng_below(c, limit / page_size + 1) * page_size,
			     16);
		break;
	case 2:
		off = jitter(c, size, page_size);
		break;
	default:
		off = rng_below(c, min_u64(size, limit) + 1);
		break;
	}
	return off < limit ? off : limit - 1;
}

/* A length in [1, max], max >= 1: tiny, around page multiples, or any. */
static uint64_t pick_length(struct checker *c, uint64_t max)
{
	uint64_t len;

	switch (rng_below(c, 4)) {
	case 0:
		len = 1 + rng_below(c, min_u64(max, 64));
		break;
	case 1:
		len = jitter(c, (1 + rng_below(c, max / page_size + 1)) *
				page_size, 8);
		break;
	case 2:
		len = 1 + rng_below(c, min_u64(max, 2 * page_size));
		break;
	default:
		len = 1 + rng_below(c, max);
		break;
	}
	return len < 1 ? 1 : len > max ? max : len;
}

static uint64_t pick_new_size(struct checker *c, uint64_t size)
{
	uint64_t n;

	switch (rng_below(c, 4)) {
	case 0:
		n = rng_below(c, cfg.maxlen + 1);
		break;
	case 1:
		n = jitter(c, size, 2 * page_size);
		break;
	case 2:
		n = rng_below(c, cfg.maxlen / page_size + 1) * page_size;
		break;
	default:
		n = rng_below(c, size + 1);
		break;
	}
	return min_u64(n, cfg.maxlen);
}

/* ---------------------------------------------------------------- model */

static void model_write(struct test_file *f, uint64_t off,
			const unsigned char *src, uint64_t len, uint64_t op)
{
	memcpy(f->data + off, src, len);
	for (uint64_t i = off; i < off + len; i++)
		f->writer[i] = (uint32_t)op;
	f->size = max_u64(f->size, off + len);
}

static void model_zero(struct test_file *f, uint64_t off, uint64_t len,
		       uint64_t op)
{
	len = min_u64(len, cfg.maxlen - off);
	memset(f->data + off, 0, len);
	for (uint64_t i = off; i < off + len; i++)
		f->writer[i] = (uint32_t)op;
}

static void model_truncate(struct test_file *f, uint64_t size, uint64_t op)
{
	if (size < f->size)
		model_zero(f, size, f->size - size, op);
	f->size = size;
}

static void model_collapse(struct test_file *f, uint64_t off, uint64_t len,
			   uint64_t op)
{
	uint64_t tail = f->size - off - len;

	memmove(f->data + off, f->data + off + len, tail);
	memmove(f->writer + off, f->writer + off + len, tail * 4);
	model_zero(f, f->size - len, len, op);
	f->size -= len;
}

static void model_insert(struct test_file *f, uint64_t off, uint64_t len,
			 uint64_t op)
{
	uint64_t tail = f->size - off;

	memmove(f->data + off + len, f->data + off, tail);
	memmove(f->writer + off + len, f->writer + off, tail * 4);
	model_zero(f, off, len, op);
	f->size += len;
}

static void model_fallocate(struct test_file *f, enum op_kind kind, int mode,
			    uint64_t off, uint64_t len, uint64_t op)
{
	switch (kind) {
	case OP_PUNCH:
	case OP_ZERO:
		model_zero(f, off, len, op);
		break;
	case OP_COLLAPSE:
		model_collapse(f, off, len, op);
		return;
	case OP_INSERT:
		model_insert(f, off, len, op);
		return;
	default:
		break;
	}
	if (!(mode & FALLOC_FL_KEEP_SIZE))
		f->size = max_u64(f->size, off + len);
}

/* How many of len bytes at off lie before the model's EOF. */
static uint64_t bytes_in_file(const struct test_file *f, uint64_t off,
			      uint64_t len)
{
	return off >= f->size ? 0 : min_u64(len, f->size - off);
}

/* ------------------------------------------------------------- op ring */

static struct op_record *begin_op(struct checker *c, enum op_kind kind,
				  const struct test_file *f, uint64_t off,
				  uint64_t len)
{
	struct op_record *r = &c->ring[c->opnum % RING_SIZE];

	c->opnum++;
	*r = (struct op_record){
		.num = c->opnum, .kind = kind, .file = f->index,
		.off = off, .len = len,
		.size_before = f->size, .size_after = f->size,
	};
	return r;
}

/* Forget the operation begun last: it turned out not to be supported. */
static void cancel_op(struct checker *c)
{
	c->opnum--;
}

static struct op_record *current_op(struct checker *c)
{
	return &c->ring[(c->opnum - 1) % RING_SIZE];
}

static const struct op_record *find_op(const struct checker *c, uint64_t num)
{
	if (num == 0 || num > c->opnum || c->opnum - num >= RING_SIZE)
		return NULL;
	return &c->ring[(num - 1) % RING_SIZE];
}

static void format_mode(const struct op_record *r, char *out, size_t n)
{
	if (r->kind == OP_REOPEN)
		snprintf(out, n, "%s%s", r->mode & REOPEN_TRUNC ? " O_TRUNC" : "",
			 r->mode & REOPEN_DROPPED ? " dropped" : "");
	else if (r->kind == OP_ZERO && (r->mode & FALLOC_FL_KEEP_SIZE))
		snprintf(out, n, " KEEP_SIZE");
	else
		out[0] = '\0';
}

static void format_op(const struct op_record *r, char *out, size_t n)
{
	char range[96] = "", mode[32], size[64];
	enum op_kind k = r->kind;

	if (k == OP_TRUNCATE)
		snprintf(range, sizeof(range), " to %" PRIu64, r->size_after);
	else if (k != OP_FSYNC && k != OP_FDATASYNC && k != OP_REOPEN &&
		 k != OP_DROPCACHE && k != OP_RENAME)
		snprintf(range, sizeof(range),
			 " off %" PRIu64 " len %" PRIu64
			 " [0x%" PRIx64 "..0x%" PRIx64 ")",
			 r->off, r->len, r->off, r->off + r->len);
	format_mode(r, mode, sizeof(mode));
	if (r->size_before == r->size_after)
		snprintf(size, sizeof(size), "size %" PRIu64, r->size_after);
	else
		snprintf(size, sizeof(size), "size %" PRIu64 " -> %" PRIu64,
			 r->size_before, r->size_after);
	snprintf(out, n, "op %" PRIu64 ": file %u %-11s%s%s  %s", r->num,
		 r->file, op_table[k].name, range, mode, size);
}

static void print_ring(const struct checker *c)
{
	uint64_t count = min_u64(c->opnum, RING_SIZE);
	char line[256];

	fprintf(stderr, "  last %" PRIu64 " ops of thread %u (oldest first):\n",
		count, c->index);
	for (uint64_t num = c->opnum - count + 1; num <= c->opnum; num++) {
		format_op(find_op(c, num), line, sizeof(line));
		fprintf(stderr, "    %s\n", line);
	}
}

static void log_op(struct checker *c)
{
	char line[256];

	format_op(current_op(c), line, sizeof(line));
	if (cfg.threads > 1)
		printf("hmmfsx: t%u %s\n", c->index, line);
	else
		printf("hmmfsx: %s\n", line);
}

/* ------------------------------------------------------------- failures */

static void print_failure_header(const struct checker *c,
				 const struct test_file *f, const char *fmt,
				 va_list ap)
{
	char line[256] = "none yet";

	fputs("hmmfsx: FAILURE: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	if (c->opnum)
		format_op(find_op(c, c->opnum), line, sizeof(line));
	fprintf(stderr, "  seed %" PRIu64 ", thread %u, file %s, model size %"
		PRIu64 "\n  last op: %s\n", cfg.seed, c->index, f->path,
		f->size, line);
}

static void print_header(const struct checker *c, const struct test_file *f,
			 const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	print_failure_header(c, f, fmt, ap);
	va_end(ap);
}

static void print_failure_footer(const struct checker *c,
				 const struct test_file *f)
{
	print_ring(c);
	fprintf(stderr, "hmmfsx: seed %" PRIu64 ": FAILED at op %" PRIu64
		" on %s (rerun with the same options and -s %" PRIu64
		"; -v logs every op)\n", cfg.seed, c->opnum, f->name, cfg.seed);
	fflush(stderr);
}

static enum step fail(struct checker *c, const struct test_file *f,
		      const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&report_lock);
	va_start(ap, fmt);
	print_failure_header(c, f, fmt, ap);
	va_end(ap);
	print_failure_footer(c, f);
	pthread_mutex_unlock(&report_lock);
	atomic_store(&any_failed, true);
	return STEP_FAIL;
}

static enum step fail_errno(struct checker *c, const struct test_file *f,
			    const char *call, int err)
{
	return fail(c, f, "%s failed: %s (errno %d)", call, strerror(err), err);
}

static void dump_row(const char *label, uint64_t row, const unsigned char *p,
		     uint64_t base, uint64_t len)
{
	fprintf(stderr, "    %-8s 0x%08" PRIx64 ":", label, row);
	for (uint64_t a = row; a < row + 16; a++) {
		if (a >= base && a < base + len)
			fprintf(stderr, " %02x", p[a - base]);
		else
			fputs("   ", stderr);
	}
	fputc('\n', stderr);
}

static void dump_markers(uint64_t row, const unsigned char *exp,
			 const unsigned char *act, uint64_t base, uint64_t len)
{
	fprintf(stderr, "    %-8s %10s ", "", "");
	for (uint64_t a = row; a < row + 16; a++) {
		bool bad = a >= base && a < base + len &&
			   exp[a - base] != act[a - base];
		fputs(bad ? " ^^" : "   ", stderr);
	}
	fputc('\n', stderr);
}

/* Hex dump of expected and actual bytes around absolute offset bad. */
static void dump_around(uint64_t bad, const unsigned char *exp,
			const unsigned char *act, uint64_t base, uint64_t len)
{
	uint64_t from = bad >= base + DUMP_BEFORE ? bad - DUMP_BEFORE : base;
	uint64_t to = min_u64(bad + DUMP_AFTER, base + len);

	for (uint64_t row = from & ~15ULL; row < to; row += 16) {
		dump_row("expected", row, exp, base, len);
		dump_row("actual", row, act, base, len);
		dump_markers(row, exp, act, base, len);
	}
}

static void describe_writer(const struct checker *c,
			    const struct test_file *f, uint64_t off)
{
	uint32_t num = f->writer[off];
	const struct op_record *r = find_op(c, num);
	char line[256];

	if (num == 0) {
		fputs("  the expected byte was never written (a hole: zero)\n",
		      stderr);
		return;
	}
	if (!r) {
		fprintf(stderr, "  the expected byte was last set by op %"
			PRIu32 " (older than the ring)\n", num);
		return;
	}
	format_op(r, line, sizeof(line));
	fprintf(stderr, "  the expected byte was last set by %s\n", line);
}

static void describe_reread(struct checker *c, const struct test_file *f,
			    int fd, uint64_t base, const unsigned char *act,
			    uint64_t len)
{
	ssize_t n;

	if (fd < 0)
		return;
	n = pread(fd, c->reread, len, (off_t)base);
	if (n < 0)
		fprintf(stderr, "  re-reading with pread failed: %s\n",
			strerror(errno));
	else if ((uint64_t)n != len)
		fprintf(stderr, "  re-reading with pread returned %zd bytes\n",
			n);
	else if (!memcmp(c->reread, f->data + base, len))
		fputs("  re-reading with pread now returns the expected data\n",
		      stderr);
	else if (!memcmp(c->reread, act, len))
		fputs("  re-reading with pread returns the same bad data\n",
		      stderr);
	else
		fputs("  re-reading with pread returns different bad data\n",
		      stderr);
}

/* Report that act[0..len) read at base differs from the model. */
static enum step fail_mismatch(struct checker *c, const struct test_file *f,
			       const char *how, int fd, uint64_t base,
			       const unsigned char *act, uint64_t len)
{
	const unsigned char *exp = f->data + base;
	uint64_t first = UINT64_MAX, last = 0, count = 0;

	for (uint64_t i = 0; i < len; i++) {
		if (exp[i] == act[i])
			continue;
		first = min_u64(first, i);
		last = i;
		count++;
	}
	pthread_mutex_lock(&report_lock);
	print_header(c, f, "data mismatch found by %s", how);
	fprintf(stderr, "  first bad byte at offset %" PRIu64 " (0x%" PRIx64
		"): expected 0x%02x, got 0x%02x; %" PRIu64 " of %" PRIu64
		" bytes in [0x%" PRIx64 "..0x%" PRIx64 ") differ, last at 0x%"
		PRIx64 "\n", base + first, base + first, exp[first], act[first],
		count, len, base, base + len, base + last);
	describe_writer(c, f, base + first);
	dump_around(base + first, exp, act, base, len);
	describe_reread(c, f, fd, base, act, len);
	print_failure_footer(c, f);
	pthread_mutex_unlock(&report_lock);
	atomic_store(&any_failed, true);
	return STEP_FAIL;
}

static enum step check_data(struct checker *c, const struct test_file *f,
			    const char *how, int fd, uint64_t off,
			    const unsigned char *act, uint64_t len)
{
	if (!memcmp(f->data + off, act, len))
		return STEP_OK;
	return fail_mismatch(c, f, how, fd, off, act, len);
}

/* Disable every op kind sharing kind's feature; note it once per run. */
static void disable_feature(struct checker *c, enum op_kind kind, int err)
{
	const char *feature = op_table[kind].feature;
	int first = -1;

	for (int k = 0; k < OP_KINDS; k++) {
		if (strcmp(op_table[k].feature, feature))
			continue;
		c->disabled[k] = true;
		if (first < 0)
			first = k;
	}
	if (!atomic_exchange(&noted[first], true))
		note("%s not supported here (%s); disabled for this run",
		     feature, strerror(err));
}

/* ------------------------------------------------------- guarded copies */

static void on_sigbus(int sig)
{
	if (sigbus_jump)
		siglongjmp(*sigbus_jump, 1);
	signal(sig, SIG_DFL);
	raise(sig);
}

/* memcpy that returns false instead of dying when a mapping faults. */
static bool copy_guarded(void *dst, const void *src, size_t len)
{
	sigjmp_buf jump;

	if (sigsetjmp(jump, 1)) {
		sigbus_jump = NULL;
		return false;
	}
	sigbus_jump = &jump;
	memcpy(dst, src, len);
	sigbus_jump = NULL;
	return true;
}

/* ---------------------------------------------------------- operations */

static enum step op_read(struct checker *c, struct test_file *f)
{
	uint64_t off = pick_offset(c, cfg.maxlen + 1, f->size);
	uint64_t len = pick_length(c, cfg.maxoplen);
	uint64_t expect = bytes_in_file(f, off, len);
	ssize_t n;

	begin_op(c, OP_READ, f, off, len);
	n = pread(f->fd, c->buf, len, (off_t)off);
	if (n < 0)
		return fail_errno(c, f, "pread", errno);
	if ((uint64_t)n != expect)
		return fail(c, f, "pread returned %zd bytes, expected %" PRIu64,
			    n, expect);
	return check_data(c, f, "pread", f->fd, off, c->buf, expect);
}

static enum step op_write(struct checker *c, struct test_file *f)
{
	uint64_t off = pick_offset(c, cfg.maxlen, f->size);
	uint64_t len = pick_length(c, min_u64(cfg.maxoplen, cfg.maxlen - off));
	ssize_t n;

	begin_op(c, OP_WRITE, f, off, len);
	fill_random(c, c->buf, len);
	n = pwrite(f->fd, c->buf, len, (off_t)off);
	if (n < 0)
		return fail_errno(c, f, "pwrite", errno);
	if ((uint64_t)n != len)
		return fail(c, f, "short pwrite: %zd of %" PRIu64 " bytes", n,
			    len);
	model_write(f, off, c->buf, len, c->opnum);
	return STEP_OK;
}

static void *mmap_locked(size_t len, int prot, int fd, off_t off)
{
	void *p;

#ifdef HMMFSX_TSAN
	pthread_mutex_lock(&tsan_map_lock);
#endif
	p = mmap(NULL, len, prot, MAP_SHARED, fd, off);
#ifdef HMMFSX_TSAN
	if (p == MAP_FAILED)
		pthread_mutex_unlock(&tsan_map_lock);
#endif
	return p;
}

static void munmap_unlock(void *p, size_t len)
{
	munmap(p, len);
#ifdef HMMFSX_TSAN
	pthread_mutex_unlock(&tsan_map_lock);
#endif
}

/* Map the pages holding [off, off+len) of f; off is at off % page_size. */
static enum step map_range(struct checker *c, struct test_file *f, int prot,
			   uint64_t off, uint64_t len, unsigned char **map,
			   uint64_t *map_len)
{
	uint64_t start = off - off % page_size;
	void *p;

	*map_len = off + len - start;
	p = mmap_locked(*map_len, prot, f->fd, (off_t)start);
	if (p != MAP_FAILED) {
		*map = p;
		return STEP_OK;
	}
	if (errno == ENODEV) {
		cancel_op(c);
		disable_feature(c, OP_MAPREAD, errno);
		return STEP_SKIP;
	}
	return fail_errno(c, f, "mmap", errno);
}

/* A range within the file; a quarter of the time it ends at EOF. */
static void pick_mapped_range(struct checker *c, const struct test_file *f,
			      uint64_t *off, uint64_t *len)
{
	*off = pick_offset(c, f->size, f->size);
	if (rng_below(c, 4) == 0)
		*len = f->size - *off;
	else
		*len = pick_length(c, min_u64(cfg.maxoplen, f->size - *off));
	*len = min_u64(*len, cfg.maxoplen);
}

/* Bytes between EOF and the end of its page must read as zero. */
static enum step check_eof_page(struct checker *c, struct test_file *f,
				const unsigned char *eof, bool readable)
{
	uint64_t tail = (page_size - f->size % page_size) % page_size;

	if (!readable)
		return fail(c, f, "SIGBUS reading the mapping past EOF");
	for (uint64_t i = 0; i < tail; i++)
		if (eof[i])
			return fail(c, f, "mmap: byte at offset %" PRIu64
				    ", past EOF %" PRIu64 " in the last page,"
				    " is 0x%02x, not zero", f->size + i,
				    f->size, eof[i]);
	return STEP_OK;
}

static enum step op_mapread(struct checker *c, struct test_file *f)
{
	uint64_t off, len, map_len, tail;
	unsigned char *map;
	bool ok, tail_ok = true;
	enum step s;

	if (f->size == 0)
		return STEP_SKIP;
	pick_mapped_range(c, f, &off, &len);
	begin_op(c, OP_MAPREAD, f, off, len);
	s = map_range(c, f, PROT_READ, off, len, &map, &map_len);
	if (s != STEP_OK)
		return s;
	ok = copy_guarded(c->buf, map + off % page_size, len);
	tail = (page_size - f->size % page_size) % page_size;
	if (off + len == f->size && tail)
		tail_ok = copy_guarded(c->tail, map + map_len, tail);
	munmap_unlock(map, map_len);
	if (!ok)
		return fail(c, f, "SIGBUS reading the mapping");
	s = check_data(c, f, "mmap read", f->fd, off, c->buf, len);
	if (s == STEP_OK && off + len == f->size && tail)
		s = check_eof_page(c, f, c->tail, tail_ok);
	return s;
}

static enum step op_mapwrite(struct checker *c, struct test_file *f)
{
	uint64_t off, len, map_len;
	unsigned char *map;
	enum step s;
	bool ok;

	if (f->size == 0)
		return STEP_SKIP;
	pick_mapped_range(c, f, &off, &len);
	begin_op(c, OP_MAPWRITE, f, off, len);
	s = map_range(c, f, PROT_READ | PROT_WRITE, off, len, &map, &map_len);
	if (s != STEP_OK)
		return s;
	fill_random(c, c->buf, len);
	ok = copy_guarded(map + off % page_size, c->buf, len);
	if (ok && msync(map, map_len, MS_SYNC)) {
		int err = errno;

		munmap_unlock(map, map_len);
		return fail_errno(c, f, "msync", err);
	}
	munmap_unlock(map, map_len);
	if (!ok)
		return fail(c, f, "SIGBUS writing the mapping");
	model_write(f, off, c->buf, len, c->opnum);
	return STEP_OK;
}

static enum step op_truncate(struct checker *c, struct test_file *f)
{
	uint64_t size = pick_new_size(c, f->size);
	struct op_record *r = begin_op(c, OP_TRUNCATE, f, 0, 0);

	r->size_after = size;
	if (ftruncate(f->fd, (off_t)size))
		return fail_errno(c, f, "ftruncate", errno);
	model_truncate(f, size, c->opnum);
	return STEP_OK;
}

/* Block-aligned collapse range: it must end before EOF. */
static bool pick_collapse(struct checker *c, const struct test_file *f,
			  uint64_t *off, uint64_t *len)
{
	uint64_t blocks;

	if (f->size <= BLOCK)
		return false;
	blocks = (f->size - 1) / BLOCK;
	*off = rng_below(c, blocks);
	*len = (1 + rng_below(c, blocks - *off)) * BLOCK;
	*off *= BLOCK;
	return true;
}

/* Block-aligned insert range: it starts before EOF, stays within maxlen. */
static bool pick_insert(struct checker *c, const struct test_file *f,
			uint64_t *off, uint64_t *len)
{
	if (f->size == 0 || f->size + BLOCK > cfg.maxlen)
		return false;
	*off = rng_below(c, (f->size - 1) / BLOCK + 1) * BLOCK;
	*len = (1 + rng_below(c, (cfg.maxlen - f->size) / BLOCK)) * BLOCK;
	return true;
}

static bool pick_falloc_range(struct checker *c, const struct test_file *f,
			      enum op_kind kind, uint64_t *off, uint64_t *len)
{
	if (kind == OP_COLLAPSE)
		return pick_collapse(c, f, off, len);
	if (kind == OP_INSERT)
		return pick_insert(c, f, off, len);
	*off = pick_offset(c, cfg.maxlen, f->size);
	*len = pick_length(c, cfg.maxlen - *off);
	return true;
}

static enum step op_fallocate(struct checker *c, struct test_file *f,
			      enum op_kind kind)
{
	int mode = op_table[kind].falloc_mode;
	struct op_record *r;
	uint64_t off, len;

	if (!pick_falloc_range(c, f, kind, &off, &len))
		return STEP_SKIP;
	if (kind == OP_ZERO && rng_below(c, 2))
		mode |= FALLOC_FL_KEEP_SIZE;
	r = begin_op(c, kind, f, off, len);
	r->mode = mode;
	if (fallocate(f->fd, mode, (off_t)off, (off_t)len)) {
		int err = errno;

		if (err != EOPNOTSUPP && err != ENOSYS)
			return fail_errno(c, f, op_table[kind].feature, err);
		cancel_op(c);
		disable_feature(c, kind, err);
		return STEP_SKIP;
	}
	model_fallocate(f, kind, mode, off, len, c->opnum);
	return STEP_OK;
}

static enum step compare_backing(struct checker *c, struct test_file *f);

static enum step op_sync(struct checker *c, struct test_file *f,
			 enum op_kind kind)
{
	begin_op(c, kind, f, 0, 0);
	if ((kind == OP_FSYNC ? fsync : fdatasync)(f->fd))
		return fail_errno(c, f, op_table[kind].name, errno);
	return cfg.backing_on_sync ? compare_backing(c, f) : STEP_OK;
}

/* Drop the kernel's cached pages of f, so the next reads reach hmmfs. */
static enum step op_dropcache(struct checker *c, struct test_file *f)
{
	int err;

	begin_op(c, OP_DROPCACHE, f, 0, 0);
	err = posix_fadvise(f->fd, 0, 0, POSIX_FADV_DONTNEED);
	if (err)
		return fail_errno(c, f, "posix_fadvise(DONTNEED)", err);
	return STEP_OK;
}

static void close_fds(struct test_file *f)
{
	if (f->fd >= 0)
		close(f->fd);
	if (f->direct_fd >= 0)
		close(f->direct_fd);
	f->fd = f->direct_fd = -1;
}

static enum step op_reopen(struct checker *c, struct test_file *f)
{
	bool trunc = rng_below(c, 8) == 0;
	bool drop = dropper.running && rng_below(c, REOPEN_DROP_ONE_IN) == 0;
	struct op_record *r = begin_op(c, OP_REOPEN, f, 0, 0);

	r->mode = (trunc ? REOPEN_TRUNC : 0) | (drop ? REOPEN_DROPPED : 0);
	close_fds(f);
	/* the file closed, the kernel may forget it: make sure it does */
	if (drop)
		dropcaches_now(&dropper);
	f->fd = open(f->path, O_RDWR | (trunc ? O_TRUNC : 0));
	if (f->fd < 0)
		return fail_errno(c, f, "open", errno);
	if (trunc)
		model_truncate(f, 0, c->opnum);
	return STEP_OK;
}

/*
 * Rename the file away and back with its descriptors open: its data and
 * cached pages go with it (checked through the descriptor while it is
 * away, and by every later op).
 */
static enum step op_rename(struct checker *c, struct test_file *f)
{
	char away[PATH_MAX];
	struct stat st;

	begin_op(c, OP_RENAME, f, 0, 0);
	snprintf(away, sizeof(away), "%s.renamed", f->path);
	if (rename(f->path, away) < 0)
		return fail_errno(c, f, "rename", errno);
	if (fstat(f->fd, &st) < 0 || (uint64_t)st.st_size != f->size) {
		rename(away, f->path);
		return fail(c, f, "after rename: fstat size %lld, model size %" PRIu64,
			    (long long)st.st_size, f->size);
	}
	if (rename(away, f->path) < 0)
		return fail_errno(c, f, "rename back", errno);
	return STEP_OK;
}

static enum step open_direct(struct checker *c, struct test_file *f)
{
	if (f->direct_fd >= 0)
		return STEP_OK;
	f->direct_fd = open(f->path, O_RDWR | O_DIRECT);
	if (f->direct_fd >= 0)
		return STEP_OK;
	if (errno != EINVAL)
		return fail_errno(c, f, "open(O_DIRECT)", errno);
	cancel_op(c);
	disable_feature(c, OP_DREAD, errno);
	return STEP_SKIP;
}

static uint64_t pick_direct_blocks(struct checker *c, uint64_t max_blocks)
{
	max_blocks = min_u64(max_blocks, dbufsize / BLOCK);
	return 1 + rng_below(c, max_blocks);
}

static enum step op_dread(struct checker *c, struct test_file *f)
{
	uint64_t off = rng_below(c, f->size / BLOCK + 1) * BLOCK;
	uint64_t len = pick_direct_blocks(c, cfg.maxoplen / BLOCK) * BLOCK;
	uint64_t expect = bytes_in_file(f, off, len);
	enum step s;
	ssize_t n;

	begin_op(c, OP_DREAD, f, off, len);
	s = open_direct(c, f);
	if (s != STEP_OK)
		return s;
	n = pread(f->direct_fd, c->dbuf, len, (off_t)off);
	if (n < 0)
		return fail_errno(c, f, "pread(O_DIRECT)", errno);
	if ((uint64_t)n != expect)
		return fail(c, f, "pread(O_DIRECT) returned %zd bytes, "
			    "expected %" PRIu64, n, expect);
	/* the re-read on a mismatch goes through the page cache fd */
	return check_data(c, f, "pread(O_DIRECT)", f->fd, off, c->dbuf, expect);
}

static enum step op_dwrite(struct checker *c, struct test_file *f)
{
	uint64_t file_blocks = cfg.maxlen / BLOCK;
	uint64_t eof_block = min_u64(f->size / BLOCK, file_blocks - 1);
	uint64_t off, len;
	enum step s;
	ssize_t n;

	if (rng_below(c, 2))
		off = rng_below(c, eof_block + 1);
	else
		off = rng_below(c, file_blocks);
	len = pick_direct_blocks(c, min_u64(cfg.maxoplen / BLOCK,
					    file_blocks - off)) * BLOCK;
	off *= BLOCK;
	begin_op(c, OP_DWRITE, f, off, len);
	s = open_direct(c, f);
	if (s != STEP_OK)
		return s;
	fill_random(c, c->dbuf, len);
	n = pwrite(f->direct_fd, c->dbuf, len, (off_t)off);
	if (n < 0)
		return fail_errno(c, f, "pwrite(O_DIRECT)", errno);
	if ((uint64_t)n != len)
		return fail(c, f, "short pwrite(O_DIRECT): %zd of %" PRIu64
			    " bytes", n, len);
	model_write(f, off, c->dbuf, len, c->opnum);
	return STEP_OK;
}

static enum step run_op(struct checker *c, enum op_kind kind,
			struct test_file *f)
{
	switch (kind) {
	case OP_READ:		return op_read(c, f);
	case OP_WRITE:		return op_write(c, f);
	case OP_MAPREAD:	return op_mapread(c, f);
	case OP_MAPWRITE:	return op_mapwrite(c, f);
	case OP_TRUNCATE:	return op_truncate(c, f);
	case OP_FSYNC:
	case OP_FDATASYNC:	return op_sync(c, f, kind);
	case OP_REOPEN:		return op_reopen(c, f);
	case OP_RENAME:		return op_rename(c, f);
	case OP_DROPCACHE:	return op_dropcache(c, f);
	case OP_DREAD:		return op_dread(c, f);
	case OP_DWRITE:		return op_dwrite(c, f);
	default:		return op_fallocate(c, f, kind);
	}
}

/* ---------------------------------------------------------- verification */

static enum step check_size(struct checker *c, struct test_file *f, int fd,
			    const char *how)
{
	struct stat st;

	if (fstat(fd, &st))
		return fail_errno(c, f, "fstat", errno);
	if ((uint64_t)st.st_size != f->size)
		return fail(c, f, "%s: fstat size is %lld, model size %" PRIu64,
			    how, (long long)st.st_size, f->size);
	return STEP_OK;
}

/* Read the whole file through fd and compare size and every byte. */
static enum step compare_file(struct checker *c, struct test_file *f, int fd,
			      const char *how)
{
	enum step s = check_size(c, f, fd, how);
	ssize_t n;

	for (uint64_t off = 0; s == STEP_OK && off < f->size; off += bufsize) {
		uint64_t want = min_u64(bufsize, f->size - off);

		n = pread(fd, c->buf, want, (off_t)off);
		if (n < 0)
			return fail_errno(c, f, how, errno);
		if ((uint64_t)n != want)
			return fail(c, f, "%s: pread at %" PRIu64
				    " returned %zd of %" PRIu64 " bytes", how,
				    off, n, want);
		s = check_data(c, f, how, fd, off, c->buf, want);
	}
	if (s != STEP_OK)
		return s;
	n = pread(fd, c->buf, 1, (off_t)f->size);
	if (n != 0)
		return fail(c, f, "%s: pread at EOF %" PRIu64 " returned %zd",
			    how, f->size, n);
	return STEP_OK;
}

/* -X: flip one model byte so that the next verification must fail. */
static void maybe_inject(struct checker *c)
{
	if (!cfg.inject || c->injected || c->index != 0)
		return;
	for (unsigned i = 0; i < c->nfiles; i++) {
		struct test_file *f = &c->files[i];

		if (f->size == 0)
			continue;
		f->data[f->size / 2] ^= 0xff;
		c->injected = true;
		fprintf(stderr, "hmmfsx: -X: flipped the model byte at offset %"
			PRIu64 " of %s after op %" PRIu64 "\n", f->size / 2,
			f->name, c->opnum);
		return;
	}
}

static enum step verify_all(struct checker *c)
{
	maybe_inject(c);
	for (unsigned i = 0; i < c->nfiles; i++) {
		struct test_file *f = &c->files[i];

		if (compare_file(c, f, f->fd, "full-file verify") != STEP_OK)
			return STEP_FAIL;
	}
	c->verifies++;
	return STEP_OK;
}

static enum step compare_backing(struct checker *c, struct test_file *f)
{
	char *path = join_path(cfg.backing, f->name);
	int fd = open(path, O_RDONLY);
	enum step s;

	if (fd < 0) {
		s = fail(c, f, "cannot open backing file %s: %s", path,
			 strerror(errno));
	} else {
		s = compare_file(c, f, fd, "backing-dir compare");
		close(fd);
	}
	free(path);
	return s;
}

/* --------------------------------------------------------------- driver */

static enum op_kind pick_kind(struct checker *c)
{
	unsigned total = 0, k;
	uint64_t r;

	for (k = 0; k < OP_KINDS; k++)
		total += c->disabled[k] ? 0 : op_table[k].weight;
	r = rng_below(c, total);
	for (k = 0; k < OP_KINDS; k++) {
		unsigned w = c->disabled[k] ? 0 : op_table[k].weight;

		if (r < w)
			break;
		r -= w;
	}
	return (enum op_kind)k;
}

static enum step one_op(struct checker *c)
{
	for (;;) {
		enum op_kind kind = pick_kind(c);
		struct test_file *f = &c->files[rng_below(c, c->nfiles)];
		enum step s = run_op(c, kind, f);

		if (s == STEP_SKIP)
			continue;
		if (s == STEP_FAIL)
			return s;
		c->counts[kind]++;
		current_op(c)->size_after = f->size;
		if (cfg.verbose)
			log_op(c);
		return check_size(c, f, f->fd, "after the op");
	}
}

static bool should_stop(const struct checker *c)
{
	if (atomic_load(&any_failed))
		return true;
	if (cfg.ops_bounded && c->opnum >= c->max_ops)
		return true;
	return cfg.seconds > 0 && now_seconds() >= deadline;
}

static void maybe_progress(struct checker *c)
{
	double now;

	if (c->index != 0 || cfg.quiet || cfg.seconds <= 0 ||
	    (c->opnum & 255))
		return;
	now = now_seconds();
	if (now < c->next_progress)
		return;
	c->next_progress = now + PROGRESS_EVERY_S;
	printf("hmmfsx: seed %" PRIu64 ": %" PRIuFAST64
	       " ops, %.0f s of %.0f\n", cfg.seed, atomic_load(&total_ops),
	       now - start_time, cfg.seconds);
	fflush(stdout);
}

static enum step run_ops(struct checker *c)
{
	c->next_progress = start_time + PROGRESS_EVERY_S;
	while (!should_stop(c)) {
		if (one_op(c) != STEP_OK)
			return STEP_FAIL;
		atomic_fetch_add_explicit(&total_ops, 1, memory_order_relaxed);
		if (c->opnum % cfg.verify_interval == 0 &&
		    verify_all(c) != STEP_OK)
			return STEP_FAIL;
		maybe_progress(c);
	}
	return STEP_OK;
}

/* fsync everything, verify through the mount, then in BACKINGDIR. */
static enum step finish(struct checker *c)
{
	for (unsigned i = 0; i < c->nfiles; i++)
		if (fsync(c->files[i].fd))
			return fail_errno(c, &c->files[i], "final fsync",
					  errno);
	if (verify_all(c) != STEP_OK)
		return STEP_FAIL;
	for (unsigned i = 0; cfg.backing && i < c->nfiles; i++)
		if (compare_backing(c, &c->files[i]) != STEP_OK)
			return STEP_FAIL;
	return STEP_OK;
}

static enum step create_files(struct checker *c)
{
	for (unsigned i = 0; i < c->nfiles; i++) {
		struct test_file *f = &c->files[i];

		f->fd = open(f->path, O_RDWR | O_CREAT | O_TRUNC, 0644);
		if (f->fd < 0)
			return fail_errno(c, f, "create", errno);
	}
	return STEP_OK;
}

static void close_files(struct checker *c, bool remove)
{
	for (unsigned i = 0; i < c->nfiles; i++) {
		close_fds(&c->files[i]);
		if (remove)
			unlink(c->files[i].path);
	}
}

/* ------------------------------------------------------------- replicas */

static _Atomic uint64_t replica_hashes;	/* device hashes that matched */

/* The XXH64 of @path computed on device @k, over as many requests as it
 * takes.  Return: 0, or -1 with errno. */
static int device_hash(const char *path, unsigned k, uint64_t size, uint64_t *out)
{
	struct hmmfs_ioc_devread d = { .version = HMMFS_IOC_VERSION,
				       .op = HMMFS_DEVREAD_XXH64,
				       .flags = HMMFS_DEVREAD_START, .device = k,
				       .length = size };
	int fd = open(path, O_RDONLY | O_CLOEXEC), ret = 0;

	if (fd < 0)
		return -1;
	while (!(ret = ioctl(fd, HMMFS_IOC_DEVREAD, &d)) && !d.done) {
		d.flags = 0;
		d.length -= d.next - d.offset;
		d.offset = d.next;
	}
	close(fd);
	*out = d.result;
	return ret;
}

/*
 * At the end of checker @c's run, none of its files being written any
 * more: each device's hash of each file must be the model's.  A device
 * reads the replicas it holds, so a write that did not collapse one
 * shows here (the migrator still places pages meanwhile, which changes
 * no byte).
 */
static enum step check_replicas(struct checker *c)
{
	for (unsigned i = 0; i < c->nfiles; i++) {
		struct test_file *f = &c->files[i];
		uint64_t want = XXH64(f->data, f->size, 0), got;

		for (unsigned k = 0; k < cfg.devices; k++) {
			if (device_hash(f->path, k, f->size, &got))
				return fail_errno(c, f, "hash on a device", errno);
			if (got != want) {
				fprintf(stderr, "hmmfsx: FAILED: %s: device %u hashes "
					"%016llx, the model %016llx (a stale replica?)\n",
					f->name, k, (unsigned long long)got,
					(unsigned long long)want);
				return STEP_FAIL;
			}
			atomic_fetch_add(&replica_hashes, 1);
		}
	}
	return STEP_OK;
}

static enum step run_checker(struct checker *c)
{
	enum step s = create_files(c);

	if (s == STEP_OK)
		s = run_ops(c);
	if (s == STEP_OK && !atomic_load(&any_failed))
		s = finish(c);
	if (s == STEP_OK && cfg.devices)
		s = check_replicas(c);
	close_files(c, s == STEP_OK && !cfg.keep);
	return s;
}

static void *checker_thread(void *arg)
{
	struct checker *c = arg;

	c->status = run_checker(c);
	return NULL;
}

/* ---------------------------------------------------------------- setup */

static void init_file(struct test_file *f, unsigned index)
{
	f->index = index;
	if (asprintf(&f->name, "hmmfsx.%u", index) < 0) {
		fprintf(stderr, "hmmfsx: out of memory\n");
		exit(2);
	}
	f->path = join_path(cfg.dir, f->name);
	f->fd = f->direct_fd = -1;
	f->data = xcalloc(cfg.maxlen, 1);
	f->writer = xcalloc(cfg.maxlen, sizeof(*f->writer));
}

static void init_checker(struct checker *c, unsigned index)
{
	c->index = index;
	rng_seed(&c->rng, cfg.seed, index);
	c->nfiles = (cfg.nfiles - index + cfg.threads - 1) / cfg.threads;
	c->files = xcalloc(c->nfiles, sizeof(*c->files));
	for (unsigned i = 0; i < c->nfiles; i++)
		init_file(&c->files[i], index + i * cfg.threads);
	c->max_ops = cfg.max_ops / cfg.threads +
		     (index < cfg.max_ops % cfg.threads);
	c->buf = xcalloc(bufsize, 1);
	c->reread = xcalloc(bufsize, 1);
	c->tail = xcalloc(page_size, 1);
	if (posix_memalign((void **)&c->dbuf, BLOCK, dbufsize)) {
		fprintf(stderr, "hmmfsx: out of memory\n");
		exit(2);
	}
	if (cfg.maxlen < BLOCK || cfg.maxoplen < BLOCK)
		c->disabled[OP_DREAD] = c->disabled[OP_DWRITE] = true;
	if (cfg.maxlen < 2 * BLOCK)
		c->disabled[OP_COLLAPSE] = c->disabled[OP_INSERT] = true;
	for (unsigned k = 0; k < OP_KINDS; k++)
		c->disabled[k] |= cfg.excluded[k];
}

static void free_checker(struct checker *c)
{
	for (unsigned i = 0; i < c->nfiles; i++) {
		free(c->files[i].name);
		free(c->files[i].path);
		free(c->files[i].data);
		free(c->files[i].writer);
	}
	free(c->files);
	free(c->buf);
	free(c->reread);
	free(c->tail);
	free(c->dbuf);
}

static void install_sigbus_handler(void)
{
	struct sigaction sa = { .sa_handler = on_sigbus };

	sigemptyset(&sa.sa_mask);
	sigaction(SIGBUS, &sa, NULL);
}

/* ---------------------------------------------------------------- usage */

static void usage(FILE *out)
{
	fprintf(out,
"usage: hmmfsx [-s SEED] [-n OPS | -t SECONDS] [-f NFILES] [-l MAXLEN]\n"
"              [-o MAXOPLEN] [-i VERIFY] [-j THREADS] [-b BACKINGDIR]\n"
"              [-B] [-k] [-q] [-v] [-M [-R N]] [-K] [-D MS] [-x OPS] [-X] DIR\n"
"\n"
"fsx-style data-integrity checker: random reads, writes, mmap, truncate,\n"
"fallocate, fsync, reopen, fadvise and O_DIRECT on NFILES files in DIR,\n"
"checked against an in-memory model.\n"
"\n"
"  -s SEED        random seed (default: random, printed)\n"
"  -n OPS         number of operations (default 10000 without -t)\n"
"  -t SECONDS     run this long (with -n: whichever ends first)\n"
"  -f NFILES      number of files (default 4)\n"
"  -l MAXLEN      maximum file size, k/m/g suffixes (default 256k)\n"
"  -o MAXOPLEN    maximum read/write length (default 64k)\n"
"  -i VERIFY      verify every file in full every VERIFY ops (default 64)\n"
"  -j THREADS     independent checkers on disjoint files (default 1)\n"
"  -b BACKINGDIR  at the end compare BACKINGDIR/name with each file\n"
"  -B             also compare with BACKINGDIR after every fsync/fdatasync\n"
"  -k             keep the files (they are removed after a clean run)\n"
"  -q             quiet: only the summary line and failures\n"
"  -v             log every operation\n"
"  -M             migrate random ranges between host and device meanwhile\n"
"  -R N           with -M, on a mount with N devices: also to device K,\n"
"                 replicas on random devices, hashes on a device; at the\n"
"                 end each device's XXH64 of each file must match the model\n"
"  -K             dedupe stress: data of repeated bytes, scanner at full speed\n"
"  -D, --drop-caches MS\n"
"                 echo 2 > /proc/sys/vm/drop_caches every MS ms meanwhile\n"
"                 (0: off; needs root, else a warning and no drops)\n"
"  -x OPS         leave out these operations (comma list of the names the\n"
"                 summary prints, e.g. zero,rename: a file system's gaps)\n"
"  -X             inject a model error to prove the checker catches it\n"
"  -h, --help     this help\n"
"\n"
"Exit status: 0 all data matched, 1 mismatch or error, 2 usage error.\n");
}

static bool parse_u64(const char *s, uint64_t *out, bool suffixes)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s || *s == '-')
		return false;
	if (suffixes && *end) {
		const char *units = "kmg";
		const char *u = strchr(units, *end | 0x20);

		if (!u || end[1])
			return false;
		for (long i = 0; i <= u - units; i++)
			v <<= 10;
		end++;
	}
	*out = v;
	return *end == '\0';
}

static bool parse_seconds(const char *s, double *out)
{
	char *end;

	errno = 0;
	*out = strtod(s, &end);
	return !errno && end != s && !*end && *out > 0;
}

static bool parse_unsigned(const char *s, unsigned *out, unsigned lo,
			   unsigned hi)
{
	uint64_t v;

	if (!parse_u64(s, &v, false) || v < lo || v > hi)
		return false;
	*out = (unsigned)v;
	return true;
}

static void bad_arg(int opt, const char *arg)
{
	fprintf(stderr, "hmmfsx: invalid argument for -%c: '%s'\n", opt, arg);
	usage(stderr);
	exit(2);
}

/* -x: "zero,rename" into cfg.excluded[]; false on an unknown name. */
static bool parse_excluded(const char *arg)
{
	char list[256], *save = NULL;

	if (strlen(arg) >= sizeof(list))
		return false;
	strcpy(list, arg);
	for (char *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		unsigned k = 0;

		while (k < OP_KINDS && strcmp(op_table[k].name, t))
			k++;
		if (k == OP_KINDS)
			return false;
		cfg.excluded[k] = true;
	}
	return true;
}

static bool parse_option(int opt, const char *arg, bool *seeded)
{
	switch (opt) {
	case 's': *seeded = true; return parse_u64(arg, &cfg.seed, false);
	case 'n': return parse_u64(arg, &cfg.max_ops, false);
	case 't': return parse_seconds(arg, &cfg.seconds);
	case 'f': return parse_unsigned(arg, &cfg.nfiles, 1, MAX_FILES);
	case 'l': return parse_u64(arg, &cfg.maxlen, true) && cfg.maxlen &&
			 cfg.maxlen <= (1ULL << 32);
	case 'o': return parse_u64(arg, &cfg.maxoplen, true) && cfg.maxoplen;
	case 'i': return parse_unsigned(arg, &cfg.verify_interval, 1,
					UINT32_MAX);
	case 'j': return parse_unsigned(arg, &cfg.threads, 1, MAX_THREADS);
	case 'b': cfg.backing = arg; return true;
	case 'B': cfg.backing_on_sync = true; return true;
	case 'k': cfg.keep = true; return true;
	case 'q': cfg.quiet = true; return true;
	case 'v': cfg.verbose = true; return true;
	case 'X': cfg.inject = true; return true;
	case 'M': cfg.migrate = true; return true;
	case 'R': return parse_unsigned(arg, &cfg.devices, 1, HMMFS_MAX_DEVICES);
	case 'K': cfg.dedupe = true; return true;
	case 'D': return parse_unsigned(arg, &cfg.drop_ms, 0, 3600000);
	case 'x': return parse_excluded(arg);
	default: return false;
	}
}

static uint64_t random_seed(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ((uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^
		((uint64_t)getpid() << 8)) % 1000000000;
}

static void parse_args(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "drop-caches", required_argument, NULL, 'D' },
		{ NULL, 0, NULL, 0 },
	};
	bool seeded = false;
	int opt;

	while ((opt = getopt_long(argc, argv, "s:n:t:f:l:o:i:j:b:BkqvMR:KD:x:Xh",
				  longopts, NULL)) != -1) {
		if (opt == 'h') {
			usage(stdout);
			exit(0);
		}
		if (opt == '?') {
			usage(stderr);
			exit(2);
		}
		if (!parse_option(opt, optarg, &seeded))
			bad_arg(opt, optarg);
		cfg.ops_bounded |= opt == 'n';
	}
	if (optind != argc - 1) {
		usage(stderr);
		exit(2);
	}
	cfg.dir = argv[optind];
	if (cfg.devices && !cfg.migrate) {
		fprintf(stderr, "hmmfsx: -R needs -M\n");
		exit(2);
	}
	if (cfg.backing_on_sync && !cfg.backing) {
		fprintf(stderr, "hmmfsx: -B needs -b BACKINGDIR\n");
		exit(2);
	}
	if (!seeded)
		cfg.seed = random_seed();
	if (!cfg.ops_bounded && cfg.seconds <= 0) {
		cfg.ops_bounded = true;
		cfg.max_ops = 10000;
	}
	cfg.maxoplen = min_u64(cfg.maxoplen, cfg.maxlen);
	cfg.threads = cfg.threads < cfg.nfiles ? cfg.threads : cfg.nfiles;
}

/* ------------------------------------------------------------- summary */

static void print_summary(struct checker *cs, double elapsed)
{
	uint64_t counts[OP_KINDS] = { 0 }, ops = 0, verifies = 0;
	bool disabled[OP_KINDS] = { false };

	for (unsigned t = 0; t < cfg.threads; t++) {
		for (int k = 0; k < OP_KINDS; k++) {
			counts[k] += cs[t].counts[k];
			disabled[k] |= cs[t].disabled[k];
		}
		ops += cs[t].opnum;
		verifies += cs[t].verifies;
	}
	printf("hmmfsx: seed %" PRIu64 ": %" PRIu64 " ops on %u files ok in "
	       "%.1f s (", cfg.seed, ops, cfg.nfiles, elapsed);
	for (int k = 0; k < OP_KINDS; k++)
		printf("%s %" PRIu64 ", ", op_table[k].name, counts[k]);
	printf("verify %" PRIu64 ")", verifies);
	for (int k = 0, first = 1; k < OP_KINDS; k++) {
		if (!disabled[k])
			continue;
		printf("%s%s", first ? "; disabled: " : ", ", op_table[k].name);
		first = 0;
	}
	printf("\n");
}

static void print_start(void)
{
	if (cfg.quiet)
		return;
	printf("hmmfsx: seed %" PRIu64 ", %u files up to %" PRIu64 " bytes in "
	       "%s, ", cfg.seed, cfg.nfiles, cfg.maxlen, cfg.dir);
	if (cfg.ops_bounded)
		printf("%" PRIu64 " ops", cfg.max_ops);
	if (cfg.ops_bounded && cfg.seconds > 0)
		printf(" or ");
	if (cfg.seconds > 0)
		printf("%.0f s", cfg.seconds);
	printf(", %u thread%s\n", cfg.threads, cfg.threads > 1 ? "s" : "");
	fflush(stdout);
}

/* ------------------------------------------------------------- migrator */

struct migrator {
	pthread_t tid;
	atomic_bool stop;
	uint64_t moved[2], calls, refused, replicas, hashes;
	struct rng rng;
	struct checker *cs;
};

/*
 * With -R: one of the device-placement calls on @fd instead of a plain
 * migration: to device K, replicas on a random set of devices, or a hash
 * of a range on device K (its value is only checked at the end, when no
 * writer runs).  Return: 0, or -1 with errno.
 */
static int placement_call(struct migrator *m, int fd, uint64_t off, uint64_t len)
{
	unsigned k = (unsigned)(rng_next(&m->rng) % cfg.devices);
	struct hmmfs_ioc_migrate mg = { .version = HMMFS_IOC_VERSION,
					.to = HMMFS_TO_DEVICE_UNIT(k),
					.offset = off, .length = len };
	struct hmmfs_ioc_replicate rp = { .version = HMMFS_IOC_VERSION,
					  .offset = off, .length = len };
	struct hmmfs_ioc_devread dr = { .version = HMMFS_IOC_VERSION,
					.op = HMMFS_DEVREAD_XXH64,
					.flags = HMMFS_DEVREAD_START, .device = k,
					.offset = off, .length = len };

	switch (rng_next(&m->rng) % 3) {
	case 0:
		if (ioctl(fd, HMMFS_IOC_MIGRATE, &mg))
			return -1;
		m->moved[1] += mg.moved;
		return 0;
	case 1:
		rp.units = 1 + (uint32_t)(rng_next(&m->rng) % ((1u << cfg.devices) - 1));
		if (ioctl(fd, HMMFS_IOC_REPLICATE, &rp))
			return -1;
		m->replicas += rp.copies;
		return 0;
	default:
		if (ioctl(fd, HMMFS_IOC_DEVREAD, &dr))
			return -1;
		m->hashes++;
		return 0;
	}
}

/*
 * Move a random range of a random file to the device or back, until told
 * to stop.  Each file is opened once (a close would write it back).
 */
static void *migrator_thread(void *arg)
{
	struct migrator *m = arg;
	int fds[MAX_FILES];

	for (unsigned i = 0; i < cfg.nfiles; i++)
		fds[i] = open(m->cs[i % cfg.threads].files[i / cfg.threads].path,
			      O_RDONLY | O_CLOEXEC);
	while (!atomic_load(&m->stop)) {
		unsigned i = (unsigned)(rng_next(&m->rng) % cfg.nfiles);
		struct hmmfs_ioc_migrate mg = {
			.version = HMMFS_IOC_VERSION,
			.to = (uint32_t)(rng_next(&m->rng) & 1),
			.offset = rng_next(&m->rng) % cfg.maxlen / 4096 * 4096,
			.length = (rng_next(&m->rng) % 64 + 1) * 4096,
		};

		/* the checkers may not have created it yet when we started */
		if (fds[i] < 0)
			fds[i] = open(m->cs[i % cfg.threads].files[i / cfg.threads].path,
				      O_RDONLY | O_CLOEXEC);
		if (fds[i] < 0)
			continue;
		if (cfg.devices && rng_next(&m->rng) % 2) {
			if (placement_call(m, fds[i], mg.offset, mg.length) < 0) {
				if (errno == ENOTTY || errno == ENODEV) {
					note("migrator: %s: not an hmmfs mount with "
					     "devices\n", strerror(errno));
					break;
				}
				m->refused++;	/* past EOF, device full */
			}
		} else if (ioctl(fds[i], HMMFS_IOC_MIGRATE, &mg) == 0) {
			m->moved[mg.to] += mg.moved;
		} else if (errno == ENOTTY || errno == ENODEV) {
			note("migrator: %s: not an hmmfs mount with a device tier\n",
			     strerror(errno));
			break;
		} else {
			m->refused++;	/* past EOF (ERANGE), device full */
		}
		m->calls++;
	}
	for (unsigned i = 0; i < cfg.nfiles; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	return NULL;
}

/* -K: hmmfs's dedupe scanner at full speed, zero pages on. */
static void dedupe_full_speed(void)
{
	struct hmmfs_ioc_ksm k = {
		.version = HMMFS_IOC_VERSION,
		.set_mask = 1u << HMMFS_KSM_RUN | 1u << HMMFS_KSM_PAGES_TO_SCAN |
			    1u << HMMFS_KSM_SLEEP_MILLISECS |
			    1u << HMMFS_KSM_USE_ZERO_PAGES,
		.knobs = { [HMMFS_KSM_RUN] = 1, [HMMFS_KSM_PAGES_TO_SCAN] = 100000,
			   [HMMFS_KSM_SLEEP_MILLISECS] = 0,
			   [HMMFS_KSM_USE_ZERO_PAGES] = 1 },
	};
	int fd = open(cfg.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0 || ioctl(fd, HMMFS_IOC_KSM, &k) < 0)
		note("dedupe: cannot set the scanner's knobs: %s\n", strerror(errno));
	if (fd >= 0)
		close(fd);
}

static bool run_threads(struct checker *cs)
{
	pthread_t tids[MAX_THREADS];
	bool ok = true;

	if (cfg.threads == 1)
		return run_checker(&cs[0]) == STEP_OK;
	for (unsigned t = 0; t < cfg.threads; t++) {
		int err = pthread_create(&tids[t], NULL, checker_thread,
					 &cs[t]);

		if (err) {
			fprintf(stderr, "hmmfsx: pthread_create: %s\n",
				strerror(err));
			exit(2);
		}
	}
	for (unsigned t = 0; t < cfg.threads; t++) {
		pthread_join(tids[t], NULL);
		ok &= cs[t].status == STEP_OK;
	}
	return ok;
}

int main(int argc, char **argv)
{
	static struct migrator mig;
	struct checker *cs;
	bool ok;

	parse_args(argc, argv);
	page_size = (uint64_t)sysconf(_SC_PAGESIZE);
	bufsize = max_u64(cfg.maxoplen, MIN_BUF);
	dbufsize = max_u64((cfg.maxoplen + BLOCK - 1) / BLOCK * BLOCK, BLOCK);
	install_sigbus_handler();
	cs = xcalloc(cfg.threads, sizeof(*cs));
	for (unsigned t = 0; t < cfg.threads; t++)
		init_checker(&cs[t], t);
	print_start();
	start_time = now_seconds();
	deadline = start_time + cfg.seconds;
	if (cfg.dedupe)
		dedupe_full_speed();
	if (cfg.drop_ms)
		dropcaches_start(&dropper, cfg.drop_ms, "hmmfsx");
	if (cfg.migrate) {
		mig.cs = cs;
		rng_seed(&mig.rng, cfg.seed, MAX_THREADS);
		if (pthread_create(&mig.tid, NULL, migrator_thread, &mig)) {
			fprintf(stderr, "hmmfsx: cannot start the migrator\n");
			exit(2);
		}
	}
	ok = run_threads(cs);
	if (cfg.migrate) {
		atomic_store(&mig.stop, true);
		pthread_join(mig.tid, NULL);
		printf("hmmfsx: migrator: %" PRIu64 " calls, %" PRIu64 " pages to the "
		       "device, %" PRIu64 " to the host, %" PRIu64 " replicas, %" PRIu64
		       " hashes, %" PRIu64 " refused\n", mig.calls, mig.moved[1],
		       mig.moved[0], mig.replicas, mig.hashes, mig.refused);
	}
	if (ok && cfg.devices)
		printf("hmmfsx: replicas: %" PRIu64 " device hashes matched the model\n",
		       atomic_load(&replica_hashes));
	if (dropper.running) {
		dropcaches_stop(&dropper);
		printf("hmmfsx: drop_caches: %" PRIu64 " drops (every %u ms, and "
		       "%" PRIu64 " between a reopen's close and open)%s\n",
		       atomic_load(&dropper.drops), cfg.drop_ms,
		       atomic_load(&dropper.now_drops),
		       dropper.failed ? "; the thread stopped early: a write failed" : "");
	}
	if (ok)
		print_summary(cs, now_seconds() - start_time);
	for (unsigned t = 0; t < cfg.threads; t++)
		free_checker(&cs[t]);
	free(cs);
	return ok ? 0 : 1;
}
