/* SPDX-License-Identifier: MIT */
/*
 * tests/integration/test_direct_io.c — the read/write tests (rw_tests.h)
 * again on a "-o direct_io" mount, where every read and write goes to the
 * daemon instead of the kernel page cache; plus one test that shows
 * direct_io is in effect: a change made in BACKING is read through a
 * descriptor that already read the old bytes.
 */
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "tests/integration/harness.h"
#include "tests/integration/rw_tests.h"

static void reads_reach_backing(void)
{
	char buf[8] = { 0 };
	int fd, bfd;

	IT_REQUIRE_OK(it_put_str(BACK("f"), "old-data"));
	fd = IT_REQUIRE_OK(open(MNT("f"), O_RDONLY));
	IT_EQ(pread(fd, buf, 8, 0), 8);
	IT_MEM_EQ(buf, "old-data", 8);
	bfd = (int)IT_OK(open(BACK("f"), O_WRONLY));
	IT_EQ(pwrite(bfd, "new-data", 8, 0), 8);
	IT_OK(close(bfd));
	IT_EQ(pread(fd, buf, 8, 0), 8);
	IT_MEM_EQ(buf, "new-data", 8);
	IT_OK(close(fd));
}

static const struct it_test tests[] = {
	{ "open_trunc", rw_open_trunc, 0, NULL },
	{ "open_append", rw_open_append, 0, NULL },
	{ "read_write_contents", rw_read_write_contents, IT_LONG, NULL },	/* ~100k requests */
	{ "read_backing_written", rw_read_backing_written, 0, NULL },
	{ "write_past_eof_hole", rw_write_past_eof_hole, 0, NULL },
	{ "read_at_eof", rw_read_at_eof, 0, NULL },
	{ "fsync", rw_fsync, 0, NULL },
	{ "fdatasync", rw_fdatasync, 0, NULL },
	{ "o_direct", rw_o_direct, 0, NULL },
	{ "large_file_64m", rw_large_file, 0, NULL },
	{ "copy_file_range", rw_copy_file_range, 0, NULL },
	{ "append_two_threads", rw_append_two_threads, 0, NULL },
	{ "threads64", rw_threads64, 0, NULL },
	{ "reads_reach_backing", reads_reach_backing, 0, "direct_io,host_cache=0" },
	{ NULL, NULL, 0, NULL },
};

const struct it_suite it_suite_direct_io = { "direct_io", "direct_io", 0, tests };
