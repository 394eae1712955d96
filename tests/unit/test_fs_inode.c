/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/test_fs_inode.c — fs/inode.c: one inode per (dev, ino), exact
 * lookup counts, forget freeing at zero (and closing the O_PATH fd), the
 * root never freed, growth past the initial bucket count, and concurrent
 * lookup/forget on shared and distinct objects.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
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
		CU_TEST_INFO_NULL,
	};

	return unit_add_suite("fs_inode", tests);
}
