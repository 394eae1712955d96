/* SPDX-License-Identifier: MIT */
/*
 * tests/integration/test_ksm.c — dedupe through real mounts.
 *
 * Four copies of one 256 MiB file (32 MiB in sanitizer builds, which run
 * 10-20 times slower; the test prints the size) are read through the mount with the
 * scanner at full speed; once it has made full scans, the frames holding
 * data (host and device together) are about a quarter of what they were,
 * and pages_shared/pages_sharing say so.  A write to one copy afterwards
 * never shows in the others, in the mount or in BACKING, and all of it
 * survives fsync and unmount.  Merged device-resident pages serve bounce
 * reads.  Only the mount's owner (or root) may change the knobs, and
 * knobs out of range are refused.  (The data checker runs with dedupe
 * stress in tests/fsx: hmmfsx -K.)
 *
 * # TIMEOUT: each wait for full scans gives up after 120 s; a scan of
 * # 1 GiB takes a few seconds on 2 cores.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "fs/hmmfs_ioctl.h"
#include "tests/integration/harness.h"

#define MiB (1024 * 1024)
#define PS 4096

static struct hmmfs_ioc_ksm ksm_ioctl(uint32_t mask, const uint32_t *knobs,
				      int *err)
{
	struct hmmfs_ioc_ksm k = { .version = HMMFS_IOC_VERSION, .set_mask = mask };
	int fd = open(it.mnt, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	IT_REQUIRE(fd >= 0, "open %s: %s", it.mnt, it_errname(errno));
	if (knobs)
		memcpy(k.knobs, knobs, sizeof(k.knobs));
	*err = ioctl(fd, HMMFS_IOC_KSM, &k) < 0 ? errno : 0;
	close(fd);
	return k;
}

static struct hmmfs_ioc_ksm ksm_stats(void)
{
	int err;
	struct hmmfs_ioc_ksm k = ksm_ioctl(0, NULL, &err);

	IT_EQ(err, 0);
	return k;
}

/* The scanner at full speed. */
static void ksm_fast(void)
{
	uint32_t kn[HMMFS_KSM_NR_KNOBS] = { [HMMFS_KSM_RUN] = 1,
					    [HMMFS_KSM_PAGES_TO_SCAN] = 100000,
					    [HMMFS_KSM_SLEEP_MILLISECS] = 0 };
	int err;

	ksm_ioctl(1u << HMMFS_KSM_RUN | 1u << HMMFS_KSM_PAGES_TO_SCAN |
		  1u << HMMFS_KSM_SLEEP_MILLISECS, kn, &err);
	IT_EQ(err, 0);
}

/* Wait for @n more full scans (at most 120 s). */
static void wait_scans(unsigned int n)
{
	uint64_t want = ksm_stats().full_scans + n;

	for (int i = 0; i < 1200 && ksm_stats().full_scans < want; i++)
		usleep(100 * 1000);
	IT_TRUE(ksm_stats().full_scans >= want, "the scanner made no %u full scans", n);
}

static struct hmmfs_ioc_stats stats(void)
{
	struct hmmfs_ioc_stats st = { 0 };
	int fd = open(it.mnt, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	IT_REQUIRE(fd >= 0, "open %s", it.mnt);
	IT_OK(ioctl(fd, HMMFS_IOC_STATS, &st));
	close(fd);
	return st;
}

static void copy_of(const char *rel, size_t len, uint32_t seed)
{
	int fd = IT_REQUIRE_OK(open(BACK(rel), O_CREAT | O_TRUNC | O_WRONLY, 0644));

	IT_REQUIRE_OK(it_pwrite_pattern(fd, 0, len, 4 * MiB, seed));
	close(fd);
}

static void four_copies(void)
{
	static const char *const names[] = { "c0", "c1", "c2", "c3" };
	/* sanitizer builds run 10-20x slower: 32 MiB copies there (said below) */
	const size_t len = getenv("HMMFS_IT_SANITIZED") ? 32 * MiB : 256 * MiB;
	const size_t pages = len / PS;
	struct hmmfs_ioc_stats before, after;
	uint32_t stop[HMMFS_KSM_NR_KNOBS] = { [HMMFS_KSM_RUN] = 0 };
	struct hmmfs_ioc_ksm k;
	char w[100];
	int fd, err;

	/* the scanner waits until everything is cached, for a clean "before" */
	ksm_ioctl(1u << HMMFS_KSM_RUN, stop, &err);
	IT_EQ(err, 0);
	for (int i = 0; i < 4; i++)
		copy_of(names[i], len, 77);
	for (int i = 0; i < 4; i++)
		IT_EQ(it_file_check(MNT(names[i]), 0, len, 77), -1);
	before = stats();
	IT_TRUE(before.host_frames_used + before.device_frames_used >= 4 * pages,
		"frames %llu", (unsigned long long)(before.host_frames_used +
						    before.device_frames_used));
	ksm_fast();
	wait_scans(3);
	k = ksm_stats();
	/* merged pages' old frames go after an RCU grace period: wait (10 s) */
	for (int i = 0; i < 100; i++) {
		after = stats();
		if (after.host_frames_used + after.device_frames_used <= pages * 102 / 100)
			break;
		usleep(100 * 1000);
	}
	/* about a quarter: every page of c1..c3 shares c0's frame */
	IT_TRUE(k.pages_shared >= pages * 98 / 100 && k.pages_shared <= pages,
		"pages_shared %llu", (unsigned long long)k.pages_shared);
	IT_TRUE(k.pages_sharing >= 3 * pages * 98 / 100,
		"pages_sharing %llu", (unsigned long long)k.pages_sharing);
	IT_TRUE(after.host_frames_used + after.device_frames_used <= pages * 102 / 100,
		"frames in use %llu for %zu pages",
		(unsigned long long)(after.host_frames_used + after.device_frames_used),
		pages);
	printf("    4 x %zu MiB: frames %llu -> %llu, pages_shared %llu, "
	       "pages_sharing %llu, %llu pages hashed\n", len / MiB,
	       (unsigned long long)(before.host_frames_used + before.device_frames_used),
	       (unsigned long long)(after.host_frames_used + after.device_frames_used),
	       (unsigned long long)k.pages_shared, (unsigned long long)k.pages_sharing,
	       (unsigned long long)k.pages_scanned);
	/* a write to one copy shows only there */
	memset(w, 'W', sizeof(w));
	fd = IT_REQUIRE_OK(open(MNT("c2"), O_WRONLY));
	IT_EQ(pwrite(fd, w, sizeof(w), 12345), (ssize_t)sizeof(w));
	IT_OK(fsync(fd));
	close(fd);
	IT_TRUE(ksm_stats().cow_breaks >= 1, "no copy on write counted");
	for (int i = 0; i < 4; i++) {
		if (i == 2)
			continue;
		IT_EQ(it_file_check(MNT(names[i]), 0, len, 77), -1);
		IT_EQ(it_file_check(BACK(names[i]), 0, len, 77), -1);
	}
	{
		char got[sizeof(w)];

		fd = IT_REQUIRE_OK(open(MNT("c2"), O_RDONLY));
		IT_EQ(pread(fd, got, sizeof(got), 12345), (ssize_t)sizeof(got));
		IT_MEM_EQ(got, w, sizeof(w));
		close(fd);
		IT_EQ(it_file_check(MNT("c2"), 0, 12345, 77), -1);
		IT_EQ(it_file_check(MNT("c2"), 12345 + sizeof(w),
				    len - 12345 - sizeof(w), 77), -1);
	}
}

static void device_pages_merge(void)
{
	struct hmmfs_ioc_migrate m = { .version = HMMFS_IOC_VERSION,
				       .to = HMMFS_TO_DEVICE };
	struct hmmfs_ioc_ksm k;

	copy_of("d0", 4 * MiB, 5);
	copy_of("d1", 4 * MiB, 5);
	for (int i = 0; i < 2; i++) {
		int fd = IT_REQUIRE_OK(open(MNT(i ? "d1" : "d0"), O_RDONLY));

		IT_OK(ioctl(fd, HMMFS_IOC_MIGRATE, &m));
		IT_EQ(m.moved, 1024);
		close(fd);
	}
	ksm_fast();
	wait_scans(3);
	k = ksm_stats();
	IT_EQ(k.pages_shared, 1024);
	IT_EQ(k.saved_device_bytes, 4 * MiB);
	/* merged pages' old frames are freed after an RCU grace period */
	for (int i = 0; i < 100 && stats().device_frames_used != 1024; i++)
		usleep(50 * 1000);
	IT_EQ(stats().device_frames_used, 1024);
	IT_EQ(it_file_check(MNT("d0"), 0, 4 * MiB, 5), -1);	/* bounce reads */
	IT_EQ(it_file_check(MNT("d1"), 0, 4 * MiB, 5), -1);
}

static int set_as_other_user(void *arg, void *out)
{
	uint32_t kn[HMMFS_KSM_NR_KNOBS] = { [HMMFS_KSM_PAGES_TO_SCAN] = 5 };
	struct hmmfs_ioc_ksm k = { .version = HMMFS_IOC_VERSION,
				   .set_mask = 1u << HMMFS_KSM_PAGES_TO_SCAN };
	int fd = open((const char *)arg, O_RDONLY | O_DIRECTORY);

	(void)out;
	memcpy(k.knobs, kn, sizeof(kn));
	if (fd < 0)
		return 100;
	if (ioctl(fd, HMMFS_IOC_KSM, &k) == 0)
		return 0;
	return errno == EPERM ? 1 : 101;
}

static void knob_rules(void)
{
	uint32_t kn[HMMFS_KSM_NR_KNOBS] = { [HMMFS_KSM_MAX_PAGE_SHARING] = 1 };
	int err;

	ksm_ioctl(1u << HMMFS_KSM_MAX_PAGE_SHARING, kn, &err);
	IT_EQ(err, ERANGE);
	ksm_ioctl(1u << 9, kn, &err);
	IT_EQ(err, EINVAL);
	IT_EQ(it_child(set_as_other_user, it.mnt, NULL, 0, 65534, 65534), 1);
	IT_EQ(ksm_stats().knobs[HMMFS_KSM_PAGES_TO_SCAN], 100);	/* unchanged */
}

static const struct it_test tests[] = {
	{ "four copies share one frame per page", four_copies, 0, NULL },
	{ "merged device pages serve bounce reads", device_pages_merge, 0, NULL },
	{ "knobs: owner only, in range", knob_rules, 0, "ksm=on,allow_other" },
	{ NULL, NULL, 0, NULL },
};

const struct it_suite it_suite_ksm = { "ksm", "ksm=on,direct_io", 0, tests };
