/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/fixture.c — what the cache suites set up alike: a backing
 * file of pattern bytes in the suite's temp dir, a started cache, and the
 * cache's file for it.  Each step fails the running test (CUnit FATAL)
 * when it cannot be done.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "tests/unit/unit.h"

int unit_backing_file(char *dir, bool *made, const char *name, size_t len,
		      unsigned char (*pat)(size_t i))
{
	unsigned char *b = malloc(len ? len : 1);
	char path[300];
	int fd;

	if (!*made) {	/* once: the name made may itself end in X */
		CU_ASSERT_FATAL(mkdtemp(dir) != NULL);
		*made = true;
	}
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	CU_ASSERT_FATAL(fd >= 0 && b);
	for (size_t i = 0; i < len; i++)
		b[i] = pat(i);
	CU_ASSERT_FATAL(pwrite(fd, b, len, 0) == (ssize_t)len);
	free(b);
	return fd;
}

struct cache *unit_cache(const struct cache_config *cfg)
{
	struct cache *c = NULL;
	char err[256];

	CU_ASSERT_FATAL(cache_create(cfg, &c, err, sizeof(err)) == 0);
	CU_ASSERT_FATAL(cache_start(c, err, sizeof(err)) == 0);
	return c;
}

struct cfile *unit_cache_file(struct cache *c, const char *dir, const char *name)
{
	struct cfile *f = NULL;
	char path[300];
	int pfd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	pfd = open(path, O_PATH | O_CLOEXEC);
	CU_ASSERT_FATAL(pfd >= 0);
	CU_ASSERT_FATAL(cache_file_open(c, pfd, &f) == 0);
	close(pfd);
	return f;
}
