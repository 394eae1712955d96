/* SPDX-License-Identifier: MIT */
/*
 * bench/filetree.c — make or read a tree of many files, the same way on
 * every target (bench/manyfiles.sh and bench/epoch.sh compile and run it).
 *
 *     filetree create|read [-j THREADS] [-s MIN] [-S MAX] [-p PER_DIR] DIR N
 *
 * File i (0 <= i < N) is DIR/dDDDD/fIIIIIII, PER_DIR files to a directory
 * (default 2000), so no directory holds more than a few thousand entries.
 * Its size is MIN + hash(i) % (MAX - MIN + 1) bytes (default 4 KiB to
 * 64 KiB): pseudo-random, but the same on every run and every target.
 * Its bytes are 8-byte words (i << 32 | word index): each file differs,
 * no page dedupes, and a read can tell a stale or misplaced page.
 *
 * create makes the directories, then writes each file with one pwrite
 * (O_CREAT | O_EXCL) and closes it.  read opens each file, reads it to
 * EOF in 1 MiB calls, closes it, and compares size and bytes with what
 * create wrote.  THREADS (default 4) threads take files in turn (thread t
 * does i = t, t + THREADS, ...), one file at a time each.
 *
 * Prints one line: "filetree: VERB N files, BYTES bytes in SECONDS s
 * (MB/s, files/s); E errors" and, for the first errors, what failed and
 * why (EMFILE and ENFILE are counted apart: the descriptor limits are
 * part of what the benchmarks measure).  Exit 0 if no error, 1 if any,
 * 2 on a usage error.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define READ_CHUNK	(1u << 20)
#define MAX_THREADS	64
#define ERRORS_SHOWN	5

static struct {
	bool create;
	const char *dir;
	uint64_t n, min, max, per_dir;
	unsigned threads;
} cfg = { .min = 4096, .max = 65536, .per_dir = 2000, .threads = 4 };

static _Atomic uint64_t bytes_done, errors, emfile, enfile;

static uint64_t mix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t file_size(uint64_t i)
{
	return cfg.min + mix64(i + 0x9e3779b97f4a7c15ull) % (cfg.max - cfg.min + 1);
}

static void file_path(char *buf, size_t len, uint64_t i)
{
	snprintf(buf, len, "%s/d%04" PRIu64 "/f%07" PRIu64, cfg.dir,
		 i / cfg.per_dir, i);
}

/* What file @i holds: @size bytes of (i << 32 | word) words. */
static void fill(unsigned char *buf, uint64_t i, uint64_t size)
{
	for (uint64_t w = 0; w * 8 < size; w++) {
		uint64_t v = i << 32 | w;

		memcpy(buf + w * 8, &v, size - w * 8 < 8 ? size - w * 8 : 8);
	}
}

static void report_error(const char *what, const char *path, int err)
{
	uint64_t n = atomic_fetch_add(&errors, 1);

	if (err == EMFILE)
		atomic_fetch_add(&emfile, 1);
	if (err == ENFILE)
		atomic_fetch_add(&enfile, 1);
	if (n < ERRORS_SHOWN)
		fprintf(stderr, "filetree: %s %s: %s\n", what, path, strerror(err));
}

static void create_one(uint64_t i, unsigned char *buf)
{
	uint64_t size = file_size(i);
	char path[4096];
	int fd;

	file_path(path, sizeof(path), i);
	fd = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
	if (fd < 0) {
		report_error("create", path, errno);
		return;
	}
	fill(buf, i, size);
	if (pwrite(fd, buf, size, 0) != (ssize_t)size)
		report_error("write", path, errno ? errno : EIO);
	else
		atomic_fetch_add(&bytes_done, size);
	if (close(fd) < 0)
		report_error("close", path, errno);
}

static void read_one(uint64_t i, unsigned char *buf, unsigned char *want)
{
	uint64_t size = file_size(i), got = 0;
	char path[4096];
	ssize_t n;
	int fd;

	file_path(path, sizeof(path), i);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		report_error("open", path, errno);
		return;
	}
	while ((n = read(fd, buf + got, READ_CHUNK)) > 0 && got + (uint64_t)n <= cfg.max)
		got += (uint64_t)n;
	if (n < 0) {
		report_error("read", path, errno);
	} else if (n > 0 || got != size) {
		fprintf(stderr, "filetree: %s: %" PRIu64 "%s bytes, want %" PRIu64 "\n",
			path, got, n > 0 ? "+" : "", size);
		atomic_fetch_add(&errors, 1);
	} else {
		fill(want, i, size);
		if (memcmp(buf, want, size)) {
			fprintf(stderr, "filetree: %s: the bytes differ from those written\n",
				path);
			atomic_fetch_add(&errors, 1);
		}
		atomic_fetch_add(&bytes_done, size);
	}
	close(fd);
}

static void *worker(void *arg)
{
	unsigned t = (unsigned)(uintptr_t)arg;
	/* a read of a file may return more than MAX if the file grew: room */
	unsigned char *buf = malloc(cfg.max + READ_CHUNK);
	unsigned char *want = malloc(cfg.max + 8);

	if (!buf || !want) {
		fprintf(stderr, "filetree: out of memory\n");
		exit(1);
	}
	for (uint64_t i = t; i < cfg.n; i += cfg.threads) {
		if (cfg.create)
			create_one(i, buf);
		else
			read_one(i, buf, want);
	}
	free(buf);
	free(want);
	return NULL;
}

static int make_dirs(void)
{
	char path[4096];

	for (uint64_t d = 0; d * cfg.per_dir < cfg.n; d++) {
		snprintf(path, sizeof(path), "%s/d%04" PRIu64, cfg.dir, d);
		if (mkdir(path, 0755) < 0 && errno != EEXIST) {
			fprintf(stderr, "filetree: mkdir %s: %s\n", path, strerror(errno));
			return -1;
		}
	}
	return 0;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static bool parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s || *s == '-')
		return false;
	switch (*end | 0x20) {
	case 'k': v <<= 10; end++; break;
	case 'm': v <<= 20; end++; break;
	case 'g': v <<= 30; end++; break;
	}
	*out = v;
	return *end == '\0';
}

static void usage(void)
{
	fprintf(stderr, "usage: filetree create|read [-j THREADS] [-s MIN] [-S MAX] "
		"[-p PER_DIR] DIR N\n");
	exit(2);
}

static void parse_args(int argc, char **argv)
{
	uint64_t threads = cfg.threads;
	int opt;

	if (argc < 2)
		usage();
	if (!strcmp(argv[1], "create"))
		cfg.create = true;
	else if (strcmp(argv[1], "read"))
		usage();
	optind = 2;
	while ((opt = getopt(argc, argv, "j:s:S:p:")) != -1) {
		bool ok;

		switch (opt) {
		case 'j': ok = parse_size(optarg, &threads); break;
		case 's': ok = parse_size(optarg, &cfg.min); break;
		case 'S': ok = parse_size(optarg, &cfg.max); break;
		case 'p': ok = parse_size(optarg, &cfg.per_dir); break;
		default: ok = false;
		}
		if (!ok)
			usage();
	}
	if (optind != argc - 2 || !parse_size(argv[optind + 1], &cfg.n) ||
	    threads < 1 || threads > MAX_THREADS || cfg.min > cfg.max ||
	    cfg.per_dir < 1 || cfg.max > (1ull << 32))
		usage();
	cfg.threads = (unsigned)threads;
	cfg.dir = argv[optind];
}

int main(int argc, char **argv)
{
	pthread_t tids[MAX_THREADS];
	double t0, secs;

	parse_args(argc, argv);
	if (cfg.create && make_dirs() < 0)
		return 1;
	t0 = now();
	for (unsigned t = 0; t < cfg.threads; t++) {
		int err = pthread_create(&tids[t], NULL, worker, (void *)(uintptr_t)t);

		if (err) {
			fprintf(stderr, "filetree: pthread_create: %s\n", strerror(err));
			return 1;
		}
	}
	for (unsigned t = 0; t < cfg.threads; t++)
		pthread_join(tids[t], NULL);
	secs = now() - t0;
	printf("filetree: %s %" PRIu64 " files, %" PRIu64 " bytes in %.2f s "
	       "(%.0f MB/s, %.0f files/s); %" PRIu64 " errors (%" PRIu64
	       " EMFILE, %" PRIu64 " ENFILE)\n", cfg.create ? "create" : "read",
	       cfg.n, atomic_load(&bytes_done), secs,
	       atomic_load(&bytes_done) / 1e6 / secs, cfg.n / secs,
	       atomic_load(&errors), atomic_load(&emfile), atomic_load(&enfile));
	return atomic_load(&errors) ? 1 : 0;
}
