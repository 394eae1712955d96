/* SPDX-License-Identifier: MIT */
/*
 * ctl/hmmfsctl.c — the hmmfs control tool.
 *
 * Commands are rows of cmd_table[]: a name, a usage line and a handler.
 * Each command opens a file or directory of the mount and issues one of
 * the ioctls of include/hmmfs_ioctl.h; FUSE forwards it to the daemon.  Errors
 * are printed with what was being done and exit with 1; bad usage exits 2.
 * Range commands (migrate, devop, residency) take --offset and --length
 * as sizes (util/size.h), the value after a space or an '='.  "hmmfsctl
 * COMMAND --help" prints that command's usage.  The daemon does a bounded amount of a
 * migrate or devop per ioctl and says where to go on (@next): the tool
 * asks again from there until the range is done, with a progress bar
 * for a migration of more than one step when stderr is a terminal.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "include/hmmfs_ioctl.h"
#include "include/opnames.h"
#include "util/size.h"
#include "lib/compiler.h"

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

/* Open a regular file of the mount with @flags. */
static int open_file(const char *path, int flags)
{
	struct stat st;
	int fd = open(path, flags | O_CLOEXEC);

	if (fd < 0) {
		fprintf(stderr, "hmmfsctl: %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		fprintf(stderr, "hmmfsctl: %s: not a regular file\n", path);
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * What the mount of @path lacks for a command that failed with ENODEV:
 * its page cache (host_cache=0) or its device tier (device=none).
 */
static const char *mount_lacks(const char *path)
{
	struct hmmfs_ioc_stats st = { .version = HMMFS_IOC_VERSION };
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	int ret = fd < 0 ? -1 : ioctl(fd, HMMFS_IOC_STATS, &st);

	if (fd >= 0)
		close(fd);
	if (ret < 0)
		return NULL;
	if (!st.cache_on)
		return "no page cache (mounted with host_cache=0)";
	if (!strcmp(st.device, "none"))
		return "no device tier (mounted with device=none)";
	return NULL;
}

/* One message for an ioctl that failed with errno; exit status 1. */
static int ioctl_failed(const char *what, const char *path)
{
	int err = errno;
	const char *lacks = err == ENODEV ? mount_lacks(path) : NULL;

	if (err == ENOTTY || err == ENOSYS || err == EINVAL)
		fprintf(stderr, "hmmfsctl: %s: %s: not an hmmfs mount (or a "
			"version without this command): %s\n", what, path,
			strerror(err));
	else if (lacks)
		fprintf(stderr, "hmmfsctl: %s: %s: the mount has %s\n", what,
			path, lacks);
	else
		fprintf(stderr, "hmmfsctl: %s: %s: %s\n", what, path, strerror(err));
	return 1;
}

/* An offset past EOF is an error of every range command, said one way. */
static int offset_past_end(const char *what, const char *path, uint64_t off,
			   const struct stat *st)
{
	if (off <= (uint64_t)st->st_size)
		return 0;
	fprintf(stderr, "hmmfsctl: %s: %s: offset %llu is past the end of the "
		"file (%lld bytes)\n", what, path, (unsigned long long)off,
		(long long)st->st_size);
	return 1;
}

#define STAT(name) { #name, offsetof(struct hmmfs_ioc_stats, name) }

/* The counters, in the order they are printed. */
static const struct {
	const char *name;
	size_t off;
} stat_fields[] = {
	STAT(page_size), STAT(host_cache), STAT(host_pages), STAT(dirty_pages),
	STAT(writeback_pages), STAT(hits), STAT(misses), STAT(readahead_pages),
	STAT(evictions), STAT(writeback_bytes), STAT(backing_reads),
	STAT(backing_writes), STAT(throttled), STAT(device_cache),
	STAT(device_frames), STAT(device_pages), STAT(migrations_to_device),
	STAT(migrations_to_host), STAT(bounce_reads), STAT(bounce_writes),
	STAT(bounce_waits), STAT(device_faults), STAT(device_evictions),
	STAT(thrash_holds), STAT(host_frames_used), STAT(device_frames_used),
	STAT(device_frames_hwm), STAT(files_cached), STAT(files_detached),
	STAT(fds_open), STAT(fd_reopens), STAT(writeback_errors),
	STAT(dirty_pages_stuck), STAT(written_bytes), STAT(device_copy_sync),
	STAT(device_copy_async),
	STAT(device_readahead),
};

static const char *const ksm_knob_names[HMMFS_KSM_NR_KNOBS] = {
	[HMMFS_KSM_RUN] = "run",
	[HMMFS_KSM_PAGES_TO_SCAN] = "pages_to_scan",
	[HMMFS_KSM_SLEEP_MILLISECS] = "sleep_millisecs",
	[HMMFS_KSM_MAX_PAGE_SHARING] = "max_page_sharing",
	[HMMFS_KSM_USE_ZERO_PAGES] = "use_zero_pages",
	[HMMFS_KSM_MERGE_ACROSS_TIERS] = "merge_across_tiers",
};

#define KSTAT(name) { #name, offsetof(struct hmmfs_ioc_ksm, name) }

static const struct {
	const char *name;
	size_t off;
} ksm_fields[] = {
	KSTAT(pages_shared), KSTAT(pages_sharing), KSTAT(pages_unshared),
	KSTAT(pages_volatile), KSTAT(full_scans), KSTAT(cow_breaks),
	KSTAT(zero_pages), KSTAT(pages_scanned), KSTAT(saved_host_bytes),
	KSTAT(saved_device_bytes),
};

static unsigned long long ksm_value(const struct hmmfs_ioc_ksm *k, size_t i)
{
	uint64_t v;

	memcpy(&v, (const char *)k + ksm_fields[i].off, sizeof(v));
	return (unsigned long long)v;
}

/* The knobs and counters as one JSON object. */
static void ksm_print_json(const struct hmmfs_ioc_ksm *k)
{
	printf("{");
	for (size_t i = 0; i < HMMFS_KSM_NR_KNOBS; i++)
		printf("%s\"%s\":%u", i ? "," : "", ksm_knob_names[i], k->knobs[i]);
	for (size_t i = 0; i < ARRAY_SIZE(ksm_fields); i++)
		printf(",\"%s\":%llu", ksm_fields[i].name, ksm_value(k, i));
	printf("}");
}

/*
 * The latency under which @pct percent of an opcode's timed requests
 * finished, as the upper edge of its histogram bucket in microseconds;
 * 0 for the last, open bucket (more than its lower edge).
 */
static unsigned long long op_percentile_us(const struct hmmfs_ioc_op *o,
					   unsigned int pct)
{
	uint64_t want = (o->timed * pct + 99) / 100, seen = 0;

	for (unsigned int b = 0; b < HMMFS_OPS_BUCKETS; b++) {
		seen += o->hist[b];
		if (seen >= want && want)
			return b + 1 < HMMFS_OPS_BUCKETS ? 2ull << b : 0;
	}
	return 0;
}

static const char *op_name(unsigned int i, char *buf, size_t len)
{
	if (hmmfs_op_names[i])
		return hmmfs_op_names[i];
	snprintf(buf, len, "op%u", i);
	return buf;
}

static unsigned long long op_mean_us(const struct hmmfs_ioc_op *o)
{
	return o->timed ? (unsigned long long)(o->total_ns / o->timed / 1000) : 0;
}

/* "p99 <= 64" or, in the last bucket, "p99 > 2097152": the text form. */
static void op_print_pct(const struct hmmfs_ioc_op *o, unsigned int pct)
{
	unsigned long long us = op_percentile_us(o, pct);

	if (!o->timed)
		printf(" %10s", "-");
	else if (us)
		printf(" %10llu", us);
	else
		printf(" %9s+", "2097152");
}

static void ops_print_text(const struct hmmfs_ioc_ops *ops)
{
	char buf[16];

	printf("\n%-16s %12s %10s %10s %10s %10s\n", "operation", "count",
	       "errors", "mean_us", "p50_us<=", "p99_us<=");
	for (unsigned int i = 0; i < HMMFS_OPS_MAX; i++) {
		const struct hmmfs_ioc_op *o = &ops->op[i];

		if (!o->count)
			continue;
		printf("%-16s %12llu %10llu %10llu", op_name(i, buf, sizeof(buf)),
		       (unsigned long long)o->count, (unsigned long long)o->errors,
		       op_mean_us(o));
		op_print_pct(o, 50);
		op_print_pct(o, 99);
		printf("\n");
	}
}

/* ,"ops":{"lookup":{...},...}: every opcode seen, with its histogram. */
static void ops_print_json(const struct hmmfs_ioc_ops *ops)
{
	const char *sep = "";
	char buf[16];

	printf(",\"ops\":{");
	for (unsigned int i = 0; i < HMMFS_OPS_MAX; i++) {
		const struct hmmfs_ioc_op *o = &ops->op[i];

		if (!o->count)
			continue;
		printf("%s\"%s\":{\"count\":%llu,\"timed\":%llu,\"errors\":%llu,"
		       "\"total_ns\":%llu,\"mean_us\":%llu,\"hist_us_log2\":[", sep,
		       op_name(i, buf, sizeof(buf)), (unsigned long long)o->count,
		       (unsigned long long)o->timed, (unsigned long long)o->errors,
		       (unsigned long long)o->total_ns, op_mean_us(o));
		for (unsigned int b = 0; b < HMMFS_OPS_BUCKETS; b++)
			printf("%s%llu", b ? "," : "", (unsigned long long)o->hist[b]);
		printf("]}");
		sep = ",";
	}
	printf("}");
}

/* The opcode counters, if the daemon has them (0: it has). */
static int ops_get(int fd, struct hmmfs_ioc_ops *ops)
{
	memset(ops, 0, sizeof(*ops));
	if (ioctl(fd, HMMFS_IOC_OPS, ops) < 0 || ops->version != HMMFS_IOC_VERSION ||
	    !ops->available)
		return -1;
	return 0;
}

static unsigned long long stat_value(const struct hmmfs_ioc_stats *s, size_t i)
{
	uint64_t v;

	memcpy(&v, (const char *)s + stat_fields[i].off, sizeof(v));
	return (unsigned long long)v;
}

/* @n bytes as "8.0 MiB" (binary units, one decimal). */
static const char *human(uint64_t n, char buf[24])
{
	static const char *const unit[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB" };
	double v = (double)n;
	unsigned int u = 0;

	while (v >= 1024 && u + 1 < ARRAY_SIZE(unit))
		v /= 1024, u++;
	if (u)
		snprintf(buf, 24, "%.1f %s", v, unit[u]);
	else
		snprintf(buf, 24, "%llu B", (unsigned long long)n);
	return buf;
}

/* @s (at most @max bytes, maybe not NUL-terminated) as a JSON string. */
static void json_string(const char *s, size_t max)
{
	putchar('"');
	for (size_t i = 0; i < max && s[i]; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch == '"' || ch == '\\')
			printf("\\%c", ch);
		else if (ch < 0x20)
			printf("\\u%04x", ch);
		else
			putchar(ch);
	}
	putchar('"');
}

static void devices_print_json(const struct hmmfs_ioc_devices *d)
{
	printf(",\"devices\":[");
	for (uint32_t k = 0; k < d->count && k < HMMFS_MAX_DEVICES; k++) {
		const struct hmmfs_ioc_device *x = &d->dev[k];

		printf("%s{\"id\":%u,\"pages\":%llu,\"frames\":%llu,\"frames_used\":%llu,"
		       "\"frames_hwm\":%llu,\"copies_in\":%llu,\"copies_out\":%llu,"
		       "\"faults\":%llu,\"replicas\":%llu,\"replicas_dropped\":%llu,"
		       "\"peer_in\":%llu,\"staged_in\":%llu,\"name\":",
		       k ? "," : "", k, (unsigned long long)x->pages,
		       (unsigned long long)x->frames, (unsigned long long)x->frames_used,
		       (unsigned long long)x->frames_hwm, (unsigned long long)x->copies_in,
		       (unsigned long long)x->copies_out, (unsigned long long)x->faults,
		       (unsigned long long)x->replicas,
		       (unsigned long long)x->replicas_dropped,
		       (unsigned long long)x->peer_in, (unsigned long long)x->staged_in);
		json_string(x->name, sizeof(x->name));
		printf("}");
	}
	printf("]");
}

/* Each device's name; with several devices, or replicas, its counters. */
static void devices_print_text(const struct hmmfs_ioc_devices *d, uint64_t ps)
{
	bool show = d->count > 1 || (d->count == 1 && (d->dev[0].replicas ||
						       d->dev[0].replicas_dropped));
	char a[24];

	for (uint32_t k = 0; k < d->count && k < HMMFS_MAX_DEVICES; k++) {
		const struct hmmfs_ioc_device *x = &d->dev[k];
		char name[16];

		snprintf(name, sizeof(name), "device %u", k);
		if (!show) {
			printf("%-12s on %.*s\n", name, (int)sizeof(x->name), x->name);
			continue;
		}
		printf("%-12s cached %s (%llu pages, %llu replicas; frames %llu of %llu "
		       "in use), copies in %llu (from devices: peer %llu, via host "
		       "%llu), out %llu, faults %llu, replicas dropped %llu\n", name,
		       human(x->pages * ps, a),
		       (unsigned long long)x->pages, (unsigned long long)x->replicas,
		       (unsigned long long)x->frames_used, (unsigned long long)x->frames,
		       (unsigned long long)x->copies_in, (unsigned long long)x->peer_in,
		       (unsigned long long)x->staged_in, (unsigned long long)x->copies_out,
		       (unsigned long long)x->faults,
		       (unsigned long long)x->replicas_dropped);
		printf("%-12s on %.*s\n", "", (int)sizeof(x->name), x->name);
	}
}

static void stats_print_json(const struct hmmfs_ioc_stats *s,
			     const struct hmmfs_ioc_ksm *k,
			     const struct hmmfs_ioc_ops *ops,
			     const struct hmmfs_ioc_devices *dv)
{
	printf("{\"io_engine\":\"%s\",\"cache\":%s,\"device\":\"%s\","
	       "\"migrate\":\"%s\"", s->io_engine, s->cache_on ? "true" : "false",
	       s->device, s->migrate);
	for (size_t i = 0; i < ARRAY_SIZE(stat_fields); i++)
		printf(",\"%s\":%llu", stat_fields[i].name, stat_value(s, i));
	if (k) {
		printf(",\"ksm\":");
		ksm_print_json(k);
	}
	if (ops)
		ops_print_json(ops);
	if (dv)
		devices_print_json(dv);
	printf("}\n");
}

/*
 * The text form: counters grouped as an operator looks for them, sizes
 * in binary units, the hit ratio worked out.  Scripts read --json.
 */
static void stats_print_groups(const struct hmmfs_ioc_stats *s,
			       const struct hmmfs_ioc_devices *dv)
{
	uint64_t ps = s->page_size, looked = s->hits + s->misses;
	char a[24], b[24], c[24], d[24];

	printf("hmmfs: io_engine %s, device %s, migrate %s, page %s\n\n",
	       s->io_engine, s->device, s->migrate, human(ps, a));
	printf("%-12s cached %s of %s (%llu pages, %llu frames in use)\n", "host tier",
	       human(s->host_pages * ps, a), human(s->host_cache, b),
	       (unsigned long long)s->host_pages, (unsigned long long)s->host_frames_used);
	printf("%-12s hits %llu, misses %llu, hit ratio %.1f%%, readahead %llu "
	       "pages, evictions %llu\n", "",
	       (unsigned long long)s->hits, (unsigned long long)s->misses,
	       looked ? 100.0 * (double)s->hits / (double)looked : 100.0,
	       (unsigned long long)s->readahead_pages, (unsigned long long)s->evictions);
	printf("%-12s dirty %s, under writeback %s, stuck %llu pages, errors %llu, "
	       "throttled %llu\n", "writeback", human(s->dirty_pages * ps, a),
	       human(s->writeback_pages * ps, b), (unsigned long long)s->dirty_pages_stuck,
	       (unsigned long long)s->writeback_errors, (unsigned long long)s->throttled);
	printf("%-12s written in %s, written back %s; BACKING reads %llu, writes %llu\n",
	       "", human(s->written_bytes, a), human(s->writeback_bytes, b),
	       (unsigned long long)s->backing_reads, (unsigned long long)s->backing_writes);
	if (strcmp(s->device, "none")) {
		printf("%-12s cached %s of %s (%llu pages; frames %llu of %llu in use, "
		       "at most %llu)\n", "device tier", human(s->device_pages * ps, c),
		       human(s->device_cache, d), (unsigned long long)s->device_pages,
		       (unsigned long long)s->device_frames_used,
		       (unsigned long long)s->device_frames,
		       (unsigned long long)s->device_frames_hwm);
		printf("%-12s to device %llu, to host %llu, faults %llu, evictions %llu, "
		       "thrash holds %llu\n", "", (unsigned long long)s->migrations_to_device,
		       (unsigned long long)s->migrations_to_host,
		       (unsigned long long)s->device_faults,
		       (unsigned long long)s->device_evictions,
		       (unsigned long long)s->thrash_holds);
		printf("%-12s reads %llu, writes %llu, waits %llu; copy batches: fast "
		       "path %llu, engine %llu; read ahead %llu pages\n", "bounce",
		       (unsigned long long)s->bounce_reads, (unsigned long long)s->bounce_writes,
		       (unsigned long long)s->bounce_waits,
		       (unsigned long long)s->device_copy_sync,
		       (unsigned long long)s->device_copy_async,
		       (unsigned long long)s->device_readahead);
		if (dv)
			devices_print_text(dv, ps);
	}
	printf("%-12s cached %llu (the kernel forgot %llu), backing descriptors %llu, "
	       "reopened %llu\n", "files", (unsigned long long)s->files_cached,
	       (unsigned long long)s->files_detached, (unsigned long long)s->fds_open,
	       (unsigned long long)s->fd_reopens);
}

static void stats_print_text(const struct hmmfs_ioc_stats *s,
			     const struct hmmfs_ioc_devices *dv)
{
	if (!s->cache_on) {
		/* the inodes' descriptors are counted with or without a cache */
		printf("cache                 off (host_cache=0)\n"
		       "%-21s %llu\n%-21s %llu\n",
		       "fds_open", (unsigned long long)s->fds_open,
		       "fd_reopens", (unsigned long long)s->fd_reopens);
		return;
	}
	stats_print_groups(s, dv);
}

/*
 * stats --watch: one row per interval, like vmstat: rates per second of
 * the counters that count events, the level of a few that are sizes, and
 * the interval's hit ratio.  A header every 20 rows.
 */
static double per_s(uint64_t now, uint64_t before, double secs)
{
	return now >= before ? (double)(now - before) / secs : 0;
}

static void watch_row(const struct hmmfs_ioc_stats *n,
		      const struct hmmfs_ioc_stats *o, double secs, unsigned int row)
{
	uint64_t h = n->hits - o->hits, m = n->misses - o->misses;
	char when[16];
	time_t t = time(NULL);
	struct tm tm;

	if (row % 20 == 0)
		printf("%-8s %9s %9s %6s %9s %9s %9s %9s %9s %10s %10s %10s\n",
		       "time", "hits/s", "misses/s", "hit%", "ra_pg/s", "wr_MB/s",
		       "wb_MB/s", "dirty_MB", "host_MB", "device_MB", "to_dev/s",
		       "bounce/s");
	strftime(when, sizeof(when), "%H:%M:%S", localtime_r(&t, &tm));
	printf("%-8s %9.0f %9.0f %6.1f %9.0f %9.1f %9.1f %9.1f %9.1f %10.1f %10.0f %10.0f\n",
	       when, per_s(n->hits, o->hits, secs), per_s(n->misses, o->misses, secs),
	       h + m ? 100.0 * (double)h / (double)(h + m) : 100.0,
	       per_s(n->readahead_pages, o->readahead_pages, secs),
	       per_s(n->written_bytes, o->written_bytes, secs) / 1048576,
	       per_s(n->writeback_bytes, o->writeback_bytes, secs) / 1048576,
	       (double)(n->dirty_pages * n->page_size) / 1048576,
	       (double)(n->host_pages * n->page_size) / 1048576,
	       (double)(n->device_pages * n->page_size) / 1048576,
	       per_s(n->migrations_to_device, o->migrations_to_device, secs),
	       per_s(n->bounce_reads + n->bounce_writes,
		     o->bounce_reads + o->bounce_writes, secs));
	fflush(stdout);
}

static int stats_read(int fd, const char *path, struct hmmfs_ioc_stats *s)
{
	memset(s, 0, sizeof(*s));
	s->version = HMMFS_IOC_VERSION;
	return ioctl(fd, HMMFS_IOC_STATS, s) < 0 ? ioctl_failed("stats", path) : 0;
}

/* Every @secs seconds until interrupted (or @count rows, if not 0). */
static int stats_watch(const char *path, unsigned int secs, unsigned int count)
{
	struct hmmfs_ioc_stats prev, now;
	int fd = open_target(path), ret;

	if (fd < 0)
		return 1;
	ret = stats_read(fd, path, &prev);
	for (unsigned int row = 0; !ret && (!count || row < count); row++) {
		sleep(secs);
		ret = stats_read(fd, path, &now);
		if (!ret)
			watch_row(&now, &prev, secs, row);
		prev = now;
	}
	close(fd);
	return ret;
}

/* "--watch" or "--watch=SECONDS" (1 to 3600) into *@secs; 0 if not it. */
static int watch_arg(const char *a, const char *name, unsigned int *secs)
{
	size_t n = strlen(name);
	uint64_t v = 1;

	if (strncmp(a, name, n) || (a[n] && a[n] != '='))
		return 0;
	if (a[n] == '=' && (size_parse(a + n + 1, &v) || v < 1 || v > 3600))
		return -1;
	*secs = (unsigned int)v;
	return 1;
}

/*
 * Where @fd's cached pages are, over the whole file: @tot gets pages,
 * host, device, dirty, writeback, shared.  Return: 0, or 1 after a message.
 */
static int res_count(int fd, const char *path, uint64_t size, uint64_t tot[6])
{
	struct hmmfs_ioc_residency *r = malloc(sizeof(*r));

	if (!r)
		return 1;
	memset(tot, 0, 6 * sizeof(tot[0]));
	for (uint64_t off = 0; off < size;) {
		*r = (struct hmmfs_ioc_residency){ .version = HMMFS_IOC_VERSION,
						   .offset = off, .length = size - off };
		if (ioctl(fd, HMMFS_IOC_RESIDENCY, r) < 0) {
			free(r);
			return ioctl_failed("stats", path);
		}
		tot[0] += r->pages, tot[1] += r->host, tot[2] += r->device;
		tot[3] += r->dirty, tot[4] += r->writeback, tot[5] += r->shared;
		if (r->next <= off)
			break;
		off = r->next;
	}
	free(r);
	return 0;
}

static void file_stats_print(const char *path, const struct hmmfs_ioc_file_stats *f,
			     const uint64_t tot[6], bool json)
{
	uint64_t looked = f->hits + f->misses, ps = f->page_size;
	char a[24], b[24], c[24];

	if (json) {
		printf("{\"size\":%llu,\"page_size\":%llu,\"pages\":%llu,"
		       "\"host\":%llu,\"device\":%llu,\"dirty\":%llu,"
		       "\"writeback\":%llu,\"shared\":%llu,\"hits\":%llu,"
		       "\"misses\":%llu,\"readahead_pages\":%llu,"
		       "\"bounce_reads\":%llu,\"bounce_writes\":%llu,"
		       "\"written_bytes\":%llu,\"writeback_bytes\":%llu,"
		       "\"migrations_to_device\":%llu,\"migrations_to_host\":%llu}\n",
		       (unsigned long long)f->size, (unsigned long long)ps,
		       (unsigned long long)f->pages, (unsigned long long)tot[1],
		       (unsigned long long)tot[2], (unsigned long long)f->dirty,
		       (unsigned long long)f->writeback, (unsigned long long)tot[5],
		       (unsigned long long)f->hits, (unsigned long long)f->misses,
		       (unsigned long long)f->readahead_pages,
		       (unsigned long long)f->bounce_reads,
		       (unsigned long long)f->bounce_writes,
		       (unsigned long long)f->written_bytes,
		       (unsigned long long)f->writeback_bytes,
		       (unsigned long long)f->migrations_to_device,
		       (unsigned long long)f->migrations_to_host);
		return;
	}
	printf("%s: %s, %s of it cached (%llu pages of %s)\n\n", path,
	       human(f->size, a), human(f->pages * ps, b),
	       (unsigned long long)f->pages, human(ps, c));
	printf("%-12s host %llu, device %llu, dirty %llu, under writeback %llu, "
	       "shared %llu\n", "pages", (unsigned long long)tot[1],
	       (unsigned long long)tot[2], (unsigned long long)f->dirty,
	       (unsigned long long)f->writeback, (unsigned long long)tot[5]);
	printf("%-12s hits %llu, misses %llu, hit ratio %.1f%%, readahead %llu pages\n",
	       "reads", (unsigned long long)f->hits, (unsigned long long)f->misses,
	       looked ? 100.0 * (double)f->hits / (double)looked : 100.0,
	       (unsigned long long)f->readahead_pages);
	printf("%-12s written in %s, written back %s\n", "writes",
	       human(f->written_bytes, a), human(f->writeback_bytes, b));
	printf("%-12s to device %llu, to host %llu; bounce reads %llu, writes %llu\n",
	       "device tier", (unsigned long long)f->migrations_to_device,
	       (unsigned long long)f->migrations_to_host,
	       (unsigned long long)f->bounce_reads, (unsigned long long)f->bounce_writes);
}

/* stats FILE: that file's counters and where its pages are. */
static int file_stats(const char *path, bool json)
{
	struct hmmfs_ioc_file_stats f;
	uint64_t tot[6];
	int fd = open_file(path, O_RDONLY), ret;

	if (fd < 0)
		return 1;
	memset(&f, 0, sizeof(f));
	if (ioctl(fd, HMMFS_IOC_FILE_STATS, &f) < 0) {
		ret = ioctl_failed("stats", path);
		close(fd);
		return ret;
	}
	if (f.version != HMMFS_IOC_VERSION) {
		fprintf(stderr, "hmmfsctl: stats: %s: daemon speaks version %u, "
			"this tool %u\n", path, f.version, HMMFS_IOC_VERSION);
		close(fd);
		return 1;
	}
	ret = res_count(fd, path, f.size, tot);
	close(fd);
	if (!ret)
		file_stats_print(path, &f, tot, json);
	return ret;
}

static bool is_regular(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int cmd_stats(int argc, char **argv)
{
	struct hmmfs_ioc_stats s;
	struct hmmfs_ioc_ksm k = { .version = HMMFS_IOC_VERSION };
	static struct hmmfs_ioc_ops ops;
	struct hmmfs_ioc_devices dv = { .version = 0 };
	const char *path = NULL;
	unsigned int watch = 0, count = 0;
	int json = 0, fd, have_ksm, have_ops, have_dv, r = 0;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			json = 1;
		else if ((r = watch_arg(argv[i], "--watch", &watch)) != 0 ||
			 (r = watch_arg(argv[i], "--count", &count)) != 0) {
			if (r < 0)
				break;
		} else if (!path && argv[i][0] != '-') {
			path = argv[i];
		} else {
			fprintf(stderr, "hmmfsctl stats: unexpected '%s'\n", argv[i]);
			return 2;
		}
	}
	if (!path || r < 0 || (json && watch) || (count && !watch) ||
	    (watch && is_regular(path))) {
		fprintf(stderr, "usage: hmmfsctl stats MOUNTPOINT [--json | "
			"--watch[=SECONDS] [--count=N]]\n"
			"       hmmfsctl stats FILE [--json]\n");
		return 2;
	}
	if (is_regular(path))
		return file_stats(path, json);
	if (watch)
		return stats_watch(path, watch, count);
	fd = open_target(path);
	if (fd < 0)
		return 1;
	memset(&s, 0, sizeof(s));
	if (ioctl(fd, HMMFS_IOC_STATS, &s) < 0) {
		int ret = ioctl_failed("stats", path);

		close(fd);
		return ret;
	}
	have_ksm = s.cache_on && ioctl(fd, HMMFS_IOC_KSM, &k) == 0;
	have_ops = ops_get(fd, &ops) == 0;
	have_dv = s.cache_on && ioctl(fd, HMMFS_IOC_DEVICES, &dv) == 0 &&
		  dv.version == HMMFS_IOC_VERSION && dv.count > 0;
	close(fd);
	if (s.version != HMMFS_IOC_VERSION) {
		fprintf(stderr, "hmmfsctl: stats: %s: daemon speaks version %u, "
			"this tool %u\n", path, s.version, HMMFS_IOC_VERSION);
		return 1;
	}
	s.io_engine[sizeof(s.io_engine) - 1] = '\0';
	s.device[sizeof(s.device) - 1] = '\0';
	s.migrate[sizeof(s.migrate) - 1] = '\0';
	if (json) {
		stats_print_json(&s, have_ksm ? &k : NULL, have_ops ? &ops : NULL,
				 have_dv ? &dv : NULL);
	} else {
		stats_print_text(&s, have_dv ? &dv : NULL);
		if (have_ops)
			ops_print_text(&ops);
	}
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

/* Options shared by the range commands. */
struct range_args {
	const char *path;
	uint64_t offset, length;	/* length 0: to EOF */
	const char *to, *op;
	uint64_t value, device;
	int have_value, have_device, json, map, human;
};

/*
 * Parse PATH and --offset/--length/--to/--op/--value/--json; an option's
 * value comes as the next argument or after '=' (--offset=4096).
 */
static int range_args_parse(int argc, char **argv, struct range_args *a,
			    const char *usage_line)
{
	char name[32];

	memset(a, 0, sizeof(*a));
	for (int i = 1; i < argc; i++) {
		const char *o = argv[i], *eq = strchr(o, '=');
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		bool inline_value = o[0] == '-' && eq;
		int bad = 0;

		if (inline_value) {
			if ((size_t)(eq - o) >= sizeof(name))
				goto out_usage;
			memcpy(name, o, (size_t)(eq - o));
			name[eq - o] = '\0';
			o = name;
			v = eq + 1;
		}
		if (!strcmp(o, "--json") && !inline_value) {
			a->json = 1;
			continue;
		}
		if (!strcmp(o, "--map") && !inline_value) {
			a->map = 1;
			continue;
		}
		if (!strcmp(o, "--human") && !inline_value) {
			a->human = 1;
			continue;
		}
		if (o[0] != '-') {
			if (a->path)
				goto out_usage;
			a->path = o;
			continue;
		}
		if (!v)
			goto out_usage;
		if (!strcmp(o, "--offset"))
			bad = size_parse(v, &a->offset);
		else if (!strcmp(o, "--length"))
			bad = size_parse(v, &a->length);
		else if (!strcmp(o, "--to"))
			a->to = v;
		else if (!strcmp(o, "--op"))
			a->op = v;
		else if (!strcmp(o, "--value"))
			bad = size_parse(v, &a->value), a->have_value = 1;
		else if (!strcmp(o, "--device"))
			bad = size_parse(v, &a->device) || a->device >= HMMFS_MAX_DEVICES,
			a->have_device = 1;
		else
			goto out_usage;
		if (bad) {
			fprintf(stderr, "hmmfsctl: %s: not a size: '%s' (decimal, with K, "
				"M, G, T or P if wanted: 4096, 64K, 1.5M)\n", o, v);
			return 2;
		}
		if (!inline_value)
			i++;	/* the value was the next argument */
	}
	if (!a->path)
		goto out_usage;
	if (a->offset > INT64_MAX || a->length > INT64_MAX) {
		fprintf(stderr, "hmmfsctl: offset or length too large\n");
		return 2;
	}
	return 0;

out_usage:
	fprintf(stderr, "usage: hmmfsctl %s\n", usage_line);
	return 2;
}

static void progress(const char *what, uint64_t done, uint64_t total)
{
	int width = 40, fill = total ? (int)(done * (uint64_t)width / total) : width;

	fprintf(stderr, "\r%s [%.*s%*s] %3d%% %llu/%llu MiB", what, fill,
		"########################################", width - fill, "",
		total ? (int)(done * 100 / total) : 100,
		(unsigned long long)(done >> 20), (unsigned long long)(total >> 20));
}

/* Devices of the mount of @fd (1 when the daemon does not say). */
static unsigned int devices_count(int fd)
{
	struct hmmfs_ioc_devices d;

	memset(&d, 0, sizeof(d));
	if (ioctl(fd, HMMFS_IOC_DEVICES, &d) < 0 || d.version != HMMFS_IOC_VERSION)
		return 1;
	return d.count;
}

/* "host", "device" or "device:K" into an HMMFS_TO_* value; -1: none. */
static long to_parse(const char *to)
{
	char *end;
	unsigned long k;

	if (!strcmp(to, "host"))
		return HMMFS_TO_HOST;
	if (!strcmp(to, "device"))
		return HMMFS_TO_DEVICE;
	if (strncmp(to, "device:", 7) || !isdigit((unsigned char)to[7]))
		return -1;
	k = strtoul(to + 7, &end, 10);
	if (*end || k >= HMMFS_MAX_DEVICES)
		return -1;
	return (long)HMMFS_TO_DEVICE_UNIT(k);
}

/*
 * Open @a->path for a range command @cmd, with its devices (bit k: device
 * k) all on the mount, and the range's end in *@end.
 * Return: the descriptor, or -1 after a message.
 */
static int range_open(const char *cmd, const struct range_args *a,
		      uint32_t units, uint64_t *end)
{
	unsigned int ndev;
	struct stat st;
	int fd = open_file(a->path, O_RDONLY);

	if (fd < 0)
		return -1;
	fstat(fd, &st);
	*end = a->length ? a->offset + a->length : (uint64_t)st.st_size;
	if (*end > (uint64_t)st.st_size)
		*end = (uint64_t)st.st_size;
	ndev = units ? devices_count(fd) : 0;
	if (ndev && units >> ndev) {
		fprintf(stderr, "hmmfsctl: %s: %s: no device:%d: the mount has %u "
			"device%s, device:0 to device:%u\n", cmd, a->path,
			31 - __builtin_clz(units), ndev, ndev > 1 ? "s" : "", ndev - 1);
		close(fd);
		return -1;
	}
	if (offset_past_end(cmd, a->path, a->offset, &st)) {
		close(fd);
		return -1;
	}
	return fd;
}

static int cmd_migrate(int argc, char **argv)
{
	static const char use[] = "migrate --to device[:K]|host PATH [--offset N] [--length N]";
	long to;
	struct range_args a;
	struct hmmfs_ioc_migrate m = { .version = HMMFS_IOC_VERSION };
	uint64_t end, moved = 0;
	int fd, ret = 0, bar;

	ret = range_args_parse(argc, argv, &a, use);
	if (ret)
		return ret;
	if (!a.to || (to = to_parse(a.to)) < 0) {
		fprintf(stderr, "usage: hmmfsctl %s\n", use);
		return 2;
	}
	fd = range_open("migrate", &a, to >= (long)HMMFS_TO_DEVICE_UNIT(0) ?
			1u << (to & HMMFS_TO_UNIT_MASK) : 0, &end);
	if (fd < 0)
		return 1;
	bar = isatty(STDERR_FILENO) && end - a.offset > HMMFS_IOC_MAX_WORK;
	m.to = (uint32_t)to;
	for (uint64_t off = a.offset; off < end; off = m.next) {
		m.offset = off;
		m.length = end - off;
		if (ioctl(fd, HMMFS_IOC_MIGRATE, &m) < 0) {
			if (bar)
				fputc('\n', stderr);
			ret = ioctl_failed("migrate", a.path);
			break;
		}
		moved += m.moved;
		if (m.next <= off || m.next > end)
			m.next = end;	/* the file shrank meanwhile */
		if (bar)
			progress("migrating", m.next - a.offset, end - a.offset);
	}
	if (bar && !ret)
		fputc('\n', stderr);
	close(fd);
	if (ret)
		return ret;	/* said above; nothing on stdout */
	if (a.json)
		printf("{\"moved\":%llu}\n", (unsigned long long)moved);
	else
		printf("%llu pages moved to the %s%s\n", (unsigned long long)moved,
		       to >= (long)HMMFS_TO_DEVICE_UNIT(0) ? "device " : "",
		       to >= (long)HMMFS_TO_DEVICE_UNIT(0) ? a.to + 7 : a.to);
	return ret;
}

/* "device:K[,device:J...]" into a mask of devices; 0: not that. */
static uint32_t units_parse(const char *to)
{
	char buf[256], *save = NULL;
	uint32_t units = 0;

	if (snprintf(buf, sizeof(buf), "%s", to) >= (int)sizeof(buf))
		return 0;
	for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		long v = to_parse(t);

		if (v < (long)HMMFS_TO_DEVICE_UNIT(0))
			return 0;	/* "host", plain "device", or nonsense */
		units |= 1u << (v & HMMFS_TO_UNIT_MASK);
	}
	return units;
}

static int cmd_replicate(int argc, char **argv)
{
	static const char use[] = "replicate --to device:K[,device:J...] PATH "
				  "[--offset N] [--length N] [--json]";
	struct hmmfs_ioc_replicate m = { .version = HMMFS_IOC_VERSION };
	uint64_t end, copies = 0;
	struct range_args a;
	int fd, ret, bar;

	ret = range_args_parse(argc, argv, &a, use);
	if (ret)
		return ret;
	if (!a.to || !(m.units = units_parse(a.to))) {
		fprintf(stderr, "usage: hmmfsctl %s\n", use);
		return 2;
	}
	fd = range_open("replicate", &a, m.units, &end);
	if (fd < 0)
		return 1;
	bar = isatty(STDERR_FILENO) && end - a.offset > HMMFS_IOC_MAX_WORK;
	for (uint64_t off = a.offset; off < end; off = m.next) {
		m.offset = off;
		m.length = end - off;
		if (ioctl(fd, HMMFS_IOC_REPLICATE, &m) < 0) {
			if (bar)
				fputc('\n', stderr);
			ret = ioctl_failed("replicate", a.path);
			break;
		}
		copies += m.copies;
		if (m.next <= off || m.next > end)
			m.next = end;	/* the file shrank meanwhile */
		if (bar)
			progress("replicating", m.next - a.offset, end - a.offset);
	}
	if (bar && !ret)
		fputc('\n', stderr);
	close(fd);
	if (ret)
		return ret;
	if (a.json)
		printf("{\"copies\":%llu}\n", (unsigned long long)copies);
	else
		printf("%llu replicas made on %s\n", (unsigned long long)copies, a.to);
	return 0;
}

/*
 * devop --op xxh64: the hash of the range computed on one device, printed
 * as xxhsum -H1 prints it.  Requests go on from where the last stopped,
 * on one open file (the daemon keeps the hash in progress with it).
 */
static int devop_xxh64(const struct range_args *a)
{
	struct hmmfs_ioc_devread d = { .version = HMMFS_IOC_VERSION,
				       .op = HMMFS_DEVREAD_XXH64,
				       .flags = HMMFS_DEVREAD_START,
				       .device = (uint32_t)a->device };
	uint64_t end, pages = 0;
	int fd = range_open("devop", a, 1u << a->device, &end), ret = 0;

	if (fd < 0)
		return 1;
	for (uint64_t off = a->offset;; off = d.next) {
		d.offset = off;
		d.length = end > off ? end - off : 0;
		if (ioctl(fd, HMMFS_IOC_DEVREAD, &d) < 0) {
			ret = ioctl_failed("devop", a->path);
			break;
		}
		pages += d.pages;
		d.flags = 0;
		if (d.done || d.next <= off)
			break;
	}
	close(fd);
	if (ret)
		return ret;
	if (!d.done) {
		fprintf(stderr, "hmmfsctl: devop: %s: the daemon stopped before the "
			"end of the range\n", a->path);
		return 1;
	}
	if (a->json)
		printf("{\"xxh64\":\"%016llx\",\"device\":%llu,\"pages\":%llu}\n",
		       (unsigned long long)d.result, (unsigned long long)a->device,
		       (unsigned long long)pages);
	else
		printf("%016llx  %s\n", (unsigned long long)d.result, a->path);
	return 0;
}

static int cmd_devop(int argc, char **argv)
{
	static const char use[] = "devop PATH --op fill|xor|add --value N | --op xxh64 "
				  "[--device K] [--offset N] [--length N]";
	static const char *const ops[] = { [HMMFS_DEVOP_FILL] = "fill",
					   [HMMFS_DEVOP_XOR] = "xor",
					   [HMMFS_DEVOP_ADD] = "add" };
	struct hmmfs_ioc_devop d = { .version = HMMFS_IOC_VERSION, .op = UINT32_MAX };
	struct range_args a;
	uint64_t end, pages = 0;
	struct stat st;
	int fd, ret;

	ret = range_args_parse(argc, argv, &a, use);
	if (ret)
		return ret;
	if (a.op && !strcmp(a.op, "xxh64")) {
		if (a.have_value) {
			fprintf(stderr, "usage: hmmfsctl %s\n", use);
			return 2;
		}
		return devop_xxh64(&a);
	}
	if (a.have_device) {
		fprintf(stderr, "hmmfsctl: devop: --device goes with --op xxh64 (a "
			"write lands where the page is)\n");
		return 2;
	}
	for (uint32_t i = 0; a.op && i < ARRAY_SIZE(ops); i++)
		if (!strcmp(a.op, ops[i]))
			d.op = i;
	if (d.op == UINT32_MAX || !a.have_value) {
		fprintf(stderr, "usage: hmmfsctl %s\n", use);
		return 2;
	}
	if (a.value > 255) {
		fprintf(stderr, "hmmfsctl: devop: --value must be 0..255 (a byte)\n");
		return 2;
	}
	fd = open_file(a.path, O_RDWR);
	if (fd < 0)
		return 1;
	fstat(fd, &st);
	if (offset_past_end("devop", a.path, a.offset, &st)) {
		close(fd);
		return 1;
	}
	end = a.length ? a.offset + a.length : (uint64_t)st.st_size;
	d.value = a.value;
	ret = 0;
	for (uint64_t off = a.offset;; off = d.next) {
		d.offset = off;
		d.length = end > off ? end - off : 0;
		if (ioctl(fd, HMMFS_IOC_DEVOP, &d) < 0) {
			ret = ioctl_failed("devop", a.path);
			break;
		}
		pages += d.pages;
		if (d.next <= off || d.next >= end)
			break;	/* done (or the file shrank meanwhile) */
	}
	close(fd);
	if (ret)
		return ret;
	if (a.json)
		printf("{\"pages\":%llu}\n", (unsigned long long)pages);
	else
		printf("%llu pages written on the device\n", (unsigned long long)pages);
	return 0;
}

/*
 * Where the copies are: "host", "device", with several devices
 * "device:0+2" (the devices holding one), "host+device:1" for a host page
 * with a replica; then ",dirty", ",writeback", ",shared".
 */
static const char *res_flags_text(uint32_t f, uint32_t units, bool multi,
				  char *buf, size_t len)
{
	char where[64] = "";
	size_t at = 0;

	if (f & HMMFS_RES_HOST)
		at = (size_t)snprintf(where, sizeof(where), "host%s", units ? "+" : "");
	if ((f & HMMFS_RES_DEVICE) || units) {
		at += (size_t)snprintf(where + at, sizeof(where) - at, "device%s",
				       multi && units ? ":" : "");
		for (unsigned int k = 0; multi && k < HMMFS_MAX_DEVICES; k++)
			if (units & (1u << k) && at < sizeof(where))
				at += (size_t)snprintf(where + at, sizeof(where) - at,
						       "%s%u", where[at - 1] == ':' ? "" : "+", k);
	}
	snprintf(buf, len, "%s%s%s%s", where,
		 (f & HMMFS_RES_DIRTY) ? ",dirty" : "",
		 (f & HMMFS_RES_WRITEBACK) ? ",writeback" : "",
		 (f & HMMFS_RES_SHARED) ? ",shared" : "");
	return buf;
}

/*
 * How a residency walk is shown: extents as text or JSON lines, with the
 * uncached gaps between them, and for --map one character per column of
 * MAP_WIDTH over the range (like vmtouch -v).
 * @at:   the byte after the last extent or gap printed (UINT64_MAX: none).
 * @cols: per column: pages cached, on the device, dirty, shared.
 */
#define MAP_WIDTH 64
struct res_view {
	bool json, map, human, multi, first;
	uint64_t at, first_page, npages;
	unsigned int width;
	struct { uint64_t cached, device, dirty, shared; } cols[MAP_WIDTH];
};

static void res_print_one(FILE *out, struct res_view *v, uint64_t at,
			  uint64_t len, const char *flags)
{
	char a[24], b[24];

	if (v->json)
		fprintf(out, "%s{\"offset\":%llu,\"length\":%llu,\"flags\":\"%s\"}",
			v->first ? "" : ",", (unsigned long long)at,
			(unsigned long long)len, flags);
	else if (v->human)
		fprintf(out, "%12s %12s  %s\n", human(at, a), human(len, b), flags);
	else if (!v->map)
		fprintf(out, "%12llu %12llu  %s\n", (unsigned long long)at,
			(unsigned long long)len, flags);
	v->first = false;
}

/* Up to byte @to, what no extent covered is an uncached gap. */
static void res_gap_until(FILE *out, struct res_view *v, uint64_t to)
{
	if (to > v->at)
		res_print_one(out, v, v->at, to - v->at, "uncached");
	if (to > v->at)
		v->at = to;
}

/* Count extent @e's pages into the map's columns. */
static void res_map_add(struct res_view *v, const struct hmmfs_ioc_extent *e)
{
	for (unsigned int c = 0; c < v->width; c++) {
		uint64_t lo = v->first_page + c * v->npages / v->width;
		uint64_t hi = v->first_page + (c + 1) * v->npages / v->width;
		uint64_t from = e->first > lo ? e->first : lo;
		uint64_t to = e->first + e->count < hi ? e->first + e->count : hi;

		if (from >= to)
			continue;
		v->cols[c].cached += to - from;
		if (e->flags & HMMFS_RES_DEVICE)
			v->cols[c].device += to - from;
		if (e->flags & HMMFS_RES_DIRTY)
			v->cols[c].dirty += to - from;
		if (e->flags & HMMFS_RES_SHARED)
			v->cols[c].shared += to - from;
	}
}

/* Print @r's extents to @out, with the gaps before them. */
static void res_print_extents(FILE *out, const struct hmmfs_ioc_residency *r,
			      struct res_view *v)
{
	for (uint32_t i = 0; i < r->n_ext && i < HMMFS_RES_MAX_EXTENTS; i++) {
		const struct hmmfs_ioc_extent *e = &r->ext[i];
		char fl[64];

		res_gap_until(out, v, e->first * r->page_size);
		res_flags_text(e->flags, e->units, v->multi, fl, sizeof(fl));
		res_print_one(out, v, e->first * r->page_size, e->count * r->page_size, fl);
		v->at = (e->first + e->count) * r->page_size;
		if (v->map)
			res_map_add(v, e);
	}
}

/*
 * The map: '.' nothing cached, '*' some page dirty, 'S' some shared, 'D'
 * all cached pages on the device, 'H' all on the host, 'M' both; lower
 * case (d, h, m) when under half the column is cached.
 */
static void res_print_map(FILE *out, const struct res_view *v, uint64_t ps)
{
	fputc('[', out);
	for (unsigned int c = 0; c < v->width; c++) {
		uint64_t span = (c + 1) * v->npages / v->width - c * v->npages / v->width;
		uint64_t n = v->cols[c].cached, d = v->cols[c].device;
		char ch = !n ? '.' : v->cols[c].dirty ? '*' : v->cols[c].shared ? 'S' :
			  d == n ? 'D' : d == 0 ? 'H' : 'M';

		if (n && 2 * n < span && ch != '*' && ch != 'S')
			ch = (char)(ch - 'A' + 'a');
		fputc(ch, out);
	}
	fprintf(out, "]  %u columns of %.1f KiB\n", v->width,
		(double)v->npages * (double)ps / v->width / 1024);
	fprintf(out, "H host  D device  M both  * dirty  S shared  . not cached"
		"  (lower case: under half cached)\n");
}

static void res_print_totals(FILE *out, const uint64_t tot[6], bool json)
{
	if (json)
		fprintf(out, "],\"pages\":%llu,\"host\":%llu,\"device\":%llu,"
			"\"dirty\":%llu,\"writeback\":%llu,\"shared\":%llu}\n",
			(unsigned long long)tot[0], (unsigned long long)tot[1],
			(unsigned long long)tot[2], (unsigned long long)tot[3],
			(unsigned long long)tot[4], (unsigned long long)tot[5]);
	else
		fprintf(out, "pages %llu: host %llu, device %llu, dirty %llu, "
			"writeback %llu, shared %llu\n",
			(unsigned long long)tot[0], (unsigned long long)tot[1],
			(unsigned long long)tot[2], (unsigned long long)tot[3],
			(unsigned long long)tot[4], (unsigned long long)tot[5]);
}

/*
 * Walk [@a->offset, end) of @fd with the residency ioctl, printing to
 * @out.  Return: 0, or 1 after a message.
 */
/* Start @v for [@a->offset, @end) once the page size @ps is known. */
static void res_view_start(struct res_view *v, const struct range_args *a,
			   uint64_t end, uint64_t ps)
{
	v->first_page = a->offset / ps;
	v->at = v->first_page * ps;
	v->npages = end > v->at ? (end - v->at + ps - 1) / ps : 0;
	v->width = v->npages < MAP_WIDTH ? (unsigned int)v->npages : MAP_WIDTH;
	if (!v->width)
		v->width = 1;
}

static int res_walk(int fd, const struct range_args *a, uint64_t end, FILE *out)
{
	struct hmmfs_ioc_residency *r = calloc(1, sizeof(*r));
	struct res_view *v = calloc(1, sizeof(*v));
	uint64_t tot[6] = { 0 };

	if (!r || !v) {
		free(r);
		free(v);
		return 1;
	}
	*v = (struct res_view){ .json = a->json, .map = a->map && !a->json,
				.human = a->human, .multi = devices_count(fd) > 1,
				.first = true, .at = UINT64_MAX };
	if (a->json)
		fprintf(out, "{\"extents\":[");
	for (uint64_t off = a->offset;;) {
		*r = (struct hmmfs_ioc_residency){ .version = HMMFS_IOC_VERSION,
						   .offset = off,
						   .length = end > off ? end - off : 0 };
		if (!r->length && off != a->offset)
			break;
		if (ioctl(fd, HMMFS_IOC_RESIDENCY, r) < 0) {
			free(r);
			free(v);
			return ioctl_failed("residency", a->path);
		}
		if (v->at == UINT64_MAX)
			res_view_start(v, a, end, r->page_size);
		res_print_extents(out, r, v);
		tot[0] += r->pages, tot[1] += r->host, tot[2] += r->device;
		tot[3] += r->dirty, tot[4] += r->writeback, tot[5] += r->shared;
		if (r->next <= off || r->next >= end)
			break;
		off = r->next;
	}
	if (v->at != UINT64_MAX)
		res_gap_until(out, v, (end + r->page_size - 1) / r->page_size * r->page_size);
	if (v->map)
		res_print_map(out, v, r->page_size);
	res_print_totals(out, tot, a->json);
	free(r);
	free(v);
	return 0;
}

/* Output goes to memory first: on a failure stdout gets nothing. */
static int cmd_residency(int argc, char **argv)
{
	static const char use[] = "residency PATH [--offset N] [--length N] [--json | --map | --human]";
	struct range_args a;
	struct stat st;
	char *buf = NULL;
	size_t len = 0;
	FILE *out;
	int fd, ret = range_args_parse(argc, argv, &a, use);

	if (ret)
		return ret;
	fd = open_file(a.path, O_RDONLY);
	if (fd < 0)
		return 1;
	fstat(fd, &st);
	out = open_memstream(&buf, &len);
	if (!out) {
		close(fd);
		return 1;
	}
	ret = offset_past_end("residency", a.path, a.offset, &st);
	if (!ret)
		ret = res_walk(fd, &a, a.length ? a.offset + a.length :
				       (uint64_t)st.st_size, out);
	close(fd);
	fclose(out);
	if (!ret)
		fwrite(buf, 1, len, stdout);
	free(buf);
	return ret;
}

/* "knob=value" into @k.  Return: 0, or -1 with a message. */
static int ksm_parse_set(const char *arg, struct hmmfs_ioc_ksm *k)
{
	const char *eq = strchr(arg, '=');
	uint64_t v;

	for (uint32_t i = 0; eq && i < HMMFS_KSM_NR_KNOBS; i++) {
		if (strlen(ksm_knob_names[i]) != (size_t)(eq - arg) ||
		    strncmp(arg, ksm_knob_names[i], (size_t)(eq - arg)))
			continue;
		if (size_parse(eq + 1, &v) || v > UINT32_MAX) {
			fprintf(stderr, "hmmfsctl: ksm: %s: not a number\n", arg);
			return -1;
		}
		k->knobs[i] = (uint32_t)v;
		k->set_mask |= 1u << i;
		return 0;
	}
	fprintf(stderr, "hmmfsctl: ksm: '%s': expected knob=value, knobs: run, "
		"pages_to_scan, sleep_millisecs, max_page_sharing, use_zero_pages, "
		"merge_across_tiers\n", arg);
	return -1;
}

static int cmd_ksm(int argc, char **argv)
{
	static const char use[] = "ksm MOUNTPOINT [--json] [--set knob=value ...]";
	struct hmmfs_ioc_ksm k = { .version = HMMFS_IOC_VERSION };
	const char *path = NULL;
	int json = 0, fd, ret = 0;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json")) {
			json = 1;
		} else if (!strcmp(argv[i], "--set") && i + 1 < argc) {
			if (ksm_parse_set(argv[++i], &k))
				return 2;
		} else if (argv[i][0] != '-' && !path) {
			path = argv[i];
		} else {
			fprintf(stderr, "usage: hmmfsctl %s\n", use);
			return 2;
		}
	}
	if (!path) {
		fprintf(stderr, "usage: hmmfsctl %s\n", use);
		return 2;
	}
	fd = open_target(path);
	if (fd < 0)
		return 1;
	if (ioctl(fd, HMMFS_IOC_KSM, &k) < 0) {
		if (errno == ERANGE)
			fprintf(stderr, "hmmfsctl: ksm: a value is out of range (run and "
				"the flags 0..1, pages_to_scan 1..1000000, sleep_millisecs "
				"0..60000, max_page_sharing 2..1048576)\n");
		else if (errno == EPERM)
			fprintf(stderr, "hmmfsctl: ksm: only the mount's owner or root "
				"may change knobs, or with ksm_scope=all read "
				"the counters\n");
		else
			ioctl_failed("ksm", path);
		ret = 1;
	}
	close(fd);
	if (ret)
		return ret;
	if (json) {
		ksm_print_json(&k);
		printf("\n");
		return 0;
	}
	for (size_t i = 0; i < HMMFS_KSM_NR_KNOBS; i++)
		printf("%-21s %u\n", ksm_knob_names[i], k.knobs[i]);
	for (size_t i = 0; i < ARRAY_SIZE(ksm_fields); i++)
		printf("%-21s %llu\n", ksm_fields[i].name, ksm_value(&k, i));
	return 0;
}

static const struct ctl_cmd cmd_table[] = {
	{ "stats", "stats MOUNTPOINT|FILE [--json | --watch[=SECONDS] [--count=N]]",
	  "show the cache's or one file's counters, or the cache's rates every "
	  "SECONDS", cmd_stats },
	{ "sync", "sync PATH", "write back a file, or everything at the mount point",
	  cmd_sync },
	{ "migrate", "migrate --to device[:K]|host PATH [--offset N] [--length N]",
	  "move a file range between host memory and the device", cmd_migrate },
	{ "replicate", "replicate --to device:K[,device:J...] PATH [--offset N] [--length N]",
	  "copy a file range to devices read-only, keeping it where it is",
	  cmd_replicate },
	{ "devop", "devop PATH --op fill|xor|add --value N | --op xxh64 [--device K] "
	  "[--offset N] [--length N]",
	  "run a device-side operation on a file range", cmd_devop },
	{ "residency", "residency PATH [--offset N] [--length N] [--json | --map | --human]",
	  "show where a file's cached pages are", cmd_residency },
	{ "ksm", "ksm MOUNTPOINT [--json] [--set knob=value ...]",
	  "show or change dedupe knobs and statistics", cmd_ksm },
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
	for (const struct ctl_cmd *c = cmd_table; c->name; c++) {
		if (strcmp(argv[1], c->name) != 0)
			continue;
		if (argc > 2 && (!strcmp(argv[2], "--help") || !strcmp(argv[2], "-h"))) {
			printf("usage: hmmfsctl %s\n\nhmmfsctl %s: %s.\nExit status: 0 "
			       "done, 1 failed, 2 bad usage.\n", c->usage, c->name,
			       c->summary);
			return 0;
		}
		return c->run(argc - 1, argv + 1);
	}
	fprintf(stderr, "hmmfsctl: unknown command '%s'\n\n", argv[1]);
	usage(stderr);
	return 2;
}
