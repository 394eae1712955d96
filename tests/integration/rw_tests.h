/* SPDX-License-Identifier: MIT */
/*
 * tests/integration/rw_tests.h — the read/write tests that run both on a
 * default mount (suites "io" and "concurrency") and on a -o direct_io
 * mount (suite "direct_io").  Each is a plain CUnit test body that uses
 * the current test's mount.
 */
#ifndef HMMFS_TESTS_INTEGRATION_RW_TESTS_H
#define HMMFS_TESTS_INTEGRATION_RW_TESTS_H

void rw_open_trunc(void);
void rw_open_append(void);
void rw_read_write_contents(void);
void rw_read_backing_written(void);
void rw_write_past_eof_hole(void);
void rw_read_at_eof(void);
void rw_fsync(void);
void rw_fdatasync(void);
void rw_o_direct(void);
void rw_large_file(void);
void rw_copy_file_range(void);
void rw_append_two_threads(void);
void rw_threads64(void);

#endif
