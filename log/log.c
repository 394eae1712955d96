/* SPDX-License-Identifier: MIT */
/*
 * log/log.c — messages to stderr, then to the system log; rate limited.
 *
 * The system log is reached as syslog(3) reaches it, by one datagram per
 * message ("<PRIORITY>TIMESTAMP hmmfs[PID]: MOUNTPOINT: MESSAGE") on the
 * Unix socket /dev/log, but sent here rather than through syslog(3) so
 * that the socket can be named ($HMMFS_LOG_SOCKET: the tests listen on
 * one of their own) and is connected once, when the daemon goes to the
 * background: a message about running out of descriptors must not need
 * one.  Without a listener (no syslog daemon) a message is lost, as with
 * syslog(3); the socket is reconnected at the next message after a
 * failed send, at most once per LOG_INTERVAL_MS.  A send never waits: a
 * log daemon that does not read (its queue full) loses lines rather than
 * stopping the file system, and the next line that gets through says how
 * many were lost.
 *
 * Rate limit (log.h): each call site counts its messages in windows of
 * LOG_INTERVAL_MS; past LOG_BURST in one window they are held back and
 * counted, and the first one printed in a later window says how many.
 *
 * Locking: one mutex, @log_lock, guards the sites' counters, the socket
 * and the mode; nothing else is taken under it.  Messages are rare.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "log/log.h"
#include "lib/time.h"

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static const char *log_mnt;	/* the mount point, for every line */
static bool log_syslog;		/* else stderr */
static int log_fd = -1;		/* the connected syslog socket */
static int64_t log_retry_ms;	/* no reconnect before this */
static uint64_t log_dropped;	/* lines the log's full queue refused */

static int64_t now_ms(void)
{
	return (int64_t)mono_ms();
}

/* Connect to the syslog socket.  Context: log_lock held. */
static void log_connect(void)
{
	const char *path = getenv("HMMFS_LOG_SOCKET");
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	if (!path || !*path)
		path = "/dev/log";
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (log_fd < 0)
		log_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (log_fd >= 0 && connect(log_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(log_fd);
		log_fd = -1;
	}
	log_retry_ms = now_ms() + LOG_INTERVAL_MS;
}

/* One datagram; false if it was not sent.  Context: log_lock held. */
static bool syslog_send_one(int level, const char *msg)
{
	char line[2048], stamp[32];
	time_t t = time(NULL);
	struct tm tm;
	int n;

	strftime(stamp, sizeof(stamp), "%b %e %H:%M:%S", localtime_r(&t, &tm));
	n = snprintf(line, sizeof(line), "<%d>%s hmmfs[%d]: %s%s%s",
		     LOG_DAEMON | level, stamp, (int)getpid(),
		     log_mnt ? log_mnt : "", log_mnt ? ": " : "", msg);
	if (n >= (int)sizeof(line))
		n = sizeof(line) - 1;
	if (send(log_fd, line, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) == n)
		return true;
	if (errno != EAGAIN) {
		close(log_fd);	/* the log daemon restarted, or is gone */
		log_fd = -1;
	}
	return false;
}

/* Send one line to the system log.  Context: log_lock held. */
static void syslog_send(int level, const char *msg)
{
	char note[96];

	if (log_fd < 0 && now_ms() >= log_retry_ms)
		log_connect();
	if (log_fd < 0)
		return;
	if (log_dropped) {
		snprintf(note, sizeof(note), "(%llu lines were lost: the system "
			 "log did not take them)", (unsigned long long)log_dropped);
		if (!syslog_send_one(LOG_WARNING, note))
			goto dropped;
		log_dropped = 0;
	}
	if (syslog_send_one(level, msg))
		return;
dropped:
	log_dropped++;
}

/* Context: log_lock held. */
static void log_emit(int level, const char *msg)
{
	if (log_syslog)
		syslog_send(level, msg);
	else
		fprintf(stderr, "hmmfs: %s\n", msg);
}

/*
 * May @site print now?  Sets *@held to the messages it held back before.
 * Context: log_lock held.
 */
static bool site_may_print(struct log_site *site, uint64_t *held)
{
	int64_t now = now_ms();

	*held = 0;
	if (now - site->window_start_ms >= LOG_INTERVAL_MS) {
		site->window_start_ms = now;
		site->printed = 0;
	}
	if (site->printed >= LOG_BURST) {
		site->held_back++;
		return false;
	}
	site->printed++;
	*held = site->held_back;
	site->held_back = 0;
	return true;
}

void log_site_print(struct log_site *site, int level, const char *fmt, ...)
{
	char msg[1536], note[96];
	uint64_t held;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&log_lock);
	if (!site) {
		log_emit(level, msg);
	} else if (site_may_print(site, &held)) {
		if (held) {
			snprintf(note, sizeof(note), "(%llu more like the next "
				 "were not logged)", (unsigned long long)held);
			log_emit(level, note);
		}
		log_emit(level, msg);
	}
	pthread_mutex_unlock(&log_lock);
}

void log_from_libfuse(int level, const char *fmt, va_list ap)
{
	static struct log_site site;
	char msg[1024];
	size_t n;
	uint64_t held;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n && msg[n - 1] == '\n')
		msg[--n] = '\0';
	pthread_mutex_lock(&log_lock);
	if (site_may_print(&site, &held)) {
		if (log_syslog)
			syslog_send(level, msg);
		else
			fprintf(stderr, "%s\n", msg);
	}
	pthread_mutex_unlock(&log_lock);
}

void log_init(const char *mountpoint)
{
	pthread_mutex_lock(&log_lock);
	log_mnt = mountpoint;
	pthread_mutex_unlock(&log_lock);
}

void log_to_syslog(void)
{
	pthread_mutex_lock(&log_lock);
	log_connect();
	log_syslog = true;
	pthread_mutex_unlock(&log_lock);
}

void log_close(void)
{
	pthread_mutex_lock(&log_lock);
	if (log_fd >= 0)
		close(log_fd);
	log_fd = -1;
	log_syslog = false;
	pthread_mutex_unlock(&log_lock);
}
