/* SPDX-License-Identifier: MIT */
/*
 * cache/coherence.c — close-to-open, as NFS does it: BACKING changed by
 * someone else, hmmfs's own changes of BACKING, and the attributes
 * getattr reports.
 *
 * The cache remembers BACKING's size and mtime as it last wrote or saw
 * them (seen_size, seen_mtime).  Someone else changed BACKING when its
 * mtime moved past that, or its size changed and its mtime is not older
 * (backing_changed_locked: an older mtime is our own, from multigrain
 * timestamps or an O_DIRECT write that extends the file).  Such a change
 * is taken only while the file is quiet, no page dirty or under writeback
 * and no change of our own in flight: dirty data was acknowledged to a
 * writer and goes to BACKING over the change, as NFS writes at close.
 * Taking it drops the file's clean pages and takes BACKING's size
 * (file_revalidate_st).  Writeback that finds BACKING changed just
 * before it writes over it notes so (file_note_outside_change), and the
 * next revalidation takes the change.
 *
 * An open checks (cache_file_revalidate) and has the kernel drop its copy
 * when the cache dropped its own.  A getattr checks too
 * (cache_file_fix_attr) but cannot make the kernel drop its copy, so the
 * file stays kernel_stale for the next open to report.  getattr reports
 * the cache's size, its mtime (and ctime) while newer than BACKING's, and
 * blocks that count dirty pages.
 *
 * hmmfs's own changes of BACKING outside writeback (fallocate,
 * copy_file_range, setting times) write the range back first
 * (cache_writeback_range) and run between cache_file_change_begin() and
 * cache_file_change_end(), when no revalidation takes BACKING's state as
 * someone else's.
 *
 * Locking: cfile->lock guards the bookkeeping (size, mtime, seen_*,
 * own_changes, outside_changed, kernel_stale); pages are dropped only
 * after it is released.  cache_file_change_begin() takes f->trunc_lock
 * shared and cache_file_change_end() releases it, so a change lands
 * wholly before or after a truncate.
 */
#include <time.h>

#include "cache/cache_int.h"
#include "lib/lockcheck.h"

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

	mutex_assert_held(&f->lock);
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

	mutex_assert_held(&f->lock);
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

	mutex_assert_held(&f->lock);
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
	mutex_assert_held((pthread_mutex_t *)&f->lock);

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
	mutex_assert_held(&f->lock);

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

