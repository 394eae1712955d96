/* SPDX-License-Identifier: MIT */
/* fs/bdi.h — the kernel's dirty limit for the mount (bdi.c). */
#ifndef HMMFS_FS_BDI_H
#define HMMFS_FS_BDI_H

#include <stddef.h>
#include <sys/types.h>

/**
 * bdi_setup() - let the kernel hold up to @max_bytes of dirty data for
 * the mount with device number @dev (its bdi's max_bytes), saying so on
 * stderr if @verbose.  @max_bytes 0 leaves the kernel's default.
 * Return: 0, or -errno after a one-line notice (not root, old kernel).
 */
int bdi_setup(dev_t dev, size_t max_bytes, int verbose);

#endif
