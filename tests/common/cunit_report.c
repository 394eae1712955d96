/* SPDX-License-Identifier: MIT */
/*
 * tests/common/cunit_report.c — one line per failed assertion, at the end.
 * See cunit_report.h.  Walks CUnit's failure list once per output; no
 * locking (the runners are single-threaded when they call it).
 */
#include <stdio.h>
#include <stdlib.h>

#include <CUnit/CUnit.h>

#include "tests/common/cunit_report.h"

/* At most this many lines: a loop of failing asserts must not bury the rest. */
#define REPORT_MAX_LINES 40

/* @s on one line: a newline in a condition is printed as "\n". */
static void put_one_line(FILE *out, const char *s)
{
	if (!s || !*s) {
		fputc('-', out);
		return;
	}
	for (; *s; s++) {
		if (*s == '\n')
			fputs("\\n", out);
		else
			fputc(*s, out);
	}
}

static void print_failures(FILE *out, const char *who)
{
	CU_pFailureRecord f;
	unsigned int n = 0;

	for (f = CU_get_failure_list(); f; f = f->pNext, n++) {
		if (n >= REPORT_MAX_LINES)
			continue;
		fprintf(out, "FAILED: %s ", who);
		put_one_line(out, f->pSuite ? f->pSuite->pName : NULL);
		fputc(':', out);
		put_one_line(out, f->pTest ? f->pTest->pName : NULL);
		fputs(": ", out);
		put_one_line(out, f->strFileName);
		fprintf(out, ":%u: ", f->uiLineNumber);
		put_one_line(out, f->strCondition);
		fputc('\n', out);
	}
	if (n > REPORT_MAX_LINES)
		fprintf(out, "FAILED: %s ... and %u more\n", who, n - REPORT_MAX_LINES);
}

void cunit_report_failures(const char *who)
{
	const char *path = getenv("HMMFS_TEST_FAILURES");
	FILE *out;

	if (!CU_get_failure_list())
		return;
	printf("\n");
	print_failures(stdout, who);
	fflush(stdout);
	if (!path || !*path)
		return;
	out = fopen(path, "a");
	if (!out) {
		perror(path);
		return;
	}
	print_failures(out, who);
	fclose(out);
}
