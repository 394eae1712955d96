/* SPDX-License-Identifier: MIT */
/*
 * util/size.h — the one size grammar of hmmfs (-o host_cache=...) and
 * hmmfsctl (--offset, --length, ...).
 *
 * A size is decimal digits (leading zeros are decimal, not octal), an
 * optional fraction, and an optional binary unit K, M, G, T or P (any
 * case), which may be followed by "iB" or "B": "4096", "64K", "1.5M",
 * "2MiB", "08".  It must come to a whole number of bytes ("0.1K" does
 * not) that fits in 64 bits.
 */
#ifndef HMMFS_UTIL_SIZE_H
#define HMMFS_UTIL_SIZE_H

#include <stdint.h>

/* Parse @s into *@out.  Return: 0, -EINVAL (malformed), -ERANGE (too big). */
int size_parse(const char *s, uint64_t *out);

#endif
