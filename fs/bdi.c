/* SPDX-License-Identifier: MIT */
/*
 * fs/bdi.c — how much dirty data the kernel may hold for this mount.
 *
 * With the FUSE writeback cache, write(2) only dirties the kernel's page
 * cache of the mount; the kernel's flusher sends the pages to us later
 * (WRITE requests) and a writer waits in balance_dirty_pages() when the
 * mount's backing device info (bdi) holds more than its share.  FUSE
 * gives its bdi a strict limit of 1% of the machine's dirty threshold
 * (about 50 MB of 24 GiB at vm.dirty_ratio=20), so a burst larger than
 * that runs at the speed of the daemon, not of memory, while a local
 * filesystem may fill the whole threshold.  The kernel lets root change
 * it: /sys/class/bdi/MAJOR:MINOR/max_bytes (Linux 6.2+) for the mount's
 * device number.  bdi_setup() writes kernel_dirty there; strict_limit
 * stays on, so the mount still never takes more than that, and the
 * kernel's global limits still apply on top.
 *
 * Without root, on kernels without max_bytes, or when /sys is not there,
 * the mount goes on with the kernel's share and a one-line notice.
 * Runs once, after the mount and before serving; no locking.
 */
#include "fs/bdi.h"
#include "log/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/sysmacros.h>
#include <unistd.h>

/* Write @val to the bdi attribute @name of @dev.  Return: 0 or -errno. */
static int bdi_write(dev_t dev, const char *name, unsigned long long val)
{
	char path[96], buf[32];
	int fd, len, ret = 0;

	snprintf(path, sizeof(path), "/sys/class/bdi/%u:%u/%s",
		 major(dev), minor(dev), name);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	len = snprintf(buf, sizeof(buf), "%llu\n", val);
	if (write(fd, buf, (size_t)len) != len)
		ret = -errno;
	close(fd);
	return ret;
}

/* Read the bdi attribute @name of @dev.  Return: 0 or -errno. */
static int bdi_read(dev_t dev, const char *name, unsigned long long *val)
{
	char path[96];
	FILE *f;
	int ret;

	snprintf(path, sizeof(path), "/sys/class/bdi/%u:%u/%s",
		 major(dev), minor(dev), name);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	ret = fscanf(f, "%llu", val) == 1 ? 0 : -EIO;
	fclose(f);
	return ret;
}

int bdi_setup(dev_t dev, size_t max_bytes, int verbose)
{
	unsigned long long got = 0;
	int ret;

	if (!max_bytes)
		return 0;	/* kernel_dirty=0: the kernel's own share */
	/*
	 * The kernel keeps max_bytes as a share of its dirty threshold and
	 * refuses more than all of it (EINVAL): then take all of it.
	 */
	ret = bdi_write(dev, "max_bytes", max_bytes);
	if (ret == -EINVAL)
		ret = bdi_write(dev, "max_ratio", 100);
	if (ret) {
		log_notice("cannot set the mount's kernel dirty "
			"limit (/sys/class/bdi/%u:%u/max_bytes: %s); writes wait "
			"for the daemon beyond the kernel's 1%% share",
			major(dev), minor(dev), strerror(-ret));
		return ret;
	}
	if (verbose && bdi_read(dev, "max_bytes", &got) == 0)
		log_info("bdi %u:%u: max_bytes %llu (kernel_dirty), "
			"strict_limit on", major(dev), minor(dev), got);
	return 0;
}
