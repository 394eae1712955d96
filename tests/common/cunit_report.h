/* SPDX-License-Identifier: MIT */
/*
 * tests/common/cunit_report.h — one line per failed assertion, at the end.
 *
 * CUnit's verbose runner prints a failure next to its test, hundreds of
 * lines before the run ends, and its closing summary gives only counts.
 * A CI log that keeps only its tail then says "integration failed" and
 * not what.  cunit_report_failures() prints every failure of the run just
 * made as one line
 *
 *     FAILED: WHO SUITE:TEST: FILE:LINE: CONDITION
 *
 * and appends the same lines to the file $HMMFS_TEST_FAILURES names, if
 * any: tests/run.sh repeats them after its own closing line.
 */
#ifndef HMMFS_TESTS_COMMON_CUNIT_REPORT_H
#define HMMFS_TESTS_COMMON_CUNIT_REPORT_H

/*
 * Print the failures of the last CUnit run on stdout (and append them to
 * $HMMFS_TEST_FAILURES), @who naming the runner ("unit", "integration").
 * Call before CU_cleanup_registry().
 */
void cunit_report_failures(const char *who);

#endif
