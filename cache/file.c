/* SPDX-License-Identifier: MIT */
/*
 * cache/file.c — a file's pages: index, lookup, creation, removal, and
 * reading them in from BACKING.
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
 * uptodate (page_find_or_create: index_insert, a compare-and-swap); a
 * second thread missing on the same page finds that page, sleeps on its
 * lock and, when woken, finds it uptodate: concurrent misses share one
 * backing read.  The new page's frame comes from cache_frame_get(), which
 * demotes, evicts or writes back pages to free one.  Pages are read in
 * one batch of requests to the I/O engine (pages_read), one request per
 * run of consecutive pages (page_runs_build, which writeback.c uses for
 * its writes too).
 *
 * Removal.  A page is removed locked and with its reference count frozen
 * from 1 (the index's own) to 0, so nobody else holds it: a remover that
 * finds other users backs off (-EAGAIN) and retries later, holding no
 * reference of its own meanwhile (file_drop_range, truncate.c), or two
 * removers of one page would each wait for the other's forever.
 *
 * What a file's pages are used for lives beside this file, split as
 * Linux splits mm/: read.c (the read path), readahead.c (the readahead
 * window), write.c (the write path), truncate.c (dropping pages,
 * truncate) and coherence.c (close-to-open checks, attributes).  Here
 * also: collecting a range of a file's pages (file_collect_pages, for
 * writeback, migration and dedupe) and the file's owner and uid.
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
#include "cache/rcu.h"

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
	free(container_of(head, struct cpage, rcu));
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
 * loop of such progress end in ENOMEM within milliseconds.  The sleep
 * ends when a frame is freed (frame_wait_freed()), or after FRAME_NAP_MS
 * to try eviction again: pages unlocked or written back meanwhile free no
 * frame by themselves.
 */
#define FRAME_SPINS 64
#define FRAME_WAIT_MS 20000
#define FRAME_NAP_MS 5

void *cache_frame_get(struct cache *c, bool may_wait)
{
	uint64_t deadline = 0;

	for (unsigned int tries = 1;; tries++) {
		uint64_t seen = frame_frees(&c->frames);
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
		frame_wait_freed(&c->frames, seen, FRAME_NAP_MS);
	}
}

/*
 * Find page @index of @f, or insert a new one.  A new page is returned
 * locked and not uptodate with *@created set; an existing one unlocked.
 * Both with a reference.  Without @may_wait, return NULL rather than wait
 * for a frame (readahead).
 */
struct cpage *page_find_or_create(struct cfile *f, uint64_t index,
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
int pages_read(struct cfile *f, struct cpage **pp, size_t n)
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

off_t cache_file_size(struct cfile *f)
{
	off_t size;

	pthread_mutex_lock(&f->lock);
	size = f->size;
	pthread_mutex_unlock(&f->lock);
	return size;
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
