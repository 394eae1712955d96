/* SPDX-License-Identifier: MIT */
/*
 * fs/ops_dir.c — open directories: OPENDIR, READDIR, READDIRPLUS,
 * RELEASEDIR and FSYNCDIR.
 *
 * An open directory (struct hmm_dir) is a DIR stream on a descriptor
 * opened through the directory's O_PATH descriptor, whose descriptor-cache
 * reference it holds until releasedir; it sits on fs->open_dirs.  The
 * kernel's offsets are telldir() positions: a readdir at another offset
 * seeks (dir_seek), and an entry read that did not fit in the reply waits
 * for the next call (->entry).  READDIRPLUS looks each entry up
 * (do_lookup, ops_entry.c) and forgets that lookup again if the entry did
 * not fit; "." and ".." carry none.  An entry unlinked between readdir and
 * its lookup is skipped.  Entries gathered before an error go out; the
 * error shows on the next call.
 *
 * Locking: a handle is used by one request at a time (the kernel
 * serialises readdir on a file); fs->files_lock guards fs->open_dirs
 * (open_list_add, open_files_del in ops.c).
 */
#include "fs/ops_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "fs/guard.h"

void dir_free(struct hmmfs *fs, struct hmm_dir *d)
{
	open_files_del(fs, &d->link);
	closedir(d->dp);
	itab_fd_put(&fs->itab, d->inode);
	free(d);
}

static struct hmm_dir *dir_of(struct fuse_file_info *fi)
{
	return (struct hmm_dir *)(uintptr_t)fi->fh;
}

void hmmfs_opendir(fuse_req_t req, fuse_ino_t ino,
			  struct fuse_file_info *fi)
{
	struct hmmfs *fs = fs_of(req);
	struct hmm_dir *d = calloc(1, sizeof(*d));
	int fd, err;

	if (!d) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	d->inode = inode_of(req, ino);
	err = itab_fd_get(&fs->itab, d->inode);	/* until releasedir */
	if (err < 0)
		goto out_free;
	fd = openat_retry(fs, err, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
	if (fd < 0) {
		err = fd;
		goto out_put_inode;
	}
	d->dp = fdopendir(fd);
	if (!d->dp) {
		err = -errno;
		close(fd);
		goto out_put_inode;
	}
	fi->fh = (uint64_t)(uintptr_t)d;
	if (fs_of(req)->opts->kernel_cache)
		fi->keep_cache = 1;
	open_list_add(fs_of(req), &fs_of(req)->open_dirs, &d->link);
	if (fuse_reply_open(req, fi) == -ENOENT)
		dir_free(fs_of(req), d);
	return;

out_put_inode:
	itab_fd_put(&fs->itab, d->inode);
out_free:
	free(d);
	fuse_reply_err(req, -err);
}

/*
 * Add one entry to @buf; for readdirplus, also look it up.
 * Return: the space the entry needs (more than @rem: it did not fit and
 * nothing was added), or -errno when the lookup failed.
 */
static ssize_t dir_add(fuse_req_t req, struct hmm_inode *dir,
		       struct dirent *de, off_t next, char *buf, size_t rem,
		       int plus)
{
	struct hmmfs *fs = fs_of(req);
	struct fuse_entry_param e;
	size_t n;
	int ret;

	if (!plus || guard_is_dot(de->d_name)) {
		/* "." and ".." carry no lookup: the kernel ignores them */
		entry_init(fs, &e);
		e.attr.st_ino = itab_ino(&fs->itab, dir->dev, de->d_ino);
		e.attr.st_mode = (mode_t)de->d_type << 12;
		if (!plus)
			return (ssize_t)fuse_add_direntry(req, buf, rem, de->d_name,
							  &e.attr, next);
		return (ssize_t)fuse_add_direntry_plus(req, buf, rem, de->d_name,
						       &e, next);
	}
	ret = do_lookup(fs, dir, de->d_name, &e);
	if (ret)
		return ret;
	n = fuse_add_direntry_plus(req, buf, rem, de->d_name, &e, next);
	if (n > rem)	/* did not fit: the kernel will not see this lookup */
		itab_forget(&fs->itab, inode_of(req, e.ino), 1);
	return (ssize_t)n;
}

/* Position @d at the kernel's offset @off. */
static void dir_seek(struct hmm_dir *d, off_t off)
{
	if (off == d->offset)
		return;
	seekdir(d->dp, off);
	d->entry = NULL;
	d->offset = off;
}

static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi, int plus)
{
	struct hmm_dir *d = dir_of(fi);
	struct hmm_inode *dir = inode_of(req, ino);
	char *buf = malloc(size);
	size_t used = 0;
	ssize_t n = 0;

	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	dir_seek(d, off);
	for (;;) {
		off_t next;

		if (!d->entry) {
			errno = 0;
			d->entry = readdir(d->dp);
			if (!d->entry) {
				n = -errno;	/* 0 at the end */
				break;
			}
		}
		next = telldir(d->dp);
		n = dir_add(req, dir, d->entry, next, buf + used, size - used, plus);
		if (n == -ENOENT)	/* unlinked since readdir: skip it */
			n = 0;
		else if (n < 0 || (size_t)n > size - used)
			break;
		used += (size_t)n;
		d->entry = NULL;
		d->offset = next;
	}
	/* entries already gathered go out; an error shows on the next call */
	if (n < 0 && used == 0)
		fuse_reply_err(req, (int)-n);
	else
		fuse_reply_buf(req, buf, used);
	free(buf);
}

void hmmfs_readdir(fuse_req_t req, fuse_ino_t ino, size_t size,
			  off_t off, struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, 0);
}

void hmmfs_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size,
			      off_t off, struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, 1);
}

void hmmfs_releasedir(fuse_req_t req, fuse_ino_t ino,
			     struct fuse_file_info *fi)
{
	(void)ino;
	dir_free(fs_of(req), dir_of(fi));
	fuse_reply_err(req, 0);
}

void hmmfs_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync,
			   struct fuse_file_info *fi)
{
	int fd = dirfd(dir_of(fi)->dp);

	(void)ino;
	reply_status(req, (datasync ? fdatasync(fd) : fsync(fd)) < 0 ? -errno : 0);
}
