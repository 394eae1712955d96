/* SPDX-License-Identifier: MIT */
/*
 * tests/integration/test_badinput.c — bad input to the daemon and hmmfsctl.
 *
 * ioctl fuzzer: for HMMFS_FUZZ_SECS seconds (default 5; the long mode is
 * "HMMFS_FUZZ_SECS=3600 integration_tests badinput:ioctl_fuzz") it sends
 * random hmmfs ioctls — the real commands with garbage, half-valid and
 * extreme structures (bad versions, huge, negative and overflowing
 * offsets and lengths, unknown ops, random knob masks), and made-up
 * commands of the hmmfs magic with random directions and sizes — on a
 * file opened read-only, read-write and write-only, on a directory, the
 * mount's root and a fifo.  Every call must succeed or fail with an errno
 * from an allowed set; afterwards the daemon must be alive, serve the
 * file unchanged in size, and exit 0 at unmount.  Only the hmmfs magic is
 * used: random commands of other types could hit real ones (FIFREEZE).
 *
 * hmmfsctl: malformed command lines fail with exit 2 (usage) or 1 and a
 * message that names the problem.
 *
 * allow_other: uid 65534 cannot open a 0600 file of root's for reading or
 * writing, nor migrate it (hmmfsctl says permission denied), cannot run a
 * devop through a read-only descriptor (EBADF), cannot create in a root
 * directory of mode 0755, and cannot change dedupe knobs (EPERM); it can
 * migrate a file it may read.
 */
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
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

static uint64_t rng_state;

static uint64_t rnd(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Offsets and lengths worth trying. */
static uint64_t extreme(void)
{
	static const uint64_t v[] = {
		0, 1, 4095, 4096, 65536, 1ull << 20, 1ull << 31, 1ull << 32,
		(uint64_t)INT64_MAX, (uint64_t)INT64_MAX - 1, (uint64_t)INT64_MAX + 1,
		UINT64_MAX, UINT64_MAX - 4095, (uint64_t)-4096,
	};

	return rnd() % 4 ? v[rnd() % (sizeof(v) / sizeof(v[0]))] : rnd() >> (rnd() % 64);
}

static uint32_t version(void)
{
	static const uint32_t v[] = { HMMFS_IOC_VERSION, HMMFS_IOC_VERSION,
				      HMMFS_IOC_VERSION, 0, 1, 3, UINT32_MAX };

	return rnd() % 8 ? v[rnd() % (sizeof(v) / sizeof(v[0]))] : (uint32_t)rnd();
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* Fill @buf for @cmd: garbage, or a half-valid structure. */
static void fill_arg(unsigned long cmd, unsigned char *buf, size_t len)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (unsigned char)rnd();
	if (rnd() % 4 == 0)
		return;	/* pure garbage */
	switch (cmd) {
	case HMMFS_IOC_MIGRATE:
	case HMMFS_IOC_MIGRATE_OLD: {	/* the same but for next, at the end */
		struct hmmfs_ioc_migrate_old *m = (void *)buf;

		m->version = version();
		m->to = rnd() % 4 ? (uint32_t)(rnd() % 2) : (uint32_t)rnd();
		m->offset = extreme();
		m->length = extreme();
		break;
	}
	case HMMFS_IOC_DEVOP: {
		struct hmmfs_ioc_devop *d = (void *)buf;

		d->version = version();
		d->op = rnd() % 4 ? (uint32_t)(rnd() % 3) : (uint32_t)rnd();
		d->value = rnd() % 4 ? rnd() % 256 : extreme();
		d->offset = extreme();
		d->length = extreme();
		break;
	}
	case HMMFS_IOC_RESIDENCY: {
		struct hmmfs_ioc_residency *r = (void *)buf;

		r->version = version();
		r->offset = extreme();
		r->length = extreme();
		break;
	}
	case HMMFS_IOC_KSM: {
		struct hmmfs_ioc_ksm *k = (void *)buf;

		k->version = version();
		/* knobs only sometimes: a random run=1 would start the scanner */
		k->set_mask = rnd() % 10 ? 0 : (uint32_t)rnd();
		break;
	}
	case HMMFS_IOC_STATS:
		((struct hmmfs_ioc_stats *)buf)->version = version();
		break;
	}
}

/* A command: a real one, or one made up with the hmmfs magic. */
static unsigned long pick_cmd(size_t *size)
{
	static const unsigned long real[] = {
		HMMFS_IOC_STATS, HMMFS_IOC_SYNC, HMMFS_IOC_MIGRATE, HMMFS_IOC_DEVOP,
		HMMFS_IOC_RESIDENCY, HMMFS_IOC_KSM, HMMFS_IOC_MIGRATE_OLD,
		HMMFS_IOC_OPS,
	};
	static const unsigned int dirs[] = { _IOC_NONE, _IOC_READ, _IOC_WRITE,
					     _IOC_READ | _IOC_WRITE };
	unsigned long cmd;

	if (rnd() % 3) {
		cmd = real[rnd() % (sizeof(real) / sizeof(real[0]))];
	} else {
		size_t sz = rnd() % 3 ? rnd() % 64 : rnd() % 8192;

		cmd = _IOC(dirs[rnd() % 4], HMMFS_IOC_MAGIC, rnd() % 16, sz);
	}
	*size = _IOC_SIZE(cmd);
	return cmd;
}

static bool errno_allowed(int e)
{
	static const int ok[] = {
		EINVAL, ENOTTY, EBADF, EISDIR, ERANGE, ENOSPC, ENODEV, EPERM,
		ENOSYS, EACCES, EFAULT, ENOMEM, E2BIG,
	};

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		if (e == ok[i])
			return true;
	return false;
}

static void ioctl_fuzz(void)
{
	const char *env = getenv("HMMFS_FUZZ_SECS");
	long long end = now_ms() + 1000LL * (env && atoi(env) > 0 ? atoi(env) : 5);
	unsigned long calls = 0, ok = 0, errs[200] = { 0 };
	unsigned char *buf = malloc(16384);
	int fds[6], nfd = 0, seen_bad = 0;
	struct stat st;
	pid_t daemon = it.mount.pid;

	rng_state = (uint64_t)time(NULL);
	printf("\n    fuzz seed %llu\n", (unsigned long long)rng_state);
	IT_REQUIRE_OK(it_put(MNT("f"), "0123456789abcdef", 16));
	IT_REQUIRE_OK(truncate(MNT("f"), 256 * KiB));
	IT_REQUIRE_OK(mkdir(MNT("d"), 0755));
	IT_REQUIRE_OK(mkfifo(MNT("p"), 0644));
	fds[nfd++] = IT_REQUIRE_OK(open(MNT("f"), O_RDONLY));
	fds[nfd++] = IT_REQUIRE_OK(open(MNT("f"), O_RDWR));
	fds[nfd++] = IT_REQUIRE_OK(open(MNT("f"), O_WRONLY));
	fds[nfd++] = IT_REQUIRE_OK(open(MNT("d"), O_RDONLY | O_DIRECTORY));
	fds[nfd++] = IT_REQUIRE_OK(open(it.mnt, O_RDONLY | O_DIRECTORY));
	fds[nfd++] = IT_REQUIRE_OK(open(MNT("p"), O_RDWR | O_NONBLOCK));
	while (now_ms() < end) {
		size_t size;
		unsigned long cmd = pick_cmd(&size);
		int fd = fds[rnd() % nfd], r;

		fill_arg(cmd, buf, size > sizeof(struct hmmfs_ioc_residency) ?
			 size : sizeof(struct hmmfs_ioc_residency));
		errno = 0;
		r = ioctl(fd, cmd, buf);
		calls++;
		if (r >= 0) {
			ok++;
		} else if (errno > 0 && errno < 200) {
			errs[errno]++;
			if (!errno_allowed(errno) && seen_bad++ < 5)
				IT_TRUE(false, "ioctl 0x%lx (size %zu): errno %s", cmd, size,
					it_errname(errno));
		}
		if (kill(daemon, 0) < 0)	/* one assert, not one per call */
			IT_REQUIRE(false, "the daemon died after %lu calls", calls);
	}
	printf("    %lu calls, %lu succeeded;", calls, ok);
	for (int e = 0; e < 200; e++)
		if (errs[e])
			printf(" %s %lu", it_errname(e), errs[e]);
	printf("\n");
	for (int i = 0; i < nfd; i++)
		close(fds[i]);
	free(buf);
	/* still serving, the file's size untouched (devops change bytes only) */
	IT_OK(stat(MNT("f"), &st));
	IT_EQ(st.st_size, 256 * KiB);
	IT_EQ(it_get(MNT("f"), buf = malloc(256 * KiB), 256 * KiB), 256 * KiB);
	free(buf);
	IT_TRUE(calls > 100, "only %lu calls in the time", calls);
}

/* ---- hmmfsctl -------------------------------------------------------- */

static void ctl_rejects_malformed_input(void)
{
	static const struct {
		const char *args[7];
		int rc;
		const char *says;
	} cases[] = {
		{ { NULL }, 2, "usage" },
		{ { "bogus" }, 2, "unknown command 'bogus'" },
		{ { "migrate", "@f" }, 2, "usage: hmmfsctl migrate" },
		{ { "migrate", "--to", "sideways", "@f" }, 2, "usage: hmmfsctl migrate" },
		{ { "migrate", "--to", "device", "@f", "--offset", "-1" }, 2,
		  "--offset: not a size: '-1'" },
		{ { "migrate", "--to", "device", "@f", "--offset", "99999999999999999999999" },
		  2, "not a size: '99999999999999999999999'" },
		{ { "migrate", "--to", "device", "@f", "--length", "1x" }, 2,
		  "--length: not a size: '1x'" },
		{ { "migrate", "--to", "device", "@f", "--length", "0.1K" }, 2,
		  "--length: not a size: '0.1K'" },
		{ { "migrate", "--to", "device", "@f", "--offset", "9223372036854775807" },
		  1, "past the end of the file" },
		{ { "migrate", "--to", "device", "@" }, 1, "not a regular file" },
		{ { "devop", "@f", "--op", "bogus", "--value", "1" }, 2,
		  "usage: hmmfsctl devop" },
		{ { "devop", "@f", "--op", "fill", "--value", "256" }, 2,
		  "--value must be 0..255" },
		{ { "residency", "@nonexistent" }, 1, "No such file or directory" },
		{ { "stats", "/" }, 1, "not an hmmfs mount" },
		{ { "stats", "@", "extra" }, 2, "unexpected 'extra'" },
		{ { "ksm", "@", "--set", "nosuch=1" }, 2, "expected knob=value" },
		{ { "ksm", "@", "--set", "run=abc" }, 2, "not a number" },
	};
	char paths[7][PATH_MAX];

	if (!it.hmmfsctl) {
		IT_TRUE(false, "HMMFSCTL is not set");
		return;
	}
	IT_REQUIRE_OK(it_put_str(MNT("f"), "abc"));
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *argv[9] = { (char *)it.hmmfsctl };
		struct it_proc p;
		int n = 1;

		/* "@x" is x inside the mount */
		for (int k = 0; cases[i].args[k]; k++, n++) {
			const char *a = cases[i].args[k];

			snprintf(paths[k], sizeof(paths[k]), "%s",
				 a[0] == '@' ? MNT(a + 1) : a);
			argv[n] = paths[k];
		}
		argv[n] = NULL;
		IT_OK(it_spawn(argv, NULL, 5000, &p));
		IT_TRUE(WIFEXITED(p.status) && WEXITSTATUS(p.status) == cases[i].rc,
			"hmmfsctl %s %s: wait status 0x%x, want exit %d",
			argv[1] ? argv[1] : "", argv[2] ? argv[2] : "",
			(unsigned int)p.status, cases[i].rc);
		IT_HAS(p.err, cases[i].says);
	}
}

/* ---- allow_other ----------------------------------------------------- */

#define NOBODY 65534

struct nobody_out {
	char msg[256];
};

static int fail(void *out, int code, const char *what, int err)
{
	snprintf(((struct nobody_out *)out)->msg, sizeof(((struct nobody_out *)out)->msg),
		 "%s: %s", what, it_errname(err));
	return code;
}

/* As uid 65534: what may and may not be done. */
static int nobody_tries(void *arg, void *out)
{
	struct hmmfs_ioc_migrate m = { .version = HMMFS_IOC_VERSION,
				       .to = HMMFS_TO_DEVICE };
	struct hmmfs_ioc_devop d = { .version = HMMFS_IOC_VERSION,
				     .op = HMMFS_DEVOP_FILL, .value = 'X' };
	struct hmmfs_ioc_ksm k = { .version = HMMFS_IOC_VERSION,
				   .set_mask = 1u << HMMFS_KSM_RUN, .knobs = { 1 } };
	int fd;

	(void)arg;
	if (open(MNT("secret"), O_RDONLY) >= 0 || errno != EACCES)
		return fail(out, 1, "open secret O_RDONLY (want EACCES)", errno);
	if (open(MNT("secret"), O_WRONLY) >= 0 || errno != EACCES)
		return fail(out, 2, "open secret O_WRONLY (want EACCES)", errno);
	if (open(MNT("public"), O_WRONLY) >= 0 || errno != EACCES)
		return fail(out, 3, "open public O_WRONLY (want EACCES)", errno);
	if (open(MNT("newfile"), O_CREAT | O_WRONLY, 0644) >= 0 || errno != EACCES)
		return fail(out, 4, "create in root's directory (want EACCES)", errno);
	fd = open(MNT("public"), O_RDONLY);
	if (fd < 0)
		return fail(out, 5, "open public O_RDONLY", errno);
	if (ioctl(fd, HMMFS_IOC_DEVOP, &d) == 0 || errno != EBADF)
		return fail(out, 6, "devop on a read-only fd (want EBADF)", errno);
	if (ioctl(fd, HMMFS_IOC_MIGRATE, &m) < 0)
		return fail(out, 7, "migrate a readable file", errno);
	if (ioctl(fd, HMMFS_IOC_KSM, &k) == 0 || errno != EPERM)
		return fail(out, 8, "ksm knobs (want EPERM)", errno);
	close(fd);
	return 0;
}

static void allow_other_nobody(void)
{
	char *argv[] = { (char *)it.hmmfsctl, "migrate", "--to", "device",
			 (char *)MNT("secret"), NULL };
	struct nobody_out out = { "" };
	struct it_proc p;
	struct stat st;
	int ret;

	IT_REQUIRE_OK(it_put_str(MNT("secret"), "root only"));
	IT_REQUIRE_OK(chmod(MNT("secret"), 0600));
	IT_REQUIRE_OK(it_put_str(MNT("public"), "anyone may read"));
	IT_REQUIRE_OK(chmod(MNT("public"), 0644));
	IT_REQUIRE_OK(chmod(it.mnt, 0755));
	ret = it_child(nobody_tries, NULL, &out, sizeof(out), NOBODY, NOBODY);
	IT_TRUE(ret == 0, "uid %d, step %d: %s", NOBODY, ret, out.msg);
	if (it.hmmfsctl) {
		IT_OK(it_spawn(argv, NULL, 5000, &p));	/* as root: fine */
		IT_TRUE(WIFEXITED(p.status) && WEXITSTATUS(p.status) == 0,
			"root: hmmfsctl migrate: 0x%x %s", (unsigned int)p.status, p.err);
	}
	IT_CONTENT_BOTH_STR("secret", "root only");
	IT_CONTENT_BOTH_STR("public", "anyone may read");
	IT_ERRNO(stat(BACK("newfile"), &st), ENOENT);
}

static uid_t ctl_uid;

static void become_nobody(void)
{
	if (setgroups(0, NULL) || setgid(ctl_uid) || setuid(ctl_uid))
		_exit(126);
}

/* hmmfsctl as uid 65534 on a file it cannot read: a clear refusal. */
static void allow_other_ctl_refuses(void)
{
	char *argv[] = { (char *)it.hmmfsctl, "migrate", "--to", "device",
			 (char *)MNT("secret"), NULL };
	struct it_proc p;

	if (!it.hmmfsctl) {
		IT_TRUE(false, "HMMFSCTL is not set");
		return;
	}
	IT_REQUIRE_OK(it_put_str(MNT("secret"), "root only"));
	IT_REQUIRE_OK(chmod(MNT("secret"), 0600));
	IT_REQUIRE_OK(chmod(it.mnt, 0755));
	ctl_uid = NOBODY;
	IT_OK(it_spawn(argv, become_nobody, 5000, &p));
	IT_TRUE(WIFEXITED(p.status) && WEXITSTATUS(p.status) == 1,
		"hmmfsctl as nobody: wait status 0x%x", (unsigned int)p.status);
	IT_HAS(p.err, "permission denied");
	IT_CONTENT_BOTH_STR("secret", "root only");
}

static const struct it_test tests[] = {
	{ "ioctl_fuzz", ioctl_fuzz, 0, NULL },
	{ "hmmfsctl rejects malformed input", ctl_rejects_malformed_input, 0, NULL },
	{ "allow_other: uid 65534 is refused", allow_other_nobody, 0,
	  "allow_other,host_cache=1M" },
	{ "allow_other: hmmfsctl as uid 65534 is refused", allow_other_ctl_refuses,
	  0, "allow_other,host_cache=1M" },
	{ NULL, NULL, 0, NULL },
};

const struct it_suite it_suite_badinput = { "badinput", "host_cache=4M", 0, tests };
