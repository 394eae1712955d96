/* SPDX-License-Identifier: MIT */
/*
 * fs/fs.h — the daemon's state shared by main.c and ops.c.
 */
#ifndef HMMFS_FS_FS_H
#define HMMFS_FS_FS_H

#define FUSE_USE_VERSION 314
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/types.h>

struct cache;
struct notifier;

#include "fs/inode.h"
#include "fs/options.h"

/* A doubly linked list node (ops.c's open files). */
struct hmm_file_link {
	struct hmm_file_link *prev, *next;
};

/**
 * struct hmmfs - one mounted file system.
 * @opts:     the parsed options; read-only after start.
 * @itab:     node ids <-> backing objects.
 * @se:       the libfuse session.
 * @cache:    the page cache, or NULL with host_cache=0 (passthrough).
 * @uid, @gid: the daemon's own effective ids; callers with other ids get
 *            new files made under their own (see ops.c, creds_*).
 * @ngroups, @groups: the daemon's supplementary groups, restored after
 *            creating a file for another user.
 * @files_lock: guards @open_files and @open_dirs.
 * @open_files: every open regular file (ops.c, struct hmm_file).
 * @open_dirs: every open directory (ops.c, struct hmm_dir).
 * @notifier: sends kernel cache invalidations (notify.c); NULL before the
 *            session serves and after it ended.
 */
struct hmmfs {
	const struct hmmfs_opts *opts;
	struct itab itab;
	struct fuse_session *se;
	struct cache *cache;
	uid_t uid;
	gid_t gid;
	int ngroups;
	gid_t groups[64];
	pthread_mutex_t files_lock;
	struct hmm_file_link open_files;
	struct hmm_file_link open_dirs;
	struct notifier *_Atomic notifier;
};

/* notify.c: kernel cache invalidations, sent by their own thread. */
int notify_start(struct hmmfs *fs);
void notify_stop(struct hmmfs *fs);
/* The cache's inval hook (@arg is the struct hmmfs): queue only. */
void notify_inval(void *arg, uint64_t ino, off_t off, off_t len);
/* Wait until what was queued so far was sent.  Return: 0 or -ETIMEDOUT. */
int notify_flush(struct hmmfs *fs, unsigned int timeout_ms);

/* The operations table, in ops.c. */
extern const struct fuse_lowlevel_ops hmmfs_ops;

/* Close the files and directories still open when the session ended. */
void hmmfs_open_files_free(struct hmmfs *fs);

/* itab->release: drop an inode's cache state (writing it back). */
void hmmfs_inode_release(void *arg, struct hmm_inode *inode);

#endif
