/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/test_util_size.c — util/size.c, the size grammar hmmfs and
 * hmmfsctl share: units, fractions that come to whole bytes, leading
 * zeros read as decimal, the 64-bit limit, and what is refused.
 */
#include <errno.h>
#include <stdint.h>

#include "tests/unit/unit.h"
#include "util/size.h"

static void expect(const char *s, int ret, uint64_t want)
{
	uint64_t v = 0;

	CU_ASSERT_EQUAL(size_parse(s, &v), ret);
	if (!ret)
		CU_ASSERT_EQUAL(v, want);
}

static void test_accepted(void)
{
	expect("4096", 0, 4096);
	expect("0", 0, 0);
	expect("64K", 0, 65536);
	expect("8m", 0, 8u << 20);
	expect("2MiB", 0, 2u << 20);
	expect("1MB", 0, 1u << 20);
	expect("1.5G", 0, 3ull << 29);
	expect("1.5M", 0, 3u << 19);
	expect("0.5K", 0, 512);
	expect("08", 0, 8);	/* decimal, not octal */
	expect("010", 0, 10);
	expect("1P", 0, 1ull << 50);
	expect("18446744073709551615", 0, UINT64_MAX);
	expect("16383P", 0, 16383ull << 50);
}

static void test_refused(void)
{
	expect("", -EINVAL, 0);
	expect("-1", -EINVAL, 0);
	expect("K", -EINVAL, 0);
	expect(".5K", -EINVAL, 0);
	expect("1.", -EINVAL, 0);
	expect("0.1K", -EINVAL, 0);	/* 102.4 bytes */
	expect("1.5", -EINVAL, 0);
	expect("12Q", -EINVAL, 0);
	expect("12Kx", -EINVAL, 0);
	expect("1 M", -EINVAL, 0);
	expect("0x10", -EINVAL, 0);
	expect("1e3", -EINVAL, 0);
	expect("18446744073709551616", -ERANGE, 0);
	expect("16384P", -ERANGE, 0);
	expect("99999999P", -ERANGE, 0);
}

int register_util_size(void)
{
	static const CU_TestInfo tests[] = {
		{ "accepted", test_accepted },
		{ "refused", test_refused },
		CU_TEST_INFO_NULL,
	};

	return unit_add_suite("util_size", tests);
}
