/* SPDX-License-Identifier: MIT */
/*
 * fs/ops_data.c — file data: READ, WRITE (write_buf), FLUSH, FSYNC,
 * FALLOCATE, COPY_FILE_RANGE and LSEEK on open files.
 *
 * With the page cache (cache/), a read is answered from its frames and
 * bounce buffers with one writev (read_reply_vec), or else copied through
 * a per-thread buffer, and a write goes into it (write_cached): the cache
 * writes back to BACKING.  Without it (host_cache=0) a read splices from
 * the backing file and a write goes straight to it (write_backing).
 * Writes are checked against BACKING's size limit when they come
 * (write_limit), clear setuid/setgid as a local write would (kill_setid,
 * ops_attr.c), and, for O_DIRECT, have the kernel drop its cached copy of
 * the range before the reply (direct_write_inval).  What runs in BACKING
 * (fallocate, copy_file_range, SEEK_DATA/SEEK_HOLE) first gets our dirty
 * pages, and ranges whose data changed are dropped again after.  FLUSH is
 * close-to-open as NFS does it: what was written through the file reaches
 * BACKING by close, and a writeback error is reported there, once.
 *
 * Locking: none of its own.  Reads and writes use pread/pwrite on the
 * open file's descriptor, the cache locks inside, the read buffers belong
 * to their thread, and the kernel's copies are dropped by the notifier
 * thread (notify.c) with a bounded wait (DIO_INVAL_WAIT_MS,
 * LSEEK_FLUSH_WAIT_MS).
 */
#include "fs/ops_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdlib.h>
#include <unistd.h>

#include "cache/cache.h"
#include "lib/racy.h"
#include "fs/devio.h"
#include "log/log.h"

/*
 * Per-thread buffers for cached reads (a copy buffer and a read vector),
 * so a read allocates nothing; freed when the worker thread exits
 * (libfuse ends idle workers).
 */
static pthread_key_t read_buf_key, read_vec_key;

static pthread_once_t read_buf_once = PTHREAD_ONCE_INIT;

static void read_buf_key_make(void)
{
	pthread_key_create(&read_buf_key, free);
	pthread_key_create(&read_vec_key, free);
}

static void *thread_buf_get(pthread_key_t *key, size_t size)
{
	void *buf;

	pthread_once(&read_buf_once, read_buf_key_make);
	buf = pthread_getspecific(*key);
	if (!buf) {
		buf = malloc(size);
		if (buf && pthread_setspecific(*key, buf)) {
			free(buf);
			buf = NULL;
		}
	}
	return buf;
}

static char *read_buf_get(void)
{
	return thread_buf_get(&read_buf_key, MAX_IO);
}

/* The calling thread's read vector (cache.h, struct cache_read_vec). */
static struct cache_read_vec *read_vec_get(void)
{
	return thread_buf_get(&read_vec_key, sizeof(struct cache_read_vec));
}

/*
 * Answer a read from the cache's own frames and bounce buffers with one
 * writev to the kernel: no copy in between.  Return: false if the read
 * must take the copying path instead.
 */
static bool read_reply_vec(fuse_req_t req, struct cfile *cf, size_t size,
			   off_t off, struct fuse_file_info *fi)
{
	struct cache_read_vec *v = read_vec_get();
	ssize_t n;

	if (!v)
		return false;
	n = cache_read_vec(cf, size, off, &file_of(fi)->ra, v);
	if (n == -EAGAIN)
		return false;
	if (n < 0) {
		fuse_reply_err(req, (int)-n);
		return true;
	}
	racy_read_begin();	/* the frames' bytes, read as writers change them */
	fuse_reply_iov(req, v->iov, v->n);
	racy_read_end();
	cache_read_vec_done(cf, v);
	return true;
}

void hmmfs_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	struct hmm_inode *inode = file_of(fi)->inode;	/* no table lookup */
	struct fuse_bufvec buf = FUSE_BUFVEC_INIT(size);
	struct cfile *cf;
	ssize_t n;
	int ret = file_cfile(fs_of(req), inode, fi, true, &cf);

	(void)ino;	/* the open file's inode */
	if (ret) {
		fuse_reply_err(req, -ret);
		return;
	}
	/* before the reply: the kernel asks for atime right after it */
	atime_read(fs_of(req), inode);
	if (cf && read_reply_vec(req, cf, size, off, fi))
		return;
	if (cf) {
		char *read_buf = read_buf_get();

		if (!read_buf) {
			fuse_reply_err(req, ENOMEM);
			return;
		}
		if (size > MAX_IO)
			size = MAX_IO;
		n = cache_read(cf, read_buf, size, off, &file_of(fi)->ra);
		if (n < 0)
			fuse_reply_err(req, (int)-n);
		else
			fuse_reply_buf(req, read_buf, (size_t)n);
		return;
	}
	buf.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	buf.buf[0].fd = fh_fd(fi);
	buf.buf[0].pos = off;
	fuse_reply_data(req, &buf, FUSE_BUF_SPLICE_MOVE);
}

/*
 * Write through the cache: the data must be in memory.  @all: the
 * kernel's write-back, all of it or an error (cache_write_all()).
 * Return: bytes.
 */
static ssize_t write_cached(struct cfile *cf, struct fuse_bufvec *in,
			    off_t off, bool all)
{
	size_t len = fuse_buf_size(in);
	struct fuse_bufvec tmp = FUSE_BUFVEC_INIT(len);
	const void *data;
	ssize_t n;

	if (in->count == 1 && !(in->buf[0].flags & FUSE_BUF_IS_FD)) {
		data = in->buf[0].mem;
	} else {
		tmp.buf[0].mem = malloc(len);
		if (!tmp.buf[0].mem)
			return -ENOMEM;
		n = fuse_buf_copy(&tmp, in, 0);
		if (n < 0) {
			free(tmp.buf[0].mem);
			return n;
		}
		len = (size_t)n;
		data = tmp.buf[0].mem;
	}
	n = all ? cache_write_all(cf, data, len, off) : cache_write(cf, data, len, off);
	free(tmp.buf[0].mem);
	return n;
}

/* Write straight to the backing file.  Return: bytes. */
static ssize_t write_backing(struct fuse_bufvec *in, off_t off,
			     struct fuse_file_info *fi)
{
	struct fuse_bufvec out = FUSE_BUFVEC_INIT(fuse_buf_size(in));

	out.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK | FUSE_BUF_FD_RETRY;
	out.buf[0].fd = fh_fd(fi);
	out.buf[0].pos = off;
	return fuse_buf_copy(&out, in, 0);
}

/*
 * An O_DIRECT write went around the kernel's page cache of the file, but
 * buffered readers may have filled that cache with the old bytes while
 * the write was in flight.  The kernel drops them again after a direct
 * write only if it was synchronous: generic_file_direct_write() skips that
 * for AIO (-EIOCBQUEUED), and FUSE's AIO completion does not do it either
 * (generic/451).  So drop the range here, and before the reply, so that a
 * read after the write completes comes to us.  The notifier thread sends
 * it (the kernel may wait for reads of the range that need a worker); in
 * single-threaded mode waiting could stall on such a read, so we do not.
 *
 * The wait is short (DIO_INVAL_WAIT_MS), because the kernel counts this
 * write among its background requests until we reply: with enough such
 * writes waiting, readahead that holds locked pages of the range cannot
 * even be sent, and the invalidation waits for those pages.  Past the
 * limit the reply goes without it (the notifier still drops the range a
 * moment later); the stress run found that cycle with a 5 s wait, which
 * cut its throughput to a few requests a second.
 */
#define DIO_INVAL_WAIT_MS 100

static void direct_write_inval(fuse_req_t req, fuse_ino_t ino, off_t off,
			       size_t len)
{
	static atomic_bool said;
	struct hmmfs *fs = fs_of(req);

	notify_inval(fs, ino, off, (off_t)len);
	if (!fs->opts->singlethread && notify_flush(fs, DIO_INVAL_WAIT_MS) &&
	    !atomic_exchange(&said, true))
		log_notice("dropping the kernel's cached copy after an "
			"O_DIRECT write waits for reads in flight; replying first "
			"(said once)");
}

/*
 * BACKING's file size limit, checked when the write comes, as a local
 * filesystem checks it (generic_write_check_limits): a write at or past
 * the limit fails with EFBIG, one that crosses it is cut short there.
 * The cache acknowledges writes before BACKING sees them, so without this
 * check the write would succeed, fail only at writeback, and leave the
 * mount showing a size BACKING cannot hold.  Return: 0 or -EFBIG.
 */
static int write_limit(struct hmmfs *fs, struct fuse_bufvec *in, off_t off)
{
	size_t room, total = 0;

	if (off >= fs->max_size)
		return -EFBIG;
	room = (size_t)(fs->max_size - off);
	for (size_t i = in->idx; i < in->count; i++) {
		size_t skip = i == in->idx ? in->off : 0;
		size_t len = in->buf[i].size - skip;

		if (total + len >= room) {
			in->buf[i].size = skip + (room - total);
			in->count = i + 1;
			break;
		}
		total += len;
	}
	return 0;
}

void hmmfs_write_buf(fuse_req_t req, fuse_ino_t ino,
			    struct fuse_bufvec *in, off_t off,
			    struct fuse_file_info *fi)
{
	struct hmm_inode *inode = file_of(fi)->inode;	/* no table lookup */
	struct cfile *cf;
	ssize_t n;
	int ret = write_limit(fs_of(req), in, off);

	if (!ret)
		ret = file_cfile(fs_of(req), inode, fi, true, &cf);
	if (ret) {
		fuse_reply_err(req, -ret);
		return;
	}
	if (devio_kill_suidgid()) {	/* as a local write would (devio.c) */
		ret = kill_setid(req, fh_fd(fi), ino);
		if (ret) {
			fuse_reply_err(req, -ret);
			return;
		}
	}
	atime_written(inode);
	n = cf ? write_cached(cf, in, off, fi->writepage) : write_backing(in, off, fi);
	if (!cf && fi->writepage && n >= 0 && (size_t)n < fuse_buf_size(in)) {
		/* a short reply to a write-back counts as all of it (see cache.h) */
		log_err("write-back from the kernel to node id %#llx: %zd of %zu bytes "
			"at %lld reached BACKING; the kernel is told EIO",
			(unsigned long long)ino, n, fuse_buf_size(in), (long long)off);
		n = -EIO;
	}
	if (n > 0 && (fi->flags & O_DIRECT))
		direct_write_inval(req, ino, off, (size_t)n);
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else
		fuse_reply_write(req, (size_t)n);
}

void hmmfs_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	/* close() of a duplicate reports deferred write errors (NFS-style) */
	struct cfile *cf;
	int fd = dup(fh_fd(fi));
	int ret = fd < 0 ? -errno : 0;

	if ((ret == -EMFILE || ret == -ENFILE) && fdc_shrink(&fs_of(req)->itab.fdc)) {
		fd = dup(fh_fd(fi));	/* as openat_retry */
		ret = fd < 0 ? -errno : 0;
	}
	if (!ret)
		ret = file_cfile(fs_of(req), inode_of(req, ino), fi, false, &cf);
	if (ret) {
		if (fd >= 0)
			close(fd);
		reply_status(req, ret);
		return;
	}
	if (close(fd) < 0)
		ret = -errno;
	if (!cf)	/* here, not at release: that comes after close returns */
		kcache_remember(inode_of(req, ino), fh_fd(fi));
	if (cf) {
		/*
		 * close-to-open, as NFS does it: what was written through
		 * this file reaches BACKING by close, and a writeback error
		 * (now or latched earlier) is reported here, once.
		 */
		int err = cache_writeback_range(cf, 0, OFF_MAX, false);
		int latched = cache_file_check_error(cf);

		if (!ret)
			ret = err ? err : latched;
	}
	reply_status(req, ret);
}

void hmmfs_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
			struct fuse_file_info *fi)
{
	struct cfile *cf;
	int fd = fh_fd(fi);
	int ret = file_cfile(fs_of(req), inode_of(req, ino), fi, false, &cf);

	if (!ret && cf) {
		reply_status(req, cache_fsync(cf, datasync));
		return;
	}
	if (ret) {
		reply_status(req, ret);
		return;
	}
	ret = (datasync ? fdatasync(fd) : fsync(fd)) < 0 ? -errno : 0;
	reply_status(req, ret);
}

void hmmfs_fallocate(fuse_req_t req, fuse_ino_t ino, int mode,
			    off_t off, off_t len, struct fuse_file_info *fi)
{
	struct cfile *cf;
	int ret = file_cfile(fs_of(req), inode_of(req, ino), fi, true, &cf);

	bool changes_data = mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE |
				    FALLOC_FL_COLLAPSE_RANGE | FALLOC_FL_INSERT_RANGE);
	off_t end = (mode & (FALLOC_FL_COLLAPSE_RANGE | FALLOC_FL_INSERT_RANGE)) ?
		    OFF_MAX : off + len;

	/*
	 * Modes that change data: BACKING first gets our dirty pages of the
	 * range, and the range is dropped before and again after, since the
	 * kernel's readahead may read old bytes into the cache meanwhile.
	 */
	if (cf && changes_data)
		ret = cache_writeback_range(cf, off, end, true);
	/*
	 * A local file system clears setuid/setgid on fallocate by a caller
	 * without CAP_FSETID (file_modified); FUSE_FALLOCATE carries no kill
	 * bit, so uid 0 stands for the capability (generic/683-685).
	 */
	if (!ret && fuse_req_ctx(req)->uid != 0)
		ret = kill_setid(req, fh_fd(fi), ino);
	if (cf)
		cache_file_change_begin(cf);
	if (!ret && fallocate(fh_fd(fi), mode, off, len) < 0)
		ret = -errno;
	if (cf && changes_data)
		cache_writeback_range(cf, off, end, true);
	if (cf)
		cache_file_change_end(cf, !ret && !(mode & FALLOC_FL_KEEP_SIZE) ?
					  off + len : -1);
	reply_status(req, ret);
}

void hmmfs_copy_file_range(fuse_req_t req, fuse_ino_t ino_in,
				  off_t off_in, struct fuse_file_info *fi_in,
				  fuse_ino_t ino_out, off_t off_out,
				  struct fuse_file_info *fi_out, size_t len,
				  int flags)
{
	struct cfile *cf_in, *cf_out;
	off_t end_out = len > (size_t)(OFF_MAX - off_out) ? OFF_MAX : off_out + (off_t)len;
	off_t out_start;
	ssize_t n;
	int ret, err;

	/*
	 * The copy runs in BACKING: it must see our data, and we its result.
	 * The source is written back to the end of the file, not just the
	 * range: BACKING must also have the size, or a copy from a hole below
	 * an EOF still dirty here comes back short (copying nothing).  What
	 * that adds is bounded by the dirty limit.
	 */
	ret = file_cfile(fs_of(req), inode_of(req, ino_in), fi_in, true, &cf_in);
	if (!ret)
		ret = file_cfile(fs_of(req), inode_of(req, ino_out), fi_out, true,
				 &cf_out);
	if (!ret && cf_in)
		ret = cache_writeback_range(cf_in, off_in, OFF_MAX, false);
	if (!ret && cf_out)
		ret = cache_writeback_range(cf_out, off_out, end_out, true);
	if (ret) {
		fuse_reply_err(req, -ret);
		return;
	}
	out_start = off_out;
	if (cf_out)
		cache_file_change_begin(cf_out);
	n = copy_file_range(fh_fd(fi_in), &off_in, fh_fd(fi_out), &off_out,
			    len, (unsigned int)flags);
	err = errno;
	if (cf_out) {	/* again: readahead may have cached old bytes meanwhile */
		cache_writeback_range(cf_out, out_start, end_out, true);
		/* off_out: advanced by the copy */
		cache_file_change_end(cf_out, n < 0 ? -1 : off_out);
	}
	if (n < 0) {
		fuse_reply_err(req, err);
		return;
	}
	fuse_reply_write(req, (size_t)n);
}

/*
 * With the writeback cache, pages the kernel holds dirty are data that
 * neither BACKING nor our cache has seen, and the kernel does not send
 * them before asking us (fuse_lseek).  Dropping its pages of the file
 * makes it send them first (it launders a dirty page before dropping
 * it); the notifier thread asks, a worker serves those WRITEs, and this
 * one waits.  Clean pages go too: SEEK_DATA and SEEK_HOLE are rare
 * (cp, tar, backup tools), a reread is cheap.  Single-threaded, no
 * worker could serve the WRITEs: the caller answers ENOSYS instead, and
 * the kernel then treats every file as all data (generic_file_llseek),
 * which POSIX allows.  Return: 0, -ETIMEDOUT or -ENOSYS.
 */
#define LSEEK_FLUSH_WAIT_MS 10000

static int lseek_kernel_flush(fuse_req_t req, fuse_ino_t ino)
{
	struct hmmfs *fs = fs_of(req);

	if (!fs->opts->writeback_cache)
		return 0;
	if (fs->opts->singlethread)
		return -ENOSYS;
	notify_inval(fs, ino, 0, 0);
	return notify_flush(fs, LSEEK_FLUSH_WAIT_MS);
}

void hmmfs_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
			struct fuse_file_info *fi)
{
	struct cfile *cf = NULL;
	off_t res;
	int ret = 0;

	if (whence == SEEK_DATA || whence == SEEK_HOLE) {
		ret = lseek_kernel_flush(req, ino);
		if (!ret)
			ret = file_cfile(fs_of(req), inode_of(req, ino), fi,
					 false, &cf);
	}
	if (ret) {
		fuse_reply_err(req, -ret);
		return;
	}
	if (cf) {
		/* BACKING's map of data and holes must include our dirty pages */
		ret = cache_writeback_range(cf, 0, OFF_MAX, false);
		if (ret) {
			fuse_reply_err(req, -ret);
			return;
		}
	}
	res = lseek(fh_fd(fi), off, whence);
	if (res < 0)
		fuse_reply_err(req, errno);
	else
		fuse_reply_lseek(req, res);
}
