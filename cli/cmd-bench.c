// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"

int (*cli_bench_main)(struct cli_ctx *ctx, int argc, char **argv);

int cli_cmd_bench(struct cli_ctx *ctx, int argc, char **argv)
{
	if (cli_bench_main)
		return cli_bench_main(ctx, argc, argv);
	char self[PATH_MAX], path[PATH_MAX + 16];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n < 0) {
		fprintf(stderr, "%s: reading /proc/self/exe: %s\n", ctx->cmdpath, strerror(errno));
		return 1;
	}
	self[n] = '\0';
	char *slash = strrchr(self, '/');
	if (slash)
		*slash = '\0';
	snprintf(path, sizeof(path), "%s/shoal-bench", self);
	/* the same arguments, global flags included: shoal-bench parses them
	 * as shoal does */
	execv(path, ctx->argv);
	fprintf(stderr,
		"%s: running %s: %s (the benchmarks are a binary of their own, built beside "
		"shoal)\n",
		ctx->cmdpath, path, strerror(errno));
	return 1;
}
