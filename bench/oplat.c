/* SPDX-License-Identifier: MIT */
/*
 * bench/oplat.c — the latency of single file-system calls, one at a time,
 * in a directory: what everyday work (tar, rsync, git, sqlite) is made of.
 *
 *   oplat DIR [N]
 *
 * Over N files (default 2,000) in a fresh subdirectory of DIR, each phase
 * times one call per file with CLOCK_MONOTONIC and prints one line:
 *   phase  calls  mean_us  p50_us  p99_us
 * Phases, in order: create (open O_CREAT|O_EXCL), write_4k (pwrite of
 * 4 KiB to the new file), close_written, utimens, chmod, chown (to the
 * same owner), stat, open_ro, close_ro, create_empty + close_empty (a file
 * created and closed without data), append_fsync (open O_APPEND, write
 * 100 bytes, fsync: the fsync timed), rename, unlink, mkdir, rmdir.
 * Each call's result is checked; a failure prints the call and errno and
 * exits 1.  Single-threaded, so every latency is one round trip through
 * whatever serves DIR (a FUSE daemon's included).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int n_files = 2000;
static int dirfd_g;
static int *fds;
static uint64_t *lat;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void fail(const char *what, int i)
{
	fprintf(stderr, "oplat: %s of file %d: %s\n", what, i, strerror(errno));
	exit(1);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void report(const char *phase)
{
	uint64_t sum = 0;

	for (int i = 0; i < n_files; i++)
		sum += lat[i];
	qsort(lat, (size_t)n_files, sizeof(*lat), cmp_u64);
	printf("%-14s %6d %9.1f %9.1f %9.1f\n", phase, n_files,
	       (double)sum / n_files / 1000.0, lat[n_files / 2] / 1000.0,
	       lat[(n_files * 99) / 100] / 1000.0);
	fflush(stdout);
}

static void name_of(char *buf, size_t len, const char *prefix, int i)
{
	snprintf(buf, len, "%s%06d", prefix, i);
}

/* One timed call per file: @call returns < 0 on failure. */
#define PHASE(phase, stmt)						\
	do {								\
		for (int i = 0; i < n_files; i++) {			\
			char nm[32], nm2[32];				\
			uint64_t t0;					\
			long r;						\
			name_of(nm, sizeof(nm), "f", i);		\
			name_of(nm2, sizeof(nm2), "g", i);		\
			(void)nm2;					\
			t0 = now_ns();					\
			r = (stmt);					\
			lat[i] = now_ns() - t0;				\
			if (r < 0)					\
				fail(phase, i);				\
		}							\
		report(phase);						\
	} while (0)

/* open O_APPEND, write 100 bytes, fsync, close: only the fsync timed. */
static void phase_append_fsync(const char *buf)
{
	for (int i = 0; i < n_files; i++) {
		char nm[32];
		uint64_t t0;
		int fd;

		name_of(nm, sizeof(nm), "f", i);
		fd = openat(dirfd_g, nm, O_WRONLY | O_APPEND);
		if (fd < 0 || write(fd, buf, 100) != 100)
			fail("append_fsync", i);
		t0 = now_ns();
		if (fsync(fd) < 0)
			fail("append_fsync", i);
		lat[i] = now_ns() - t0;
		close(fd);
	}
	report("append_fsync");
}

int main(int argc, char **argv)
{
	static char buf[4096];
	char sub[4096];
	struct timespec times[2] = { { 1000000000, 0 }, { 1000000000, 0 } };
	struct rlimit rl;

	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: oplat DIR [N]\n");
		return 2;
	}
	if (argc == 3)
		n_files = atoi(argv[2]);
	if (n_files < 1) {
		fprintf(stderr, "oplat: N must be positive\n");
		return 2;
	}
	/* N descriptors stay open across phases: the hard limit, if needed */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	snprintf(sub, sizeof(sub), "%s/oplat.%d", argv[1], (int)getpid());
	if (mkdir(sub, 0755) < 0 || (dirfd_g = open(sub, O_RDONLY | O_DIRECTORY)) < 0)
		fail("mkdir", -1);
	fds = calloc((size_t)n_files, sizeof(*fds));
	lat = calloc((size_t)n_files, sizeof(*lat));
	if (!fds || !lat)
		fail("calloc", -1);
	memset(buf, 'x', sizeof(buf));
	printf("%-14s %6s %9s %9s %9s\n", "phase", "calls", "mean_us", "p50_us", "p99_us");

	PHASE("create", fds[i] = openat(dirfd_g, nm, O_CREAT | O_EXCL | O_WRONLY, 0644));
	PHASE("write_4k", pwrite(fds[i], buf, sizeof(buf), 0));
	PHASE("close_written", close(fds[i]));
	PHASE("utimens", utimensat(dirfd_g, nm, times, AT_SYMLINK_NOFOLLOW));
	PHASE("chmod", fchmodat(dirfd_g, nm, 0640, 0));
	PHASE("chown", fchownat(dirfd_g, nm, getuid(), getgid(), AT_SYMLINK_NOFOLLOW));
	PHASE("stat", ({ struct stat st; fstatat(dirfd_g, nm, &st, AT_SYMLINK_NOFOLLOW); }));
	PHASE("open_ro", fds[i] = openat(dirfd_g, nm, O_RDONLY));
	PHASE("close_ro", close(fds[i]));
	PHASE("create_empty", fds[i] = openat(dirfd_g, nm2, O_CREAT | O_EXCL | O_WRONLY, 0644));
	PHASE("close_empty", close(fds[i]));
	phase_append_fsync(buf);
	PHASE("rename", renameat(dirfd_g, nm, dirfd_g, nm2));
	PHASE("unlink", unlinkat(dirfd_g, nm2, 0));
	PHASE("mkdir", mkdirat(dirfd_g, nm, 0755));
	PHASE("rmdir", unlinkat(dirfd_g, nm, AT_REMOVEDIR));
	close(dirfd_g);
	if (rmdir(sub) < 0)
		fail("rmdir", -1);
	return 0;
}
