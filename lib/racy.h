/* SPDX-License-Identifier: MIT */
/*
 * lib/racy.h — marking reads of page bytes that race with writers on
 * purpose.
 *
 * A page's bytes are read without its page lock, as Linux's filemap_read()
 * reads a folio: a read racing a write of the same bytes may return old
 * bytes, new bytes or a mix, and never freed memory (frames are freed after
 * an RCU grace period; see cache/rcu.h).  ThreadSanitizer would report
 * every such overlap, so in TSan builds the reading side ignores its own
 * accesses between racy_read_begin() and racy_read_end(): keep that span
 * to the copy of page bytes alone.
 */
#ifndef HMMFS_LIB_RACY_H
#define HMMFS_LIB_RACY_H

#if defined(__SANITIZE_THREAD__)
void __tsan_ignore_thread_begin(void);
void __tsan_ignore_thread_end(void);
#define racy_read_begin() __tsan_ignore_thread_begin()
#define racy_read_end() __tsan_ignore_thread_end()
#else
#define racy_read_begin() do { } while (0)
#define racy_read_end() do { } while (0)
#endif

#endif
