/* SPDX-License-Identifier: MIT */
/*
 * lib/compiler.h — the two macros C leaves everyone to write by hand.
 *
 * ARRAY_SIZE(a): the number of elements of array @a (an array, not a
 * pointer: GCC warns on sizeof of a pointer divided this way).
 * container_of(ptr, type, member): the @type whose @member @ptr points
 * to, as Linux's (the lists of lib/list.h and RCU heads use it).
 */
#ifndef HMMFS_LIB_COMPILER_H
#define HMMFS_LIB_COMPILER_H

#include <stddef.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#define container_of(ptr, type, member) \
	((type *)((char *)(ptr) - offsetof(type, member)))

#endif
