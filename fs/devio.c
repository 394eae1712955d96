/* SPDX-License-Identifier: MIT */
/*
 * fs/devio.c — our own reads and writes of /dev/fuse, for what libfuse
 * 3.14 does not pass on.
 *
 * FUSE_HANDLE_KILLPRIV_V2 (Linux 5.11) makes the file server clear the
 * setuid and setgid bits on write, truncate and O_TRUNC open by a caller
 * without CAP_FSETID, and in return the kernel marks the mount SB_NOSEC:
 * it then asks for security.capability once per attribute refresh, not
 * before every write(2).  With the writeback cache that getxattr round
 * trip is the whole cost of a small write (rand 4k: 146 MB/s with it,
 * 1,565 MB/s without, docs/performance.md).  libfuse 3.14 neither offers
 * the flag nor passes on the request bits that go with it
 * (FUSE_WRITE_KILL_SUIDGID, FUSE_OPEN_KILL_SUIDGID, FATTR_KILL_SUIDGID).
 *
 * libfuse 3.14 does let a daemon do the device I/O itself
 * (fuse_session_custom_io).  devio_install() hands it two functions over
 * the same descriptor, installed before the kernel's INIT is read:
 *   devio_read():   read(2) one request; remember INIT's unique id and
 *                   whether the kernel offers KILLPRIV_V2, and for WRITE,
 *                   OPEN, CREATE and SETATTR the kill bit, in a thread-
 *                   local word (a worker reads a request and serves it on
 *                   the same thread, before its next read);
 *   devio_writev(): writev(2) one reply; the reply to INIT gets
 *                   FUSE_HANDLE_KILLPRIV_V2 added when offered.
 * splice_send is plain splice(2), so replies still move pages; requests
 * are never spliced in (libfuse only splices them in when asked to).
 * Both ends of every request also feed the per-opcode counters and
 * latencies of opstat.c (hmmfsctl stats).
 * ops_attr.c asks devio_kill_suidgid() and clears the bits (kill_setid()).
 *
 * Locking: INIT is the first request and is served before any other is
 * read; its fields are atomics anyway.  The rest is thread-local.
 */
#include "fs/devio.h"
#include "fs/opstat.h"
#include "lib/compiler.h"

#include <errno.h>
#include <linux/fuse.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

static _Atomic uint64_t init_unique;	/* 0: INIT not seen or answered */
static _Atomic bool init_offers_v2;
static _Atomic bool v2_wanted;
static __thread bool req_kill;		/* the request being served */

/* Where each request that may carry the kill bit keeps it (a u32). */
static const struct kill_field {
	uint32_t opcode;
	size_t size, off;	/* of the argument, of the field in it */
	uint32_t mask;
} kill_fields[] = {
	{ FUSE_WRITE, sizeof(struct fuse_write_in),
	  offsetof(struct fuse_write_in, write_flags), FUSE_WRITE_KILL_SUIDGID },
	{ FUSE_OPEN, sizeof(struct fuse_open_in),
	  offsetof(struct fuse_open_in, open_flags), FUSE_OPEN_KILL_SUIDGID },
	{ FUSE_CREATE, sizeof(struct fuse_create_in),
	  offsetof(struct fuse_create_in, open_flags), FUSE_OPEN_KILL_SUIDGID },
	{ FUSE_SETATTR, sizeof(struct fuse_setattr_in),
	  offsetof(struct fuse_setattr_in, valid), FATTR_KILL_SUIDGID },
};

/* The kill bit of one request, from its argument after the header. */
static bool request_kill(uint32_t opcode, const char *arg, size_t len)
{
	for (size_t i = 0; i < ARRAY_SIZE(kill_fields); i++) {
		const struct kill_field *k = &kill_fields[i];
		uint32_t v;

		if (k->opcode != opcode)
			continue;
		if (len < k->size)
			return false;
		memcpy(&v, arg + k->off, sizeof(v));
		return v & k->mask;
	}
	return false;
}

static void note_init(const struct fuse_in_header *h, const char *arg,
		      size_t len)
{
	struct fuse_init_in in;

	if (len < offsetof(struct fuse_init_in, flags) + sizeof(in.flags))
		return;
	memset(&in, 0, sizeof(in));
	memcpy(&in, arg, len < sizeof(in) ? len : sizeof(in));
	atomic_store(&init_offers_v2, in.flags & FUSE_HANDLE_KILLPRIV_V2);
	atomic_store(&init_unique, h->unique);
}

/*
 * Note what a request read into @buf (@n bytes) carries.  Not inlined:
 * libfuse cancels idle workers inside read(2), and the cancellation
 * unwinds devio_read()'s frame without ASan unpoisoning its locals, so
 * that frame holds none (the thread's exit handlers then run on that
 * stack and would trip over stale poison).
 */
static __attribute__((noinline)) void note_request(const void *buf, ssize_t n)
{
	struct fuse_in_header h;

	req_kill = false;
	if (n < (ssize_t)sizeof(h))
		return;
	memcpy(&h, buf, sizeof(h));
	opstat_request(h.opcode, h.unique);
	if (h.opcode == FUSE_INIT)
		note_init(&h, (const char *)buf + sizeof(h), (size_t)n - sizeof(h));
	else
		req_kill = request_kill(h.opcode, (const char *)buf + sizeof(h),
					(size_t)n - sizeof(h));
}

static ssize_t devio_read(int fd, void *buf, size_t len, void *userdata)
{
	ssize_t n = read(fd, buf, len);

	(void)userdata;
	note_request(buf, n);
	return n;
}

/* The INIT reply, with KILLPRIV_V2 added: a copy, libfuse's stays. */
static ssize_t init_reply(int fd, struct iovec *iov, int count)
{
	struct fuse_init_out out;
	struct iovec v[count];

	memcpy(v, iov, sizeof(v));
	memset(&out, 0, sizeof(out));
	memcpy(&out, iov[1].iov_base,
	       iov[1].iov_len < sizeof(out) ? iov[1].iov_len : sizeof(out));
	out.flags |= FUSE_HANDLE_KILLPRIV_V2;
	v[1].iov_base = &out;
	return writev(fd, v, count);
}

/* Is this reply the one to INIT, to be given KILLPRIV_V2?  (Not inlined,
 * for the reason note_request() gives: writev(2) may be cancelled too.) */
static __attribute__((noinline)) bool init_reply_to_patch(const struct iovec *iov,
							    int count)
{
	uint64_t unique = atomic_load(&init_unique);
	struct fuse_out_header h;

	if (!unique || count < 2 || iov[0].iov_len < sizeof(h) ||
	    iov[1].iov_len < offsetof(struct fuse_init_out, flags) + sizeof(uint32_t))
		return false;
	memcpy(&h, iov[0].iov_base, sizeof(h));
	if (h.unique != unique)
		return false;
	atomic_store(&init_unique, 0);
	return h.error == 0 && atomic_load(&init_offers_v2) &&
	       atomic_load(&v2_wanted);
}

/* Stop the clock of the request this reply answers (opstat.c). */
static __attribute__((noinline)) void note_reply(const struct iovec *iov, int count)
{
	struct fuse_out_header h;

	if (count < 1 || iov[0].iov_len < sizeof(h))
		return;
	memcpy(&h, iov[0].iov_base, sizeof(h));
	if (h.unique)	/* 0: a notification */
		opstat_reply(h.unique, h.error);
}

static ssize_t devio_writev(int fd, struct iovec *iov, int count,
			    void *userdata)
{
	ssize_t n;

	(void)userdata;
	note_reply(iov, count);
	if (init_reply_to_patch(iov, count))
		n = init_reply(fd, iov, count);	/* once, at mount */
	else
		n = writev(fd, iov, count);
	opstat_reply_sent();
	return n;
}

static ssize_t devio_splice_send(int fdin, off_t *offin, int fdout,
				 off_t *offout, size_t len, unsigned int flags,
				 void *userdata)
{
	(void)userdata;
	opstat_reply_spliced();
	return splice(fdin, offin, fdout, offout, len, flags);
}

int devio_install(struct fuse_session *se, bool killpriv_v2)
{
	static const struct fuse_custom_io io = {
		.read = devio_read,
		.writev = devio_writev,
		.splice_send = devio_splice_send,
	};
	int ret;

	atomic_store(&v2_wanted, killpriv_v2);
	ret = fuse_session_custom_io(se, &io, fuse_session_fd(se));
	if (!ret)
		opstat_enable();
	return ret;
}

bool devio_kill_suidgid(void)
{
	return req_kill;
}
