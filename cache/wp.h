/* SPDX-License-Identifier: MIT */
/*
 * cache/wp.h — write protection of cached pages, and KSM-style dedupe.
 *
 * A page is write-protected for one or more reasons (enum wp_reason):
 * its frame is shared by dedupe, it is being written back, or the device
 * maps it read-only.  Every write to a page, whoever makes it (the CPU
 * path, the bounce path for a device page, a device operation) first
 * calls wp_fault_locked(), which resolves each reason in turn: a shared
 * frame is copied (copy-on-write), writeback is waited for, and for a
 * device write the device mapping is made read-write (and the page
 * dirty, like page_mkwrite).  See wp.c.
 *
 * Part of the cache layer (as Linux's mm/ksm.c is part of mm/): it works
 * on struct cpage (cache/cache_int.h), and the rest of cache/ calls it.
 */
#ifndef HMMFS_CACHE_WP_H
#define HMMFS_CACHE_WP_H

#include <stdbool.h>
#include <stdint.h>

struct cache;
struct cfile;
struct cpage;

/* Why a page is write-protected; a page may have several reasons. */
enum wp_reason {
	WP_SHARED = 1u << 0,	/* the frame is shared by dedupe: copy on write */
	WP_WRITEBACK = 1u << 1,	/* being written to BACKING: wait (stable pages) */
	WP_DEVICE_RO = 1u << 2,	/* the device maps it read-only: fault to upgrade */
	WP_REPLICATED = 1u << 3, /* read-only copies elsewhere: collapse them */
};

/* Who is writing. */
enum wp_writer {
	WP_CPU,		/* a write(2) into a host page */
	WP_BOUNCE,	/* a CPU write into a device page, through a bounce buffer */
	WP_DEVICE,	/* a device-side write (devop) */
};

/*
 * Add or remove a reason.  Each reason is a bit of the page's state word
 * (PG_shared; PG_writeback; PG_device without PG_dev_rw; PG_replicated),
 * so the reasons
 * are read in one atomic snapshot.  Context: page locked, except
 * WP_WRITEBACK, which writeback ends without the page lock.
 */
void wp_protect(struct cpage *p, enum wp_reason r);
void wp_unprotect(struct cpage *p, enum wp_reason r);
uint32_t wp_reasons(const struct cpage *p);

/*
 * wp_fault_locked() - make @p writable for @who.
 * Return: 0, or -errno (no memory for the private copy of a shared page).
 * Context: page locked; may sleep (writeback, a frame for the copy).
 */
int wp_fault_locked(struct cpage *p, enum wp_writer who);

/* ---- dedupe (ksm.c) -------------------------------------------------- */

/* Knobs, named as Linux KSM's. */
struct ksm_knobs {
	uint32_t run;			/* 1: the scanner runs */
	uint32_t pages_to_scan;		/* pages per wake-up */
	uint32_t sleep_millisecs;	/* between wake-ups */
	uint32_t max_page_sharing;	/* pages per shared frame */
	uint32_t use_zero_pages;	/* all-zero pages share one zero frame */
	uint32_t merge_across_tiers;	/* host and device pages may share */
};

/* The knobs by number: bit i of ksm_set()'s mask names knob i. */
enum ksm_knob {
	KSM_KNOB_RUN, KSM_KNOB_PAGES_TO_SCAN, KSM_KNOB_SLEEP_MILLISECS,
	KSM_KNOB_MAX_PAGE_SHARING, KSM_KNOB_USE_ZERO_PAGES,
	KSM_KNOB_MERGE_ACROSS_TIERS, KSM_NR_KNOBS
};

/* Knob @i of @k, or NULL for a number that names none. */
static inline uint32_t *ksm_knob_ref(struct ksm_knobs *k, unsigned int i)
{
	switch (i) {
	case KSM_KNOB_RUN: return &k->run;
	case KSM_KNOB_PAGES_TO_SCAN: return &k->pages_to_scan;
	case KSM_KNOB_SLEEP_MILLISECS: return &k->sleep_millisecs;
	case KSM_KNOB_MAX_PAGE_SHARING: return &k->max_page_sharing;
	case KSM_KNOB_USE_ZERO_PAGES: return &k->use_zero_pages;
	case KSM_KNOB_MERGE_ACROSS_TIERS: return &k->merge_across_tiers;
	}
	return NULL;
}

/* Statistics, named as Linux KSM's where they mean the same. */
struct ksm_stats {
	uint64_t pages_shared;		/* shared frames in use */
	uint64_t pages_sharing;		/* pages sharing them, beyond the first */
	uint64_t pages_unshared;	/* unique pages waiting for a twin */
	uint64_t pages_volatile;	/* pages changing too fast to merge */
	uint64_t full_scans;		/* passes over every cached page */
	uint64_t cow_breaks;		/* writes that copied a shared page */
	uint64_t zero_pages;		/* pages on the zero frame */
	uint64_t pages_scanned;		/* pages hashed */
	uint64_t saved_host_bytes;	/* host memory freed by sharing */
	uint64_t saved_device_bytes;	/* device memory freed by sharing */
};

struct ksm;

int ksm_create(struct cache *c, const struct ksm_knobs *k, struct ksm **out);
int ksm_start(struct ksm *k);		/* the scanner thread (after fork) */
void ksm_stop(struct ksm *k);		/* stop the scanner thread */
void ksm_destroy(struct ksm *k);	/* after every file is closed */
void ksm_get(struct ksm *k, struct ksm_knobs *knobs, struct ksm_stats *st);
/* Change knobs; @mask says which (bit 1 << enum ksm_knob). */
int ksm_set(struct ksm *k, const struct ksm_knobs *knobs, uint32_t mask);
/* One scanner step of up to @pages pages (tests; the thread does this). */
size_t ksm_scan(struct ksm *k, size_t pages);
/* A file is going away: forget what the scanner remembers of it. */
void ksm_forget_file(struct ksm *k, struct cfile *f);
/* @f leaves the cache's list of files.  Context: cache->files_lock. */
void ksm_file_unlinked_locked(struct ksm *k, struct cfile *f);
/* A shared page leaves the cache (removal).  Context: page locked. */
void ksm_unshare_removed(struct cpage *p);
/*
 * Give every page of @f on a shared frame (not the zero frame) a private
 * copy: its owner changed.  Context: no page of @f locked.  Return: 0, or
 * the first -errno of a page left shared.
 */
int ksm_unshare_file(struct ksm *k, struct cfile *f);
/*
 * Move the frame @p shares to the other tier (the device if @to_dev),
 * and every page sharing it with it: one copy, one frame freed.  Context:
 * @p locked and PG_shared, and so are the @nheld pages of @held (the
 * caller's batch, @p among them).  Return: the pages moved (0: not now, a
 * sharer is busy or the other tier is full), or -errno.
 */
int ksm_move_shared_locked(struct cpage *p, bool to_dev,
			   struct cpage *const *held, size_t nheld);
/* The hash the scanner uses (XXH3, 64 bits). */
uint64_t ksm_hash_bytes(const void *data, size_t len);
/* Tests: replace the hash (to force collisions); NULL restores XXH3. */
void ksm_set_hash_for_testing(uint64_t (*fn)(const void *data, size_t len));

#endif
