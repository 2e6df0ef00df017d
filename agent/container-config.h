/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "lib/err.h"

/* RFC 1123 host names: labels of letters, digits and inner hyphens. */
#define HOSTNAME_MAX	   253
#define HOSTNAME_LABEL_MAX 63
/* Config.User ("user:group"); passwd names are far shorter. */
#define USER_SPEC_MAX 256
/* Docker's (and the kernel's practical) smallest memory limit. */
#define MEMORY_MIN (6 * 1024 * 1024)
/* The kernel's PID_MAX_LIMIT: pids.max refuses more. */
#define PIDS_LIMIT_MAX (4 * 1024 * 1024)

/* What the machine has, for the limits a create may ask for. 0 = unknown
 * (that check is skipped). */
struct container_host {
	int64_t mem_bytes;
	int64_t swap_bytes;
	long ncpus;
};
void container_host_probe(struct container_host *ret);

/* Checks a /containers/create body (Docker's Config + HostConfig) field by
 * field: types, ranges, names, limits against this machine
 * (container_host_probe). Touches no state, so it is fuzzed. On failure err
 * names the field and what it should be. */
int container_config_check(json_t *body, struct shoal_err *err);
/* The same against a given machine. Pure. */
int container_config_check_host(json_t *body, const struct container_host *host,
				struct shoal_err *err);

/* A host or domain name as RFC 1123 has it: labels of at most 63 letters,
 * digits and inner hyphens, dot separated, at most 253 in all. field names
 * it in the message. "" is valid (unset). */
int container_hostname_check(const char *field, const char *s, struct shoal_err *err);

/* The image's environment with the user's on top: a user's KEY=V (or KEY)
 * replaces the image's KEY, others are appended. *ret is a new strv. */
int container_env_merge(char **image_env, char **user_env, char ***ret);

/* Mounts: at most this many per container (the runtime's RT_MAX_MOUNTS),
 * paths shorter than PATH_MAX, volume names of [a-zA-Z0-9][a-zA-Z0-9_.-]. */
#define CONTAINER_MOUNTS_MAX	  64
#define CONTAINER_MOUNT_PATH_MAX  4096
#define CONTAINER_VOLUME_NAME_MAX 255
int container_volume_name_check(const char *field, const char *name, struct shoal_err *err);
/* A create's HostConfig.Binds, HostConfig.Mounts, HostConfig.Tmpfs and
 * Config.Volumes as one list, checked (errors name the field): each entry
 * {"Type": "bind"|"volume"|"tmpfs", "Destination", "RW", "Mode",
 * "Propagation"?, "Source"? (bind), "CreateSource"? (bind: make a missing
 * host directory, as -v does), "Name"? (volume; none = anonymous), "Labels"?
 * (volume), "Anonymous"?, "TmpfsData"?, "NoExec"? (tmpfs)}. Pure. */
int container_mounts_parse(json_t *config, json_t *hc, json_t **ret, struct shoal_err *err);
/* A Mounts array (Docker's Mount objects) on its own, e.g. a service's
 * ContainerSpec.Mounts, checked by the same rules; field names it in errors. */
int container_mounts_check(const char *field, json_t *mounts, struct shoal_err *err);

/* HostConfig.RestartPolicy of a plain container, as Docker has it. */
enum container_restart_mode {
	CONTAINER_RESTART_NO,
	CONTAINER_RESTART_ALWAYS,
	CONTAINER_RESTART_UNLESS_STOPPED,
	CONTAINER_RESTART_ON_FAILURE,
};
struct container_restart_policy {
	enum container_restart_mode mode;
	int max_retries; /* on-failure only; 0 = no limit */
};
/* Docker's backoff between restarts: 100 ms, doubled per restart up to 1 min,
 * back to 100 ms after a run of at least 10 s. */
#define CONTAINER_RESTART_DELAY_MIN_MS 100
#define CONTAINER_RESTART_DELAY_MAX_MS 60000
#define CONTAINER_RESTART_RESET_NS     (INT64_C(10) * 1000000000)

/* {"Name": "no"|""|"always"|"unless-stopped"|"on-failure", "MaximumRetryCount": N}
 * (NULL or null: no policy), checked with Docker's messages: a count only
 * for on-failure, never negative. Pure. */
int container_restart_policy_parse(json_t *v, struct container_restart_policy *ret,
				   struct shoal_err *err);
const char *container_restart_mode_name(enum container_restart_mode m);
/* At an exit: whether the policy restarts the container. manual_stop: the
 * user stopped or killed it (unless-stopped then does not); restart_count:
 * the restarts so far (on-failure's limit). */
bool container_restart_on_exit(const struct container_restart_policy *p, int exit_code,
			       bool manual_stop, int restart_count);
/* When the agent starts: whether a stopped container that ran before starts
 * again. always does, even after a manual stop; unless-stopped unless
 * stopped manually; on-failure and no do not (Docker's documented rules). */
bool container_restart_at_agent_start(const struct container_restart_policy *p, bool manual_stop);
/* The wait before the next restart, from the last one (0: none yet) and
 * how long the run that just ended lasted. */
int64_t container_restart_backoff_ms(int64_t prev_ms, int64_t ran_ns);
