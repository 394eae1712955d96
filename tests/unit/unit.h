/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/unit.h — CUnit suites, one per source file.  Each
 * tests/unit/test_<layer>_<file>.c defines one register function, listed
 * in main.c.
 */
#ifndef HMMFS_TESTS_UNIT_H
#define HMMFS_TESTS_UNIT_H

#include <CUnit/CUnit.h>

int register_bounce_io(void);
int register_bounce_pool(void);
int register_cache_file(void);
int register_cache_index(void);
int register_cache_migrate(void);
int register_cache_replica(void);
int register_cache_page(void);
int register_device_contract(void);
int register_device_cuda(void);
int register_device_opencl(void);
int register_fs_fdcache(void);
int register_fs_guard(void);
int register_fs_inode(void);
int register_fs_options(void);
int register_log_log(void);
int register_util_size(void);
int register_wp_ksm(void);

/* Add @tests (NULL-name terminated) as suite @name; 0 or a CUnit error. */
int unit_add_suite(const char *name, const CU_TestInfo *tests);

#endif
