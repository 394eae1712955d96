/* SPDX-License-Identifier: MIT */
/*
 * tests/integration/test_cache.c — the page cache through real mounts.
 *
 * Durability: bytes acknowledged by fsync survive SIGKILL of the daemon
 * (remount, compare BACKING and the mount); SIGTERM with a file still open
 * and dirty writes it back before the daemon exits; close writes back
 * (close-to-open).  Errors: on a BACKING that fills up (a 2 MiB tmpfs) the
 * writer gets ENOSPC from write, fsync or close, the daemon keeps serving,
 * and other files stay intact.  Coherence: a change made directly in
 * BACKING is seen through the mount after the file is opened again.
 * Control: hmmfsctl stats --json reports the counters and they move (a
 * re-read is a hit, not a backing read); hmmfsctl sync writes back a file
 * that is still open; host_cache=0 says the cache is off.  Two writers of
 * one page (the mount and BACKING, or a second mount): the mount writes
 * back only the bytes it dirtied, so the other writer's bytes survive.
 * A truncate BACKING refuses (EFBIG) leaves the size and data as they were.
 *
 * The mounts use direct_io so that every read and write reaches the
 * daemon's cache instead of stopping in the kernel's page cache.
 */
#include <fcntl.h>
#include <linux/fuse.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
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
#include "tests/integration/harness.h"

#define MiB (1024 * 1024)

/* Run hmmfsctl with up to 4 arguments; stdout in p->out. */
static int ctl(struct it_proc *p, const char *a1, const char *a2,
	       const char *a3, const char *a4)
{
	char *argv[] = { (char *)it.hmmfsctl, (char *)a1, (char *)a2,
			 (char *)a3, (char *)a4, NULL };

	IT_REQUIRE(it.hmmfsctl != NULL, "HMMFSCTL is not set");
	it_spawn(argv, NULL, 10000, p);
	return p->status != -1 && WIFEXITED(p->status) ? WEXITSTATUS(p->status) : -1;
}

/* A number after "key": in hmmfsctl's JSON; -1 if absent. */
static long long json_num(const char *json, const char *key)
{
	char pat[64];
	const char *at;

	snprintf(pat, sizeof(pat), "\"%s\":", key);
	at = strstr(json, pat);
	return at ? strtoll(at + strlen(pat), NULL, 10) : -1;
}

/*
 * A counter, by ioctl from this process: running hmmfsctl would fork, and
 * the child's copy of an open descriptor closing at exec is a close of the
 * file (FUSE flush), which writes the file back.
 */
static long long stat_of(const char *key)
{
	struct hmmfs_ioc_stats st = { 0 };
	int fd = open(it.mnt, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	IT_REQUIRE(fd >= 0, "open %s: %s", it.mnt, it_errname(errno));
	IT_OK(ioctl(fd, HMMFS_IOC_STATS, &st));
	close(fd);
	if (strcmp(key, "dirty_pages") == 0)
		return (long long)st.dirty_pages;
	if (strcmp(key, "hits") == 0)
		return (long long)st.hits;
	if (strcmp(key, "backing_reads") == 0)
		return (long long)st.backing_reads;
	if (strcmp(key, "page_size") == 0)
		return (long long)st.page_size;
	IT_TRUE(false, "stat_of: unknown key %s", key);
	return -1;
}

/*
 * A child process that writes @len pattern bytes (seed @seed) to @rel and
 * keeps the file open until told to close it: dirty pages with an open
 * writer, which nothing in this process can flush by accident.
 */
struct holder {
	pid_t pid;
	int go;		/* write a byte: the child closes and exits */
};

static void holder_start(struct holder *h, const char *rel, size_t len,
			 uint32_t seed)
{
	int ready[2], go[2];
	char c;

	IT_REQUIRE_OK(pipe(ready));
	IT_REQUIRE_OK(pipe(go));
	h->pid = fork();
	IT_REQUIRE(h->pid >= 0, "fork: %s", it_errname(errno));
	if (h->pid == 0) {
		int fd = open(MNT(rel), O_CREAT | O_WRONLY, 0644);

		c = fd >= 0 && it_pwrite_pattern(fd, 0, len, 64 * 1024, seed) == 0;
		if (write(ready[1], &c, 1) != 1 || read(go[0], &c, 1) < 0)
			_exit(2);
		_exit(close(fd) == 0 ? 0 : 1);
	}
	close(ready[1]);
	close(go[0]);
	h->go = go[1];
	IT_REQUIRE(read(ready[0], &c, 1) == 1 && c == 1,
		   "the writer child could not write %s", rel);
	close(ready[0]);
}

static void holder_stop(struct holder *h)
{
	int status;

	IT_EQ(write(h->go, "x", 1), 1);
	close(h->go);
	IT_EQ(it_wait_pid(h->pid, 10000, &status), 0);
}

static void fsynced_data_survives_sigkill(void)
{
	struct it_mount *m = &it.mount;
	int fd, status;

	fd = IT_REQUIRE_OK(open(MNT("crash"), O_CREAT | O_WRONLY, 0644));
	IT_REQUIRE_OK(it_pwrite_pattern(fd, 0, 8 * MiB, 256 * 1024, 7));
	IT_REQUIRE_OK(fsync(fd));
	/* more, never synced: may or may not survive, must not corrupt */
	IT_OK(it_pwrite_pattern(fd, 8 * MiB, MiB, 4096, 7));
	IT_REQUIRE_OK(kill(m->pid, SIGKILL));
	IT_OK(it_wait_pid(m->pid, 5000, &status));
	close(fd);	/* ENOTCONN is fine: the daemon is gone */
	IT_OK(umount2(it.mnt, MNT_DETACH));
	m->live = false;
	m->pid = 0;
	IT_EQ(it_file_check(BACK("crash"), 0, 8 * MiB, 7), -1);
	it_mount_default("direct_io", false);
	IT_EQ(it_file_check(MNT("crash"), 0, 8 * MiB, 7), -1);
}

static void sigterm_flushes_open_dirty_file(void)
{
	struct it_mount *m = &it.mount;
	struct holder h;
	int status;

	holder_start(&h, "open", 4 * MiB, 9);
	IT_TRUE(stat_of("dirty_pages") > 0, "the writes should still be dirty");
	IT_REQUIRE_OK(kill(m->pid, SIGTERM));
	/* the daemon unmounts itself and exits 0 after writing back */
	IT_EQ(it_wait_pid(m->pid, 20000, &status), 0);
	IT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		"daemon wait status 0x%x", (unsigned int)status);
	holder_stop(&h);
	m->live = it_mount_count(it.mnt, NULL, NULL, 0) > 0;
	m->pid = 0;
	IT_EQ(it_file_check(BACK("open"), 0, 4 * MiB, 9), -1);
}

static void close_writes_back(void)
{
	char buf[5000];
	int fd;

	memset(buf, 'c', sizeof(buf));
	fd = IT_REQUIRE_OK(open(MNT("closed"), O_CREAT | O_WRONLY, 0644));
	IT_EQ(write(fd, buf, sizeof(buf)), (ssize_t)sizeof(buf));
	IT_OK(close(fd));
	IT_CONTENT_BOTH("closed", buf, sizeof(buf));
	IT_EQ(stat_of("dirty_pages"), 0);
}

/*
 * A truncate that BACKING refuses (EFBIG: 32 TiB is past ext4's largest
 * file) leaves the file as it was: the cache used to keep the new size,
 * so the mount showed a 32 TiB file that BACKING never had.
 */
static void refused_truncate_keeps_size(void)
{
	const off_t huge = (off_t)1 << 45;
	char buf[8192];
	struct stat st;
	int fd, ret, err;

	memset(buf, 't', sizeof(buf));
	fd = IT_REQUIRE_OK(open(MNT("t"), O_CREAT | O_RDWR, 0644));
	IT_EQ(write(fd, buf, sizeof(buf)), (ssize_t)sizeof(buf));	/* dirty */
	ret = ftruncate(fd, huge);
	err = errno;
	if (ret == 0) {
		printf("\n  BACKING takes a 32 TiB file: no refused truncate to test "
		       "here (needs ext4 or another fs with a smaller limit)\n");
		IT_OK(close(fd));
		return;
	}
	IT_STR_EQ(it_errname(err), "EFBIG");
	IT_OK(fstat(fd, &st));
	IT_EQ(st.st_size, (off_t)sizeof(buf));
	IT_OK(close(fd));
	IT_OK(stat(MNT("t"), &st));
	IT_EQ(st.st_size, (off_t)sizeof(buf));
	IT_CONTENT_BOTH("t", buf, sizeof(buf));
}

/* Mount a 2 MiB tmpfs as BACKING, then hmmfs over it. */
static void mount_small_backing(void)
{
	IT_REQUIRE_OK(mount("tmpfs", it.backing, "tmpfs", 0, "size=2m"));
	it_mount_default("direct_io,host_cache=64M", false);
}

static void enospc_reaches_the_writer(void)
{
	char buf[64 * 1024];
	int fd, err = 0;
	ssize_t n = 0;

	mount_small_backing();
	IT_REQUIRE_OK(it_put_str(MNT("other"), "intact"));
	memset(buf, 'x', sizeof(buf));
	fd = IT_REQUIRE_OK(open(MNT("fill"), O_CREAT | O_WRONLY, 0644));
	for (int i = 0; i < 128 && n >= 0; i++) {	/* 8 MiB into 2 MiB */
		n = write(fd, buf, sizeof(buf));
		if (n < 0)
			err = errno;
	}
	if (!err && fsync(fd) < 0)
		err = errno;
	if (close(fd) < 0 && !err)
		err = errno;
	IT_TRUE(err == ENOSPC, "the writer should see ENOSPC from write, fsync "
		"or close; saw %s", err ? it_errname(err) : "no error");
	IT_CONTENT_STR(MNT("other"), "intact");
	IT_CONTENT_STR(BACK("other"), "intact");
	IT_OK(unlink(MNT("fill")));
	/*
	 * The space comes back when the kernel forgets the unlinked inode
	 * and hmmfs closes its backing file; that FORGET is asynchronous.
	 */
	for (int i = 0; i < 100 && it_put_str(MNT("after"), "room again") < 0; i++)
		nanosleep(&(struct timespec){ .tv_nsec = 50000000 }, NULL);
	IT_CONTENT_BOTH_STR("after", "room again");
	it_test_cleanup();	/* unmount hmmfs before the tmpfs under it */
	umount2(it.backing, MNT_DETACH);	/* if the cleanup left it */
}

static void outside_change_seen_after_reopen(void)
{
	struct timespec later[2];
	struct stat st;

	IT_REQUIRE_OK(it_put_str(MNT("ext"), "through hmmfs"));
	IT_CONTENT_STR(MNT("ext"), "through hmmfs");	/* now cached */
	IT_REQUIRE_OK(it_put_str(BACK("ext"), "changed below"));
	IT_REQUIRE_OK(stat(BACK("ext"), &st));
	later[0] = st.st_atim;
	later[1] = (struct timespec){ st.st_mtim.tv_sec + 2, 0 };
	IT_OK(utimensat(AT_FDCWD, BACK("ext"), later, 0));
	IT_CONTENT_STR(MNT("ext"), "changed below");
}

/*
 * A file grown and rewritten in BACKING, its attributes asked for before
 * the next open (a stat, or attr_timeout running out: the kernel then
 * sends GETATTR first): that open must still see BACKING's size and
 * bytes.  Before the fix the GETATTR took the change and the open found
 * nothing to tell the kernel, which kept the old size and pages for
 * good (issue 23: 20 stale reads of 20 with a 2 s pause).
 */
static void outside_change_seen_after_getattr(void)
{
	char small[1000], big[3000], got[4000];
	struct stat st;
	int fd;

	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (char)(i * 7 + 1);
	memset(small, 's', sizeof(small));
	for (int round = 0; round < 3; round++) {
		IT_REQUIRE_OK(it_put(BACK("grow"), small, sizeof(small)));
		fd = IT_REQUIRE_OK(open(MNT("grow"), O_RDONLY));
		IT_EQ(read(fd, got, sizeof(got)), (ssize_t)sizeof(small));	/* cached */
		close(fd);
		big[0] = (char)round;
		IT_REQUIRE_OK(it_put(BACK("grow"), big, sizeof(big)));
		/* the attribute cache runs out (attr_timeout, default 1 s) */
		nanosleep(&(struct timespec){ .tv_sec = 1, .tv_nsec = 200000000 }, NULL);
		IT_OK(stat(MNT("grow"), &st));	/* GETATTR, before the open */
		fd = IT_REQUIRE_OK(open(MNT("grow"), O_RDONLY));
		IT_OK(fstat(fd, &st));
		IT_EQ(st.st_size, (off_t)sizeof(big));
		IT_EQ(read(fd, got, sizeof(got)), (ssize_t)sizeof(big));
		IT_EQ(memcmp(got, big, sizeof(big)), 0);
		close(fd);
	}
}

static void stats_count_hits_and_misses(void)
{
	struct it_proc p;
	char buf[64 * 1024];
	long long hits, reads;
	int fd;

	IT_EQ(ctl(&p, "stats", it.mnt, "--json", NULL), 0);
	for (const char *const *k = (const char *const[]){
		     "host_pages", "dirty_pages", "writeback_pages", "hits",
		     "misses", "readahead_pages", "evictions", "writeback_bytes",
		     "backing_reads", "backing_writes", NULL }; *k; k++)
		IT_TRUE(json_num(p.out, *k) >= 0, "stats --json lacks \"%s\": %s",
			*k, p.out);
	IT_HAS(p.out, "\"io_engine\":\"");
	IT_REQUIRE_OK(it_put(BACK("data"), buf, sizeof(buf)));
	fd = IT_REQUIRE_OK(open(MNT("data"), O_RDONLY));
	IT_EQ(pread(fd, buf, sizeof(buf), 0), (ssize_t)sizeof(buf));
	hits = stat_of("hits");
	reads = stat_of("backing_reads");
	IT_EQ(pread(fd, buf, sizeof(buf), 0), (ssize_t)sizeof(buf));
	IT_EQ(stat_of("hits"), hits + 16);	/* 16 pages, all cached */
	IT_EQ(stat_of("backing_reads"), reads);
	close(fd);
	IT_EQ(ctl(&p, "stats", it.mnt, NULL, NULL), 0);
	IT_HAS(p.out, "hits");
}

static void sync_writes_back_an_open_file(void)
{
	struct it_proc p;
	struct holder h;

	holder_start(&h, "s", 8192, 4);
	IT_TRUE(stat_of("dirty_pages") >= 2, "two pages should be dirty");
	IT_EQ(ctl(&p, "sync", MNT("s"), NULL, NULL), 0);
	IT_EQ(stat_of("dirty_pages"), 0);
	IT_EQ(it_file_check(BACK("s"), 0, 8192, 4), -1);	/* still open */
	holder_stop(&h);
	holder_start(&h, "t", 4096, 5);
	IT_EQ(ctl(&p, "sync", it.mnt, NULL, NULL), 0);	/* everything */
	IT_EQ(stat_of("dirty_pages"), 0);
	IT_EQ(it_file_check(BACK("t"), 0, 4096, 5), -1);
	holder_stop(&h);
	IT_TRUE(ctl(&p, "sync", it_path(it.outside, "nope"), NULL, NULL) == 1,
		"sync of a missing path should fail with 1");
}

static void no_cache_says_so(void)
{
	struct it_proc p;

	IT_EQ(ctl(&p, "stats", it.mnt, "--json", NULL), 0);
	IT_HAS(p.out, "\"cache\":false");
	IT_REQUIRE_OK(it_put_str(MNT("plain"), "passthrough"));
	IT_CONTENT_BOTH_STR("plain", "passthrough");
}

static void page_size_64k_round_trip(void)
{
	int fd = IT_REQUIRE_OK(open(MNT("big"), O_CREAT | O_RDWR, 0644));

	IT_OK(it_pwrite_pattern(fd, 1000, 3 * MiB, 33333, 3));
	IT_EQ(it_pread_check(fd, 1000, 3 * MiB, 65536, 3), -1);
	IT_OK(close(fd));
	IT_EQ(it_file_check(BACK("big"), 1000, 3 * MiB, 3), -1);
	IT_EQ(stat_of("page_size"), 65536);
}

/* Write @len bytes of @byte at @off of @path: open, pwrite, close. */
static void poke(const char *path, off_t off, size_t len, char byte)
{
	char buf[256];
	int fd = IT_REQUIRE_OK(open(path, O_WRONLY));

	IT_REQUIRE(len <= sizeof(buf), "poke: %zu bytes", len);
	memset(buf, byte, len);
	IT_EQ(pwrite(fd, buf, len, off), (ssize_t)len);
	IT_OK(close(fd));
}

/*
 * Two writers of one page: the mount dirties [0, 100) (and, with @far,
 * [@far, @far + 100) later) while someone else writes [200, 300) of the
 * same page, directly in BACKING or (@mount2) through a second hmmfs
 * mount of it, and closes first.  When the mount's writer closes, BACKING
 * must hold every writer's bytes: the mount writes back only what it
 * dirtied, not the whole page it read before the other write.  With
 * @device the page is on the device when the second range is written
 * (through a bounce buffer), so the first range goes to BACKING from there.
 */
static void two_writers_one_page(bool mount2, size_t far, bool device)
{
	size_t ps = (size_t)stat_of("page_size"), len = 2 * ps;
	char *want = malloc(len), *got = malloc(len);
	const char *other = BACK("sp");
	struct it_mount m2;
	char err[512];
	int fd;

	IT_REQUIRE(want && got, "out of memory");
	IT_REQUIRE(far + 100 <= ps, "far %zu is past the page", far);
	memset(want, 'a', len);
	IT_REQUIRE_OK(it_put(BACK("sp"), want, len));
	if (mount2) {
		IT_REQUIRE_OK(mkdir(it_path(it.outside, "mnt2"), 0755));
		IT_REQUIRE(it_mount_start(&m2, it.backing, it_path(it.outside, "mnt2"),
					  "direct_io", false, err, sizeof(err)) == 0,
			   "second mount: %s", err);
		other = it_path(it.outside, "mnt2/sp");
	}
	fd = IT_REQUIRE_OK(open(MNT("sp"), O_RDWR));
	memset(got, 'M', 100);
	IT_EQ(pwrite(fd, got, 100, 0), 100);	/* reads the page, dirties 0-99 */
	if (device) {
		uint64_t moved = 0;

		IT_REQUIRE_OK(it_migrate(fd, HMMFS_TO_DEVICE, 0, 0, &moved));
		IT_REQUIRE(moved == 2, "%llu pages moved to the device, want 2",
			   (unsigned long long)moved);
	}
	poke(other, 200, 100, 'X');
	memset(want, 'M', 100);
	memset(want + 200, 'X', 100);
	if (far) {	/* a second range, apart from the first */
		memset(got, 'N', 100);
		IT_EQ(pwrite(fd, got, 100, (off_t)far), 100);
		memset(want + far, 'N', 100);
	}
	IT_OK(close(fd));
	IT_EQ(it_get(BACK("sp"), got, len), (ssize_t)len);
	for (size_t i = 0; i < len; i++)
		if (got[i] != want[i]) {
			IT_TRUE(false, "BACKING byte %zu is '%c', want '%c'", i,
				got[i], want[i]);
			break;
		}
	if (mount2) {
		int status;

		IT_OK(it_mount_stop(&m2, &status));
	}
	free(want);
	free(got);
}

static void sub_page_write_keeps_backing_change(void)
{
	two_writers_one_page(false, 0, false);
}

static void disjoint_sub_page_writes_keep_backing_change(void)
{
	two_writers_one_page(false, 500, false);
}

static void sub_page_write_keeps_other_mount_change(void)
{
	two_writers_one_page(true, 500, false);
}

static void sub_page_writes_64k_keep_backing_change(void)
{
	two_writers_one_page(false, 60000, false);
}

static void sub_page_writes_on_device_keep_backing_change(void)
{
	two_writers_one_page(false, 500, true);
}

/* ---- cache lifetime: the kernel forgets, the cache keeps ------------ */

#define LIFE_LEN (4 * MiB)

/*
 * Pages moved to the device stay there when the kernel forgets the file:
 * residency is the same afterwards, and reading it all back is served
 * from the cache (no backing read).
 */
static void device_pages_survive_forget(void)
{
	struct hmmfs_ioc_residency *r;
	long long reads;
	uint64_t moved, dev_pages;
	int fd;

	IT_REQUIRE_OK(it_put(BACK("f"), NULL, 0));
	fd = IT_REQUIRE_OK(open(BACK("f"), O_WRONLY));
	IT_REQUIRE_OK(it_pwrite_pattern(fd, 0, LIFE_LEN, MiB, 41));
	close(fd);
	fd = IT_REQUIRE_OK(open(MNT("f"), O_RDONLY));
	IT_EQ(it_pread_check(fd, 0, LIFE_LEN, MiB, 41), -1);
	IT_OK(it_migrate(fd, HMMFS_TO_DEVICE, 0, LIFE_LEN, &moved));
	r = it_residency(fd);
	dev_pages = r->device;
	IT_TRUE(dev_pages == moved && moved > 0, "%llu pages moved, %llu on the "
		"device", (unsigned long long)moved, (unsigned long long)dev_pages);
	close(fd);

	it_kernel_forgets(1);
	IT_EQ(it_stats()->device_pages, dev_pages);
	reads = (long long)it_stats()->backing_reads;
	fd = IT_REQUIRE_OK(open(MNT("f"), O_RDONLY));
	IT_EQ(it_residency(fd)->device, dev_pages);
	IT_EQ(it_pread_check(fd, 0, LIFE_LEN, MiB, 41), -1);
	IT_EQ((long long)it_stats()->backing_reads, reads);
	IT_EQ(it_stats()->files_detached, 0);
	close(fd);
}

/* Host pages too: a re-read after the kernel forgot reads nothing. */
static void host_pages_survive_forget(void)
{
	long long reads;
	char name[32];

	for (int i = 0; i < 20; i++) {
		snprintf(name, sizeof(name), "f%d", i);
		IT_REQUIRE_OK(it_put_str(BACK(name), name));
		IT_CONTENT_STR(MNT(name), name);
	}
	it_kernel_forgets(20);
	IT_EQ(it_stats()->files_cached, 20);
	reads = (long long)it_stats()->backing_reads;
	for (int i = 0; i < 20; i++) {
		snprintf(name, sizeof(name), "f%d", i);
		IT_CONTENT_STR(MNT(name), name);
	}
	IT_EQ((long long)it_stats()->backing_reads, reads);
}

/*
 * A file changed in BACKING while the cache held it detached: the next
 * lookup drops the old pages, and reads show the new bytes.
 */
static void change_while_detached_is_seen(void)
{
	struct timespec later[2] = { { .tv_nsec = UTIME_OMIT },
				     { .tv_sec = 1700000000 } };

	IT_REQUIRE_OK(it_put_str(BACK("f"), "old contents"));
	IT_CONTENT_STR(MNT("f"), "old contents");
	it_kernel_forgets(1);
	/* the same size: only mtime tells */
	IT_REQUIRE_OK(it_put_str(BACK("f"), "new contents"));
	IT_REQUIRE_OK(utimensat(AT_FDCWD, BACK("f"), later, 0));
	IT_CONTENT_STR(MNT("f"), "new contents");
}

/*
 * An inode number BACKING gives again to a new file (after the old one
 * was removed behind the mount while its pages sat detached) never shows
 * the old file's pages, even with the same size and mtime: the file
 * handle's generation tells them apart.
 */
static void reused_inode_number_never_shows_old_data(void)
{
	struct stat old;
	char name[32];

	IT_REQUIRE_OK(it_put_str(BACK("victim"), "OLD DATA"));
	IT_CONTENT_STR(MNT("victim"), "OLD DATA");
	IT_REQUIRE_OK(stat(BACK("victim"), &old));
	it_kernel_forgets(1);
	IT_REQUIRE_OK(unlink(BACK("victim")));
	if (it_backing_reuse(&old, "NEW DATA", name))
		IT_CONTENT_STR(MNT(name), "NEW DATA");
}

/*
 * Renamed in BACKING by someone else while detached, otherwise unchanged:
 * the cache is kept (the same object, the same size and mtime).
 */
static void rename_in_backing_keeps_the_cache(void)
{
	long long reads;

	IT_REQUIRE_OK(it_put_str(BACK("before"), "renamed behind the mount"));
	IT_CONTENT_STR(MNT("before"), "renamed behind the mount");
	it_kernel_forgets(1);
	IT_REQUIRE_OK(rename(BACK("before"), BACK("after")));
	reads = (long long)it_stats()->backing_reads;
	IT_CONTENT_STR(MNT("after"), "renamed behind the mount");
	IT_EQ((long long)it_stats()->backing_reads, reads);
	IT_EQ(it_stats()->files_cached, 1);
}

union it_handle {
	struct file_handle fh;
	char space[sizeof(struct file_handle) + MAX_HANDLE_SZ];
};

static void handle_of(const char *path, union it_handle *h)
{
	int mnt_id;

	h->fh.handle_bytes = MAX_HANDLE_SZ;
	IT_REQUIRE_OK(name_to_handle_at(AT_FDCWD, path, &h->fh, &mnt_id, 0));
}

/* open_by_handle_at() on the mount: the descriptor, or -errno. */
static int open_handle(union it_handle *h, int flags)
{
	int mfd = open(it.mnt, O_RDONLY | O_DIRECTORY | O_CLOEXEC), fd;

	IT_REQUIRE(mfd >= 0, "open %s: %s", it.mnt, it_errname(errno));
	fd = open_by_handle_at(mfd, &h->fh, flags | O_CLOEXEC);
	if (fd < 0)
		fd = -errno;
	close(mfd);
	return fd;
}

/*
 * File handles of the mount outlive the kernel's inodes (fs/inode.h,
 * "Dormant inodes"): after the kernel forgot them, open_by_handle_at()
 * opens a file (its data intact) and its directory; the handle of a file
 * removed through the mount or in BACKING is stale, also once BACKING gave
 * its inode number to a new file.
 */
static void file_handles_survive_forget(void)
{
	static struct hmmfs_ioc_ops before, after;
	union it_handle f, d, m, b;
	struct stat old, st;
	char name[32], buf[32] = "";
	int fd;

	IT_OK(mkdir(MNT("hd"), 0755));
	IT_REQUIRE_OK(it_put_str(MNT("hd/f"), "kept by handle"));
	IT_REQUIRE_OK(it_put_str(MNT("hd/m"), "removed through the mount"));
	IT_REQUIRE_OK(it_put_str(MNT("hd/b"), "removed in BACKING"));
	handle_of(MNT("hd/f"), &f);
	handle_of(MNT("hd"), &d);
	handle_of(MNT("hd/m"), &m);
	handle_of(MNT("hd/b"), &b);
	IT_REQUIRE_OK(stat(BACK("hd/b"), &old));
	IT_OK(unlink(MNT("hd/m")));
	it_kernel_forgets(2);	/* f and b, which had cache state */
	IT_REQUIRE_OK(unlink(BACK("hd/b")));

	it_ops(&before);
	fd = open_handle(&f, O_RDONLY);
	it_ops(&after);
	IT_REQUIRE(fd >= 0, "open_by_handle_at(hd/f): %s", it_errname(-fd));
	/* the kernel forgot f: it asked the daemon (a lookup of ".") */
	IT_TRUE(after.op[FUSE_LOOKUP].count > before.op[FUSE_LOOKUP].count,
		"no LOOKUP reached the daemon for hd/f's handle");
	IT_EQ(pread(fd, buf, sizeof(buf) - 1, 0), 14);
	IT_STR_EQ(buf, "kept by handle");
	close(fd);
	fd = open_handle(&d, O_RDONLY | O_DIRECTORY);
	IT_REQUIRE(fd >= 0, "open_by_handle_at(hd): %s", it_errname(-fd));
	IT_OK(fstat(fd, &st));
	IT_TRUE(S_ISDIR(st.st_mode), "hd's handle opened mode %o", st.st_mode);
	close(fd);
	/* the kernel opens what it still holds: wait until it forgot m too */
	for (int i = 0; i < 50 && (fd = open_handle(&m, O_RDONLY)) >= 0; i++) {
		close(fd);
		IT_REQUIRE_OK(it_put_str("/proc/sys/vm/drop_caches", "2"));
		usleep(100 * 1000);
	}
	IT_EQ(fd, -ESTALE);
	IT_EQ(open_handle(&b, O_RDONLY), -ESTALE);
	if (it_backing_reuse(&old, "NEW DATA", name)) {
		IT_CONTENT_STR(MNT(name), "NEW DATA");
		IT_EQ(open_handle(&b, O_RDONLY), -ESTALE);
	}
}

static void mount_over(const char *backing)
{
	char err[2048];

	IT_REQUIRE(it_mount_start(&it.mount, backing, it.mnt, "direct_io", false,
				  err, sizeof(err)) == 0, "mount hmmfs: %s", err);
}

/*
 * With BACKING the root of its file system (a tmpfs here), node ids are
 * persistent (fs/inode.h, "Node ids"): handles taken before an unmount
 * open the same file and directory through the next mount, and the
 * handle of a file removed in between is stale.
 */
static void file_handles_survive_remount(void)
{
	const char *fsroot = it_path(it.root, "fsroot");
	union it_handle f, d, gone;
	char buf[32] = "";
	int status, fd;

	IT_REQUIRE_OK(mkdir(fsroot, 0755));
	IT_REQUIRE_OK(mount("hmmfs-it", fsroot, "tmpfs", 0, "size=16m"));
	mount_over(fsroot);
	IT_OK(mkdir(MNT("d"), 0755));
	IT_REQUIRE_OK(it_put_str(MNT("d/f"), "across a remount"));
	IT_REQUIRE_OK(it_put_str(MNT("d/gone"), "removed meanwhile"));
	handle_of(MNT("d/f"), &f);
	handle_of(MNT("d"), &d);
	handle_of(MNT("d/gone"), &gone);
	IT_OK(it_mount_stop(&it.mount, &status));
	IT_OK(unlink(it_path(fsroot, "d/gone")));

	mount_over(fsroot);
	fd = open_handle(&f, O_RDONLY);
	IT_REQUIRE(fd >= 0, "open_by_handle_at(d/f): %s", it_errname(-fd));
	IT_EQ(pread(fd, buf, sizeof(buf) - 1, 0), 16);
	IT_STR_EQ(buf, "across a remount");
	close(fd);
	fd = open_handle(&d, O_RDONLY | O_DIRECTORY);
	IT_REQUIRE(fd >= 0, "open_by_handle_at(d): %s", it_errname(-fd));
	close(fd);
	IT_EQ(open_handle(&gone, O_RDONLY), -ESTALE);
	IT_OK(it_mount_stop(&it.mount, &status));
	IT_OK(umount2(fsroot, 0));
}

/*
 * The last byte a file can have (offset 2^63 - 2 of a 2^63 - 1 byte file,
 * which tmpfs allows): read through the cache, cold, it is there.  The
 * page holding it ends past the largest offset, which the kernel refuses
 * in a read of BACKING (xfstests generic/525).
 */
static void last_possible_byte_reads_back(void)
{
	const char *fsroot = it_path(it.root, "bigfs");
	const off_t at = INT64_MAX - 1;
	char c = 0;
	int fd;

	IT_REQUIRE_OK(mkdir(fsroot, 0755));
	IT_REQUIRE_OK(mount("hmmfs-it", fsroot, "tmpfs", 0, "size=16m"));
	fd = IT_REQUIRE_OK(open(it_path(fsroot, "big"), O_CREAT | O_WRONLY, 0644));
	IT_REQUIRE_EQ(pwrite(fd, "a", 1, at), 1);
	close(fd);
	mount_over(fsroot);
	fd = IT_REQUIRE_OK(open(MNT("big"), O_RDONLY));
	IT_EQ(pread(fd, &c, 1, at), 1);
	IT_EQ(c, 'a');
	close(fd);
	IT_TRUE(it_stats()->backing_reads > 0, "read without the cache");
	IT_OK(it_mount_stop(&it.mount, &fd));
	IT_OK(umount2(fsroot, 0));
}

/*
 * Over a FUSE BACKING (hmmfs itself here), a cold read is cut into 32 KiB
 * backing reads that the engine runs at once (cache/lifetime.c,
 * read_run_for()): 1 MiB read through the outer mount costs at least 32
 * backing reads there, and reads back right.
 */
static void fuse_backing_read_in_pieces(void)
{
	const char *lower = it_path(it.root, "lower"), *mid = it_path(it.root, "mid");
	struct it_mount inner = { 0 };
	char err[2048];
	uint64_t reads;
	int fd, status;

	IT_REQUIRE_OK(mkdir(lower, 0755));
	IT_REQUIRE_OK(mkdir(mid, 0755));
	fd = IT_REQUIRE_OK(open(it_path(lower, "f"), O_CREAT | O_WRONLY, 0644));
	IT_REQUIRE_OK(it_pwrite_pattern(fd, 0, MiB, MiB / 16, 31));
	close(fd);
	IT_REQUIRE(it_mount_start(&inner, lower, mid, "direct_io", false, err,
				  sizeof(err)) == 0, "inner mount: %s", err);
	mount_over(mid);
	reads = it_stats()->backing_reads;
	IT_EQ(it_file_check(MNT("f"), 0, MiB, 31), -1);
	IT_TRUE(it_stats()->backing_reads - reads >= 32,
		"%llu backing reads for 1 MiB, want 32 or more",
		(unsigned long long)(it_stats()->backing_reads - reads));
	IT_OK(it_mount_stop(&it.mount, &status));
	IT_OK(it_mount_stop(&inner, &status));
}

/*
 * File handles under pressure: 4 workers create, rewrite, rename and
 * unlink their own files and reopen them by the handles they took, while
 * the kernel drops its inodes every 50 ms.  A handle opens its own file
 * (its worker's contents) or gives ESTALE, never another file (BACKING
 * reuses inode numbers quickly) and never another error; the daemon lives.
 */
#define HS_WORKERS	4
#define HS_HANDLES	16

struct hs_result {
	int id;
	long opened, stale, other, wrong;
};

static _Atomic int hs_stop;

static void *hs_dropper(void *arg)
{
	(void)arg;
	while (!atomic_load(&hs_stop)) {
		it_put_str("/proc/sys/vm/drop_caches", "2");
		usleep(50 * 1000);
	}
	return NULL;
}

/* (Re)write @path with this worker's mark; its handle into @h. */
static void hs_take(const char *path, int id, unsigned int *seed, union it_handle *h,
		    int *nh)
{
	int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644), mnt_id;
	char tag[32];
	bool ok;

	if (fd < 0)
		return;
	snprintf(tag, sizeof(tag), "w%d-%u", id, rand_r(seed));
	ok = write(fd, tag, strlen(tag) + 1) > 0;
	close(fd);
	h->fh.handle_bytes = MAX_HANDLE_SZ;
	if (ok && name_to_handle_at(AT_FDCWD, path, &h->fh, &mnt_id, 0) == 0)
		(*nh)++;
}

static void hs_reopen(union it_handle *h, int id, struct hs_result *r, bool *drop)
{
	char buf[32] = "", mine[8];
	int fd = open_handle(h, O_RDONLY);

	*drop = fd < 0;
	if (fd == -ESTALE) {
		r->stale++;
		return;
	}
	if (fd < 0) {
		r->other++;
		return;
	}
	if (pread(fd, buf, sizeof(buf) - 1, 0) < 0)
		r->other++;
	close(fd);
	r->opened++;
	snprintf(mine, sizeof(mine), "w%d-", id);
	if (buf[0] && strncmp(buf, mine, strlen(mine)) != 0)
		r->wrong++;	/* another worker's file */
}

static void *hs_worker(void *arg)
{
	struct hs_result *r = arg;
	int id = r->id, nh = 0;
	union it_handle h[HS_HANDLES];
	char path[PATH_MAX + 32], to[PATH_MAX + 32];
	unsigned int seed = (unsigned int)id * 7919u + 1;

	while (!atomic_load(&hs_stop)) {
		int k = rand_r(&seed) % 8, op = rand_r(&seed) % 5;
		bool drop;

		snprintf(path, sizeof(path), "%s/w%d_%d", it.mnt, id, k);
		if (op == 0 && nh < HS_HANDLES) {
			hs_take(path, id, &seed, &h[nh], &nh);
		} else if (op == 1) {
			unlink(path);
		} else if (op == 2) {
			snprintf(to, sizeof(to), "%s/w%d_%d", it.mnt, id, rand_r(&seed) % 8);
			rename(path, to);
		} else if (nh) {
			int i = rand_r(&seed) % nh;

			hs_reopen(&h[i], id, r, &drop);
			if (drop)
				h[i] = h[--nh];
		}
	}
	return NULL;
}

static void file_handles_under_pressure(void)
{
	struct hs_result r[HS_WORKERS] = { 0 };
	pthread_t t[HS_WORKERS], dropper;
	long opened = 0, stale = 0;

	atomic_store(&hs_stop, 0);
	IT_REQUIRE_OK(pthread_create(&dropper, NULL, hs_dropper, NULL));
	for (int i = 0; i < HS_WORKERS; i++) {
		r[i].id = i;
		IT_REQUIRE_OK(pthread_create(&t[i], NULL, hs_worker, &r[i]));
	}
	sleep(5);
	atomic_store(&hs_stop, 1);
	for (int i = 0; i < HS_WORKERS; i++)
		pthread_join(t[i], NULL);
	pthread_join(dropper, NULL);
	for (int i = 0; i < HS_WORKERS; i++) {
		IT_EQ(r[i].wrong, 0);
		IT_EQ(r[i].other, 0);
		opened += r[i].opened;
		stale += r[i].stale;
	}
	printf("  (%ld opened by handle, %ld stale) ", opened, stale);
	IT_TRUE(opened > 100, "only %ld handles opened", opened);
	IT_REQUIRE_OK(it_put_str(MNT("alive"), "yes"));	/* the daemon serves */
	IT_CONTENT_STR(MNT("alive"), "yes");
}

/* Unlinked through the mount and forgotten: nothing of it stays cached. */
static void unlinked_file_leaves_the_cache(void)
{
	IT_REQUIRE_OK(it_put_str(MNT("gone"), "soon gone"));
	IT_CONTENT_STR(MNT("gone"), "soon gone");
	IT_OK(unlink(MNT("gone")));
	/* its pages are freed after an RCU grace period, the file at once */
	for (int i = 0; i < 200 && (it_stats()->files_cached || it_stats()->host_pages);
	     i++) {
		IT_REQUIRE_OK(it_put_str("/proc/sys/vm/drop_caches", "2"));
		usleep(100 * 1000);
	}
	IT_EQ(it_stats()->files_cached, 0);
	IT_EQ(it_stats()->host_pages, 0);
}

/*
 * Each request the daemon serves is counted under its opcode, timed, and
 * its failure counted: a mkdir, a create, a failed lookup, an unlink and
 * an rmdir move exactly those counters, every histogram adds up to its
 * timed count, and hmmfsctl stats prints them (text and JSON).
 */
static void stats_count_fuse_requests(void)
{
	static struct hmmfs_ioc_ops before, after;
	static const struct { unsigned int op; const char *name; } want[] = {
		{ FUSE_MKDIR, "mkdir" }, { FUSE_CREATE, "create" },
		{ FUSE_UNLINK, "unlink" }, { FUSE_RMDIR, "rmdir" },
	};
	char *const text[] = { (char *)it.hmmfsctl, "stats", it.mnt, NULL };
	char *const json[] = { (char *)it.hmmfsctl, "stats", it.mnt, "--json", NULL };
	struct it_proc p;
	struct stat st;
	int fd;

	it_ops(&before);
	IT_OK(mkdir(MNT("opsd"), 0755));
	fd = open(MNT("opsd/f"), O_CREAT | O_EXCL | O_WRONLY, 0644);
	IT_REQUIRE(fd >= 0, "create: %s", it_errname(errno));
	close(fd);
	IT_ERRNO(stat(MNT("opsd/none"), &st), ENOENT);
	IT_OK(unlink(MNT("opsd/f")));
	IT_OK(rmdir(MNT("opsd")));
	it_ops(&after);
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		const struct hmmfs_ioc_op *a = &after.op[want[i].op], *b = &before.op[want[i].op];

		IT_TRUE(a->count == b->count + 1 && a->timed == b->timed + 1,
			"%s: count %llu -> %llu, timed %llu -> %llu", want[i].name,
			(unsigned long long)b->count, (unsigned long long)a->count,
			(unsigned long long)b->timed, (unsigned long long)a->timed);
		IT_EQ(a->errors, b->errors);
		IT_TRUE(a->total_ns > b->total_ns, "%s: no time counted", want[i].name);
	}
	IT_TRUE(after.op[FUSE_LOOKUP].errors > before.op[FUSE_LOOKUP].errors,
		"the failed lookup is not counted as an error");
	for (unsigned int i = 0; i < HMMFS_OPS_MAX; i++) {
		uint64_t sum = 0;

		for (unsigned int k = 0; k < HMMFS_OPS_BUCKETS; k++)
			sum += after.op[i].hist[k];
		IT_TRUE(sum <= after.op[i].timed && after.op[i].timed <= after.op[i].count,
			"opcode %u: histogram %llu, timed %llu, count %llu", i,
			(unsigned long long)sum, (unsigned long long)after.op[i].timed,
			(unsigned long long)after.op[i].count);
	}
	IT_OK(it_spawn(text, NULL, 5000, &p));
	IT_TRUE(WIFEXITED(p.status) && WEXITSTATUS(p.status) == 0, "hmmfsctl stats: 0x%x",
		(unsigned int)p.status);
	IT_HAS(p.out, "p99_us");
	IT_HAS(p.out, "\nrmdir ");
	IT_OK(it_spawn(json, NULL, 5000, &p));
	IT_HAS(p.out, "\"ops\":{");
	IT_HAS(p.out, "\"unlink\":{\"count\":");
}

static const struct it_test tests[] = {
	{ "stats count FUSE requests", stats_count_fuse_requests, 0, NULL },
	{ "fsync'd data survives SIGKILL", fsynced_data_survives_sigkill, 0, NULL },
	{ "SIGTERM writes back an open dirty file",
	  sigterm_flushes_open_dirty_file, 0, NULL },
	{ "close writes back", close_writes_back, 0, NULL },
	{ "ENOSPC reaches the writer", enospc_reaches_the_writer, IT_NO_MOUNT, NULL },
	/* the kernel caches the file: with and without the writeback cache */
	{ "outside change seen after a getattr, at the next open",
	  outside_change_seen_after_getattr, 0, "attr_timeout=1" },
	{ "outside change seen after a getattr, no writeback cache",
	  outside_change_seen_after_getattr, 0, "attr_timeout=1,nowriteback_cache" },
	{ "outside change seen after reopen", outside_change_seen_after_reopen,
	  0, NULL },
	{ "stats count hits and misses", stats_count_hits_and_misses, 0, NULL },
	{ "sync writes back an open file", sync_writes_back_an_open_file, 0, NULL },
	{ "host_cache=0 is a plain passthrough", no_cache_says_so, 0,
	  "direct_io,host_cache=0" },
	{ "64 KiB pages", page_size_64k_round_trip, 0, "direct_io,page_size=64K" },
	{ "sub-page write keeps a BACKING change", sub_page_write_keeps_backing_change,
	  0, NULL },
	{ "disjoint sub-page writes keep a BACKING change",
	  disjoint_sub_page_writes_keep_backing_change, 0, NULL },
	{ "sub-page write keeps another mount's change",
	  sub_page_write_keeps_other_mount_change, 0, NULL },
	{ "64 KiB pages: sub-page writes keep a BACKING change",
	  sub_page_writes_64k_keep_backing_change, 0, "direct_io,page_size=64K" },
	{ "device page: sub-page writes keep a BACKING change",
	  sub_page_writes_on_device_keep_backing_change, 0,
	  "direct_io,device=hostsim,migrate=bounce" },
	{ "a refused truncate keeps the size", refused_truncate_keeps_size, 0,
	  NULL },
	{ "device pages survive the kernel forgetting the file",
	  device_pages_survive_forget, 0, "direct_io,device=hostsim" },
	{ "host pages survive the kernel forgetting files",
	  host_pages_survive_forget, 0, NULL },
	{ "a change in BACKING while detached is seen",
	  change_while_detached_is_seen, 0, NULL },
	{ "a reused inode number never shows old data",
	  reused_inode_number_never_shows_old_data, 0, NULL },
	{ "a rename in BACKING keeps the cache", rename_in_backing_keeps_the_cache,
	  0, NULL },
	{ "an unlinked file leaves the cache", unlinked_file_leaves_the_cache,
	  0, NULL },
	{ "file handles survive the kernel forgetting", file_handles_survive_forget,
	  0, NULL },
	{ "file handles survive a remount", file_handles_survive_remount,
	  IT_NO_MOUNT, NULL },
	{ "the last byte a file can have reads back", last_possible_byte_reads_back,
	  IT_NO_MOUNT, NULL },
	{ "a FUSE BACKING is read in pieces", fuse_backing_read_in_pieces,
	  IT_NO_MOUNT, NULL },
	{ "file handles under drop_caches, renames and unlinks",
	  file_handles_under_pressure, 0, NULL },
	{ NULL, NULL, 0, NULL },
};

const struct it_suite it_suite_cache = { "cache", "direct_io", 0, tests };
