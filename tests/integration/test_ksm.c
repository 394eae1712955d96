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
 * reads, and pages merged across two devices are counted on the device
 * of their frame.  Only the mount's owner (or root) may change the knobs, and
 * knobs out of range are refused.  Dedupe is no content oracle: with
 * ksm_scope=uid a user's right guess of root's 0600 page never merges
 * with it, a chown unshares, and with either scope a user sees sharing
 * only where he may read every sharer.  (The data checker runs with dedupe
 * stress in tests/fsx: hmmfsx -K.)
 *
 * # TIMEOUT: each wait for full scans gives up after 120 s; a scan of
 * # 1 GiB takes a few seconds on 2 cores.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "include/hmmfs_ioctl.h"
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
	for (int i = 0; i < 400 && stats().device_frames_used != 1024; i++)
		usleep(50 * 1000);
	IT_EQ(stats().device_frames_used, 1024);
	IT_EQ(it_file_check(MNT("d0"), 0, 4 * MiB, 5), -1);	/* bounce reads */
	IT_EQ(it_file_check(MNT("d1"), 0, 4 * MiB, 5), -1);
}

static struct hmmfs_ioc_devices devices(void)
{
	struct hmmfs_ioc_devices d = { .version = HMMFS_IOC_VERSION };
	int fd = open(it.mnt, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	IT_REQUIRE(fd >= 0, "open %s", it.mnt);
	IT_OK(ioctl(fd, HMMFS_IOC_DEVICES, &d));
	close(fd);
	return d;
}

static void migrate_to_unit(const char *rel, unsigned int unit, uint64_t pages)
{
	struct hmmfs_ioc_migrate m = { .version = HMMFS_IOC_VERSION,
				       .to = HMMFS_TO_DEVICE_UNIT(unit) };
	int fd = IT_REQUIRE_OK(open(MNT(rel), O_RDONLY));

	IT_OK(ioctl(fd, HMMFS_IOC_MIGRATE, &m));
	IT_EQ(m.moved, pages);
	close(fd);
}

/*
 * Equal pages on two devices merge onto one frame, on either device: each
 * page is then counted on its frame's device (a unit with no frame in use
 * holds no page); moving the file to either device leaves them there
 * without an error; once the files are gone both counts are 0.  (They
 * once stayed on the old unit: one count went below zero and that unit's
 * eviction spun forever.)
 */
static void merge_across_devices(void)
{
	uint32_t stop[HMMFS_KSM_NR_KNOBS] = { [HMMFS_KSM_RUN] = 0 };
	struct hmmfs_ioc_devices d;
	int err;

	ksm_ioctl(1u << HMMFS_KSM_RUN, stop, &err);
	IT_EQ(err, 0);
	copy_of("u0", MiB, 31);
	copy_of("u1", MiB, 31);
	migrate_to_unit("u0", 0, 256);
	migrate_to_unit("u1", 1, 256);
	ksm_fast();
	wait_scans(3);
	IT_EQ(ksm_stats().pages_shared, 256);
	/* merged pages' old frames are freed after an RCU grace period */
	for (int i = 0; i < 400; i++) {
		d = devices();
		if (d.dev[0].frames_used + d.dev[1].frames_used == 256)
			break;
		usleep(50 * 1000);
	}
	IT_EQ(d.count, 2);
	IT_EQ(d.dev[0].frames_used + d.dev[1].frames_used, 256);
	IT_EQ(d.dev[0].pages + d.dev[1].pages, 512);
	for (int k = 0; k < 2; k++)
		IT_TRUE(d.dev[k].frames_used || !d.dev[k].pages,
			"device %d: %llu pages on no frame", k,
			(unsigned long long)d.dev[k].pages);
	IT_EQ(it_file_check(MNT("u1"), 0, MiB, 31), -1);
	for (int k = 0; k < 2; k++) {	/* shared pages stay: no ENOSPC */
		struct hmmfs_ioc_migrate m = { .version = HMMFS_IOC_VERSION,
					       .to = HMMFS_TO_DEVICE_UNIT(k) };
		int fd = IT_REQUIRE_OK(open(MNT("u0"), O_RDONLY));

		IT_OK(ioctl(fd, HMMFS_IOC_MIGRATE, &m));
		close(fd);
	}
	IT_OK(unlink(MNT("u0")));
	IT_OK(unlink(MNT("u1")));
	for (int i = 0; i < 400; i++) {	/* freed when the kernel forgets them */
		d = devices();
		if (!d.dev[0].pages && !d.dev[1].pages)
			break;
		usleep(50 * 1000);
	}
	IT_EQ(d.dev[0].pages, 0);
	IT_EQ(d.dev[1].pages, 0);
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

/* ---- scope: no content oracle across owners (issue 13, item 3) ------ */

#define OTHER 65534		/* the guessing user: nobody */
#define SECRET_PAGES 16
#define SECRET_SEED 9		/* root's 0600 file */
#define MINE_SEED 21		/* two equal files of OTHER's own */

/* As OTHER: create @arg (in the mount) with SECRET_PAGES pages of seed *@out. */
static int other_writes(void *arg, void *out)
{
	uint32_t seed;
	int fd = open((const char *)arg, O_CREAT | O_TRUNC | O_RDWR, 0600);

	memcpy(&seed, out, sizeof(seed));
	if (fd < 0)
		return 100;
	if (it_pwrite_pattern(fd, 0, SECRET_PAGES * PS, PS, seed) || fsync(fd))
		return 101;
	return close(fd) ? 102 : 0;
}

/* As OTHER: the residency of @arg; *@out gets it.  0, or 100+ on error. */
static int other_residency(void *arg, void *out)
{
	struct hmmfs_ioc_residency *r = malloc(sizeof(*r));
	int fd = open((const char *)arg, O_RDONLY);
	int ret = 0;

	if (!r || fd < 0)
		return 100;
	*r = (struct hmmfs_ioc_residency){ .version = HMMFS_IOC_VERSION,
					   .length = SECRET_PAGES * PS };
	if (ioctl(fd, HMMFS_IOC_RESIDENCY, r) < 0)
		ret = 101;
	memcpy(out, r, sizeof(*r));
	free(r);
	close(fd);
	return ret;
}

/* As OTHER: read the dedupe counters of mount @arg; 0, or the errno. */
static int other_counters(void *arg, void *out)
{
	struct hmmfs_ioc_ksm k = { .version = HMMFS_IOC_VERSION };
	int fd = open((const char *)arg, O_RDONLY | O_DIRECTORY);

	(void)out;
	if (fd < 0)
		return 100;
	return ioctl(fd, HMMFS_IOC_KSM, &k) < 0 ? errno : 0;
}

static struct hmmfs_ioc_residency other_view(const char *rel)
{
	static struct hmmfs_ioc_residency r;

	IT_EQ(it_child(other_residency, (void *)MNT(rel), &r, sizeof(r), OTHER,
		       OTHER), 0);
	return r;
}

static uint64_t root_shared(const char *rel)
{
	int fd = IT_REQUIRE_OK(open(MNT(rel), O_RDONLY));
	uint64_t shared = it_residency(fd)->shared;

	close(fd);
	return shared;
}

/*
 * Root's 0600 "secret" (16 distinct pages, cached); OTHER's directory "u"
 * with "guess" (the same 16 pages: a right guess) and "mine1", "mine2"
 * (equal to each other, OTHER's own duplicates); then full scans.
 */
static void guess_setup(void)
{
	uint32_t seed;
	int fd;

	IT_REQUIRE_OK(mkdir(BACK("u"), 0755));
	IT_REQUIRE_OK(chown(BACK("u"), OTHER, OTHER));
	fd = IT_REQUIRE_OK(open(MNT("secret"), O_CREAT | O_RDWR, 0600));
	IT_REQUIRE_OK(it_pwrite_pattern(fd, 0, SECRET_PAGES * PS, PS, SECRET_SEED));
	IT_OK(fsync(fd));
	close(fd);
	seed = SECRET_SEED;
	IT_EQ(it_child(other_writes, (void *)MNT("u/guess"), &seed, sizeof(seed),
		       OTHER, OTHER), 0);
	seed = MINE_SEED;
	IT_EQ(it_child(other_writes, (void *)MNT("u/mine1"), &seed, sizeof(seed),
		       OTHER, OTHER), 0);
	IT_EQ(it_child(other_writes, (void *)MNT("u/mine2"), &seed, sizeof(seed),
		       OTHER, OTHER), 0);
	IT_EQ(it_file_check(MNT("secret"), 0, SECRET_PAGES * PS, SECRET_SEED), -1);
	ksm_fast();
	wait_scans(3);
}

/* Did OTHER's view show any sharing, in the count or an extent's flags? */
static bool shows_sharing(const struct hmmfs_ioc_residency *r)
{
	bool any = r->shared != 0;

	for (uint32_t i = 0; i < r->n_ext && i < HMMFS_RES_MAX_EXTENTS; i++)
		any |= (r->ext[i].flags & HMMFS_RES_SHARED) != 0;
	return any;
}

/*
 * ksm_scope=uid (the default): OTHER's right guess never merges with
 * root's secret (root sees neither shared) and OTHER's view shows nothing;
 * OTHER's own duplicates merge, and OTHER, their owner, sees that.  A
 * chown of one of them makes it let go at once, and no later scan merges
 * it back with its old owner's file.
 */
static void scope_uid(void)
{
	struct hmmfs_ioc_residency r;
	struct hmmfs_ioc_ksm k;

	guess_setup();
	IT_EQ(root_shared("secret"), 0);
	IT_EQ(root_shared("u/guess"), 0);
	IT_EQ(root_shared("u/mine1"), SECRET_PAGES);
	k = ksm_stats();
	IT_EQ(k.pages_shared, SECRET_PAGES);	/* only mine1 + mine2 */
	IT_EQ(k.pages_sharing, SECRET_PAGES);
	r = other_view("u/guess");
	IT_EQ(r.pages, SECRET_PAGES);
	IT_TRUE(!shows_sharing(&r), "guess: shared %llu", (unsigned long long)r.shared);
	r = other_view("u/mine1");
	IT_EQ(r.shared, SECRET_PAGES);	/* its own files: it may know */
	/* the counters move only with OTHER's own pages: it may read them */
	IT_EQ(it_child(other_counters, it.mnt, NULL, 0, OTHER, OTHER), 0);
	/* chown: mine2's pages let go of mine1's frames before it returns */
	IT_OK(chown(MNT("u/mine2"), OTHER - 1, OTHER));
	IT_EQ(root_shared("u/mine2"), 0);
	IT_EQ(ksm_stats().pages_sharing, 0);	/* mine1 alone on its frames */
	wait_scans(3);
	IT_EQ(ksm_stats().pages_sharing, 0);
	IT_EQ(root_shared("u/mine2"), 0);
	IT_EQ(it_file_check(MNT("u/mine2"), 0, SECRET_PAGES * PS, MINE_SEED), -1);
	IT_EQ(it_file_check(BACK("u/mine2"), 0, SECRET_PAGES * PS, MINE_SEED), -1);
}

/*
 * ksm_scope=all: the right guess may merge with root's secret (root sees
 * it), but OTHER sees no sharing on any file, not even its own (a frame
 * may hold a page of anyone's), and may not read the counters.
 */
static void scope_all(void)
{
	struct hmmfs_ioc_residency r;

	guess_setup();
	IT_EQ(root_shared("secret"), SECRET_PAGES);
	IT_EQ(root_shared("u/guess"), SECRET_PAGES);
	r = other_view("u/guess");
	IT_EQ(r.pages, SECRET_PAGES);
	IT_EQ(r.n_ext, 1);
	IT_TRUE(!shows_sharing(&r), "guess: shared %llu", (unsigned long long)r.shared);
	r = other_view("u/mine1");
	IT_TRUE(!shows_sharing(&r), "mine1: shared %llu", (unsigned long long)r.shared);
	IT_EQ(it_child(other_counters, it.mnt, NULL, 0, OTHER, OTHER), EPERM);
}

static const struct it_test tests[] = {
	{ "four copies share one frame per page", four_copies, IT_LONG, NULL },
	{ "merged device pages serve bounce reads", device_pages_merge, 0, NULL },
	{ "merged across devices: pages counted where their frame is",
	  merge_across_devices, 0, "ksm=on,direct_io,devices=2,device_cache=8M" },
	{ "knobs: owner only, in range", knob_rules, 0, "ksm=on,allow_other" },
	{ "ksm_scope=uid: no merge or sharing shown across owners", scope_uid, 0,
	  "ksm=on,allow_other" },
	{ "ksm_scope=all: others never see sharing", scope_all, 0,
	  "ksm=on,allow_other,ksm_scope=all" },
	{ NULL, NULL, 0, NULL },
};

const struct it_suite it_suite_ksm = { "ksm", "ksm=on,direct_io", 0, tests };
