/* SPDX-License-Identifier: MIT */
/*
 * fs/opstat.c — how many FUSE requests of each kind the daemon served, how
 * many failed, and how long they took (hmmfsctl stats).
 *
 * devio.c reads every request and writes every reply, so it tells us
 * both ends: opstat_request() counts the request and notes its unique id,
 * opcode and start time in thread-local storage, since a worker serves
 * the request it read before it reads the next one; opstat_reply() on the
 * same thread with the same unique id (or opstat_reply_spliced(): a
 * spliced reply, whose header devio cannot see) stops the clock and adds
 * the latency to the opcode's log2 histogram.  Replies sent from another thread and requests without
 * a reply (FORGET, BATCH_FORGET, INTERRUPT) are counted, not timed.
 *
 * The first reply of each kind of resource failure (out of descriptors,
 * memory or space, an I/O error) is logged, with the request that got it:
 * an operator finds in the log when and how the mount first ran short;
 * later ones are only counted (@errors per opcode), so a failing
 * workload cannot flood the log.
 *
 * Cost: two clock_gettime(CLOCK_MONOTONIC) calls (vDSO, tens of ns) and
 * five atomic adds per request.  Opcodes at or above
 * HMMFS_OPS_MAX (CUSE_INIT) are not counted.
 *
 * Locking: none.  The counters are atomics (sequentially consistent, so
 * a snapshot read against the writers' order stays self-consistent:
 * opstat_snapshot()).  devio.c counts a reply before writing it (once
 * written, its caller may read the counters) and logs a first failure
 * after (opstat_reply_sent()), so the log never delays the reply.
 */
#include "fs/opstat.h"
#include "include/opnames.h"
#include "log/log.h"
#include "lib/compiler.h"

#include <errno.h>
#include <linux/fuse.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

struct op_counter {
	_Atomic uint64_t count, errors, timed, total_ns;
	_Atomic uint64_t hist[HMMFS_OPS_BUCKETS];
};

static struct op_counter counters[HMMFS_OPS_MAX];
static atomic_bool enabled;

/* The request this thread serves: unique 0 when none is being timed. */
static __thread struct {
	uint64_t unique, start_ns;
	uint32_t opcode;
	int failed;	/* the errno of its reply, until logged */
} current;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The histogram bucket of a latency: floor(log2(us)), clamped. */
static unsigned int bucket_of(uint64_t ns)
{
	uint64_t us = ns / 1000;
	unsigned int b = us < 2 ? 0 : 63 - (unsigned int)__builtin_clzll(us);

	return b < HMMFS_OPS_BUCKETS ? b : HMMFS_OPS_BUCKETS - 1;
}

void opstat_enable(void)
{
	atomic_store(&enabled, true);
}

/* Requests the kernel expects no reply to. */
static bool has_reply(uint32_t opcode)
{
	return opcode != FUSE_FORGET && opcode != FUSE_BATCH_FORGET &&
	       opcode != FUSE_INTERRUPT && opcode != FUSE_NOTIFY_REPLY;
}

void opstat_request(uint32_t opcode, uint64_t unique)
{
	current.unique = 0;
	if (opcode >= HMMFS_OPS_MAX || !atomic_load_explicit(&enabled, memory_order_relaxed))
		return;
	atomic_fetch_add(&counters[opcode].count, 1);
	if (!has_reply(opcode))
		return;
	current.unique = unique;
	current.opcode = opcode;
	current.start_ns = now_ns();
}

/* The errors logged once each: running out of something, or BACKING failing. */
static const int logged_errors[] = { EMFILE, ENFILE, ENOMEM, ENOSPC, EDQUOT, EIO };
static atomic_bool logged[ARRAY_SIZE(logged_errors)];

/*
 * Log @err answered to @opcode if it is the first of its kind (log/log.h
 * says where it goes).
 */
static void log_first_failure(uint32_t opcode, int err)
{
	const char *op = hmmfs_op_names[opcode] ? hmmfs_op_names[opcode] : "request";
	char msg[256];

	for (size_t i = 0; i < ARRAY_SIZE(logged_errors); i++) {
		if (logged_errors[i] != err || atomic_exchange(&logged[i], true))
			continue;
		snprintf(msg, sizeof(msg), "a %s failed with %s (%s), the first "
			 "such failure; later ones are counted, not logged "
			 "(hmmfsctl stats: errors)", op, strerrorname_np(err),
			 strerror(err));
		log_warn("%s", msg);
		return;
	}
}

void opstat_reply(uint64_t unique, int32_t error)
{
	struct op_counter *c;
	uint64_t ns;

	if (!current.unique || unique != current.unique)
		return;
	c = &counters[current.opcode];
	current.unique = 0;
	ns = now_ns() - current.start_ns;
	atomic_fetch_add(&c->timed, 1);
	atomic_fetch_add(&c->errors, error < 0);
	atomic_fetch_add(&c->total_ns, ns);
	atomic_fetch_add(&c->hist[bucket_of(ns)], 1);
	if (error < 0)
		current.failed = -error;	/* logged by opstat_reply_sent() */
}

void opstat_reply_sent(void)
{
	int err = current.failed;

	if (!err)
		return;
	current.failed = 0;
	log_first_failure(current.opcode, err);
}

void opstat_reply_spliced(void)
{
	opstat_reply(current.unique, 0);
}

void opstat_snapshot(struct hmmfs_ioc_ops *out)
{
	memset(out, 0, sizeof(*out));
	out->version = HMMFS_IOC_VERSION;
	out->available = atomic_load(&enabled);
	for (unsigned int i = 0; i < HMMFS_OPS_MAX; i++) {
		struct op_counter *c = &counters[i];
		struct hmmfs_ioc_op *o = &out->op[i];

		/*
		 * Against the writers' order (count at the request; errors,
		 * timed, total, hist at the reply): a request that ends
		 * meanwhile can only make a later read larger, so the copy
		 * keeps sum(hist) <= timed <= count and errors <= timed.
		 */
		for (unsigned int b = 0; b < HMMFS_OPS_BUCKETS; b++)
			o->hist[b] = atomic_load(&c->hist[b]);
		o->total_ns = atomic_load(&c->total_ns);
		o->errors = atomic_load(&c->errors);
		o->timed = atomic_load(&c->timed);
		o->count = atomic_load(&c->count);
	}
}
