/* SPDX-License-Identifier: MIT */
/*
 * device/xxh64_lanes.c — XXH64 with a device kernel folding the lanes and
 * libxxhash keeping the rest (see xxh64_lanes.h for the split).  No
 * locking: a run belongs to one thread.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "device/xxh64_lanes.h"
#include "log/log.h"
#include "lib/compiler.h"

#define XL_BOUNCE 65536		/* bytes read back at once */

int xl_flush(struct xl_run *x)
{
	uint64_t v[4];
	int ret;

	if (!x->n)
		return 0;
	memcpy(v, x->st->v, sizeof(v));
	ret = x->ops->fold(x->ctx, (const uint64_t (*)[2])x->spans, x->n, v);
	if (ret)
		return ret;
	memcpy(x->st->v, v, sizeof(v));
	x->st->total_len += x->bytes;
	x->n = 0;
	x->bytes = 0;
	return 0;
}

/* Feed [@a, @a + @len) to the state through host copies. */
static int xl_through_host(struct xl_run *x, uint64_t a, size_t len)
{
	char *buf = malloc(len < XL_BOUNCE ? len : XL_BOUNCE);
	int ret = xl_flush(x);	/* the folded bytes come first */

	if (!buf)
		return -ENOMEM;
	while (!ret && len) {
		size_t n = len < XL_BOUNCE ? len : XL_BOUNCE;

		ret = x->ops->read(x->ctx, a, buf, n);
		if (!ret)
			XXH64_update(x->st, buf, n);
		a += n;
		len -= n;
	}
	free(buf);
	return ret;
}

int xl_feed(struct xl_run *x, uint64_t a, size_t len)
{
	size_t head = x->st->memsize ? 32 - x->st->memsize : 0, stripes;
	int ret;

	if (head) {
		head = head < len ? head : len;
		ret = xl_through_host(x, a, head);
		if (ret)
			return ret;
		a += head;
		len -= head;
	}
	stripes = a % 8 ? 0 : len & ~(size_t)31;
	if (stripes) {
		if (x->n == x->max && (ret = xl_flush(x)))
			return ret;
		x->spans[x->n][0] = a;
		x->spans[x->n][1] = stripes;
		x->n++;
		x->bytes += stripes;
	}
	return len > stripes ? xl_through_host(x, a + stripes, len - stripes) : 0;
}

int xl_check(const struct xl_ops *ops, void *ctx, uint64_t pattern,
	     uint64_t (*spans)[2], size_t max)
{
	static const struct { size_t at, len; } shape[] = {
		{ 0, 4096 }, { 4096, 4096 },	/* pages: one fold */
		{ 8192 + 8, 104 },		/* stripes, then a tail of 8 */
		{ 8192 + 200, 1000 },		/* a head of 24, stripes, a tail */
		{ 8192 + 1203, 777 },		/* not aligned: all host */
		{ 8192 + 1025, 3000 },		/* a head of 7, then aligned */
	};
	XXH64_state_t dev, host;
	struct xl_run x = { .ops = ops, .ctx = ctx, .st = &dev, .spans = spans,
			    .max = max };
	unsigned char *pat = malloc(XL_CHECK_BYTES);
	uint64_t seed = 0x9e3779b97f4a7c15ull;
	int ret;

	if (!pat)
		return -ENOMEM;
	for (size_t i = 0; i < XL_CHECK_BYTES; i++) {
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		pat[i] = (unsigned char)(seed >> 56);
	}
	XXH64_reset(&dev, 0);
	XXH64_reset(&host, 0);
	ret = ops->write(ctx, pattern, pat, XL_CHECK_BYTES);
	for (size_t i = 0; i < ARRAY_SIZE(shape) && !ret; i++) {
		XXH64_update(&host, pat + shape[i].at, shape[i].len);
		ret = xl_feed(&x, pattern + shape[i].at, shape[i].len);
	}
	if (!ret)
		ret = xl_flush(&x);
	free(pat);
	if (ret)
		return ret;
	return XXH64_digest(&dev) == XXH64_digest(&host);
}

int xl_check_once(_Atomic int *verdict, const char *who, const struct xl_ops *ops,
		  void *ctx, uint64_t pattern, uint64_t (*spans)[2], size_t max)
{
	int v = atomic_load(verdict), ret;

	if (!v) {
		ret = xl_check(ops, ctx, pattern, spans, max);
		if (ret < 0)
			return ret;	/* the device's trouble, not the kernel's */
		v = ret ? 1 : -1;
		atomic_store(verdict, v);
		if (v < 0)
			log_warn("%s: the xxh64 kernel disagrees with libxxhash; devop "
				 "xxh64 hashes through host copies on it", who);
	}
	return v > 0 ? 0 : -EOPNOTSUPP;
}
