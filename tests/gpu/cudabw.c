/* SPDX-License-Identifier: MIT */
/*
 * tests/gpu/cudabw.c — raw copy bandwidth of a device backend, through the
 * same dev_* calls the cache uses (linked with device/ only).
 *
 *   cudabw [-b BACKEND] [-g GPU] [-m MIB] [-c KIB] [-r REPS] [-t THREADS] [-P]
 *
 * Opens BACKEND (default cuda) with MIB of device memory (default 1024),
 * then copies MIB host -> device and back in pieces of KIB (default 1024),
 * each thread queueing its share on its own fence and waiting once at the
 * end.  Host buffers are host_register()ed (pinned) unless -P (pageable).
 * Each direction runs REPS times (default 3) and the best is printed, one
 * table row per direction; the data that came back is checked against
 * what went.  Exit 0, 1 on an error or a mismatch, 77 if the backend
 * cannot be opened (no GPU).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "device/device.h"

struct bw_job {
	struct device *d;
	char *host;
	size_t chunk, first, count;	/* chunks [first, first + count) */
	enum dev_copy_dir dir;
	int ret;
};

static double bw_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *bw_thread(void *arg)
{
	struct bw_job *j = arg;
	struct dev_fence f = DEV_FENCE_INIT;
	int ret = 0, wret;

	for (size_t i = j->first; !ret && i < j->first + j->count; i++) {
		dev_addr_t a = (dev_addr_t)i * j->chunk;
		char *h = j->host + i * j->chunk;

		ret = j->dir == DEV_H2D ? dev_copy_to_device(j->d, a, h, j->chunk, &f)
					: dev_copy_to_host(j->d, h, a, j->chunk, &f);
	}
	wret = dev_fence_wait(j->d, &f);
	j->ret = ret ? ret : wret;
	return NULL;
}

/* One pass in direction @dir by @nthreads; seconds, or < 0 on error. */
static double bw_pass(struct device *d, char *host, size_t chunk, size_t nchunks,
		      enum dev_copy_dir dir, int nthreads)
{
	struct bw_job job[64];
	pthread_t th[64];
	double t0 = bw_now();
	int bad = 0;

	for (int i = 0; i < nthreads; i++) {
		size_t per = nchunks / (size_t)nthreads;

		job[i] = (struct bw_job){ .d = d, .host = host, .chunk = chunk,
			.first = per * (size_t)i, .dir = dir,
			.count = i == nthreads - 1 ? nchunks - per * (size_t)i : per };
		pthread_create(&th[i], NULL, bw_thread, &job[i]);
	}
	for (int i = 0; i < nthreads; i++) {
		pthread_join(th[i], NULL);
		if (job[i].ret) {
			fprintf(stderr, "cudabw: thread %d: %s\n", i, strerror(-job[i].ret));
			bad = 1;
		}
	}
	return bad ? -1.0 : bw_now() - t0;
}

static char *bw_buffer(size_t len)
{
	char *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

int main(int argc, char **argv)
{
	struct device_config cfg = { .backend = "cuda", .gpu = 0 };
	size_t mib = 1024, kib = 1024, len, chunk;
	int reps = 3, nthreads = 1, pinned = 1, opt, ret = 1;
	char err[256] = "", *src, *dst;
	double best[2] = { 0, 0 };
	struct device *d;

	while ((opt = getopt(argc, argv, "b:g:m:c:r:t:P")) != -1) {
		switch (opt) {
		case 'b': cfg.backend = optarg; break;
		case 'g': cfg.gpu = atoi(optarg); break;
		case 'm': mib = strtoul(optarg, NULL, 0); break;
		case 'c': kib = strtoul(optarg, NULL, 0); break;
		case 'r': reps = atoi(optarg); break;
		case 't': nthreads = atoi(optarg); break;
		case 'P': pinned = 0; break;
		default:
			fprintf(stderr, "usage: cudabw [-b BACKEND] [-g GPU] [-m MIB] "
				"[-c KIB] [-r REPS] [-t THREADS] [-P]\n");
			return 2;
		}
	}
	len = mib << 20;
	chunk = kib << 10;
	if (!chunk || (chunk & (chunk - 1)) || len < chunk || reps < 1 ||
	    nthreads < 1 || nthreads > 64) {
		fprintf(stderr, "cudabw: need a power-of-two chunk <= size, 1-64 threads\n");
		return 2;
	}
	cfg.mem_bytes = len;
	cfg.frame_size = chunk;
	ret = dev_open(&cfg, &d, err, sizeof(err));
	if (ret) {
		fprintf(stderr, "cudabw: %s\n", err);
		return 77;
	}
	src = bw_buffer(len);
	dst = bw_buffer(len);
	if (!src || !dst) {
		fprintf(stderr, "cudabw: cannot map 2 x %zu MiB of host memory\n", mib);
		ret = 1;
		goto out_close;
	}
	for (size_t i = 0; i < len; i += sizeof(uint64_t))
		*(uint64_t *)(src + i) = i * 0x9e3779b97f4a7c15ull;
	ret = 1;
	if (pinned && dev_host_register(d, src, len)) {
		fprintf(stderr, "cudabw: host_register failed\n");
		goto out_unmap;
	}
	if (pinned && dev_host_register(d, dst, len)) {
		fprintf(stderr, "cudabw: host_register failed\n");
		dev_host_unregister(d, src);
		goto out_unmap;
	}
	for (int r = 0; r < reps; r++) {
		double h2d = bw_pass(d, src, chunk, len / chunk, DEV_H2D, nthreads);
		double d2h = bw_pass(d, dst, chunk, len / chunk, DEV_D2H, nthreads);

		if (h2d < 0 || d2h < 0)
			goto out_unregister;
		if (!best[0] || h2d < best[0])
			best[0] = h2d;
		if (!best[1] || d2h < best[1])
			best[1] = d2h;
	}
	if (memcmp(src, dst, len)) {
		fprintf(stderr, "cudabw: data came back different\n");
		goto out_unregister;
	}
	ret = 0;
	for (int i = 0; i < 2; i++)
		printf("%-8s %-4s %-9s %5zu KiB %3d thr %6zu MiB %8.2f GiB/s\n",
		       dev_name(d), i ? "D2H" : "H2D", pinned ? "pinned" : "pageable",
		       kib, nthreads, mib, (double)len / best[i] / (1 << 30));
out_unregister:
	if (pinned) {
		dev_host_unregister(d, src);
		dev_host_unregister(d, dst);
	}
out_unmap:
	if (src)
		munmap(src, len);
	if (dst)
		munmap(dst, len);
out_close:
	dev_close(d);
	return ret;
}
