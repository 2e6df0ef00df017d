/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "lib/err.h"

/* JSON field helpers: return 0, -ENOENT when absent/null, -EINVAL with a message
 * naming the field and the expected type. */
int json_get_string(json_t *obj, const char *key, const char **ret, struct shoal_err *err);
int json_get_int(json_t *obj, const char *key, int64_t *ret, struct shoal_err *err);
int json_get_bool(json_t *obj, const char *key, bool *ret, struct shoal_err *err);
/* A string array (also accepts a single string when allow_string); NULL-terminated copy. */
int json_get_strv(json_t *obj, const char *key, bool allow_string, char ***ret,
		  struct shoal_err *err);
int json_get_object(json_t *obj, const char *key, json_t **ret, struct shoal_err *err);
