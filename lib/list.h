/* SPDX-License-Identifier: MIT */
/*
 * lib/list.h — the one doubly linked list: circular, with a head node, as
 * Linux's list_head.  The cache's page and file lists and fs/'s lists of
 * open files and directories use it; the caller does the locking.
 */
#ifndef HMMFS_LIB_LIST_H
#define HMMFS_LIB_LIST_H

#include <stdbool.h>

#include "lib/compiler.h"

/* A doubly linked list node (lists are circular with a head node). */
struct clist {
	struct clist *prev, *next;
};

static inline void clist_init(struct clist *h)
{
	h->prev = h->next = h;
}

static inline bool clist_empty(const struct clist *h)
{
	return h->next == h;
}

static inline void clist_del(struct clist *n)
{
	n->prev->next = n->next;
	n->next->prev = n->prev;
	n->prev = n->next = n;
}

static inline void clist_add_head(struct clist *h, struct clist *n)
{
	n->next = h->next;
	n->prev = h;
	h->next->prev = n;
	h->next = n;
}

#define clist_entry(ptr, type, member) container_of(ptr, type, member)

#endif
