/* SPDX-License-Identifier: MIT */
/*
 * cache/file.c — a file's pages: index, read path, write path, truncate.
 *
 * Index.  Each file's pages sit in a lock-free radix tree (index.c).  A
 * lookup takes no lock: it finds the page under rcu_read_lock() and takes
 * a reference only if the count is not zero (page_get_unless_zero), since
 * zero means the page is being removed.  Lock-free because the read path
 * of a hot file is hit by many threads at once, and even a read-locked
 * rwlock bounces one cache line between all of them; lookups here touch
 * only the page's own reference count.  Pages are freed after an RCU grace
 * period (call_rcu), so a reader never touches freed memory; so are a
 * closed file's index and structure.
 *
 * Misses.  The thread that misses inserts a new page *locked* and not
 * uptodate (index_insert, a compare-and-swap); a second thread missing on the same page
 * finds that page, sleeps on its lock and, when woken, finds it uptodate:
 * concurrent misses share one backing read.  Misses of a sequential reader
 * also read ahead: the window starts at 8 pages and doubles per sequential
 * read up to 256 pages (1 MiB of 4 KiB pages); a random read resets it.
 * A random miss right after a run of cached pages reads ahead as many
 * pages as that run (ra_context).  Pages are read in one batch of
 * requests to the I/O engine.
 *
 * Writes.  A write locks each page in turn, waits for writeback of it to
 * end (stable pages: BACKING must get the bytes as they were when
 * writeback took them), reads the page first only if the write covers it
 * partly and it is not uptodate (and lies below EOF), copies the bytes,
 * and marks it dirty.  Writers never hold two page locks at once.
 *
 * Removal.  A page is removed locked and with its reference count frozen
 * from 1 (the index's own) to 0, so nobody else holds it: a remover that
 * finds other users backs off (-EAGAIN) and retries later, holding no
 * reference of its own meanwhile (file_drop_range), or two removers of
 * one page would each wait for the other's forever.
 *
 * Locking: see cache.h for the order.  cfile->lock guards size, mtime and
 * dirty bookkeeping and is taken inside page locks, never around them.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cache/cache_int.h"
#include "lib/racy.h"
#include "cache/rcu.h"

#define RA_MIN_PAGES 8
#define RA_MAX_BYTES (1u << 20)

bool page_get_unless_zero(struct cpage *p)
{
	int r = atomic_load_explicit(&p->ref, memory_order_relaxed);

	while (r > 0)
		if (atomic_compare_exchange_weak_explicit(&p->ref, &r, r + 1,
							  memory_order_acquire,
							  memory_order_relaxed))
			return true;
	return false;
}

struct cpage *page_lookup_get(struct cfile *f, uint64_t index)
{
	struct cpage *p;

	rcu_read_lock();
	p = index_lookup(f, index);
	if (p) {
		cache_rcu_found(p);
		if (!page_get_unless_zero(p))
			p = NULL;
	}
	cache_rcu_read_unlock();
	return p;
}

void page_put(struct cpage *p)
{
	/* Never reaches zero here: the index holds one until removal. */
	atomic_fetch_sub_explicit(&p->ref, 1, memory_order_release);
}

static void page_free_rcu(struct rcu_head *head)
{
	cache_rcu_reclaim();
	free((char *)head - offsetof(struct cpage, rcu));
}

/*
 * page_remove_locked() - take a locked page out of its file and the cache.
 * Context: page locked; the caller holds no reference of its own.
 * Return: 0, and the page is gone (not to be unlocked; the caller takes
 * it off the LRU list and calls page_free_deferred()), or -EAGAIN if
 * someone else holds a reference.
 */
int page_remove_locked(struct cpage *p)
{
	struct cache *c = p->file->cache;
	int one = 1;

	assert(page_test_locked(&p->ps));
	if (!atomic_compare_exchange_strong_explicit(&p->ref, &one, 0,
						     memory_order_acquire,
						     memory_order_relaxed))
		return -EAGAIN;
	/* No turning back from here: nobody can take a reference now. */
	index_remove(p->file, p);
	page_collapse_locked(p);	/* its replicas go with it */
	if (page_test_shared(&p->ps)) {	/* the frame is dedupe's */
		if (page_test_device(&p->ps))
			dev_pages_dec(c, page_daddr(p));
		else
			atomic_fetch_sub(&c->nr_pages, 1);
		ksm_unshare_removed(p);
	} else if (page_test_device(&p->ps)) {
		dev_frame_free(c->dev, page_daddr(p));
		dev_pages_dec(c, page_daddr(p));
	} else {
		frame_free(&c->frames, page_frame(p));
		atomic_fetch_sub(&c->nr_pages, 1);
	}
	file_content_changed(p->file);
	file_page_gone(p->file);	/* last: the file may go once it is 0 */
	return 0;
}

void page_free_deferred(struct cpage *p)
{
	cache_rcu_defer();
	call_rcu(&p->rcu, page_free_rcu);
}

/*
 * A frame for a new page.  When host memory is full, cold pages move to
 * the device tier (clean or dirty); without one, or when it is full of
 * dirty pages too, clean pages are dropped, and last dirty ones written
 * back.  Demotion or eviction can make progress that frees no frame for
 * us (others take the frames first; a page moved off a frame dedupe
 * shares leaves the frame in use), so even then the caller sleeps now
 * and then, and gives up after FRAME_WAIT_MS of trying (a caller that
 * may not wait, after FRAME_SPINS tries).  Counting tries alone let a
 * loop of such progress end in ENOMEM within milliseconds.
 */
#define FRAME_SPINS 64
#define FRAME_WAIT_MS 20000

void *cache_frame_get(struct cache *c, bool may_wait)
{
	uint64_t deadline = 0;

	for (unsigned int tries = 1;; tries++) {
		void *frame = frame_alloc(&c->frames);
		bool progress;

		if (frame)
			return frame;
		progress = (c->dev && lru_demote(c, 64)) || lru_evict(c, 16);
		if (!progress && may_wait)
			progress = cache_reclaim_dirty(c) > 0;
		if (progress && tries % FRAME_SPINS)
			continue;
		if (!may_wait)
			return NULL;
		if (!deadline)
			deadline = cache_now_ms() + FRAME_WAIT_MS;
		else if (cache_now_ms() > deadline)
			return NULL;	/* every page pinned, for this long */
		nanosleep(&(struct timespec){ .tv_nsec = 1000000 }, NULL);
	}
}

/*
 * Find page @index of @f, or insert a new one.  A new page is returned
 * locked and not uptodate with *@created set; an existing one unlocked.
 * Both with a reference.  Without @may_wait, return NULL rather than wait
 * for a frame (readahead).
 */
static struct cpage *page_find_or_create(struct cfile *f, uint64_t index,
					 bool *created, bool may_wait)
{
	struct cache *c = f->cache;

	for (;;) {
		struct cpage *p = page_lookup_get(f, index), *np;
		void *frame;

		*created = false;
		if (p)
			return p;
		frame = cache_frame_get(c, may_wait);
		if (!frame)
			return NULL;
		np = calloc(1, sizeof(*np));
		if (!np) {
			frame_free(&c->frames, frame);
			return NULL;
		}
		atomic_init(&np->ps.state, PG_BIT(PG_locked));
		atomic_init(&np->ref, 2);	/* the index's and ours */
		np->index = index;
		np->file = f;
		atomic_init(&np->frame, frame);
		atomic_init(&np->daddr, DEV_ADDR_NONE);
		clist_init(&np->lru);
		cache_rcu_publish(np);
		rcu_read_lock();
		p = index_insert(f, np);
		if (p == np) {
			cache_rcu_read_unlock();
			atomic_fetch_add(&c->nr_pages, 1);
			atomic_fetch_add(&f->nr_pages, 1);
			lru_add(c, np);
			*created = true;
			return np;
		}
		/* lost the race: use the winner's page (unless it is going) */
		if (p) {
			cache_rcu_found(p);
			if (!page_get_unless_zero(p))
				p = (struct cpage *)-1;	/* retry */
		}
		cache_rcu_read_unlock();
		frame_free(&c->frames, frame);
		free(np);
		if (!p)
			return NULL;	/* no memory for index nodes */
		if (p != (struct cpage *)-1)
			return p;
	}
}

/*
 * Cut @pp (in index order) into runs of consecutive pages, one request
 * each: a single page as a plain buffer, longer runs as a vector.  The
 * bytes of page @pp[k] are at @data[k] (its frame, or a bounce buffer).
 */
int page_runs_alloc(struct page_runs *r, size_t n)
{
	r->nreqs = 0;
	r->tail_fd = -1;
	r->reqs = calloc(n ? n : 1, sizeof(*r->reqs));
	r->iovs = calloc(n ? n : 1, sizeof(*r->iovs));
	if (!r->reqs || !r->iovs) {
		page_runs_free(r);
		return -ENOMEM;
	}
	return 0;
}

/*
 * The bytes of the page at @off a backing call may cover: none past the
 * largest offset a file can have (2^63 - 1), which the kernel refuses
 * (EINVAL) even where the file is that large.
 */
static size_t page_io_len(off_t off, size_t ps)
{
	return off > INT64_MAX - (off_t)ps ? (size_t)(INT64_MAX - off) : ps;
}

int page_runs_build(struct cfile *f, struct cpage **pp, void *const *data,
		    size_t n, int op, struct page_runs *r)
{
	size_t ps = f->cache->cfg.page_size;
	size_t max_run = op == IO_READ && f->read_run ? f->read_run : CACHE_MAX_RUN;

	if (page_runs_alloc(r, n))
		return -ENOMEM;
	for (size_t i = 0, j; i < n; i = j + 1) {
		struct io_req *q = &r->reqs[r->nreqs++];

		for (j = i; j + 1 < n && pp[j + 1]->index == pp[j]->index + 1 &&
			    j + 1 - i < max_run; j++)
			;
		for (size_t k = i; k <= j; k++)
			r->iovs[k] = (struct iovec){
				data[k], page_io_len((off_t)(pp[k]->index * ps), ps) };
		*q = (struct io_req){ .fd = f->fd, .op = op,
				      .off = (off_t)(pp[i]->index * ps),
				      .priv = (void *)(uintptr_t)i };
		if (j == i) {
			q->buf = data[i];
			q->len = r->iovs[i].iov_len;
		} else {
			q->iov = &r->iovs[i];
			q->iovcnt = (unsigned int)(j - i + 1);
		}
	}
	return 0;
}

void page_runs_free(struct page_runs *r)
{
	free(r->reqs);
	free(r->iovs);
	r->reqs = NULL;
	r->iovs = NULL;
}

size_t page_run_len(const struct io_req *req)
{
	return req->iovcnt ? req->iovcnt : 1;
}

/*
 * The last page a file can have (at 2^63 - page size) is read short
 * (page_io_len()), which O_DIRECT refuses: then @r's last request goes
 * through a buffered descriptor opened for it.  Return: that descriptor
 * (the caller closes it), or -1.
 */
static int last_page_fd(struct cfile *f, struct cpage **pp, size_t n,
			struct page_runs *r)
{
	size_t ps = f->cache->cfg.page_size;
	char path[64];
	int fd;

	if (!f->direct || !n || (off_t)(pp[n - 1]->index * ps) <= INT64_MAX - (off_t)ps)
		return -1;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", f->fd);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0)
		r->reqs[r->nreqs - 1].fd = fd;
	return fd;
}

/* Read the pages in @pp (locked, not uptodate, in index order). */
static int pages_read(struct cfile *f, struct cpage **pp, size_t n)
{
	struct cache *c = f->cache;
	size_t ps = c->cfg.page_size;
	struct page_runs r;
	void **data;
	int ret, tail;

	if (!n)
		return 0;
	data = malloc(n * sizeof(*data));
	if (!data)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		data[i] = page_frame(pp[i]);	/* new pages: always on the host */
	ret = page_runs_build(f, pp, data, n, IO_READ, &r);
	if (ret) {
		free(data);
		return ret;
	}
	tail = last_page_fd(f, pp, n, &r);
	ret = io_submit_wait(c->io, r.reqs, (unsigned int)r.nreqs);
	if (tail >= 0)
		close(tail);
	ctr_inc(c, backing_reads, r.nreqs);
	for (size_t q = 0; q < r.nreqs && !ret; q++) {
		size_t first = (uintptr_t)r.reqs[q].priv, len = page_run_len(&r.reqs[q]);
		ssize_t got = r.reqs[q].res;

		if (got < 0) {
			ret = (int)got;
			break;
		}
		/* past a short read is EOF: zeros */
		for (size_t k = 0; k < len; k++) {
			size_t have = (size_t)got > k * ps ? (size_t)got - k * ps : 0;

			if (have < ps)
				memset((char *)data[first + k] + have, 0, ps - have);
		}
	}
	page_runs_free(&r);
	free(data);
	return ret;
}

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

off_t cache_file_size(struct cfile *f)
{
	off_t size;

	pthread_mutex_lock(&f->lock);
	size = f->size;
	pthread_mutex_unlock(&f->lock);
	return size;
}

/* Grow the readahead window of a sequential reader; reset it otherwise. */
static unsigned int ra_update(struct cache *c, struct cache_ra *ra, off_t off,
			      size_t len)
{
	unsigned int max = (unsigned int)(RA_MAX_BYTES >> c->page_shift);
	off_t next;
	unsigned int window;

	if (!ra)
		return 0;
	next = atomic_load_explicit(&ra->next, memory_order_relaxed);
	window = atomic_load_explicit(&ra->window, memory_order_relaxed);
	if (off == next && off != 0)
		window = window ? window * 2 : RA_MIN_PAGES;
	else if (off != next)
		window = 0;
	if (window > max)
		window = max ? max : 1;
	atomic_store_explicit(&ra->window, window, memory_order_relaxed);
	atomic_store_explicit(&ra->next, off + (off_t)len, memory_order_relaxed);
	return window;
}

/*
 * Readahead for a read that is not sequential on its open file but lands
 * just after pages already cached: a stream that the kernel sends on
 * several opens, or random reads filling a file in.  As the kernel's own
 * readahead does (the "context" case of mm/readahead.c's idea), the run of
 * cached pages before @first is taken as history: read ahead as many pages
 * as that run is long, up to RA_MAX_BYTES and an eighth of the cache, when
 * it is at least as long as the request.  Only a miss at @first looks; lookups are lock-free, and a
 * page found meanwhile gone only misjudges one read.
 */
static unsigned int ra_context(struct cfile *f, struct cache_ra *ra,
			       uint64_t first, uint64_t last)
{
	struct cache *c = f->cache;
	unsigned int max = (unsigned int)(RA_MAX_BYTES >> c->page_shift);
	uint64_t want = last - first + 1;
	unsigned int run = 0;
	bool miss;

	if (!ra)
		return 0;	/* the caller wants no readahead */
	if (max > c->frames.max_frames / 8)
		max = (unsigned int)(c->frames.max_frames / 8);	/* no thrashing */

	rcu_read_lock();
	miss = !index_lookup(f, first);
	while (miss && run < max && run < first && index_lookup(f, first - run - 1))
		run++;
	cache_rcu_read_unlock();
	return miss && run >= want ? run : 0;
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

/*
 * The CPU writes [@from, @to) of a device-resident page: the device
 * mapping goes read-only for the update (a device write meanwhile would
 * fault and wait for the page lock), the bytes go through a bounce buffer
 * into the page's device frame, and the page stays on the device.  Only
 * the written bytes are copied: the device frame already holds the rest.
 * Context: page locked, not under writeback, not shared.
 */
static int write_device_page_locked(struct cpage *p, size_t from, size_t to,
				    const char *src)
{
	struct cache *c = p->file->cache;
	void *bb;
	int ret = wp_fault_locked(p, WP_BOUNCE);	/* read-only for the update */

	if (ret)
		return ret;
	bounce_get(c->bounce, &bb, 1, true);
	memcpy((char *)bb + from, src, to - from);
	ret = dev_copy_batch(c->dev, &(struct dev_copy){ .dir = DEV_H2D,
			     .host = (char *)bb + from, .dst = page_daddr(p) + from,
			     .len = to - from }, 1);
	bounce_put(c->bounce, &bb, 1);
	if (ret)
		return ret == -ENODEV ? -EIO : ret;
	fctr_inc(p->file, bounce_writes, 1);
	return 0;
}

/*
 * Should a CPU write bring device page @p back to the host first?  Writes
 * count as CPU accesses for migrate=adaptive, as reads do.
 */
static bool write_wants_host(struct cache *c, struct cpage *p)
{
	unsigned int n = atomic_fetch_add_explicit(&p->cpu_reads, 1,
						   memory_order_relaxed) + 1;

	if (c->policy == MIGRATE_BOUNCE || page_thrash_hold(c, p))
		return false;
	return c->policy == MIGRATE_PROMOTE || n >= 3;
}

/* Write into a host-resident page.  Context: page locked. */
static int write_host_page_locked(struct cfile *f, struct cpage *p,
				  size_t from, size_t to, const char *src,
				  off_t size)
{
	size_t ps = f->cache->cfg.page_size;
	int ret = 0;

	if (!page_test_uptodate(&p->ps) && (from || to < ps)) {
		if ((off_t)(p->index * ps) >= size)
			memset(page_frame(p), 0, ps);	/* wholly past EOF */
		else
			ret = pages_read(f, &p, 1);
	}
	if (!ret) {
		memcpy((char *)page_frame(p) + from, src, to - from);
		page_set_uptodate(&p->ps);
	}
	return ret;
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

/* Write into one page: [from, to) of page @index from @src. */
static int write_page(struct cfile *f, uint64_t index, size_t from, size_t to,
		      const char *src, off_t size)
{
	struct cache *c = f->cache;
	size_t ps = c->cfg.page_size;
	bool created;
	struct cpage *p = page_find_or_create(f, index, &created, true);
	int ret = 0;

	if (!p)
		return -ENOMEM;
	if (!created)
		cache_page_lock(&p->ps);
	ret = wp_fault_locked(p, WP_CPU);	/* stable pages; copy if shared */
	if (!ret && page_test_device(&p->ps) && write_wants_host(c, p))
		pages_to_host_locked(c, &p, 1, true);	/* else: stays there */
	if (!ret)	/* one dirty range per page, with no gap in it */
		ret = page_dirty_prepare_locked(p, from, to);
	if (!ret)
		ret = page_test_device(&p->ps) ?
		      write_device_page_locked(p, from, to, src) :
		      write_host_page_locked(f, p, from, to, src, size);
	if (!ret) {
		off_t end = (off_t)(index * ps + to);

		/*
		 * The size grows before the page can be written back: the
		 * flusher cuts BACKING to the cache's size after each run.
		 */
		pthread_mutex_lock(&f->lock);
		if (end > f->size)
			f->size = end;
		clock_gettime(CLOCK_REALTIME, &f->mtime);
		pthread_mutex_unlock(&f->lock);
		page_mark_dirty_range_locked(p, from, to);
		file_content_changed(f);
	}
	cache_page_unlock(&p->ps);
	page_put(p);
	return ret;
}

ssize_t cache_write(struct cfile *f, const void *buf, size_t len, off_t off)
{
	struct cache *c = f->cache;
	size_t ps = c->cfg.page_size, done = 0;
	uint32_t lost;
	off_t size;
	int ret;

	if (off < 0 || (off_t)len < 0 || off + (off_t)len < off)
		return -EINVAL;
	ret = cache_throttle(c);
	if (ret)
		return ret;
	pthread_rwlock_rdlock(&f->trunc_lock);	/* wholly before or after one */
	size = cache_file_size(f);
	lost = cache_lost_units(c);
	if (lost && len)
		file_drop_lost_pages(f, (uint64_t)off >> c->page_shift,
				     (uint64_t)(off + (off_t)len - 1) >> c->page_shift);
	while (done < len) {
		off_t o = off + (off_t)done;
		uint64_t index = (uint64_t)o >> c->page_shift;
		size_t from = (size_t)(o & (off_t)(ps - 1));
		size_t to = from + (len - done) < ps ? from + (len - done) : ps;

		ret = write_page(f, index, from, to, (const char *)buf + done, size);
		if (ret == -EIO && cache_lost_units(c) != lost) {
			lost = cache_lost_units(c);	/* lost meanwhile */
			file_drop_lost_pages(f, index, (uint64_t)(off + (off_t)len - 1) >>
						       c->page_shift);
			continue;
		}
		if (ret)
			break;
		done += to - from;
	}
	pthread_rwlock_unlock(&f->trunc_lock);
	fctr_inc(f, written_bytes, done);
	return done ? (ssize_t)done : ret;
}

ssize_t cache_write_all(struct cfile *f, const void *buf, size_t len, off_t off)
{
	size_t done = 0;
	ssize_t n = 0;

	while (done < len) {
		n = cache_write(f, (const char *)buf + done, len - done, off + (off_t)done);
		if (n <= 0)
			break;
		done += (size_t)n;
	}
	if (done == len)
		return (ssize_t)len;
	if (!n)
		n = -EIO;
	if (done)	/* else the error alone says it: nothing was taken */
		cache_log_file(f, "%s: write-back from the kernel: %s after part of "
			       "it; %llu bytes not taken (the kernel is told the error)",
			       strerror((int)-n), len - done);
	return n;
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

void file_touch_mtime(struct cfile *f)
{
	pthread_mutex_lock(&f->lock);
	clock_gettime(CLOCK_REALTIME, &f->mtime);
	pthread_mutex_unlock(&f->lock);
}

void cache_file_set_owner(struct cfile *f, uint64_t owner)
{
	f->owner = owner;
}

/* The store comes before ksm_unshare_file() locks each page: see cache/ksm.c. */
int cache_file_set_uid(struct cfile *f, uint32_t uid)
{
	if (atomic_exchange(&f->uid, uid) == uid || f->cache->cfg.ksm_scope_all)
		return 0;
	return ksm_unshare_file(f->cache->ksm, f);
}

uint32_t cache_file_uid(struct cfile *f)
{
	return atomic_load(&f->uid);
}

struct collect {
	uint32_t need_flags;
	struct cpage **v;
	size_t n, cap;
};

static int collect_one(struct cpage *p, void *arg)
{
	struct collect *c = arg;

	cache_rcu_found(p);
	if (c->need_flags && !(page_flags(&p->ps) & c->need_flags))
		return 0;
	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 64;
		struct cpage **nv = realloc(c->v, cap * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		c->v = nv;
		c->cap = cap;
	}
	if (page_get_unless_zero(p))
		c->v[c->n++] = p;
	return 0;
}

/*
 * Collect referenced pages of @f with index in [first, last] that have any
 * of @need_flags (0: all), in index order.  Release each with page_put()
 * and the array with free().
 */
int file_collect_pages(struct cfile *f, uint64_t first, uint64_t last,
		       uint32_t need_flags, struct cpage ***out, size_t *count)
{
	struct collect c = { .need_flags = need_flags };
	int ret;

	rcu_read_lock();
	ret = index_for_each(f, first, last, collect_one, &c);
	cache_rcu_read_unlock();
	*out = c.v;
	*count = c.n;
	return ret;
}

/*
 * Backoff of a dropper that found a page in use: 50 us, doubling to 5 ms,
 * each sleep drawn between half and all of that, so that droppers racing
 * for one page (two O_TRUNC opens, a truncate and a close) fall out of
 * step instead of colliding again on every try.
 */
#define DROP_BACKOFF_MIN_US 50
#define DROP_BACKOFF_MAX_US 5000

static void drop_backoff(unsigned int *us)
{
	static _Thread_local uint32_t seed;
	unsigned int t;

	if (!seed)	/* per thread: its stack address and the time */
		seed = ((uint32_t)(uintptr_t)&t ^ (uint32_t)time(NULL)) | 1;
	seed ^= seed << 13;	/* xorshift32 */
	seed ^= seed >> 17;
	seed ^= seed << 5;
	t = *us / 2 + seed % (*us / 2 + 1);
	nanosleep(&(struct timespec){ .tv_nsec = (long)t * 1000 }, NULL);
	if (*us < DROP_BACKOFF_MAX_US)
		*us *= 2;
}

/*
 * One try at dropping the page at @index of @f, discarding dirty data
 * when @discard.  The caller holds no reference of its own while it backs
 * off and tries again: two droppers that each kept one while waiting for
 * the other's to go (page_remove_locked needs the index's alone) waited
 * for each other forever.  Our own reference goes before the removal is
 * tried, under the page lock, which keeps the page from being removed and
 * freed by anyone else.
 * Return: 0 when no page is left there (dropped now, or by someone else,
 * who owns the removal once the count is 0) or a dirty one is kept (not
 * @discard); -EAGAIN when others hold it: back off, then try again.
 */
static int page_drop_index(struct cfile *f, uint64_t index, bool discard)
{
	struct cache *c = f->cache;
	struct cpage *p = page_lookup_get(f, index);

	if (!p)
		return 0;
	cache_page_lock(&p->ps);
	cache_page_wait_writeback(&p->ps);
	if (page_test_dirty(&p->ps)) {
		if (!discard) {
			cache_page_unlock(&p->ps);
			page_put(p);
			return 0;	/* keep data we could not write */
		}
		page_cancel_dirty_locked(p);
	}
	page_put(p);
	if (page_remove_locked(p)) {
		/*
		 * Without a reference the page lives on only by RCU once it is
		 * unlocked (its next holder may remove it, and the unlock's
		 * wake-up still touches its state word).
		 */
		rcu_read_lock();
		cache_page_unlock(&p->ps);
		cache_rcu_read_unlock();
		return -EAGAIN;
	}
	pthread_mutex_lock(&c->lru_lock);
	lru_del_locked(c, p);
	pthread_mutex_unlock(&c->lru_lock);
	page_free_deferred(p);
	return 0;
}

static int first_index(struct cpage *p, void *arg)
{
	cache_rcu_found(p);
	*(uint64_t *)arg = p->index;
	return 1;
}

/* The index of the first page of @f in [@first, @last]; false if none. */
static bool file_next_index(struct cfile *f, uint64_t first, uint64_t last,
			    uint64_t *index)
{
	int found;

	rcu_read_lock();
	found = index_for_each(f, first, last, first_index, index);
	cache_rcu_read_unlock();
	return found > 0;
}

/* Is page @i of @f on a device that is gone? */
static bool page_on_lost_unit(struct cfile *f, uint64_t i)
{
	struct cpage *p = page_lookup_get(f, i);
	bool lost;

	if (!p)
		return false;
	lost = page_test_device(&p->ps) &&
	       dev_unit_lost(f->cache->dev, dev_addr_unit(page_daddr(p)));
	page_put(p);
	return lost;
}

#define DROP_LOST_TRIES 16	/* then the access fails with EIO */

void file_drop_lost_pages(struct cfile *f, uint64_t first, uint64_t last)
{
	uint64_t i = first;

	while (file_next_index(f, i, last, &i)) {
		unsigned int backoff_us = DROP_BACKOFF_MIN_US;

		for (int t = 0; t < DROP_LOST_TRIES && page_on_lost_unit(f, i) &&
				page_drop_index(f, i, false) == -EAGAIN; t++)
			drop_backoff(&backoff_us);
		if (i == last)
			break;
		i++;
	}
}

/*
 * Drop the pages in [first, last]; dirty ones too when @discard.  Walks
 * indexes, not collected references, for the reason page_drop_index()
 * gives; retries a page until it is gone, since others hold pages only
 * while they work on them (lookups, writeback, migration, dedupe).
 */
void file_drop_range(struct cfile *f, uint64_t first, uint64_t last,
		     bool discard)
{
	uint64_t i = first;

	while (file_next_index(f, i, last, &i)) {
		unsigned int backoff_us = DROP_BACKOFF_MIN_US;

		while (page_drop_index(f, i, discard) == -EAGAIN)
			drop_backoff(&backoff_us);
		if (i == last)
			break;
		i++;
	}
}

/* Zero a device page from @from to its end.  Context: page locked. */
static void page_zero_device_tail_locked(struct cpage *p, size_t from)
{
	struct cache *c = p->file->cache;
	struct dev_fence fence = DEV_FENCE_INIT;

	if (!dev_fill(c->dev, page_daddr(p) + from, 0, c->cfg.page_size - from,
		      &fence))
		dev_fence_wait(c->dev, &fence);
}

/*
 * Zero the cached tail of the page holding EOF @size (if cached).
 * Return: 0, or -errno when a shared page could not be copied first (the
 * caller reports it: the tail must not come back if the file grows).
 */
static int page_zero_tail(struct cfile *f, off_t size)
{
	struct cache *c = f->cache;
	size_t ps = c->cfg.page_size, from = (size_t)(size % (off_t)ps);
	struct cpage *p;
	int ret;

	if (!from)
		return 0;
	p = page_lookup_get(f, (uint64_t)size >> c->page_shift);
	if (!p)
		return 0;
	cache_page_lock(&p->ps);
	ret = wp_fault_locked(p, WP_CPU);	/* a shared page is copied first */
	if (!ret)
		page_clip_dirty_locked(p, from);
	if (!ret && page_test_device(&p->ps))
		page_zero_device_tail_locked(p, from);
	else if (!ret && page_test_uptodate(&p->ps))
		memset((char *)page_frame(p) + from, 0, ps - from);
	cache_page_unlock(&p->ps);
	page_put(p);
	return ret;
}

/*
 * The size changes first, so writeback cuts what it writes there.  The
 * clean pages past the new EOF are dropped before BACKING shrinks (which
 * also waits out their writeback) and all of them, dirty ones too, after;
 * the EOF page's tail is zeroed last: a migration or devop (which read
 * pages in without the kernel's ordering against truncate) may have read
 * old bytes from BACKING in between.  If BACKING refuses the truncate, the
 * file keeps its size and its data: nothing dirty was discarded yet.
 * This is cache_truncate()'s work.  Context: f->trunc_lock held.
 */
static int truncate_locked(struct cfile *f, off_t size)
{
	struct cache *c = f->cache;
	size_t ps = c->cfg.page_size;
	uint64_t keep = ((uint64_t)size + ps - 1) >> c->page_shift;
	struct stat st;
	off_t old;
	int ret;

	pthread_mutex_lock(&f->lock);
	old = f->size;
	f->size = size;
	f->own_changes++;
	pthread_mutex_unlock(&f->lock);
	file_drop_range(f, keep, UINT64_MAX, false);
	if (ftruncate(f->fd, size) < 0) {
		ret = -errno;
		pthread_mutex_lock(&f->lock);
		if (f->size == size)	/* unless a truncate or write since */
			f->size = old;
		f->own_changes--;
		pthread_mutex_unlock(&f->lock);
		return ret;
	}
	file_drop_range(f, keep, UINT64_MAX, true);
	/* bytes past the new EOF must read as zero if it grows again */
	ret = page_zero_tail(f, size);
	file_content_changed(f);
	pthread_mutex_lock(&f->lock);
	if (!ret && fstat(f->fd, &st) == 0) {
		f->seen_size = st.st_size;
		f->seen_mtime = st.st_mtim;
		/* the truncate's mtime is BACKING's; dirty pages keep it there */
		f->mtime = f->nr_dirty ? st.st_mtim : (struct timespec){ 0 };
	}
	f->own_changes--;
	pthread_mutex_unlock(&f->lock);
	return ret;
}

int cache_truncate(struct cfile *f, off_t size)
{
	int ret;

	if (size < 0)
		return -EINVAL;
	pthread_rwlock_wrlock(&f->trunc_lock);	/* see struct cfile */
	ret = truncate_locked(f, size);
	pthread_rwlock_unlock(&f->trunc_lock);
	return ret;
}

int cache_writeback_range(struct cfile *f, off_t start, off_t end, bool drop)
{
	unsigned int shift = f->cache->page_shift;
	uint64_t first, last;
	int ret;

	if (start < 0 || end <= start)
		return 0;
	first = (uint64_t)start >> shift;
	last = (uint64_t)(end - 1) >> shift;
	ret = file_writeback(f, first, last, true);
	if (drop)
		file_drop_range(f, first, last, false);
	return ret;
}

void cache_file_change_begin(struct cfile *f)
{
	pthread_rwlock_rdlock(&f->trunc_lock);	/* held until _end */
	pthread_mutex_lock(&f->lock);
	f->own_changes++;
	pthread_mutex_unlock(&f->lock);
}

void file_note_backing_locked(struct cfile *f)
{
	struct stat st;

	if (f->fd < 0 || fstat(f->fd, &st) < 0)
		return;
	f->seen_size = st.st_size;
	f->seen_mtime = st.st_mtim;
}

void cache_file_change_end(struct cfile *f, off_t end)
{
	pthread_mutex_lock(&f->lock);
	if (end > f->size)
		f->size = end;
	file_note_backing_locked(f);
	f->own_changes--;
	pthread_mutex_unlock(&f->lock);
	pthread_rwlock_unlock(&f->trunc_lock);
	file_content_changed(f);	/* BACKING's bytes under the cache moved */
}

static bool ts_after(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec > b->tv_sec ||
	       (a->tv_sec == b->tv_sec && a->tv_nsec > b->tv_nsec);
}

/*
 * Pages BACKING does not have yet take space there once written back, and
 * du and sparse-copy tools judge by st_blocks: count each dirty or
 * in-flight page as allocated on top of what BACKING reports (an
 * overwrite of allocated blocks is counted twice, so this can overstate
 * until writeback), but never past the size rounded up to whole pages
 * unless BACKING itself reports more (preallocation).
 */
static void cfile_fix_blocks_locked(struct cfile *f, struct stat *st)
{
	uint64_t ps = f->cache->cfg.page_size;
	uint64_t pending = (f->nr_dirty + f->nr_writeback) * (ps / 512);
	uint64_t cap = ((uint64_t)f->size + ps - 1) / ps * (ps / 512);
	uint64_t have = (uint64_t)st->st_blocks;

	if (!pending || have >= cap)
		return;
	st->st_blocks = (blkcnt_t)(have + pending < cap ? have + pending : cap);
}

/*
 * Did someone else change BACKING (now @st) since the cache last looked?
 * Their change moves mtime past what we last saw, or at least not before
 * it.  An older mtime is our own: the kernel may give a fine-grained mtime
 * to one fstat and a coarser, earlier one later (multigrain timestamps),
 * and an O_DIRECT write that extends the file sets mtime when it starts
 * but the size when it ends.  Context: @f->lock held.
 */
static bool backing_changed_locked(struct cfile *f, const struct stat *st)
{
	bool older = ts_after(&f->seen_mtime, &st->st_mtim);

	return ts_after(&st->st_mtim, &f->seen_mtime) ||
	       (st->st_size != f->seen_size && !older);
}

void file_note_outside_change(struct cfile *f, size_t n)
{
	struct stat st;

	if (fstat(f->fd, &st) < 0)
		return;
	pthread_mutex_lock(&f->lock);
	if (f->nr_writeback == n && !f->own_changes &&
	    backing_changed_locked(f, &st))
		f->outside_changed = true;
	pthread_mutex_unlock(&f->lock);
}

/* Context: @f->lock held. */
static bool file_quiet_locked(const struct cfile *f)
{
	return !f->nr_dirty && !f->nr_writeback && !f->own_changes;
}

/*
 * BACKING's attributes now, in @now: through the cache's descriptor, or
 * else the caller's @fd.  With neither, the caller's @st: the file is
 * then neither held nor dirty, but a change of ours may have ended since
 * @st was taken, so callers should pass a descriptor.  Context: @f->lock
 * held.
 */
static bool file_fstat_locked(struct cfile *f, int fd, const struct stat *st,
			      struct stat *now)
{
	if (f->fd >= 0)
		fd = f->fd;
	if (fd < 0) {
		*now = *st;
		return true;
	}
	return fstat(fd, now) == 0;
}

/*
 * Take BACKING's state if someone else changed it and no page is dirty:
 * dirty data was acknowledged to a writer and goes to BACKING over the
 * change (as NFS writes at close); the change is then seen at the first
 * revalidation after that writeback (file_note_outside_change).  @st may
 * be older than a change of our own that ended since (a getattr's fstat
 * racing a write-back or truncate), so BACKING is looked at again under
 * the lock, where none of ours is in flight, before anything is taken.
 */
static bool file_revalidate_st(struct cfile *f, int fd, const struct stat *st)
{
	struct stat now;
	bool changed;

	pthread_mutex_lock(&f->lock);
	changed = file_quiet_locked(f) &&
		  (f->outside_changed || backing_changed_locked(f, st)) &&
		  file_fstat_locked(f, fd, st, &now) &&
		  (f->outside_changed || backing_changed_locked(f, &now));
	if (changed) {
		f->size = now.st_size;
		f->seen_size = now.st_size;
		f->seen_mtime = now.st_mtim;
		f->outside_changed = false;
		f->kernel_stale = true;	/* until an open tells the kernel */
	}
	pthread_mutex_unlock(&f->lock);
	if (changed)
		file_drop_range(f, 0, UINT64_MAX, false);
	return changed;
}

/*
 * An open's check: a change found now, or by a getattr since the last
 * open (which could not make the kernel drop its copy: under the
 * writeback cache the kernel keeps its own size of a cached file, and
 * without it, its pages unless the open says otherwise).
 */
bool cache_file_revalidate(struct cfile *f, int fd, const struct stat *st)
{
	bool stale;

	file_revalidate_st(f, fd, st);
	pthread_mutex_lock(&f->lock);
	stale = f->kernel_stale;
	f->kernel_stale = false;
	pthread_mutex_unlock(&f->lock);
	return stale;
}

/*
 * A change of data in the cache is a change of mtime and ctime that
 * BACKING has not seen yet; each time only ever moves forward (a rename
 * or chmod in BACKING after the write has the later ctime).
 */
void cache_file_fix_attr(struct cfile *f, int fd, struct stat *st)
{
	file_revalidate_st(f, fd, st);
	pthread_mutex_lock(&f->lock);
	st->st_size = f->size;
	cfile_fix_blocks_locked(f, st);
	if (ts_after(&f->mtime, &st->st_mtim))
		st->st_mtim = f->mtime;
	if (ts_after(&f->mtime, &st->st_ctim))
		st->st_ctim = f->mtime;
	pthread_mutex_unlock(&f->lock);
}

void cache_file_times_set(struct cfile *f)
{
	pthread_mutex_lock(&f->lock);
	f->mtime = (struct timespec){ 0 };
	pthread_mutex_unlock(&f->lock);
}

