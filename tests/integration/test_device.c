/* SPDX-License-Identifier: MIT */
/*
 * tests/integration/test_device.c — the device tier through real mounts.
 *
 * Migration: a file moved to the (hostsim) device reads back equal through
 * the mount, with the default kernel caching, so the kernel's copy must
 * have been dropped: the reads are counted as bounce reads, and residency
 * still says device.  Writes: partial and whole-page writes into device
 * pages read back right, count as bounce writes, leave the pages dirty on
 * the device, and fsync writes them to BACKING while they stay there.
 * devop: a device-side XOR over a range partly cached, partly on the
 * device, partly not cached: device write faults, dirty device pages;
 * fsync; BACKING holds the expected bytes and residency still says device.
 * SIGTERM writes back dirty device pages of an open file.  A host cache of
 * 64 pages demotes a 4 MiB write to the device, and everything reaches
 * BACKING.  Readers of pages under a long migration (device_lat=1500ms)
 * finish before it does.  Back and forth: migrate to the host again.
 * hmmfsctl: residency --json, migrate, devop, stats --json, and its errors
 * (no device tier, a directory, a read-only fd for devop, past EOF).
 *
 * Counters are read with the ioctls from this process: running hmmfsctl
 * with a file open would fork, and the child's close at exec is a FUSE
 * flush, which writes the file back.
 */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fs/hmmfs_ioctl.h"
#include "tests/integration/harness.h"

#define MiB (1024 * 1024)
#define PS 4096

static struct hmmfs_ioc_stats stats(void)
{
	struct hmmfs_ioc_stats st = { 0 };
	int fd = open(it.mnt, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	IT_REQUIRE(fd >= 0, "open %s: %s", it.mnt, it_errname(errno));
	IT_OK(ioctl(fd, HMMFS_IOC_STATS, &st));
	close(fd);
	return st;
}

/* Write @len pattern bytes (seed @seed) straight into BACKING. */
static void backing_file(const char *rel, size_t len, uint32_t seed)
{
	int fd = IT_REQUIRE_OK(open(BACK(rel), O_CREAT | O_TRUNC | O_WRONLY, 0644));

	IT_REQUIRE_OK(it_pwrite_pattern(fd, 0, len, MiB, seed));
	close(fd);
}

static void migrate_and_read_back(void)
{
	struct hmmfs_ioc_stats before, after;
	struct hmmfs_ioc_residency *r;
	uint64_t moved;
	int fd;

	backing_file("f", 4 * MiB, 1);
	fd = IT_REQUIRE_OK(open(MNT("f"), O_RDONLY));
	/* read once: the kernel and hmmfs both cache it */
	IT_EQ(it_pread_check(fd, 0, 4 * MiB, 128 * 1024, 1), -1);
	IT_OK(it_migrate(fd, HMMFS_TO_DEVICE, 0, 0, &moved));
	IT_EQ(moved, 1024);
	r = it_residency(fd);
	IT_EQ(r->pages, 1024);
	IT_EQ(r->device, 1024);
	IT_EQ(r->host, 0);
	IT_EQ(r->n_ext, 1);
	IT_EQ(r->ext[0].flags, HMMFS_RES_DEVICE);
	before = stats();
	IT_EQ(before.device_pages, 1024);
	IT_EQ(it_pread_check(fd, 0, 4 * MiB, 128 * 1024, 1), -1);
	after = stats();
	/* the kernel's copy was dropped: every page came back to hmmfs */
	IT_TRUE(after.bounce_reads - before.bounce_reads >= 1024,
		"bounce reads %llu -> %llu", (unsigned long long)before.bounce_reads,
		(unsigned long long)after.bounce_reads);
	IT_EQ(it_residency(fd)->device, 1024);
	/* and back to the host */
	IT_OK(it_migrate(fd, HMMFS_TO_HOST, MiB, MiB, &moved));
	IT_EQ(moved, 256);
	r = it_residency(fd);
	IT_EQ(r->host, 256);
	IT_EQ(r->device, 768);
	IT_EQ(r->n_ext, 3);
	IT_EQ(it_pread_check(fd, 0, 4 * MiB, 100000, 1), -1);
	IT_EQ(stats().migrations_to_host - before.migrations_to_host, 256);
	close(fd);
}

/* The pattern of seed @seed with [off, off + len) replaced by @byte. */
static char *expected_with(size_t size, uint32_t seed, off_t off, size_t len,
			   int byte)
{
	char *e = malloc(size);

	IT_REQUIRE(e != NULL, "malloc");
	it_pattern(e, size, seed, 0);
	memset(e + off, byte, len);
	return e;
}

static void write_into_device_pages(void)
{
	struct hmmfs_ioc_stats before;
	struct hmmfs_ioc_residency *r;
	char buf[3 * PS], *exp, *got = malloc(MiB);
	int fd;

	backing_file("w", MiB, 2);
	fd = IT_REQUIRE_OK(open(MNT("w"), O_RDWR));
	IT_OK(it_migrate(fd, HMMFS_TO_DEVICE, 0, 0, NULL));
	before = stats();
	memset(buf, 'x', sizeof(buf));
	IT_EQ(pwrite(fd, buf, 100, 10), 100);		/* inside one page */
	IT_EQ(pwrite(fd, buf, 2 * PS, 5 * PS), 2 * PS);	/* two whole pages */
	IT_EQ(pwrite(fd, buf, 3000, 9 * PS - 1000), 3000);	/* across two */
	exp = expected_with(MiB, 2, 10, 100, 'x');
	memset(exp + 5 * PS, 'x', 2 * PS);
	memset(exp + 9 * PS - 1000, 'x', 3000);
	IT_EQ(pread(fd, got, MiB, 0), MiB);
	IT_MEM_EQ(got, exp, MiB);
	IT_EQ(stats().bounce_writes - before.bounce_writes, 5);
	r = it_residency(fd);
	IT_EQ(r->device, 256);
	IT_EQ(r->dirty, 5);
	IT_OK(fsync(fd));
	IT_EQ(it_get(BACK("w"), got, MiB), MiB);
	IT_MEM_EQ(got, exp, MiB);
	r = it_residency(fd);
	IT_EQ(r->device, 256);	/* written back, still on the device */
	IT_EQ(r->dirty, 0);
	close(fd);
	free(exp);
	free(got);
}

static int devop(int fd, uint32_t op, uint64_t value, uint64_t off,
		 uint64_t len, uint64_t *pages)
{
	struct hmmfs_ioc_devop d = { .version = HMMFS_IOC_VERSION, .op = op,
				     .value = value, .offset = off, .length = len };
	int ret = ioctl(fd, HMMFS_IOC_DEVOP, &d);

	if (pages)
		*pages = d.pages;
	return ret;
}

static void devop_then_fsync(void)
{
	struct hmmfs_ioc_stats before;
	struct hmmfs_ioc_residency *r;
	char *exp = malloc(2 * MiB), *got = malloc(2 * MiB);
	uint64_t pages;
	int fd;

	backing_file("d", 2 * MiB, 3);
	fd = IT_REQUIRE_OK(open(MNT("d"), O_RDWR));
	/* [0, 256K) on the host, [256K, 512K) on the device, the rest not cached */
	IT_EQ(it_pread_check(fd, 0, 512 * 1024, 65536, 3), -1);
	IT_OK(it_migrate(fd, HMMFS_TO_DEVICE, 256 * 1024, 256 * 1024, NULL));
	before = stats();
	IT_OK(devop(fd, HMMFS_DEVOP_XOR, 0x5a, 100, MiB, &pages));
	IT_EQ(pages, 257);	/* [100, 100 + 1 MiB) touches 257 pages */
	it_pattern(exp, 2 * MiB, 3, 0);
	for (size_t i = 100; i < 100 + MiB; i++)
		exp[i] ^= 0x5a;
	IT_EQ(stats().device_faults - before.device_faults, 257);
	r = it_residency(fd);
	IT_EQ(r->dirty, 257);
	IT_EQ(r->device, 257);
	IT_EQ(pread(fd, got, 2 * MiB, 0), 2 * MiB);
	IT_MEM_EQ(got, exp, 2 * MiB);
	IT_OK(fsync(fd));
	IT_EQ(it_get(BACK("d"), got, 2 * MiB), 2 * MiB);
	IT_MEM_EQ(got, exp, 2 * MiB);
	r = it_residency(fd);
	IT_EQ(r->device, 257);
	IT_EQ(r->dirty, 0);
	/* a second devop on clean device pages faults again: read-only after writeback */
	before = stats();
	IT_OK(devop(fd, HMMFS_DEVOP_ADD, 1, 0, PS, &pages));
	IT_EQ(stats().device_faults - before.device_faults, 1);
	close(fd);
	free(exp);
	free(got);
}

static void sigterm_writes_back_device_pages(void)
{
	struct it_mount *m = &it.mount;
	int fd, status;

	backing_file("t", MiB, 4);
	fd = IT_REQUIRE_OK(open(MNT("t"), O_RDWR));
	IT_OK(devop(fd, HMMFS_DEVOP_FILL, 'z', 0, 0, NULL));
	IT_EQ(it_residency(fd)->dirty, 256);
	IT_REQUIRE_OK(kill(m->pid, SIGTERM));
	IT_EQ(it_wait_pid(m->pid, 20000, &status), 0);
	IT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		"daemon wait status 0x%x", (unsigned int)status);
	close(fd);
	m->live = it_mount_count(it.mnt, NULL, NULL, 0) > 0;
	m->pid = 0;
	{
		char *got = malloc(MiB);

		IT_EQ(it_get(BACK("t"), got, MiB), MiB);
		IT_EQ(it_first_not(got, MiB, 'z'), -1);
		free(got);
	}
}

static void small_host_cache_demotes(void)
{
	struct hmmfs_ioc_stats st;
	int fd = IT_REQUIRE_OK(open(MNT("big"), O_CREAT | O_RDWR, 0644));

	IT_REQUIRE_OK(it_pwrite_pattern(fd, 0, 4 * MiB, 12345, 5));
	st = stats();
	IT_TRUE(st.migrations_to_device > 0, "nothing was demoted");
	IT_TRUE(st.host_pages <= 64, "host pages %llu", (unsigned long long)st.host_pages);
	IT_EQ(it_pread_check(fd, 0, 4 * MiB, 65536, 5), -1);
	IT_OK(fsync(fd));
	IT_EQ(it_file_check(BACK("big"), 0, 4 * MiB, 5), -1);
	close(fd);
}

struct reader {
	int fd;
	_Atomic int *migrating;
	int done_during, bad;
};

static void *reader_main(void *arg)
{
	struct reader *r = arg;
	char buf[PS];

	usleep(200 * 1000);	/* the migration is under way */
	for (int i = 0; i < 64; i++) {
		if (pread(r->fd, buf, PS, (off_t)i * PS) != PS ||
		    it_pattern_mismatch(buf, PS, 6, (off_t)i * PS) >= 0)
			r->bad++;
		else if (atomic_load(r->migrating))
			r->done_during++;
	}
	return NULL;
}

/* Readers of pages under migration finish while it still runs. */
static void readers_not_blocked_by_migration(void)
{
	_Atomic int migrating = 1;
	struct reader r = { .migrating = &migrating };
	pthread_t th;
	int fd;

	backing_file("slow", 64 * PS, 6);
	fd = IT_REQUIRE_OK(open(MNT("slow"), O_RDONLY));
	IT_EQ(it_pread_check(fd, 0, 64 * PS, 64 * PS, 6), -1);	/* on the host */
	r.fd = fd;
	IT_REQUIRE_OK(-pthread_create(&th, NULL, reader_main, &r));
	IT_OK(it_migrate(fd, HMMFS_TO_DEVICE, 0, 0, NULL));	/* >= 1.5 s */
	atomic_store(&migrating, 0);
	pthread_join(th, NULL);
	IT_EQ(r.bad, 0);
	IT_EQ(r.done_during, 64);
	IT_EQ(it_residency(fd)->device, 64);
	close(fd);
}

static int ctl(struct it_proc *p, char *const args[])
{
	char *argv[12] = { (char *)it.hmmfsctl };

	IT_REQUIRE(it.hmmfsctl != NULL, "HMMFSCTL is not set");
	for (int i = 0; args[i] && i < 10; i++)
		argv[i + 1] = args[i];
	it_spawn(argv, NULL, 20000, p);
	return p->status != -1 && WIFEXITED(p->status) ? WEXITSTATUS(p->status) : -1;
}

static void hmmfsctl_commands(void)
{
	struct it_proc p;
	char *f = strdup(MNT("c"));
	char *got = malloc(MiB);

	backing_file("c", MiB, 7);
	IT_EQ(ctl(&p, (char *[]){ "migrate", "--to", "device", f, "--offset", "256K",
				  "--length", "256K", NULL }), 0);
	IT_HAS(p.out, "64 pages moved to the device");
	IT_EQ(ctl(&p, (char *[]){ "residency", f, "--json", NULL }), 0);
	IT_HAS(p.out, "\"offset\":262144,\"length\":262144,\"flags\":\"device\"");
	IT_HAS(p.out, "\"device\":64");
	IT_EQ(ctl(&p, (char *[]){ "devop", f, "--op", "fill", "--value", "65", NULL }), 0);
	IT_HAS(p.out, "256 pages written on the device");
	/* hmmfsctl closed the file: written back (close-to-open) */
	IT_EQ(it_get(BACK("c"), got, MiB), MiB);
	IT_EQ(it_first_not(got, MiB, 'A'), -1);
	IT_EQ(ctl(&p, (char *[]){ "stats", it.mnt, "--json", NULL }), 0);
	IT_HAS(p.out, getenv("HMMFS_IT_OPTS") && strstr(getenv("HMMFS_IT_OPTS"),
			"device=cuda") ? "\"device\":\"cuda\"" : "\"device\":\"hostsim\"");
	IT_HAS(p.out, "\"device_pages\":256");
	IT_HAS(p.out, "\"device_faults\":256");
	/* errors */
	IT_EQ(ctl(&p, (char *[]){ "migrate", "--to", "device", f, "--offset", "2M", NULL }), 1);
	IT_HAS(p.err, "past the end");
	IT_EQ(ctl(&p, (char *[]){ "migrate", "--to", "gpu", f, NULL }), 2);
	IT_EQ(ctl(&p, (char *[]){ "migrate", "--to", "device", it.mnt, NULL }), 1);
	IT_HAS(p.err, "not a regular file");
	IT_EQ(ctl(&p, (char *[]){ "devop", f, "--op", "mul", "--value", "1", NULL }), 2);
	IT_EQ(ctl(&p, (char *[]){ "devop", f, "--op", "add", "--value", "256", NULL }), 2);
	IT_EQ(ctl(&p, (char *[]){ "residency", f, "--offset", "x", NULL }), 2);
	free(f);
	free(got);
}

/* Rules the daemon enforces on the ioctls themselves. */
static void ioctl_checks(void)
{
	struct hmmfs_ioc_migrate m = { .version = HMMFS_IOC_VERSION, .to = 7 };
	int ro, dir;

	backing_file("e", 64 * 1024, 8);
	ro = IT_REQUIRE_OK(open(MNT("e"), O_RDONLY));
	IT_ERRNO(ioctl(ro, HMMFS_IOC_MIGRATE, &m), EINVAL);	/* bad direction */
	m.to = HMMFS_TO_DEVICE;
	m.version = 1;
	IT_ERRNO(ioctl(ro, HMMFS_IOC_MIGRATE, &m), EINVAL);	/* old version */
	m.version = HMMFS_IOC_VERSION;
	m.offset = (uint64_t)INT64_MAX + 1;
	IT_ERRNO(ioctl(ro, HMMFS_IOC_MIGRATE, &m), EINVAL);	/* overflow */
	m.offset = 1 << 20;
	IT_ERRNO(ioctl(ro, HMMFS_IOC_MIGRATE, &m), ERANGE);	/* past EOF */
	IT_ERRNO(devop(ro, HMMFS_DEVOP_FILL, 1, 0, 0, NULL), EBADF);	/* not writable */
	close(ro);
	ro = IT_REQUIRE_OK(open(MNT("e"), O_RDWR));
	IT_ERRNO(devop(ro, 9, 1, 0, 0, NULL), EINVAL);
	IT_ERRNO(devop(ro, HMMFS_DEVOP_ADD, 300, 0, 0, NULL), EINVAL);
	close(ro);
	dir = IT_REQUIRE_OK(open(it.mnt, O_RDONLY | O_DIRECTORY));
	IT_ERRNO(it_migrate(dir, HMMFS_TO_DEVICE, 0, 0, NULL), EISDIR);
	close(dir);
}

static void no_device_tier(void)
{
	int fd;

	backing_file("n", 64 * 1024, 9);
	fd = IT_REQUIRE_OK(open(MNT("n"), O_RDONLY));
	IT_ERRNO(it_migrate(fd, HMMFS_TO_DEVICE, 0, 0, NULL), ENODEV);
	IT_STR_EQ(stats().device, "none");
	close(fd);
}

static const struct it_test tests[] = {
	{ "migrate, read back through the bounce path", migrate_and_read_back,
	  0, "migrate=bounce" },
	{ "writes into device pages", write_into_device_pages, 0, NULL },
	{ "devop, fsync, BACKING", devop_then_fsync, 0, NULL },
	{ "SIGTERM writes back dirty device pages",
	  sigterm_writes_back_device_pages, 0, NULL },
	{ "a small host cache demotes to the device", small_host_cache_demotes,
	  0, "direct_io,host_cache=256K" },
	{ "readers are not blocked by a migration",
	  readers_not_blocked_by_migration, 0,
	  "direct_io,device=hostsim,device_lat=1500ms" },
	{ "hmmfsctl migrate, residency, devop, stats", hmmfsctl_commands, 0, NULL },
	{ "ioctl argument checks", ioctl_checks, 0, NULL },
	{ "device=none", no_device_tier, 0, "device=none" },
	{ NULL, NULL, 0, NULL },
};

const struct it_suite it_suite_device = { "device", NULL, 0, tests };
