/* SPDX-License-Identifier: MIT */
/*
 * tests/stress/race.c — hmmfsrace: processes racing truncation, writes and
 * the hmmfs ioctls on the same few pages.
 *
 *     hmmfsrace [-t SECONDS] [-n ITERATIONS] [-f FILES] [-w WRITERS]
 *               [-T HANG_SECONDS] [-b BACKINGDIR] DIR
 *
 * For each of FILES (default 2) files DIR/raceN, separate processes run
 * until SECONDS (default 10) pass or each writer has done ITERATIONS
 * loops (default: no limit):
 *
 *   writer (WRITERS of them, default 4): pwrite 64 KiB of its own byte
 *          ('A' + writer) at 0; close; open(O_RDWR | O_TRUNC); close —
 *          the loop that livelocked page_drop (issue 13, item 1);
 *   truncator: truncate(2) to sizes around the first pages (0 .. 128 KiB);
 *   ioctls: HMMFS_IOC_MIGRATE of the first pages to the device and back,
 *          HMMFS_IOC_RESIDENCY, and (on a mount with several devices)
 *          replicas of them and a device hash, on a descriptor it reopens
 *          often;
 *   renamer: rename the file away and back, and now and then unlink it
 *          (the writers recreate it).
 *
 * Every process must finish: if any is still running HANG_SECONDS
 * (default 60) after the others were told to stop, hmmfsrace prints what
 * each was doing and exits 1 (the mount is then likely livelocked; the
 * caller unmounts or aborts it).  An unexpected error of a write, open or
 * truncate fails the run too.  Afterwards each file may only hold bytes
 * some writer wrote or zeros, and with -b it must equal BACKINGDIR/raceN
 * (size and bytes) after an fsync; then 64 KiB written, cut to 1000 bytes
 * and extended to 70000 must read back as exactly that, here and in
 * BACKINGDIR (no page the race left in the cache may show through).
 *
 * Exit: 0 all good, 1 a check failed or a process hung, 2 usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "include/hmmfs_ioctl.h"

#define WLEN (64 * 1024)
#define MAX_FILES 16
#define MAX_WRITERS 16
#define MAX_PROCS (MAX_FILES * (MAX_WRITERS + 3))

enum role { ROLE_WRITER, ROLE_TRUNCATOR, ROLE_IOCTLS, ROLE_RENAMER };
static const char *const role_name[] = { "writer", "truncator", "ioctls",
					 "renamer" };

/* One racing process; lives in memory shared with the parent. */
struct racer {
	enum role role;
	int file, id;
	pid_t pid;
	_Atomic uint64_t loops;	/* loops done */
	_Atomic int step;	/* what it does now, for the hang report */
	_Atomic int done;
	int err;		/* errno of an unexpected failure */
	char what[64];		/* the call that failed */
};

struct shared {
	_Atomic int stop;
	struct racer r[MAX_PROCS];
};

static struct shared *sh;
static const char *dir;
static uint64_t max_loops;

static void file_path(char *buf, size_t len, int file, const char *suffix)
{
	snprintf(buf, len, "%s/race%d%s", dir, file, suffix);
}

static bool stopping(struct racer *r)
{
	return atomic_load(&sh->stop) ||
	       (max_loops && r->role == ROLE_WRITER && r->loops >= max_loops);
}

static void fail(struct racer *r, const char *what, int err)
{
	if (!r->err) {
		r->err = err;
		snprintf(r->what, sizeof(r->what), "%s", what);
	}
}

static void run_writer(struct racer *r, const char *path)
{
	static char buf[WLEN];
	int fd;

	memset(buf, 'A' + r->id, sizeof(buf));
	while (!stopping(r) && !r->err) {
		r->step = 1;
		fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
		if (fd < 0) {
			fail(r, "open", errno);
			break;
		}
		r->step = 2;
		if (pwrite(fd, buf, WLEN, 0) != WLEN)
			fail(r, "pwrite", errno ? errno : EIO);
		r->step = 3;
		close(fd);
		r->step = 4;
		/* O_CREAT: the renamer may have taken the file away just now */
		fd = open(path, O_RDWR | O_TRUNC | O_CREAT | O_CLOEXEC, 0644);
		if (fd < 0) {
			fail(r, "open O_TRUNC", errno);
			break;
		}
		r->step = 5;
		close(fd);
		r->loops++;
	}
}

static void run_truncator(struct racer *r, const char *path)
{
	static const off_t sizes[] = { 0, 1000, 4096, 65536, 70000, 131072,
				       8191, 0, 65535 };

	while (!stopping(r) && !r->err) {
		r->step = 1;
		if (truncate(path, sizes[r->loops % 9]) < 0 && errno != ENOENT)
			fail(r, "truncate", errno);
		r->loops++;
	}
}

/*
 * On a mount with several devices: replicas of the first pages on a few
 * of them, and a hash of them on one (refusals are fine: one device
 * only, the device full, the file cut meanwhile).
 */
static void race_replicas(int fd, uint64_t loop)
{
	struct hmmfs_ioc_replicate rp = {
		.version = HMMFS_IOC_VERSION, .units = 1u + (uint32_t)(loop % 7),
		.offset = (loop % 3) * 4096, .length = 128 * 1024,
	};
	struct hmmfs_ioc_devread dr = {
		.version = HMMFS_IOC_VERSION, .op = HMMFS_DEVREAD_XXH64,
		.flags = HMMFS_DEVREAD_START, .device = (uint32_t)(loop % 3),
		.length = 128 * 1024,
	};

	(void)ioctl(fd, HMMFS_IOC_REPLICATE, &rp);
	(void)ioctl(fd, HMMFS_IOC_DEVREAD, &dr);
}

static void run_ioctls(struct racer *r, const char *path)
{
	static struct hmmfs_ioc_residency res;
	int fd = -1;

	while (!stopping(r) && !r->err) {
		struct hmmfs_ioc_migrate m = {
			.version = HMMFS_IOC_VERSION,
			.to = r->loops & 1 ? HMMFS_TO_HOST : HMMFS_TO_DEVICE,
			.offset = (r->loops % 3) * 4096,
			.length = 128 * 1024,
		};

		if (fd < 0 || r->loops % 16 == 0) {
			if (fd >= 0)
				close(fd);
			r->step = 1;
			fd = open(path, O_RDONLY | O_CLOEXEC);
			if (fd < 0) {	/* renamed away or unlinked just now */
				r->loops++;
				continue;
			}
		}
		r->step = 2;
		/* refusals are fine: past EOF, no device tier, tier full */
		(void)ioctl(fd, HMMFS_IOC_MIGRATE, &m);
		r->step = 3;
		res = (struct hmmfs_ioc_residency){
			.version = HMMFS_IOC_VERSION, .length = 256 * 1024 };
		(void)ioctl(fd, HMMFS_IOC_RESIDENCY, &res);
		r->step = 4;
		race_replicas(fd, r->loops);
		r->loops++;
	}
	if (fd >= 0)
		close(fd);
}

static void run_renamer(struct racer *r, const char *path)
{
	char away[4096];
	int fd;

	file_path(away, sizeof(away), r->file, ".away");
	while (!stopping(r) && !r->err) {
		r->step = 1;
		if (r->loops % 8 == 7) {
			if (unlink(path) < 0 && errno != ENOENT)
				fail(r, "unlink", errno);
			fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
			if (fd < 0)
				fail(r, "recreate", errno);
			else
				close(fd);
		} else if (rename(path, away) == 0) {
			r->step = 2;
			if (rename(away, path) < 0)
				fail(r, "rename back", errno);
		} else if (errno != ENOENT) {
			fail(r, "rename", errno);
		}
		r->loops++;
		usleep(200);	/* let the others find the file most of the time */
	}
}

static void racer_main(struct racer *r)
{
	char path[4096];

	file_path(path, sizeof(path), r->file, "");
	switch (r->role) {
	case ROLE_WRITER:
		run_writer(r, path);
		break;
	case ROLE_TRUNCATOR:
		run_truncator(r, path);
		break;
	case ROLE_IOCTLS:
		run_ioctls(r, path);
		break;
	case ROLE_RENAMER:
		run_renamer(r, path);
		break;
	}
	r->done = 1;
	_exit(r->err ? 1 : 0);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* All but the writers stop once the writers are done (-n). */
static bool writers_done(int n)
{
	for (int i = 0; i < n; i++)
		if (sh->r[i].role == ROLE_WRITER && !sh->r[i].done)
			return false;
	return true;
}

/* Wait for every racer; false (after a report) if some hung. */
static bool reap_all(int n, double secs, double hang_secs)
{
	double start = now_s(), stop_at = start + secs, give_up = 0;
	int left = n;

	while (left > 0) {
		int status;
		pid_t pid = waitpid(-1, &status, WNOHANG);

		if (pid > 0) {
			left--;
			continue;
		}
		if (!sh->stop && (now_s() >= stop_at || writers_done(n))) {
			sh->stop = 1;
			give_up = now_s() + hang_secs;
		}
		if (give_up && now_s() >= give_up)
			break;
		usleep(10000);
	}
	if (!left)
		return true;
	printf("hmmfsrace: FAILED: %d of %d processes still running %.0f s "
	       "after the stop:\n", left, n, hang_secs);
	for (int i = 0; i < n; i++)
		if (!sh->r[i].done)
			printf("hmmfsrace:   %s %d of race%d (pid %d): %llu loops, "
			       "at step %d\n", role_name[sh->r[i].role],
			       sh->r[i].id, sh->r[i].file, (int)sh->r[i].pid,
			       (unsigned long long)sh->r[i].loops, sh->r[i].step);
	for (int i = 0; i < n; i++)
		if (!sh->r[i].done)
			kill(sh->r[i].pid, SIGKILL);
	return false;
}

/* Read all of @path into a new buffer; its size in *@len.  NULL: errno. */
static char *read_all(const char *path, off_t *len, bool do_fsync)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	char *buf;

	if (fd < 0)
		return NULL;
	if ((do_fsync && fsync(fd) < 0) || fstat(fd, &st) < 0 ||
	    !(buf = malloc((size_t)st.st_size + 1))) {
		close(fd);
		return NULL;
	}
	if (pread(fd, buf, (size_t)st.st_size, 0) != st.st_size) {
		free(buf);
		close(fd);
		errno = EIO;
		return NULL;
	}
	close(fd);
	*len = st.st_size;
	return buf;
}

/*
 * After the race the file must still behave: 64 KiB written, cut to 1000
 * bytes and extended to 70000 must read as 1000 bytes of data and zeros
 * (no page the race left behind may show through), here and in BACKING.
 * 0 or 1.
 */
static int settle(const char *path, const char *bpath)
{
	static char buf[WLEN], want[70000];
	const char *paths[2] = { path, bpath };
	char *got;
	off_t len;
	int fd = open(path, O_RDWR | O_CLOEXEC);

	memset(buf, 'A', sizeof(buf));
	if (fd < 0 || pwrite(fd, buf, WLEN, 0) != WLEN || ftruncate(fd, 1000) < 0 ||
	    ftruncate(fd, sizeof(want)) < 0 || close(fd) < 0) {
		printf("hmmfsrace: FAILED: settling %s: %s\n", path, strerror(errno));
		return 1;
	}
	memset(want, 0, sizeof(want));
	memset(want, 'A', 1000);
	for (int i = 0; i < 2 && paths[i]; i++) {
		got = read_all(paths[i], &len, i == 0);
		if (!got || len != (off_t)sizeof(want) || memcmp(got, want, sizeof(want))) {
			printf("hmmfsrace: FAILED: %s after write, truncate to 1000 and "
			       "to 70000: %s\n", paths[i],
			       got ? "wrong size or bytes" : strerror(errno));
			free(got);
			return 1;
		}
		free(got);
	}
	return 0;
}

/*
 * For a report of a difference: what the daemon's cache says of the file
 * (its size, pages, dirty pages) beside what the kernel said.
 */
static void explain_difference(const char *path, const char *bpath)
{
	struct hmmfs_ioc_file_stats fs;
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	memset(&fs, 0, sizeof(fs));
	if (fd >= 0 && ioctl(fd, HMMFS_IOC_FILE_STATS, &fs) == 0)
		printf("hmmfsrace:   the cache: size %llu, %llu pages, %llu dirty, "
		       "%llu written in, %llu written back\n",
		       (unsigned long long)fs.size, (unsigned long long)fs.pages,
		       (unsigned long long)fs.dirty,
		       (unsigned long long)fs.written_bytes,
		       (unsigned long long)fs.writeback_bytes);
	else
		printf("hmmfsrace:   the cache: no file stats (%s)\n", strerror(errno));
	if (fd >= 0 && fstat(fd, &st) == 0)
		printf("hmmfsrace:   the kernel: size %lld, inode %llu\n",
		       (long long)st.st_size, (unsigned long long)st.st_ino);
	if (stat(bpath, &st) == 0)
		printf("hmmfsrace:   BACKING: size %lld, inode %llu\n",
		       (long long)st.st_size, (unsigned long long)st.st_ino);
	if (fd >= 0)
		close(fd);
}

/* Only zeros and writers' bytes, and BACKING the same.  0 or 1. */
static int check_file(int file, int writers, const char *backing)
{
	char path[4096], bpath[4096];
	off_t len, blen;
	char *buf = NULL, *bbuf = NULL;
	int ret = 1;

	file_path(path, sizeof(path), file, "");
	buf = read_all(path, &len, true);
	if (!buf) {
		printf("hmmfsrace: FAILED: reading %s: %s\n", path, strerror(errno));
		return 1;
	}
	for (off_t o = 0; o < len; o++)
		if (buf[o] && (buf[o] < 'A' || buf[o] >= 'A' + writers)) {
			printf("hmmfsrace: FAILED: %s: byte %lld is 0x%02x, which no "
			       "writer wrote\n", path, (long long)o, buf[o] & 0xff);
			goto out_free;
		}
	if (backing) {
		snprintf(bpath, sizeof(bpath), "%s/race%d", backing, file);
		bbuf = read_all(bpath, &blen, false);
		if (!bbuf) {
			printf("hmmfsrace: FAILED: reading %s: %s\n", bpath,
			       strerror(errno));
			goto out_free;
		}
		if (blen != len || memcmp(buf, bbuf, (size_t)len)) {
			printf("hmmfsrace: FAILED: %s (%lld bytes) differs from "
			       "BACKING (%lld bytes)\n", path, (long long)len,
			       (long long)blen);
			explain_difference(path, bpath);
			goto out_free;
		}
	}
	printf("hmmfsrace: race%d: %lld bytes, consistent\n", file, (long long)len);
	ret = settle(path, backing ? bpath : NULL);
out_free:
	free(bbuf);
	free(buf);
	return ret;
}

static void usage(void)
{
	fprintf(stderr, "usage: hmmfsrace [-t SECONDS] [-n ITERATIONS] [-f FILES] "
		"[-w WRITERS] [-T HANG_SECONDS] [-b BACKINGDIR] DIR\n");
	exit(2);
}

int main(int argc, char **argv)
{
	double secs = 10, hang_secs = 60;
	int files = 2, writers = 4, n = 0, fail_count = 0, opt;
	const char *backing = NULL;

	while ((opt = getopt(argc, argv, "t:n:f:w:T:b:")) != -1) {
		switch (opt) {
		case 't': secs = atof(optarg); break;
		case 'n': max_loops = strtoull(optarg, NULL, 0); break;
		case 'f': files = atoi(optarg); break;
		case 'w': writers = atoi(optarg); break;
		case 'T': hang_secs = atof(optarg); break;
		case 'b': backing = optarg; break;
		default: usage();
		}
	}
	if (optind + 1 != argc || files < 1 || files > MAX_FILES ||
	    writers < 1 || writers > MAX_WRITERS)
		usage();
	dir = argv[optind];
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED) {
		perror("hmmfsrace: mmap");
		return 1;
	}
	for (int f = 0; f < files; f++) {
		for (int w = 0; w < writers + 3; w++) {
			struct racer *r = &sh->r[n++];

			r->file = f;
			r->role = w < writers ? ROLE_WRITER : w - writers + 1;
			r->id = w < writers ? w : 0;
		}
	}
	printf("hmmfsrace: %d files, %d writers + truncator + ioctls + renamer "
	       "each, %.0f s\n", files, writers, secs);
	fflush(stdout);
	for (int i = 0; i < n; i++) {
		pid_t pid = fork();

		if (pid < 0) {
			perror("hmmfsrace: fork");
			sh->stop = 1;
			n = i;
			break;
		}
		if (pid == 0)
			racer_main(&sh->r[i]);
		sh->r[i].pid = pid;
	}
	if (!reap_all(n, secs, hang_secs))
		return 1;
	for (int i = 0; i < n; i++) {
		struct racer *r = &sh->r[i];

		if (r->err) {
			printf("hmmfsrace: FAILED: %s %d of race%d: %s: %s\n",
			       role_name[r->role], r->id, r->file, r->what,
			       strerror(r->err));
			fail_count++;
		}
	}
	for (int f = 0; f < files; f++) {
		uint64_t wl = 0, other[4] = { 0 };

		for (int i = 0; i < n; i++)
			if (sh->r[i].file == f) {
				if (sh->r[i].role == ROLE_WRITER)
					wl += sh->r[i].loops;
				else
					other[sh->r[i].role] = sh->r[i].loops;
			}
		printf("hmmfsrace: race%d: %llu writer loops, %llu truncates, "
		       "%llu ioctl rounds, %llu renames\n", f,
		       (unsigned long long)wl, (unsigned long long)other[1],
		       (unsigned long long)other[2], (unsigned long long)other[3]);
		fail_count += check_file(f, writers, backing);
	}
	if (fail_count)
		return 1;
	printf("hmmfsrace: passed\n");
	return 0;
}
