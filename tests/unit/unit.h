/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/unit.h — CUnit suites, one per source file.  Each
 * tests/unit/test_<layer>_<file>.c defines one register function, listed
 * in main.c.
 */
#ifndef HMMFS_TESTS_UNIT_H
#define HMMFS_TESTS_UNIT_H

#include <CUnit/CUnit.h>
#include <stdbool.h>
#include <stddef.h>

#include "cache/cache.h"

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

/* fixture.c: what the cache suites set up alike (failing the test if not) */

/*
 * @name in the suite's temp dir @dir (a mkdtemp template, made on first
 * use, *@made), @len bytes of @pat(i): its descriptor, read-write.
 */
int unit_backing_file(char *dir, bool *made, const char *name, size_t len,
		      unsigned char (*pat)(size_t i));
/* A cache made with @cfg and started. */
struct cache *unit_cache(const struct cache_config *cfg);
/* The cache's file for @dir/@name. */
struct cfile *unit_cache_file(struct cache *c, const char *dir, const char *name);

#endif
