/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "cli/cli.h"

/* Shared between the container commands: option ids (short options use their
 * letter) and the run/attach helpers that start, exec and logs reuse. */
enum {
	OPT_RM = 1000,
	OPT_NAME,
	OPT_ENV_FILE,
	OPT_ENTRYPOINT,
	OPT_MEMORY_SWAP,
	OPT_CPUS,
	OPT_PIDS_LIMIT,
	OPT_READ_ONLY,
	OPT_CAP_ADD,
	OPT_CAP_DROP,
	OPT_PRIVILEGED,
	OPT_SECURITY_OPT,
	OPT_NETWORK,
	OPT_NET,
	OPT_LOG_OPT,
	OPT_LOG_DRIVER,
	OPT_SIG_PROXY,
	OPT_EXPOSE,
	OPT_TIME,
	OPT_NO_TRUNC,
	OPT_FORMAT,
	OPT_TAIL,
	OPT_SINCE,
	OPT_UNTIL,
	OPT_TYPE,
};

int cli_attach_start(struct cli_ctx *ctx, const char *id, bool tty, bool interactive,
		     bool sig_proxy, bool do_start);
int cli_env_add(json_t *env, const char *kv);
int cli_env_file_add(json_t *env, const char *path, char *err, size_t errsize);
int cli_start_failure_status(const char *msg);
bool cli_stream_multiplexed(const struct cli_http_resp *resp, bool tty);
int cli_strv_json_push(json_t *obj, const char *key, const char *v);
