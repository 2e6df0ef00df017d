/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "lib/err.h"
#include "runtime/runtime.h"

struct agent;

/*
 * Named volumes of the local driver, on this node: a directory per volume,
 * $data_dir/volumes/<name>/_data (what containers mount), with volume.json
 * beside it (name, labels, creation time, whether it is anonymous). A volume
 * is created on first use or by volume_create(), kept until removed, and not
 * removed while a container (any state) refers to it. Its content is never
 * filled from the image (as Docker's nocopy).
 *
 * Objects are Docker's: {"Name", "Driver": "local", "Mountpoint", "CreatedAt",
 * "Labels", "Scope": "local", "Options": {}}.
 */

/* Creates the volume, or returns the existing one of that name (labels are
 * only set at creation). anonymous marks one made for a container's path
 * without a name (removed with the container when asked). err->status 400
 * for a bad name. */
int volume_create(struct agent *a, const char *name, json_t *labels, bool anonymous, json_t **ret,
		  struct shoal_err *err);
/* err->status 404 when there is none. */
int volume_get(struct agent *a, const char *name, json_t **ret, struct shoal_err *err);
/* Every volume, sorted by name. */
int volume_list(struct agent *a, json_t **ret, struct shoal_err *err);
/* err->status 409 naming the containers while in use (even with force: a
 * mounted volume's data would vanish under them), 404 when there is none. */
int volume_remove(struct agent *a, const char *name, struct shoal_err *err);
/* The directory a container mounts for the volume. */
int volume_data_path(struct agent *a, const char *name, char *buf, size_t len);
/* The ids of the containers that refer to the volume, as a new array. */
json_t *volume_users(struct agent *a, const char *name);
/* The bytes its files take (a walk of its directory). */
int64_t volume_size(struct agent *a, const char *name);
/* Whether the volume was made anonymous. */
bool volume_is_anonymous(struct agent *a, const char *name);

/* A create's mounts (container_mounts_parse()) with their volumes made (named
 * ones created if missing, anonymous ones named and created) and bind sources
 * checked (a missing one is an error unless CreateSource). Anonymous volumes
 * made here are removed again on failure. */
int volumes_resolve(struct agent *a, json_t *body, json_t **ret, struct shoal_err *err);
/* The runtime's mounts for a start; *ret_paths holds the strings they point
 * to (strv_free() it, free() *ret, after rt_spawn()). Makes missing -v host
 * directories. */
int volumes_spec(struct agent *a, json_t *mounts, struct rt_mount **ret, size_t *ret_n,
		 char ***ret_paths, struct shoal_err *err);
/* Docker's container "Mounts" for inspect. */
json_t *volumes_inspect(struct agent *a, json_t *mounts);
/* The names of the anonymous volumes among mounts; removing them (those no
 * other container uses). */
json_t *volumes_anonymous(json_t *mounts);
void volumes_remove_names(struct agent *a, json_t *names);
/* At startup: finishes removals a crash cut short. */
void volumes_init(struct agent *a);
