/* SPDX-License-Identifier: MIT */
/*
 * cache/cache.c — building and tearing down the cache; statistics.
 *
 * cache_create() checks the configuration, reserves the frame arena,
 * opens the I/O engine and, with a device tier, the device and the bounce
 * pool (both host regions are registered with the device, so a GPU
 * backend can pin them); cache_start() starts the flusher thread (after the
 * daemon forked into the background: threads do not survive fork).  cache_destroy() is the
 * clean-unmount path: every file left, attached or detached, is written
 * back once more before anything is freed, and what could not be written
 * is logged and reported (lifetime.c).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache/cache_int.h"
#include "cache/rcu.h"
#include "log/log.h"

#if defined(__SANITIZE_THREAD__)
char cache_rcu_token;
#endif

/*
 * liburcu must be told about fork(): the daemon forks into the background
 * (fuse_daemonize) after the cache exists, and without these handlers the
 * child's grace periods never end, so the page index never resizes and
 * every lookup walks one long chain.
 */
static pthread_once_t cache_atfork_once = PTHREAD_ONCE_INIT;

static void cache_atfork_register(void)
{
	pthread_atfork(urcu_bp_before_fork, urcu_bp_after_fork_parent,
		       urcu_bp_after_fork_child);
}

static int cache_parse_policy(const char *s, enum migrate_policy *out)
{
	if (!s || !strcmp(s, "adaptive"))
		*out = MIGRATE_ADAPTIVE;
	else if (!strcmp(s, "bounce"))
		*out = MIGRATE_BOUNCE;
	else if (!strcmp(s, "promote"))
		*out = MIGRATE_PROMOTE;
	else
		return -EINVAL;
	return 0;
}

static int cache_parse_copy_path(const char *s, enum dev_copy_path *out)
{
	if (!s || !strcmp(s, "auto"))
		*out = DEV_PATH_AUTO;
	else if (!strcmp(s, "sync"))
		*out = DEV_PATH_SYNC;
	else if (!strcmp(s, "async"))
		*out = DEV_PATH_ASYNC;
	else
		return -EINVAL;
	return 0;
}

static bool cache_has_device(const struct cache_config *cfg)
{
	return cfg->device && *cfg->device && strcmp(cfg->device, "none");
}

static int cache_check_config(const struct cache_config *cfg, char *err,
			      size_t errlen)
{
	size_t ps = cfg->page_size;
	enum migrate_policy pol;
	enum dev_copy_path path;

	if (cache_parse_policy(cfg->migrate, &pol)) {
		snprintf(err, errlen, "migrate must be bounce, promote or adaptive");
		return -EINVAL;
	}
	if (cache_parse_copy_path(cfg->device_copy, &path)) {
		snprintf(err, errlen, "device_copy must be auto, sync or async");
		return -EINVAL;
	}
	if (cache_has_device(cfg) && cfg->bounce_buffers < 1) {
		snprintf(err, errlen, "bounce_buffers must be at least 1");
		return -EINVAL;
	}

	if (ps < 4096 || ps > 65536 || (ps & (ps - 1))) {
		snprintf(err, errlen, "page_size must be a power of two from 4K to 64K");
		return -EINVAL;
	}
	if (cfg->host_cache / ps < 16) {
		snprintf(err, errlen, "host_cache must hold at least 16 pages (%zu bytes)",
			 16 * ps);
		return -EINVAL;
	}
	if (cfg->host_cache / ps > UINT32_MAX) {
		snprintf(err, errlen, "host_cache is too large");
		return -EINVAL;
	}
	return 0;
}

/* Dirty thresholds in pages, at least one, at most half the cache. */
static size_t dirty_pages_of(size_t bytes, size_t ps, size_t max_pages)
{
	size_t n = bytes / ps;

	if (n < 1)
		n = 1;
	if (n > max_pages / 2)
		n = max_pages / 2;
	return n;
}

/* Open the device tier: the device, the bounce pool, pinned regions. */
static int cache_device_open(struct cache *c, char *err, size_t errlen)
{
	const struct cache_config *cfg = &c->cfg;
	struct device_config dc = {
		.backend = cfg->device, .mem_bytes = cfg->device_cache,
		.frame_size = cfg->page_size, .bw = cfg->device_bw,
		.lat_ns = cfg->device_lat_ns, .gpu = cfg->gpu,
		.cl_platform = cfg->cl_platform,
		.units = cfg->devices, .no_peer = cfg->device_no_peer,
		.cancelled = cfg->cancelled, .cancel_arg = cfg->cancel_arg,
	};

	enum dev_copy_path path = DEV_PATH_AUTO;
	size_t len;
	void *region;
	int ret;

	for (unsigned int k = 0; k < cfg->devices && k < DEV_MAX_UNITS; k++)	/* cuda */
		dc.gpus[k] = cfg->gpus ? (int)cfg->gpus[k] : cfg->gpu + (int)k;

	ret = dev_open(&dc, &c->dev, err, errlen);
	if (ret)
		return ret;
	cache_parse_copy_path(cfg->device_copy, &path);
	dev_copy_path_set(c->dev, path);
	ret = bounce_pool_create(cfg->bounce_buffers, cfg->page_size, &c->bounce);
	if (ret) {
		snprintf(err, errlen, "cannot allocate %zu bounce buffers: %s",
			 cfg->bounce_buffers, strerror(-ret));
		goto out_close;
	}
	ret = dev_host_register(c->dev, c->frames.base,
				c->frames.max_frames * cfg->page_size);
	if (ret) {
		snprintf(err, errlen, "device %s: cannot pin the host cache: %s",
			 cfg->device, strerror(-ret));
		goto out_pool;
	}
	region = bounce_pool_region(c->bounce, &len);
	ret = dev_host_register(c->dev, region, len);
	if (ret) {
		snprintf(err, errlen, "device %s: cannot pin the bounce buffers: %s",
			 cfg->device, strerror(-ret));
		goto out_unregister;
	}
	return 0;

out_unregister:
	dev_host_unregister(c->dev, c->frames.base);
out_pool:
	bounce_pool_destroy(c->bounce);
	c->bounce = NULL;
out_close:
	dev_close(c->dev);
	c->dev = NULL;
	return ret;
}

static void cache_device_close(struct cache *c)
{
	size_t len;

	if (!c->dev)
		return;
	dev_host_unregister(c->dev, bounce_pool_region(c->bounce, &len));
	dev_host_unregister(c->dev, c->frames.base);
	dev_close(c->dev);
	bounce_pool_destroy(c->bounce);
}

int cache_create(const struct cache_config *cfg, struct cache **out,
		 char *err, size_t errlen)
{
	struct cache *c;
	size_t max_pages;
	int ret;

	ret = cache_check_config(cfg, err, errlen);
	if (ret)
		return ret;
	pthread_once(&cache_atfork_once, cache_atfork_register);
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->cfg = *cfg;
	cache_parse_policy(cfg->migrate, &c->policy);
	c->page_shift = (unsigned int)__builtin_ctzl(cfg->page_size);
	max_pages = cfg->host_cache / cfg->page_size;
	c->limit_pages = dirty_pages_of(cfg->dirty_limit, cfg->page_size, max_pages);
	c->bg_pages = dirty_pages_of(cfg->dirty_background, cfg->page_size, max_pages);
	/*
	 * The flusher starts above bg_pages and writers stop at limit_pages:
	 * with the two equal, a writer at the limit would wait for a flusher
	 * that never starts (until dirty_expire_ms).  Keep the start below.
	 */
	if (c->bg_pages >= c->limit_pages)
		c->bg_pages = c->limit_pages - 1;
	ret = frame_pool_init(&c->frames, cfg->page_size, max_pages);
	if (ret) {
		snprintf(err, errlen, "cannot reserve %zu bytes for host_cache: %s",
			 cfg->host_cache, strerror(-ret));
		goto out_free;
	}
	ret = io_engine_open(cfg->io_engine, 64, &c->io);
	if (ret) {
		snprintf(err, errlen, "io_engine=%s: %s", cfg->io_engine, strerror(-ret));
		goto out_frames;
	}
	pthread_mutex_init(&c->lru_lock, NULL);
	pthread_mutex_init(&c->dirty_lock, NULL);
	pthread_cond_init(&c->flush_cond, NULL);
	pthread_cond_init(&c->clean_cond, NULL);
	clist_init(&c->active);
	clist_init(&c->inactive);
	clist_init(&c->dirty_files);
	for (unsigned int k = 0; k < DEV_MAX_UNITS; k++) {
		clist_init(&c->dev_lru[k]);
		clist_init(&c->rep_lru[k]);
	}
	clist_init(&c->files);
	pthread_mutex_init(&c->rep_lock, NULL);
	pthread_mutex_init(&c->files_lock, NULL);
	clist_init(&c->idle_files);
	pthread_mutex_init(&c->idle_lock, NULL);
	ret = cache_ftab_init(c);
	if (!ret)
		ret = ksm_create(c, &(struct ksm_knobs){
				 .run = cfg->ksm, .pages_to_scan = 100,
				 .sleep_millisecs = 20, .max_page_sharing = 256,
			 }, &c->ksm);
	if (ret) {
		snprintf(err, errlen, "cannot set up dedupe: %s", strerror(-ret));
		free(c->ftab);
		pthread_mutex_destroy(&c->files_lock);
		pthread_mutex_destroy(&c->idle_lock);
		pthread_mutex_destroy(&c->rep_lock);
		io_engine_close(c->io);
		goto out_frames;
	}
	*out = c;
	return 0;

out_frames:
	frame_pool_destroy(&c->frames);
out_free:
	free(c);
	return ret;
}

int cache_start(struct cache *c, char *err, size_t errlen)
{
	int ret;

	if (cache_has_device(&c->cfg)) {
		ret = cache_device_open(c, err, errlen);
		if (ret)
			return ret;
	}
	ret = cache_flusher_start(c);
	if (ret) {
		snprintf(err, errlen, "cannot start the flusher thread: %s",
			 strerror(-ret));
		return ret;
	}
	c->started = 1;
	ret = ksm_start(c->ksm);
	if (ret)
		snprintf(err, errlen, "cannot start the dedupe scanner: %s",
			 strerror(-ret));
	return ret;
}

void cache_hurry(struct cache *c)
{
	if (c)
		dev_hurry(c->dev);
}

int cache_destroy(struct cache *c)
{
	uint64_t lost = cache_files_close_all(c);

	if (lost)
		log_print(LOG_ERR, "%llu bytes of dirty data could not be "
			"written back at unmount (files logged above)",
			(unsigned long long)lost);
	if (c->started)
		cache_flusher_stop(c);
	ksm_destroy(c->ksm);	/* every file is closed: only zero frames left */
	rcu_barrier();	/* every deferred page and frame free has run */
	cache_device_close(c);
	io_engine_close(c->io);
	frame_pool_destroy(&c->frames);
	pthread_cond_destroy(&c->flush_cond);
	pthread_cond_destroy(&c->clean_cond);
	pthread_mutex_destroy(&c->lru_lock);
	pthread_mutex_destroy(&c->dirty_lock);
	pthread_mutex_destroy(&c->files_lock);
	pthread_mutex_destroy(&c->idle_lock);
	pthread_mutex_destroy(&c->rep_lock);
	free(c);
	return lost ? -EIO : 0;
}

void cache_ksm_get(struct cache *c, struct ksm_knobs *knobs,
		   struct ksm_stats *st)
{
	ksm_get(c->ksm, knobs, st);
}

int cache_ksm_set(struct cache *c, const struct ksm_knobs *knobs, uint32_t mask)
{
	return ksm_set(c->ksm, knobs, mask);
}

const char *cache_io_engine_name(const struct cache *c)
{
	return io_engine_name(c->io);
}

const char *cache_device_name(const struct cache *c)
{
	return c->dev ? dev_name(c->dev) : NULL;
}

size_t cache_page_size(const struct cache *c)
{
	return c->cfg.page_size;
}

#define ctr_read(c, name) atomic_load_explicit(&(c)->ctr.name, memory_order_relaxed)

_Static_assert(CACHE_MAX_DEVICES == DEV_MAX_UNITS, "one limit on devices");

unsigned int cache_devices(const struct cache *c)
{
	return c->dev ? dev_units(c->dev) : 0;
}

void cache_device_get_stats(struct cache *c, unsigned int k,
			    struct cache_device_stats *st)
{
	struct dev_unit_stats u;

	dev_unit_stats(c->dev, k, &u);
	st->pages = atomic_load(&c->nr_unit_pages[k]);
	st->frames = u.frames;
	st->frames_used = u.frames_used;
	st->frames_hwm = u.frames_hwm;
	st->copies_in = u.copies_in;
	st->copies_out = u.copies_out;
	st->faults = u.faults;
	st->peer_in = u.peer_in;
	st->staged_in = u.staged_in;
	st->replicas = atomic_load(&c->nr_unit_replicas[k]);
	st->replicas_dropped = atomic_load(&c->unit_replica_drops[k]);
	snprintf(st->name, sizeof(st->name), "%s", u.name);
}

#define fctr_read(f, name) \
	atomic_load_explicit(&(f)->ctr.name, memory_order_relaxed)

void cache_file_get_stats(struct cfile *f, struct cache_file_stats *st)
{
	pthread_mutex_lock(&f->lock);
	st->size = (uint64_t)f->size;
	st->dirty = f->nr_dirty;
	st->writeback = f->nr_writeback;
	pthread_mutex_unlock(&f->lock);
	st->pages = atomic_load_explicit(&f->nr_pages, memory_order_relaxed);
	st->hits = fctr_read(f, hits);
	st->misses = fctr_read(f, misses);
	st->readahead_pages = fctr_read(f, readahead_pages);
	st->bounce_reads = fctr_read(f, bounce_reads);
	st->bounce_writes = fctr_read(f, bounce_writes);
	st->written_bytes = fctr_read(f, written_bytes);
	st->writeback_bytes = fctr_read(f, writeback_bytes);
	st->migrations_to_device = fctr_read(f, migrations_to_device);
	st->migrations_to_host = fctr_read(f, migrations_to_host);
}

void cache_get_stats(struct cache *c, struct cache_stats *st)
{
	st->host_pages = atomic_load(&c->nr_pages);
	st->dirty_pages = atomic_load(&c->nr_dirty);
	st->writeback_pages = atomic_load(&c->nr_writeback);
	st->hits = ctr_read(c, hits);
	st->misses = ctr_read(c, misses);
	st->readahead_pages = ctr_read(c, readahead_pages);
	st->evictions = ctr_read(c, evictions);
	st->writeback_bytes = ctr_read(c, writeback_bytes);
	st->written_bytes = ctr_read(c, written_bytes);
	st->backing_reads = ctr_read(c, backing_reads);
	st->backing_writes = ctr_read(c, backing_writes);
	st->throttled = ctr_read(c, throttled);
	st->device_pages = atomic_load(&c->nr_dev_pages);
	st->device_frames = c->dev ? dev_frames_total(c->dev) : 0;
	st->migrations_to_device = ctr_read(c, migrations_to_device);
	st->migrations_to_host = ctr_read(c, migrations_to_host);
	st->bounce_reads = ctr_read(c, bounce_reads);
	st->bounce_writes = ctr_read(c, bounce_writes);
	st->bounce_waits = c->bounce ? bounce_waits(c->bounce) : 0;
	st->device_faults = ctr_read(c, device_faults);
	st->device_evictions = ctr_read(c, device_evictions);
	st->thrash_holds = ctr_read(c, thrash_holds);
	pthread_mutex_lock(&c->frames.lock);
	st->host_frames_used = c->frames.bump - c->frames.nfree;
	pthread_mutex_unlock(&c->frames.lock);
	st->device_frames_used = c->dev ? dev_frames_used(c->dev) : 0;
	st->device_frames_hwm = c->dev ? dev_frames_hwm(c->dev) : 0;
	st->device_copy_sync = c->dev ? dev_copy_batches(c->dev, DEV_PATH_SYNC) : 0;
	st->device_copy_async = c->dev ? dev_copy_batches(c->dev, DEV_PATH_ASYNC) : 0;
	st->device_readahead = ctr_read(c, device_readahead);
	cache_file_counts(c, &st->files_cached, &st->files_detached);
	st->fds_open = atomic_load(&c->nr_fds);
	st->writeback_errors = ctr_read(c, writeback_errors);
	st->dirty_pages_stuck = atomic_load(&c->nr_stuck);
}
