/* SPDX-License-Identifier: MIT */
/*
 * fs/ops.c — the FUSE low-level operations: hmmfs as a passthrough.  This
 * file holds the table (hmmfs_ops), INIT, the glue the families share, and
 * the lists of open handles; the handlers live by operation family:
 *
 *   ops_entry.c   LOOKUP, FORGET; making, linking, removing, renaming names
 *   ops_attr.c    GETATTR, SETATTR, READLINK, STATFS, ACCESS; kill_setid
 *   ops_file.c    OPEN, CREATE, RELEASE; an inode's page cache state
 *   ops_data.c    READ, WRITE, FLUSH, FSYNC, FALLOCATE, COPY_FILE_RANGE, LSEEK
 *   ops_dir.c     OPENDIR, READDIR(PLUS), RELEASEDIR, FSYNCDIR
 *   ops_xattr.c   GETXATTR, LISTXATTR, SETXATTR, REMOVEXATTR
 *   ops_ioctl.c   the control ioctls (HMMFS_IOC_*) and their reply rule
 *   ops_cred.c    the caller's fsuid, fsgid, groups and umask on a thread
 *
 * and share fs/ops_int.h.
 *
 * Every request names objects by node id (struct hmm_inode, see inode.h)
 * and reaches the backing object through the inode's O_PATH descriptor:
 * *at() calls relative to it, or "/proc/self/fd/N" where a call has no *at
 * form that works on O_PATH descriptors (open, chmod, truncate, xattrs).
 * The descriptor comes referenced from the bounded descriptor cache
 * (itab_fd_get, fdcache.c) and goes back right after the call; an open
 * file or directory holds one reference until its release, so that an
 * open file unlinked meanwhile stays reachable; unlink, rmdir and rename
 * hand the descriptor of an object whose last name they removed to the
 * table (victim_keep).
 * No path strings are stored, so a rename anywhere in BACKING never leaves
 * a stale name behind, and no request can name anything outside BACKING
 * (guard.c).  Each handler ends in exactly one fuse_reply_*() call; helpers
 * return 0 or -errno and only the handlers turn that into a reply.
 *
 * Objects are made as the caller, under the caller's umask (ops_cred.c);
 * POSIX ACLs are BACKING's to keep and the kernel's to check, which INIT
 * settles here (acl_init).
 *
 * Locks: POSIX record locks and flock() locks are left to the kernel,
 * which keeps them per mount with the right owners and lifetimes.  All
 * backing I/O comes from this one process, so fcntl locks on backing files
 * would merge every owner into one; and a forwarded flock() would outlive
 * close(), since the kernel sends no unlock at close and releases the
 * file (closing our backing descriptor) only later, asynchronously.
 *
 * Concurrency: handlers run on many threads at once.  Shared state is the
 * inode table (its own lock) and each inode's cache_* fields (inode->lock);
 * open file and directory handles are used by one request at a time, as
 * the kernel serialises readdir on a handle and read/write use pread/pwrite.
 * Here, fs->files_lock guards the lists of open files and directories
 * (open_list_add, open_files_del); hmmfs_open_files_free() runs after the
 * session ended, when no handler runs.
 */
#include "fs/ops_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/xattr.h>

#include "log/log.h"

struct hmmfs *fs_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

/*
 * The inode of a node id the kernel holds (every request but the "."
 * lookup of a file handle, lookup_self()): it has one while it holds it,
 * so none is a broken invariant, which stops the daemon with a message
 * rather than work on the wrong object.
 */
struct hmm_inode *inode_of(fuse_req_t req, fuse_ino_t ino)
{
	struct hmm_inode *inode;

	if (ino == FUSE_ROOT_ID)
		return &fs_of(req)->itab.root;
	inode = itab_by_nodeid(&fs_of(req)->itab, ino);
	if (!inode) {
		log_err("a request on node id %#llx, which no inode has",
			(unsigned long long)ino);
		abort();
	}
	return inode;
}

fuse_ino_t node_id(struct hmmfs *fs, struct hmm_inode *inode)
{
	return inode == &fs->itab.root ? FUSE_ROOT_ID : inode->nodeid;
}

/* "/proc/self/fd/N": the backing object of an O_PATH descriptor. */
void fd_path(char buf[64], int fd)
{
	snprintf(buf, 64, "/proc/self/fd/%d", fd);
}

struct hmm_file *file_of(struct fuse_file_info *fi)
{
	return (struct hmm_file *)(uintptr_t)fi->fh;
}

int fh_fd(struct fuse_file_info *fi)
{
	return file_of(fi)->fd;
}

/*
 * An open that failed for want of descriptors: the descriptor cache gives
 * some back (and keeps fewer from now on) and the open is tried again.
 */
int openat_retry(struct hmmfs *fs, int dirfd, const char *name,
			int flags, mode_t mode)
{
	int fd = openat(dirfd, name, flags, mode);

	if (fd < 0 && (errno == EMFILE || errno == ENFILE) &&
	    fdc_shrink(&fs->itab.fdc))
		fd = openat(dirfd, name, flags, mode);
	return fd < 0 ? -errno : fd;
}

void reply_status(fuse_req_t req, int ret)
{
	fuse_reply_err(req, ret < 0 ? -ret : 0);
}

void open_list_add(struct hmmfs *fs, struct clist *head,
			  struct clist *l)
{
	pthread_mutex_lock(&fs->files_lock);
	clist_add_head(head, l);
	pthread_mutex_unlock(&fs->files_lock);
}

void open_files_del(struct hmmfs *fs, struct clist *l)
{
	pthread_mutex_lock(&fs->files_lock);
	clist_del(l);
	pthread_mutex_unlock(&fs->files_lock);
}

/*
 * Does BACKING keep POSIX ACLs?  Its root answers ENODATA (none set) or a
 * size for system.posix_acl_access if so, EOPNOTSUPP if not.
 */
static bool backing_has_acls(struct hmmfs *fs)
{
	char path[64];

	fd_path(path, itab_root_fd(&fs->itab));
	return getxattr(path, "system.posix_acl_access", NULL, 0) >= 0 ||
	       errno == ENODATA;
}

/*
 * POSIX ACLs are enforced by the kernel, as for a local file system: with
 * FUSE_CAP_POSIX_ACL it reads them through getxattr, caches them, checks
 * them (this also turns default_permissions on) and drops them when the
 * mode or an ACL changes through the mount.  BACKING's setxattr of an ACL
 * updates the mode itself.  Default ACLs on create are BACKING's work too:
 * FUSE_CAP_DONT_MASK hands us the mode and umask unmixed (umask_become).
 *
 * The kernel checks permissions only where others use the mount
 * (allow_other, which implies default_permissions, or default_permissions
 * asked for).  A private mount has one user, the one who mounted it: the
 * daemon runs as that user, so BACKING itself checks every access as it
 * would without us, ACLs included; or as root, whom only the execute bits
 * stop (hmmfs_access).  Checking again in the kernel costs a GETATTR
 * whenever the kernel's attributes are stale, once per file in tar x or
 * rm -rf (docs/performance.md, everyday workloads).
 *
 * Without xattr handlers (noxattr) the kernel cannot read ACLs, so other
 * users are checked against the mode bits alone: say so.
 */
static void acl_init(struct hmmfs *fs, struct fuse_conn_info *conn)
{
	if (!backing_has_acls(fs))
		return;
	if (!fs->opts->noxattr && (conn->capable & FUSE_CAP_DONT_MASK))
		conn->want |= FUSE_CAP_DONT_MASK;
	if (!fs->opts->default_permissions)
		return;		/* a private mount: BACKING checks */
	if (!fs->opts->noxattr && (conn->capable & FUSE_CAP_POSIX_ACL)) {
		conn->want |= FUSE_CAP_POSIX_ACL;
		return;
	}
	if (fs->opts->allow_other)
		log_notice("BACKING keeps POSIX ACLs, but %s: other "
			"users are checked against the mode bits only",
			fs->opts->noxattr ? "noxattr is set" :
			"the kernel cannot enforce them through FUSE");
}

static void hmmfs_init(void *userdata, struct fuse_conn_info *conn)
{
	struct hmmfs *fs = userdata;

	if (fs->opts->splice && (conn->capable & FUSE_CAP_SPLICE_WRITE))
		conn->want |= FUSE_CAP_SPLICE_WRITE;
	else
		conn->want &= ~(FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE |
				FUSE_CAP_SPLICE_READ);
	if (fs->opts->writeback_cache && (conn->capable & FUSE_CAP_WRITEBACK_CACHE)) {
		conn->want |= FUSE_CAP_WRITEBACK_CACHE;
		/*
		 * Under the writeback cache an atomic O_TRUNC open loses a
		 * truncate racing with it: the kernel truncates in OPEN,
		 * under the inode lock, then takes the lock again and sets
		 * its own size to 0 (ATTR_OPEN in fuse_do_setattr) without
		 * asking us, and it never takes our size after that.  A
		 * truncate(2) between the two leaves the kernel's size at 0
		 * (or at what the opener writes next) and BACKING's at the
		 * truncate's.  Without the capability the kernel opens, then
		 * truncates with a SETATTR of its own, under one lock.
		 */
		conn->want &= ~FUSE_CAP_ATOMIC_O_TRUNC;
	}
	if (conn->capable & FUSE_CAP_IOCTL_DIR)
		conn->want |= FUSE_CAP_IOCTL_DIR;	/* hmmfsctl on the mount root */
	/*
	 * The kernel keeps symlink targets: a symlink's target never changes
	 * (BACKING replaces the object, which a lookup then finds under a new
	 * node id).  Without file handles a reused inode number cannot be
	 * told from the old object and would keep the old node id and the
	 * old target: then the kernel asks each time.
	 */
	if ((conn->capable & FUSE_CAP_CACHE_SYMLINKS) && !fdc_no_handles(&fs->itab.fdc))
		conn->want |= FUSE_CAP_CACHE_SYMLINKS;
	/*
	 * File handles of the mount (name_to_handle_at, NFS export) outlive
	 * the kernel's inodes: it looks "." up in the node id of a handle
	 * whose inode it forgot (lookup_self), which dormant inodes keep
	 * valid; they need BACKING's own handles.
	 */
	if ((conn->capable & FUSE_CAP_EXPORT_SUPPORT) && !fdc_no_handles(&fs->itab.fdc))
		conn->want |= FUSE_CAP_EXPORT_SUPPORT;
	acl_init(fs, conn);
	if (conn->max_write > MAX_IO)
		conn->max_write = MAX_IO;
	/*
	 * Readahead and async direct I/O share the kernel's background
	 * requests (12 by default); with many O_DIRECT writers readahead
	 * starved for them while holding locked pages (see
	 * direct_write_inval).
	 */
	conn->max_background = 64;
	conn->congestion_threshold = 48;
	conn->time_gran = 1;
}

const struct fuse_lowlevel_ops hmmfs_ops = {
	.init		 = hmmfs_init,
	.lookup		 = hmmfs_lookup,
	.forget		 = hmmfs_forget,
	.forget_multi	 = hmmfs_forget_multi,
	.getattr	 = hmmfs_getattr,
	.setattr	 = hmmfs_setattr,
	.readlink	 = hmmfs_readlink,
	.mknod		 = hmmfs_mknod,
	.mkdir		 = hmmfs_mkdir,
	.unlink		 = hmmfs_unlink,
	.rmdir		 = hmmfs_rmdir,
	.symlink	 = hmmfs_symlink,
	.rename		 = hmmfs_rename,
	.link		 = hmmfs_link,
	.open		 = hmmfs_open,
	.read		 = hmmfs_read,
	.write_buf	 = hmmfs_write_buf,
	.flush		 = hmmfs_flush,
	.release	 = hmmfs_release,
	.fsync		 = hmmfs_fsync,
	.opendir	 = hmmfs_opendir,
	.readdir	 = hmmfs_readdir,
	.readdirplus	 = hmmfs_readdirplus,
	.releasedir	 = hmmfs_releasedir,
	.fsyncdir	 = hmmfs_fsyncdir,
	.statfs		 = hmmfs_statfs,
	.setxattr	 = hmmfs_setxattr,
	.getxattr	 = hmmfs_getxattr,
	.listxattr	 = hmmfs_listxattr,
	.removexattr	 = hmmfs_removexattr,
	.access		 = hmmfs_access,
	.create		 = hmmfs_create,
	.fallocate	 = hmmfs_fallocate,
	.copy_file_range = hmmfs_copy_file_range,
	.lseek		 = hmmfs_lseek,
	.ioctl		 = hmmfs_ioctl,
};

/* At the end of the session: no RELEASE or RELEASEDIR will come. */
void hmmfs_open_files_free(struct hmmfs *fs)
{
	while (!clist_empty(&fs->open_dirs))
		dir_free(fs, clist_entry(fs->open_dirs.next, struct hmm_dir, link));
	while (!clist_empty(&fs->open_files)) {
		struct clist *l = fs->open_files.next;

		open_files_del(fs, l);
		hmm_file_free(fs, clist_entry(l, struct hmm_file, link));
	}
}
