/* SPDX-License-Identifier: MIT */
/* fs/opstat.h — per-opcode request counters and latencies (opstat.c). */
#ifndef HMMFS_FS_OPSTAT_H
#define HMMFS_FS_OPSTAT_H

#include "include/hmmfs_ioctl.h"
#include <stdbool.h>
#include <stdint.h>

/* devio.c read a request: count it and start its clock on this thread. */
void opstat_request(uint32_t opcode, uint64_t unique);

/* devio.c wrote a reply with status @error (0 or -errno) for @unique. */
void opstat_reply(uint64_t unique, int32_t error);

/* devio.c spliced a reply, whose header it cannot see: this thread's. */
void opstat_reply_spliced(void);

/* The reply counted last on this thread is written: log what it failed. */
void opstat_reply_sent(void);

/* Start counting (devio.c sees the requests); until then all stay 0. */
void opstat_enable(void);

/* A copy of the counters, for HMMFS_IOC_OPS. */
void opstat_snapshot(struct hmmfs_ioc_ops *out);

#endif
