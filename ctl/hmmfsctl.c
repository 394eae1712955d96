/* SPDX-License-Identifier: MIT */
/*
 * ctl/hmmfsctl.c — the hmmfs control tool.
 *
 * Commands are rows of cmd_table[]: a name, a one-line summary and a
 * handler.  The control commands (stats, sync, migrate, residency, devop,
 * ksm) arrive with the page cache, device tier and dedupe layers; until a
 * command exists it is unknown, and unknown commands fail with exit code 2
 * and the usage text.  No command prints made-up output.
 */
#include <stdio.h>
#include <string.h>

struct ctl_cmd {
	const char *name;
	const char *summary;
	int (*run)(int argc, char **argv);
};

static const struct ctl_cmd cmd_table[] = {
	{ NULL, NULL, NULL },
};

static void usage(FILE *out)
{
	fprintf(out,
		"usage: hmmfsctl COMMAND [ARGS...]\n"
		"       hmmfsctl --help | --version\n"
		"\n"
		"Control a mounted hmmfs file system.\n"
		"\n"
		"Commands:\n");
	if (!cmd_table[0].name)
		fprintf(out, "  (none yet in this version)\n");
	for (const struct ctl_cmd *c = cmd_table; c->name; c++)
		fprintf(out, "  %-12s %s\n", c->name, c->summary);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
		usage(stdout);
		return 0;
	}
	if (strcmp(argv[1], "-V") == 0 || strcmp(argv[1], "--version") == 0) {
		printf("hmmfsctl %s\n", HMMFS_VERSION);
		return 0;
	}
	for (const struct ctl_cmd *c = cmd_table; c->name; c++)
		if (strcmp(argv[1], c->name) == 0)
			return c->run(argc - 1, argv + 1);
	fprintf(stderr, "hmmfsctl: unknown command '%s'\n\n", argv[1]);
	usage(stderr);
	return 2;
}
