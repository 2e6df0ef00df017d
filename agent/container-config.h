/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <jansson.h>

#include "lib/err.h"

/* Checks a /containers/create body (Docker's Config + HostConfig) field by
 * field: types, ranges, names. Pure: touches no state, so it is fuzzed. On
 * failure err names the field and what it should be. */
int container_config_check(json_t *body, struct shoal_err *err);

/* The image's environment with the user's on top: a user's KEY=V (or KEY)
 * replaces the image's KEY, others are appended. *ret is a new strv. */
int container_env_merge(char **image_env, char **user_env, char ***ret);
