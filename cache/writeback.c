/* SPDX-License-Identifier: MIT */
/*
 * cache/writeback.c — dirty pages: accounting, writeback, the flusher.
 *
 * Dirty limits follow Linux's: above dirty_background bytes the flusher
 * thread starts writing back; above dirty_limit bytes writers wait
 * (cache_throttle) until it has brought the total down, and are never
 * failed for it, except when BACKING itself keeps failing (then the writer
 * gets that error instead of waiting forever).  A page dirty for longer
 * than dirty_expire_ms is written back by the flusher's periodic pass.
 *
 * Writing back a range of a file (file_writeback): collect its dirty
 * pages, sort them by index, and for each one take the page lock, clear
 * PG_dirty and set PG_writeback (like clear_page_dirty_for_io), drop the
 * lock, and queue a write of the frame.  Back-to-back pages become one
 * write of up to CACHE_MAX_RUN pages, and a batch of WB_BATCH pages (8
 * such runs) goes to the I/O engine at once, so a long dirty range keeps
 * up to 8 large writes in flight: BACKING's O_DIRECT writes are only as
 * fast as their queue is deep (this disk: 750 MB/s at depth 1, 1.6 GB/s
 * at depth 8, fio 1 MiB).  A writer that wants a page under writeback waits for
 * it to end (stable pages), so the bytes BACKING gets are the bytes that
 * were there when the page was cleaned.  When a write fails the page is
 * dirtied again, so nothing is lost and a later pass retries, and the
 * error is latched on the file for the next fsync or close.
 *
 * Only the bytes a page's writers dirtied are written (cpage->dirty_from,
 * dirty_to), as NFS does: someone else (a process writing BACKING itself,
 * or another hmmfs mount of it) may have changed the rest of the page since
 * it was read, and writing the whole page back would undo that.  Each page
 * keeps one range; a write that would leave a gap of bytes it did not write
 * inside that range writes the range to BACKING first (page_dirty_prepare_
 * locked, like nfs_flush_incompatible), so the range never takes in bytes
 * this mount did not write.  Pages written whole (sequential writes, mmap
 * writes the kernel sends as whole pages, device writes) are simply dirty
 * from 0 to the page size and go in runs as before.  A page dirty in part,
 * and the page holding EOF (so BACKING never holds bytes past the cache's
 * size, even across a crash), are written alone, for just their bytes,
 * through a buffered descriptor when the backing one is O_DIRECT, which
 * cannot write part of a page.  When a truncate shrank the file during
 * the write, BACKING is cut back to the cache's size after it.
 *
 * Device-resident pages are written back while they stay on the device:
 * taking one for writeback also maps it read-only on the device (so a
 * device write meanwhile faults and waits, like a CPU write), and its
 * bytes are copied device-to-bounce before the batch goes to BACKING.
 * The bounce buffer is taken after the page is marked under writeback;
 * when none is free, the batch gathered so far is written first (which
 * returns its buffers), and only then does writeback wait for one, never
 * holding buffers while it waits (see bounce/pool.c).
 *
 * Locking: dirty accounting takes cfile->lock, then dirty_lock (for the
 * list of dirty files), inside the page lock.  The flusher holds a
 * reference on a file (cfile->users) while it works on it unlocked.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cache/cache_int.h"
#include "lib/lockcheck.h"

#define WB_BATCH (8 * CACHE_MAX_RUN)	/* pages per batch: see the top */
#define WB_BUFFERED_MAX (64u << 10)	/* bytes: see wb_runs_build() */

/*
 * Context: page locked, or (page_end_io) the page under writeback by the
 * caller: the end of writeback must not take the page lock, since the
 * holders of page locks wait for writeback to end.
 */
void page_mark_dirty_locked(struct cpage *p)
{
	struct cfile *f = p->file;
	struct cache *c = f->cache;
	uint64_t now;
	size_t dirty;

	lock_assert(page_test_locked(&p->ps) || page_test_writeback(&p->ps));
	if (page_test_set_dirty(&p->ps))
		return;
	now = cache_now_ms();
	p->dirtied_ms = now;
	pthread_mutex_lock(&f->lock);
	if (f->nr_dirty++ == 0) {
		f->oldest_dirty_ms = now;
		pthread_mutex_lock(&c->dirty_lock);
		clist_add_head(&c->dirty_files, &f->dirty_link);
		pthread_mutex_unlock(&c->dirty_lock);
	}
	pthread_mutex_unlock(&f->lock);
	dirty = atomic_fetch_add(&c->nr_dirty, 1) + 1;
	if (dirty > c->bg_pages)
		pthread_cond_signal(&c->flush_cond);
}

/*
 * One dirty page of @f is no longer dirty: discarded, or (@to_writeback)
 * about to be written, which counts until file_after_writeback().
 */
static void file_dirty_dec(struct cfile *f, bool to_writeback)
{
	struct cache *c = f->cache;

	pthread_mutex_lock(&f->lock);
	if (to_writeback)
		f->nr_writeback++;
	if (--f->nr_dirty == 0) {
		pthread_mutex_lock(&c->dirty_lock);
		clist_del(&f->dirty_link);
		pthread_mutex_unlock(&c->dirty_lock);
	}
	pthread_mutex_unlock(&f->lock);
	atomic_fetch_sub(&c->nr_dirty, 1);
}

/* Context: page locked; discards the page's dirty state (truncate). */
void page_cancel_dirty_locked(struct cpage *p)
{
	lock_assert(page_test_locked(&p->ps));

	if (page_test_clear_dirty(&p->ps)) {
		file_dirty_dec(p->file, false);
		pthread_cond_broadcast(&p->file->cache->clean_cond);
	}
}

/*
 * Writers dirty [@from, @to) of @p: the page's range grows to take it in
 * (page_dirty_prepare_locked() made sure that leaves no gap), or starts
 * there if the page was clean or its range written already.
 * Context: page locked, not under writeback.
 */
void page_mark_dirty_range_locked(struct cpage *p, size_t from, size_t to)
{
	lock_assert(page_test_locked(&p->ps));

	if (!page_test_dirty(&p->ps) || p->dirty_from >= p->dirty_to) {
		p->dirty_from = (uint32_t)from;
		p->dirty_to = (uint32_t)to;
	} else {
		if (from < p->dirty_from)
			p->dirty_from = (uint32_t)from;
		if (to > p->dirty_to)
			p->dirty_to = (uint32_t)to;
	}
	page_mark_dirty_locked(p);
}

/*
 * A truncate put EOF at @end bytes into @p: the bytes past it are no
 * longer data to write (they read as zeros, and BACKING was cut too).
 * Context: page locked.
 */
void page_clip_dirty_locked(struct cpage *p, size_t end)
{
	if (p->dirty_to > end)
		p->dirty_to = (uint32_t)end;
}

/*
 * Take @p for writeback: lock, clean, mark under writeback, unlock.
 * With @wait, sleep for its lock and for a writeback in flight; without,
 * give up on either.
 * Return: 1 if it is now ours to write, 0 if there is nothing to write,
 * -EBUSY (only without @wait) if it would have had to sleep for that.
 */
static int page_start_writeback(struct cpage *p, bool wait)
{
	struct cache *c = p->file->cache;

	if (wait)
		cache_page_lock(&p->ps);
	else if (!cache_page_trylock(&p->ps))
		return -EBUSY;
	if (wait)
		cache_page_wait_writeback(&p->ps);
	if (page_test_writeback(&p->ps) || !page_test_dirty(&p->ps)) {
		bool busy = page_test_writeback(&p->ps) && page_test_dirty(&p->ps);

		cache_page_unlock(&p->ps);
		return busy ? -EBUSY : 0;
	}
	page_test_clear_dirty(&p->ps);
	wp_protect(p, WP_WRITEBACK);
	if (page_test_device(&p->ps))	/* like clear_page_dirty_for_io */
		wp_protect(p, WP_DEVICE_RO);
	atomic_fetch_add(&c->nr_writeback, 1);
	file_dirty_dec(p->file, true);
	cache_page_unlock(&p->ps);
	return 1;
}

/* The write of @p finished with @res (bytes or -errno). */
static int page_end_io(struct cpage *p, ssize_t res)
{
	struct cfile *f = p->file;
	struct cache *c = f->cache;
	size_t ps = c->cfg.page_size;
	int err = 0;

	if (res != (ssize_t)ps) {
		err = res < 0 ? (int)res : -EIO;
		page_set_error(&p->ps);
		ctr_inc(c, writeback_errors, 1);
		page_mark_dirty_locked(p);	/* keep the data for a retry */
		pthread_mutex_lock(&f->lock);
		f->wb_err = err;
		pthread_mutex_unlock(&f->lock);
	} else {
		page_clear_error(&p->ps);
		fctr_inc(f, writeback_bytes, ps);
	}
	atomic_fetch_sub(&c->nr_writeback, 1);
	wp_unprotect(p, WP_WRITEBACK);
	return err;
}

/*
 * BACKING got @n pages ending at @end: cut it back to the cache's size if
 * a truncate shrank it meanwhile.  Once the file is clean, BACKING takes
 * the mtime the cache has been showing (its write set its own, a moment
 * later and maybe from the kernel's coarse clock), which then stands
 * alone, so a remount shows the same times.  Note BACKING's state, so that
 * the change is not taken for someone else's (cache_file_revalidate).
 */
static void file_after_writeback(struct cfile *f, off_t end, size_t n)
{
	struct timespec keep_mtime[2] = { { .tv_nsec = UTIME_OMIT } };

	pthread_mutex_lock(&f->lock);
	f->nr_writeback -= n;
	if (end > f->size && ftruncate(f->fd, f->size) < 0 && !f->wb_err)
		f->wb_err = -errno;
	if (!f->nr_dirty && !f->nr_writeback && f->mtime.tv_sec) {
		keep_mtime[1] = f->mtime;
		if (futimens(f->fd, keep_mtime) == 0)
			f->mtime = (struct timespec){ 0 };
	}
	file_note_backing_locked(f);
	pthread_mutex_unlock(&f->lock);
}

/*
 * A batch of pages under writeback, in index order, and where each one's
 * bytes are: its frame, or (device pages) a bounce buffer.
 */
struct wb_batch {
	struct cpage *v[WB_BATCH];
	void *data[WB_BATCH];
	void *bufs[WB_BATCH];
	size_t n, nbufs;
};

/* Copy the batch's device pages into their bounce buffers. */
static int wb_fetch_device_pages(struct cache *c, struct wb_batch *b)
{
	struct dev_fence fence = DEV_FENCE_INIT;
	int ret = 0;

	if (!b->nbufs)
		return 0;
	for (size_t i = 0; i < b->n && !ret; i++)
		if (page_test_device(&b->v[i]->ps))
			ret = dev_copy_to_host(c->dev, b->data[i], page_daddr(b->v[i]),
					       c->cfg.page_size, &fence);
	{
		int r = dev_fence_wait(c->dev, &fence);

		if (r && !ret)
			ret = r;
	}
	return ret == -ENODEV ? -EIO : ret;
}

/*
 * A buffered descriptor of @f's file, for writes of part of a page (a
 * partly dirty page, or one that ends at EOF inside a page) and small
 * batches: @f->fd itself unless that is O_DIRECT, else @f->bfd, opened on
 * first use (outside @f->lock: an open of a network file may be slow)
 * and closed with @f->fd (lifetime.c), which holds it as long as pages
 * are dirty or under writeback.  Return: the descriptor, or -1 if there
 * is none (then the whole page is written and BACKING cut back after:
 * exact again, but not across a crash in between).  Context: @f's
 * descriptor open (held, or pages dirty or under writeback); page locks
 * may be held.
 */
static int file_tail_fd(struct cfile *f)
{
	char path[64];
	int fd, ret;

	if (!f->direct)
		return f->fd;
	pthread_mutex_lock(&f->lock);
	fd = f->bfd;
	pthread_mutex_unlock(&f->lock);
	if (fd >= 0)
		return fd;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", f->fd);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	pthread_mutex_lock(&f->lock);
	if (f->bfd < 0) {
		f->bfd = fd;
		atomic_fetch_add(&f->cache->nr_fds, 1);
		fd = -1;
	}
	ret = f->bfd;
	pthread_mutex_unlock(&f->lock);
	if (fd >= 0)
		close(fd);	/* another writer's was first */
	return ret;
}

/*
 * Write @p's dirty range to BACKING now, through a buffered descriptor
 * (the range is part of a page).  Return: 0 or -errno.
 * Context: page locked, not under writeback.
 */
static int page_write_range_now_locked(struct cpage *p)
{
	struct cfile *f = p->file;
	struct cache *c = f->cache;
	size_t ps = c->cfg.page_size, lo = p->dirty_from, hi = p->dirty_to;
	off_t pos = (off_t)(p->index * ps), size;
	const char *src = page_frame(p);
	void *bb = NULL;
	int fd, ret = 0;

	pthread_mutex_lock(&f->lock);
	size = f->size;
	pthread_mutex_unlock(&f->lock);
	if (pos + (off_t)hi > size)
		hi = size > pos + (off_t)lo ? (size_t)(size - pos) : lo;
	if (hi <= lo)
		return 0;	/* truncated away */
	fd = file_tail_fd(f);
	if (fd < 0)
		return -errno;
	if (page_test_device(&p->ps)) {
		struct dev_fence fence = DEV_FENCE_INIT;
		int r;

		bounce_get(c->bounce, &bb, 1, true);
		ret = dev_copy_to_host(c->dev, (char *)bb + lo, page_daddr(p) + lo,
				       hi - lo, &fence);
		r = dev_fence_wait(c->dev, &fence);
		if (!ret)
			ret = r == -ENODEV ? -EIO : r;
		else if (ret == -ENODEV)
			ret = -EIO;
		src = bb;
	}
	if (!ret) {	/* through the engine, like any backing write */
		struct io_req q = { .fd = fd, .op = IO_WRITE, .buf = (char *)src + lo,
				    .len = hi - lo, .off = pos + (off_t)lo };

		ret = io_submit_wait(c->io, &q, 1);
		if (!ret && q.res != (ssize_t)(hi - lo))
			ret = q.res < 0 ? (int)q.res : -EIO;
	}
	if (bb)
		bounce_put(c->bounce, &bb, 1);
	if (ret)
		return ret;
	ctr_inc(c, backing_writes, 1);
	fctr_inc(f, writeback_bytes, hi - lo);
	/*
	 * A truncate meanwhile: BACKING must not keep what it cut.  Then
	 * note BACKING's state, so that this write is not taken for
	 * someone else's change (file_note_outside_change).
	 */
	pthread_mutex_lock(&f->lock);
	if (pos + (off_t)hi > f->size && ftruncate(f->fd, f->size) < 0)
		ret = -errno;
	file_note_backing_locked(f);
	pthread_mutex_unlock(&f->lock);
	return ret;
}

/*
 * A write of [@from, @to) is coming to page @p.  If @p is dirty and the
 * write neither overlaps nor touches its dirty range, one range holding
 * both would take in the bytes between them, which this mount did not
 * write (and another writer may have changed in BACKING): write the range
 * to BACKING now instead, leaving the page dirty with an empty range for
 * the write to start afresh.  Writes of whole pages, in order, or over
 * what they wrote before never get here.
 * Context: page locked, not under writeback.  Return: 0 or -errno.
 */
int page_dirty_prepare_locked(struct cpage *p, size_t from, size_t to)
{
	int ret;

	if (!page_test_dirty(&p->ps) || p->dirty_from >= p->dirty_to ||
	    (from <= p->dirty_to && to >= p->dirty_from))
		return 0;
	ret = page_write_range_now_locked(p);
	if (!ret)
		p->dirty_from = p->dirty_to = 0;
	return ret;
}

/* Did request @q (@got bytes done) write its page @k?  Return: ps or -errno. */
static ssize_t req_page_result(const struct io_req *q, ssize_t got, size_t k,
			       size_t ps)
{
	size_t want = q->iovcnt ? (k + 1) * ps : q->len;

	if (got < 0)
		return got;
	return (size_t)got >= want ? (ssize_t)ps : -EIO;
}

/*
 * The bytes of page @p to write: its dirty range, cut at EOF @size.
 * Return: false if there are none (written already, or truncated away).
 */
static bool wb_page_span(const struct cpage *p, size_t ps, off_t size,
			 size_t *lo, size_t *hi)
{
	off_t pos = (off_t)(p->index * ps);

	*lo = p->dirty_from;
	*hi = p->dirty_to;
	if (pos + (off_t)*hi > size)
		*hi = size > pos ? (size_t)(size - pos) : 0;
	return *lo < *hi;
}

/*
 * Add whole page @k of @b (at @pos) to @r: to the run before it when that
 * is a run of whole pages ending just before it, else as a new request.
 */
static void wb_add_whole(struct cfile *f, struct wb_batch *b, size_t k,
			 off_t pos, int fd, struct page_runs *r)
{
	size_t ps = f->cache->cfg.page_size;
	struct io_req *q = r->nreqs ? &r->reqs[r->nreqs - 1] : NULL;
	size_t first = q ? (uintptr_t)q->priv : 0;

	r->iovs[k] = (struct iovec){ b->data[k], ps };
	if (q && q->fd == fd && fd == f->fd && (q->iovcnt || q->len == ps) &&
	    first + page_run_len(q) == k && page_run_len(q) < CACHE_MAX_RUN &&
	    q->off + (off_t)(page_run_len(q) * ps) == pos) {
		if (!q->iovcnt) {	/* one page so far: make it a vector */
			q->iov = &r->iovs[first];
			q->iovcnt = 1;
			q->buf = NULL;
			q->len = 0;
		}
		q->iovcnt++;
		return;
	}
	r->reqs[r->nreqs++] = (struct io_req){
		.fd = fd, .op = IO_WRITE, .buf = b->data[k], .len = ps,
		.off = pos, .priv = (void *)(uintptr_t)k };
}

/*
 * Cut the pages of @b into write requests: runs of consecutive wholly
 * dirty pages as one request each, on @f->fd (O_DIRECT where it can be);
 * a page dirty in part, or holding EOF @size, as a request of its own for
 * just those bytes, on a buffered descriptor.  Without one (the /proc
 * open failed) such a page is written whole, the old behaviour: at EOF,
 * file_after_writeback() cuts BACKING back after.  Pages with nothing to
 * write get no request.
 *
 * A small batch (WB_BUFFERED_MAX bytes or less: the close of a small
 * file, an fsync after a few writes) goes wholly through the buffered
 * descriptor: an O_DIRECT write waits for the disk (a 4 KiB one about
 * 35 us here, 85 us into a new file) where a buffered one is a copy into
 * BACKING's page cache (4 us), and tar, rsync or git close thousands of
 * small files, each closed after a synchronous writeback.  Large batches
 * keep O_DIRECT: their bytes are not cached twice, and a deep queue of
 * large direct writes is faster than the kernel's own writeback.
 *
 * Buffered writes go one page at a time, never as a run: BACKING's page
 * cache sizes a folio by the write, and a folio holding several of our
 * pages could be dirtied by one page's buffered write while another
 * writeback's O_DIRECT write of its neighbour cannot invalidate it (the
 * kernel then warns of a collision with buffered I/O, and the stale folio
 * may be written back later).  A folio within one page is written only
 * by that page's writeback, and a page is under one writeback at a time.
 * Return: 0 or -ENOMEM; *@end: the end of what is written (0: nothing).
 */
static int wb_runs_build(struct cfile *f, struct wb_batch *b, off_t size,
			 struct page_runs *r, off_t *end)
{
	size_t ps = f->cache->cfg.page_size, n = b->n, lo, hi;
	bool small = f->direct && n * ps <= WB_BUFFERED_MAX;
	bool no_tail = false;

	*end = 0;
	if (page_runs_alloc(r, n))
		return -ENOMEM;
	for (size_t k = 0; k < n; k++) {
		off_t pos = (off_t)(b->v[k]->index * ps);

		if (!wb_page_span(b->v[k], ps, size, &lo, &hi))
			continue;
		if ((small || lo || hi < ps) && r->tail_fd < 0 && !no_tail) {
			r->tail_fd = file_tail_fd(f);
			no_tail = r->tail_fd < 0;
		}
		if ((lo || hi < ps) && r->tail_fd >= 0) {
			r->reqs[r->nreqs++] = (struct io_req){
				.fd = r->tail_fd, .op = IO_WRITE,
				.buf = (char *)b->data[k] + lo, .len = hi - lo,
				.off = pos + (off_t)lo, .priv = (void *)(uintptr_t)k };
			*end = pos + (off_t)hi;
			continue;
		}
		wb_add_whole(f, b, k, pos,
			     small && r->tail_fd >= 0 ? r->tail_fd : f->fd, r);
		*end = pos + (off_t)ps;
	}
	return 0;
}

/* Write the pages of @b (under writeback, in index order) in one batch. */
static int write_batch(struct cfile *f, struct wb_batch *b)
{
	struct cache *c = f->cache;
	size_t ps = c->cfg.page_size, n = b->n;
	struct cpage **v = b->v;
	struct page_runs r = { .tail_fd = -1 };
	bool ended[WB_BATCH] = { false };
	off_t size, end = 0;
	bool built = false;
	int ret, err = 0;

	/*
	 * Every byte in these pages was inside the size when it was written
	 * (writers grow the size first), so the size now covers them; bytes
	 * past it were cut off by a truncate meanwhile: nothing to write.
	 */
	pthread_mutex_lock(&f->lock);
	size = f->size;
	pthread_mutex_unlock(&f->lock);
	ret = wb_fetch_device_pages(c, b);
	if (!ret) {
		ret = wb_runs_build(f, b, size, &r, &end);
		built = !ret;
	}
	if (built && r.nreqs) {
		ret = io_submit_wait(c->io, r.reqs, (unsigned int)r.nreqs);
		ctr_inc(c, backing_writes, r.nreqs);
	}
	for (size_t k = 0; ret && k < n; k++) {
		int e = page_end_io(v[k], ret);

		if (e && !err)
			err = e;
	}
	for (size_t q = 0; !ret && q < r.nreqs; q++) {
		size_t first = (uintptr_t)r.reqs[q].priv;

		for (size_t k = 0; k < page_run_len(&r.reqs[q]); k++) {
			/* a short write: the pages it did not cover failed */
			int e = page_end_io(v[first + k],
					    req_page_result(&r.reqs[q], r.reqs[q].res, k, ps));

			ended[first + k] = true;
			if (e && !err)
				err = e;
		}
	}
	for (size_t k = 0; !ret && k < n; k++)
		if (!ended[k])	/* nothing to write: written or truncated away */
			page_end_io(v[k], (ssize_t)ps);
	if (built)
		page_runs_free(&r);
	file_after_writeback(f, end, n);
	if (b->nbufs)
		bounce_put(c->bounce, b->bufs, b->nbufs);
	b->nbufs = 0;
	/* throttled writers: once per batch, not per page (each would wake all) */
	pthread_cond_broadcast(&c->clean_cond);
	return err;
}

/* Write the batch, release its pages, start a new one. */
static int wb_flush(struct cfile *f, struct wb_batch *b)
{
	int err;

	if (b->n)	/* before our write makes an outside change look ours */
		file_note_outside_change(f, b->n);
	err = b->n ? write_batch(f, b) : 0;

	for (size_t j = 0; j < b->n; j++)
		page_put(b->v[j]);
	b->n = 0;
	return err;
}

/*
 * Add @p (just taken for writeback) to the batch.  A device page needs a
 * bounce buffer: without a free one, write the batch so far first.  A
 * page on a lost device is not added: its writeback fails at once (-EIO),
 * so that it does not fail the pages batched with it.
 */
static int wb_add(struct cfile *f, struct wb_batch *b, struct cpage *p)
{
	struct cache *c = f->cache;
	int err = 0;

	if (page_test_device(&p->ps) &&
	    dev_unit_lost(c->dev, dev_addr_unit(page_daddr(p)))) {
		/* its bytes went with the device: it stays dirty (close and
		   unmount report it), and the rest of the batch goes on */
		err = page_end_io(p, -EIO);
		file_after_writeback(f, 0, 1);	/* one page ended, none written */
		page_put(p);
		return err;
	}
	if (page_test_device(&p->ps)) {	/* stable: we hold it under writeback */
		void *bb;

		if (!bounce_get(c->bounce, &bb, 1, false)) {
			err = wb_flush(f, b);
			bounce_get(c->bounce, &bb, 1, true);
		}
		b->bufs[b->nbufs++] = bb;
		b->data[b->n] = bb;
	} else {
		b->data[b->n] = page_frame(p);
	}
	b->v[b->n++] = p;
	return err;
}

/*
 * After a writeback of @f that ended with @err: the pages it left dirty
 * are stuck until one succeeds (cache_stats.dirty_pages_stuck).
 */
static void file_note_stuck(struct cfile *f, int err)
{
	uint64_t stuck;

	pthread_mutex_lock(&f->lock);
	stuck = err ? f->nr_dirty : 0;
	atomic_fetch_add(&f->cache->nr_stuck, stuck - f->stuck);	/* mod 2^64 */
	f->stuck = stuck;
	pthread_mutex_unlock(&f->lock);
}

int file_writeback(struct cfile *f, uint64_t first, uint64_t last, bool wait)
{
	struct wb_batch *b;
	struct cpage **v;
	size_t n;
	int err = 0, e;
	bool idle;

	pthread_mutex_lock(&f->lock);
	idle = !f->nr_dirty && !f->nr_writeback;
	pthread_mutex_unlock(&f->lock);
	if (idle)
		return 0;	/* the common close of a clean file: no walk */
	b = malloc(sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->n = b->nbufs = 0;
	file_collect_pages(f, first, last, PG_BIT(PG_dirty), &v, &n);	/* in order */
	for (size_t i = 0; i < n; i++) {
		int started = page_start_writeback(v[i], false);

		e = 0;
		if (started == -EBUSY && wait) {
			/*
			 * Sleep for its lock or writeback with nothing of ours
			 * held: the batch's bounce buffers and pages under
			 * writeback go first.  (Holding them, this waited on a
			 * page that another writeback held while it waited for
			 * a buffer this batch held.)
			 */
			e = wb_flush(f, b);
			started = page_start_writeback(v[i], true);
		}
		if (started > 0) {
			int ea = wb_add(f, b, v[i]);

			if (ea && !e)
				e = ea;
		} else {
			page_put(v[i]);
		}
		if (!e && (b->n == WB_BATCH || (b->n && i + 1 == n)))
			e = wb_flush(f, b);
		if (e && !err)
			err = e;
	}
	e = wb_flush(f, b);	/* nothing left normally */
	if (e && !err)
		err = e;
	free(b);
	free(v);
	file_note_stuck(f, err);
	if (wait) {
		/* writeback others started (the flusher) must end too */
		file_collect_pages(f, first, last, PG_BIT(PG_writeback), &v, &n);
		for (size_t i = 0; i < n; i++) {
			cache_page_wait_writeback(&v[i]->ps);
			page_put(v[i]);
		}
		free(v);
	}
	return err;
}

int cache_file_check_error(struct cfile *f)
{
	int err;

	pthread_mutex_lock(&f->lock);
	err = f->wb_err;
	f->wb_err = 0;
	pthread_mutex_unlock(&f->lock);
	return err;
}

int cache_fsync(struct cfile *f, bool datasync)
{
	int ret = file_writeback(f, 0, UINT64_MAX, true);
	int latched = cache_file_check_error(f);

	if (ret || latched)
		return ret ? ret : latched;
	if ((datasync ? fdatasync(f->fd) : fsync(f->fd)) < 0)
		return -errno;
	return 0;
}

/*
 * Pick a file with dirty pages and hold it: one dirty since before
 * @older_than, or @any; a file backing off after failed writebacks only
 * when @older_than is UINT64_MAX (sync: now, failing or not).
 * Context: dirty_lock held.
 */
static struct cfile *dirty_file_pick_locked(struct cache *c, uint64_t older_than,
					    bool any)
{
	uint64_t now = cache_now_ms();
	struct clist *pos;

	for (pos = c->dirty_files.prev; pos != &c->dirty_files; pos = pos->prev) {
		struct cfile *f = clist_entry(pos, struct cfile, dirty_link);
		/* written under cfile->lock; a stale read only delays */
		uint64_t oldest = atomic_load_explicit(&f->oldest_dirty_ms,
						       memory_order_relaxed);

		if (oldest > now && older_than != UINT64_MAX)
			continue;	/* failing: backing off */
		if (any || oldest <= older_than) {
			atomic_fetch_add(&f->users, 1);
			/* rotate, so the next pick starts with another file */
			clist_del(pos);
			clist_add_head(&c->dirty_files, pos);
			return f;
		}
	}
	return NULL;
}

void file_wait_unused(struct cfile *f)
{
	while (atomic_load(&f->users))
		nanosleep(&(struct timespec){ .tv_nsec = 1000000 }, NULL);
}

/*
 * When the flusher looks at @f again: pages still dirty after a failed
 * writeback wait twice as long each time (from 100 ms up to
 * WB_RETRY_MAX_MS, on top of dirty_expire_ms), so a BACKING that keeps
 * failing is not hammered; a success starts over.  Context: @f->lock.
 */
#define WB_RETRY_MAX_MS 30000

static void file_retry_later_locked(struct cfile *f, int err)
{
	uint64_t now = cache_now_ms();

	if (!f->nr_dirty) {
		f->oldest_dirty_ms = 0;
		f->wb_retry_ms = 0;
		return;
	}
	if (!err) {
		f->oldest_dirty_ms = now;
		f->wb_retry_ms = 0;
		return;
	}
	f->wb_retry_ms = f->wb_retry_ms ? f->wb_retry_ms * 2 : 100;
	if (f->wb_retry_ms > WB_RETRY_MAX_MS)
		f->wb_retry_ms = WB_RETRY_MAX_MS;
	f->oldest_dirty_ms = now + f->wb_retry_ms;
}

/* Write back one file's dirty pages. Return: pages made clean, or -errno. */
static int flush_one_file(struct cache *c, bool any, uint64_t older_than,
			  bool wait)
{
	struct cfile *f;
	size_t before = atomic_load(&c->nr_dirty), after;
	bool idle;
	int err;

	pthread_mutex_lock(&c->dirty_lock);
	f = dirty_file_pick_locked(c, older_than, any);
	pthread_mutex_unlock(&c->dirty_lock);
	if (!f)
		return 0;
	err = file_writeback(f, 0, UINT64_MAX, wait);
	pthread_mutex_lock(&f->lock);
	file_retry_later_locked(f, err);
	idle = !f->holds && !f->nr_dirty && !f->nr_writeback && f->fd >= 0;
	pthread_mutex_unlock(&f->lock);
	if (idle)	/* its descriptor may go now: the flusher's sweep */
		file_idle_queue(f);
	atomic_fetch_sub(&f->users, 1);
	after = atomic_load(&c->nr_dirty);
	if (err && after >= before)
		return err;
	return before > after ? (int)(before - after) : 1;
}

int cache_reclaim_dirty(struct cache *c)
{
	return flush_one_file(c, true, 0, false);
}

/* One flusher pass: expired files, and everything while over background. */
static void flusher_pass(struct cache *c)
{
	uint64_t expire = cache_now_ms() - c->cfg.dirty_expire_ms;
	size_t files = 0;
	int r;

	for (;;) {
		bool over = atomic_load(&c->nr_dirty) > c->bg_pages;

		r = flush_one_file(c, over, expire, true);
		if (r == 0)
			break;
		pthread_mutex_lock(&c->dirty_lock);
		c->last_wb_err = r < 0 ? r : 0;
		pthread_mutex_unlock(&c->dirty_lock);
		if (r < 0 || ++files > 4096)
			break;	/* failing, or a pass long enough */
	}
}

static void *flusher_main(void *arg)
{
	struct cache *c = arg;
	unsigned int period = c->cfg.dirty_expire_ms / 4;

	if (period < 20)
		period = 20;
	if (period > 1000)
		period = 1000;
	pthread_mutex_lock(&c->dirty_lock);
	while (!c->stop) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += (long)(period % 1000) * 1000000;
		ts.tv_sec += period / 1000 + ts.tv_nsec / 1000000000;
		ts.tv_nsec %= 1000000000;
		/* over the background limit, but failing: do not spin */
		if (atomic_load(&c->nr_dirty) <= c->bg_pages || c->last_wb_err)
			pthread_cond_timedwait(&c->flush_cond, &c->dirty_lock, &ts);
		if (c->stop)
			break;
		pthread_mutex_unlock(&c->dirty_lock);
		flusher_pass(c);
		cache_files_sweep(c);
		pthread_cond_broadcast(&c->clean_cond);
		pthread_mutex_lock(&c->dirty_lock);
	}
	pthread_mutex_unlock(&c->dirty_lock);
	return NULL;
}

int cache_flusher_start(struct cache *c)
{
	return -pthread_create(&c->flusher, NULL, flusher_main, c);
}

void cache_flusher_stop(struct cache *c)
{
	pthread_mutex_lock(&c->dirty_lock);
	c->stop = 1;
	pthread_cond_broadcast(&c->flush_cond);
	pthread_mutex_unlock(&c->dirty_lock);
	pthread_join(c->flusher, NULL);
}

int cache_throttle(struct cache *c)
{
	bool counted = false;
	int err = 0;

	pthread_mutex_lock(&c->dirty_lock);
	while (atomic_load(&c->nr_dirty) >= c->limit_pages && !c->stop) {
		struct timespec ts;

		if (c->last_wb_err) {	/* BACKING keeps failing: say so */
			err = c->last_wb_err;
			break;
		}
		if (!counted) {
			ctr_inc(c, throttled, 1);
			counted = true;
		}
		pthread_cond_signal(&c->flush_cond);
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 50000000;
		ts.tv_sec += ts.tv_nsec / 1000000000;
		ts.tv_nsec %= 1000000000;
		pthread_cond_timedwait(&c->clean_cond, &c->dirty_lock, &ts);
	}
	pthread_mutex_unlock(&c->dirty_lock);
	return err;
}

int cache_sync_all(struct cache *c)
{
	int err = 0, r;
	size_t guard = 1u << 20;

	while (atomic_load(&c->nr_dirty) && guard--) {
		r = flush_one_file(c, true, UINT64_MAX, true);
		if (r == 0)
			break;
		if (r < 0) {
			err = r;
			break;
		}
	}
	return err;
}
