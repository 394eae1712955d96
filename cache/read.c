/* SPDX-License-Identifier: MIT */
/*
 * cache/read.c — the read path: copying reads (cache_read), zero-copy
 * reads (cache_read_vec), and bringing pages in for the cache's own use
 * (file_populate, for migrate.c's requests).
 *
 * Gathering.  A read gathers its pages (read_gather): a hit takes a
 * reference and sets PG_referenced; a miss inserts a new page locked and
 * not uptodate (page_find_or_create, file.c), and readahead adds pages
 * past the request (readahead.c sizes the window).  The new pages are
 * read from BACKING in one batch (pages_read, file.c) and then unlocked
 * (pages_read_done).  A page another reader is bringing in is waited for
 * on its lock (page_make_uptodate), so concurrent misses share one backing
 * read.  Only the first page of a batch may wait for a frame: a reader
 * never waits while it holds locked pages, or readers sharing a tiny
 * cache could pin every frame and wait for each other.  A long read goes
 * in chunks of at most a quarter of the cache.
 *
 * Copying.  Pages are copied in rounds of READ_ROUND, each round in one
 * RCU read-side section: host pages from their frames, device pages
 * straight into the caller's buffer, back-to-back device frames as one
 * copy and the round's copies as one batch.  A migration moving a page
 * meanwhile frees the old frame only after the section ends (migrate.c),
 * so readers never wait for a migration.
 *
 * Zero-copy.  cache_read_vec() answers with iovecs into the frames of
 * host pages and into bounce buffers holding copies of device pages, and
 * stays in its RCU section until cache_read_vec_done().  A read too long
 * for it, one short of frames or bounce buffers, and every read once a
 * device unit is lost return -EAGAIN: the copying path takes them.
 * Sequential readers also get the next read's device pages copied ahead
 * (devra.c).
 *
 * Lost device units.  cache_read() first drops the range's pages on a lost
 * unit (file_drop_lost_pages, truncate.c), so they are read again from
 * BACKING; a chunk failing with EIO is retried only if another unit was
 * lost meanwhile, so retries are bounded by the units.
 *
 * Locking: page locks are held only on new pages, from insertion until
 * they are read.  Page bytes are copied without the page lock, racing
 * writers on purpose as Linux's filemap_read() does (lib/racy.h); frames
 * stay valid while the RCU section that found them lasts.  cfile->lock is
 * taken only to read the size (cache_file_size).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cache/cache_int.h"
#include "lib/racy.h"
#include "cache/rcu.h"

/* Finish pages read by pages_read(): uptodate (or not), unlocked. */
static void pages_read_done(struct cpage **pp, size_t n, int ret)
{
	for (size_t i = 0; i < n; i++) {
		if (!ret)
			page_set_uptodate(&pp[i]->ps);	/* pairs: page_test_uptodate */
		cache_page_unlock(&pp[i]->ps);
	}
}

/* Make an existing page uptodate if it is not (a failed or raced read). */
static int page_make_uptodate(struct cfile *f, struct cpage *p)
{
	int ret;

	if (page_test_uptodate(&p->ps))
		return 0;
	cache_page_lock(&p->ps);
	if (page_test_uptodate(&p->ps)) {
		cache_page_unlock(&p->ps);
		return 0;
	}
	ret = pages_read(f, &p, 1);
	pages_read_done(&p, 1, ret);
	return ret;
}

/*
 * Bring pages [@first, @last] in, plus readahead up to @ra_last; copy the
 * requested bytes to @buf.  At most @chunk pages are held at once.
 */
struct read_batch {
	struct cpage **pages;	/* the requested pages, referenced */
	struct cpage **fresh;	/* new pages to read, locked */
	size_t npages, nfresh;
};

/*
 * Gather pages [@first, @last] and readahead up to @ra_last.  Only the
 * first page may wait for a frame: a reader never waits while it holds
 * locked pages, or readers sharing a tiny cache could pin every frame and
 * wait for each other.  Return: 0 (b->npages may be short of the range:
 * the caller copies what it got), or -ENOMEM when not even the first page
 * could be had.
 */
static int read_gather(struct cfile *f, struct read_batch *b, uint64_t first,
		       uint64_t last, uint64_t ra_last)
{
	bool created;

	for (uint64_t i = first; i <= ra_last; i++) {
		bool ra = i > last;
		struct cpage *p = page_find_or_create(f, i, &created, i == first);

		if (!p)
			return i == first ? -ENOMEM : 0;
		if (created) {
			b->fresh[b->nfresh++] = p;
			if (ra)
				fctr_inc(f, readahead_pages, 1);
			else
				fctr_inc(f, misses, 1);
		} else if (!ra) {
			fctr_inc(f, hits, 1);
			if (!page_test_referenced(&p->ps))
				page_set_referenced(&p->ps);
		}
		if (ra)
			page_put(p);	/* the lock (if new) keeps it until read */
		else
			b->pages[b->npages++] = p;
		if (ra && !created)
			break;	/* already cached beyond: readahead is done */
	}
	return 0;
}

/*
 * Gather pages [@first, @last] and readahead to @ra_last into @b, read the
 * new ones from BACKING, and make sure the requested ones are uptodate.
 * Return: 0 (b->npages may be short), or -errno; the pages gathered are
 * referenced either way.
 */
static int read_fill(struct cfile *f, struct read_batch *b, uint64_t first,
		     uint64_t last, uint64_t ra_last)
{
	int ret = read_gather(f, b, first, last, ra_last);

	if (b->nfresh) {
		int r = pages_read(f, b->fresh, b->nfresh);

		pages_read_done(b->fresh, b->nfresh, r);
		if (!ret)
			ret = r;
	}
	for (size_t i = 0; i < b->npages && !ret; i++)
		ret = page_make_uptodate(f, b->pages[i]);
	return ret;
}

#define READ_ROUND 64	/* pages per RCU section and copy batch */

/* The part of page @p that a read of [@at, @at + @left) wants. */
static void read_span(size_t ps, const struct cpage *p, off_t at, size_t left,
		      size_t *from, size_t *n)
{
	off_t pstart = (off_t)(p->index * ps);

	*from = at > pstart ? (size_t)(at - pstart) : 0;
	*n = ps - *from;
	if (*n > left)
		*n = left;
}

/* Add a device-to-host copy to @cps, merged into the last if they abut. */
size_t read_copies_add(struct dev_copy *cps, size_t n, dev_addr_t src,
		       char *dst, size_t len)
{
	struct dev_copy *last = n ? &cps[n - 1] : NULL;

	if (last && last->src + last->len == src &&
	    (char *)last->host + last->len == dst) {
		last->len += len;
		return n;
	}
	cps[n] = (struct dev_copy){ .dir = DEV_D2H, .host = dst, .src = src, .len = len };
	return n + 1;
}

/*
 * Copy pages @b->pages[@i...] (at most READ_ROUND) to @buf + *@done.
 * Host pages are copied from their frames; device pages straight into
 * @buf, one copy per run of back-to-back device frames, the runs of the
 * round run as one batch (dev_copy_batch: the synchronous fast path or
 * the device's engine).  All of it runs in one RCU read-side section: a
 * migration moving a page meanwhile frees the old frame only after the
 * section ends (migrate.c), so readers never wait for a migration.
 * Return: the index after the last page copied, or -errno.
 */
static ssize_t read_copy_round(struct cfile *f, struct read_batch *b, size_t i,
			       char *buf, off_t off, size_t len, size_t *done)
{
	struct cache *c = f->cache;
	size_t ps = c->cfg.page_size, ncps = 0, ndev = 0, end, at = *done;
	struct dev_copy cps[READ_ROUND];
	ssize_t ret = 0;

	rcu_read_lock();
	for (end = i; end < b->npages && end - i < READ_ROUND && at < len; end++) {
		struct cpage *p = b->pages[end];
		size_t from, n;

		read_span(ps, p, off + (off_t)at, len - at, &from, &n);
		cache_rcu_found(p);
		if (page_test_device(&p->ps)) {	/* pairs: migrate.c release */
			ncps = read_copies_add(cps, ncps, page_daddr(p) + from, buf + at, n);
			ndev++;
		} else {
			racy_read_begin();
			memcpy(buf + at, (char *)page_frame(p) + from, n);
			racy_read_end();
		}
		at += n;
	}
	if (ncps) {
		ret = dev_copy_batch(c->dev, cps, ncps);
		fctr_inc(f, bounce_reads, ndev);
	}
	cache_rcu_read_unlock();
	if (ret)
		return ret == -ENODEV ? -EIO : ret;
	*done = at;
	if (ndev)
		pages_promote_hot(c, b->pages + i, end - i);
	return (ssize_t)end;
}

/* Copy from the gathered pages.  Return: bytes copied, or -errno. */
static ssize_t read_copy(struct cfile *f, struct read_batch *b, char *buf,
			 off_t off, size_t len)
{
	size_t done = 0;
	ssize_t i = 0;

	while ((size_t)i < b->npages && done < len) {
		i = read_copy_round(f, b, (size_t)i, buf, off, len, &done);
		if (i < 0)
			return done ? (ssize_t)done : i;
	}
	return (ssize_t)done;
}

/* Room for @n pages in @b.  Return: 0 or -ENOMEM (free() both anyway). */
static int read_batch_alloc(struct read_batch *b, size_t n)
{
	b->pages = calloc(n, sizeof(*b->pages));
	b->fresh = calloc(n, sizeof(*b->fresh));
	return b->pages && b->fresh ? 0 : -ENOMEM;
}

/* Return: bytes read into @buf (maybe fewer than @len), or -errno. */
static ssize_t read_chunk(struct cfile *f, char *buf, off_t off, size_t len,
			  uint64_t ra_last)
{
	unsigned int shift = f->cache->page_shift;
	uint64_t first = (uint64_t)off >> shift;
	uint64_t last = (uint64_t)(off + (off_t)len - 1) >> shift;
	size_t n = (size_t)(last - first + 1) + (size_t)(ra_last - last);
	struct read_batch b = { 0 };
	ssize_t ret = read_batch_alloc(&b, n);

	if (ret)
		goto out_free;
	ret = read_fill(f, &b, first, last, ra_last);
	if (!ret)
		ret = read_copy(f, &b, buf, off, len);
	for (size_t i = 0; i < b.npages; i++)
		page_put(b.pages[i]);
out_free:
	free(b.pages);
	free(b.fresh);
	return ret;
}

ssize_t cache_read(struct cfile *f, void *buf, size_t len, off_t off,
		   struct cache_ra *ra)
{
	struct cache *c = f->cache;
	size_t ps = c->cfg.page_size, chunk, done = 0;
	off_t size = cache_file_size(f);
	unsigned int window;
	uint64_t last_page;
	uint32_t lost;

	if (off < 0)
		return -EINVAL;
	if (off >= size || !len)
		return 0;
	if ((off_t)len > size - off)
		len = (size_t)(size - off);
	window = ra_update(c, ra, off, len);
	if (!window)
		window = ra_context(f, ra, (uint64_t)off >> c->page_shift,
				    (uint64_t)(off + (off_t)len - 1) >> c->page_shift);
	last_page = (uint64_t)(size - 1) >> c->page_shift;
	lost = cache_lost_units(c);
	if (lost)
		file_drop_lost_pages(f, (uint64_t)off >> c->page_shift,
				     (uint64_t)(off + (off_t)len - 1) >> c->page_shift);
	/* hold at most a quarter of the cache at once */
	chunk = (c->frames.max_frames / 4 + 1) * ps;
	while (done < len) {
		off_t o = off + (off_t)done;
		size_t n = len - done < chunk ? len - done : chunk - (size_t)(o % (off_t)ps);
		uint64_t end = (uint64_t)(o + (off_t)n - 1) >> c->page_shift;
		uint64_t ra_last = end;
		ssize_t got;

		if (done + n >= len && window) {
			ra_last = end + window;
			if (ra_last > last_page)
				ra_last = last_page;
		}
		got = read_chunk(f, (char *)buf + done, o, n, ra_last);
		if (got == -EIO && cache_lost_units(c) != lost) {
			lost = cache_lost_units(c);	/* lost meanwhile */
			file_drop_lost_pages(f, (uint64_t)o >> c->page_shift, end);
			continue;
		}
		if (got < 0)
			return done ? (ssize_t)done : got;
		done += (size_t)got;
	}
	return (ssize_t)done;
}

/* Append [@p, @p + @n) to @v, merging with the last entry if adjacent. */
void read_vec_iov_add(struct cache_read_vec *v, char *p, size_t n)
{
	struct iovec *last = v->n ? &v->iov[v->n - 1] : NULL;

	if (last && (char *)last->iov_base + last->iov_len == p)
		last->iov_len += n;
	else
		v->iov[v->n++] = (struct iovec){ p, n };
}

/*
 * Fill @v from the gathered pages: host pages by pointer into their
 * frames, device pages by device-to-bounce copies (one per run of frames
 * and buffers that both lie back to back, all run as one batch): the
 * reply is written from the buffers, so a device page is copied once on
 * its way to the kernel.  Enters an RCU
 * read-side section that cache_read_vec_done() leaves (see
 * read_copy_round() for why).  Return: bytes, or -EAGAIN/-errno with
 * nothing held but the page references.
 */
static ssize_t read_vec_fill(struct cfile *f, struct read_batch *b, off_t off,
			     size_t len, struct cache_read_vec *v)
{
	struct cache *c = f->cache;
	size_t ps = c->cfg.page_size, ndev = 0, used = 0, done = 0, ncps = 0;
	struct dev_copy cps[CACHE_READ_VEC_MAX];
	ssize_t ret = 0;

	for (size_t k = 0; k < b->npages; k++)
		ndev += page_test_device(&b->pages[k]->ps);
	if (ndev) {
		v->nbufs = bounce_get(c->bounce, v->bufs, ndev, true);
		if (v->nbufs < ndev)
			goto out_again;	/* short of buffers: the copying path */
	}
	rcu_read_lock();
	for (size_t k = 0; k < b->npages && done < len; k++) {
		struct cpage *p = b->pages[k];
		size_t from, n;
		char *src;

		read_span(ps, p, off + (off_t)done, len - done, &from, &n);
		cache_rcu_found(p);
		if (page_test_device(&p->ps)) {	/* pairs: migrate.c release */
			if (used == v->nbufs) {
				ret = -EAGAIN;	/* moved there since we counted */
				break;
			}
			src = v->bufs[used++];
			ncps = read_copies_add(cps, ncps, page_daddr(p) + from, src, n);
		} else {
			src = (char *)page_frame(p) + from;
		}
		read_vec_iov_add(v, src, n);
		done += n;
	}
	if (!ret && ncps) {
		ret = dev_copy_batch(c->dev, cps, ncps);
		fctr_inc(f, bounce_reads, used);
	}
	if (!ret) {
		v->in_rcu = true;
		return (ssize_t)done;
	}
	cache_rcu_read_unlock();
out_again:
	bounce_put(c->bounce, v->bufs, v->nbufs);
	v->nbufs = 0;
	v->n = 0;
	/* a lost device: the copying path reads BACKING again */
	return ret && ret != -ENODEV ? ret : -EAGAIN;
}

ssize_t cache_read_vec(struct cfile *f, size_t len, off_t off,
		       struct cache_ra *ra, struct cache_read_vec *v)
{
	struct cache *c = f->cache;
	unsigned int shift = c->page_shift, window, seq;
	off_t size = cache_file_size(f);
	uint64_t first, last, ra_last, last_page;
	struct read_batch b = { .pages = v->pages };
	struct cpage *fresh[2 * CACHE_READ_VEC_MAX];
	ssize_t ret;

	v->n = 0;
	v->npages = v->nbufs = 0;
	v->in_rcu = false;
	v->served = v->ahead = NULL;
	v->ra = ra;
	if (off < 0)
		return -EINVAL;
	if (off >= size || !len)
		return 0;
	if ((off_t)len > size - off)
		len = (size_t)(size - off);
	first = (uint64_t)off >> shift;
	last = (uint64_t)(off + (off_t)len - 1) >> shift;
	if (last - first + 1 > CACHE_READ_VEC_MAX ||
	    last - first + 1 > c->frames.max_frames / 4 || cache_lost_units(c))
		return -EAGAIN;	/* long reads, and all once a device is lost,
				   take the copying path */
	window = seq = ra_update(c, ra, off, len);
	ret = devra_serve(f, ra, off, len, v);
	if (ret > 0) {	/* copied ahead: the next one goes now */
		rcu_read_lock();
		v->in_rcu = true;
		devra_start(f, ra, off + ret, (size_t)ret, v);
		return ret;
	}
	if (!window)
		window = ra_context(f, ra, first, last);
	last_page = (uint64_t)(size - 1) >> shift;
	ra_last = last + window;
	if (ra_last > last_page)
		ra_last = last_page;
	if (ra_last - first + 1 > 2 * CACHE_READ_VEC_MAX)
		ra_last = first + 2 * CACHE_READ_VEC_MAX - 1;
	b.fresh = fresh;
	ret = read_fill(f, &b, first, last, ra_last);
	v->npages = b.npages;
	if (!ret && b.npages < last - first + 1)
		ret = -EAGAIN;	/* frames ran short: the copying path goes on */
	if (!ret)
		ret = read_vec_fill(f, &b, off, len, v);
	if (ret > 0 && seq)	/* sequential: copy the next read's device pages */
		devra_start(f, ra, off + ret, (size_t)ret, v);
	if (ret >= 0)
		return ret;
	for (size_t i = 0; i < b.npages; i++)
		page_put(b.pages[i]);
	v->npages = 0;
	return ret;
}

void cache_read_vec_done(struct cfile *f, struct cache_read_vec *v)
{
	struct cache *c = f->cache;
	size_t ndev = v->nbufs;

	devra_wait(f, v);	/* before the section ends: the copies read frames */
	if (v->in_rcu)
		cache_rcu_read_unlock();
	devra_finish(f, v);
	v->in_rcu = false;
	if (v->nbufs)
		bounce_put(c->bounce, v->bufs, v->nbufs);
	if (ndev)
		pages_promote_hot(c, v->pages, v->npages);
	for (size_t i = 0; i < v->npages; i++)
		page_put(v->pages[i]);
	v->n = 0;
	v->npages = v->nbufs = 0;
}

/*
 * Bring pages [@first, @last] into the cache (reading those not cached)
 * and return them referenced and uptodate, in index order: at most the
 * frames the cache could give, so *@count may be short of the range.
 * Release each with page_put() and the array with free().
 */
int file_populate(struct cfile *f, uint64_t first, uint64_t last,
		  struct cpage ***out, size_t *count)
{
	size_t n = (size_t)(last - first + 1);
	struct read_batch b = { 0 };
	int ret = read_batch_alloc(&b, n);

	*out = NULL;
	*count = 0;
	if (ret)
		goto out_free;
	ret = read_fill(f, &b, first, last, last);
	if (ret) {
		for (size_t i = 0; i < b.npages; i++)
			page_put(b.pages[i]);
		goto out_free;
	}
	*out = b.pages;
	*count = b.npages;
	b.pages = NULL;
out_free:
	free(b.pages);
	free(b.fresh);
	return ret;
}
