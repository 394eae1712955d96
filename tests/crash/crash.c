/* SPDX-License-Identifier: MIT */
/*
 * tests/crash/crash.c — kill the daemon mid-work, remount, check the data.
 *
 *     HMMFS=... [HMMFSCTL=...] hmmfscrash [-n ITERATIONS] [-s SEED] [-T]
 *                                         [-o OPTS] [-k MAX_MS] [-D MS] [-v]
 *
 * Crash loop (default).  BACKING and MNT live in a fresh temp dir.  Each
 * iteration mounts "$HMMFS BACKING MNT -f -o OPTS" (default a 256 KiB host
 * cache, so pages are demoted to the hostsim device all the time), runs
 * writer threads over 8 files of up to 1 MiB (random offsets and lengths,
 * an fsync every few writes) and a migrator that runs "hmmfsctl migrate"
 * both ways on random files (so migrations and their writebacks are in
 * flight), SIGKILLs the daemon after a random 20..MAX_MS ms (default
 * 1500), unmounts the dead mount, remounts and checks every file, in
 * BACKING and through the new mount:
 *
 *   - every byte acknowledged by an fsync is there with its last
 *     acknowledged value;
 *   - every other byte is one some write put there (a write issued but not
 *     acknowledged may or may not have landed, byte by byte), or zero if no
 *     acknowledged write covered it: no byte was never written;
 *   - the size is at least the acknowledged size and at most the end of
 *     the furthest write issued.
 *
 * Byte o of file f written by write number g (a global generation) is
 * 1 + hash(f, o, g) % 255: never zero, so a hole is told apart, and each
 * write's bytes are identifiable.  What the check found becomes the next
 * iteration's acknowledged state.
 *
 * Flush mode (-T).  Writes 14 MiB over 8 files through a 32 MiB host
 * cache with writeback held off (dirty limits near their cap of half the
 * cache, long expiry) and migrates half the files, dirty, to the device,
 * so thousands of pages are dirty on both tiers; checks that with the
 * stats and residency ioctls; then SIGTERMs the daemon with the files still open,
 * and requires exit status 0 and every byte in BACKING.  Then the same
 * data again, closed, and a plain umount.
 *
 * Drops (-D MS).  A thread writes "2" to /proc/sys/vm/drop_caches every MS
 * ms for the whole run, both modes, checking mounts included
 * (tests/common/dropcaches.c), so the kernel forgets every inode no
 * descriptor holds and hmmfs detaches and reattaches cache state under
 * the kill.  The writers hold their files open, so in the crash loop each
 * writer also closes its file after one write in WRITER_DROP_ONE_IN,
 * waits for a drop that started after the close (dropcaches_now()) and
 * opens the file again: dirty pages not yet fsynced meet a FORGET, then
 * the kill.  Not root: said once, no drops.
 *
 * Exit: 0 all good, 1 a check failed, 2 usage, 77 cannot run (not root,
 * no /dev/fuse, no $HMMFS).  TIMEOUT: an iteration takes about 1-3 s; the
 * make check run (-n 10) about 20 s.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "include/hmmfs_ioctl.h"
#include "tests/common/dropcaches.h"

#define NFILES		8
#define NWRITERS	4
#define FILE_MAX	(1 << 20)
#define WRITE_MAX	(64 << 10)
#define PAGE		4096
#define READ_MAX	(4 << 20)	/* more than any file here holds */
#define WRITER_DROP_ONE_IN 32	/* with -D: writes followed by close, drop, open */

extern char **environ;

static const char *hmmfs, *hmmfsctl;
static char root[256], backing[300], mnt[300], logpath[300];
static bool verbose;
static _Atomic uint32_t generation;
static atomic_bool stop;
static atomic_int threads_done;
static struct dropcaches dropper;	/* -D */

/* A write issued but not acknowledged by an fsync (yet). */
struct pending {
	uint32_t off, len, gen;
};

/**
 * struct tfile - what the checker knows of one file.
 * @acked:   per byte, the generation last acknowledged there (0: none).
 * @size:    the acknowledged size.
 * @pend:    writes since the last acknowledged fsync, in order.
 * @pend_end: the furthest end of those.
 * Only the file's writer thread touches it while the workload runs.
 */
struct tfile {
	char name[16];
	uint32_t *acked;
	uint32_t size;
	struct pending *pend;
	size_t npend, cap;
	uint32_t pend_end;
	int fd;
};

static struct tfile files[NFILES];

struct counts {
	_Atomic uint64_t writes, fsyncs, migrations, migrate_fail, reopens;
};
static struct counts cnt;

static uint64_t mix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint8_t pat(int f, uint32_t off, uint32_t gen)
{
	if (!gen)
		return 0;
	return (uint8_t)(1 + mix64((uint64_t)f << 56 ^ (uint64_t)gen << 24 ^ off) % 255);
}

static uint64_t rng_next(uint64_t *s)
{
	*s += 0x9e3779b97f4a7c15ull;
	return mix64(*s);
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
	nanosleep(&(struct timespec){ .tv_sec = ms / 1000,
		  .tv_nsec = (ms % 1000) * 1000000 }, NULL);
}

static const char *path_in(const char *dir, const char *name)
{
	static _Thread_local char buf[4][1024];
	static _Thread_local int k;

	k = (k + 1) % 4;
	snprintf(buf[k], sizeof(buf[k]), "%s/%s", dir, name);
	return buf[k];
}

/* ---- the daemon ---------------------------------------------------------- */

/* Is something mounted on MNT?  A dead FUSE mount answers ENOTCONN. */
static bool is_mounted(void)
{
	struct stat a, b;

	if (stat(mnt, &a) < 0)
		return errno == ENOTCONN;
	return stat(root, &b) == 0 && a.st_dev != b.st_dev;
}

static pid_t mount_start(const char *opts)
{
	char *argv[] = { (char *)hmmfs, backing, mnt, "-f", "-o", (char *)opts, NULL };
	posix_spawn_file_actions_t fa;
	long long end = now_ms() + 10000;
	pid_t pid;
	int status;

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 1, logpath, O_WRONLY | O_CREAT | O_APPEND, 0644);
	posix_spawn_file_actions_adddup2(&fa, 1, 2);
	if (posix_spawn(&pid, hmmfs, &fa, NULL, argv, environ)) {
		fprintf(stderr, "crash: cannot start %s\n", hmmfs);
		exit(1);
	}
	posix_spawn_file_actions_destroy(&fa);
	while (!is_mounted()) {
		if (waitpid(pid, &status, WNOHANG) == pid || now_ms() > end) {
			fprintf(stderr, "crash: hmmfs did not mount (see %s)\n", logpath);
			exit(1);
		}
		sleep_ms(5);
	}
	return pid;
}

/* Unmount a mount whose daemon is dead (or about to go). */
static void mount_remove(void)
{
	for (int i = 0; i < 100 && is_mounted(); i++) {
		if (umount2(mnt, 0) == 0)
			return;
		sleep_ms(20);
	}
	if (is_mounted())
		umount2(mnt, MNT_DETACH);
}

static int wait_exit(pid_t pid, int timeout_ms)
{
	long long end = now_ms() + timeout_ms;
	int status;

	while (waitpid(pid, &status, WNOHANG) != pid) {
		if (now_ms() > end) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			return -1;
		}
		sleep_ms(10);
	}
	return status;
}

/*
 * Abort the FUSE connection of MNT through fusectl (mounting it if need
 * be), for requests left waiting although the daemon is dead.
 * Return: 0 if aborted.
 */
static int connection_abort(void)
{
	char line[1024], path[128], m[512];
	unsigned int major, minor, conn = 0;
	bool found = false;
	FILE *mi = fopen("/proc/self/mountinfo", "r");
	int fd, ret = -1;

	while (mi && fgets(line, sizeof(line), mi))
		if (sscanf(line, "%*d %*d %u:%u %*s %511s", &major, &minor, m) == 3 &&
		    !strcmp(m, mnt)) {
			found = true;
			conn = minor;	/* the last mount there, if stacked */
		}
	if (mi)
		fclose(mi);
	if (!found)
		return -1;
	snprintf(path, sizeof(path), "/sys/fs/fuse/connections/%u/abort", conn);
	if (access(path, W_OK))
		mount("fusectl", "/sys/fs/fuse/connections", "fusectl", 0, NULL);
	fd = open(path, O_WRONLY);
	if (fd >= 0) {
		ret = write(fd, "1", 1) == 1 ? 0 : -1;
		close(fd);
	}
	return ret;
}

/* ---- the workload -------------------------------------------------------- */

static void pend_add(struct tfile *t, uint32_t off, uint32_t len, uint32_t gen)
{
	if (t->npend == t->cap) {
		t->cap = t->cap ? 2 * t->cap : 64;
		t->pend = realloc(t->pend, t->cap * sizeof(*t->pend));
		if (!t->pend)
			abort();
	}
	t->pend[t->npend++] = (struct pending){ off, len, gen };
	if (off + len > t->pend_end)
		t->pend_end = off + len;
}

/* An fsync succeeded: everything pending is acknowledged. */
static void pend_ack(struct tfile *t)
{
	for (size_t i = 0; i < t->npend; i++) {
		struct pending *w = &t->pend[i];

		for (uint32_t o = w->off; o < w->off + w->len; o++)
			t->acked[o] = w->gen;
		if (w->off + w->len > t->size)
			t->size = w->off + w->len;
	}
	t->npend = 0;
	t->pend_end = 0;
}

/*
 * Close @t's file, drop the kernel's inodes, open it again: its unsynced
 * writes stay pending (a close acknowledges nothing).  Return: 0, or -1
 * when the open failed (the daemon is gone).
 */
static int reopen_dropped(struct tfile *t)
{
	close(t->fd);
	dropcaches_now(&dropper);
	t->fd = open(path_in(mnt, t->name), O_RDWR | O_CLOEXEC);
	if (t->fd < 0)
		return -1;
	atomic_fetch_add(&cnt.reopens, 1);
	return 0;
}

static void *writer_main(void *arg)
{
	int me = (int)(intptr_t)arg;
	uint64_t seed = (uint64_t)me * 7919 + (uint64_t)now_ms();
	uint8_t *buf = malloc(WRITE_MAX);

	while (!atomic_load(&stop)) {
		int f = me + NWRITERS * (int)(rng_next(&seed) % (NFILES / NWRITERS));
		struct tfile *t = &files[f];
		uint32_t off = (uint32_t)(rng_next(&seed) % FILE_MAX), len, gen;
		ssize_t n;

		if (rng_next(&seed) % 4 == 0)
			off &= ~(uint32_t)(PAGE - 1);	/* page-aligned, often */
		len = 1 + (uint32_t)(rng_next(&seed) % WRITE_MAX);
		if (len > FILE_MAX - off)
			len = FILE_MAX - off;
		gen = atomic_fetch_add(&generation, 1) + 1;
		for (uint32_t i = 0; i < len; i++)
			buf[i] = pat(f, off + i, gen);
		pend_add(t, off, len, gen);	/* before: it may land partly */
		n = pwrite(t->fd, buf, len, off);
		if (n != (ssize_t)len)
			break;	/* the daemon is gone */
		atomic_fetch_add(&cnt.writes, 1);
		if (rng_next(&seed) % 6 == 0) {
			if (fsync(t->fd) < 0)
				break;
			pend_ack(t);
			atomic_fetch_add(&cnt.fsyncs, 1);
		}
		if (dropper.running && rng_next(&seed) % WRITER_DROP_ONE_IN == 0 &&
		    reopen_dropped(t) < 0)
			break;
	}
	free(buf);
	atomic_fetch_add(&threads_done, 1);
	return NULL;
}

/* Migrate one file both ways; with hmmfsctl if there is one. */
static void migrate_once(int f, bool to_device)
{
	const char *path = path_in(mnt, files[f].name);
	int status = 1;

	if (hmmfsctl) {
		char *argv[] = { (char *)hmmfsctl, "migrate", "--to",
				 to_device ? "device" : "host", (char *)path, NULL };
		posix_spawn_file_actions_t fa;
		pid_t pid;

		posix_spawn_file_actions_init(&fa);
		posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
		posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
		if (!posix_spawn(&pid, hmmfsctl, &fa, NULL, argv, environ))
			waitpid(pid, &status, 0);
		posix_spawn_file_actions_destroy(&fa);
	} else {
		struct hmmfs_ioc_migrate m = { .version = HMMFS_IOC_VERSION,
					       .to = to_device };
		int fd = open(path, O_RDONLY);

		status = fd < 0 || ioctl(fd, HMMFS_IOC_MIGRATE, &m) < 0;
		if (fd >= 0)
			close(fd);
	}
	atomic_fetch_add(status ? &cnt.migrate_fail : &cnt.migrations, 1);
}

static void *migrator_main(void *arg)
{
	uint64_t seed = (uint64_t)(intptr_t)arg;

	while (!atomic_load(&stop))
		migrate_once((int)(rng_next(&seed) % NFILES), rng_next(&seed) % 3 != 0);
	atomic_fetch_add(&threads_done, 1);
	return NULL;
}

/* ---- the check ----------------------------------------------------------- */

static uint8_t *read_all(const char *path, uint32_t *size)
{
	uint8_t *data = malloc(READ_MAX);
	int fd = open(path, O_RDONLY);
	ssize_t n = 0, got = 0;

	if (fd < 0) {
		if (errno == ENOENT) {
			*size = 0;
			return data;
		}
		fprintf(stderr, "crash: open %s: %s\n", path, strerror(errno));
		exit(1);
	}
	while (got < READ_MAX && (n = pread(fd, data + got, READ_MAX - got, got)) > 0)
		got += n;
	if (n < 0) {
		fprintf(stderr, "crash: read %s: %s\n", path, strerror(errno));
		exit(1);
	}
	close(fd);
	*size = (uint32_t)got;
	return data;
}

/*
 * Check file @f in BACKING and through the mount; adopt what was found as
 * the acknowledged state.  Return: bad bytes found (0: good).
 */
static uint64_t check_file(int f, uint64_t *acked_bytes)
{
	struct tfile *t = &files[f];
	uint32_t size, msize, limit = t->size > t->pend_end ? t->size : t->pend_end;
	uint8_t *data = read_all(path_in(backing, t->name), &size);
	uint8_t *mdata = read_all(path_in(mnt, t->name), &msize);
	uint64_t bad = 0;

	if (size < t->size || size > limit) {
		fprintf(stderr, "crash: %s: size %u, want %u..%u\n", t->name, size,
			t->size, limit);
		bad++;
	}
	if (msize != size || memcmp(data, mdata, size)) {
		fprintf(stderr, "crash: %s: the mount (%u bytes) and BACKING (%u) differ\n",
			t->name, msize, size);
		bad++;
	}
	for (uint32_t o = 0; o < size; o++) {
		uint32_t g = t->acked[o];
		bool ok = data[o] == pat(f, o, g);

		if (g && o < t->size)
			(*acked_bytes)++;
		for (size_t i = t->npend; !ok && i-- > 0;) {
			struct pending *w = &t->pend[i];

			if (o >= w->off && o < w->off + w->len && data[o] == pat(f, o, w->gen)) {
				ok = true;
				g = w->gen;
			}
		}
		if (!ok) {
			if (bad < 5)
				fprintf(stderr, "crash: %s: byte %u is 0x%02x; acknowledged "
					"generation %u (0x%02x); %zu writes pending\n",
					t->name, o, data[o], t->acked[o],
					pat(f, o, t->acked[o]), t->npend);
			bad++;
		}
		t->acked[o] = g;
	}
	for (uint32_t o = size; o < FILE_MAX; o++)
		t->acked[o] = 0;
	t->size = size;
	t->npend = 0;
	t->pend_end = 0;
	free(data);
	free(mdata);
	return bad;
}

/* ---- the modes ----------------------------------------------------------- */

static int crash_loop(int iterations, uint64_t seed, const char *opts, int max_ms)
{
	uint64_t total_bad = 0, acked_total = 0, stuck = 0;

	for (int it = 0; it < iterations; it++) {
		pthread_t w[NWRITERS], m;
		uint64_t bad = 0, acked = 0;
		long kill_ms = 20 + (long)(rng_next(&seed) % (uint64_t)(max_ms - 19));
		pid_t pid = mount_start(opts);
		bool reaped = false;
		int status;

		memset(&cnt, 0, sizeof(cnt));
		atomic_store(&stop, false);
		atomic_store(&threads_done, 0);
		for (int f = 0; f < NFILES; f++) {
			files[f].fd = open(path_in(mnt, files[f].name),
					   O_CREAT | O_RDWR | O_CLOEXEC, 0644);
			if (files[f].fd < 0) {
				fprintf(stderr, "crash: open %s: %s\n", files[f].name,
					strerror(errno));
				return 1;
			}
		}
		for (int i = 0; i < NWRITERS; i++)
			pthread_create(&w[i], NULL, writer_main, (void *)(intptr_t)i);
		pthread_create(&m, NULL, migrator_main, (void *)(intptr_t)rng_next(&seed));
		sleep_ms(kill_ms);
		kill(pid, SIGKILL);
		atomic_store(&stop, true);
		/*
		 * The dead daemon's connection should fail every waiting request
		 * at once.  Sometimes it does not (once in 40 kills when found,
		 * half of them on a later machine): the daemon's notifier
		 * thread was inside a kernel cache invalidation, waiting
		 * (uninterruptibly) for a page locked by a read that only the
		 * connection's abort can end, so the daemon cannot finish dying
		 * and /dev/fuse stays open (docs/reliability.md).  Say so and
		 * abort the connection by hand, so the loop goes on.
		 */
		for (int i = 0; i < 1000; i++) {
			if (!reaped && waitpid(pid, &status, WNOHANG) == pid)
				reaped = true;
			if (reaped && atomic_load(&threads_done) == NWRITERS + 1)
				break;
			sleep_ms(10);
		}
		if (!reaped || atomic_load(&threads_done) < NWRITERS + 1) {
			stuck++;
			printf("crash: iteration %d: WARNING: requests still waiting 10 s "
			       "after the daemon died; aborting the connection: %s\n",
			       it + 1, connection_abort() ? "failed" : "done");
			if (!reaped)
				waitpid(pid, &status, 0);
		}
		for (int i = 0; i < NWRITERS; i++)
			pthread_join(w[i], NULL);
		pthread_join(m, NULL);
		for (int f = 0; f < NFILES; f++)
			close(files[f].fd);
		mount_remove();

		pid = mount_start(opts);
		for (int f = 0; f < NFILES; f++)
			bad += check_file(f, &acked);
		mount_remove();
		status = wait_exit(pid, 20000);
		if (status != 0) {
			fprintf(stderr, "crash: the checking mount's daemon: wait status 0x%x\n",
				(unsigned int)status);
			bad++;
		}
		printf("crash: iteration %d: killed after %ld ms: %llu writes, %llu fsyncs, "
		       "%llu reopens with a drop, %llu migrations (%llu failed); "
		       "%llu acknowledged bytes checked%s\n",
		       it + 1, kill_ms, (unsigned long long)cnt.writes,
		       (unsigned long long)cnt.fsyncs, (unsigned long long)cnt.reopens,
		       (unsigned long long)cnt.migrations,
		       (unsigned long long)cnt.migrate_fail, (unsigned long long)acked,
		       bad ? ": FAILED" : "");
		fflush(stdout);
		total_bad += bad;
		acked_total += acked;
		if (bad)
			break;
	}
	printf("crash: %s: %d iterations, %llu acknowledged bytes checked, "
	       "%llu connections left waiting after the kill\n",
	       total_bad ? "FAILED" : "passed", iterations,
	       (unsigned long long)acked_total, (unsigned long long)stuck);
	return total_bad ? 1 : 0;
}

static struct hmmfs_ioc_stats mount_stats(void)
{
	struct hmmfs_ioc_stats st = { .version = HMMFS_IOC_VERSION };
	int fd = open(mnt, O_RDONLY | O_DIRECTORY);

	if (fd < 0 || ioctl(fd, HMMFS_IOC_STATS, &st) < 0)
		fprintf(stderr, "crash: stats: %s\n", strerror(errno));
	if (fd >= 0)
		close(fd);
	return st;
}

/* Dirty pages on the device, from the residency extents. */
static uint64_t dirty_on_device(int fd)
{
	struct hmmfs_ioc_residency *r = calloc(1, sizeof(*r));
	uint64_t n = 0, off = 0;

	for (;;) {
		*r = (struct hmmfs_ioc_residency){ .version = HMMFS_IOC_VERSION,
						   .offset = off };
		if (ioctl(fd, HMMFS_IOC_RESIDENCY, r) < 0)
			break;
		for (uint32_t i = 0; i < r->n_ext; i++)
			if ((r->ext[i].flags & (HMMFS_RES_DEVICE | HMMFS_RES_DIRTY)) ==
			    (HMMFS_RES_DEVICE | HMMFS_RES_DIRTY))
				n += r->ext[i].count;
		if (r->next <= off || !r->n_ext)
			break;
		off = r->next;
	}
	free(r);
	return n;
}

/* One round of flush mode; @sigterm: signal with files open, else umount. */
static int flush_round(bool sigterm, uint32_t seed)
{
	/*
	 * Dirty limits are capped at half the host cache: 4096 pages here.
	 * The pages must be dirty in the daemon, not in the kernel's cache of
	 * the mount (tests/integration/test_startup.c covers those).
	 */
	const char *opts = "host_cache=32M,dirty_background=15M,dirty_limit=16M,"
			   "dirty_expire_ms=3600000,nowriteback_cache";
	const size_t per_file = 1792 << 10;
	uint8_t *buf = malloc(per_file), *back;
	struct hmmfs_ioc_stats st;
	uint64_t dev_dirty = 0, bad = 0;
	pid_t pid = mount_start(opts);
	int fds[NFILES], status;

	for (int f = 0; f < NFILES; f++) {
		for (size_t o = 0; o < per_file; o++)
			buf[o] = pat(f, (uint32_t)o, seed);
		fds[f] = open(path_in(mnt, files[f].name), O_CREAT | O_TRUNC | O_RDWR, 0644);
		if (fds[f] < 0 || pwrite(fds[f], buf, per_file, 0) != (ssize_t)per_file) {
			fprintf(stderr, "crash: write %s: %s\n", files[f].name, strerror(errno));
			return 1;
		}
	}
	for (int f = 0; f < NFILES / 2; f++) {	/* half of them, dirty, to the device */
		struct hmmfs_ioc_migrate m = { .version = HMMFS_IOC_VERSION,
					       .to = HMMFS_TO_DEVICE };

		if (ioctl(fds[f], HMMFS_IOC_MIGRATE, &m) < 0) {
			fprintf(stderr, "crash: migrate %s: %s\n", files[f].name,
				strerror(errno));
			bad++;
		}
	}
	st = mount_stats();
	for (int f = 0; f < NFILES; f++)
		dev_dirty += dirty_on_device(fds[f]);
	printf("crash: flush (%s): %llu dirty pages, %llu of them on the device; "
	       "%llu host pages, %llu device pages\n", sigterm ? "SIGTERM" : "umount",
	       (unsigned long long)st.dirty_pages, (unsigned long long)dev_dirty,
	       (unsigned long long)st.host_pages, (unsigned long long)st.device_pages);
	if (sigterm && (st.dirty_pages < 3000 || dev_dirty < 1000)) {
		fprintf(stderr, "crash: want >= 3000 dirty pages, >= 1000 on the device\n");
		bad++;
	}
	if (sigterm) {
		kill(pid, SIGTERM);
		status = wait_exit(pid, 60000);
		for (int f = 0; f < NFILES; f++)
			close(fds[f]);
		mount_remove();
	} else {
		for (int f = 0; f < NFILES; f++)
			close(fds[f]);
		mount_remove();
		status = wait_exit(pid, 60000);
	}
	if (status != 0) {
		fprintf(stderr, "crash: daemon exit: wait status 0x%x\n", (unsigned int)status);
		bad++;
	}
	for (int f = 0; f < NFILES; f++) {
		uint32_t size;

		back = read_all(path_in(backing, files[f].name), &size);
		for (size_t o = 0; o < per_file; o++)
			buf[o] = pat(f, (uint32_t)o, seed);
		if (size != per_file || memcmp(back, buf, per_file)) {
			fprintf(stderr, "crash: %s: BACKING has %u bytes, not the %zu written\n",
				files[f].name, size, per_file);
			bad++;
		}
		free(back);
	}
	free(buf);
	printf("crash: flush (%s): %s\n", sigterm ? "SIGTERM" : "umount",
	       bad ? "FAILED" : "every byte in BACKING");
	return bad ? 1 : 0;
}

static void cleanup(void)
{
	if (!root[0])
		return;
	if (is_mounted())
		umount2(mnt, MNT_DETACH);
	if (!verbose) {
		char cmd[400];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
		if (system(cmd) != 0)
			fprintf(stderr, "crash: could not remove %s\n", root);
	}
}

int main(int argc, char **argv)
{
	const char *opts = "host_cache=256K,device_cache=64M";
	int iterations = 10, max_ms = 1500, drop_ms = 0, opt, ret;
	bool flush_mode = false;
	uint64_t seed = (uint64_t)time(NULL);

	while ((opt = getopt(argc, argv, "n:s:To:k:D:v")) != -1) {
		switch (opt) {
		case 'n': iterations = atoi(optarg); break;
		case 's': seed = strtoull(optarg, NULL, 0); break;
		case 'T': flush_mode = true; break;
		case 'o': opts = optarg; break;
		case 'k': max_ms = atoi(optarg); break;
		case 'D': drop_ms = atoi(optarg); break;
		case 'v': verbose = true; break;
		default:
			fprintf(stderr, "usage: hmmfscrash [-n ITER] [-s SEED] [-T] "
				"[-o OPTS] [-k MAX_MS] [-D MS] [-v]\n");
			return 2;
		}
	}
	if (iterations < 1 || max_ms < 40 || drop_ms < 0) {
		fprintf(stderr, "crash: -n must be >= 1, -k >= 40 and -D >= 0\n");
		return 2;
	}
	hmmfs = getenv("HMMFS");
	hmmfsctl = getenv("HMMFSCTL");
	if (!hmmfs || access(hmmfs, X_OK) || geteuid() != 0 ||
	    access("/dev/fuse", R_OK | W_OK)) {
		fprintf(stderr, "crash: needs root, /dev/fuse and HMMFS=the daemon\n");
		return 77;
	}
	if (hmmfsctl && access(hmmfsctl, X_OK))
		hmmfsctl = NULL;
	snprintf(root, sizeof(root), "%s/hmmfs-crash.XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(root)) {
		perror("crash: mkdtemp");
		return 1;
	}
	snprintf(backing, sizeof(backing), "%s/backing", root);
	snprintf(mnt, sizeof(mnt), "%s/mnt", root);
	snprintf(logpath, sizeof(logpath), "%s/daemon.log", root);
	mkdir(backing, 0755);
	mkdir(mnt, 0755);
	atexit(cleanup);
	for (int f = 0; f < NFILES; f++) {
		snprintf(files[f].name, sizeof(files[f].name), "f%d", f);
		files[f].acked = calloc(FILE_MAX, sizeof(uint32_t));
	}
	printf("crash: seed %llu, %s, in %s\n", (unsigned long long)seed,
	       flush_mode ? "flush mode" : opts, root);
	if (drop_ms)
		dropcaches_start(&dropper, (unsigned)drop_ms, "crash");
	if (flush_mode)
		ret = flush_round(true, (uint32_t)seed | 1) |
		      flush_round(false, (uint32_t)seed + 2);
	else
		ret = crash_loop(iterations, seed, opts, max_ms);
	if (dropper.running) {
		dropcaches_stop(&dropper);
		printf("crash: drop_caches: %llu drops (every %d ms, and %llu between "
		       "a writer's close and open)%s\n",
		       (unsigned long long)atomic_load(&dropper.drops), drop_ms,
		       (unsigned long long)atomic_load(&dropper.now_drops),
		       dropper.failed ? "; the thread stopped early: a write failed" : "");
	}
	if (ret)
		fprintf(stderr, "crash: the daemon's log: %s\n", logpath);
	if (ret)
		verbose = true;	/* keep the tree for a look */
	return ret;
}
