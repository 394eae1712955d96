/* SPDX-License-Identifier: MIT */
/*
 * fs/inode.c — the inode table (see inode.h for the contract).
 *
 * Chained hash tables under one mutex.  Lookups and forgets are short
 * (a hash, a chain walk of about one element, a counter update), so one
 * mutex has not shown up in profiles; the file-data path never takes it
 * (reads and writes find their inode through the open file).  Each table
 * doubles when its load factor passes 1, under the same mutex.
 *
 * Why forget cannot race with use: the kernel sends FORGET for a node id
 * only after dropping its own inode, and it holds that inode for every
 * request in flight on it, so no request can name a node id whose count
 * reached zero (but for the "." lookup of a file handle, which finds its
 * node id in the table first).  A lookup racing with the forget of the
 * same object finds the inode before the count drops (and raises it
 * again), or while it sleeps (and waits, below), or after it was freed
 * (and makes a fresh one): all under t->lock.
 *
 * A new inode is made outside t->lock (taking its file handle is a
 * syscall), then the table is searched again under it: if another lookup
 * inserted the same object meanwhile, ours is thrown away.
 *
 * Node ids (inode.h).  Every inode in the (dev, ino) chains, and every
 * retired one, is also in a second hash keyed by its node id, through
 * which requests find it.  A persistent node id comes from the object's
 * file handle; any other from a counter, skipping ids in use.
 *
 * Dormant inodes (inode.h).  When a count drops to zero, the inode is
 * marked sleeping, the release hook (the cache's state) and the
 * descriptor go outside the lock, and it becomes dormant, at the end of
 * the dormant list; if the list is over its bound the oldest is freed.
 * A lookup that finds a sleeping inode, by object or node id, waits on
 * @slept until it is dormant (or freed), so no object ever has two
 * inodes and no node id two objects.  Any lookup that raises a dormant
 * inode's count from zero takes it off the list.
 */
#include "fs/inode.h"
#include "log/log.h"
#include "lib/lockcheck.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
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
	uint64_t h = id * 0x9e3779b97f4a7c15ull;

	return (size_t)((h ^ h >> 29) & (nbuckets - 1));
}

/*
 * A number that differs per daemon: the first counter generation, so a
 * node id from a counter that a later daemon gives again never matches an
 * old file handle's generation.
 */
static uint32_t itab_seed(void)
{
	struct timespec ts;
	uint32_t r;

	if (getrandom(&r, sizeof(r), GRND_NONBLOCK) == sizeof(r))
		return r;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint32_t)(ts.tv_nsec ^ ts.tv_sec * 2654435761u ^ (uint32_t)getpid() << 16);
}

/* Held by someone, at least; trylock has no side effect when it fails. */
int itab_init(struct itab *t, int root_fd, const struct stat *st)
{
	int ret = fdc_init(&t->fdc, 0, root_fd, st->st_dev);

	if (ret)
		return ret;
	t->buckets = calloc(ITAB_MIN_BUCKETS, sizeof(*t->buckets));
	t->ids = calloc(ITAB_MIN_BUCKETS, sizeof(*t->ids));
	t->nid_buckets = ITAB_MIN_BUCKETS;
	t->nids = 0;
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
	pthread_cond_init(&t->slept, NULL);
	t->devs = NULL;
	t->ndevs = t->devs_cap = 0;
	t->wide_logged = 0;
	t->dormant_first = t->dormant_last = NULL;
	t->ndormant = t->dormant_max = 0;
	t->next_gen = itab_seed();
	t->next_key = (uint64_t)itab_seed() << 32 | 2;
	t->key_type = 0;
	t->key_len = 0;
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
	pthread_cond_destroy(&t->slept);
	pthread_mutex_destroy(&t->lock);
}

/* Double the bucket array; on ENOMEM keep the old one (only slower). */
static void itab_grow_locked(struct itab *t)
{
	size_t n = t->nbuckets * 2;
	struct hmm_inode **b = calloc(n, sizeof(*b));

	mutex_assert_held(&t->lock);
	if (!b)
		return;
	for (size_t i = 0; i < t->nbuckets; i++) {
		struct hmm_inode *in = t->buckets[i], *next;

		for (; in; in = next) {
			size_t h = itab_hash(in->dev, in->ino, n);

			next = in->next;
			in->next = b[h];
			b[h] = in;
		}
	}
	free(t->buckets);
	t->buckets = b;
	t->nbuckets = n;
}

/* The same for the node-id hash. */
static void itab_ids_grow_locked(struct itab *t)
{
	size_t n = t->nid_buckets * 2;
	struct hmm_inode **ids = calloc(n, sizeof(*ids));

	mutex_assert_held(&t->lock);
	if (!ids)
		return;
	for (size_t i = 0; i < t->nid_buckets; i++) {
		struct hmm_inode *in = t->ids[i], *next;

		for (; in; in = next) {
			size_t k = itab_id_hash(in->nodeid, n);

			next = in->next_id;
			in->next_id = ids[k];
			ids[k] = in;
		}
	}
	free(t->ids);
	t->ids = ids;
	t->nid_buckets = n;
}

static struct hmm_inode *itab_by_nodeid_locked(struct itab *t, uint64_t id)
{
	struct hmm_inode *in = t->ids[itab_id_hash(id, t->nid_buckets)];

	mutex_assert_held(&t->lock);
	while (in && in->nodeid != id)
		in = in->next_id;
	return in;
}

static void itab_ids_add_locked(struct itab *t, struct hmm_inode *in)
{
	size_t k;

	mutex_assert_held(&t->lock);
	if (t->nids >= t->nid_buckets)
		itab_ids_grow_locked(t);
	k = itab_id_hash(in->nodeid, t->nid_buckets);
	in->next_id = t->ids[k];
	t->ids[k] = in;
	t->nids++;
}

static void itab_ids_del_locked(struct itab *t, struct hmm_inode *inode)
{
	struct hmm_inode **pp = &t->ids[itab_id_hash(inode->nodeid, t->nid_buckets)];

	mutex_assert_held(&t->lock);
	for (; *pp; pp = &(*pp)->next_id) {
		if (*pp == inode) {
			*pp = inode->next_id;
			t->nids--;
			return;
		}
	}
}

/* Put @in in the (dev, ino) chains.  Context: t->lock; @in not in them. */
static void itab_link_locked(struct itab *t, struct hmm_inode *in)
{
	size_t h;

	mutex_assert_held(&t->lock);
	if (t->count >= t->nbuckets)
		itab_grow_locked(t);
	h = itab_hash(in->dev, in->ino, t->nbuckets);
	in->next = t->buckets[h];
	t->buckets[h] = in;
	t->count++;
}

/*
 * Handle layouts a persistent node id is made from, told apart by type
 * and length: FILEID_INO32_GEN of ext4 and XFS (1, 8 bytes: number,
 * generation), XFS's 64-bit kind (0x81, 12: number as 64 bits,
 * generation) and tmpfs's (1, 12: generation, number low, number high),
 * each only with a number below 2^32.  The node id is generation << 32 |
 * number.  A node id is used only if the handle made back from it is the
 * very handle the file system gave (key_ok()), so a layout guessed wrong
 * costs persistence, never the wrong object.
 */
static bool key_of_handle(const struct file_handle *fh, uint64_t *key)
{
	uint32_t w[3];
	uint64_t ino64;

	if (fh->handle_bytes != 8 && fh->handle_bytes != 12)
		return false;
	memcpy(w, fh->f_handle, fh->handle_bytes);
	if (fh->handle_type == ITAB_FH_INO32_GEN && fh->handle_bytes == 8) {
		*key = (uint64_t)w[1] << 32 | w[0];
	} else if (fh->handle_type == ITAB_FH_XFS_INO64_GEN && fh->handle_bytes == 12) {
		memcpy(&ino64, fh->f_handle, 8);
		if (ino64 >> 32)
			return false;
		*key = (uint64_t)w[2] << 32 | ino64;
	} else if (fh->handle_type == ITAB_FH_INO32_GEN && fh->handle_bytes == 12) {
		if (w[2])
			return false;
		*key = (uint64_t)w[0] << 32 | w[1];
	} else {
		return false;
	}
	return *key > 1;	/* 0 is no node, 1 the root */
}

/* The handle of layout (@type, @len) that @key came from; @fh has room. */
static void handle_of_key(uint64_t key, int type, unsigned int len,
			  struct file_handle *fh)
{
	uint32_t ino = (uint32_t)key, gen = (uint32_t)(key >> 32);
	uint32_t w[3] = { ino, gen, 0 };
	uint64_t ino64 = ino;

	if (type == ITAB_FH_XFS_INO64_GEN) {
		memcpy(w, &ino64, 8);
		w[2] = gen;
	} else if (len == 12) {	/* tmpfs */
		w[0] = gen;
		w[1] = ino;
	}
	fh->handle_type = type;
	fh->handle_bytes = len;
	memcpy(fh->f_handle, w, len);
}

/* @fh's persistent node id, if it has one that gives @fh back. */
static bool key_ok(const struct file_handle *fh, uint64_t *key)
{
	union fdc_handle_buf back;

	if (!fh || !key_of_handle(fh, key))
		return false;
	handle_of_key(*key, fh->handle_type, fh->handle_bytes, &back.fh);
	return memcmp(back.fh.f_handle, fh->f_handle, fh->handle_bytes) == 0;
}

/*
 * Give new inode @in its node id and generation: the persistent ones if
 * it can have them (inode.h), else from the counters, never one in use.
 */
static void itab_name_locked(struct itab *t, struct hmm_inode *in)
{
	uint64_t key;

	mutex_assert_held(&t->lock);
	if (t->key_type && in->dev == t->root.dev && in->fde.fh &&
	    in->fde.fh->handle_type == t->key_type &&
	    in->fde.fh->handle_bytes == t->key_len && key_ok(in->fde.fh, &key) &&
	    !itab_by_nodeid_locked(t, key)) {
		in->nodeid = key;
		in->gen = (uint32_t)(key >> 32);
		return;
	}
	do
		key = t->next_key++;
	while (key <= 1 || itab_by_nodeid_locked(t, key));
	in->nodeid = key;
	in->gen = t->next_gen++;
}

static void dormant_add_locked(struct itab *t, struct hmm_inode *in)
{
	mutex_assert_held(&t->lock);

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
	mutex_assert_held(&t->lock);

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
	mutex_assert_held(&t->lock);

	if (in->dormant)
		dormant_del_locked(t, in);
	in->nlookup++;
}

static struct hmm_inode *itab_find_locked(struct itab *t, dev_t dev, ino_t ino)
{
	struct hmm_inode *in;

	mutex_assert_held(&t->lock);
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

	mutex_assert_held(&t->lock);
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

	mutex_assert_held(&t->lock);
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
	struct hmm_inode *in;

	mutex_assert_held(&t->lock);
	while ((in = itab_find_locked(t, st->st_dev, st->st_ino)) && in->sleeping)
		pthread_cond_wait(&t->slept, &t->lock);
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

/* Add @in, new, to the table with one lookup.  Context: t->lock. */
static void itab_insert_locked(struct itab *t, struct hmm_inode *in)
{
	mutex_assert_held(&t->lock);

	in->nlookup = 1;
	in->fino = itab_ino_locked(t, in->dev, in->ino);
	itab_name_locked(t, in);
	itab_ids_add_locked(t, in);
	itab_link_locked(t, in);
}

int itab_lookup_insert(struct itab *t, int fd, const struct stat *st,
		       struct hmm_inode **out)
{
	struct hmm_inode *in, *new = NULL;

	for (;;) {
		pthread_mutex_lock(&t->lock);
		in = itab_find_get_locked(t, st);
		if (!in && new) {
			itab_insert_locked(t, new);
			pthread_mutex_unlock(&t->lock);
			*out = new;
			return 0;
		}
		pthread_mutex_unlock(&t->lock);
		/*
		 * An open descriptor keeps its object alive, and two live
		 * objects never share a number: only a closed one needs the
		 * handle check (a syscall, on the path of every lookup of a
		 * known inode; a dormant one is always closed).  Then look
		 * again: the retired inode is out of the chains.
		 */
		if (in && in != &t->root && !fdc_is_open(&t->fdc, &in->fde) &&
		    !inode_is_object(in, fd)) {
			itab_retire(t, in);
			continue;
		}
		if (in) {
			/* the lookup just raised keeps @in from being freed */
			if (new)
				inode_discard(t, new);	/* a racing lookup was first */
			else
				fdc_offer(&t->fdc, &in->fde, fd);
			*out = in;
			return 0;
		}
		new = inode_new(t, fd, st);	/* takes the handle: not under t->lock */
		if (!new) {
			close(fd);
			return -ENOMEM;
		}
	}
}

/*
 * Take @inode out of its (dev, ino) chain or the retired list, and the
 * dormant list; not out of the node-id hash (itab_remove_locked()).
 */
static void itab_unlink_locked(struct itab *t, struct hmm_inode *inode)
{
	struct hmm_inode **pp = &t->buckets[itab_hash(inode->dev, inode->ino,
						      t->nbuckets)];

	mutex_assert_held(&t->lock);
	if (inode->dormant)
		dormant_del_locked(t, inode);
	if (inode->retired)
		pp = &t->retired;
	for (; *pp; pp = &(*pp)->next) {
		if (*pp == inode) {
			*pp = inode->next;
			if (!inode->retired)
				t->count--;
			return;
		}
	}
}

/* Take @inode out of the table altogether. */
static void itab_remove_locked(struct itab *t, struct hmm_inode *inode)
{
	mutex_assert_held(&t->lock);

	itab_unlink_locked(t, inode);
	itab_ids_del_locked(t, inode);
}

/*
 * @inode's count dropped to zero and it is marked sleeping, still in
 * both hashes, so that lookups of its object or node id wait for it
 * (itab_find_get_locked(), itab_get_by_id()) instead of making a second
 * inode or missing the node id.  Its cache state and descriptor go
 * outside the lock; then it becomes dormant, unless it cannot be
 * reopened by handle, and the oldest dormant inode beyond the bound is
 * freed.
 */
static void inode_sleep(struct itab *t, struct hmm_inode *inode)
{
	struct hmm_inode *gone = NULL;
	bool keep;

	if (t->release)
		t->release(t->release_arg, inode);	/* then a no-op at free */
	keep = fdc_let_go(&t->fdc, &inode->fde);
	pthread_mutex_lock(&t->lock);
	inode->sleeping = false;
	if (!keep) {
		gone = inode;
	} else {
		dormant_add_locked(t, inode);
		if (t->ndormant > t->dormant_max)
			gone = t->dormant_first;
	}
	if (gone)
		itab_remove_locked(t, gone);
	pthread_cond_broadcast(&t->slept);
	pthread_mutex_unlock(&t->lock);
	if (gone)
		inode_free(t, gone);
}

void itab_forget(struct itab *t, struct hmm_inode *inode, uint64_t n)
{
	if (inode == &t->root)
		return;
	pthread_mutex_lock(&t->lock);
	if (n > inode->nlookup) {
		log_err("forget of %llu lookups on an inode with %llu",
			(unsigned long long)n, (unsigned long long)inode->nlookup);
		n = inode->nlookup;
	}
	inode->nlookup -= n;
	if (inode->nlookup || inode->sleeping || inode->dormant) {
		pthread_mutex_unlock(&t->lock);
		return;
	}
	if (t->dormant_max && !inode->retired) {
		inode->sleeping = true;
		pthread_mutex_unlock(&t->lock);
		inode_sleep(t, inode);
		return;
	}
	itab_remove_locked(t, inode);
	pthread_mutex_unlock(&t->lock);
	inode_free(t, inode);
}

void itab_set_dormant_max(struct itab *t, size_t max)
{
	struct hmm_inode *gone = NULL;

	pthread_mutex_lock(&t->lock);
	t->dormant_max = max;
	while (t->ndormant > max) {	/* freed below, chained through ->next */
		struct hmm_inode *in = t->dormant_first;

		itab_remove_locked(t, in);
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
	while ((in = itab_by_nodeid_locked(t, id)) && in->sleeping)
		pthread_cond_wait(&t->slept, &t->lock);
	if (in)
		inode_raise_locked(t, in);
	pthread_mutex_unlock(&t->lock);
	return in;
}

struct hmm_inode *itab_by_nodeid(struct itab *t, uint64_t id)
{
	struct hmm_inode *in;

	pthread_mutex_lock(&t->lock);
	in = itab_by_nodeid_locked(t, id);
	pthread_mutex_unlock(&t->lock);
	return in;
}

bool itab_persist(struct itab *t)
{
	union fdc_handle_buf h;
	int mnt_id;
	uint64_t key;

	h.fh.handle_bytes = MAX_HANDLE_SZ;
	if (fdc_no_handles(&t->fdc) ||
	    name_to_handle_at(itab_root_fd(t), "", &h.fh, &mnt_id, AT_EMPTY_PATH) < 0 ||
	    !key_ok(&h.fh, &key))
		return false;
	pthread_mutex_lock(&t->lock);
	t->key_type = h.fh.handle_type;
	t->key_len = h.fh.handle_bytes;
	pthread_mutex_unlock(&t->lock);
	return true;
}

int itab_open_key(struct itab *t, uint64_t key)
{
	union fdc_handle_buf h;
	unsigned int len;
	int type;

	pthread_mutex_lock(&t->lock);
	type = t->key_type;
	len = t->key_len;
	pthread_mutex_unlock(&t->lock);
	if (!type || key <= 1)
		return -ESTALE;
	handle_of_key(key, type, len, &h.fh);
	return fdc_open_handle(&t->fdc, t->root.dev, &h.fh);
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
