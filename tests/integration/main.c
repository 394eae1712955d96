/* SPDX-License-Identifier: MIT */
/*
 * tests/integration/main.c — the integration test runner.
 *
 *     HMMFS=/abs/path/hmmfs [HMMFSCTL=...] integration_tests [--list] [SEL...]
 *
 * SEL is a suite name ("io") or one test ("io:o_append"); with no SEL
 * every suite runs.  Each test goes through run_current_test(): a fresh
 * tree, a fresh mount (unless the test asks for none), the test, then the
 * unmount, whose daemon exit status must be 0.  The suite teardown tears
 * down whatever a fatal assertion left behind.  CUnit's verbose runner
 * prints each test and the summary; the exit status is 1 if anything
 * failed, 77 if the suite cannot run here (not root, no /dev/fuse, no
 * $HMMFS), 2 for a bad selection.
 *
 * HMMFS_IT_NOMOUNT=1 runs the tests against BACKING itself, to check the
 * tests' own logic without a daemon (mount-specific tests then fail).
 * HMMFS_IT_TIMEOUT=SECS changes the per-test watchdog (default 30; a
 * test flagged IT_LONG, one that moves a GiB or more, gets IT_LONG_FACTOR
 * times that: on a loaded 2-core machine it took over 30 s).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <CUnit/Basic.h>

#include "tests/common/cunit_report.h"
#include "tests/integration/harness.h"

static const struct it_suite *const all_suites[] = {
	&it_suite_attr, &it_suite_names, &it_suite_io, &it_suite_fallocate,
	&it_suite_mmap, &it_suite_dir, &it_suite_xattr, &it_suite_access,
	&it_suite_locks, &it_suite_concurrency, &it_suite_escape,
	&it_suite_startup, &it_suite_options, &it_suite_direct_io,
	&it_suite_cache,
	&it_suite_device,
	&it_suite_ksm,
	&it_suite_faults,
	&it_suite_badinput,
	&it_suite_writes,
};
#define N_SUITES (sizeof(all_suites) / sizeof(all_suites[0]))

/* Which it_test a registered CUnit test runs. */
struct registered {
	CU_pTest cu;
	const struct it_suite *suite;
	const struct it_test *test;
};

static struct registered *registry;
static size_t n_registered;
static unsigned int test_timeout_s = 30;

static const struct registered *current(void)
{
	CU_pTest cu = CU_get_current_test();
	size_t i;

	for (i = 0; i < n_registered; i++)
		if (registry[i].cu == cu)
			return &registry[i];
	return NULL;
}

/* Unmount after a test that ran to its end; the daemon must exit 0. */
static void finish_test(void)
{
	int status, ret;

	it_watchdog(0);
	IT_TRUE(!it.timed_out, "the test ran past its watchdog (%u s, %u s for "
		"a long one); the daemon was killed", test_timeout_s,
		test_timeout_s * IT_LONG_FACTOR);
	if (!it.mount.live)
		return;
	ret = it_mount_stop(&it.mount, &status);
	IT_TRUE(ret == 0, "umount %s stayed busy; detached lazily", it.mnt);
	IT_TRUE(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
		"daemon after umount: wait status 0x%x (want exit 0); log: %s",
		(unsigned int)status, it_log_tail(1500));
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/*
 * A test that took a while says how long, before CUnit's verdict: one
 * that nears its watchdog on a loaded machine shows up in the log.
 */
static void say_if_slow(double start)
{
	double took = now_s() - start;

	if (took >= 5.0) {
		printf("[%.1f s] ", took);
		fflush(stdout);
	}
}

static void run_current_test(void)
{
	const struct registered *r = current();
	double start = now_s();
	unsigned int flags;
	const char *opts;
	char err[1024];

	IT_REQUIRE(r != NULL, "internal: unknown test");
	IT_REQUIRE(it_env_create(err, sizeof(err)) == 0, "%s", err);
	flags = r->suite->flags | r->test->flags;
	opts = r->test->opts ? r->test->opts : r->suite->opts;
	it_watchdog(test_timeout_s * (flags & IT_LONG ? IT_LONG_FACTOR : 1));
	if (!(flags & IT_NO_MOUNT))
		it_mount_default(opts, flags & IT_DEBUG);
	r->test->fn();
	finish_test();
	say_if_slow(start);
}

static void teardown(void)
{
	it_test_cleanup();
}

/* Does @sel select suite @s (and, if @t, test @t)? */
static bool selects(const char *sel, const struct it_suite *s,
		    const struct it_test *t)
{
	size_t len = strlen(s->name);

	if (strncmp(sel, s->name, len) != 0)
		return false;
	if (sel[len] == '\0')
		return true;
	return sel[len] == ':' && (!t || strcmp(sel + len + 1, t->name) == 0);
}

static bool selected(int nsel, char **sel, const struct it_suite *s,
		     const struct it_test *t)
{
	int i;

	if (nsel == 0)
		return true;
	for (i = 0; i < nsel; i++)
		if (selects(sel[i], s, t))
			return true;
	return false;
}

static int add_suite(const struct it_suite *s, int nsel, char **sel)
{
	const struct it_test *t;
	CU_pSuite cs = NULL;

	for (t = s->tests; t->name; t++) {
		if (!selected(nsel, sel, s, t))
			continue;
		if (!cs)
			cs = CU_add_suite_with_setup_and_teardown(s->name, NULL, NULL,
								  NULL, teardown);
		if (!cs)
			return -1;
		registry[n_registered].cu = CU_add_test(cs, t->name, run_current_test);
		if (!registry[n_registered].cu)
			return -1;
		registry[n_registered].suite = s;
		registry[n_registered].test = t;
		n_registered++;
	}
	return 0;
}

static size_t count_tests(void)
{
	const struct it_test *t;
	size_t i, n = 0;

	for (i = 0; i < N_SUITES; i++)
		for (t = all_suites[i]->tests; t->name; t++)
			n++;
	return n;
}

static void list_tests(void)
{
	const struct it_test *t;
	size_t i;

	for (i = 0; i < N_SUITES; i++)
		for (t = all_suites[i]->tests; t->name; t++)
			printf("%s:%s\n", all_suites[i]->name, t->name);
}

/* 0 if every selector names a suite or a test. */
static int check_selectors(int nsel, char **sel)
{
	const struct it_test *t;
	size_t i;
	int k;

	for (k = 0; k < nsel; k++) {
		bool found = false;

		for (i = 0; i < N_SUITES && !found; i++)
			for (t = all_suites[i]->tests; t->name && !found; t++)
				found = selects(sel[k], all_suites[i], t);
		if (!found) {
			fprintf(stderr, "integration: no suite or test '%s' (try --list)\n",
				sel[k]);
			return -1;
		}
	}
	return 0;
}

/* Exit 77 with a reason if the tests cannot run here. */
static void check_can_run(void)
{
	static char hmmfs[PATH_MAX];
	const char *env = getenv("HMMFS");
	const char *nomount = getenv("HMMFS_IT_NOMOUNT");
	const char *timeout = getenv("HMMFS_IT_TIMEOUT");

	it.nomount = nomount && strcmp(nomount, "1") == 0;
	it.hmmfsctl = getenv("HMMFSCTL");
	if (timeout && atoi(timeout) > 0)
		test_timeout_s = (unsigned int)atoi(timeout);
	if (!env || !*env || !realpath(env, hmmfs) || access(hmmfs, X_OK) < 0) {
		fprintf(stderr, "integration: set HMMFS to the hmmfs binary (got '%s')\n",
			env ? env : "");
		exit(77);
	}
	it.hmmfs = hmmfs;
	if (!it.nomount && (geteuid() != 0 || access("/dev/fuse", R_OK | W_OK) < 0)) {
		fprintf(stderr, "integration: needs root and /dev/fuse\n");
		exit(77);
	}
}

static int run(int nsel, char **sel)
{
	CU_RunSummary *sum;
	size_t i;
	int failed;

	registry = calloc(count_tests(), sizeof(*registry));
	if (!registry || CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	for (i = 0; i < N_SUITES; i++) {
		if (add_suite(all_suites[i], nsel, sel) < 0) {
			fprintf(stderr, "integration: CUnit: %s\n", CU_get_error_msg());
			CU_cleanup_registry();
			return 1;
		}
	}
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	sum = CU_get_run_summary();
	failed = sum->nTestsFailed || sum->nSuitesFailed || sum->nAssertsFailed ||
		 CU_get_error() != CUE_SUCCESS;
	cunit_report_failures("integration");
	CU_cleanup_registry();
	free(registry);
	return failed ? 1 : 0;
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "--list") == 0) {
		list_tests();
		return 0;
	}
	if (check_selectors(argc - 1, argv + 1) < 0)
		return 2;
	check_can_run();
	/* exact modes: the tests state every mode they create */
	umask(0);
	it_install_handlers();
	return run(argc - 1, argv + 1);
}
