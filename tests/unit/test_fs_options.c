/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/test_fs_options.c — fs/options.c: defaults, every kind of
 * option, the errors a user gets, and the vector handed to libfuse.
 */
#include <errno.h>
#include <string.h>
#include <sys/mount.h>

#include "fs/options.h"
#include "tests/unit/unit.h"

static char err[512];

#define PARSE(o, ...)                                                        \
	({                                                                   \
		char *argv_[] = { "hmmfs", __VA_ARGS__, NULL };              \
		opts_parse((int)(sizeof(argv_) / sizeof(argv_[0])) - 1,      \
			   argv_, (o), err, sizeof(err));                    \
	})

static void test_defaults(void)
{
	struct hmmfs_opts o;

	CU_ASSERT_EQUAL(PARSE(&o, "/b", "/m"), 0);
	CU_ASSERT_STRING_EQUAL(o.backing, "/b");
	CU_ASSERT_STRING_EQUAL(o.mountpoint, "/m");
	CU_ASSERT_EQUAL(o.foreground, 0);
	CU_ASSERT_EQUAL(o.direct_io, 0);
	CU_ASSERT_EQUAL(o.splice, 1);
	CU_ASSERT_EQUAL(o.max_threads, 16);
	CU_ASSERT_DOUBLE_EQUAL(o.attr_timeout, 1.0, 1e-9);
	CU_ASSERT_DOUBLE_EQUAL(o.entry_timeout, 1.0, 1e-9);
	CU_ASSERT_DOUBLE_EQUAL(o.negative_timeout, 0.0, 1e-9);
	CU_ASSERT_PTR_NULL(o.fuse_opts);
	opts_free(&o);
}

static void test_flags_and_values(void)
{
	struct hmmfs_opts o;

	CU_ASSERT_EQUAL(PARSE(&o, "-f", "/b", "-o", "direct_io,attr_timeout=2.5",
			      "/m", "-othreads=4,nosplice"), 0);
	CU_ASSERT_EQUAL(o.foreground, 1);
	CU_ASSERT_EQUAL(o.direct_io, 1);
	CU_ASSERT_DOUBLE_EQUAL(o.attr_timeout, 2.5, 1e-9);
	CU_ASSERT_EQUAL(o.max_threads, 4);
	CU_ASSERT_EQUAL(o.splice, 0);
	opts_free(&o);
}

/* libfuse's spellings where they mean something here */
static void test_libfuse_spellings(void)
{
	struct hmmfs_opts o;

	CU_ASSERT_EQUAL(PARSE(&o, "--foreground", "/b", "/m", "-o", "max_threads=3"), 0);
	CU_ASSERT_EQUAL(o.foreground, 1);
	CU_ASSERT_EQUAL(o.max_threads, 3);
	opts_free(&o);
	CU_ASSERT_EQUAL(PARSE(&o, "-o", "help"), 0);
	CU_ASSERT_EQUAL(o.show_help, 1);
	opts_free(&o);
	CU_ASSERT_EQUAL(PARSE(&o, "/b", "/m", "-o", "max_threads=0"), -EINVAL);
	opts_free(&o);
	CU_ASSERT_EQUAL(PARSE(&o, "--foregrnd", "/b", "/m"), -EINVAL);
	opts_free(&o);
	CU_ASSERT_EQUAL(PARSE(&o, "/b", "/m", "-o", "allow_root"), 0);
	CU_ASSERT_EQUAL(o.allow_root, 1);
	opts_free(&o);
	CU_ASSERT_EQUAL(PARSE(&o, "/b", "/m", "-o", "allow_root,allow_other"), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "give one"));
	opts_free(&o);
}

static void test_debug_implies_foreground(void)
{
	struct hmmfs_opts o;

	CU_ASSERT_EQUAL(PARSE(&o, "-d", "/b", "/m"), 0);
	CU_ASSERT_EQUAL(o.debug, 1);
	CU_ASSERT_EQUAL(o.foreground, 1);
	CU_ASSERT_STRING_EQUAL(o.fuse_opts, "debug");
	opts_free(&o);
}

static void test_unknown_option(void)
{
	struct hmmfs_opts o;

	CU_ASSERT_EQUAL(PARSE(&o, "/b", "/m", "-o", "ro,bogus"), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "unknown option 'bogus'"));
	opts_free(&o);
	CU_ASSERT_EQUAL(PARSE(&o, "/b", "/m", "--frobnicate"), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "--frobnicate"));
	opts_free(&o);
}

static void test_malformed_values(void)
{
	struct hmmfs_opts o;

	CU_ASSERT_EQUAL(PARSE(&o, "/b", "/m", "-o", "attr_timeout=abc"), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "attr_timeout"));
	opts_free(&o);
	CU_ASSERT_EQUAL(PARSE(&o, "/b", "/m", "-o", "attr_timeout=-1"), -EINVAL);
	opts_free(&o);
	CU_ASSERT_EQUAL(PARSE(&o, "/b", "/m", "-o", "attr_timeout=1e9"), -EINVAL);
	opts_free(&o);
	CU_ASSERT_EQUAL(PARSE(&o, "/b", "/m", "-o", "attr_timeout=nan"), -EINVAL);
	opts_free(&o);
	CU_ASSERT_EQUAL(PARSE(&o, "/b", "/m", "-o", "threads=0"), -EINVAL);
	opts_free(&o);
	CU_ASSERT_EQUAL(PARSE(&o, "/b", "/m", "-o", "threads=4x"), -EINVAL);
	opts_free(&o);
	CU_ASSERT_EQUAL(PARSE(&o, "/b", "/m", "-o", "threads=-3"), -EINVAL);
	opts_free(&o);
	CU_ASSERT_EQUAL(PARSE(&o, "/b", "/m", "-o", "threads=99999999999999999999"),
			-EINVAL);
	opts_free(&o);
	CU_ASSERT_EQUAL(PARSE(&o, "/b", "/m", "-o", "direct_io=1"), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "takes no value"));
	opts_free(&o);
	CU_ASSERT_EQUAL(PARSE(&o, "/b", "/m", "-o", "fsname="), -EINVAL);
	opts_free(&o);
	CU_ASSERT_EQUAL(PARSE(&o, "/b", "/m", "-o"), -EINVAL);
	opts_free(&o);
}

static void test_positionals(void)
{
	struct hmmfs_opts o;

	CU_ASSERT_EQUAL(PARSE(&o, "/b"), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "usage"));
	opts_free(&o);
	CU_ASSERT_EQUAL(PARSE(&o, "/b", "/m", "/x"), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "'/x'"));
	opts_free(&o);
	CU_ASSERT_EQUAL(PARSE(&o, "--help"), 0);
	CU_ASSERT_EQUAL(o.show_help, 1);
	opts_free(&o);
	CU_ASSERT_EQUAL(PARSE(&o, "-V"), 0);
	CU_ASSERT_EQUAL(o.show_version, 1);
	opts_free(&o);
}

static void test_mount_words(void)
{
	struct hmmfs_opts o;

	/* what mount(8) and fstab hand over */
	CU_ASSERT_EQUAL(PARSE(&o, "/b", "/m", "-o",
			      "rw,nosuid,nodev,relatime,defaults,nofail,_netdev,x-systemd.automount,noatime"),
			0);
	CU_ASSERT_STRING_EQUAL(o.fuse_opts, "rw,nosuid,nodev,noatime");
	opts_free(&o);
}

static void test_allow_other_implies_permissions(void)
{
	struct hmmfs_opts o;

	CU_ASSERT_EQUAL(PARSE(&o, "/b", "/m", "-o", "allow_other"), 0);
	CU_ASSERT_EQUAL(o.allow_other, 1);
	CU_ASSERT_EQUAL(o.default_permissions, 1);
	CU_ASSERT_STRING_EQUAL(o.fuse_opts, "allow_other,default_permissions");
	opts_free(&o);
	CU_ASSERT_EQUAL(PARSE(&o, "/b", "/m", "-o",
			      "default_permissions,allow_other"), 0);
	CU_ASSERT_STRING_EQUAL(o.fuse_opts, "default_permissions,allow_other");
	opts_free(&o);
}

static void test_fuse_argv(void)
{
	struct hmmfs_opts o;
	struct opts_fuse_argv fa;

	CU_ASSERT_EQUAL(PARSE(&o, "/b", "/m", "-o", "ro"), 0);
	CU_ASSERT_EQUAL(opts_fuse_argv(&o, "/back,ing\\x", &fa), 0);
	CU_ASSERT_EQUAL(fa.argc, 3);
	CU_ASSERT_STRING_EQUAL(fa.argv[1], "-o");
	CU_ASSERT_STRING_EQUAL(fa.argv[2],
			       "ro,fsname=/back\\,ing\\\\x,subtype=hmmfs");
	CU_ASSERT_PTR_NULL(fa.argv[3]);
	opts_fuse_argv_free(&fa);
	opts_free(&o);

	CU_ASSERT_EQUAL(PARSE(&o, "/b", "/m", "-o", "fsname=tag,subtype=x"), 0);
	CU_ASSERT_EQUAL(opts_fuse_argv(&o, "/b", &fa), 0);
	CU_ASSERT_STRING_EQUAL(fa.argv[2], "fsname=tag,subtype=x");
	opts_fuse_argv_free(&fa);
	opts_free(&o);
}

static void test_cache_options(void)
{
	struct hmmfs_opts o;

	CU_ASSERT_EQUAL(PARSE(&o, "/b", "/m"), 0);
	CU_ASSERT_EQUAL(o.page_size, 4096);
	CU_ASSERT(o.host_cache > 0);
	CU_ASSERT_STRING_EQUAL(o.io_engine, "uring");
	CU_ASSERT_STRING_EQUAL(o.ksm_scope, "uid");
	CU_ASSERT_EQUAL(opts_dirty_limit(&o), o.host_cache / 100 * 20);
	CU_ASSERT_EQUAL(opts_dirty_background(&o), o.host_cache / 100 * 10);
	opts_free(&o);

	CU_ASSERT_EQUAL(PARSE(&o, "/b", "/m", "-o",
			      "host_cache=64M,page_size=64K,io_engine=psync,"
			      "dirty_limit=50%,dirty_background=1M,dirty_expire_ms=250"), 0);
	CU_ASSERT_EQUAL(o.host_cache, (size_t)64 << 20);
	CU_ASSERT_EQUAL(o.page_size, 65536);
	CU_ASSERT_STRING_EQUAL(o.io_engine, "psync");
	CU_ASSERT_EQUAL(opts_dirty_limit(&o), ((size_t)64 << 20) / 100 * 50);
	CU_ASSERT_EQUAL(opts_dirty_background(&o), (size_t)1 << 20);
	CU_ASSERT_EQUAL(o.dirty_expire_ms, 250);
	opts_free(&o);

	CU_ASSERT_EQUAL(PARSE(&o, "/b", "/m", "-o", "host_cache=0"), 0);
	CU_ASSERT_EQUAL(o.host_cache, 0);
	opts_free(&o);
}

static void test_cache_option_errors(void)
{
	static char *bad[] = {
		"page_size=3000", "page_size=128K", "page_size=2K", "page_size=x",
		"host_cache=lots", "host_cache=", "io_engine=spdk", "io_engine",
		"dirty_limit=0", "dirty_limit=101%", "dirty_limit=%",
		"dirty_background=5x", "dirty_expire_ms=0", "dirty_expire_ms=1e3",
		"ksm_scope=gid", "ksm_scope=", "ksm_scope",
	};
	struct hmmfs_opts o;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *argv[] = { "hmmfs", "/b", "/m", "-o", (char *)bad[i], NULL };

		CU_ASSERT_EQUAL(opts_parse(5, argv, &o, err, sizeof(err)), -EINVAL);
		CU_ASSERT_PTR_NOT_NULL(strstr(err, "option '"));
		opts_free(&o);
	}
}

/* A device_bw under 1 MiB/s would make a migrate step wait for ages. */
static void test_device_bw_floor(void)
{
	struct hmmfs_opts o;

	CU_ASSERT_EQUAL(PARSE(&o, "/b", "/m", "-o", "device_bw=1"), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "over a minute"));
	opts_free(&o);
	CU_ASSERT_EQUAL(PARSE(&o, "/b", "/m", "-o", "device_bw=1023K"), -EINVAL);
	opts_free(&o);
	CU_ASSERT_EQUAL(PARSE(&o, "/b", "/m", "-o", "device_bw=1M"), 0);
	CU_ASSERT_EQUAL(o.device_bw, 1 << 20);
	opts_free(&o);
	CU_ASSERT_EQUAL(PARSE(&o, "/b", "/m", "-o", "device_bw=0"), 0);
	opts_free(&o);
}

/* devices=N: 1 to 8, with a device tier. */
static void test_devices(void)
{
	struct hmmfs_opts o;

	CU_ASSERT_EQUAL(PARSE(&o, "/b", "/m"), 0);
	CU_ASSERT_EQUAL(o.devices, 1);
	opts_free(&o);
	CU_ASSERT_EQUAL(PARSE(&o, "/b", "/m", "-o", "devices=3"), 0);
	CU_ASSERT_EQUAL(o.devices, 3);
	opts_free(&o);
	CU_ASSERT_EQUAL(PARSE(&o, "/b", "/m", "-o", "devices=9"), -EINVAL);
	opts_free(&o);
	CU_ASSERT_EQUAL(PARSE(&o, "/b", "/m", "-o", "devices=0"), -EINVAL);
	opts_free(&o);
	CU_ASSERT_EQUAL(PARSE(&o, "/b", "/m", "-o", "device=cuda,gpu=1,devices=2"), 0);
	CU_ASSERT_EQUAL(o.ngpus, 2);
	CU_ASSERT_EQUAL(o.gpus[0], 1);
	CU_ASSERT_EQUAL(o.gpus[1], 2);
	opts_free(&o);
	/* a list of GPUs: one device each */
	CU_ASSERT_EQUAL(PARSE(&o, "/b", "/m", "-o", "device=cuda,gpu=3:0:5"), 0);
	CU_ASSERT_EQUAL(o.devices, 3);
	CU_ASSERT_EQUAL(o.gpu, 3);
	CU_ASSERT_EQUAL(o.gpus[0], 3);
	CU_ASSERT_EQUAL(o.gpus[1], 0);
	CU_ASSERT_EQUAL(o.gpus[2], 5);
	opts_free(&o);
	CU_ASSERT_EQUAL(PARSE(&o, "/b", "/m", "-o", "device=cuda,gpu=0:1,devices=2"), 0);
	opts_free(&o);
	CU_ASSERT_EQUAL(PARSE(&o, "/b", "/m", "-o", "device=cuda,gpu=0:1,devices=3"), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "lists 2 GPUs but devices=3"));
	opts_free(&o);
	static char *bad[] = {
		"gpu=1:1", "gpu=0:", "gpu=:0", "gpu=0::1", "gpu=x", "gpu=256",
		"gpu=0:1:2:3:4:5:6:7:8", "gpu=",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CU_ASSERT_EQUAL(PARSE(&o, "/b", "/m", "-o", bad[i]), -EINVAL);
		CU_ASSERT_PTR_NOT_NULL(strstr(err, "gpu=0:2"));
		opts_free(&o);
	}
	CU_ASSERT_EQUAL(PARSE(&o, "/b", "/m", "-o", "device=none,devices=2"), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "no device tier"));
	opts_free(&o);
}

/* Dedupe's scope: one owner's files by default (issue 13, item 3). */
static void test_ksm_scope(void)
{
	struct hmmfs_opts o;

	CU_ASSERT_EQUAL(PARSE(&o, "/b", "/m", "-o", "ksm=on"), 0);
	CU_ASSERT_STRING_EQUAL(o.ksm_scope, "uid");
	opts_free(&o);
	CU_ASSERT_EQUAL(PARSE(&o, "/b", "/m", "-o", "ksm=on,ksm_scope=all"), 0);
	CU_ASSERT_STRING_EQUAL(o.ksm_scope, "all");
	opts_free(&o);
	CU_ASSERT_EQUAL(PARSE(&o, "/b", "/m", "-o", "ksm_scope=all,ksm_scope=uid"), 0);
	CU_ASSERT_STRING_EQUAL(o.ksm_scope, "uid");	/* the last one counts */
	opts_free(&o);
}

static void test_atime_flags(void)
{
	struct hmmfs_opts o;

	CU_ASSERT_EQUAL(PARSE(&o, "/b", "/m", "-o", "relatime,strictatime,nodiratime"), 0);
	CU_ASSERT_EQUAL(o.vfs_set, MS_STRICTATIME | MS_NODIRATIME);
	CU_ASSERT_EQUAL(o.vfs_clear & (MS_RELATIME | MS_NOATIME), MS_RELATIME | MS_NOATIME);
	CU_ASSERT_PTR_NULL(o.fuse_opts);	/* not for libfuse */
	opts_free(&o);
	CU_ASSERT_EQUAL(PARSE(&o, "/b", "/m", "-o", "strictatime=1"), -EINVAL);
	opts_free(&o);
}

int register_fs_options(void)
{
	static const CU_TestInfo tests[] = {
		{ "defaults", test_defaults },
		{ "flags and values", test_flags_and_values },
		{ "-d implies -f", test_debug_implies_foreground },
		{ "libfuse's spellings", test_libfuse_spellings },
		{ "unknown option", test_unknown_option },
		{ "malformed values", test_malformed_values },
		{ "positionals", test_positionals },
		{ "mount(8) words", test_mount_words },
		{ "allow_other implies default_permissions",
		  test_allow_other_implies_permissions },
		{ "libfuse argv", test_fuse_argv },
		{ "cache options", test_cache_options },
		{ "cache option errors", test_cache_option_errors },
		{ "atime flags for the mount", test_atime_flags },
		{ "device_bw under 1 MiB/s", test_device_bw_floor },
		{ "devices=N", test_devices },
		{ "ksm_scope", test_ksm_scope },
		CU_TEST_INFO_NULL,
	};

	return unit_add_suite("fs_options", tests);
}
