/* SPDX-License-Identifier: MIT */
/*
 * ctl/hmmfsctl.c — the hmmfs control tool.
 *
 * Commands are rows of cmd_table[]: a name, a usage line and a handler.
 * Each command opens a file or directory of the mount and issues one of
 * the ioctls of fs/hmmfs_ioctl.h; FUSE forwards it to the daemon.  Errors
 * are printed with what was being done and exit with 1; bad usage exits 2.
 * The device-tier and dedupe commands (migrate, residency, devop, ksm)
 * arrive with those layers.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "fs/hmmfs_ioctl.h"

struct ctl_cmd {
	const char *name;
	const char *usage;
	const char *summary;
	int (*run)(int argc, char **argv);
};

static const struct ctl_cmd cmd_table[];

static void usage(FILE *out)
{
	fprintf(out,
		"usage: hmmfsctl COMMAND [ARGS...]\n"
		"       hmmfsctl --help | --version\n"
		"\n"
		"Control a mounted hmmfs file system.\n"
		"\n"
		"Commands:\n");
	for (const struct ctl_cmd *c = cmd_table; c->name; c++)
		fprintf(out, "  %-34s %s\n", c->usage, c->summary);
}

/* Open @path of a mount for an ioctl; directories too. */
static int open_target(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);

	if (fd < 0)
		fprintf(stderr, "hmmfsctl: %s: %s\n", path, strerror(errno));
	return fd;
}

static int ioctl_failed(const char *what, const char *path)
{
	if (errno == ENOTTY || errno == ENOSYS || errno == EINVAL)
		fprintf(stderr, "hmmfsctl: %s: %s: not an hmmfs mount (or a "
			"version without this command): %s\n", what, path,
			strerror(errno));
	else
		fprintf(stderr, "hmmfsctl: %s: %s: %s\n", what, path, strerror(errno));
	return 1;
}

static void stats_print_json(const struct hmmfs_ioc_stats *s)
{
	printf("{\"io_engine\":\"%s\",\"cache\":%s,\"page_size\":%llu,"
	       "\"host_cache\":%llu,\"host_pages\":%llu,\"dirty_pages\":%llu,"
	       "\"writeback_pages\":%llu,\"hits\":%llu,\"misses\":%llu,"
	       "\"readahead_pages\":%llu,\"evictions\":%llu,"
	       "\"writeback_bytes\":%llu,\"backing_reads\":%llu,"
	       "\"backing_writes\":%llu,\"throttled\":%llu}\n",
	       s->io_engine, s->cache_on ? "true" : "false",
	       (unsigned long long)s->page_size, (unsigned long long)s->host_cache,
	       (unsigned long long)s->host_pages, (unsigned long long)s->dirty_pages,
	       (unsigned long long)s->writeback_pages, (unsigned long long)s->hits,
	       (unsigned long long)s->misses, (unsigned long long)s->readahead_pages,
	       (unsigned long long)s->evictions,
	       (unsigned long long)s->writeback_bytes,
	       (unsigned long long)s->backing_reads,
	       (unsigned long long)s->backing_writes,
	       (unsigned long long)s->throttled);
}

static void stats_print_text(const struct hmmfs_ioc_stats *s)
{
	if (!s->cache_on) {
		printf("cache            off (host_cache=0)\n");
		return;
	}
	printf("io_engine        %s\n"
	       "page_size        %llu\n"
	       "host_cache       %llu bytes\n"
	       "host_pages       %llu\n"
	       "dirty_pages      %llu\n"
	       "writeback_pages  %llu\n"
	       "hits             %llu\n"
	       "misses           %llu\n"
	       "readahead_pages  %llu\n"
	       "evictions        %llu\n"
	       "writeback_bytes  %llu\n"
	       "backing_reads    %llu\n"
	       "backing_writes   %llu\n"
	       "throttled        %llu\n",
	       s->io_engine, (unsigned long long)s->page_size,
	       (unsigned long long)s->host_cache, (unsigned long long)s->host_pages,
	       (unsigned long long)s->dirty_pages,
	       (unsigned long long)s->writeback_pages, (unsigned long long)s->hits,
	       (unsigned long long)s->misses, (unsigned long long)s->readahead_pages,
	       (unsigned long long)s->evictions,
	       (unsigned long long)s->writeback_bytes,
	       (unsigned long long)s->backing_reads,
	       (unsigned long long)s->backing_writes,
	       (unsigned long long)s->throttled);
}

static int cmd_stats(int argc, char **argv)
{
	struct hmmfs_ioc_stats s;
	const char *path = NULL;
	int json = 0, fd;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			json = 1;
		else if (!path && argv[i][0] != '-')
			path = argv[i];
		else {
			fprintf(stderr, "hmmfsctl stats: unexpected '%s'\n", argv[i]);
			return 2;
		}
	}
	if (!path) {
		fprintf(stderr, "usage: hmmfsctl stats MOUNTPOINT [--json]\n");
		return 2;
	}
	fd = open_target(path);
	if (fd < 0)
		return 1;
	memset(&s, 0, sizeof(s));
	if (ioctl(fd, HMMFS_IOC_STATS, &s) < 0) {
		int ret = ioctl_failed("stats", path);

		close(fd);
		return ret;
	}
	close(fd);
	if (s.version != HMMFS_IOC_VERSION) {
		fprintf(stderr, "hmmfsctl: stats: %s: daemon speaks version %u, "
			"this tool %u\n", path, s.version, HMMFS_IOC_VERSION);
		return 1;
	}
	s.io_engine[sizeof(s.io_engine) - 1] = '\0';
	if (json)
		stats_print_json(&s);
	else
		stats_print_text(&s);
	return 0;
}

static int cmd_sync(int argc, char **argv)
{
	int fd, ret = 0;

	if (argc != 2 || argv[1][0] == '-') {
		fprintf(stderr, "usage: hmmfsctl sync PATH\n");
		return 2;
	}
	fd = open_target(argv[1]);
	if (fd < 0)
		return 1;
	if (ioctl(fd, HMMFS_IOC_SYNC) < 0)
		ret = ioctl_failed("sync", argv[1]);
	close(fd);
	return ret;
}

static const struct ctl_cmd cmd_table[] = {
	{ "stats", "stats MOUNTPOINT [--json]", "show the cache's counters",
	  cmd_stats },
	{ "sync", "sync PATH", "write back a file, or everything at the mount point",
	  cmd_sync },
	{ NULL, NULL, NULL, NULL },
};

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
		usage(stdout);
		return 0;
	}
	if (strcmp(argv[1], "-V") == 0 || strcmp(argv[1], "--version") == 0) {
		printf("hmmfsctl %s\n", HMMFS_VERSION);
		return 0;
	}
	for (const struct ctl_cmd *c = cmd_table; c->name; c++)
		if (strcmp(argv[1], c->name) == 0)
			return c->run(argc - 1, argv + 1);
	fprintf(stderr, "hmmfsctl: unknown command '%s'\n\n", argv[1]);
	usage(stderr);
	return 2;
}
