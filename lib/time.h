/* SPDX-License-Identifier: MIT */
/*
 * lib/time.h — the monotonic clock, in the units callers count in.
 *
 * mono_ns()/mono_ms(): CLOCK_MONOTONIC (a vDSO call, tens of ns), for
 * deadlines, latencies and ages.  mono_coarse_ns()/mono_coarse_ms():
 * CLOCK_MONOTONIC_COARSE, a few ns but only as fine as the scheduler's
 * tick, for rate limits and rechecks that happen on every request.
 */
#ifndef HMMFS_LIB_TIME_H
#define HMMFS_LIB_TIME_H

#include <stdint.h>
#include <time.h>

static inline uint64_t ts_ns(const struct timespec *ts)
{
	return (uint64_t)ts->tv_sec * 1000000000ull + (uint64_t)ts->tv_nsec;
}

static inline uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts_ns(&ts);
}

static inline uint64_t mono_ms(void)
{
	return mono_ns() / 1000000;
}

static inline uint64_t mono_coarse_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return ts_ns(&ts);
}

static inline uint64_t mono_coarse_ms(void)
{
	return mono_coarse_ns() / 1000000;
}

#endif
