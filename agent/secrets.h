/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "lib/err.h"

struct agent;
struct api_req;

/*
 * Docker swarm's secrets and configs. Records live in the store under
 * /shoal/secrets/<id> and /shoal/configs/<id>; a name is held by
 * /shoal/secret-names/<name> (or config-names) written in the same transaction,
 * so that two creates of one name cannot both succeed. A secret's data is kept
 * sealed with AES-256-GCM under the cluster's secrets key: a random 96-bit
 * nonce per value, the record's id as additional data (a sealed value moved to
 * another record does not open), and the key's id (the first 8 bytes of the
 * key's SHA-256, hex) so that a node holding another key says so instead of
 * failing on garbage. Configs are kept as they are, as Docker does.
 */
#define SECRETS_PREFIX	     "/shoal/secrets/"
#define CONFIGS_PREFIX	     "/shoal/configs/"
#define SECRET_NAMES_PREFIX  "/shoal/secret-names/"
#define CONFIG_NAMES_PREFIX  "/shoal/config-names/"
#define SECRETS_KEY_LEN	     32
#define SECRETS_KEY_ID_LEN   16 /* hex characters */
#define SECRETS_NONCE_LEN    12 /* 96 bits, GCM's own size */
#define SECRETS_TAG_LEN	     16
#define SECRETS_MAX_DATA     (500 * 1024) /* Docker's MaxSecretSize: data must be shorter */
#define SECRETS_MAX_NAME     64		  /* Docker's limit on a secret's or config's name */
#define SECRETS_KEY_FILENAME "secrets.key"

struct secrets_key {
	uint8_t key[SECRETS_KEY_LEN];
	char id[SECRETS_KEY_ID_LEN + 1];
	char path[4096]; /* where it was read, for messages */
};

/* Reads the key at path: exactly SECRETS_KEY_LEN bytes in a regular file owned
 * by root that neither group nor others may read or write (0600 or 0400).
 * Otherwise -EINVAL (or -errno) with a message naming the problem. With
 * create, a missing file is made (0600, random bytes) first. */
int secrets_key_load(const char *path, bool create, struct secrets_key *ret, struct shoal_err *err);
/* The key's id: the first 8 bytes of its SHA-256, hex. */
void secrets_key_id(const uint8_t key[SECRETS_KEY_LEN], char ret[SECRETS_KEY_ID_LEN + 1]);

/* Seals data under key with aad bound to it: {"KeyID", "Nonce", "Data"}
 * (nonce and ciphertext with its tag in base64). NULL with errno on failure. */
json_t *secrets_seal(const struct secrets_key *key, const char *aad, const void *data, size_t len);
/* Opens what secrets_seal() made. -EKEYREJECTED when sealed under another key
 * (the message names both ids), -EBADMSG when the value or aad was altered,
 * -EINVAL when it is not a sealed value. *ret is malloc'd, NUL-terminated
 * beyond *ret_len; the caller wipes and frees it. */
int secrets_unseal(const struct secrets_key *key, const char *aad, json_t *sealed, uint8_t **ret,
		   size_t *ret_len, struct shoal_err *err);

/* Standard base64 with padding, as Go's encoding/json reads []byte. -EINVAL
 * when s is not that; *ret is malloc'd (NUL-terminated beyond *ret_len). */
int secrets_b64_decode(const char *s, size_t n, uint8_t **ret, size_t *ret_len);
/* NULL on ENOMEM. */
char *secrets_b64_encode(const void *data, size_t len);

/* Docker's name rule for secrets and configs: 1 to 64 of [a-zA-Z0-9-_.],
 * beginning and ending with a letter or digit. */
bool secrets_name_valid(const char *name);

/* ---- in the agent (agent/secrets-task.c) ---- */

/* Loads the node's key (--secrets-key-file, else $datadir/secrets.key, made on
 * the first start). Fails, naming the problem, when the key cannot be used. */
int secrets_init(struct agent *a, struct shoal_err *err);
/* With the store open and the containers loaded: says which stored secrets
 * were sealed under another key, and removes the files of tasks whose
 * containers are gone. */
void secrets_start(struct agent *a);
void secrets_free(struct agent *a);

/* A service spec's TaskTemplate.ContainerSpec.Secrets and Configs against the
 * store: every reference names an existing object (by SecretID, else by
 * SecretName), and gets both its ID and its Name filled in. -ENOENT with
 * Docker's "secret not found: NAME" (HTTP 400). spec is the full spec JSON. */
int secrets_service_resolve(struct agent *a, json_t *spec, struct shoal_err *err);

/* For a task about to get its container: a tmpfs of its own under
 * $run_dir/secrets/<task id> holding every secret (opened with this node's key)
 * and config of the task's spec, each file with its owner and mode, and a
 * read-only bind of each into config's HostConfig.Mounts (secrets under
 * /run/secrets, configs at their path). Nothing is made when the task uses
 * none. On failure nothing is left and err says which secret and why. */
int secrets_task_prepare(struct agent *a, const char *task_id, json_t *task, json_t *config,
			 struct shoal_err *err);
/* Removes what secrets_task_prepare() made for task_id (none: nothing). */
void secrets_task_release(struct agent *a, const char *task_id);
/* A container is gone: its task's secrets go with it. */
void secrets_container_removed(struct agent *a, json_t *labels);
