/* SPDX-License-Identifier: MIT */
/*
 * cache/index.c — a file's page index: a lock-free radix tree.
 *
 * Page number -> struct cpage, in a tree of 64-slot nodes, 6 bits of page
 * number per level, as tall as the file needs (Linux's xarray does the
 * same): a file of up to 64 pages is one 512-byte leaf, 4096 pages two
 * levels, and so on up to 9 levels for 54 bits, every offset a file can
 * have.  (A fixed 6-level tree of 4 KiB nodes cost 24 KiB for a file of
 * one page, which a million small files could not afford.)  Every slot
 * is an atomic pointer.  Readers take no lock: they walk down with
 * load-acquire and, at the leaf, take a reference on the page only if its
 * count is not zero (a zero count means it is being removed).  Writers
 * insert with compare-and-swap on an empty leaf slot, so two threads
 * missing on the same page agree on one page, the first one's; missing
 * inner nodes are added the same way (the loser frees its node).  The
 * tree grows taller by a new root whose slot 0 holds the old root, put in
 * place by compare-and-swap: a reader that loaded the old root still
 * walks a valid subtree (the one for the indexes it covers).  Removal
 * swaps the page out of its slot after its count was frozen at zero.

 * Lifetime: a reader may still hold a page pointer it loaded from a slot
 * after the page was removed, so pages are freed after an RCU grace period
 * (file.c); lookups run inside rcu_read_lock().  Inner nodes are never
 * removed while the file is in the cache (they cost one 512-byte node
 * per 64 pages of a dense file) and are freed with the file, when no
 * reader can be left.
 *
 * Why not a hash table: liburcu's lock-free hash table was tried first and
 * depends on a resize worker thread that did not keep up in the daemon;
 * the radix tree needs no resizing, costs a few dependent loads per
 * lookup, and walks a range in index order, which writeback wants.
 */
#include <errno.h>
#include <stdlib.h>

#include "cache/cache_int.h"
#include "cache/rcu.h"

#define RADIX_BITS 6
#define RADIX_SLOTS (1u << RADIX_BITS)
#define RADIX_LEVELS 9

/* @level: 0 for a leaf (slots hold pages), else its children's plus one. */
struct rnode {
	_Atomic(void *) slot[RADIX_SLOTS];
	unsigned int level;
};

static unsigned int slot_of(uint64_t index, unsigned int level)
{
	return (unsigned int)(index >> (level * RADIX_BITS)) & (RADIX_SLOTS - 1);
}

/* Does a tree whose root is at @level cover page @index? */
static bool covers(unsigned int level, uint64_t index)
{
	return level + 1 >= RADIX_LEVELS ||
	       (index >> ((level + 1) * RADIX_BITS)) == 0;
}

static struct rnode *node_new(unsigned int level, void *first)
{
	struct rnode *n = calloc(1, sizeof(*n));

	if (!n)
		return NULL;
	n->level = level;
	atomic_init(&n->slot[0], first);
	return n;
}

/*
 * The root of @f's tree, made tall enough for @index when @create.
 * Return: the root, or NULL (no tree that covers @index and !@create, or
 * out of memory).
 */
static struct rnode *index_root(struct cfile *f, uint64_t index, bool create)
{
	struct rnode *r = atomic_load_explicit(&f->root, memory_order_acquire);

	while (!r || !covers(r->level, index)) {
		struct rnode *n;
		void *expected = r;

		if (!create)
			return NULL;
		n = node_new(r ? r->level + 1 : 0, r);
		if (!n)
			return NULL;
		/* release: the node, and slot 0, are seen before its pointer */
		if (atomic_compare_exchange_strong_explicit(&f->root, &expected, n,
							    memory_order_acq_rel,
							    memory_order_acquire)) {
			r = n;
		} else {
			free(n);
			r = expected;
		}
	}
	return r;
}

/*
 * The leaf slot of @index, adding nodes on the way when @create.
 * Return: the slot, or NULL (not there and !@create, or out of memory).
 */
static _Atomic(void *) *index_slot(struct cfile *f, uint64_t index, bool create)
{
	struct rnode *n;

	if (index >> (RADIX_LEVELS * RADIX_BITS))
		return NULL;
	n = index_root(f, index, create);
	if (!n)
		return NULL;
	while (n->level) {
		_Atomic(void *) *slotp = &n->slot[slot_of(index, n->level)];
		struct rnode *c = atomic_load_explicit(slotp, memory_order_acquire);

		if (!c) {
			void *expected = NULL;

			if (!create)
				return NULL;
			c = node_new(n->level - 1, NULL);
			if (!c)
				return NULL;
			if (!atomic_compare_exchange_strong_explicit(
				    slotp, &expected, c, memory_order_acq_rel,
				    memory_order_acquire)) {
				free(c);
				c = expected;
			}
		}
		n = c;
	}
	return &n->slot[slot_of(index, 0)];
}

struct cpage *index_lookup(struct cfile *f, uint64_t index)
{
	_Atomic(void *) *slotp = index_slot(f, index, false);

	return slotp ? atomic_load_explicit(slotp, memory_order_acquire) : NULL;
}

/*
 * Put @p in its slot if the slot is empty.  Return: @p on success, the
 * page already there (lost the race), or NULL without memory.
 */
struct cpage *index_insert(struct cfile *f, struct cpage *p)
{
	_Atomic(void *) *slotp = index_slot(f, p->index, true);
	void *expected = NULL;

	if (!slotp)
		return NULL;
	/* release pairs with the acquire in index_lookup: p is initialised */
	if (atomic_compare_exchange_strong_explicit(slotp, &expected, p,
						    memory_order_acq_rel,
						    memory_order_acquire))
		return p;
	return expected;
}

void index_remove(struct cfile *f, struct cpage *p)
{
	_Atomic(void *) *slotp = index_slot(f, p->index, false);
	void *expected = p;

	if (slotp)
		atomic_compare_exchange_strong(slotp, &expected, NULL);
}

static int walk(struct rnode *n, uint64_t base, uint64_t first, uint64_t last,
		int (*fn)(struct cpage *p, void *arg), void *arg)
{
	uint64_t span = (uint64_t)1 << (n->level * RADIX_BITS);

	for (unsigned int i = 0; i < RADIX_SLOTS; i++) {
		uint64_t lo = base + i * span, hi = lo + span - 1;
		void *child;
		int ret;

		if (hi < first)
			continue;
		if (lo > last)
			break;
		child = atomic_load_explicit(&n->slot[i], memory_order_acquire);
		if (!child)
			continue;
		ret = n->level ? walk(child, lo, first, last, fn, arg)
			       : fn(child, arg);
		if (ret)
			return ret;
	}
	return 0;
}

int index_for_each(struct cfile *f, uint64_t first, uint64_t last,
		   int (*fn)(struct cpage *p, void *arg), void *arg)
{
	struct rnode *root = atomic_load_explicit(&f->root, memory_order_acquire);

	if (!root || first > last)
		return 0;
	return walk(root, 0, first, last, fn, arg);
}

static void free_tree(struct rnode *n)
{
	if (n->level)
		for (unsigned int i = 0; i < RADIX_SLOTS; i++) {
			struct rnode *c = atomic_load_explicit(&n->slot[i],
							       memory_order_relaxed);

			if (c)
				free_tree(c);
		}
	free(n);
}

void index_destroy(struct cfile *f)
{
	struct rnode *root = atomic_load(&f->root);

	if (root)
		free_tree(root);
	atomic_store(&f->root, NULL);
}
