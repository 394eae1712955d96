/* SPDX-License-Identifier: MIT */
/*
 * tests/integration/test_io.c — open, create, read, write, flush, fsync,
 * O_DIRECT, O_TMPFILE, a 64 MiB file, copy_file_range, SEEK_DATA/
 * SEEK_HOLE, changes made directly in BACKING (close-to-open) and writes
 * past BACKING's file size limit (EFBIG).
 *
 * Data is a position-dependent pattern (it_pattern), so a misplaced or
 * stale block shows up as the first wrong offset.  Every write made
 * through the mount is read back through the mount and from BACKING.  The
 * rw_* tests also run on a direct_io mount (test_direct_io.c).
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/integration/harness.h"
#include "tests/integration/rw_tests.h"

#define KiB 1024
#define MiB (1024 * 1024)

static void expect_size(const char *path, off_t size)
{
	struct stat st;

	if (IT_OK(stat(path, &st)) == 0)
		IT_TRUE(st.st_size == size, "%s: size %lld, expected %lld", path,
			(long long)st.st_size, (long long)size);
}

static void expect_size_both(const char *rel, off_t size)
{
	expect_size(MNT(rel), size);
	expect_size(BACK(rel), size);
}

static void expect_pattern_file(const char *path, off_t off, size_t len,
				uint32_t seed)
{
	off_t bad = it_file_check(path, off, len, seed);

	IT_TRUE(bad < 0, "%s: wrong or missing data at offset %lld", path,
		(long long)bad);
}

static void create_excl(void)
{
	struct stat st;
	int fd;

	fd = IT_REQUIRE_OK(open(MNT("f"), O_CREAT | O_EXCL | O_WRONLY, 0640));
	IT_OK(close(fd));
	IT_ERRNO(open(MNT("f"), O_CREAT | O_EXCL | O_WRONLY, 0640), EEXIST);
	IT_OK(stat(BACK("f"), &st));
	IT_EQ_OCT(st.st_mode, S_IFREG | 0640);
	IT_OK(stat(MNT("f"), &st));
	IT_EQ_OCT(st.st_mode, S_IFREG | 0640);
	IT_EQ(st.st_size, 0);
}

static void create_excl_on_symlink(void)
{
	IT_REQUIRE_OK(symlink("nowhere", MNT("l")));
	IT_ERRNO(open(MNT("l"), O_CREAT | O_EXCL | O_WRONLY, 0644), EEXIST);
	IT_GONE_BOTH("nowhere");
}

void rw_open_trunc(void)
{
	char data[100];
	int fd;

	memset(data, 'z', sizeof(data));
	IT_REQUIRE_OK(it_put(MNT("f"), data, sizeof(data)));
	fd = IT_REQUIRE_OK(open(MNT("f"), O_WRONLY | O_TRUNC));
	IT_OK(close(fd));
	expect_size_both("f", 0);
	IT_CONTENT_BOTH("f", "", 0);
}

/*
 * The same for files the daemon has not read or written yet (made in
 * BACKING): O_TRUNC, truncate() and fallocate() must still reach BACKING
 * and the sizes the mount shows.
 */
static void size_changes_of_untouched_files(void)
{
	char data[100];
	int fd;

	memset(data, 'z', sizeof(data));
	IT_REQUIRE_OK(it_put(BACK("t"), data, sizeof(data)));
	IT_REQUIRE_OK(it_put(BACK("s"), data, sizeof(data)));
	IT_REQUIRE_OK(it_put(BACK("a"), data, sizeof(data)));
	fd = IT_REQUIRE_OK(open(MNT("t"), O_WRONLY | O_TRUNC));
	IT_OK(close(fd));
	expect_size_both("t", 0);
	IT_OK(truncate(MNT("s"), 10));
	expect_size_both("s", 10);
	IT_CONTENT_BOTH("s", data, 10);
	fd = IT_REQUIRE_OK(open(MNT("a"), O_WRONLY));
	IT_OK(fallocate(fd, 0, 4000, 1000));
	IT_OK(close(fd));
	expect_size_both("a", 5000);
}

void rw_open_append(void)
{
	int fd;

	IT_REQUIRE_OK(it_put_str(MNT("f"), "abc"));
	fd = IT_REQUIRE_OK(open(MNT("f"), O_WRONLY | O_APPEND));
	IT_EQ(lseek(fd, 0, SEEK_SET), 0);
	IT_EQ(write(fd, "def", 3), 3);
	IT_EQ(write(fd, "gh", 2), 2);
	IT_OK(close(fd));
	IT_CONTENT_BOTH_STR("f", "abcdefgh");
}

/* Writes of odd sizes at odd offsets, read back with other odd sizes. */
void rw_read_write_contents(void)
{
	static const size_t write_chunks[] = { 4096, 1000, 65543, 1, 131072 };
	static const size_t read_chunks[] = { 7, 4096, 100000 };
	const size_t total = 300 * KiB;
	size_t i;
	int fd;

	fd = IT_REQUIRE_OK(open(MNT("f"), O_CREAT | O_RDWR | O_TRUNC, 0644));
	for (i = 0; i < 5; i++) {
		size_t chunk = write_chunks[i];
		off_t start = (off_t)(i * total / 5);

		IT_EQ(it_pwrite_pattern(fd, start, total / 5, chunk, 11), 0);
	}
	for (i = 0; i < 3; i++)
		IT_EQ(it_pread_check(fd, 0, total, read_chunks[i], 11), -1);
	IT_OK(close(fd));
	expect_size_both("f", (off_t)total);
	expect_pattern_file(MNT("f"), 0, total, 11);
	expect_pattern_file(BACK("f"), 0, total, 11);
}

void rw_read_backing_written(void)
{
	const size_t len = 200 * KiB + 17;
	int fd;

	fd = IT_REQUIRE_OK(open(BACK("f"), O_CREAT | O_WRONLY, 0644));
	IT_EQ(it_pwrite_pattern(fd, 0, len, 64 * KiB, 12), 0);
	IT_OK(close(fd));
	expect_size(MNT("f"), (off_t)len);
	expect_pattern_file(MNT("f"), 0, len, 12);
}

void rw_write_past_eof_hole(void)
{
	char expect[100010];
	int fd;

	memset(expect, 0, sizeof(expect));
	memcpy(expect + 100000, "0123456789", 10);
	fd = IT_REQUIRE_OK(open(MNT("f"), O_CREAT | O_RDWR, 0644));
	IT_EQ(pwrite(fd, "0123456789", 10, 100000), 10);
	IT_OK(close(fd));
	expect_size_both("f", 100010);
	IT_CONTENT_BOTH("f", expect, sizeof(expect));
}

void rw_read_at_eof(void)
{
	char buf[64];
	int fd;

	IT_REQUIRE_OK(it_put_str(MNT("f"), "0123456789"));
	fd = IT_REQUIRE_OK(open(MNT("f"), O_RDONLY));
	IT_EQ(pread(fd, buf, sizeof(buf), 6), 4);
	IT_MEM_EQ(buf, "6789", 4);
	IT_EQ(pread(fd, buf, sizeof(buf), 10), 0);
	IT_EQ(pread(fd, buf, sizeof(buf), 5000), 0);
	IT_OK(close(fd));
}

static void read_write_one_fd(void)
{
	char buf[16] = { 0 };
	int fd;

	fd = IT_REQUIRE_OK(open(MNT("f"), O_CREAT | O_RDWR, 0644));
	IT_EQ(write(fd, "hello world", 11), 11);
	IT_EQ(lseek(fd, 6, SEEK_SET), 6);
	IT_EQ(read(fd, buf, sizeof(buf)), 5);
	IT_MEM_EQ(buf, "world", 5);
	IT_EQ(lseek(fd, 0, SEEK_CUR), 11);
	IT_EQ(lseek(fd, 0, SEEK_END), 11);
	IT_OK(close(fd));
	IT_CONTENT_BOTH_STR("f", "hello world");
}

/* Each close of a duplicated descriptor flushes; the last one releases. */
static void close_dup_flush(void)
{
	int fd, dupfd;

	fd = IT_REQUIRE_OK(open(MNT("f"), O_CREAT | O_WRONLY, 0644));
	dupfd = IT_REQUIRE_OK(dup(fd));
	IT_EQ(write(fd, "one ", 4), 4);
	IT_OK(close(fd));
	IT_CONTENT_BOTH_STR("f", "one ");
	IT_EQ(write(dupfd, "two", 3), 3);
	IT_OK(close(dupfd));
	IT_CONTENT_BOTH_STR("f", "one two");
}

static void sync_test(bool datasync)
{
	char data[8192];
	int fd;

	it_pattern(data, sizeof(data), 13, 0);
	fd = IT_REQUIRE_OK(open(MNT("f"), O_CREAT | O_RDWR, 0644));
	IT_EQ(write(fd, data, sizeof(data)), sizeof(data));
	if (datasync)
		IT_OK(fdatasync(fd));
	else
		IT_OK(fsync(fd));
	IT_CONTENT(BACK("f"), data, sizeof(data));
	IT_OK(close(fd));
}

void rw_fsync(void)
{
	sync_test(false);
}

void rw_fdatasync(void)
{
	sync_test(true);
}

/* 4096-aligned O_DIRECT I/O: 16 KiB at offset 4096 after a 4 KiB hole. */
void rw_o_direct(void)
{
	const size_t len = 16 * KiB;
	unsigned char *wbuf = NULL, *rbuf = NULL;
	unsigned char *expect = calloc(1, len + 4096);
	int fd;

	IT_REQUIRE(expect && posix_memalign((void **)&wbuf, 4096, len) == 0 &&
		   posix_memalign((void **)&rbuf, 4096, len + 4096) == 0,
		   "out of memory");
	it_pattern(wbuf, len, 14, 4096);
	memcpy(expect + 4096, wbuf, len);
	fd = (int)IT_OK(open(MNT("f"), O_CREAT | O_RDWR | O_DIRECT, 0644));
	if (fd >= 0) {
		IT_EQ(pwrite(fd, wbuf, len, 4096), len);
		IT_EQ(pread(fd, rbuf, len + 4096, 0), len + 4096);
		IT_MEM_EQ(rbuf, expect, len + 4096);
		IT_OK(close(fd));
	}
	IT_CONTENT(BACK("f"), expect, len + 4096);
	IT_CONTENT(MNT("f"), expect, len + 4096);
	free(wbuf);
	free(rbuf);
	free(expect);
}

static void tmpfile_link_works(int fd)
{
	char path[64];

	IT_EQ(write(fd, "anonymous", 9), 9);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	IT_OK(linkat(AT_FDCWD, path, AT_FDCWD, MNT("named"), AT_SYMLINK_FOLLOW));
	IT_OK(close(fd));
	IT_CONTENT_BOTH_STR("named", "anonymous");
}

/* libfuse 3.14 has no tmpfile operation: EOPNOTSUPP is the one accepted
 * failure; success must give a file that linkat() can name. */
static void o_tmpfile(void)
{
	int fd = open(MNT(""), O_TMPFILE | O_RDWR, 0600);
	int err = errno;

	if (fd < 0) {
		printf("[O_TMPFILE: %s%s] ", it_errname(err),
		       err == EOPNOTSUPP ? ", the accepted answer" : "");
		IT_TRUE(err == EOPNOTSUPP, "open(O_TMPFILE): %s, expected success "
			"or EOPNOTSUPP", it_errname(err));
		return;
	}
	printf("[O_TMPFILE: supported, checking linkat] ");
	tmpfile_link_works(fd);
}

/* 64 MiB in 1 MiB writes, read back in 1 MiB reads. */
void rw_large_file(void)
{
	const size_t len = 64 * MiB;
	int fd;

	fd = IT_REQUIRE_OK(open(MNT("big"), O_CREAT | O_RDWR | O_TRUNC, 0644));
	IT_EQ(it_pwrite_pattern(fd, 0, len, MiB, 15), 0);
	IT_EQ(it_pread_check(fd, 0, len, MiB, 15), -1);
	IT_OK(close(fd));
	expect_size_both("big", (off_t)len);
	expect_pattern_file(BACK("big"), 0, len, 15);
	expect_pattern_file(MNT("big"), 0, len, 15);
}

/*
 * 100000 bytes from offset 4096 of a 200000-byte source to offset 10000
 * of a destination holding 5000 bytes of 'x': the destination becomes
 * 5000 'x', 5000 zeros, then the copied bytes.
 */
void rw_copy_file_range(void)
{
	const size_t src_len = 200000, len = 100000, dst_off = 10000;
	unsigned char *expect = calloc(1, dst_off + len);
	loff_t off_in = 4096, off_out = (loff_t)dst_off;
	int in, out;

	IT_REQUIRE(expect != NULL, "out of memory");
	memset(expect, 'x', 5000);
	it_pattern(expect + dst_off, len, 16, 4096);
	in = (int)IT_OK(open(MNT("src"), O_CREAT | O_RDWR, 0644));
	out = (int)IT_OK(open(MNT("dst"), O_CREAT | O_RDWR, 0644));
	if (in >= 0 && out >= 0) {
		IT_EQ(it_pwrite_pattern(in, 0, src_len, 65536, 16), 0);
		IT_EQ(write(out, expect, 5000), 5000);
		IT_EQ(copy_file_range(in, &off_in, out, &off_out, len, 0), len);
		IT_EQ(off_in, 4096 + len);
		IT_EQ(off_out, dst_off + len);
		IT_EQ(lseek(out, 0, SEEK_CUR), 5000);
	}
	if (in >= 0)
		close(in);
	if (out >= 0)
		close(out);
	IT_CONTENT_BOTH("dst", expect, dst_off + len);
	expect_pattern_file(BACK("src"), 0, src_len, 16);
	free(expect);
}

/* Asking for more than the source has left copies what is there. */
static void copy_file_range_short_at_eof(void)
{
	loff_t off_in = 190000, off_out = 0;
	int in, out;

	in = IT_REQUIRE_OK(open(MNT("src"), O_CREAT | O_RDWR, 0644));
	out = (int)IT_OK(open(MNT("dst"), O_CREAT | O_RDWR, 0644));
	IT_EQ(it_pwrite_pattern(in, 0, 200000, 65536, 17), 0);
	if (out >= 0) {
		IT_EQ(copy_file_range(in, &off_in, out, &off_out, 100000, 0), 10000);
		IT_EQ(copy_file_range(in, &off_in, out, &off_out, 100000, 0), 0);
		close(out);
	}
	close(in);
	expect_size(BACK("dst"), 10000);
	expect_size(MNT("dst"), 10000);
}

/*
 * A copy from a hole below an EOF that only the cache knows yet (the write
 * that set it is still dirty, so BACKING is shorter than the source
 * offset) copies the hole's zeros; it must not come back short.
 */
static void copy_file_range_below_dirty_eof(void)
{
	const off_t tail = 1 << 20, dest = 2 << 20, len = 8192;
	unsigned char *expect = calloc(1, (size_t)(dest + len));
	loff_t off_in = 4096, off_out = dest;
	int fd = IT_REQUIRE_OK(open(MNT("f"), O_CREAT | O_RDWR | O_TRUNC, 0644));

	IT_REQUIRE(expect != NULL, "out of memory");
	it_pattern(expect + tail, 4096, 18, 4096);
	IT_EQ(pwrite(fd, expect + tail, 4096, tail), 4096);
	IT_EQ(copy_file_range(fd, &off_in, fd, &off_out, (size_t)len, 0), len);
	IT_OK(close(fd));
	IT_CONTENT_BOTH("f", expect, (size_t)(dest + len));
	free(expect);
}

/* Data at [0, 4K) and [1M, 1M+4K), a hole between. */
static int make_sparse(const char *path)
{
	char block[4096];
	int fd = open(path, O_CREAT | O_RDWR, 0644);

	if (fd < 0)
		return -1;
	memset(block, 'D', sizeof(block));
	if (pwrite(fd, block, sizeof(block), 0) != (ssize_t)sizeof(block) ||
	    pwrite(fd, block, sizeof(block), MiB) != (ssize_t)sizeof(block)) {
		close(fd);
		return -1;
	}
	return fd;
}

static void expect_seek_map(int fd, const char *what)
{
	IT_TRUE(lseek(fd, 0, SEEK_DATA) == 0, "%s: SEEK_DATA 0", what);
	IT_TRUE(lseek(fd, 0, SEEK_HOLE) == 4096, "%s: SEEK_HOLE 0 -> %lld", what,
		(long long)lseek(fd, 0, SEEK_HOLE));
	IT_TRUE(lseek(fd, 4096, SEEK_DATA) == MiB, "%s: SEEK_DATA 4096 -> %lld",
		what, (long long)lseek(fd, 4096, SEEK_DATA));
	IT_TRUE(lseek(fd, 100, SEEK_DATA) == 100, "%s: SEEK_DATA 100", what);
	IT_TRUE(lseek(fd, MiB, SEEK_HOLE) == MiB + 4096, "%s: SEEK_HOLE 1M -> %lld",
		what, (long long)lseek(fd, MiB, SEEK_HOLE));
	IT_ERRNO(lseek(fd, MiB + 4096, SEEK_DATA), ENXIO);
	IT_ERRNO(lseek(fd, MiB + 4096, SEEK_HOLE), ENXIO);
}

static void seek_data_hole(void)
{
	int fd = make_sparse(MNT("sparse"));

	IT_REQUIRE(fd >= 0, "cannot make the sparse file: %s", it_errname(errno));
	expect_seek_map(fd, "mount");
	IT_OK(close(fd));
	fd = IT_REQUIRE_OK(open(BACK("sparse"), O_RDONLY));
	expect_seek_map(fd, "backing");
	IT_OK(close(fd));
	fd = IT_REQUIRE_OK(open(MNT("sparse"), O_RDONLY));
	expect_seek_map(fd, "mount, reopened");
	IT_OK(close(fd));
}

/* Does $HMMFS_IT_OPTS, which every mount gets, contain @opt? */
static bool opts_have(const char *opt)
{
	const char *o = getenv("HMMFS_IT_OPTS");

	return o && strstr(o, opt);
}

/* Read all of @path (at most @cap bytes) into @buf; size or -1. */
static ssize_t read_all(const char *path, char *buf, size_t cap)
{
	ssize_t n = it_get(path, buf, cap);

	IT_TRUE(n >= 0, "%s: read: %s", path, it_errname((int)-n));
	return n;
}

/* The mount shows exactly what BACKING has: size (fstat) and bytes. */
static void expect_mount_is_backing(const char *rel, int fd)
{
	static char m[64 * KiB], b[64 * KiB];
	ssize_t nm, nb;
	struct stat st;

	nb = read_all(BACK(rel), b, sizeof(b));
	if (IT_OK(fstat(fd, &st)) == 0)
		IT_TRUE(st.st_size == nb, "%s: the mount's fstat size %lld, "
			"BACKING has %zd bytes", rel, (long long)st.st_size, nb);
	nm = IT_OK(pread(fd, m, sizeof(m), 0));
	IT_TRUE(nm == nb, "%s: the mount reads %zd bytes, BACKING has %zd",
		rel, nm, nb);
	if (nm == nb && nb > 0) {
		ssize_t i = 0;

		while (i < nb && m[i] == b[i])
			i++;
		IT_TRUE(i == nb, "%s: the mount differs from BACKING at offset %zd",
			rel, i);
	}
}

/*
 * Issue 13 item 7: BACKING's file is truncated to 0 behind the mount while
 * the mount holds one dirty page (and clean ones) of it.  The dirty page
 * was acknowledged, so close writes it over the truncate (as NFS does);
 * the first open after that shows exactly what BACKING then has, not the
 * old clean pages and the old size.
 */
static void backing_truncated_under_dirty_page(void)
{
	static char page[4 * KiB], expect[4 * KiB];
	int fd;

	fd = IT_REQUIRE_OK(open(MNT("f"), O_RDWR | O_CREAT | O_TRUNC, 0644));
	IT_REQUIRE_OK(it_pwrite_pattern(fd, 0, 16 * KiB, 16 * KiB, 1));
	IT_OK(fsync(fd));
	it_pattern(expect, sizeof(expect), 2, 8 * KiB);
	IT_EQ(pwrite(fd, expect, sizeof(expect), 8 * KiB), (ssize_t)sizeof(expect));
	IT_REQUIRE_OK(truncate(BACK("f"), 0));
	IT_OK(close(fd));

	/*
	 * BACKING: the outside truncate with the mount's write applied over
	 * it.  Without a cache the write reached BACKING before the truncate.
	 */
	fd = IT_REQUIRE_OK(open(BACK("f"), O_RDONLY));
	if (!opts_have("host_cache=0")) {
		IT_EQ(pread(fd, page, sizeof(page), 8 * KiB), (ssize_t)sizeof(page));
		IT_TRUE(!memcmp(page, expect, sizeof(page)),
			"BACKING lacks the mount's write at 8 KiB");
	}
	IT_OK(close(fd));

	fd = IT_REQUIRE_OK(open(MNT("f"), O_RDONLY));
	expect_mount_is_backing("f", fd);
	IT_OK(close(fd));
}

/*
 * Issue 13 item 7: 100 bytes appended in BACKING after a close through the
 * mount are seen by the first open after it, at once: the size by fstat
 * (the kernel's cached attributes must go) and the bytes by read.
 */
static void backing_append_seen_at_first_open(void)
{
	static char buf[4 * KiB + 100];
	struct stat st;
	int fd;

	it_pattern(buf, sizeof(buf), 3, 0);
	IT_REQUIRE_OK(it_put(MNT("f"), buf, 4 * KiB));
	fd = IT_REQUIRE_OK(open(MNT("f"), O_RDONLY));	/* cache it, both layers */
	IT_EQ(pread(fd, buf, sizeof(buf), 0), 4 * KiB);
	IT_OK(fstat(fd, &st));
	IT_OK(close(fd));

	it_pattern(buf, sizeof(buf), 3, 0);
	fd = IT_REQUIRE_OK(open(BACK("f"), O_WRONLY | O_APPEND));
	IT_EQ(write(fd, buf + 4 * KiB, 100), 100);
	IT_OK(close(fd));

	fd = IT_REQUIRE_OK(open(MNT("f"), O_RDONLY));
	if (IT_OK(fstat(fd, &st)) == 0)
		IT_EQ(st.st_size, 4 * KiB + 100);
	expect_mount_is_backing("f", fd);
	IT_OK(close(fd));
}

/* BACKING's largest file size: ftruncate() succeeds up to it, then EFBIG. */
static off_t backing_max_size(void)
{
	off_t ok = 0, bad = (off_t)INT64_MAX;
	int fd = IT_REQUIRE_OK(open(BACK("probe"), O_RDWR | O_CREAT, 0600));

	if (ftruncate(fd, bad) == 0)
		ok = bad;
	while (bad - ok > 1) {
		off_t mid = ok + (bad - ok) / 2;

		if (ftruncate(fd, mid) == 0)
			ok = mid;
		else
			bad = mid;
	}
	IT_OK(close(fd));
	IT_OK(unlink(BACK("probe")));
	return ok;
}

/*
 * Issue 13 item 8: a pwrite through the mount at @off fails with EFBIG iff
 * the same pwrite fails so directly in BACKING, fsync and close succeed
 * after it, and the mount shows BACKING's size.
 */
static void pwrite_like_backing(off_t off, bool *refused)
{
	static char buf[4 * KiB], hundred[100];
	struct stat sm, sb;
	ssize_t nb, nm;
	int eb, em, fd;

	memset(buf, 'x', sizeof(buf));
	memset(hundred, 'h', sizeof(hundred));
	IT_REQUIRE_OK(it_put(BACK("d"), hundred, sizeof(hundred)));
	fd = IT_REQUIRE_OK(open(BACK("d"), O_WRONLY));
	nb = pwrite(fd, buf, sizeof(buf), off);
	eb = errno;
	IT_OK(close(fd));
	IT_OK(unlink(BACK("d")));

	IT_REQUIRE_OK(it_put(MNT("f"), hundred, sizeof(hundred)));
	fd = IT_REQUIRE_OK(open(MNT("f"), O_WRONLY));
	nm = pwrite(fd, buf, sizeof(buf), off);
	em = errno;
	IT_TRUE(nm == nb && (nb >= 0 || em == eb),
		"pwrite at %lld: the mount gave %zd (%s), BACKING %zd (%s)",
		(long long)off, nm, nm < 0 ? it_errname(em) : "-", nb,
		nb < 0 ? it_errname(eb) : "-");
	IT_OK(fsync(fd));
	IT_OK(close(fd));
	IT_OK(stat(MNT("f"), &sm));
	IT_OK(stat(BACK("f"), &sb));
	IT_TRUE(sm.st_size == sb.st_size, "after a pwrite at %lld: the mount "
		"shows size %lld, BACKING has %lld", (long long)off,
		(long long)sm.st_size, (long long)sb.st_size);
	IT_TRUE(sb.st_size == (nb < 0 ? 100 : off + nb), "after a pwrite at "
		"%lld: BACKING's size %lld", (long long)off, (long long)sb.st_size);
	*refused = nb < 0;
}

/*
 * truncate (@falloc false) or fallocate to @size through the mount fails
 * as the same call in BACKING does, and leaves the mount and BACKING
 * with the same size.
 */
static void size_op_like_backing(off_t size, bool falloc)
{
	const char *what = falloc ? "fallocate" : "truncate";
	struct stat sm, sb;
	int rb, rm, eb, em, fd;

	IT_REQUIRE_OK(it_put_str(BACK("d"), "abc"));
	fd = IT_REQUIRE_OK(open(BACK("d"), O_WRONLY));
	rb = falloc ? fallocate(fd, 0, size - 4 * KiB, 4 * KiB) : ftruncate(fd, size);
	eb = errno;
	IT_OK(close(fd));
	IT_OK(unlink(BACK("d")));
	IT_REQUIRE_OK(it_put_str(MNT("f"), "abc"));
	fd = IT_REQUIRE_OK(open(MNT("f"), O_WRONLY));
	rm = falloc ? fallocate(fd, 0, size - 4 * KiB, 4 * KiB) : ftruncate(fd, size);
	em = errno;
	IT_TRUE(rm == rb && (rb == 0 || em == eb),
		"%s to %lld: the mount gave %d (%s), BACKING %d (%s)", what,
		(long long)size, rm, rm ? it_errname(em) : "-", rb,
		rb ? it_errname(eb) : "-");
	IT_OK(fsync(fd));
	IT_OK(close(fd));
	IT_OK(stat(MNT("f"), &sm));
	IT_OK(stat(BACK("f"), &sb));
	IT_TRUE(sm.st_size == sb.st_size, "after %s to %lld: the mount shows "
		"size %lld, BACKING has %lld", what, (long long)size,
		(long long)sm.st_size, (long long)sb.st_size);
}

/*
 * Offsets past ext4's limit (16 TiB - 4 KiB with 4 KiB blocks), at 2^62
 * and at the end of what the kernel passes (2^63 - 1): each refused with
 * EFBIG iff BACKING refuses it; the last 4 KiB below BACKING's own limit
 * still written, and a 4 KiB write across it cut short there; truncate
 * and fallocate to those sizes fail as in BACKING.  A file
 * with a refused write keeps its 100 bytes in BACKING after unmount.
 */
static void pwrite_past_backing_limit(void)
{
	static const off_t offs[] = { 16LL << 40, 1LL << 62, INT64_MAX - 8191 };
	off_t max = backing_max_size();
	bool refused, any = false;
	struct stat st;
	int status;

	printf("\n    BACKING's largest file size: %lld ", (long long)max);
	for (size_t i = 0; i < sizeof(offs) / sizeof(offs[0]); i++) {
		pwrite_like_backing(offs[i], &refused);
		any |= refused;
		size_op_like_backing(offs[i], false);
		size_op_like_backing(offs[i], true);
	}
	if (max >= 4 * KiB && max < INT64_MAX)
		pwrite_like_backing(max - 4 * KiB, &refused);
	if (max >= 2 * KiB && max < INT64_MAX)
		pwrite_like_backing(max - 2 * KiB, &refused);
	if (!any)
		return;
	pwrite_like_backing(offs[1], &refused);	/* a refused one last */
	it_mount_stop(&it.mount, &status);
	IT_TRUE(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
		"daemon after umount: wait status 0x%x", (unsigned int)status);
	IT_OK(stat(BACK("f"), &st));
	IT_EQ(st.st_size, 100);
}

static const struct it_test tests[] = {
	{ "create_excl", create_excl, 0, NULL },
	{ "create_excl_on_symlink", create_excl_on_symlink, 0, NULL },
	{ "open_trunc", rw_open_trunc, 0, NULL },
	{ "size_changes_of_untouched_files", size_changes_of_untouched_files, 0, NULL },
	{ "open_append", rw_open_append, 0, NULL },
	{ "read_write_contents", rw_read_write_contents, 0, NULL },
	{ "read_backing_written", rw_read_backing_written, 0, NULL },
	{ "write_past_eof_hole", rw_write_past_eof_hole, 0, NULL },
	{ "read_at_eof", rw_read_at_eof, 0, NULL },
	{ "read_write_one_fd", read_write_one_fd, 0, NULL },
	{ "close_dup_flush", close_dup_flush, 0, NULL },
	{ "fsync", rw_fsync, 0, NULL },
	{ "fdatasync", rw_fdatasync, 0, NULL },
	{ "o_direct", rw_o_direct, 0, NULL },
	{ "o_tmpfile", o_tmpfile, 0, NULL },
	{ "large_file_64m", rw_large_file, 0, NULL },
	{ "copy_file_range", rw_copy_file_range, 0, NULL },
	{ "copy_file_range_short_at_eof", copy_file_range_short_at_eof, 0, NULL },
	{ "copy_file_range_below_dirty_eof", copy_file_range_below_dirty_eof, 0, NULL },
	{ "seek_data_hole", seek_data_hole, 0, NULL },
	/*
	 * With the writeback cache the kernel keeps the size of a file it
	 * holds open, and checks only its own size limit at write(2): those
	 * two run without it (README, "Writes").
	 */
	{ "backing_truncated_under_dirty_page", backing_truncated_under_dirty_page, 0,
	  "nowriteback_cache" },
	{ "backing_append_seen_at_first_open", backing_append_seen_at_first_open, 0, NULL },
	{ "pwrite_past_backing_limit", pwrite_past_backing_limit, 0, "nowriteback_cache" },
	{ NULL, NULL, 0, NULL },
};

const struct it_suite it_suite_io = { "io", NULL, 0, tests };
