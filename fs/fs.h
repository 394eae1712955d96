/* SPDX-License-Identifier: MIT */
/*
 * fs/fs.h — the daemon's state shared by main.c and the ops*.c files.
 */
#ifndef HMMFS_FS_FS_H
#define HMMFS_FS_FS_H

#define FUSE_USE_VERSION 314
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct cache;
struct notifier;

#include "fs/inode.h"
#include "fs/options.h"
#include "lib/list.h"


/* When reads set atime (atime.c): the mount's atime flags. */
enum atime_mode {
	ATIME_NEVER,		/* noatime, or read-only */
	ATIME_RELATIME,		/* relatime (the default) */
	ATIME_STRICT,		/* strictatime: every read */
};

/**
 * struct hmm_atime - the mount's atime policy and how to apply it.
 * @mnt:        a private strictatime clone of BACKING's mount, to set
 *              atime by reading; -1 where it could not be made.
 * @path:       the mount point, resolved, to find it in mountinfo.
 * @mode:       enum atime_mode, as mountinfo last said.
 * @checked_ms: when mountinfo was last read (CLOCK_MONOTONIC_COARSE).
 */
struct hmm_atime {
	int mnt;
	char *path;
	_Atomic int mode;
	_Atomic int64_t checked_ms;
};

/**
 * struct hmmfs - one mounted file system.
 * @opts:     the parsed options; read-only after start.
 * @itab:     node ids <-> backing objects.
 * @se:       the libfuse session.
 * @cache:    the page cache, or NULL with host_cache=0 (passthrough).
 * @uid, @gid: the daemon's own effective ids; callers with other ids get
 *            new files made under their own (see ops_cred.c, creds_*).
 * @ngroups, @groups: the daemon's supplementary groups, all of them
 *            (malloc'd once, for the daemon's life), restored after
 *            creating a file for another user.
 * @files_lock: guards @open_files and @open_dirs.
 * @open_files: every open regular file (ops_file.c, struct hmm_file).
 * @open_dirs: every open directory (ops_dir.c, struct hmm_dir).
 * @notifier: sends kernel cache invalidations (notify.c); NULL before the
 *            session serves and after it ended.
 * @atime:    the mount's atime policy (atime.c).
 */
struct hmmfs {
	const struct hmmfs_opts *opts;
	struct itab itab;
	struct fuse_session *se;
	struct cache *cache;
	uid_t uid;
	gid_t gid;
	int ngroups;
	gid_t *groups;
	pthread_mutex_t files_lock;
	struct clist open_files;
	struct clist open_dirs;
	struct notifier *_Atomic notifier;
	struct hmm_atime atime;
	off_t max_size;		/* BACKING's largest file size; set at mount */
};

/*
 * atime.c: access times by the mount's policy.  atime_setup() runs once
 * the mount is made; atime_open() says whether the next read of @inode
 * should set atime (the kernel must then not serve it from its cache);
 * atime_read() sets it, if due, after a read reached us; atime_written()
 * notes a write (relatime's next read sets atime).
 */
int atime_setup(struct hmmfs *fs, const char *mountpoint);
void atime_cleanup(struct hmmfs *fs);
bool atime_open(struct hmmfs *fs, struct hmm_inode *inode);
void atime_read(struct hmmfs *fs, struct hmm_inode *inode);
void atime_written(struct hmm_inode *inode);

/*
 * ops_ioctl.c: the cache's cancelled hook (@arg is the struct hmmfs): has
 * the caller of the migrate, devop, replicate or devread this thread runs
 * gone (a FUSE INTERRUPT came for it: the caller was killed), or is the
 * daemon ending?
 */
bool ioctl_cancelled(void *arg);

/* notify.c: kernel cache invalidations, sent by their own thread. */
int notify_start(struct hmmfs *fs);
void notify_stop(struct hmmfs *fs);
/* The cache's inval hook (@arg is the struct hmmfs): queue only. */
void notify_inval(void *arg, uint64_t ino, off_t off, off_t len);
/* Drop the kernel's attributes of @ino now, from this thread. */
void notify_inval_attr_now(struct hmmfs *fs, uint64_t ino);
/* Wait until what was queued so far was sent.  Return: 0 or -ETIMEDOUT. */
int notify_flush(struct hmmfs *fs, unsigned int timeout_ms);

/* The operations table, in ops.c. */
extern const struct fuse_lowlevel_ops hmmfs_ops;

/* Close the files and directories still open when the session ended. */
void hmmfs_open_files_free(struct hmmfs *fs);

/* itab->release: drop an inode's cache state (writing it back). */
void hmmfs_inode_release(void *arg, struct hmm_inode *inode);

#endif
