/* SPDX-License-Identifier: MIT */
/*
 * fs/guard.h — checks that keep hmmfs inside BACKING and refuse bad starts.
 */
#ifndef HMMFS_FS_GUARD_H
#define HMMFS_FS_GUARD_H

#include <stddef.h>
#include <sys/types.h>

/**
 * guard_name() - may @name be used as one component below a directory?
 * Return: 0; -EINVAL for "", or a name holding '/'; -ENAMETOOLONG past
 * NAME_MAX.  "." and ".." are allowed here: lookup maps them itself, and
 * maps ".." of the root to the root.
 */
int guard_name(const char *name);

/* Is @name "." or ".."? */
int guard_is_dot(const char *name);

/**
 * guard_mountinfo_has() - is @path (absolute, resolved) a mount point?
 * @mountinfo: the text of /proc/self/mountinfo (tests pass their own).
 * Return: 1 if some line's mount point is @path, 0 if none is.
 */
int guard_mountinfo_has(const char *mountinfo, const char *path);

/**
 * guard_is_mountpoint() - the same against this process's mount table.
 * Return: 1, 0, or -errno when /proc/self/mountinfo cannot be read.
 */
int guard_is_mountpoint(const char *path);

/**
 * guard_mount_options() - the per-mount options of the mount at @path
 * (mountinfo's 6th field, e.g. "rw,nosuid,nodev,relatime") into @buf.
 * Return: 0, -ENOENT (no mount there) or -errno.
 */
int guard_mount_options(const char *path, char *buf, size_t len);

/**
 * guard_mount_dev() - the device number of the mount on top at @path
 * (mountinfo's 3rd field, "major:minor"), read without asking the mount
 * itself, which may not serve requests yet.
 * Return: 0, -ENOENT (no mount there) or -errno.
 */
int guard_mount_dev(const char *path, dev_t *dev);

/**
 * guard_fuse_device() - can /dev/fuse (or @dev) be used?
 * @msg, @msglen: why not, for the user.
 * Return: 0, or -errno (-ENODEV when it is not the FUSE character device).
 */
int guard_fuse_device(const char *dev, char *msg, size_t msglen);

#endif
