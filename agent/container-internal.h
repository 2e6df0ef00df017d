/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <jansson.h>

#include "agent/container.h"

/* Shared by container.c (lifecycle) and container-json.c (records and views). */
json_t *strv_to_json(char **v);
char **json_to_strv(json_t *arr);
enum container_state container_state_from_name(const char *s);
