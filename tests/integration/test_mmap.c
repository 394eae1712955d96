/* SPDX-License-Identifier: MIT */
/*
 * tests/integration/test_mmap.c — memory-mapped files through the mount.
 *
 * A shared writable mapping's stores must reach the BACKING file after
 * msync(MS_SYNC); a write(2) through another descriptor must be visible
 * through an existing shared mapping; a private mapping's stores must
 * never reach the file; a mapping of a file written in BACKING must show
 * its content.
 */
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/integration/harness.h"

#define LEN 8192

static void *map_file(const char *path, int prot, int flags, int *fdp)
{
	int fd = open(path, O_RDWR);
	void *p;

	*fdp = fd;
	if (fd < 0)
		return MAP_FAILED;
	p = mmap(NULL, LEN, prot, flags, fd, 0);
	if (p == MAP_FAILED) {
		close(fd);
		*fdp = -1;
	}
	return p;
}

static void shared_write_msync(void)
{
	char expect[LEN];
	char *p;
	int fd;

	fd = IT_REQUIRE_OK(open(MNT("f"), O_CREAT | O_RDWR, 0644));
	IT_OK(ftruncate(fd, LEN));
	IT_OK(close(fd));
	p = map_file(MNT("f"), PROT_READ | PROT_WRITE, MAP_SHARED, &fd);
	IT_REQUIRE(p != MAP_FAILED, "mmap: %s", it_errname(errno));
	it_pattern(expect, LEN, 21, 0);
	memcpy(p, expect, LEN);
	IT_OK(msync(p, LEN, MS_SYNC));
	IT_CONTENT(BACK("f"), expect, LEN);
	IT_OK(munmap(p, LEN));
	IT_OK(close(fd));
	IT_CONTENT(MNT("f"), expect, LEN);
}

static void write_seen_by_mapping(void)
{
	char data[LEN];
	char *p;
	int fd, wfd;

	memset(data, 'A', sizeof(data));
	IT_REQUIRE_OK(it_put(MNT("f"), data, sizeof(data)));
	p = map_file(MNT("f"), PROT_READ, MAP_SHARED, &fd);
	IT_REQUIRE(p != MAP_FAILED, "mmap: %s", it_errname(errno));
	IT_EQ(p[100], 'A');
	wfd = (int)IT_OK(open(MNT("f"), O_WRONLY));
	if (wfd >= 0) {
		IT_EQ(pwrite(wfd, "BBBB", 4, 100), 4);
		IT_EQ(pwrite(wfd, "CC", 2, LEN - 2), 2);
		IT_OK(close(wfd));
	}
	IT_MEM_EQ(p + 100, "BBBB", 4);
	IT_MEM_EQ(p + LEN - 2, "CC", 2);
	IT_OK(munmap(p, LEN));
	IT_OK(close(fd));
}

static void private_mapping_not_written(void)
{
	char data[LEN];
	char *p;
	int fd;

	memset(data, 'P', sizeof(data));
	IT_REQUIRE_OK(it_put(MNT("f"), data, sizeof(data)));
	p = map_file(MNT("f"), PROT_READ | PROT_WRITE, MAP_PRIVATE, &fd);
	IT_REQUIRE(p != MAP_FAILED, "mmap: %s", it_errname(errno));
	memset(p, 'Q', LEN);
	IT_OK(msync(p, LEN, MS_SYNC));
	IT_OK(munmap(p, LEN));
	IT_OK(close(fd));
	IT_CONTENT_BOTH("f", data, sizeof(data));
}

static void mapping_shows_backing_content(void)
{
	char expect[LEN];
	char *p;
	int fd;

	it_pattern(expect, LEN, 22, 0);
	IT_REQUIRE_OK(it_put(BACK("f"), expect, LEN));
	p = map_file(MNT("f"), PROT_READ, MAP_SHARED, &fd);
	IT_REQUIRE(p != MAP_FAILED, "mmap: %s", it_errname(errno));
	IT_MEM_EQ(p, expect, LEN);
	IT_OK(munmap(p, LEN));
	IT_OK(close(fd));
}

static const struct it_test tests[] = {
	{ "shared_write_msync", shared_write_msync, 0, NULL },
	{ "write_seen_by_mapping", write_seen_by_mapping, 0, NULL },
	{ "private_mapping_not_written", private_mapping_not_written, 0, NULL },
	{ "mapping_shows_backing_content", mapping_shows_backing_content, 0, NULL },
	{ NULL, NULL, 0, NULL },
};

const struct it_suite it_suite_mmap = { "mmap", NULL, 0, tests };
