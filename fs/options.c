/* SPDX-License-Identifier: MIT */
/*
 * fs/options.c — command line and -o option parsing.
 *
 * One table, opt_table[], lists every -o option hmmfs accepts and what to do
 * with it: set a field of struct hmmfs_opts (flags, seconds, counts), pass it
 * to libfuse unchanged (mount options the kernel or libfuse understand), or
 * drop it (words mount(8) and fstab add that mean nothing to a FUSE daemon).
 * Values are checked in full: "attr_timeout=1x" or "threads=0" is an error,
 * never a silent default.  The parser does not touch the file system; main.c
 * checks BACKING and MOUNTPOINT.  No locking: runs once, before any thread.
 */
#include "fs/options.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#include "util/size.h"
#include "lib/compiler.h"

#define DEVICE_BW_MIN ((size_t)1 << 20)	/* bytes per second */

enum opt_kind {
	OPT_FLAG,	/* name        -> int field = 1 */
	OPT_NOFLAG,	/* noname      -> int field = 0 (a default-on flag) */
	OPT_SECONDS,	/* name=double -> double field, 0..1e6 */
	OPT_UINT,	/* name=N      -> unsigned field, min..max */
	OPT_PASS,	/* name        -> to libfuse, no value allowed */
	OPT_PASS_VALUE,	/* name=value  -> to libfuse, value required */
	OPT_DROP,	/* name[=value]-> accepted and ignored */
	OPT_SIZE,	/* name=SIZE   -> size_t field, min..max bytes */
	OPT_DIRTY,	/* name=SIZE or N% -> size_t field, or the pct after it */
	OPT_CHOICE,	/* name=one of the words in opt_choices[] */
	OPT_USEC,	/* name=N[us|ms|s] -> uint64_t microseconds */
	OPT_VFS,	/* per-mount flag libfuse lacks: min = set, max = clear */
	OPT_GPUS,	/* name=N[:M...] -> the GPU list (gpus[], ngpus) */
};

struct opt_desc {
	const char *name;
	enum opt_kind kind;
	size_t offset;		/* field in struct hmmfs_opts, or 0 */
	unsigned long min, max;	/* OPT_UINT bounds */
	const char *help;	/* NULL: not listed by --help */
};

#define FIELD(f) offsetof(struct hmmfs_opts, f)
#define NO_FIELD ((size_t)-1)

static const struct opt_desc opt_table[] = {
	/* hmmfs's own */
	{ "direct_io", OPT_FLAG, FIELD(direct_io), 0, 0,
	  "every read and write reaches the daemon (no kernel page cache)" },
	{ "kernel_cache", OPT_FLAG, FIELD(kernel_cache), 0, 0,
	  "keep kernel page cache across opens even if BACKING changed" },
	{ "writeback_cache", OPT_FLAG, FIELD(writeback_cache), 0, 0, NULL },
	{ "nowriteback_cache", OPT_NOFLAG, FIELD(writeback_cache), 0, 0,
	  "no FUSE writeback cache: every write(2) reaches the daemon" },
	{ "kernel_dirty", OPT_SIZE, FIELD(kernel_dirty), 0, (unsigned long)-1,
	  "=SIZE   kernel's dirty data for the mount (default min(1G, RAM/16))" },
	{ "nosplice", OPT_NOFLAG, FIELD(splice), 0, 0,
	  "copy file data instead of moving it with splice(2)" },
	{ "noxattr", OPT_FLAG, FIELD(noxattr), 0, 0,
	  "no extended attributes: small writes take one round trip, not two" },
	{ "attr_timeout", OPT_SECONDS, FIELD(attr_timeout), 0, 0,
	  "=SECS   kernel caches attributes this long (default 1.0)" },
	{ "entry_timeout", OPT_SECONDS, FIELD(entry_timeout), 0, 0,
	  "=SECS   kernel caches name lookups this long (default 1.0)" },
	{ "negative_timeout", OPT_SECONDS, FIELD(negative_timeout), 0, 0,
	  "=SECS   kernel caches failed lookups this long (default 0)" },
	{ "threads", OPT_UINT, FIELD(max_threads), 1, 1024,
	  "=N      at most N worker threads (default 16)" },
	{ "max_threads", OPT_UINT, FIELD(max_threads), 1, 1024,
	  "=N  the same as threads=N (libfuse's name)" },
	{ "clone_fd", OPT_FLAG, FIELD(clone_fd), 0, 0,
	  "one /dev/fuse descriptor per worker thread" },
	{ "max_fds", OPT_UINT, FIELD(max_fds), 16, 1048576,
	  "=N      cached backing descriptors of inodes (default: limit/4, <= 1024)" },
	{ "host_cache", OPT_SIZE, FIELD(host_cache), 0, (unsigned long)-1,
	  "=SIZE   host page cache budget; 0: no cache (default RAM/8)" },
	{ "page_size", OPT_SIZE, FIELD(page_size), 4096, 65536,
	  "=SIZE   cache page size, power of two, 4K..64K (default 4K)" },
	{ "dirty_expire_ms", OPT_UINT, FIELD(dirty_expire_ms), 1, 86400000,
	  "=MS     write back pages dirty this long (default 30000)" },
	{ "dirty_background", OPT_DIRTY, FIELD(dirty_background), 0, 0,
	  "=SIZE|N%   start writeback above this much dirty (default 10%)" },
	{ "dirty_limit", OPT_DIRTY, FIELD(dirty_limit), 0, 0,
	  "=SIZE|N%   writers wait above this much dirty (default 20%)" },
	{ "io_engine", OPT_CHOICE, FIELD(io_engine), 0, 0,
	  "=uring|aio|psync   backing I/O engine (default uring)" },
	{ "device", OPT_CHOICE, FIELD(device), 0, 0,
	  "=hostsim|cuda|opencl|none   device-memory tier backend (default hostsim)" },
	{ "device_cache", OPT_SIZE, FIELD(device_cache), 65536, (unsigned long)-1,
	  "=SIZE   device memory budget (default 1G)" },
	{ "device_bw", OPT_SIZE, FIELD(device_bw), 0, (unsigned long)-1,
	  "=SIZE   hostsim: copy bandwidth per second; 0: unlimited (default)" },
	{ "device_lat", OPT_USEC, FIELD(device_lat_us), 0, 10000000,
	  "=TIME   hostsim: latency per copy, e.g. 20us or 2ms (default 0)" },
	{ "devices", OPT_UINT, FIELD(devices), 1, 8,
	  "=N      N devices, each with its own device_cache (hostsim: simulated; cuda: GPUs gpu..gpu+N-1) (default 1)" },
	{ "gpu", OPT_GPUS, FIELD(gpu), 0, 255,
	  "=N[:M...]   cuda: the GPU to use, or a list of GPUs, one device each; opencl: the same, among the platform's devices (default 0)" },
	{ "cl_platform", OPT_UINT, FIELD(cl_platform), 0, 63,
	  "=N      opencl: the platform, as clinfo -l numbers them (default 0)" },
	{ "device_peer", OPT_CHOICE, FIELD(device_peer), 0, 0,
	  "=on|off   copies between devices by the peer path where the backend has one (default on)" },
	{ "device_copy", OPT_CHOICE, FIELD(device_copy), 0, 0,
	  "=auto|sync|async   CPU access to device pages copies in the caller, by the device's engine, or the cheaper way (default auto)" },
	{ "migrate", OPT_CHOICE, FIELD(migrate), 0, 0,
	  "=bounce|promote|adaptive   CPU access to device pages (default adaptive)" },
	{ "ksm", OPT_CHOICE, FIELD(ksm), 0, 0,
	  "=on|off  merge identical cached pages across files (default off)" },
	{ "ksm_scope", OPT_CHOICE, FIELD(ksm_scope), 0, 0,
	  "=uid|all   merge only files of one owner, or any (default uid)" },
	{ "bounce_buffers", OPT_UINT, FIELD(bounce_buffers), 1, 65536,
	  "=N      bounce buffers of one page each (default 16 MiB's, at least 512)" },
	/* mount options handed to libfuse and the kernel */
	{ "allow_other", OPT_PASS, FIELD(allow_other), 0, 0,
	  "other users may use the mount (implies default_permissions)" },
	{ "allow_root", OPT_PASS, FIELD(allow_root), 0, 0,
	  "root may use the mount too (libfuse's option)" },
	{ "default_permissions", OPT_PASS, FIELD(default_permissions), 0, 0,
	  "the kernel checks permissions from mode bits" },
	{ "debug", OPT_PASS, FIELD(debug), 0, 0, NULL },
	{ "fsname", OPT_PASS_VALUE, NO_FIELD, 0, 0,
	  "=NAME   source shown in mount tables (default BACKING)" },
	{ "subtype", OPT_PASS_VALUE, NO_FIELD, 0, 0,
	  "=NAME   type shown as fuse.NAME (default hmmfs)" },
	{ "max_read", OPT_PASS_VALUE, NO_FIELD, 0, 0, NULL },
	{ "blksize", OPT_PASS_VALUE, NO_FIELD, 0, 0, NULL },
	{ "context", OPT_PASS_VALUE, NO_FIELD, 0, 0, NULL },
	{ "fscontext", OPT_PASS_VALUE, NO_FIELD, 0, 0, NULL },
	{ "defcontext", OPT_PASS_VALUE, NO_FIELD, 0, 0, NULL },
	{ "rootcontext", OPT_PASS_VALUE, NO_FIELD, 0, 0, NULL },
	{ "auto_unmount", OPT_PASS, NO_FIELD, 0, 0,
	  "unmount when the daemon dies" },
	{ "ro", OPT_PASS, NO_FIELD, 0, 0, "read-only mount" },
	{ "rw", OPT_PASS, NO_FIELD, 0, 0, NULL },
	{ "suid", OPT_PASS, NO_FIELD, 0, 0, NULL },
	{ "nosuid", OPT_PASS, NO_FIELD, 0, 0, NULL },
	{ "dev", OPT_PASS, NO_FIELD, 0, 0, NULL },
	{ "nodev", OPT_PASS, NO_FIELD, 0, 0, NULL },
	{ "exec", OPT_PASS, NO_FIELD, 0, 0, NULL },
	{ "noexec", OPT_PASS, NO_FIELD, 0, 0, NULL },
	{ "async", OPT_PASS, NO_FIELD, 0, 0, NULL },
	{ "sync", OPT_PASS, NO_FIELD, 0, 0, NULL },
	{ "dirsync", OPT_PASS, NO_FIELD, 0, 0, NULL },
	{ "atime", OPT_PASS, NO_FIELD, 0, 0, NULL },
	{ "noatime", OPT_PASS, NO_FIELD, 0, 0, NULL },
	/* mount(8) and fstab words with no meaning for the daemon */
	{ "defaults", OPT_DROP, NO_FIELD, 0, 0, NULL },
	{ "auto", OPT_DROP, NO_FIELD, 0, 0, NULL },
	{ "noauto", OPT_DROP, NO_FIELD, 0, 0, NULL },
	{ "user", OPT_DROP, NO_FIELD, 0, 0, NULL },
	{ "users", OPT_DROP, NO_FIELD, 0, 0, NULL },
	{ "nouser", OPT_DROP, NO_FIELD, 0, 0, NULL },
	{ "nofail", OPT_DROP, NO_FIELD, 0, 0, NULL },
	{ "_netdev", OPT_DROP, NO_FIELD, 0, 0, NULL },
	{ "lazytime", OPT_DROP, NO_FIELD, 0, 0, NULL },
	{ "nolazytime", OPT_DROP, NO_FIELD, 0, 0, NULL },
	/* per-mount atime flags: set on the mount after it is made */
	{ "relatime", OPT_VFS, NO_FIELD, MS_RELATIME, MS_NOATIME | MS_STRICTATIME, NULL },
	{ "norelatime", OPT_VFS, NO_FIELD, 0, MS_RELATIME, NULL },
	{ "strictatime", OPT_VFS, NO_FIELD, MS_STRICTATIME, MS_NOATIME | MS_RELATIME,
	  "update atime on every access" },
	{ "nostrictatime", OPT_VFS, NO_FIELD, 0, MS_STRICTATIME, NULL },
	{ "diratime", OPT_VFS, NO_FIELD, 0, MS_NODIRATIME, NULL },
	{ "nodiratime", OPT_VFS, NO_FIELD, MS_NODIRATIME, 0, NULL },
	{ "comment", OPT_DROP, NO_FIELD, 0, 0, NULL },
};

static int fail(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* Default host_cache: an eighth of the machine's memory. */
static size_t default_host_cache(void)
{
	long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);

	if (pages <= 0 || psz <= 0)
		return (size_t)256 << 20;
	return (size_t)pages * (size_t)psz / 8;
}

/*
 * Default kernel_dirty: a sixteenth of memory, at most 1 GiB.  The kernel
 * gives a FUSE mount 1% of its dirty limit (about 50 MB on a 24 GiB
 * machine), which makes writers wait on the daemon long before the
 * kernel's own limits would; a local filesystem may use all of them.
 */
static size_t default_kernel_dirty(void)
{
	long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
	size_t max = (size_t)1 << 30;

	if (pages <= 0 || psz <= 0)
		return (size_t)64 << 20;
	return (size_t)pages * (size_t)psz / 16 < max ?
	       (size_t)pages * (size_t)psz / 16 : max;
}

static void opts_set_defaults(struct hmmfs_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->page_size = 4096;
	o->host_cache = default_host_cache();
	o->dirty_expire_ms = 30000;
	o->dirty_background_pct = 10;
	o->dirty_limit_pct = 20;
	strcpy(o->io_engine, "uring");
	strcpy(o->device, "hostsim");
	o->device_cache = (size_t)1 << 30;
	o->devices = 1;
	strcpy(o->migrate, "adaptive");
	strcpy(o->device_copy, "auto");
	strcpy(o->device_peer, "on");
	o->bounce_buffers = 0;	/* main.c: 16 MiB of buffers, at least 512 */
	strcpy(o->ksm, "off");
	strcpy(o->ksm_scope, "uid");
	o->splice = 1;
	o->writeback_cache = 1;
	o->kernel_dirty = default_kernel_dirty();
	o->attr_timeout = 1.0;
	o->entry_timeout = 1.0;
	o->negative_timeout = 0.0;
	o->max_threads = 16;
}

static const struct opt_desc *opt_find(const char *name, size_t len)
{
	for (size_t i = 0; i < ARRAY_SIZE(opt_table); i++) {
		if (strlen(opt_table[i].name) == len &&
		    memcmp(opt_table[i].name, name, len) == 0)
			return &opt_table[i];
	}
	return NULL;
}

static int parse_seconds(const char *val, double *out)
{
	char *end;
	double d;

	errno = 0;
	d = strtod(val, &end);
	if (errno || end == val || *end || !isfinite(d) || d < 0 || d > 1e6)
		return -EINVAL;
	*out = d;
	return 0;
}

static int parse_uint(const char *val, unsigned long min, unsigned long max,
		      unsigned long *out)
{
	char *end;
	unsigned long v;

	if (*val < '0' || *val > '9')
		return -EINVAL;
	errno = 0;
	v = strtoul(val, &end, 10);
	if (errno || *end || v < min || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

/* "N" or "N:M:..." (different GPUs, at most 8) into o->gpus, o->ngpus. */
static int parse_gpus(const char *val, struct hmmfs_opts *o)
{
	char list[64], *save = NULL;
	unsigned int n = 0;
	unsigned long u;

	if (strlen(val) >= sizeof(list))
		return -EINVAL;
	snprintf(list, sizeof(list), "%s", val);
	if (!*list || list[strlen(list) - 1] == ':')
		return -EINVAL;
	for (char *t = strtok_r(list, ":", &save); t; t = strtok_r(NULL, ":", &save)) {
		if (n == OPTS_MAX_GPUS || parse_uint(t, 0, 255, &u))
			return -EINVAL;
		for (unsigned int k = 0; k < n; k++)
			if (o->gpus[k] == u)
				return -EINVAL;
		o->gpus[n++] = (unsigned int)u;
	}
	if (!n || strstr(val, "::") || val[0] == ':')
		return -EINVAL;
	o->ngpus = n;
	o->gpu = o->gpus[0];
	return 0;
}

/* The words each OPT_CHOICE option takes; its field is a char[16]. */
static const struct {
	const char *name, *words;
} opt_choices[] = {
	{ "io_engine", "uring|aio|psync" },
	{ "device", "hostsim|cuda|opencl|none" },
	{ "migrate", "bounce|promote|adaptive" },
	{ "device_copy", "auto|sync|async" },
	{ "device_peer", "on|off" },
	{ "ksm", "on|off" },
	{ "ksm_scope", "uid|all" },
};

static const char *choice_words(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(opt_choices); i++)
		if (!strcmp(opt_choices[i].name, name))
			return opt_choices[i].words;
	return "";
}

/* Is @val one of the words of @choices ("a|b|c")? */
static bool choice_ok(const char *choices, const char *val)
{
	size_t n = strlen(val);

	for (const char *c = choices; *c;) {
		size_t w = strcspn(c, "|");

		if (w == n && !memcmp(c, val, n))
			return true;
		c += w + (c[w] == '|');
	}
	return false;
}

/* "250", "250us", "2ms", "1s" -> microseconds, at most @max. */
static int parse_usec(const char *val, unsigned long max, uint64_t *out)
{
	static const struct { const char *sfx; uint64_t mult; } units[] = {
		{ "", 1 }, { "us", 1 }, { "ms", 1000 }, { "s", 1000000 },
	};
	char *end;
	unsigned long long v;

	if (*val < '0' || *val > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(val, &end, 10);
	if (errno)
		return -EINVAL;
	for (size_t i = 0; i < ARRAY_SIZE(units); i++)
		if (!strcmp(end, units[i].sfx)) {
			if (v > max / units[i].mult)
				return -ERANGE;
			*out = v * units[i].mult;
			return 0;
		}
	return -EINVAL;
}

static size_t dirty_bytes(const struct hmmfs_opts *o, size_t bytes,
			  unsigned int pct)
{
	return bytes ? bytes : o->host_cache / 100 * pct;
}

size_t opts_dirty_background(const struct hmmfs_opts *o)
{
	return dirty_bytes(o, o->dirty_background, o->dirty_background_pct);
}

size_t opts_dirty_limit(const struct hmmfs_opts *o)
{
	return dirty_bytes(o, o->dirty_limit, o->dirty_limit_pct);
}

/* SIZE or "N%" for the dirty thresholds. */
static int parse_dirty(const char *val, size_t *bytes, unsigned int *pct)
{
	size_t len = strlen(val);
	unsigned long p;
	uint64_t v;

	if (len > 1 && val[len - 1] == '%') {
		char num[16];

		if (len > sizeof(num))
			return -EINVAL;
		memcpy(num, val, len - 1);
		num[len - 1] = '\0';
		if (parse_uint(num, 1, 100, &p))
			return -EINVAL;
		*pct = (unsigned int)p;
		*bytes = 0;
		return 0;
	}
	if (size_parse(val, &v) || v == 0)
		return -EINVAL;
	*bytes = (size_t)v;
	return 0;
}

/* Append one option to o->fuse_opts, comma-separated. */
static int fuse_opts_append(struct hmmfs_opts *o, const char *opt)
{
	size_t old = o->fuse_opts ? strlen(o->fuse_opts) : 0;
	char *s = realloc(o->fuse_opts, old + strlen(opt) + 2);

	if (!s)
		return -ENOMEM;
	if (old)
		s[old++] = ',';
	strcpy(s + old, opt);
	o->fuse_opts = s;
	return 0;
}

static int opt_apply(struct hmmfs_opts *o, const struct opt_desc *d,
		     const char *opt, const char *val, char *err, size_t errlen)
{
	char *field = (char *)o + (d->offset == NO_FIELD ? 0 : d->offset);
	unsigned long u;

	switch (d->kind) {
	case OPT_FLAG:
	case OPT_NOFLAG:
	case OPT_PASS:
		if (val)
			return fail(err, errlen, "option '%s' takes no value",
				    d->name);
		if (d->offset != NO_FIELD)
			*(int *)field = d->kind != OPT_NOFLAG;
		return d->kind == OPT_PASS ? fuse_opts_append(o, opt) : 0;
	case OPT_PASS_VALUE:
		if (!val || !*val)
			return fail(err, errlen, "option '%s' needs a value (%s=...)",
				    d->name, d->name);
		if (strcmp(d->name, "fsname") == 0)
			o->fsname_set = 1;
		if (strcmp(d->name, "subtype") == 0)
			o->subtype_set = 1;
		return fuse_opts_append(o, opt);
	case OPT_SECONDS:
		if (!val || parse_seconds(val, (double *)field))
			return fail(err, errlen,
				    "option '%s' needs seconds from 0 to 1000000, got '%s'",
				    d->name, val ? val : "");
		return 0;
	case OPT_UINT:
		if (!val || parse_uint(val, d->min, d->max, &u))
			return fail(err, errlen,
				    "option '%s' needs a whole number from %lu to %lu, got '%s'",
				    d->name, d->min, d->max, val ? val : "");
		*(unsigned int *)field = (unsigned int)u;
		if (d->offset == FIELD(devices))
			o->devices_set = 1;
		return 0;
	case OPT_DROP:
		return 0;
	case OPT_SIZE: {
		uint64_t v;

		if (!val || size_parse(val, &v) || v < d->min || v > d->max ||
		    (d->offset == FIELD(page_size) && (v & (v - 1))))
			return fail(err, errlen,
				    "option '%s' needs a size%s (e.g. 64M), got '%s'",
				    d->name, d->offset == FIELD(page_size) ?
				    ": a power of two from 4K to 64K" : "",
				    val ? val : "");
		*(size_t *)field = v;
		return 0;
	}
	case OPT_DIRTY:
		/* the percentage field follows the bytes field by name */
		if (!val || parse_dirty(val, (size_t *)field,
					d->offset == FIELD(dirty_limit) ?
					&o->dirty_limit_pct : &o->dirty_background_pct))
			return fail(err, errlen,
				    "option '%s' needs a size or a percentage (e.g. 64M or 10%%), got '%s'",
				    d->name, val ? val : "");
		return 0;
	case OPT_VFS:
		if (val)
			return fail(err, errlen, "option '%s' takes no value", d->name);
		o->vfs_set = (o->vfs_set & ~d->max) | d->min;
		o->vfs_clear = (o->vfs_clear & ~d->min) | d->max;
		return 0;
	case OPT_CHOICE:
		if (!val || !choice_ok(choice_words(d->name), val))
			return fail(err, errlen, "option '%s' must be one of %s, got '%s'",
				    d->name, choice_words(d->name), val ? val : "");
		snprintf(field, 16, "%s", val);
		return 0;
	case OPT_GPUS:
		if (!val || parse_gpus(val, o))
			return fail(err, errlen,
				    "option '%s' needs a GPU number or a list of up to 8 "
				    "different ones, each 0 to %lu, e.g. gpu=0:2, got '%s'",
				    d->name, d->max, val ? val : "");
		return 0;
	case OPT_USEC:
		if (!val || parse_usec(val, d->max, (uint64_t *)field))
			return fail(err, errlen,
				    "option '%s' needs a time up to %lu us (e.g. 20us, 2ms), got '%s'",
				    d->name, d->max, val ? val : "");
		return 0;
	}
	return fail(err, errlen, "internal error on option '%s'", d->name);
}

/* One element of a -o list: "name" or "name=value". */
static int opt_parse_one(struct hmmfs_opts *o, const char *opt,
			 char *err, size_t errlen)
{
	const char *eq = strchr(opt, '=');
	size_t len = eq ? (size_t)(eq - opt) : strlen(opt);
	const struct opt_desc *d;

	if (len == 0)
		return *opt ? fail(err, errlen, "empty option name in '%s'", opt) : 0;
	if (strncmp(opt, "x-", 2) == 0)	/* fstab x-systemd.* and friends */
		return 0;
	if (strcmp(opt, "help") == 0) {	/* -o help, as libfuse's tools take it */
		o->show_help = 1;
		return 0;
	}
	d = opt_find(opt, len);
	if (!d)
		return fail(err, errlen, "unknown option '%.*s' (see hmmfs --help)",
			    (int)len, opt);
	return opt_apply(o, d, opt, eq ? eq + 1 : NULL, err, errlen);
}

/* A -o argument: a comma-separated list. */
static int opt_parse_list(struct hmmfs_opts *o, const char *list,
			  char *err, size_t errlen)
{
	char *copy = strdup(list), *save = NULL, *tok;
	int ret = 0;

	if (!copy)
		return -ENOMEM;
	for (tok = strtok_r(copy, ",", &save); tok && !ret;
	     tok = strtok_r(NULL, ",", &save))
		ret = opt_parse_one(o, tok, err, errlen);
	free(copy);
	return ret;
}

static int opt_positional(struct hmmfs_opts *o, const char *arg,
			  char *err, size_t errlen)
{
	if (!o->backing)
		o->backing = arg;
	else if (!o->mountpoint)
		o->mountpoint = arg;
	else
		return fail(err, errlen, "unexpected argument '%s'", arg);
	return 0;
}

static int opt_parse_arg(struct hmmfs_opts *o, int argc, char **argv, int *i,
			 char *err, size_t errlen)
{
	const char *a = argv[*i];

	if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0)
		o->show_help = 1;
	else if (strcmp(a, "-V") == 0 || strcmp(a, "--version") == 0)
		o->show_version = 1;
	else if (strcmp(a, "-f") == 0 || strcmp(a, "--foreground") == 0)
		o->foreground = 1;
	else if (strcmp(a, "-s") == 0)
		o->singlethread = 1;
	else if (strcmp(a, "-d") == 0)
		return opt_parse_one(o, "debug", err, errlen);
	else if (strcmp(a, "-o") == 0) {
		if (*i + 1 >= argc)
			return fail(err, errlen, "-o needs an option list");
		return opt_parse_list(o, argv[++*i], err, errlen);
	} else if (strncmp(a, "-o", 2) == 0)
		return opt_parse_list(o, a + 2, err, errlen);
	else if (a[0] == '-' && a[1])
		return fail(err, errlen, "unknown flag '%s' (see hmmfs --help)", a);
	else
		return opt_positional(o, a, err, errlen);
	return 0;
}

/*
 * The GPU of each device: the list gpu= gave (which sets devices=), or
 * gpu, gpu+1, ... for devices=N.
 */
static int opts_gpu_list(struct hmmfs_opts *o, char *err, size_t errlen)
{
	if (o->ngpus > 1) {
		if (o->devices_set && o->devices != o->ngpus)
			return fail(err, errlen, "gpu= lists %u GPUs but devices=%u: "
				    "give one of them", o->ngpus, o->devices);
		o->devices = o->ngpus;
		return 0;
	}
	if (o->gpu + o->devices > 256)
		return fail(err, errlen, "gpu=%u,devices=%u: GPU numbers run past 255",
			    o->gpu, o->devices);
	for (unsigned int k = 0; k < o->devices; k++)
		o->gpus[k] = o->gpu + k;
	o->ngpus = o->devices;
	return 0;
}

int opts_parse(int argc, char **argv, struct hmmfs_opts *o,
	       char *err, size_t errlen)
{
	int ret;

	opts_set_defaults(o);
	err[0] = '\0';
	for (int i = 1; i < argc; i++) {
		ret = opt_parse_arg(o, argc, argv, &i, err, errlen);
		if (ret)
			return ret;
	}
	if (o->debug)
		o->foreground = 1;
	/*
	 * Every modelled copy must end soon: one bounded request (64 MiB of
	 * migration, include/hmmfs_ioctl.h) within about a minute.
	 */
	if (o->device_bw && o->device_bw < DEVICE_BW_MIN)
		return fail(err, errlen, "device_bw=%llu: under 1 MiB/s one migrate "
			    "step (64 MiB) would take over a minute; give at least "
			    "1M (or 0: no bandwidth model)",
			    (unsigned long long)o->device_bw);
	if (o->devices > 1 && !strcmp(o->device, "none"))
		return fail(err, errlen, "devices=%u with device=none: no device tier "
			    "to have several of", o->devices);
	ret = opts_gpu_list(o, err, errlen);
	if (ret)
		return ret;
	if (o->direct_io)
		o->writeback_cache = 0;	/* no kernel page cache to batch in */
	if (o->allow_other && o->allow_root)
		return fail(err, errlen, "allow_other and allow_root: give one (allow_other "
			    "lets every user in, allow_root only root besides the owner)");
	if (o->allow_other && !o->default_permissions) {
		/* Other users' access must be checked, and we run as root. */
		ret = fuse_opts_append(o, "default_permissions");
		if (ret)
			return ret;
		o->default_permissions = 1;
	}
	if (o->show_help || o->show_version)
		return 0;
	if (!o->backing || !o->mountpoint)
		return fail(err, errlen, "usage: hmmfs BACKING MOUNTPOINT [-o opt,...] [-f] [-d]");
	return 0;
}

void opts_free(struct hmmfs_opts *o)
{
	free(o->fuse_opts);
	o->fuse_opts = NULL;
}

/* fsname= value with libfuse's escapes for ',' and '\'. */
static char *fsname_escape(const char *name)
{
	char *out = malloc(2 * strlen(name) + 1), *p = out;

	if (!out)
		return NULL;
	for (; *name; name++) {
		if (*name == ',' || *name == '\\')
			*p++ = '\\';
		*p++ = *name;
	}
	*p = '\0';
	return out;
}

static int fuse_opt_add_default(char **s, int present, const char *opt,
				const char *val)
{
	size_t len;
	char *n;

	if (present)
		return 0;
	len = (*s ? strlen(*s) + 1 : 0) + strlen(opt) + (val ? strlen(val) : 0) + 1;
	n = malloc(len);
	if (!n)
		return -ENOMEM;
	snprintf(n, len, "%s%s%s%s", *s ? *s : "", *s ? "," : "", opt,
		 val ? val : "");
	free(*s);
	*s = n;
	return 0;
}

int opts_fuse_argv(const struct hmmfs_opts *o, const char *fsname,
		   struct opts_fuse_argv *fa)
{
	char *s = o->fuse_opts ? strdup(o->fuse_opts) : NULL;
	char *esc = fsname_escape(fsname);
	int ret = (o->fuse_opts && !s) || !esc ? -ENOMEM : 0;

	if (!ret)
		ret = fuse_opt_add_default(&s, o->fsname_set, "fsname=", esc);
	if (!ret)
		ret = fuse_opt_add_default(&s, o->subtype_set, "subtype=hmmfs", NULL);
	free(esc);
	if (ret) {
		free(s);
		return ret;
	}
	fa->optstr = s;
	fa->argc = 3;
	fa->argv[0] = "hmmfs";
	fa->argv[1] = "-o";
	fa->argv[2] = s;
	fa->argv[3] = NULL;
	return 0;
}

void opts_fuse_argv_free(struct opts_fuse_argv *fa)
{
	free(fa->optstr);
	fa->optstr = NULL;
}

void opts_print_help(const char *progname)
{
	printf("usage: %s BACKING MOUNTPOINT [-o opt,...] [-f] [-d] [-s]\n"
	       "\n"
	       "Mirror the directory BACKING at MOUNTPOINT through hmmfs.\n"
	       "\n"
	       "  -f              stay in the foreground\n"
	       "  -d              debug output (implies -f)\n"
	       "  -s              single-threaded\n"
	       "  -h, --help      this help\n"
	       "  -V, --version   print the version\n"
	       "\n"
	       "Options (-o):\n", progname);
	for (size_t i = 0; i < ARRAY_SIZE(opt_table); i++) {
		const struct opt_desc *d = &opt_table[i];

		if (!d->help)
			continue;
		char left[64];
		const char *desc = d->help;

		if (d->help[0] == '=') {	/* "=ARG   description" */
			size_t arg = strcspn(d->help, " ");

			snprintf(left, sizeof(left), "%s%.*s", d->name, (int)arg, d->help);
			desc = d->help + arg + strspn(d->help + arg, " ");
		} else {
			snprintf(left, sizeof(left), "%s", d->name);
		}
		if (strlen(left) >= 26)	/* long choice lists: description below */
			printf("  %s\n  %-26s%s\n", left, "", desc);
		else
			printf("  %-26s%s\n", left, desc);
	}
	printf("\nStandard mount options (ro, rw, nosuid, nodev, noexec, noatime, ...)\n"
	       "are passed to the kernel.\n");
}
