/* SPDX-License-Identifier: MIT */
/*
 * fs/options.h — hmmfs command line and mount options.
 *
 * opts_parse() turns argv into a struct hmmfs_opts plus the argument vector
 * handed to libfuse (fuse_session_new).  Every -o option is either ours
 * (parsed and checked here), a mount option libfuse knows (checked here by
 * name, passed through), or mount(8)/fstab noise that is accepted and
 * dropped.  Anything else is an error with a message, so a typo never turns
 * into a silently ignored option.
 */
#ifndef HMMFS_FS_OPTIONS_H
#define HMMFS_FS_OPTIONS_H

#include <stddef.h>
#include <stdint.h>

#define OPTS_MAX_GPUS 8		/* = DEV_MAX_UNITS: one GPU per device */

/**
 * struct hmmfs_opts - what the user asked for.
 * @backing:          BACKING as given (checked and resolved by main.c).
 * @mountpoint:       MOUNTPOINT as given.
 * @foreground:       -f: do not daemonize.
 * @debug:            -d: libfuse debug output (implies -f).
 * @singlethread:     -s: one request at a time.
 * @show_help:        -h/--help.
 * @show_version:     -V/--version.
 * @direct_io:        every read and write reaches the daemon (no kernel
 *                    page cache for file data).
 * @kernel_cache:     keep the kernel page cache across opens even if the
 *                    backing file changed (default: dropped when the
 *                    backing mtime or size changed since the last close).
 * @writeback_cache:  let the kernel batch writes (FUSE writeback cache);
 *                    on unless nowriteback_cache or direct_io.
 * @kernel_dirty:     bytes of dirty data the kernel may hold for the mount
 *                    (the bdi's max_bytes, bdi.c); 0: the kernel's default.
 * @splice:           move file data with splice(2) where it helps.
 * @noxattr:          no extended attributes (the kernel stops asking).
 * @allow_other:      other users may use the mount (implies
 *                    default_permissions: the kernel checks permissions).
 * @allow_root:       root may use the mount too (libfuse's option; with
 *                    the daemon run by root: root only)
 * @default_permissions: the kernel checks permissions from the mode bits.
 * @attr_timeout:     seconds the kernel may cache attributes.
 * @entry_timeout:    seconds the kernel may cache name lookups.
 * @negative_timeout: seconds the kernel may cache "no such name".
 * @max_threads:      upper bound on worker threads.
 * @clone_fd:         one /dev/fuse fd per worker thread.
 * @max_fds:          cached O_PATH descriptors of backing objects (the
 *                    inode table's, fdcache.c); 0: the default.
 * @page_size:        cache page size in bytes (4K..64K, power of two).
 * @host_cache:       host page cache budget in bytes; 0 turns the cache
 *                    off (plain passthrough).
 * @dirty_expire_ms:  a page dirty this long is written back.
 * @dirty_background: dirty bytes above which writeback starts.
 * @dirty_limit:      dirty bytes above which writers wait.
 * @dirty_background_pct, @dirty_limit_pct: the same given as a percentage
 *                    of host_cache (used when the byte value is 0).
 * @io_engine:        backing I/O engine: "uring", "aio" or "psync".
 * @device:           device tier backend: "hostsim", "cuda" or "none".
 * @device_cache:     device memory budget in bytes.
 * @device_bw:        hostsim bandwidth model, bytes/s (0: unlimited).
 * @device_lat_us:    hostsim latency model per operation.
 * @device_copy:      "auto", "sync" or "async": how reads and writes of
 *                    device pages run their copies (device.h).
 * @devices:          how many devices (1..8); @devices_set: given.
 * @device_peer:      "on" or "off": copies between devices by the peer path.
 * @gpu:              cuda: GPU ordinal (of the first device).
 * @gpus, @ngpus:     cuda: the GPU of each device, after opts_parse():
 *                    gpu=N:M:... as given, or gpu, gpu+1, ... .
 * @cl_platform:      opencl: the platform (its devices are @gpus).
 * @migrate:          "bounce", "promote" or "adaptive".
 * @bounce_buffers:   bounce buffers (one page each).
 * @ksm:              "on" or "off": the dedupe scanner at start.
 * @ksm_scope:        "uid": dedupe merges only pages of files with one
 *                    owner (st_uid); "all": any files.
 * @vfs_set, @vfs_clear: MS_* per-mount atime flags (relatime,
 *                    strictatime, nodiratime and their opposites) that
 *                    libfuse does not take; main.c applies them to the
 *                    mount with a bind remount.
 * @fuse_opts:        comma-joined mount options for libfuse (malloc'd).
 * @fsname_set:       the user gave fsname= (else it defaults to BACKING).
 * @subtype_set:      the user gave subtype= (else "hmmfs").
 */
struct hmmfs_opts {
	const char *backing;
	const char *mountpoint;
	int foreground;
	int debug;
	int singlethread;
	int show_help;
	int show_version;
	int direct_io;
	int kernel_cache;
	int writeback_cache;
	size_t kernel_dirty;
	int splice;
	int noxattr;
	int allow_other;
	int allow_root;
	int default_permissions;
	double attr_timeout;
	double entry_timeout;
	double negative_timeout;
	unsigned int max_threads;
	int clone_fd;
	unsigned int max_fds;
	size_t page_size;
	size_t host_cache;
	unsigned int dirty_expire_ms;
	size_t dirty_background;
	size_t dirty_limit;
	unsigned int dirty_background_pct;
	unsigned int dirty_limit_pct;
	char io_engine[16];
	char device[16];
	size_t device_cache;
	size_t device_bw;
	uint64_t device_lat_us;
	unsigned int devices;
	int devices_set;
	unsigned int gpu;
	unsigned int gpus[OPTS_MAX_GPUS], ngpus;
	unsigned int cl_platform;
	char device_copy[16];
	char device_peer[8];
	char migrate[16];
	unsigned int bounce_buffers;
	char ksm[16];
	char ksm_scope[16];
	unsigned long vfs_set;
	unsigned long vfs_clear;
	char *fuse_opts;
	int fsname_set;
	int subtype_set;
};

/* An argument vector for libfuse's fuse_session_new(). */
struct opts_fuse_argv {
	int argc;
	char *argv[4];
	char *optstr;	/* owned: the string behind argv[2] */
};

/**
 * opts_parse() - parse the command line.
 * @argc, @argv: as given to main().
 * @o:           filled with defaults, then with what argv asks for; release
 *               with opts_free().
 * @err, @errlen: on failure, a one-line message for the user.
 *
 * Return: 0, or -EINVAL (bad usage or option) / -ENOMEM.
 */
int opts_parse(int argc, char **argv, struct hmmfs_opts *o,
	       char *err, size_t errlen);

void opts_free(struct hmmfs_opts *o);

/**
 * opts_fuse_argv() - build libfuse's argument vector.
 * @o:      parsed options.
 * @fsname: the default fsname (the resolved BACKING path).
 * @fa:     filled; release with opts_fuse_argv_free().
 *
 * Adds fsname=, subtype=hmmfs and default_permissions (with allow_other)
 * unless given.  Return: 0 or -ENOMEM.
 */
int opts_fuse_argv(const struct hmmfs_opts *o, const char *fsname,
		   struct opts_fuse_argv *fa);

void opts_fuse_argv_free(struct opts_fuse_argv *fa);

/* The dirty thresholds in bytes, from bytes or percentages of host_cache. */
size_t opts_dirty_background(const struct hmmfs_opts *o);
size_t opts_dirty_limit(const struct hmmfs_opts *o);

/* Print the option list (for --help). */
void opts_print_help(const char *progname);

#endif
