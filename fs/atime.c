/* SPDX-License-Identifier: MIT */
/*
 * fs/atime.c — access times of regular files, by the mount's atime policy.
 *
 * The kernel's FUSE driver never sets atime itself (FUSE inodes are
 * S_NOATIME): it asks us with GETATTR after a read that reached us.  And
 * many reads never touch BACKING, since hmmfs's cache serves them, so
 * BACKING's atime would not move.  So the daemon applies the policy of its
 * own mount (noatime, relatime, strictatime, ro), read from mountinfo since
 * a remount changes it behind our back, and BACKING's atime is the only
 * record of it: getattr reports it, and it persists across mounts.
 *
 * Setting it.  utimensat() would move BACKING's ctime as well, which a
 * read must not do (generic/003 checks it).  A read of BACKING moves atime
 * alone, but under BACKING's own policy (usually relatime, which would
 * refuse the second read of strictatime).  So we read one byte through a
 * private clone of BACKING's mount that has strictatime (open_tree and
 * mount_setattr, needing CAP_SYS_ADMIN), reaching the file by its handle
 * (open_by_handle_at).  Without the clone, the byte is read through
 * BACKING itself and BACKING's policy applies too.  Every other read of
 * BACKING by hmmfs uses O_NOATIME where allowed, so only this one counts.
 *
 * When.  A read that reaches us under strictatime sets atime; under
 * relatime, the first read after atime fell behind mtime or ctime (or a
 * day old), as the kernel's relatime_need_update() decides.  Reads the
 * kernel serves from its own page cache never reach us, so an open drops
 * that cache (no keep_cache) when its next read would set atime: always
 * under strictatime, rarely under relatime.  Reads within one open from
 * the kernel's cache still set no atime under strictatime.
 *
 * Locking: fs->atime fields are atomics, each written alone; a race only
 * reads mountinfo twice.  inode->atime_due is an atomic flag.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fs/fs.h"
#include "fs/guard.h"
#include "log/log.h"
#include "lib/time.h"

#define ATIME_RECHECK_MS 1000	/* how stale the mount's flags may be */
#define RELATIME_MAX_AGE (24 * 60 * 60)

static int64_t now_ms(void)
{
	return (int64_t)mono_coarse_ms();
}

/* The policy named by per-mount options "rw,nosuid,relatime,...". */
static int atime_mode_parse(char *opts)
{
	int mode = ATIME_STRICT;	/* neither noatime nor relatime */

	for (char *save = NULL, *t = strtok_r(opts, ",", &save); t;
	     t = strtok_r(NULL, ",", &save)) {
		if (strcmp(t, "ro") == 0 || strcmp(t, "noatime") == 0)
			return ATIME_NEVER;
		if (strcmp(t, "relatime") == 0)
			mode = ATIME_RELATIME;
	}
	return mode;
}

/* Re-read the mount's flags if they are older than ATIME_RECHECK_MS. */
static int atime_mode_get(struct hmmfs *fs)
{
	struct hmm_atime *a = &fs->atime;
	int64_t now = now_ms();
	char opts[512];

	if (!a->path || now - atomic_load(&a->checked_ms) < ATIME_RECHECK_MS)
		return atomic_load(&a->mode);
	atomic_store(&a->checked_ms, now);
	if (guard_mount_options(a->path, opts, sizeof(opts)) == 0)
		atomic_store(&a->mode, atime_mode_parse(opts));
	return atomic_load(&a->mode);
}

/* A private mount of BACKING with strictatime, or -errno. */
static int atime_clone_backing(int backing_fd)
{
	struct mount_attr attr = {
		.attr_set = MOUNT_ATTR_STRICTATIME,
		.attr_clr = MOUNT_ATTR__ATIME,
	};
	int fd = open_tree(backing_fd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC |
			   AT_EMPTY_PATH);
	int ret;

	if (fd < 0)
		return -errno;
	if (mount_setattr(fd, "", AT_EMPTY_PATH, &attr, sizeof(attr)) < 0) {
		ret = -errno;
		close(fd);
		return ret;
	}
	/*
	 * open_by_handle_at() takes no O_PATH descriptor as its mount; an
	 * open directory of the clone keeps the clone alive on its own.
	 */
	ret = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (ret < 0)
		ret = -errno;
	close(fd);
	return ret;
}

int atime_setup(struct hmmfs *fs, const char *mountpoint)
{
	struct hmm_atime *a = &fs->atime;
	char real[PATH_MAX];

	a->mnt = atime_clone_backing(itab_root_fd(&fs->itab));
	atomic_init(&a->mode, ATIME_RELATIME);
	atomic_init(&a->checked_ms, 0);
	if (realpath(mountpoint, real)) {
		a->path = strdup(real);
		if (!a->path)
			return -ENOMEM;
	}
	atime_mode_get(fs);
	return 0;
}

void atime_cleanup(struct hmmfs *fs)
{
	if (fs->atime.mnt >= 0)
		close(fs->atime.mnt);
	fs->atime.mnt = -1;
	free(fs->atime.path);
	fs->atime.path = NULL;
}

/* @inode opened for reading on the strictatime clone, or -1. */
static int atime_open_clone(struct hmmfs *fs, struct hmm_inode *inode)
{
	union {
		struct file_handle fh;
		char buf[sizeof(struct file_handle) + MAX_HANDLE_SZ];
	} h;
	int mnt_id, fd;

	if (fs->atime.mnt < 0)
		return -1;
	h.fh.handle_bytes = MAX_HANDLE_SZ;
	fd = itab_fd_get(&fs->itab, inode);
	if (fd < 0)
		return -1;
	if (name_to_handle_at(fd, "", &h.fh, &mnt_id, AT_EMPTY_PATH) < 0)
		h.fh.handle_bytes = 0;
	itab_fd_put(&fs->itab, inode);
	if (!h.fh.handle_bytes)
		return -1;
	return open_by_handle_at(fs->atime.mnt, &h.fh, O_RDONLY | O_CLOEXEC);
}

/* Set @inode's atime in BACKING to now by reading a byte of it. */
static void atime_touch(struct hmmfs *fs, struct hmm_inode *inode)
{
	int fd = atime_open_clone(fs, inode), pfd;
	char path[64], c;

	if (fd < 0 && (pfd = itab_fd_get(&fs->itab, inode)) >= 0) {
		snprintf(path, sizeof(path), "/proc/self/fd/%d", pfd);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		itab_fd_put(&fs->itab, inode);
	}
	if (fd < 0)
		return;		/* unreadable to us: atime stays */
	if (pread(fd, &c, 1, 0) < 0)
		log_warn("cannot set atime: %s", strerror(errno));
	close(fd);
}

static bool ts_le(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec < b->tv_sec ||
	       (a->tv_sec == b->tv_sec && a->tv_nsec <= b->tv_nsec);
}

bool atime_open(struct hmmfs *fs, struct hmm_inode *inode)
{
	struct stat st;
	struct timespec now;
	int fd, err;

	switch (atime_mode_get(fs)) {
	case ATIME_NEVER:
		return false;
	case ATIME_STRICT:
		return true;
	}
	fd = itab_fd_get(&fs->itab, inode);
	if (fd < 0)
		return false;
	err = fstatat(fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW);
	itab_fd_put(&fs->itab, inode);
	if (err < 0)
		return false;
	clock_gettime(CLOCK_REALTIME, &now);
	/* as the kernel's relatime_need_update() */
	if (ts_le(&st.st_atim, &st.st_mtim) || ts_le(&st.st_atim, &st.st_ctim) ||
	    now.tv_sec - st.st_atim.tv_sec >= RELATIME_MAX_AGE)
		atomic_store(&inode->atime_due, 1);
	return atomic_load(&inode->atime_due);
}

void atime_read(struct hmmfs *fs, struct hmm_inode *inode)
{
	switch (atomic_load(&fs->atime.mode)) {
	case ATIME_NEVER:
		return;
	case ATIME_RELATIME:
		if (!atomic_exchange(&inode->atime_due, 0))
			return;
		break;
	}
	atime_touch(fs, inode);
}

void atime_written(struct hmm_inode *inode)
{
	/* mtime moves past atime: relatime sets atime at the next read */
	atomic_store(&inode->atime_due, 1);
}
