/* SPDX-License-Identifier: MIT */
/*
 * fs/inode.c — the inode table (see inode.h for the contract).
 *
 * A chained hash table under one mutex.  Lookups and forgets are short
 * (a hash, a chain walk of about one element, a counter update), so one
 * mutex has not shown up in profiles; the file-data path never takes it,
 * because node ids are inode addresses.  The table doubles when the load
 * factor passes 1, under the same mutex.
 *
 * Why forget cannot race with use: the kernel sends FORGET for a node id
 * only after dropping its own inode, and it holds that inode for every
 * request in flight on it, so no request can name a node id whose count
 * reached zero.  A lookup racing with the forget of the same object either
 * finds the inode before the count drops (and raises it again) or after it
 * was unlinked from the table (and makes a fresh one): both under t->lock.
 *
 * A new inode is made outside t->lock (taking its file handle is a
 * syscall), then the table is searched again under it: if another lookup
 * inserted the same object meanwhile, ours is thrown away.
 *
 * Dormant inodes (inode.h).  Every inode in the (dev, ino) chains is also
 * in a second hash keyed by its address, the node id, so that a node id
 * the kernel resolves from a file handle after forgetting it is checked
 * before it is used.  When a count drops to zero, the inode leaves both
 * chains, the release hook (the cache's state) and the descriptor go
 * outside the lock, and it comes back in as dormant, at the end of the
 * dormant list; if the list is over its bound the oldest is freed.  While
 * it is out, a lookup of its object makes a new inode, and the forgotten
 * one is then freed instead (a file handle of it gets ESTALE).  Any
 * lookup that raises a dormant inode's count from zero takes it off the
 * list.
 */
#include "fs/inode.h"
#include "log/log.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define ITAB_MIN_BUCKETS 1024

static size_t itab_hash(dev_t dev, ino_t ino, size_t nbuckets)
{
	uint64_t h = (uint64_t)ino * 0x9e3779b97f4a7c15ull ^ (uint64_t)dev;

	h ^= h >> 29;
	return (size_t)(h & (nbuckets - 1));
}

static size_t itab_id_hash(uint64_t id, size_t nbuckets)
{
	uint64_t h = (id >> 4) * 0x9e3779b97f4a7c15ull;

	return (size_t)((h ^ h >> 31) & (nbuckets - 1));
}

/* Held by someone, at least; trylock has no side effect when it fails. */
#define itab_assert_locked(t) assert(pthread_mutex_trylock(&(t)->lock) == EBUSY)

int itab_init(struct itab *t, int root_fd, const struct stat *st)
{
	int ret = fdc_init(&t->fdc, 0, root_fd, st->st_dev);

	if (ret)
		return ret;
	t->buckets = calloc(ITAB_MIN_BUCKETS, sizeof(*t->buckets));
	t->ids = calloc(ITAB_MIN_BUCKETS, sizeof(*t->ids));
	if (!t->buckets || !t->ids) {
		free(t->buckets);
		free(t->ids);
		fdc_destroy(&t->fdc);
		return -ENOMEM;
	}
	t->nbuckets = ITAB_MIN_BUCKETS;
	t->count = 0;
	t->retired = NULL;
	t->release = NULL;
	t->release_arg = NULL;
	pthread_mutex_init(&t->lock, NULL);
	t->devs = NULL;
	t->ndevs = t->devs_cap = 0;
	t->wide_logged = 0;
	t->dormant_first = t->dormant_last = NULL;
	t->ndormant = t->dormant_max = 0;
	t->next_gen = 1;
	t->root = (struct hmm_inode){
		.dev = st->st_dev, .ino = st->st_ino,
		.fino = st->st_ino,
		.type = st->st_mode & S_IFMT, .nlookup = 2,
	};
	/* pinned: requests name the root without any lookup to keep it */
	fdc_entry_init(&t->fdc, &t->root.fde, root_fd, st->st_dev, S_IFDIR, true);
	pthread_mutex_init(&t->root.lock, NULL);
	return 0;
}

static void inode_free(struct itab *t, struct hmm_inode *inode)
{
	if (t->release)
		t->release(t->release_arg, inode);
	fdc_entry_destroy(&t->fdc, &inode->fde);
	pthread_mutex_destroy(&inode->lock);
	free(inode);
}

void itab_destroy(struct itab *t)
{
	for (size_t i = 0; i < t->nbuckets; i++) {
		struct hmm_inode *in = t->buckets[i], *next;

		for (; in; in = next) {
			next = in->next;
			inode_free(t, in);
		}
	}
	while (t->retired) {
		struct hmm_inode *in = t->retired;

		t->retired = in->next;
		inode_free(t, in);
	}
	free(t->buckets);
	t->buckets = NULL;
	free(t->ids);
	t->ids = NULL;
	free(t->devs);
	t->devs = NULL;
	if (t->release)
		t->release(t->release_arg, &t->root);
	fdc_entry_destroy(&t->fdc, &t->root.fde);
	fdc_destroy(&t->fdc);
	pthread_mutex_destroy(&t->root.lock);
	pthread_mutex_destroy(&t->lock);
}

/* Double both bucket arrays; on ENOMEM keep the old ones (only slower). */
static void itab_grow_locked(struct itab *t)
{
	size_t n = t->nbuckets * 2;
	struct hmm_inode **b = calloc(n, sizeof(*b)), **ids = calloc(n, sizeof(*ids));

	itab_assert_locked(t);
	if (!b || !ids) {
		free(b);
		free(ids);
		return;
	}
	for (size_t i = 0; i < t->nbuckets; i++) {
		struct hmm_inode *in = t->buckets[i], *next;

		for (; in; in = next) {
			size_t h = itab_hash(in->dev, in->ino, n);
			size_t k = itab_id_hash((uintptr_t)in, n);

			next = in->next;
			in->next = b[h];
			b[h] = in;
			in->next_id = ids[k];
			ids[k] = in;
		}
	}
	free(t->buckets);
	free(t->ids);
	t->buckets = b;
	t->ids = ids;
	t->nbuckets = n;
}

/* Put @in in both chains.  Context: t->lock; @in in neither. */
static void itab_link_locked(struct itab *t, struct hmm_inode *in)
{
	size_t h, k;

	itab_assert_locked(t);
	if (t->count >= t->nbuckets)
		itab_grow_locked(t);
	h = itab_hash(in->dev, in->ino, t->nbuckets);
	k = itab_id_hash((uintptr_t)in, t->nbuckets);
	in->next = t->buckets[h];
	t->buckets[h] = in;
	in->next_id = t->ids[k];
	t->ids[k] = in;
	t->count++;
}

static void dormant_add_locked(struct itab *t, struct hmm_inode *in)
{
	in->dormant = true;
	in->dnext = NULL;
	in->dprev = t->dormant_last;
	if (t->dormant_last)
		t->dormant_last->dnext = in;
	else
		t->dormant_first = in;
	t->dormant_last = in;
	t->ndormant++;
}

static void dormant_del_locked(struct itab *t, struct hmm_inode *in)
{
	if (in->dprev)
		in->dprev->dnext = in->dnext;
	else
		t->dormant_first = in->dnext;
	if (in->dnext)
		in->dnext->dprev = in->dprev;
	else
		t->dormant_last = in->dprev;
	in->dprev = in->dnext = NULL;
	in->dormant = false;
	t->ndormant--;
}

/* Count a lookup of @in; a dormant one wakes.  Context: t->lock. */
static void inode_raise_locked(struct itab *t, struct hmm_inode *in)
{
	if (in->dormant)
		dormant_del_locked(t, in);
	in->nlookup++;
}

static struct hmm_inode *itab_find_locked(struct itab *t, dev_t dev, ino_t ino)
{
	struct hmm_inode *in;

	itab_assert_locked(t);
	if (dev == t->root.dev && ino == t->root.ino)
		return &t->root;
	in = t->buckets[itab_hash(dev, ino, t->nbuckets)];
	for (; in; in = in->next)
		if (in->dev == dev && in->ino == ino)
			return in;
	return NULL;
}

#define ITAB_INO_BITS 48
#define ITAB_INO_MASK ((UINT64_C(1) << ITAB_INO_BITS) - 1)
#define ITAB_MAX_DEVS ((UINT64_C(1) << (64 - ITAB_INO_BITS)) - 1)

/* The prefix of @dev: 0 for the root's device, else its place in t->devs
 * plus one, added at first sight; -1 when no prefix can be given. */
static int64_t itab_dev_prefix_locked(struct itab *t, dev_t dev)
{
	dev_t *devs;
	size_t cap;

	itab_assert_locked(t);
	if (dev == t->root.dev)
		return 0;
	for (size_t i = 0; i < t->ndevs; i++)
		if (t->devs[i] == dev)
			return (int64_t)i + 1;
	if (t->ndevs >= ITAB_MAX_DEVS)
		return -1;
	if (t->ndevs == t->devs_cap) {
		cap = t->devs_cap ? t->devs_cap * 2 : 8;
		devs = realloc(t->devs, cap * sizeof(*devs));
		if (!devs)
			return -1;
		t->devs = devs;
		t->devs_cap = cap;
	}
	t->devs[t->ndevs++] = dev;
	return (int64_t)t->ndevs;
}

static ino_t itab_ino_locked(struct itab *t, dev_t dev, ino_t ino)
{
	int64_t prefix = itab_dev_prefix_locked(t, dev);

	if (prefix == 0)
		return ino;
	if ((prefix < 0 || ((uint64_t)ino & ~ITAB_INO_MASK)) && !t->wide_logged) {
		t->wide_logged = 1;
		log_warn("inode %llu on device %u:%u below BACKING "
			"gets no unique number; st_ino may repeat",
			(unsigned long long)ino, major(dev), minor(dev));
	}
	if (prefix < 0)
		return ino;
	return (ino_t)((uint64_t)prefix << ITAB_INO_BITS |
		       ((uint64_t)ino & ITAB_INO_MASK));
}

ino_t itab_ino(struct itab *t, dev_t dev, ino_t ino)
{
	ino_t fino;

	if (dev == t->root.dev)	/* immutable: no lock for the common case */
		return ino;
	pthread_mutex_lock(&t->lock);
	fino = itab_ino_locked(t, dev, ino);
	pthread_mutex_unlock(&t->lock);
	return fino;
}

static struct hmm_inode *inode_new(struct itab *t, int fd,
				   const struct stat *st)
{
	struct hmm_inode *in = calloc(1, sizeof(*in));

	if (!in)
		return NULL;
	in->dev = st->st_dev;
	in->ino = st->st_ino;
	in->type = st->st_mode & S_IFMT;
	fdc_entry_init(&t->fdc, &in->fde, fd, in->dev, in->type, false);
	pthread_mutex_init(&in->lock, NULL);
	return in;
}

/* Free an inode that never was in the table (no release hook: unused). */
static void inode_discard(struct itab *t, struct hmm_inode *in)
{
	fdc_entry_destroy(&t->fdc, &in->fde);
	pthread_mutex_destroy(&in->lock);
	free(in);
}

/* Raise @in's count if the object is known.  Return: the inode or NULL. */
static struct hmm_inode *itab_find_get_locked(struct itab *t,
					      const struct stat *st)
{
	struct hmm_inode *in = itab_find_locked(t, st->st_dev, st->st_ino);

	if (in)
		inode_raise_locked(t, in);
	return in;
}

static void itab_unlink_locked(struct itab *t, struct hmm_inode *inode);

/*
 * Is @in the object @fd names?  An inode whose descriptor the cache
 * closed does not keep its object alive, so BACKING may have given its
 * number to a new object since (ext4 does within a few creates after an
 * unlink): their handles differ.  Without handles, numbers are all there
 * is.  @in's handle is set before it is published and never changes.
 */
static bool inode_is_object(const struct hmm_inode *in, int fd)
{
	union {
		struct file_handle fh;
		char space[sizeof(struct file_handle) + MAX_HANDLE_SZ];
	} h;
	const struct file_handle *mine = in->fde.fh;
	int mnt_id;

	if (!mine)
		return true;
	h.fh.handle_bytes = MAX_HANDLE_SZ;
	if (name_to_handle_at(fd, "", &h.fh, &mnt_id, AT_EMPTY_PATH) < 0)
		return true;
	return h.fh.handle_bytes == mine->handle_bytes &&
	       h.fh.handle_type == mine->handle_type &&
	       memcmp(h.fh.f_handle, mine->f_handle, mine->handle_bytes) == 0;
}

/*
 * @in (found, its count raised by us) is a removed object whose number
 * was given again: take it out of the table, so the new object gets an
 * inode (and a node id) of its own; the kernel's lookups of the old one
 * keep it until they are forgotten.
 */
void itab_retire_inode(struct itab *t, struct hmm_inode *in)
{
	pthread_mutex_lock(&t->lock);
	if (!in->retired) {	/* a racing lookup may have done it */
		itab_unlink_locked(t, in);
		in->retired = true;
		in->next = t->retired;
		t->retired = in;
	}
	pthread_mutex_unlock(&t->lock);
}

static void itab_retire(struct itab *t, struct hmm_inode *in)
{
	itab_retire_inode(t, in);
	itab_forget(t, in, 1);	/* our raise */
}

int itab_lookup_insert(struct itab *t, int fd, const struct stat *st,
		       struct hmm_inode **out)
{
	struct hmm_inode *in, *new;

	pthread_mutex_lock(&t->lock);
	in = itab_find_get_locked(t, st);
	pthread_mutex_unlock(&t->lock);
	/*
	 * An open descriptor keeps its object alive, and two live objects
	 * never share a number: only a closed one needs the handle check
	 * (a syscall, on the path of every lookup of a known inode).
	 */
	if (in && in != &t->root && !fdc_is_open(&t->fdc, &in->fde) &&
	    !inode_is_object(in, fd)) {
		itab_retire(t, in);
		in = NULL;
	}
	if (in) {
		/* the lookup just raised keeps @in from being freed meanwhile */
		fdc_offer(&t->fdc, &in->fde, fd);
		*out = in;
		return 0;
	}
	new = inode_new(t, fd, st);	/* takes the handle: not under t->lock */
	if (!new) {
		close(fd);
		return -ENOMEM;
	}
	pthread_mutex_lock(&t->lock);
	in = itab_find_get_locked(t, st);
	if (in) {	/* a racing lookup inserted it first */
		pthread_mutex_unlock(&t->lock);
		inode_discard(t, new);
		*out = in;
		return 0;
	}
	in = new;
	in->nlookup = 1;
	in->fino = itab_ino_locked(t, in->dev, in->ino);
	in->gen = t->next_gen++;
	itab_link_locked(t, in);
	pthread_mutex_unlock(&t->lock);
	*out = in;
	return 0;
}

static void itab_id_unlink_locked(struct itab *t, struct hmm_inode *inode)
{
	struct hmm_inode **pp = &t->ids[itab_id_hash((uintptr_t)inode, t->nbuckets)];

	for (; *pp; pp = &(*pp)->next_id) {
		if (*pp == inode) {
			*pp = inode->next_id;
			return;
		}
	}
}

/* Take @inode out of its chains (or the retired list, or the dormant list). */
static void itab_unlink_locked(struct itab *t, struct hmm_inode *inode)
{
	struct hmm_inode **pp = &t->buckets[itab_hash(inode->dev, inode->ino,
						      t->nbuckets)];

	itab_assert_locked(t);
	if (inode->dormant)
		dormant_del_locked(t, inode);
	if (inode->retired)
		pp = &t->retired;
	for (; *pp; pp = &(*pp)->next) {
		if (*pp == inode) {
			*pp = inode->next;
			if (!inode->retired) {
				t->count--;
				itab_id_unlink_locked(t, inode);
			}
			return;
		}
	}
}

/*
 * @inode, forgotten and out of the table, with no cache state or
 * descriptor left: back in as dormant, unless it cannot be reopened by
 * handle or a lookup made a new inode for its object meanwhile.
 */
static void inode_sleep(struct itab *t, struct hmm_inode *inode)
{
	struct hmm_inode *oldest = NULL;

	if (t->release)
		t->release(t->release_arg, inode);	/* then a no-op at free */
	if (!fdc_let_go(&t->fdc, &inode->fde)) {
		inode_free(t, inode);
		return;
	}
	pthread_mutex_lock(&t->lock);
	if (itab_find_locked(t, inode->dev, inode->ino)) {
		pthread_mutex_unlock(&t->lock);
		inode_free(t, inode);
		return;
	}
	itab_link_locked(t, inode);
	dormant_add_locked(t, inode);
	if (t->ndormant > t->dormant_max) {
		oldest = t->dormant_first;
		itab_unlink_locked(t, oldest);
	}
	pthread_mutex_unlock(&t->lock);
	if (oldest)
		inode_free(t, oldest);
}

void itab_forget(struct itab *t, struct hmm_inode *inode, uint64_t n)
{
	bool keep;

	if (inode == &t->root)
		return;
	pthread_mutex_lock(&t->lock);
	if (n > inode->nlookup) {
		log_err("forget of %llu lookups on an inode with %llu",
			(unsigned long long)n, (unsigned long long)inode->nlookup);
		n = inode->nlookup;
	}
	inode->nlookup -= n;
	if (inode->nlookup) {
		pthread_mutex_unlock(&t->lock);
		return;
	}
	keep = t->dormant_max && !inode->retired && !inode->dormant;
	itab_unlink_locked(t, inode);
	pthread_mutex_unlock(&t->lock);
	if (keep)
		inode_sleep(t, inode);
	else
		inode_free(t, inode);
}

void itab_set_dormant_max(struct itab *t, size_t max)
{
	struct hmm_inode *gone = NULL;

	pthread_mutex_lock(&t->lock);
	t->dormant_max = max;
	while (t->ndormant > max) {	/* freed below, chained through ->next */
		struct hmm_inode *in = t->dormant_first;

		itab_unlink_locked(t, in);
		in->next = gone;
		gone = in;
	}
	pthread_mutex_unlock(&t->lock);
	while (gone) {
		struct hmm_inode *in = gone;

		gone = in->next;
		inode_free(t, in);
	}
}

struct hmm_inode *itab_get_by_id(struct itab *t, uint64_t id)
{
	struct hmm_inode *in;

	pthread_mutex_lock(&t->lock);
	in = t->ids[itab_id_hash(id, t->nbuckets)];
	while (in && (uintptr_t)in != id)
		in = in->next_id;
	if (in)
		inode_raise_locked(t, in);
	pthread_mutex_unlock(&t->lock);
	return in;
}

size_t itab_dormant_count(struct itab *t)
{
	size_t n;

	pthread_mutex_lock(&t->lock);
	n = t->ndormant;
	pthread_mutex_unlock(&t->lock);
	return n;
}

size_t itab_count(struct itab *t)
{
	size_t n;

	pthread_mutex_lock(&t->lock);
	n = t->count;
	pthread_mutex_unlock(&t->lock);
	return n;
}

void itab_keep(struct itab *t, dev_t dev, ino_t ino, int fd)
{
	struct hmm_inode *in;

	pthread_mutex_lock(&t->lock);
	in = itab_find_locked(t, dev, ino);
	if (in)		/* under t->lock: it cannot be forgotten meanwhile */
		fdc_keep(&t->fdc, &in->fde, fd);
	pthread_mutex_unlock(&t->lock);
	if (!in)
		close(fd);
}
