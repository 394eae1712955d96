/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/test_log_log.c — log/log.c: in system-log mode a line is one
 * datagram "<PRI>TIMESTAMP hmmfs[PID]: MOUNTPOINT: MESSAGE" with facility
 * daemon and the caller's level, on the socket $HMMFS_LOG_SOCKET names;
 * one call site prints at most LOG_BURST lines in a burst, log_print()
 * every line; a log that does not read loses lines (a send never waits)
 * and is told how many with the next line that gets through.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "log/log.h"
#include "tests/unit/unit.h"

static void noisy(int i)
{
	log_warn("message %d", i);
}

/* Datagrams waiting on @fd, the last one in @last. */
static int drain(int fd, char *last, size_t len)
{
	int n = 0;
	ssize_t got;

	while ((got = recv(fd, last, len - 1, MSG_DONTWAIT)) > 0) {
		last[got] = '\0';
		n++;
	}
	return n;
}

static void test_syslog_lines(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char path[] = "/tmp/hmmfs-unit-log.XXXXXX", sock[64], line[2048], want[64];
	int fd;

	CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(path));
	snprintf(sock, sizeof(sock), "%s/s", path);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_EQUAL_FATAL(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	setenv("HMMFS_LOG_SOCKET", sock, 1);
	log_init("/mnt/unit");
	log_to_syslog();
	for (int i = 0; i < 3 * LOG_BURST; i++)
		noisy(i);
	CU_ASSERT_EQUAL(drain(fd, line, sizeof(line)), LOG_BURST);
	snprintf(want, sizeof(want), "hmmfs[%d]: /mnt/unit: message %d",
		 (int)getpid(), LOG_BURST - 1);
	CU_ASSERT_PTR_NOT_NULL(strstr(line, want));
	CU_ASSERT_EQUAL(strncmp(line, "<28>", 4), 0);	/* daemon.warning */
	for (int i = 0; i < 3 * LOG_BURST; i++) {	/* read as sent */
		log_print(LOG_ERR, "data lost %d", i);
		CU_ASSERT_EQUAL(drain(fd, line, sizeof(line)), 1);
	}
	CU_ASSERT_EQUAL(strncmp(line, "<27>", 4), 0);	/* daemon.err */
	/* a log that does not read: lines lost, never a wait; then counted */
	for (int i = 0; i < 1000; i++)
		log_print(LOG_ERR, "unread %d", i);
	CU_ASSERT(drain(fd, line, sizeof(line)) < 1000);
	log_print(LOG_ERR, "after");
	CU_ASSERT_EQUAL(drain(fd, line, sizeof(line)), 2);
	CU_ASSERT_PTR_NOT_NULL(strstr(line, "after"));
	log_close();
	unsetenv("HMMFS_LOG_SOCKET");
	close(fd);
	unlink(sock);
	rmdir(path);
}

int register_log_log(void)
{
	static const CU_TestInfo tests[] = {
		{ "system log lines, rate limit", test_syslog_lines },
		CU_TEST_INFO_NULL,
	};

	return unit_add_suite("log", tests);
}
