// SPDX-License-Identifier: Apache-2.0
#include "bench/bench.h"
#include "cli/cli.h"

/* `shoal bench ...` (shoal executes this with its own arguments); run on its
 * own, `shoal-bench bench ...` or any other shoal command. */
int main(int argc, char **argv)
{
	cli_bench_main = bench_main;
	return cli_main(argc, argv);
}
