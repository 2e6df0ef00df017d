/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

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
