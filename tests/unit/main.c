/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/main.c — runs every unit suite and prints CUnit's summary.
 * An optional argument names one suite to run.
 */
#include <CUnit/Basic.h>
#include <stdio.h>
#include <string.h>

#include "tests/common/cunit_report.h"
#include "tests/unit/unit.h"

int unit_add_suite(const char *name, const CU_TestInfo *tests)
{
	CU_pSuite s = CU_add_suite(name, NULL, NULL);

	if (!s)
		return CU_get_error();
	for (; tests->pName; tests++)
		if (!CU_add_test(s, tests->pName, tests->pTestFunc))
			return CU_get_error();
	return 0;
}

int main(int argc, char **argv)
{
	int (*const registers[])(void) = {
		register_bounce_io,
		register_bounce_pool,
		register_cache_file,
		register_cache_index,
		register_cache_migrate,
		register_cache_replica,
		register_cache_page,
		register_device_contract,
		register_device_cuda,
		register_device_opencl,
		register_fs_fdcache,
		register_fs_guard,
		register_fs_inode,
		register_fs_options,
		register_log_log,
		register_util_size,
		register_wp_ksm,
	};
	unsigned int failed;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	for (size_t i = 0; i < sizeof(registers) / sizeof(registers[0]); i++)
		if (registers[i]()) {
			fprintf(stderr, "unit: cannot register suite %zu\n", i);
			return 1;
		}
	CU_basic_set_mode(CU_BRM_VERBOSE);
	if (argc > 1) {
		CU_pSuite s = CU_get_suite(argv[1]);

		if (!s) {
			fprintf(stderr, "unit: no suite '%s'\n", argv[1]);
			return 1;
		}
		CU_basic_run_suite(s);
	} else {
		CU_basic_run_tests();
	}
	failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
	cunit_report_failures("unit");
	CU_cleanup_registry();
	return failed ? 1 : 0;
}
