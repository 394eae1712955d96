/* SPDX-License-Identifier: MIT */
/*
 * util/size.c — sizes as hmmfs and hmmfsctl read them (size.h).
 *
 * Exact integer arithmetic, no floating point: the whole part and the
 * fraction are read as integers, and the fraction times the unit must
 * divide evenly by its power of ten.  128-bit intermediates catch
 * overflow.
 */
#include <errno.h>
#include <string.h>

#include "util/size.h"

#define FRACTION_DIGITS_MAX 18	/* 10^18 still fits in 64 bits */

/* Read decimal digits at *@p into *@v (128 bits); count them in *@n. */
static int digits(const char **p, unsigned __int128 *v, unsigned int *n)
{
	for (*n = 0; **p >= '0' && **p <= '9'; (*p)++, (*n)++) {
		*v = *v * 10 + (unsigned int)(**p - '0');
		if (*v > UINT64_MAX)
			return -ERANGE;
	}
	return 0;
}

/* The unit at *@p (none: 1), moved past; 0 if it is not one. */
static uint64_t unit(const char **p)
{
	static const char units[] = "KMGTP";
	const char *u;
	uint64_t mult;

	if (!**p)
		return 1;
	u = strchr(units, **p & ~0x20);
	if (!u)
		return 0;
	mult = 1ull << (10 * (u - units + 1));
	(*p)++;
	if (!strcmp(*p, "iB") || !strcmp(*p, "B") || !strcmp(*p, "b"))
		*p += strlen(*p);
	return **p ? 0 : mult;
}

int size_parse(const char *s, uint64_t *out)
{
	unsigned __int128 whole = 0, frac = 0, scale = 1, bytes;
	unsigned int nwhole, nfrac = 0;
	uint64_t mult;
	int ret = digits(&s, &whole, &nwhole);

	if (ret)
		return ret;
	if (!nwhole)
		return -EINVAL;
	if (*s == '.') {
		s++;
		ret = digits(&s, &frac, &nfrac);
		if (ret || !nfrac || nfrac > FRACTION_DIGITS_MAX)
			return ret ? ret : -EINVAL;
		for (unsigned int i = 0; i < nfrac; i++)
			scale *= 10;
	}
	mult = unit(&s);
	if (!mult || (frac * mult) % scale)
		return -EINVAL;	/* no unit, or not a whole number of bytes */
	bytes = whole * mult + frac * mult / scale;
	if (bytes > UINT64_MAX)
		return -ERANGE;
	*out = (uint64_t)bytes;
	return 0;
}
