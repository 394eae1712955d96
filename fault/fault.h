/* SPDX-License-Identifier: MIT */
/*
 * fault/fault.h — fault injection: compiled in, off unless asked for.
 *
 * The daemon reads two environment variables at start (fault_init()):
 *
 *   HMMFS_FAULT=SPEC        rules active from the start
 *   HMMFS_FAULT_FILE=PATH   a file holding more rules, read again whenever
 *                           it changes (its inode, size, mtime or ctime),
 *                           so faults can be turned on and off at run time
 *                           without a remount; a missing file holds none
 *   HMMFS_FAULT_SEED=N      seed of the random choices of rate= (default:
 *                           the clock)
 *
 * SPEC is rules separated by ',', ';' or newlines ('#' starts a comment
 * in the file).  A rule is a point, then ':'-separated words:
 *
 *   backing_read[:ERR]      a read of a backing file fails (default eio)
 *   backing_write[:ERR]     a write of a backing file fails (default eio)
 *   backing_write:short     the engine stops a write half way (on a 4 KiB
 *                           boundary); io/io.c must finish it
 *   dev_alloc[:ERR]         device frame allocation fails (default enospc)
 *   dev_copy[:ERR]          queueing a device copy fails (default eio)
 *   bounce:starve           the bounce pool hands out one buffer at a time
 *   slow_io:ms=N            each backing read and write waits N ms first
 *   dev_lost                hostsim, opencl: the device is lost at an
 *                           operation, as when the runtime says so (use
 *                           after=N)
 *   cl_build                opencl: the kernels fail to compile at open
 *                           (a real compile error, with the build log)
 *
 * ERR is eio, enospc, enomem, edquot, efbig, erofs or eagain.  Words that
 * narrow or pace a rule:
 *
 *   rate=P       fire with probability P (0 < P <= 1; default 1)
 *   after=N      let the first N matching calls through
 *   count=N      fire at most N times (default: no limit)
 *   name=S       backing_*, slow_io: only files whose backing path
 *                contains S
 *   op=read|write  slow_io: only reads or only writes
 *   dir=h2d|d2h|d2d  dev_copy: only copies host to device, device to
 *                host, or device to device
 *
 * Example: HMMFS_FAULT="backing_write:enospc:name=/big,slow_io:ms=5".
 *
 * Cost when off: one relaxed atomic load per hook.  The first rule that
 * matches decides; slow_io rules only wait and let later rules decide.
 * A file that does not parse is ignored (the rules before it stay) and
 * the daemon says so on stderr.
 */
#ifndef HMMFS_FAULT_FAULT_H
#define HMMFS_FAULT_FAULT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

/* Where a hook sits. */
enum fault_point {
	FAULT_BACKING_READ,
	FAULT_BACKING_WRITE,
	FAULT_DEV_ALLOC,
	FAULT_DEV_COPY,
	FAULT_BOUNCE,
	FAULT_DEV_LOST,
	FAULT_CL_BUILD,
	FAULT_POINT_NR,
};

/* Device copy directions (dev_copy's dir=). */
enum fault_dir { FAULT_DIR_ANY, FAULT_DIR_H2D, FAULT_DIR_D2H, FAULT_DIR_D2D };

/* What fault_hit() asks the hook to do, besides failing with -errno. */
#define FAULT_SHORT	1	/* backing_write:short */
#define FAULT_STARVE	2	/* bounce:starve */

/**
 * struct fault_where - what the hook knows about the call.
 * @fd:  backing points: the backing file (for name=); -1 if none.
 * @dir: dev_copy: enum fault_dir of the copy.
 */
struct fault_where {
	int fd;
	enum fault_dir dir;
};

/*
 * Read HMMFS_FAULT, HMMFS_FAULT_FILE and HMMFS_FAULT_SEED.  Call once,
 * before any thread starts.  Return: 0 (also when nothing is set), or
 * -EINVAL with a message in @err.
 */
int fault_init(char *err, size_t errlen);

/*
 * Parse @spec alone, for tests and for checking a spec.  Return: 0 or
 * -EINVAL with a message in @err.
 */
int fault_spec_check(const char *spec, char *err, size_t errlen);

/* Non-zero once fault_init() found something to inject. */
extern atomic_int fault_enabled;

int fault_hit_slow(enum fault_point pt, const struct fault_where *w);

/*
 * fault_hit() - the hook: may the call at @pt go on?
 * Return: 0 (go on), -errno (fail the call with it), FAULT_SHORT or
 * FAULT_STARVE.  May sleep (slow_io).
 */
static inline int fault_hit(enum fault_point pt, const struct fault_where *w)
{
	/* relaxed: set once before any thread starts; the rules themselves
	 * are published with release in fault.c */
	if (!atomic_load_explicit(&fault_enabled, memory_order_relaxed))
		return 0;
	return fault_hit_slow(pt, w);
}

#endif
