/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/test_bounce_io.c — io/: every engine against the same
 * expectations, on a temporary file under /var/tmp (O_DIRECT where ext4
 * allows it): aligned reads and writes, a vectored run, a batch of 64, a
 * short read at EOF and none past it, a bad descriptor failing only its
 * own request, fsync, the fault hook (an error, a short request), eight
 * threads at once, counters, and an unknown engine name.  (The buffered
 * fallback for file systems without O_DIRECT is not covered: tmpfs, the
 * usual example, does O_DIRECT since Linux 6.6.)
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/io.h"
#include "tests/unit/unit.h"

#define BS 4096

static const char *const engine_names[] = { "uring", "aio", "psync" };

static char path[] = "/var/tmp/hmmfs-unit-io.XXXXXX";

static int file_open(int *direct)
{
	int fd = mkstemp(path), dfd;

	CU_ASSERT_FATAL(fd >= 0);
	close(fd);
	dfd = io_open_backing(AT_FDCWD, path, O_RDWR | O_CLOEXEC, 0, direct);
	unlink(path);
	memcpy(path + strlen(path) - 6, "XXXXXX", 6);
	CU_ASSERT_FATAL(dfd >= 0);
	return dfd;
}

static void *aligned(size_t len, int byte)
{
	void *p = NULL;

	CU_ASSERT_FATAL(posix_memalign(&p, BS, len) == 0);
	memset(p, byte, len);
	return p;
}

static void check_engine(const char *name)
{
	struct io_engine *e;
	struct io_engine_stats st;
	char *a = aligned(64 * BS, 'a'), *b = aligned(64 * BS, 0);
	struct iovec iov[4];
	struct io_req r[64];
	int direct, fd = file_open(&direct);

	CU_ASSERT_EQUAL_FATAL(io_engine_open(name, 64, &e), 0);
	io_engine_set_inline_max(e, 0);	/* the engine itself, not psync */
	CU_ASSERT_STRING_EQUAL(io_engine_name(e), name);
	CU_ASSERT_EQUAL(direct, 1);	/* ext4 under /var/tmp */
	/* 64 single-page writes in one batch */
	for (int i = 0; i < 64; i++) {
		memset(a + i * BS, 'A' + i % 26, BS);
		r[i] = (struct io_req){ .fd = fd, .op = IO_WRITE, .buf = a + i * BS,
					.len = BS, .off = (off_t)i * BS };
	}
	CU_ASSERT_EQUAL(io_submit_wait(e, r, 64), 0);
	for (int i = 0; i < 64; i++)
		CU_ASSERT_EQUAL(r[i].res, BS);
	/* one vectored read of 4 pages from page 10 */
	for (int i = 0; i < 4; i++)
		iov[i] = (struct iovec){ b + i * BS, BS };
	r[0] = (struct io_req){ .fd = fd, .op = IO_READ, .iov = iov, .iovcnt = 4,
				.off = 10 * BS };
	CU_ASSERT_EQUAL(io_submit_wait(e, r, 1), 0);
	CU_ASSERT_EQUAL(r[0].res, 4 * BS);
	CU_ASSERT_EQUAL(memcmp(b, a + 10 * BS, 4 * BS), 0);
	/* at EOF: short; past it: 0; a bad fd fails only its own request */
	CU_ASSERT_EQUAL(ftruncate(fd, 64 * BS - 100), 0);
	r[0] = (struct io_req){ .fd = fd, .op = IO_READ, .buf = b, .len = BS,
				.off = 63 * BS };
	r[1] = (struct io_req){ .fd = fd, .op = IO_READ, .buf = b + BS, .len = BS,
				.off = 80 * BS };
	r[2] = (struct io_req){ .fd = 9999, .op = IO_READ, .buf = b + 2 * BS,
				.len = BS, .off = 0 };
	r[3] = (struct io_req){ .fd = fd, .op = IO_FSYNC };
	CU_ASSERT_EQUAL(io_submit_wait(e, r, 4), 0);
	CU_ASSERT_EQUAL(r[0].res, BS - 100);
	CU_ASSERT_EQUAL(r[1].res, 0);
	CU_ASSERT_EQUAL(r[2].res, -EBADF);
	CU_ASSERT_EQUAL(r[3].res, 0);
	io_engine_stats(e, &st);
	CU_ASSERT_EQUAL(st.writes, 64);
	CU_ASSERT_EQUAL(st.bytes_written, 64 * BS);
	CU_ASSERT_EQUAL(st.reads, 2);	/* the vector and the short read */
	CU_ASSERT_EQUAL(st.bytes_read, 5 * BS - 100);
	io_engine_close(e);
	close(fd);
	free(a);
	free(b);
}

static void test_each_engine(void)
{
	for (size_t i = 0; i < sizeof(engine_names) / sizeof(engine_names[0]); i++)
		check_engine(engine_names[i]);
}

static int fault_eio_on_writes(struct io_req *req, void *arg)
{
	(void)arg;
	return req->op == IO_WRITE ? -EIO : 0;
}

static int fault_short(struct io_req *req, void *arg)
{
	(void)arg;
	return req->op == IO_READ ? 512 : 0;
}

static void test_fault_hook(void)
{
	for (size_t n = 0; n < sizeof(engine_names) / sizeof(engine_names[0]); n++) {
		struct io_engine *e;
		char *a = aligned(BS, 'f');
		int direct, fd = file_open(&direct);
		struct io_req r = { .fd = fd, .op = IO_WRITE, .buf = a, .len = BS };

		CU_ASSERT_EQUAL_FATAL(io_engine_open(engine_names[n], 8, &e), 0);
		io_engine_set_inline_max(e, 0);
		io_engine_set_fault(e, fault_eio_on_writes, NULL);
		CU_ASSERT_EQUAL(io_submit_wait(e, &r, 1), 0);
		CU_ASSERT_EQUAL(r.res, -EIO);
		CU_ASSERT_EQUAL(lseek(fd, 0, SEEK_END), 0);	/* untouched */
		io_engine_set_fault(e, NULL, NULL);
		CU_ASSERT_EQUAL(io_submit_wait(e, &r, 1), 0);
		CU_ASSERT_EQUAL(r.res, BS);
		io_engine_set_fault(e, fault_short, NULL);
		r = (struct io_req){ .fd = fd, .op = IO_READ, .buf = a, .len = BS };
		CU_ASSERT_EQUAL(io_submit_wait(e, &r, 1), 0);
		CU_ASSERT_EQUAL(r.res, 512);
		io_engine_close(e);
		close(fd);
		free(a);
	}
}

struct hammer {
	struct io_engine *e;
	int fd, id, bad;
};

static void *hammer_main(void *arg)
{
	struct hammer *h = arg;
	char *buf = aligned(BS, 0);

	for (int i = 0; i < 200; i++) {
		off_t off = (off_t)(h->id * 200 + i) * BS;
		struct io_req r = { .fd = h->fd, .op = IO_WRITE, .buf = buf,
				    .len = BS, .off = off };

		memset(buf, h->id * 31 + i, BS);
		io_submit_wait(h->e, &r, 1);
		r.op = IO_READ;
		memset(buf, 0, BS);
		io_submit_wait(h->e, &r, 1);
		if (r.res != BS || (unsigned char)buf[BS - 1] !=
		    (unsigned char)(h->id * 31 + i))
			h->bad++;
	}
	free(buf);
	return NULL;
}

static void test_threads(void)
{
	for (size_t n = 0; n < sizeof(engine_names) / sizeof(engine_names[0]); n++) {
		struct hammer h[8];
		pthread_t th[8];
		struct io_engine *e;
		int direct, fd = file_open(&direct);

		CU_ASSERT_EQUAL_FATAL(io_engine_open(engine_names[n], 16, &e), 0);
		io_engine_set_inline_max(e, 0);
		for (int i = 0; i < 8; i++) {
			h[i] = (struct hammer){ .e = e, .fd = fd, .id = i };
			pthread_create(&th[i], NULL, hammer_main, &h[i]);
		}
		for (int i = 0; i < 8; i++) {
			pthread_join(th[i], NULL);
			CU_ASSERT_EQUAL(h[i].bad, 0);
		}
		io_engine_close(e);
		close(fd);
	}
}

static void test_unknown_engine(void)
{
	struct io_engine *e;

	CU_ASSERT_EQUAL(io_engine_open("spdk", 8, &e), -EINVAL);
}

int register_bounce_io(void)
{
	static const CU_TestInfo tests[] = {
		{ "each engine: batches, vectors, EOF, errors", test_each_engine },
		{ "fault hook", test_fault_hook },
		{ "eight threads per engine", test_threads },
		{ "unknown engine", test_unknown_engine },
		CU_TEST_INFO_NULL,
	};

	return unit_add_suite("bounce_io", tests);
}
