/* SPDX-License-Identifier: MIT */
/*
 * fs/ops_int.h — what the files of the FUSE operations share: ops.c (the
 * table, init, common glue), ops_cred.c, ops_entry.c, ops_attr.c,
 * ops_file.c, ops_data.c, ops_dir.c, ops_xattr.c and ops_ioctl.c.
 *
 * Internal to those files: the rest of the daemon uses fs/fs.h.  It holds
 * the open-handle structs, the handlers that hmmfs_ops (ops.c) names, and
 * the helpers that one family calls in another.  Helpers return 0 or
 * -errno; only the handlers reply.
 */
#ifndef HMMFS_FS_OPS_INT_H
#define HMMFS_FS_OPS_INT_H

#include <dirent.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "fs/fs.h"
#include "cache/cache.h"

#define MAX_IO (1u << 20)	/* max_read / max_write */
#define OFF_MAX ((off_t)INT64_MAX)

/**
 * struct hmm_file - an open regular file.
 * @fd: the backing file, opened with the caller's flags (less O_DIRECT).
 * @inode: its inode, whose O_PATH descriptor this open holds a reference
 *      to until release (an unlinked file may have no handle that opens).
 * @ra: the cache's readahead state for this open file.
 * @link: on fs->open_files (fs->files_lock), so that files still open when
 *      the daemon ends (no RELEASE will come) are closed and freed.
 * @held: the cache's state of the file, held (cache_file_hold) from the
 *      first I/O through this open file to its release; NULL before.
 * @hash: a device XXH64 in progress over several HMMFS_IOC_DEVREAD
 *      requests on this open file, or NULL; taken by exchange, so two
 *      requests at once cannot share it.
 */
struct hmm_file {
	int fd;
	struct hmm_inode *inode;
	int accmode;	/* O_RDONLY, O_WRONLY or O_RDWR, from open */
	struct cache_ra ra;
	struct clist link;
	struct cfile *_Atomic held;
	struct cache_xxh64 *_Atomic hash;
};

/**
 * struct hmm_dir - an open directory.
 * @dp:     the backing stream.
 * @offset: the kernel's offset @entry belongs to.
 * @entry:  an entry read but not yet returned (it did not fit).
 */
struct hmm_dir {
	DIR *dp;
	struct hmm_inode *inode;	/* referenced descriptor, as hmm_file's */
	off_t offset;
	struct dirent *entry;
	struct clist link;	/* on fs->open_dirs (files_lock) */
};

/**
 * struct creds - what creds_become() changed on the calling thread.
 * @switched: the thread runs with the caller's fsuid, fsgid and groups.
 * @umask_set: the thread's umask is the caller's (umask_become()).
 */
struct creds {
	int switched;
	int umask_set;		/* this thread's umask is the caller's */
};

/* ---- ops.c: common glue ---------------------------------------------- */

/* The mount a request belongs to (the session's userdata). */
struct hmmfs *fs_of(fuse_req_t req);
/* The inode of node id @ino, which the kernel holds; aborts if none has it. */
struct hmm_inode *inode_of(fuse_req_t req, fuse_ino_t ino);
/* The node id the kernel knows @inode by (FUSE_ROOT_ID for the root). */
fuse_ino_t node_id(struct hmmfs *fs, struct hmm_inode *inode);
/* "/proc/self/fd/N" of @fd, into @buf. */
void fd_path(char buf[64], int fd);
/* The struct hmm_file of an open regular file. */
struct hmm_file *file_of(struct fuse_file_info *fi);
/* The backing descriptor of an open regular file. */
int fh_fd(struct fuse_file_info *fi);
/*
 * openat(), retried once after the descriptor cache gave some back if it
 * failed with EMFILE or ENFILE.  Return: the descriptor or -errno.
 */
int openat_retry(struct hmmfs *fs, int dirfd, const char *name, int flags,
		 mode_t mode);
/* Reply to @req with 0 or the error of @ret (-errno). */
void reply_status(fuse_req_t req, int ret);
/* Add @l to the open-handle list @head.  Context: takes fs->files_lock. */
void open_list_add(struct hmmfs *fs, struct clist *head,
		   struct clist *l);
/* Take @l off its open-handle list.  Context: takes fs->files_lock. */
void open_files_del(struct hmmfs *fs, struct clist *l);

/* ---- ops_cred.c: the caller's credentials ---------------------------- */

/*
 * Run this thread with the caller's fsuid, fsgid and groups (a root daemon
 * serving someone else only); undo with creds_restore().  Return: 0 or
 * -errno.
 */
int creds_become(struct hmmfs *fs, fuse_req_t req, struct creds *c);
/* Undo creds_become() and umask_become() on this thread. */
void creds_restore(struct hmmfs *fs, struct creds *c);
/* The caller's umask for a create: this thread's, or masked into @mode. */
void umask_become(fuse_req_t req, mode_t *mode, struct creds *c);
/* Is @gid among the caller's supplementary groups?  Return: 1 or 0. */
int in_groups(fuse_req_t req, gid_t gid);

/* ---- ops_entry.c: lookup and names ----------------------------------- */

/* Clear @e and set the mount's attribute and entry timeouts. */
void entry_init(struct hmmfs *fs, struct fuse_entry_param *e);
/*
 * Look @name up below @dir into @e, counting one kernel lookup.
 * Return: 0 or -errno.
 */
int do_lookup(struct hmmfs *fs, struct hmm_inode *dir, const char *name,
	      struct fuse_entry_param *e);

/* ---- ops_attr.c: attributes ------------------------------------------ */

/*
 * Clear setuid/setgid of the backing file @fd as a local write, truncate
 * or O_TRUNC open by a caller without CAP_FSETID would; drop the kernel's
 * attributes of @ino (0: none) before the reply.  Return: 0 or -errno.
 */
int kill_setid(fuse_req_t req, int fd, fuse_ino_t ino);

/* ---- ops_file.c: open files and their cache state -------------------- */

/* The page cache's state of @inode, or NULL (no cache, or none yet). */
struct cfile *inode_cfile(struct hmm_inode *inode);
/* Record BACKING's size and mtime at a close, for the next open to compare. */
void kcache_remember(struct hmm_inode *inode, int fd);
/* Bracket a SETATTR of ours that moves BACKING's size or mtime. */
void own_change_begin(struct hmm_inode *inode);
void own_change_end(struct hmmfs *fs, struct hmm_inode *inode);
/*
 * Attach @inode to the cache's state of its file, or (@create) a new one.
 * Return: 0, with *@out NULL if there is none, or -errno.
 */
int inode_cfile_attach(struct hmmfs *fs, struct hmm_inode *inode,
		       const struct stat *st, bool create, struct cfile **out);
/*
 * The cache's state of @inode held for one operation outside an open
 * file's I/O, until cache_file_unhold().  Return: 0 or -errno.
 */
int inode_cfile_hold(struct hmmfs *fs, struct hmm_inode *inode, bool create,
		     struct cfile **out);
/*
 * The cache's state of @inode for I/O through @fi, held until @fi's
 * release.  Return: 0, with *@out NULL if there is none, or -errno.
 */
int file_cfile(struct hmmfs *fs, struct hmm_inode *inode,
	       struct fuse_file_info *fi, bool create, struct cfile **out);
/* Close and free an open file that is off the open list already. */
void hmm_file_free(struct hmmfs *fs, struct hmm_file *hf);

/* ---- ops_dir.c: open directories ------------------------------------- */

/* Take @d off the open list, close and free it. */
void dir_free(struct hmmfs *fs, struct hmm_dir *d);

/*
 * ---- the handlers of hmmfs_ops (ops.c) ------------------------------
 * As documented for struct fuse_lowlevel_ops in fuse_lowlevel.h; each
 * ends in exactly one reply.
 */

/* ops_entry.c */
void hmmfs_lookup(fuse_req_t req, fuse_ino_t parent, const char *name);
void hmmfs_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup);
void hmmfs_forget_multi(fuse_req_t req, size_t count,
			struct fuse_forget_data *forgets);
void hmmfs_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
		 mode_t mode, dev_t rdev);
void hmmfs_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
		 mode_t mode);
void hmmfs_symlink(fuse_req_t req, const char *target, fuse_ino_t parent,
		   const char *name);
void hmmfs_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
		const char *newname);
void hmmfs_unlink(fuse_req_t req, fuse_ino_t parent, const char *name);
void hmmfs_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name);
void hmmfs_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
		  fuse_ino_t newparent, const char *newname,
		  unsigned int flags);

/* ops_attr.c */
void hmmfs_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void hmmfs_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
		   int valid, struct fuse_file_info *fi);
void hmmfs_readlink(fuse_req_t req, fuse_ino_t ino);
void hmmfs_statfs(fuse_req_t req, fuse_ino_t ino);
void hmmfs_access(fuse_req_t req, fuse_ino_t ino, int mask);

/* ops_file.c */
void hmmfs_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void hmmfs_create(fuse_req_t req, fuse_ino_t parent, const char *name,
		  mode_t mode, struct fuse_file_info *fi);
void hmmfs_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);

/* ops_data.c */
void hmmfs_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		struct fuse_file_info *fi);
void hmmfs_write_buf(fuse_req_t req, fuse_ino_t ino, struct fuse_bufvec *in,
		     off_t off, struct fuse_file_info *fi);
void hmmfs_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void hmmfs_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
		 struct fuse_file_info *fi);
void hmmfs_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off,
		     off_t len, struct fuse_file_info *fi);
void hmmfs_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in,
			   struct fuse_file_info *fi_in, fuse_ino_t ino_out,
			   off_t off_out, struct fuse_file_info *fi_out,
			   size_t len, int flags);
void hmmfs_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
		 struct fuse_file_info *fi);

/* ops_dir.c */
void hmmfs_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void hmmfs_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		   struct fuse_file_info *fi);
void hmmfs_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size,
		       off_t off, struct fuse_file_info *fi);
void hmmfs_releasedir(fuse_req_t req, fuse_ino_t ino,
		      struct fuse_file_info *fi);
void hmmfs_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync,
		    struct fuse_file_info *fi);

/* ops_xattr.c */
void hmmfs_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
		    size_t size);
void hmmfs_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size);
void hmmfs_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
		    const char *value, size_t size, int flags);
void hmmfs_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name);

/* ops_ioctl.c */
void hmmfs_ioctl(fuse_req_t req, fuse_ino_t ino, unsigned int cmd, void *arg,
		 struct fuse_file_info *fi, unsigned int flags,
		 const void *in_buf, size_t in_bufsz, size_t out_bufsz);

#endif
