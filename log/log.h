/* SPDX-License-Identifier: MIT */
/*
 * log/log.h — the daemon's messages, where an operator finds them.
 *
 * Until the daemon is in the background (and always with -f) a message
 * goes to stderr as "hmmfs: MESSAGE".  In the background stderr is
 * /dev/null, so it goes to the system log instead, facility daemon, as
 * "hmmfs[PID]: MOUNTPOINT: MESSAGE" with its level, so that one of
 * several mounts can be told apart (journalctl -t hmmfs, or
 * /var/log/syslog).  libfuse's own messages ("fuse: ...") take the same
 * way.
 *
 * Every call site is rate limited on its own: LOG_BURST messages per
 * LOG_INTERVAL_MS, then silence, and the next message it may print says
 * how many it held back.  A failing disk cannot flood the log, and one
 * noisy site does not silence the others.
 *
 * Usage: log_err("writeback of %s failed: %s", path, strerror(e));
 * (also log_warn, log_notice, log_info).  No newline at the end.
 * log_print(level, ...) is not rate limited: for lines that must each
 * reach the log, such as data lost, with its file and byte count.
 */
#ifndef HMMFS_LOG_LOG_H
#define HMMFS_LOG_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <syslog.h>

#define LOG_BURST 10
#define LOG_INTERVAL_MS 5000

/* One call site's rate limit; zero-initialised, guarded by log.c's lock. */
struct log_site {
	int64_t window_start_ms;
	unsigned int printed;
	uint64_t held_back;
};

/* Name the mount in every line from now on (@mountpoint must stay valid). */
void log_init(const char *mountpoint);
/*
 * A message of libfuse's ("fuse: ...\n", a syslog @level), rate limited
 * as one site; fs/main.c hands libfuse's log here (fuse_set_log_func), so
 * that log/ needs nothing but libc.
 */
void log_from_libfuse(int level, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));
/*
 * From now on to the system log (the socket of $HMMFS_LOG_SOCKET, or
 * /dev/log), connected now, while descriptors are there to connect with.
 */
void log_to_syslog(void);
void log_close(void);

/* Print at @level as @site allows (NULL: always). */
void log_site_print(struct log_site *site, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define log_print(level, ...) log_site_print(NULL, (level), __VA_ARGS__)

#define log_at(level, ...) do {						\
	static struct log_site log_site_;				\
	log_site_print(&log_site_, (level), __VA_ARGS__);		\
} while (0)

#define log_err(...) log_at(LOG_ERR, __VA_ARGS__)
#define log_warn(...) log_at(LOG_WARNING, __VA_ARGS__)
#define log_notice(...) log_at(LOG_NOTICE, __VA_ARGS__)
#define log_info(...) log_at(LOG_INFO, __VA_ARGS__)

#endif
