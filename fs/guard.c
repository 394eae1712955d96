/* SPDX-License-Identifier: MIT */
/*
 * fs/guard.c — containment and start-up checks.
 *
 * Containment: the daemon reaches backing objects only through openat()
 * and friends relative to O_PATH descriptors of directories inside
 * BACKING, with O_NOFOLLOW on the last component, and never follows a
 * symlink itself.  So a name is safe when it is a single component:
 * guard_name() refuses '/' and over-long names (the kernel never sends
 * them, but the daemon does not rely on that), and lookup turns ".." of
 * the root into the root.
 *
 * Start-up: a second mount on an existing mount point is refused by
 * reading /proc/self/mountinfo (octal escapes such as "\040" decoded), and
 * /dev/fuse must be the FUSE character device (10, 229) and open
 * read-write.  No shared state; no locking.
 */
#include "fs/guard.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define FUSE_MAJOR 10
#define FUSE_MINOR 229

int guard_name(const char *name)
{
	size_t len = strnlen(name, NAME_MAX + 1);

	if (len == 0 || memchr(name, '/', len))
		return -EINVAL;
	if (len > NAME_MAX)
		return -ENAMETOOLONG;
	return 0;
}

int guard_is_dot(const char *name)
{
	return name[0] == '.' && (name[1] == '\0' ||
				  (name[1] == '.' && name[2] == '\0'));
}

/* Decode mountinfo's octal escapes ("\040" is a space) in place. */
static void mountinfo_unescape(char *s)
{
	char *out = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' &&
		    s[2] >= '0' && s[2] <= '7' && s[3] >= '0' && s[3] <= '7') {
			*out++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 +
					(s[3] - '0'));
			s += 3;
		} else {
			*out++ = *s;
		}
	}
	*out = '\0';
}

/* The 5th field of one mountinfo line, unescaped, into @buf. */
static int mountinfo_mountpoint(const char *line, size_t len, char *buf,
				size_t buflen)
{
	const char *p = line, *end = line + len;
	size_t n;

	for (int field = 0; field < 4; field++) {
		p = memchr(p, ' ', (size_t)(end - p));
		if (!p)
			return -EINVAL;
		p++;
	}
	n = strcspn(p, " \n");
	if (n >= buflen || p + n > end)
		return -EINVAL;
	memcpy(buf, p, n);
	buf[n] = '\0';
	mountinfo_unescape(buf);
	return 0;
}

int guard_mountinfo_has(const char *mountinfo, const char *path)
{
	char mp[PATH_MAX];
	const char *line = mountinfo;

	while (*line) {
		const char *nl = strchr(line, '\n');
		size_t len = nl ? (size_t)(nl - line) : strlen(line);

		if (mountinfo_mountpoint(line, len, mp, sizeof(mp)) == 0 &&
		    strcmp(mp, path) == 0)
			return 1;
		line += len + (nl ? 1 : 0);
	}
	return 0;
}

static char *read_whole(const char *path)
{
	size_t cap = 65536, len = 0;
	char *buf = malloc(cap);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0 || !buf)
		goto out_fail;
	while ((n = read(fd, buf + len, cap - len - 1)) > 0) {
		len += (size_t)n;
		if (len + 1 == cap) {
			char *bigger = realloc(buf, cap * 2);

			if (!bigger)
				goto out_fail;
			buf = bigger;
			cap *= 2;
		}
	}
	if (n < 0)
		goto out_fail;
	close(fd);
	buf[len] = '\0';
	return buf;

out_fail:
	if (fd >= 0)
		close(fd);
	free(buf);
	return NULL;
}

int guard_is_mountpoint(const char *path)
{
	char *info = read_whole("/proc/self/mountinfo");
	int ret;

	if (!info)
		return -errno;
	ret = guard_mountinfo_has(info, path);
	free(info);
	return ret;
}

int guard_mount_options(const char *path, char *buf, size_t len)
{
	char *info = read_whole("/proc/self/mountinfo"), *line, *save = NULL;
	char mp[PATH_MAX];
	int ret = -ENOENT;

	if (!info)
		return -errno;
	/* the last matching line is the mount on top */
	for (line = strtok_r(info, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		const char *p = line;

		if (mountinfo_mountpoint(line, strlen(line), mp, sizeof(mp)) ||
		    strcmp(mp, path))
			continue;
		for (int field = 0; field < 5 && p; field++) {
			p = strchr(p, ' ');
			if (p)
				p++;
		}
		if (p) {
			snprintf(buf, len, "%.*s", (int)strcspn(p, " "), p);
			ret = 0;
		}
	}
	free(info);
	return ret;
}

int guard_mount_dev(const char *path, dev_t *dev)
{
	char *info = read_whole("/proc/self/mountinfo"), *line, *save = NULL;
	char mp[PATH_MAX];
	unsigned int maj, min;
	int ret = -ENOENT;

	if (!info)
		return -errno;
	/* the last matching line is the mount on top */
	for (line = strtok_r(info, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		if (mountinfo_mountpoint(line, strlen(line), mp, sizeof(mp)) ||
		    strcmp(mp, path))
			continue;
		if (sscanf(line, "%*s %*s %u:%u", &maj, &min) == 2) {
			*dev = makedev(maj, min);
			ret = 0;
		}
	}
	free(info);
	return ret;
}

int guard_fuse_device(const char *dev, char *msg, size_t msglen)
{
	struct stat st;
	int fd;

	if (stat(dev, &st) < 0) {
		int err = errno;

		snprintf(msg, msglen, "%s: %s (is the fuse module loaded?)",
			 dev, strerror(err));
		return -err;
	}
	if (!S_ISCHR(st.st_mode) || major(st.st_rdev) != FUSE_MAJOR ||
	    minor(st.st_rdev) != FUSE_MINOR) {
		snprintf(msg, msglen, "%s is not the FUSE device (char 10,229)", dev);
		return -ENODEV;
	}
	fd = open(dev, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		int err = errno;

		snprintf(msg, msglen, "cannot open %s: %s", dev, strerror(err));
		return -err;
	}
	close(fd);
	return 0;
}
