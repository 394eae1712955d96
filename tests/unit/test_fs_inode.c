/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/test_fs_inode.c — fs/inode.c: one inode per (dev, ino), exact
 * lookup counts, forget freeing at zero (and closing the O_PATH fd), the
 * root never freed, growth past the initial bucket count, concurrent
 * lookup/forget on shared and distinct objects, and dormant inodes.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "fs/inode.h"
#include "tests/unit/unit.h"

static int open_path(const char *p)
{
	return open(p, O_PATH | O_CLOEXEC);
}

static int fd_is_open(int fd)
{
	return fcntl(fd, F_GETFD) != -1 || errno != EBADF;
}

static void table_init(struct itab *t)
{
	struct stat st = { .st_dev = 1, .st_ino = 1, .st_mode = S_IFDIR };

	CU_ASSERT_FATAL(itab_init(t, open_path("/"), &st) == 0);
}

static struct stat key(dev_t dev, ino_t ino)
{
	return (struct stat){ .st_dev = dev, .st_ino = ino, .st_mode = S_IFREG };
}

static void test_same_key_same_inode(void)
{
	struct itab t;
	struct hmm_inode *a, *b;
	struct stat st = key(7, 42);
	int fd1 = open_path("/"), fd2 = open_path("/");

	table_init(&t);
	CU_ASSERT_EQUAL(itab_lookup_insert(&t, fd1, &st, &a), 0);
	CU_ASSERT_EQUAL(itab_lookup_insert(&t, fd2, &st, &b), 0);
	CU_ASSERT_PTR_EQUAL(a, b);
	CU_ASSERT_EQUAL(a->nlookup, 2);
	CU_ASSERT_EQUAL(a->fde.fd, fd1);
	CU_ASSERT_FALSE(fd_is_open(fd2));	/* the duplicate fd was closed */
	CU_ASSERT_EQUAL(itab_count(&t), 1);
	itab_destroy(&t);
}

static void test_forget_frees_at_zero(void)
{
	struct itab t;
	struct hmm_inode *a;
	struct stat st = key(7, 43);
	int fd = open_path("/");

	table_init(&t);
	for (int i = 0; i < 3; i++)
		CU_ASSERT_EQUAL(itab_lookup_insert(&t, i ? open_path("/") : fd,
						   &st, &a), 0);
	itab_forget(&t, a, 2);
	CU_ASSERT_EQUAL(itab_count(&t), 1);
	CU_ASSERT_TRUE(fd_is_open(fd));
	itab_forget(&t, a, 1);
	CU_ASSERT_EQUAL(itab_count(&t), 0);
	CU_ASSERT_FALSE(fd_is_open(fd));
	itab_destroy(&t);
}

static void test_root_is_not_forgotten(void)
{
	struct itab t;
	struct hmm_inode *r;
	struct stat st = { .st_dev = 1, .st_ino = 1, .st_mode = S_IFDIR };

	table_init(&t);
	CU_ASSERT_EQUAL(itab_lookup_insert(&t, open_path("/"), &st, &r), 0);
	CU_ASSERT_PTR_EQUAL(r, &t.root);
	itab_forget(&t, r, 1000);
	CU_ASSERT_TRUE(fd_is_open(itab_root_fd(&t)));
	CU_ASSERT_EQUAL(itab_count(&t), 0);
	itab_destroy(&t);
}

static void test_growth_keeps_everything(void)
{
	struct itab t;
	struct hmm_inode *in[5000], *again;
	struct stat st;

	table_init(&t);
	for (int i = 0; i < 5000; i++) {
		st = key(3, (ino_t)(1000 + i));
		CU_ASSERT_EQUAL_FATAL(itab_lookup_insert(&t, open_path("/"), &st,
							 &in[i]), 0);
	}
	CU_ASSERT_EQUAL(itab_count(&t), 5000);
	CU_ASSERT(t.nbuckets >= 5000);
	for (int i = 0; i < 5000; i++) {
		st = key(3, (ino_t)(1000 + i));
		CU_ASSERT_EQUAL(itab_lookup_insert(&t, open_path("/"), &st, &again), 0);
		CU_ASSERT_PTR_EQUAL(again, in[i]);
		itab_forget(&t, again, 2);
	}
	CU_ASSERT_EQUAL(itab_count(&t), 0);
	itab_destroy(&t);
}

/* Threads look up and forget the same 16 keys as fast as they can. */
struct race_arg {
	struct itab *t;
	int seed;
	int errors;
};

static void *race_thread(void *p)
{
	struct race_arg *a = p;
	unsigned int seed = (unsigned int)a->seed;

	for (int i = 0; i < 20000; i++) {
		struct stat st = key(9, (ino_t)(rand_r(&seed) % 16));
		struct hmm_inode *in;

		if (itab_lookup_insert(a->t, open_path("/"), &st, &in)) {
			a->errors++;
			continue;
		}
		pthread_mutex_lock(&a->t->lock);	/* nlookup is itab->lock's */
		if (in->ino != st.st_ino || in->nlookup == 0)
			a->errors++;
		pthread_mutex_unlock(&a->t->lock);
		itab_forget(a->t, in, 1);
	}
	return NULL;
}

static void test_concurrent_lookup_forget(void)
{
	struct itab t;
	pthread_t th[8];
	struct race_arg args[8];

	table_init(&t);
	for (int i = 0; i < 8; i++) {
		args[i] = (struct race_arg){ .t = &t, .seed = i + 1 };
		pthread_create(&th[i], NULL, race_thread, &args[i]);
	}
	for (int i = 0; i < 8; i++) {
		pthread_join(th[i], NULL);
		CU_ASSERT_EQUAL(args[i].errors, 0);
	}
	CU_ASSERT_EQUAL(itab_count(&t), 0);	/* every lookup was forgotten */
	itab_destroy(&t);
}

/*
 * Inode numbers: BACKING's own device keeps its numbers; equal numbers on
 * other devices become distinct, and stay the same after a forget.
 */
static void test_inode_numbers_unique_across_devices(void)
{
	struct itab t;
	struct hmm_inode *a, *b, *c;
	struct stat sa = key(1, 2), sb = key(7, 2), sc = key(9, 2);
	ino_t fb;

	table_init(&t);
	CU_ASSERT_EQUAL(itab_lookup_insert(&t, open_path("/"), &sa, &a), 0);
	CU_ASSERT_EQUAL(itab_lookup_insert(&t, open_path("/"), &sb, &b), 0);
	CU_ASSERT_EQUAL(itab_lookup_insert(&t, open_path("/"), &sc, &c), 0);
	CU_ASSERT_EQUAL(a->fino, 2);
	CU_ASSERT_NOT_EQUAL(b->fino, a->fino);
	CU_ASSERT_NOT_EQUAL(c->fino, a->fino);
	CU_ASSERT_NOT_EQUAL(c->fino, b->fino);
	CU_ASSERT_EQUAL(itab_ino(&t, 7, 2), b->fino);	/* readdir's d_ino */
	CU_ASSERT_EQUAL(itab_ino(&t, 1, 5), 5);
	fb = b->fino;
	itab_forget(&t, b, 1);
	CU_ASSERT_EQUAL(itab_lookup_insert(&t, open_path("/"), &sb, &b), 0);
	CU_ASSERT_EQUAL(b->fino, fb);
	itab_destroy(&t);
}

/*
 * A table over a real directory (file handles work there) holding @n
 * files f0..: their inodes in @in, one lookup each.  Return: 1 when the
 * file system has no handles (nothing to check), 0, or -1.
 */
static int real_table(struct itab *t, char dir[64], struct hmm_inode **in, int n)
{
	struct stat st;
	int dfd;

	snprintf(dir, 64, "/tmp/hmmfs-itab.XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || fstat(dfd, &st) < 0 || itab_init(t, dfd, &st))
		return -1;
	if (fdc_no_handles(&t->fdc)) {
		fprintf(stderr, "(no file handles here) ");
		return 1;
	}
	for (int i = 0; i < n; i++) {
		char name[16];
		int fd;

		snprintf(name, sizeof(name), "f%d", i);
		close(openat(dfd, name, O_CREAT | O_WRONLY | O_CLOEXEC, 0644));
		fd = openat(dfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0 || fstat(fd, &st) < 0 || itab_lookup_insert(t, fd, &st, &in[i]))
			return -1;
	}
	return 0;
}

static void real_table_destroy(struct itab *t, const char *dir, int n)
{
	char path[96];

	itab_destroy(t);
	for (int i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/f%d", dir, i);
		unlink(path);
	}
	rmdir(dir);
}

/*
 * Forgotten inodes stay dormant, up to the bound, with their node id:
 * found by it (and woken) or by a lookup of their object (the same
 * inode), the oldest freed first, and none with a descriptor open.
 */
static void test_dormant_inodes(void)
{
	struct itab t_dormant;
	struct hmm_inode *in[3], *again;
	struct stat st;
	char dir[64], path[96];
	uint64_t id0;
	int r, fd;

	r = real_table(&t_dormant, dir, in, 3);
	CU_ASSERT_FATAL(r >= 0);
	if (r > 0) {
		itab_destroy(&t_dormant);
		return;
	}
	itab_set_dormant_max(&t_dormant, 2);
	CU_ASSERT_NOT_EQUAL(in[0]->gen, in[1]->gen);
	itab_forget(&t_dormant, in[0], 1);
	CU_ASSERT_EQUAL(itab_dormant_count(&t_dormant), 1);
	CU_ASSERT_EQUAL(in[0]->fde.fd, -1);	/* no descriptor while dormant */
	again = itab_get_by_id(&t_dormant, in[0]->nodeid);
	CU_ASSERT_PTR_EQUAL(again, in[0]);
	CU_ASSERT_EQUAL(in[0]->nlookup, 1);
	CU_ASSERT_EQUAL(itab_dormant_count(&t_dormant), 0);
	CU_ASSERT_PTR_NULL(itab_get_by_id(&t_dormant, ~0ull));

	id0 = in[0]->nodeid;
	itab_forget(&t_dormant, in[0], 1);
	itab_forget(&t_dormant, in[1], 1);
	snprintf(path, sizeof(path), "%s/f1", dir);	/* f1 looked up again */
	fd = open(path, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	CU_ASSERT_FATAL(fd >= 0 && fstat(fd, &st) == 0);
	CU_ASSERT_EQUAL(itab_lookup_insert(&t_dormant, fd, &st, &again), 0);
	CU_ASSERT_PTR_EQUAL(again, in[1]);
	CU_ASSERT_EQUAL(itab_dormant_count(&t_dormant), 1);
	itab_forget(&t_dormant, in[1], 1);
	itab_forget(&t_dormant, in[2], 1);	/* a third: f0, the oldest, goes */
	CU_ASSERT_EQUAL(itab_dormant_count(&t_dormant), 2);
	CU_ASSERT_PTR_NULL(itab_get_by_id(&t_dormant, id0));
	CU_ASSERT_EQUAL(itab_count(&t_dormant), 2);
	itab_set_dormant_max(&t_dormant, 0);	/* frees the rest */
	CU_ASSERT_EQUAL(itab_dormant_count(&t_dormant), 0);
	CU_ASSERT_EQUAL(itab_count(&t_dormant), 0);
	real_table_destroy(&t_dormant, dir, 3);
}

/*
 * Persistent node ids: generation << 32 | inode number where the handles
 * allow it, the same in a second table (a later daemon), and enough to
 * reopen the object; a removed object's node id opens nothing.
 */
static void test_persistent_node_ids(void)
{
	struct itab t1, t2;
	struct hmm_inode *a[2], *b[2];
	char dir1[64], path[96];
	struct stat st;
	uint64_t id1;
	int r, fd;

	r = real_table(&t1, dir1, a, 2);
	CU_ASSERT_FATAL(r >= 0);
	if (r > 0 || !itab_persist(&t1)) {
		fprintf(stderr, "(no persistent node ids on this file system) ");
		itab_destroy(&t1);
		return;
	}
	itab_forget(&t1, a[0], 1);	/* made before itab_persist(): again */
	itab_forget(&t1, a[1], 1);
	for (int i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "%s/f%d", dir1, i);
		fd = open(path, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		CU_ASSERT_FATAL(fd >= 0 && fstat(fd, &st) == 0);
		CU_ASSERT_EQUAL_FATAL(itab_lookup_insert(&t1, fd, &st, &a[i]), 0);
		CU_ASSERT_EQUAL(a[i]->nodeid & 0xffffffffu, st.st_ino);
		CU_ASSERT_EQUAL(a[i]->gen, a[i]->nodeid >> 32);
	}
	fd = itab_open_key(&t1, a[1]->nodeid);
	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_EQUAL(fstat(fd, &st), 0);
	CU_ASSERT_EQUAL(st.st_ino, a[1]->ino);
	close(fd);

	/* a second table over the same directory: the same node ids */
	fd = open(dir1, O_PATH | O_DIRECTORY | O_CLOEXEC);
	CU_ASSERT_FATAL(fd >= 0 && fstat(fd, &st) == 0);
	CU_ASSERT_FATAL(itab_init(&t2, fd, &st) == 0);
	CU_ASSERT_FATAL(itab_persist(&t2));
	for (int i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "%s/f%d", dir1, i);
		fd = open(path, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		CU_ASSERT_FATAL(fd >= 0 && fstat(fd, &st) == 0);
		CU_ASSERT_EQUAL_FATAL(itab_lookup_insert(&t2, fd, &st, &b[i]), 0);
		CU_ASSERT_EQUAL(b[i]->nodeid, a[i]->nodeid);
		CU_ASSERT_EQUAL(b[i]->gen, a[i]->gen);
	}
	itab_destroy(&t2);
	id1 = a[1]->nodeid;
	itab_forget(&t1, a[1], 1);	/* freed: its descriptor closed */
	snprintf(path, sizeof(path), "%s/f1", dir1);
	CU_ASSERT_EQUAL(unlink(path), 0);
	CU_ASSERT_EQUAL(itab_open_key(&t1, id1), -ESTALE);
	CU_ASSERT_EQUAL(itab_open_key(&t1, 1), -ESTALE);
	real_table_destroy(&t1, dir1, 2);
}

/*
 * A lookup racing with the forget that puts an inode to sleep waits for
 * it and finds the same inode, with the same node id, dormant no more:
 * never a second inode for the object, nor a node id missing meanwhile.
 * The release hook (the cache's state, outside the lock) is where the
 * race is: it starts the racing lookups and checks they wait.
 */
struct sleep_race {
	struct itab *t;
	char path[96];
	uint64_t id;
	struct hmm_inode *by_name, *by_id;
	_Atomic int done;
};

static struct sleep_race race;

static void *race_lookup(void *arg)
{
	struct stat st;
	int fd = open(race.path, O_PATH | O_NOFOLLOW | O_CLOEXEC);

	(void)arg;
	if (fd >= 0 && fstat(fd, &st) == 0 &&
	    itab_lookup_insert(race.t, fd, &st, &race.by_name) == 0)
		race.by_id = itab_get_by_id(race.t, race.id);
	atomic_store(&race.done, 1);
	return NULL;
}

static void race_release(void *arg, struct hmm_inode *in)
{
	pthread_t th;

	(void)in;
	if (arg != &race || race.by_name)
		return;	/* only the first sleep, not the frees at the end */
	CU_ASSERT_FATAL(pthread_create(&th, NULL, race_lookup, NULL) == 0);
	usleep(100 * 1000);
	CU_ASSERT_EQUAL(atomic_load(&race.done), 0);	/* it waits */
	pthread_detach(th);
	race.by_name = (struct hmm_inode *)1;	/* no second thread */
}

static void test_lookup_waits_for_sleep(void)
{
	struct itab t;
	struct hmm_inode *in[1];
	char dir[64];
	int r;

	r = real_table(&t, dir, in, 1);
	CU_ASSERT_FATAL(r >= 0);
	if (r > 0) {
		itab_destroy(&t);
		return;
	}
	itab_set_dormant_max(&t, 8);
	race = (struct sleep_race){ .t = &t, .id = in[0]->nodeid };
	snprintf(race.path, sizeof(race.path), "%s/f0", dir);
	t.release = race_release;
	t.release_arg = &race;
	itab_forget(&t, in[0], 1);
	for (int i = 0; i < 200 && !atomic_load(&race.done); i++)
		usleep(10 * 1000);
	CU_ASSERT_FATAL(atomic_load(&race.done));
	CU_ASSERT_PTR_EQUAL(race.by_name, in[0]);
	CU_ASSERT_PTR_EQUAL(race.by_id, in[0]);
	CU_ASSERT_EQUAL(in[0]->nlookup, 2);
	CU_ASSERT_EQUAL(itab_dormant_count(&t), 0);
	CU_ASSERT_EQUAL(itab_count(&t), 1);
	t.release = NULL;
	real_table_destroy(&t, dir, 1);
}

int register_fs_inode(void)
{
	static const CU_TestInfo tests[] = {
		{ "same key, same inode", test_same_key_same_inode },
		{ "forget frees at zero", test_forget_frees_at_zero },
		{ "root is never freed", test_root_is_not_forgotten },
		{ "growth keeps every inode", test_growth_keeps_everything },
		{ "concurrent lookup and forget", test_concurrent_lookup_forget },
		{ "inode numbers unique across devices",
		  test_inode_numbers_unique_across_devices },
		{ "forgotten inodes stay dormant, bounded", test_dormant_inodes },
		{ "persistent node ids", test_persistent_node_ids },
		{ "a lookup waits for a forget's sleep", test_lookup_waits_for_sleep },
		CU_TEST_INFO_NULL,
	};

	return unit_add_suite("fs_inode", tests);
}
