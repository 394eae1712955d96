/* SPDX-License-Identifier: MIT */
/*
 * tests/integration/test_faults.c — injected faults through real mounts.
 *
 * Every test mounts with HMMFS_FAULT_FILE pointing at a rules file in the
 * test's tree (fault/fault.h), empty at first; faults_set() replaces it and
 * waits for the daemon to see it, so a fault can be cleared without a
 * remount.  What the tests show:
 *
 *  - backing write EIO or ENOSPC on one file reaches fsync and close; the
 *    daemon keeps serving other files (written and fsync'd meanwhile); the
 *    failed file's data stays readable and dirty, and once the fault is
 *    cleared fsync succeeds and BACKING has the bytes;
 *  - short writes from the engine are finished (uring and psync), so
 *    BACKING gets every byte;
 *  - backing read EIO reaches read(), other files read fine, and the same
 *    read succeeds once cleared;
 *  - device frame allocation failing: migrate reports ENOSPC or ENOMEM,
 *    nothing moved, data readable; after clearing, it moves;
 *  - device copies failing: migrate to the device fails with EIO and the
 *    pages stay on the host; copies back failing: migrate to the host and
 *    fsync of dirty device pages fail with EIO, and after clearing fsync
 *    writes the bytes;
 *  - the device lost: its clean pages are read again from BACKING, so
 *    reads and writes go on (also the kernel's write-back of bytes written
 *    before the loss); its dirty pages fail fsync with EIO;
 *  - a write-back the cache takes only part of fails (fsync: EIO) and
 *    is logged, never answered with a short count;
 *  - slow backing I/O and a starved bounce pool: slower, still correct;
 *  - a bad HMMFS_FAULT stops the daemon at start with a message.
 *
 * The mounts use direct_io so every read and write reaches the daemon
 * (but those about the kernel's writeback cache).
 * Each test runs in a few seconds at most.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "include/hmmfs_ioctl.h"
#include "tests/integration/harness.h"

#define KiB 1024
#define MiB (1024 * 1024)

static char rules_path[PATH_MAX];

static void sleep_ms(int ms)
{
	nanosleep(&(struct timespec){ .tv_sec = ms / 1000,
		  .tv_nsec = (long)(ms % 1000) * 1000000 }, NULL);
}

/*
 * Replace the rules file (write aside, rename) and wait past the daemon's
 * 10 ms re-check interval, so the next backing I/O sees the new rules.
 */
static void faults_set(const char *spec)
{
	const char *tmp = it_path(it.root, "faults.new");

	IT_REQUIRE_OK(it_put_str(tmp, spec));
	IT_REQUIRE_OK(rename(tmp, rules_path));
	sleep_ms(30);
}

/* Mount with options @all and an empty rules file. */
static void fault_mount_with(const char *all)
{
	strcpy(rules_path, it_path(it.root, "faults"));
	IT_REQUIRE_OK(it_put_str(rules_path, ""));
	setenv("HMMFS_FAULT_FILE", rules_path, 1);
	it_mount_default(all, false);
	unsetenv("HMMFS_FAULT_FILE");
}

/* Mount with an empty rules file; the test turns faults on with faults_set(). */
static void fault_mount(const char *opts)
{
	char all[256];

	snprintf(all, sizeof(all), "direct_io%s%s", opts ? "," : "", opts ? opts : "");
	fault_mount_with(all);
}

static struct hmmfs_ioc_stats stats(void)
{
	struct hmmfs_ioc_stats st = { 0 };
	int fd = open(it.mnt, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	IT_REQUIRE(fd >= 0, "open %s: %s", it.mnt, it_errname(errno));
	IT_OK(ioctl(fd, HMMFS_IOC_STATS, &st));
	close(fd);
	return st;
}

/* Write and fsync "other" while the fault is on: the daemon still serves. */
static void other_file_works(uint32_t seed)
{
	int fd = IT_REQUIRE_OK(open(MNT("other"), O_CREAT | O_TRUNC | O_RDWR, 0644));

	IT_OK(it_pwrite_pattern(fd, 0, 256 * KiB, 64 * KiB, seed));
	IT_OK(fsync(fd));
	IT_OK(close(fd));
	IT_EQ(it_file_check(BACK("other"), 0, 256 * KiB, seed), -1);
	IT_EQ(it_file_check(MNT("other"), 0, 256 * KiB, seed), -1);
}

/*
 * A backing write error @err on "bad" only: fsync fails (twice: the pages
 * stay dirty), close of a second file fails, other files work, the data
 * stays readable; cleared, fsync succeeds and BACKING has the bytes.
 */
static void write_error_then_clear(const char *errname, int err)
{
	struct hmmfs_ioc_stats st;
	char spec[128];
	int fd, fd2;

	snprintf(spec, sizeof(spec), "backing_write:%s:name=/bad", errname);
	faults_set(spec);
	fd = IT_REQUIRE_OK(open(MNT("bad"), O_CREAT | O_RDWR, 0644));
	IT_OK(it_pwrite_pattern(fd, 0, 300 * KiB, 64 * KiB, 11));
	IT_ERRNO(fsync(fd), err);
	IT_ERRNO(fsync(fd), err);
	IT_TRUE(stats().dirty_pages >= 75, "dirty pages %llu, want >= 75",
		(unsigned long long)stats().dirty_pages);
	IT_EQ(it_pread_check(fd, 0, 300 * KiB, 100 * KiB, 11), -1);
	fd2 = IT_REQUIRE_OK(open(MNT("bad2"), O_CREAT | O_RDWR, 0644));
	IT_OK(it_pwrite_pattern(fd2, 0, 40 * KiB, 40 * KiB, 12));
	IT_ERRNO(close(fd2), err);
	other_file_works(13);
	IT_TRUE(it_log_count("fired") >= 1, "the daemon logs the fault: %s",
		it_log_tail(500));

	faults_set("");
	IT_OK(fsync(fd));
	/*
	 * bad2's, kept after its failed close; or written back already if
	 * the kernel forgot the file meanwhile (memory pressure, drop_caches
	 * by anyone on the machine): a FORGET writes dirty pages back.
	 */
	st = stats();
	IT_TRUE(st.dirty_pages == 10 || (st.dirty_pages == 0 &&
		it_file_check(BACK("bad2"), 0, 40 * KiB, 12) == -1),
		"dirty pages %llu, want 10 (or 0 and bad2 in BACKING)",
		(unsigned long long)st.dirty_pages);
	IT_EQ(it_file_check(BACK("bad"), 0, 300 * KiB, 11), -1);
	IT_OK(close(fd));
	/* bad2's pages stayed dirty after its failed close; fsync writes them */
	fd2 = open(MNT("bad2"), O_RDWR);
	if (fd2 < 0 && errno == err)	/* the FORGET's writeback failed too: */
		fd2 = open(MNT("bad2"), O_RDWR);	/* reported once, here */
	IT_REQUIRE(fd2 >= 0, "open bad2: %s", it_errname(errno));
	IT_OK(fsync(fd2));
	IT_OK(close(fd2));
	IT_EQ(stats().dirty_pages, 0);
	IT_EQ(it_file_check(BACK("bad2"), 0, 40 * KiB, 12), -1);
	IT_EQ(it_file_check(MNT("bad2"), 0, 40 * KiB, 12), -1);
}

/*
 * Dirty data whose writeback fails is kept when the kernel forgets the
 * file: the size the mount shows stays the cache's, the next open for
 * writing reports the error, the stats count it, and once BACKING works
 * again the flusher's retry brings the bytes there, with no fsync.
 */
static void dirty_data_kept_when_forgotten(void)
{
	struct hmmfs_ioc_stats st;
	struct stat sb;
	int fd;

	fault_mount("dirty_expire_ms=200");
	faults_set("backing_write:enospc:name=/bad");
	fd = IT_REQUIRE_OK(open(MNT("bad"), O_CREAT | O_RDWR, 0644));
	IT_OK(it_pwrite_pattern(fd, 0, 300 * KiB, 64 * KiB, 21));
	IT_ERRNO(close(fd), ENOSPC);
	it_kernel_forgets(1);
	st = stats();
	IT_TRUE(st.dirty_pages >= 75, "dirty pages %llu, want >= 75",
		(unsigned long long)st.dirty_pages);
	IT_TRUE(st.dirty_pages_stuck >= 75, "stuck pages %llu, want >= 75",
		(unsigned long long)st.dirty_pages_stuck);
	IT_TRUE(st.writeback_errors > 0, "no writeback error counted");
	IT_TRUE(it_log_count("stay dirty in the cache") >= 1,
		"the daemon logs the kept data: %s", it_log_tail(500));
	IT_OK(stat(MNT("bad"), &sb));
	IT_EQ(sb.st_size, 300 * KiB);
	IT_ERRNO(open(MNT("bad"), O_WRONLY), ENOSPC);	/* reported once */
	fd = IT_REQUIRE_OK(open(MNT("bad"), O_RDONLY));
	IT_EQ(it_pread_check(fd, 0, 300 * KiB, 100 * KiB, 21), -1);
	close(fd);

	faults_set("");
	/* a page stops counting as dirty when its write starts: wait for
	 * the writes to end (and the stuck count to go) too; the retries
	 * back off up to 30 s apart (writeback.c), so wait up to 60 s */
	for (int i = 0; i < 600; i++) {
		st = stats();
		if (!st.dirty_pages && !st.writeback_pages && !st.dirty_pages_stuck)
			break;
		sleep_ms(100);
	}
	IT_EQ(st.dirty_pages, 0);
	IT_EQ(st.writeback_pages, 0);
	IT_EQ(st.dirty_pages_stuck, 0);
	IT_EQ(it_file_check(BACK("bad"), 0, 300 * KiB, 21), -1);
	IT_OK(stat(BACK("bad"), &sb));
	IT_EQ(sb.st_size, 300 * KiB);
}

/*
 * Dirty data BACKING still refuses at unmount is the one case where it
 * is dropped: the daemon says which file and how many bytes, and exits 1.
 */
static void unwritable_data_at_unmount_is_reported(void)
{
	int fd, status;

	fault_mount(NULL);
	faults_set("backing_write:enospc:name=/bad");
	fd = IT_REQUIRE_OK(open(MNT("bad"), O_CREAT | O_RDWR, 0644));
	IT_OK(it_pwrite_pattern(fd, 0, 64 * KiB, 64 * KiB, 31));
	IT_ERRNO(close(fd), ENOSPC);
	IT_OK(it_mount_stop(&it.mount, &status));
	IT_TRUE(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 1,
		"daemon wait status 0x%x, want exit 1", (unsigned int)status);
	IT_TRUE(it_log_count("bad: writeback at unmount failed") == 1 &&
		it_log_count("65536 bytes of it are lost") == 1,
		"the daemon names the file and the bytes: %s", it_log_tail(800));
}

static void write_eio_then_clear(void)
{
	fault_mount(NULL);
	write_error_then_clear("eio", EIO);
}

static void write_enospc_then_clear(void)
{
	fault_mount(NULL);
	write_error_then_clear("enospc", ENOSPC);
}

/* Every other write fails (rate 0.5): retried fsyncs get everything out. */
static void write_errors_at_a_rate(void)
{
	int fd, fails = 0;

	fault_mount(NULL);
	faults_set("backing_write:eio:rate=0.5");
	fd = IT_REQUIRE_OK(open(MNT("f"), O_CREAT | O_RDWR, 0644));
	IT_OK(it_pwrite_pattern(fd, 0, 2 * MiB, 128 * KiB, 21));
	while (fsync(fd) < 0 && fails < 200) {
		IT_EQ(errno, EIO);
		fails++;
	}
	IT_TRUE(fails < 200, "fsync failed %d times in a row", fails);
	IT_EQ(it_file_check(BACK("f"), 0, 2 * MiB, 21), -1);
	IT_OK(close(fd));
	faults_set("");
}

/* The engine stops every write half way; io.c finishes them. */
static void short_writes_are_finished(void)
{
	uint64_t before;
	int fd;

	fault_mount(NULL);
	faults_set("backing_write:short");
	before = stats().backing_writes;
	fd = IT_REQUIRE_OK(open(MNT("f"), O_CREAT | O_RDWR, 0644));
	IT_OK(it_pwrite_pattern(fd, 123, 3 * MiB + 5, 100000, 31));
	IT_OK(fsync(fd));
	IT_OK(close(fd));
	IT_TRUE(stats().backing_writes > before, "no backing writes counted");
	IT_TRUE(it_log_count("'backing_write:short' fired") == 1, "log: %s",
		it_log_tail(500));
	faults_set("");
	IT_EQ(it_file_check(BACK("f"), 123, 3 * MiB + 5, 31), -1);
	IT_EQ(it_file_check(MNT("f"), 123, 3 * MiB + 5, 31), -1);
}

static void short_writes_psync(void)
{
	int fd;

	fault_mount("io_engine=psync");
	faults_set("backing_write:short");
	fd = IT_REQUIRE_OK(open(MNT("f"), O_CREAT | O_RDWR, 0644));
	IT_OK(it_pwrite_pattern(fd, 0, MiB + 4096 * 3, 65536, 32));
	IT_OK(close(fd));
	faults_set("");
	IT_EQ(it_file_check(BACK("f"), 0, MiB + 4096 * 3, 32), -1);
}

/* Write @len pattern bytes straight into BACKING. */
static void backing_file(const char *rel, size_t len, uint32_t seed)
{
	int fd = IT_REQUIRE_OK(open(BACK(rel), O_CREAT | O_TRUNC | O_WRONLY, 0644));

	IT_REQUIRE_OK(it_pwrite_pattern(fd, 0, len, MiB, seed));
	close(fd);
}

static void read_eio_then_clear(void)
{
	char buf[4096];
	int fd;

	fault_mount(NULL);
	backing_file("bad", MiB, 41);
	backing_file("good", MiB, 42);
	faults_set("backing_read:eio:name=/bad");
	fd = IT_REQUIRE_OK(open(MNT("bad"), O_RDONLY));
	IT_ERRNO(pread(fd, buf, sizeof(buf), 8192), EIO);
	IT_EQ(it_file_check(MNT("good"), 0, MiB, 42), -1);
	faults_set("");
	IT_EQ(it_pread_check(fd, 0, MiB, 64 * KiB, 41), -1);
	IT_OK(close(fd));
}

/* Device frames cannot be had: migrate says so, nothing moves. */
static void dev_alloc_failure(const char *errname, int err)
{
	char spec[64];
	uint64_t moved = 99;
	int fd;

	fault_mount("host_cache=16M");
	backing_file("f", MiB, 51);
	fd = IT_REQUIRE_OK(open(MNT("f"), O_RDONLY));
	IT_EQ(it_pread_check(fd, 0, MiB, 64 * KiB, 51), -1);
	snprintf(spec, sizeof(spec), "dev_alloc:%s", errname);
	faults_set(spec);
	IT_ERRNO(it_migrate(fd, HMMFS_TO_DEVICE, 0, 0, &moved), err);
	IT_EQ(it_residency(fd)->device, 0);
	IT_EQ(it_pread_check(fd, 0, MiB, 64 * KiB, 51), -1);
	faults_set("");
	IT_OK(it_migrate(fd, HMMFS_TO_DEVICE, 0, 0, &moved));
	IT_EQ(moved, 256);
	IT_EQ(it_residency(fd)->device, 256);
	IT_EQ(it_pread_check(fd, 0, MiB, 64 * KiB, 51), -1);
	IT_OK(close(fd));
}

static void dev_alloc_enospc(void)
{
	dev_alloc_failure("enospc", ENOSPC);
}

static void dev_alloc_enomem(void)
{
	dev_alloc_failure("enomem", ENOMEM);
}

/*
 * Copies to the device fail: migrate fails, the pages stay on the host.
 * Copies back fail: migrate to the host and the writeback of dirty device
 * pages fail; cleared, fsync writes them and BACKING has the bytes.
 */
static void dev_copy_failure(void)
{
	struct hmmfs_ioc_residency *r;
	uint64_t moved;
	int fd;

	fault_mount("host_cache=16M");
	backing_file("f", MiB, 61);
	fd = IT_REQUIRE_OK(open(MNT("f"), O_RDWR));
	IT_EQ(it_pread_check(fd, 0, MiB, 64 * KiB, 61), -1);
	faults_set("dev_copy:eio:dir=h2d");
	IT_ERRNO(it_migrate(fd, HMMFS_TO_DEVICE, 0, 0, NULL), EIO);
	r = it_residency(fd);
	IT_EQ(r->device, 0);
	IT_EQ(r->host, 256);
	IT_EQ(it_pread_check(fd, 0, MiB, 64 * KiB, 61), -1);

	faults_set("");
	IT_OK(it_migrate(fd, HMMFS_TO_DEVICE, 0, 0, &moved));
	IT_EQ(moved, 256);
	/* dirty the device pages (bounce writes go host to device) */
	IT_OK(it_pwrite_pattern(fd, 0, MiB, 64 * KiB, 62));
	faults_set("dev_copy:eio:dir=d2h");
	IT_ERRNO(it_migrate(fd, HMMFS_TO_HOST, 0, 0, NULL), EIO);
	IT_ERRNO(fsync(fd), EIO);
	r = it_residency(fd);
	IT_EQ(r->device, 256);
	IT_EQ(r->dirty, 256);
	faults_set("");
	IT_OK(fsync(fd));
	IT_EQ(it_file_check(BACK("f"), 0, MiB, 62), -1);
	IT_EQ(it_pread_check(fd, 0, MiB, 64 * KiB, 62), -1);
	IT_OK(it_migrate(fd, HMMFS_TO_HOST, 0, 0, &moved));
	IT_EQ(moved, 256);
	IT_OK(close(fd));
}

/*
 * The device lost (dev_lost: hostsim and opencl honour it): pages that
 * were clean on it are read again from BACKING, so moves home, reads and
 * writes of them go on and writes reach BACKING; pages dirty only on it
 * fail fsync with EIO (their bytes went with the device) until a truncate
 * drops them, while the file's other dirty pages are still written back;
 * other files are untouched.
 */
static void dev_lost_case(const char *opts)
{
	uint64_t moved;
	int fd, fd2, fd3;

	fault_mount(opts);
	backing_file("c", MiB, 71);
	backing_file("d", MiB, 72);
	backing_file("e", MiB, 76);
	fd = IT_REQUIRE_OK(open(MNT("c"), O_RDWR));
	fd2 = IT_REQUIRE_OK(open(MNT("d"), O_RDWR));
	fd3 = IT_REQUIRE_OK(open(MNT("e"), O_RDONLY));
	IT_OK(it_migrate(fd, HMMFS_TO_DEVICE, 0, 0, &moved));
	IT_EQ(moved, 256);
	IT_OK(it_migrate(fd2, HMMFS_TO_DEVICE, 0, 0, &moved));
	IT_EQ(moved, 256);
	IT_OK(it_migrate(fd3, HMMFS_TO_DEVICE, 0, 0, &moved));
	IT_EQ(moved, 256);
	IT_OK(it_pwrite_pattern(fd2, 0, MiB, 64 * KiB, 73));	/* dirty there */
	faults_set("dev_lost");
	/* first after the loss: a move home, which finds nothing to copy */
	IT_OK(it_migrate(fd3, HMMFS_TO_HOST, 0, 0, &moved));
	IT_EQ(it_residency(fd3)->device, 0);
	IT_EQ(it_pread_check(fd3, 0, MiB, 64 * KiB, 76), -1);
	IT_OK(close(fd3));
	IT_EQ(it_pread_check(fd, 0, MiB, 64 * KiB, 71), -1);
	IT_OK(it_pwrite_pattern(fd, 4000, 300 * KiB, 64 * KiB, 74));
	IT_OK(fsync(fd));
	IT_EQ(it_file_check(BACK("c"), 0, 4000, 71), -1);
	IT_EQ(it_file_check(BACK("c"), 4000, 300 * KiB, 74), -1);
	IT_EQ(it_file_check(BACK("c"), 4000 + 300 * KiB, MiB - 4000 - 300 * KiB, 71), -1);
	IT_EQ(it_residency(fd)->device, 0);
	IT_ERRNO(fsync(fd2), EIO);
	IT_ERRNO(pread(fd2, (char[16]){ 0 }, 16, 0), EIO);
	/* new bytes of that file still reach BACKING; only the lost stay */
	IT_OK(it_pwrite_pattern(fd2, MiB, 256 * KiB, 64 * KiB, 77));
	IT_ERRNO(fsync(fd2), EIO);
	IT_EQ(it_file_check(BACK("d"), MiB, 256 * KiB, 77), -1);
	IT_EQ(stats().dirty_pages, 256);
	other_file_works(75);
	IT_OK(ftruncate(fd2, 0));	/* the lost bytes go with it */
	IT_OK(fsync(fd2));
	IT_OK(close(fd));
	IT_OK(close(fd2));
	IT_TRUE(it_log_count("lost") >= 1, "no line says the device is lost: %s",
		it_log_tail(500));
}

static void dev_lost_clean_pages_come_back(void) { dev_lost_case("host_cache=16M"); }

/* The same with two devices, both lost (the fault takes every unit). */
static void dev_lost_two_devices(void) { dev_lost_case("host_cache=16M,devices=2"); }

/*
 * Mount without direct_io (the kernel's writeback cache), make @rel a
 * 1 MiB file of pattern @seed, read it, move [@off, @off + @len) to the
 * device.  Return: its descriptor, read-write.
 */
static int writeback_mount_on_device(const char *rel, uint32_t seed,
				     uint64_t off, uint64_t len)
{
	uint64_t moved;
	int fd;

	fault_mount_with("host_cache=16M");
	backing_file(rel, MiB, seed);
	fd = IT_REQUIRE_OK(open(MNT(rel), O_RDWR));
	IT_EQ(it_pread_check(fd, 0, MiB, 64 * KiB, seed), -1);
	IT_OK(it_migrate(fd, HMMFS_TO_DEVICE, off, len, &moved));
	IT_EQ(moved, len / (4 * KiB));
	return fd;
}

/*
 * The same loss under the kernel's writeback cache (no direct_io): bytes
 * written after the loss sit in the kernel, and its write-back lands on
 * pages that were on the lost device.  fsync succeeds and BACKING has
 * every byte.  (The loss comes first because the kernel may write back
 * at any time: a page written back before it would be dirty on the lost
 * device alone, and rightly lost.  A loss found in the middle of a
 * write-back once gave a short count, which the kernel takes as all of
 * it; short_write_back_is_an_error() covers that answer.)
 */
static void dev_lost_under_writeback_cache(void)
{
	int fd = writeback_mount_on_device("c", 81, 0, MiB);

	/* before the write: the kernel may write back at once, and a page it
	 * wrote back before the loss would be dirty on the lost device alone */
	faults_set("dev_lost");
	IT_OK(it_pwrite_pattern(fd, 5000, 400 * KiB, 64 * KiB, 82));
	IT_OK(fsync(fd));
	IT_EQ(it_file_check(BACK("c"), 0, 5000, 81), -1);
	IT_EQ(it_file_check(BACK("c"), 5000, 400 * KiB, 82), -1);
	IT_EQ(it_file_check(BACK("c"), 5000 + 400 * KiB, MiB - 5000 - 400 * KiB, 81), -1);
	IT_OK(close(fd));
}

/*
 * A write-back the cache can take only part of (its second half lands on
 * device pages whose copies fail) is answered with the error, not a short
 * count the kernel would take as all of it: fsync fails, and the log
 * names the file and the bytes not taken.
 */
static void short_write_back_is_an_error(void)
{
	int fd = writeback_mount_on_device("h", 91, 512 * KiB, 512 * KiB);

	/* before the write: the kernel may write back at once, not at fsync */
	faults_set("dev_copy:eio:dir=h2d");
	IT_OK(it_pwrite_pattern(fd, 0, MiB, MiB, 92));
	IT_ERRNO(fsync(fd), EIO);
	faults_set("");
	close(fd);
	IT_TRUE(it_log_count("not taken") >= 1, "no line names the bytes not taken: %s",
		it_log_tail(500));
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* slow_io:ms=20 on reads: a cold read takes at least that long. */
static void slow_io_is_slow_and_correct(void)
{
	long long t0;
	int fd;

	fault_mount(NULL);
	backing_file("f", 256 * KiB, 71);
	faults_set("slow_io:ms=20:op=read");
	fd = IT_REQUIRE_OK(open(MNT("f"), O_RDWR));
	t0 = now_ms();
	IT_EQ(it_pread_check(fd, 0, 256 * KiB, 256 * KiB, 71), -1);
	IT_TRUE(now_ms() - t0 >= 20, "a slow read took %lld ms", now_ms() - t0);
	IT_OK(it_pwrite_pattern(fd, 0, 256 * KiB, 64 * KiB, 72));
	IT_OK(fsync(fd));
	IT_OK(close(fd));
	faults_set("");
	IT_EQ(it_file_check(BACK("f"), 0, 256 * KiB, 72), -1);
}

/* One bounce buffer at a time: device reads, writes, writeback still right. */
static void bounce_starved(void)
{
	uint64_t moved;
	int fd;

	fault_mount("host_cache=16M");
	backing_file("f", 2 * MiB, 81);
	fd = IT_REQUIRE_OK(open(MNT("f"), O_RDWR));
	IT_EQ(it_pread_check(fd, 0, 2 * MiB, 256 * KiB, 81), -1);
	IT_OK(it_migrate(fd, HMMFS_TO_DEVICE, 0, 0, &moved));
	IT_EQ(moved, 512);
	faults_set("bounce:starve");
	IT_EQ(it_pread_check(fd, 0, 2 * MiB, 512 * KiB, 81), -1);
	IT_OK(it_pwrite_pattern(fd, 4096, MiB, 256 * KiB, 82));
	IT_OK(fsync(fd));
	IT_EQ(it_residency(fd)->device, 512);
	faults_set("");
	IT_OK(close(fd));
	IT_EQ(it_file_check(BACK("f"), 4096, MiB, 82), -1);
	IT_EQ(it_file_check(BACK("f"), MiB + 4096, MiB - 4096, 81), -1);
}

static const char *bad_spec;

static void set_bad_spec(void)
{
	setenv("HMMFS_FAULT", bad_spec, 1);
}

/* A rule that does not parse stops the daemon before it mounts. */
static void bad_spec_refused(void)
{
	static const struct { const char *spec, *says; } cases[] = {
		{ "disk_write:eio", "unknown fault point 'disk_write'" },
		{ "backing_write:ebadness", "unknown word 'ebadness'" },
		{ "backing_read:short", "'short' does not apply to backing_read" },
		{ "backing_write:rate=2", "rate must be in (0, 1]" },
		{ "slow_io", "slow_io needs ms=N" },
		{ "dev_copy:dir=sideways", "'dir=sideways': unknown value" },
	};
	char *argv[] = { (char *)it.hmmfs, it.backing, it.mnt, "-f", NULL };
	struct it_proc p;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		bad_spec = cases[i].spec;
		IT_OK(it_spawn(argv, set_bad_spec, 5000, &p));
		IT_TRUE(WIFEXITED(p.status) && WEXITSTATUS(p.status) == 1,
			"%s: wait status 0x%x", bad_spec, (unsigned int)p.status);
		IT_HAS(p.err, cases[i].says);
		IT_EQ(it_mount_count(it.mnt, NULL, NULL, 0), 0);
	}
}

static const struct it_test tests[] = {
	{ "backing write EIO: fsync, close, then cleared", write_eio_then_clear,
	  0, NULL },
	{ "backing write ENOSPC: fsync, close, then cleared",
	  write_enospc_then_clear, 0, NULL },
	{ "dirty data kept when the kernel forgets the file",
	  dirty_data_kept_when_forgotten, IT_NO_MOUNT | IT_LONG, NULL },
	{ "unwritable data at unmount is reported, exit 1",
	  unwritable_data_at_unmount_is_reported, IT_NO_MOUNT, NULL },
	{ "backing write EIO at rate 0.5", write_errors_at_a_rate, 0, NULL },
	{ "short writes are finished", short_writes_are_finished, 0, NULL },
	{ "short writes are finished (psync)", short_writes_psync, 0, NULL },
	{ "backing read EIO reaches read()", read_eio_then_clear, 0, NULL },
	{ "device alloc ENOSPC: migrate fails, data readable", dev_alloc_enospc,
	  0, NULL },
	{ "device alloc ENOMEM: migrate fails, data readable", dev_alloc_enomem,
	  0, NULL },
	{ "device copy EIO both ways", dev_copy_failure, 0, NULL },
	{ "device lost: clean pages come back from BACKING",
	  dev_lost_clean_pages_come_back, 0, NULL },
	{ "device lost, two devices: the same", dev_lost_two_devices, 0, NULL },
	{ "device lost under the writeback cache: fsync, every byte in BACKING",
	  dev_lost_under_writeback_cache, 0, NULL },
	{ "a short write-back is an error", short_write_back_is_an_error, 0, NULL },
	{ "slow backing I/O", slow_io_is_slow_and_correct, 0, NULL },
	{ "bounce pool starved", bounce_starved, 0, NULL },
	{ "bad HMMFS_FAULT refused at start", bad_spec_refused, 0, NULL },
	{ NULL, NULL, 0, NULL },
};

/* IT_NO_MOUNT: each test mounts itself (fault_mount: direct_io, rules file) */
const struct it_suite it_suite_faults = { "faults", NULL, IT_NO_MOUNT, tests };
