/* SPDX-License-Identifier: MIT */
/*
 * fs/ops_ioctl.c — the control ioctls of include/hmmfs_ioctl.h (HMMFS_IOC_*),
 * which hmmfsctl sends: statistics (STATS, OPS, DEVICES, FILE_STATS), SYNC,
 * the range requests (MIGRATE, REPLICATE, DEVOP, DEVREAD, RESIDENCY) and
 * dedupe (KSM).
 *
 * Reply rule: hmmfs_ioctl() dispatches on the command.  STATS, OPS and
 * SYNC reply on their own paths; every other handler replies itself
 * (fuse_reply_ioctl) and returns 0 on success, or returns -errno without
 * replying, and hmmfs_ioctl() turns that into the one reply.  32-bit
 * callers (FUSE_IOCTL_COMPAT) get ENOSYS, unknown commands ENOTTY.
 *
 * A range request works on a regular file opened with the access it needs,
 * with cache state (ioctl_file), after its struct's version and range are
 * checked (ioctl_range_ok).  Each does a bounded amount of work
 * (CACHE_REQUEST_BYTES, which tools know as HMMFS_IOC_MAX_WORK) and says
 * where the next request goes on (@next).  While one runs, ioctl_running
 * names its request for ioctl_cancelled(), the cache's hook, which sees the
 * kernel's INTERRUPT or the end of the session.  Pages moved to the device
 * leave the kernel's cache before the reply (ioctl_wait_inval).  Dedupe
 * state that would tell one user about another's data is shown only to
 * those who may read every sharer (ksm_may_see_sharing, ioctl_ksm).
 *
 * Locking: none of its own.  ioctl_running is per thread; a hash in
 * progress (hmm_file->hash) is taken by atomic exchange, so two requests at
 * once cannot share it; the cache locks inside.
 */
#include "fs/ops_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cache/cache.h"
#include "include/hmmfs_ioctl.h"
#include "fs/opstat.h"
#include "log/log.h"
#include "lib/compiler.h"

/*
 * Values the ABI (include/hmmfs_ioctl.h) mirrors from cache/, which the
 * replies below pass through unchanged: checked here, where both are
 * seen, instead of kept equal by a comment (as numbers: the enums are of
 * different types).
 */
#define SAME(a, b) ((long long)(a) == (long long)(b))
_Static_assert(SAME(HMMFS_RES_HOST, CACHE_RES_HOST) &&
	       SAME(HMMFS_RES_DEVICE, CACHE_RES_DEVICE) &&
	       SAME(HMMFS_RES_DIRTY, CACHE_RES_DIRTY) &&
	       SAME(HMMFS_RES_WRITEBACK, CACHE_RES_WRITEBACK) &&
	       SAME(HMMFS_RES_SHARED, CACHE_RES_SHARED),
	       "HMMFS_RES_* are the cache's CACHE_RES_*");
_Static_assert(SAME(HMMFS_KSM_RUN, KSM_KNOB_RUN) &&
	       SAME(HMMFS_KSM_PAGES_TO_SCAN, KSM_KNOB_PAGES_TO_SCAN) &&
	       SAME(HMMFS_KSM_SLEEP_MILLISECS, KSM_KNOB_SLEEP_MILLISECS) &&
	       SAME(HMMFS_KSM_MAX_PAGE_SHARING, KSM_KNOB_MAX_PAGE_SHARING) &&
	       SAME(HMMFS_KSM_USE_ZERO_PAGES, KSM_KNOB_USE_ZERO_PAGES) &&
	       SAME(HMMFS_KSM_MERGE_ACROSS_TIERS, KSM_KNOB_MERGE_ACROSS_TIERS) &&
	       SAME(HMMFS_KSM_NR_KNOBS, KSM_NR_KNOBS),
	       "HMMFS_KSM_* number the knobs as enum ksm_knob does");
#undef SAME

static void stats_fill_device(struct hmmfs *fs, const struct cache_stats *cs,
			      struct hmmfs_ioc_stats *st)
{
	const char *dev = cache_device_name(fs->cache);

	snprintf(st->device, sizeof(st->device), "%s", dev ? dev : "none");
	snprintf(st->migrate, sizeof(st->migrate), "%s", fs->opts->migrate);
	st->device_cache = dev ? fs->opts->device_cache * fs->opts->devices : 0;
	st->device_frames = cs->device_frames;
	st->device_pages = cs->device_pages;
	st->migrations_to_device = cs->migrations_to_device;
	st->migrations_to_host = cs->migrations_to_host;
	st->bounce_reads = cs->bounce_reads;
	st->bounce_writes = cs->bounce_writes;
	st->bounce_waits = cs->bounce_waits;
	st->device_faults = cs->device_faults;
	st->device_evictions = cs->device_evictions;
	st->thrash_holds = cs->thrash_holds;
	st->host_frames_used = cs->host_frames_used;
	st->device_frames_used = cs->device_frames_used;
	st->device_frames_hwm = cs->device_frames_hwm;
	st->device_copy_sync = cs->device_copy_sync;
	st->device_copy_async = cs->device_copy_async;
	st->device_readahead = cs->device_readahead;
}

static void stats_fill_files(const struct cache_stats *cs,
			     struct hmmfs_ioc_stats *st)
{
	st->files_cached = cs->files_cached;
	st->files_detached = cs->files_detached;
	st->writeback_errors = cs->writeback_errors;
	st->dirty_pages_stuck = cs->dirty_pages_stuck;
}

/*
 * Every descriptor the daemon holds now, counted in /proc/self/fd: the
 * descriptor cache's, open files', the page cache's own I/O descriptors,
 * and the fixed few (/dev/fuse, io_uring, eventfds, logs).  Counted, not
 * tracked, so that no holder can be missed.  0 if it cannot be read.
 */
static uint64_t fds_count(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	uint64_t n = 0;

	if (!d)
		return 0;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n ? n - 1 : 0;	/* not the one reading the directory */
}

static void ioctl_stats(fuse_req_t req, size_t out_bufsz)
{
	struct hmmfs *fs = fs_of(req);
	struct hmmfs_ioc_stats st = { .version = HMMFS_IOC_VERSION };
	struct cache_stats cs;

	if (out_bufsz < sizeof(st)) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	if (fs->cache) {
		cache_get_stats(fs->cache, &cs);
		st.cache_on = 1;
		snprintf(st.io_engine, sizeof(st.io_engine), "%s",
			 cache_io_engine_name(fs->cache));
		st.page_size = cache_page_size(fs->cache);
		st.host_cache = fs->opts->host_cache;
		st.host_pages = cs.host_pages;
		st.dirty_pages = cs.dirty_pages;
		st.writeback_pages = cs.writeback_pages;
		st.hits = cs.hits;
		st.misses = cs.misses;
		st.readahead_pages = cs.readahead_pages;
		st.evictions = cs.evictions;
		st.writeback_bytes = cs.writeback_bytes;
		st.written_bytes = cs.written_bytes;
		st.backing_reads = cs.backing_reads;
		st.backing_writes = cs.backing_writes;
		st.throttled = cs.throttled;
		stats_fill_device(fs, &cs, &st);
		stats_fill_files(&cs, &st);
	} else {
		snprintf(st.io_engine, sizeof(st.io_engine), "none");
		snprintf(st.device, sizeof(st.device), "none");
	}
	st.fds_open = fds_count();
	st.fd_reopens = fdc_reopens(&fs->itab.fdc);
	fuse_reply_ioctl(req, 0, &st, sizeof(st));
}

/* The per-opcode request counters and latencies (opstat.c). */
static void ioctl_ops(fuse_req_t req, size_t out_bufsz)
{
	struct hmmfs_ioc_ops *ops;

	if (out_bufsz < sizeof(*ops)) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	ops = malloc(sizeof(*ops));
	if (!ops) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	opstat_snapshot(ops);
	fuse_reply_ioctl(req, 0, ops, sizeof(*ops));
	free(ops);
}

/* Write back one file, or everything from the root; then sync BACKING. */
static int ioctl_sync(fuse_req_t req, struct hmm_inode *inode,
		      struct fuse_file_info *fi)
{
	struct hmmfs *fs = fs_of(req);
	struct cfile *cf = NULL;
	int ret = 0, fd;

	if (inode == &fs->itab.root) {
		if (fs->cache)
			ret = cache_sync_all(fs->cache);
		fd = openat(itab_root_fd(&fs->itab), ".",
			    O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0)
			return ret ? ret : -errno;
		if (syncfs(fd) < 0 && !ret)
			ret = -errno;
		close(fd);
		return ret;
	}
	if (inode->type == S_IFREG && fi)
		ret = file_cfile(fs, inode, fi, false, &cf);
	if (ret || cf)
		return ret ? ret : cache_fsync(cf, false);
	if (inode->type == S_IFREG && fi)
		return fsync(fh_fd(fi)) < 0 ? -errno : 0;
	return 0;	/* nothing of ours to write back */
}

/*
 * The file an ioctl on a range works on: a regular file of the mount
 * opened with @need access (O_RDONLY: readable, O_WRONLY: writable), with
 * cache state.  Return: 0 or -errno.
 */
static int ioctl_file(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
		      unsigned int flags, int need, struct cfile **out)
{
	struct hmmfs *fs = fs_of(req);
	struct hmm_inode *inode = inode_of(req, ino);
	struct hmm_file *hf;

	if (flags & FUSE_IOCTL_DIR)
		return -EISDIR;
	if (inode->type != S_IFREG || !fi)
		return -EINVAL;
	hf = file_of(fi);
	if ((need == O_RDONLY && hf->accmode == O_WRONLY) ||
	    (need == O_WRONLY && hf->accmode == O_RDONLY))
		return -EBADF;
	if (!fs->cache)
		return -ENODEV;	/* host_cache=0: no cache, no device tier */
	return file_cfile(fs, inode, fi, true, out);
}

/* Check a version and a byte range from the user. */
static int ioctl_range_ok(uint32_t version, uint64_t off, uint64_t len)
{
	if (version != HMMFS_IOC_VERSION)
		return -EINVAL;
	if (off > INT64_MAX || len > INT64_MAX || off + len > INT64_MAX)
		return -EINVAL;
	return 0;
}

/*
 * Pages moved to the device: the kernel's copy of them is being dropped
 * by the notifier; wait for it so the caller's next read comes to us.
 */
static void ioctl_wait_inval(struct hmmfs *fs)
{
	if (notify_flush(fs, 5000))
		log_warn("kernel cache invalidation is slow");
}

/*
 * The range request (migrate, devop, replicate, devread) this thread is
 * running, for ioctl_cancelled(): libfuse marks it when the kernel sends
 * an INTERRUPT for it (the caller got a signal; after SIGKILL the caller
 * cannot go before the reply comes).
 */
static __thread fuse_req_t ioctl_running;

bool ioctl_cancelled(void *arg)
{
	struct hmmfs *fs = arg;

	/* only a worker runs an ioctl: fs->se is alive while it does */
	return ioctl_running && (fuse_req_interrupted(ioctl_running) ||
				 fuse_session_exited(fs->se));
}

/*
 * A bounded migration (cache_migrate); @size is the caller's struct, the
 * older one (HMMFS_IOC_MIGRATE_OLD) lacks only @next at its end.
 */
static int ioctl_migrate(fuse_req_t req, fuse_ino_t ino,
			 struct fuse_file_info *fi, unsigned int flags,
			 const void *in, size_t in_sz, size_t out_sz, size_t size)
{
	struct hmmfs_ioc_migrate m = { 0 };
	struct cfile *cf;
	off_t next = 0;
	int ret;

	_Static_assert(CACHE_REQUEST_BYTES == HMMFS_IOC_MAX_WORK,
		       "the bound a request works to is the one tools are told");
	_Static_assert(sizeof(struct hmmfs_ioc_migrate_old) ==
		       offsetof(struct hmmfs_ioc_migrate, next),
		       "the old migrate is the new one without next");
	if (in_sz < size || out_sz < size)
		return -EINVAL;
	memcpy(&m, in, size);
	ret = ioctl_range_ok(m.version, m.offset, m.length);
	if (!ret && m.to != HMMFS_TO_HOST && m.to != HMMFS_TO_DEVICE &&
	    (m.to & ~HMMFS_TO_UNIT_MASK) != HMMFS_TO_DEVICE_UNIT(0))
		ret = -EINVAL;
	if (!ret)
		ret = ioctl_file(req, ino, fi, flags, O_RDONLY, &cf);
	if (!ret) {
		ioctl_running = req;
		ret = cache_migrate(cf, (off_t)m.offset, (off_t)m.length,
				    m.to != HMMFS_TO_HOST,
				    m.to >= HMMFS_TO_DEVICE_UNIT(0) ?
				    (int)(m.to & HMMFS_TO_UNIT_MASK) : CACHE_UNIT_ANY,
				    &m.moved, &next);
		ioctl_running = NULL;
	}
	m.next = (uint64_t)next;
	if (m.to != HMMFS_TO_HOST && (!ret || m.moved))
		ioctl_wait_inval(fs_of(req));
	if (ret)
		return ret;
	fuse_reply_ioctl(req, 0, &m, size);
	return 0;
}

/* Replicas of a range on devices (cache_replicate), bounded like migrate. */
static int ioctl_replicate(fuse_req_t req, fuse_ino_t ino,
			   struct fuse_file_info *fi, unsigned int flags,
			   const void *in, size_t in_sz, size_t out_sz)
{
	struct hmmfs_ioc_replicate m;
	struct cfile *cf;
	off_t next = 0;
	int ret;

	if (in_sz < sizeof(m) || out_sz < sizeof(m))
		return -EINVAL;
	memcpy(&m, in, sizeof(m));
	ret = ioctl_range_ok(m.version, m.offset, m.length);
	if (!ret)
		ret = ioctl_file(req, ino, fi, flags, O_RDONLY, &cf);
	if (!ret) {
		ioctl_running = req;
		ret = cache_replicate(cf, (off_t)m.offset, (off_t)m.length, m.units,
				      &m.copies, &next);
		ioctl_running = NULL;
	}
	m.next = (uint64_t)next;
	if (ret)
		return ret;
	fuse_reply_ioctl(req, 0, &m, sizeof(m));
	return 0;
}

/*
 * A read-only device operation (XXH64 of a range on one device), over as
 * many requests as the range needs: HMMFS_DEVREAD_START begins a hash at
 * @offset; each later request goes on from the @next the last returned,
 * and the one that reaches the end gets the digest.  The hash in progress
 * lives with the open file (hmm_file->hash), never in the caller's hands.
 */
static int ioctl_devread(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
			 unsigned int flags, const void *in, size_t in_sz,
			 size_t out_sz)
{
	struct hmmfs_ioc_devread m;
	struct cache_xxh64 *h = NULL;
	struct cfile *cf;
	off_t next = 0;
	int ret;

	if (in_sz < sizeof(m) || out_sz < sizeof(m))
		return -EINVAL;
	memcpy(&m, in, sizeof(m));
	ret = ioctl_range_ok(m.version, m.offset, m.length);
	if (!ret && (m.op != HMMFS_DEVREAD_XXH64 || m.flags & ~HMMFS_DEVREAD_START))
		ret = -EINVAL;
	if (!ret)
		ret = ioctl_file(req, ino, fi, flags, O_RDONLY, &cf);
	if (!ret) {
		h = atomic_exchange(&file_of(fi)->hash, NULL);
		if (m.flags & HMMFS_DEVREAD_START) {
			cache_xxh64_free(h);
			h = cache_xxh64_new((off_t)m.offset);
		}
		ret = !h ? (m.flags & HMMFS_DEVREAD_START ? -ENOMEM : -EINVAL) : 0;
	}
	if (!ret) {
		ioctl_running = req;
		ret = cache_devread_xxh64(cf, (off_t)m.offset, (off_t)m.length,
					  m.device, h, &m.pages, &next);
		ioctl_running = NULL;
	}
	m.next = (uint64_t)next;
	m.done = !ret && m.next >= m.offset + m.length;
	if (!ret && !m.done && m.next < (uint64_t)cache_file_size(cf))
		h = atomic_exchange(&file_of(fi)->hash, h);	/* for the next one */
	else if (!ret)
		m.done = 1;	/* the file ends here */
	if (m.done)
		m.result = cache_xxh64_digest(h);
	cache_xxh64_free(h);
	if (ret)
		return ret;
	fuse_reply_ioctl(req, 0, &m, sizeof(m));
	return 0;
}

static int ioctl_devop(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
		       unsigned int flags, const void *in, size_t in_sz,
		       size_t out_sz)
{
	static const enum cache_devop_kind ops[] = {
		[HMMFS_DEVOP_FILL] = CACHE_DEVOP_FILL,
		[HMMFS_DEVOP_XOR] = CACHE_DEVOP_XOR,
		[HMMFS_DEVOP_ADD] = CACHE_DEVOP_ADD,
	};
	struct hmmfs_ioc_devop d;
	struct cfile *cf;
	off_t next = 0;
	int ret;

	if (in_sz < sizeof(d) || out_sz < sizeof(d))
		return -EINVAL;
	memcpy(&d, in, sizeof(d));
	ret = ioctl_range_ok(d.version, d.offset, d.length);
	if (!ret && (d.op >= ARRAY_SIZE(ops) || d.value > 255))
		ret = -EINVAL;
	if (!ret)
		ret = ioctl_file(req, ino, fi, flags, O_WRONLY, &cf);
	if (!ret) {
		ioctl_running = req;
		ret = cache_devop(cf, (off_t)d.offset, (off_t)d.length, ops[d.op],
				  d.value, &d.pages, &next);
		ioctl_running = NULL;
	}
	d.next = (uint64_t)next;
	if (!ret || d.pages)
		ioctl_wait_inval(fs_of(req));
	if (ret)
		return ret;
	fuse_reply_ioctl(req, 0, &d, sizeof(d));
	return 0;
}

/*
 * Root and the mount's owner: they may see all dedupe state (the owner
 * runs the daemon, whose memory holds every cached page anyway).
 */
static bool ksm_privileged(struct hmmfs *fs, const struct fuse_ctx *ctx)
{
	return ctx->uid == 0 || ctx->uid == fs->uid;
}

/*
 * May the caller learn which pages of @cf share a frame?  Sharing says
 * that some other file holds the same bytes, so only a caller who may
 * read every sharer may see it: a privileged one, or, with ksm_scope=uid,
 * the file's owner, who owns every sharer too (a frame other than the
 * zero frame is shared only by files of one owner, and the zero frame
 * says nothing about any other file).  Anyone else sees no page shared.
 */
static bool ksm_may_see_sharing(struct hmmfs *fs, const struct fuse_ctx *ctx,
				struct cfile *cf)
{
	return ksm_privileged(fs, ctx) ||
	       (!strcmp(fs->opts->ksm_scope, "uid") &&
		ctx->uid == cache_file_uid(cf));
}

static int ioctl_residency(fuse_req_t req, fuse_ino_t ino,
			   struct fuse_file_info *fi, unsigned int flags,
			   const void *in, size_t in_sz, size_t out_sz)
{
	struct hmmfs_ioc_residency *r;
	struct cache_extent ext[HMMFS_RES_MAX_EXTENTS];
	struct cache_res_counts cnt;
	struct cfile *cf;
	size_t n;
	off_t next;
	int ret;

	if (in_sz < sizeof(*r) || out_sz < sizeof(*r))
		return -EINVAL;
	r = malloc(sizeof(*r));
	if (!r)
		return -ENOMEM;
	memcpy(r, in, sizeof(*r));
	ret = ioctl_range_ok(r->version, r->offset, r->length);
	if (!ret)
		ret = ioctl_file(req, ino, fi, flags, O_RDONLY, &cf);
	if (!ret)
		ret = cache_residency(cf, (off_t)r->offset, (off_t)r->length,
				      ksm_may_see_sharing(fs_of(req), fuse_req_ctx(req),
							  cf) ? 0 : CACHE_RES_SHARED,
				      ext, HMMFS_RES_MAX_EXTENTS, &n, &next, &cnt);
	if (!ret) {
		r->n_ext = (uint32_t)n;
		r->next = (uint64_t)next;
		r->page_size = cache_page_size(fs_of(req)->cache);
		r->pages = cnt.pages;
		r->host = cnt.host;
		r->device = cnt.device;
		r->dirty = cnt.dirty;
		r->writeback = cnt.writeback;
		r->shared = cnt.shared;
		memset(r->ext, 0, sizeof(r->ext));
		for (size_t i = 0; i < n; i++)	/* flags: asserted equal above */
			r->ext[i] = (struct hmmfs_ioc_extent){ ext[i].first,
							       ext[i].count,
							       ext[i].flags,
							       ext[i].units };
		fuse_reply_ioctl(req, 0, r, sizeof(*r));
	}
	free(r);
	return ret;
}

/* Each device unit's figures (hmmfsctl stats: "devices"). */
static int ioctl_devices(fuse_req_t req, size_t out_sz)
{
	struct hmmfs_ioc_devices r = { .version = HMMFS_IOC_VERSION };
	struct cache *c = fs_of(req)->cache;

	_Static_assert(HMMFS_MAX_DEVICES == CACHE_MAX_DEVICES,
		       "every device fits the ioctl");
	if (out_sz < sizeof(r))
		return -EINVAL;
	if (!c)
		return -ENODEV;
	r.count = cache_devices(c);
	for (unsigned int k = 0; k < r.count; k++) {
		struct cache_device_stats st;

		cache_device_get_stats(c, k, &st);
		r.dev[k] = (struct hmmfs_ioc_device){
			.pages = st.pages, .frames = st.frames,
			.frames_used = st.frames_used, .frames_hwm = st.frames_hwm,
			.copies_in = st.copies_in, .copies_out = st.copies_out,
			.faults = st.faults, .replicas = st.replicas,
			.replicas_dropped = st.replicas_dropped,
			.peer_in = st.peer_in, .staged_in = st.staged_in,
		};
		snprintf(r.dev[k].name, sizeof(r.dev[k].name), "%s", st.name);
	}
	fuse_reply_ioctl(req, 0, &r, sizeof(r));
	return 0;
}

/* One file's counters (hmmfsctl stats FILE). */
static int ioctl_file_stats(fuse_req_t req, fuse_ino_t ino,
			    struct fuse_file_info *fi, unsigned int flags,
			    size_t out_sz)
{
	struct hmmfs_ioc_file_stats r = { .version = HMMFS_IOC_VERSION };
	struct cache_file_stats st;
	struct cfile *cf;
	int ret;

	if (out_sz < sizeof(r))
		return -EINVAL;
	ret = ioctl_file(req, ino, fi, flags, O_RDONLY, &cf);
	if (ret)
		return ret;
	cache_file_get_stats(cf, &st);
	r.page_size = cache_page_size(fs_of(req)->cache);
	r.size = st.size;
	r.pages = st.pages;
	r.dirty = st.dirty;
	r.writeback = st.writeback;
	r.hits = st.hits;
	r.misses = st.misses;
	r.readahead_pages = st.readahead_pages;
	r.bounce_reads = st.bounce_reads;
	r.bounce_writes = st.bounce_writes;
	r.written_bytes = st.written_bytes;
	r.writeback_bytes = st.writeback_bytes;
	r.migrations_to_device = st.migrations_to_device;
	r.migrations_to_host = st.migrations_to_host;
	fuse_reply_ioctl(req, 0, &r, sizeof(r));
	return 0;
}

/*
 * Dedupe knobs and counters; changing knobs is for the owner or root.
 * With ksm_scope=all the counters are too: pages_sharing going up after
 * a user wrote a guess of another's page would answer the guess.  With
 * ksm_scope=uid a user's pages merge only with his own, so the counters
 * move with other users' pages only as aggregates and anyone may read.
 */
static int ioctl_ksm(fuse_req_t req, const void *in, size_t in_sz,
		     size_t out_sz)
{
	struct hmmfs *fs = fs_of(req);
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct hmmfs_ioc_ksm k;
	struct ksm_knobs kn;
	struct ksm_stats st;
	int ret;

	if (in_sz < sizeof(k) || out_sz < sizeof(k))
		return -EINVAL;
	memcpy(&k, in, sizeof(k));
	if (k.version != HMMFS_IOC_VERSION ||
	    (k.set_mask & ~((1u << HMMFS_KSM_NR_KNOBS) - 1)))
		return -EINVAL;
	if (!fs->cache)
		return -ENODEV;
	if (!ksm_privileged(fs, ctx) &&
	    (k.set_mask || strcmp(fs->opts->ksm_scope, "uid")))
		return -EPERM;
	if (k.set_mask) {
		for (unsigned int i = 0; i < KSM_NR_KNOBS; i++)
			*ksm_knob_ref(&kn, i) = k.knobs[i];
		ret = cache_ksm_set(fs->cache, &kn, k.set_mask);
		if (ret)
			return ret;
	}
	cache_ksm_get(fs->cache, &kn, &st);
	for (unsigned int i = 0; i < KSM_NR_KNOBS; i++)
		k.knobs[i] = *ksm_knob_ref(&kn, i);
	k.pages_shared = st.pages_shared;
	k.pages_sharing = st.pages_sharing;
	k.pages_unshared = st.pages_unshared;
	k.pages_volatile = st.pages_volatile;
	k.full_scans = st.full_scans;
	k.cow_breaks = st.cow_breaks;
	k.zero_pages = st.zero_pages;
	k.pages_scanned = st.pages_scanned;
	k.saved_host_bytes = st.saved_host_bytes;
	k.saved_device_bytes = st.saved_device_bytes;
	k.set_mask = 0;
	fuse_reply_ioctl(req, 0, &k, sizeof(k));
	return 0;
}

void hmmfs_ioctl(fuse_req_t req, fuse_ino_t ino, unsigned int cmd,
			void *arg, struct fuse_file_info *fi, unsigned int flags,
			const void *in_buf, size_t in_bufsz, size_t out_bufsz)
{
	int ret;

	(void)arg;
	if (flags & FUSE_IOCTL_COMPAT) {
		fuse_reply_err(req, ENOSYS);
		return;
	}
	switch (cmd) {
	case HMMFS_IOC_STATS:
		ioctl_stats(req, out_bufsz);
		return;
	case HMMFS_IOC_OPS:
		ioctl_ops(req, out_bufsz);
		return;
	case HMMFS_IOC_SYNC:
		ret = ioctl_sync(req, inode_of(req, ino),
				 (flags & FUSE_IOCTL_DIR) ? NULL : fi);
		if (ret)
			fuse_reply_err(req, -ret);
		else
			fuse_reply_ioctl(req, 0, NULL, 0);
		return;
	case HMMFS_IOC_MIGRATE:
		ret = ioctl_migrate(req, ino, fi, flags, in_buf, in_bufsz, out_bufsz,
				    sizeof(struct hmmfs_ioc_migrate));
		break;
	case HMMFS_IOC_MIGRATE_OLD:
		ret = ioctl_migrate(req, ino, fi, flags, in_buf, in_bufsz, out_bufsz,
				    sizeof(struct hmmfs_ioc_migrate_old));
		break;
	case HMMFS_IOC_DEVOP:
		ret = ioctl_devop(req, ino, fi, flags, in_buf, in_bufsz, out_bufsz);
		break;
	case HMMFS_IOC_RESIDENCY:
		ret = ioctl_residency(req, ino, fi, flags, in_buf, in_bufsz, out_bufsz);
		break;
	case HMMFS_IOC_KSM:
		ret = ioctl_ksm(req, in_buf, in_bufsz, out_bufsz);
		break;
	case HMMFS_IOC_FILE_STATS:
		ret = ioctl_file_stats(req, ino, fi, flags, out_bufsz);
		break;
	case HMMFS_IOC_DEVICES:
		ret = ioctl_devices(req, out_bufsz);
		break;
	case HMMFS_IOC_REPLICATE:
		ret = ioctl_replicate(req, ino, fi, flags, in_buf, in_bufsz, out_bufsz);
		break;
	case HMMFS_IOC_DEVREAD:
		ret = ioctl_devread(req, ino, fi, flags, in_buf, in_bufsz, out_bufsz);
		break;
	default:
		ret = -ENOTTY;
	}
	if (ret)	/* the handlers above reply themselves on success */
		fuse_reply_err(req, -ret);
}
