/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "lib/err.h"

/*
 * The image store, under a root directory (the agent passes $datadir/images):
 *
 *   blobs/sha256/<hex>        verified blobs (image config JSON; compressed layers are
 *                             not kept once unpacked)
 *   layers/<chainid-hex>/     one unpacked layer (diff dir) per chain id, shared by every
 *                             image that has it; unpacked once
 *   images/<config-hex>.json  image record: id, repo tags, layer chain ids (lowest
 *                             first), size, created
 *   tmp/                      staging; anything here at open is left-over and removed
 *
 * A load is all or nothing: a bad tarball leaves the store exactly as it was.
 * Every function is safe to call from a worker thread while others run (one
 * mutex inside); load/import are slow and belong on a worker, not the event loop.
 */

struct image_store;

/* Limits on what a tarball may make us do. */
#define IMAGE_MAX_MANIFEST_BYTES (4u << 20)
#define IMAGE_MAX_CONFIG_BYTES	 (4u << 20)
#define IMAGE_MAX_LAYERS	 127
#define IMAGE_MAX_ENTRY_PATH	 4096

int image_store_open(const char *root, struct image_store **ret, struct shoal_err *err);
void image_store_free(struct image_store *s);

/* Loads a docker-archive (`docker save`) or OCI image-layout tarball, itself
 * plain, gzip or zstd compressed, from fd (read to EOF, need not be seekable).
 * ret_loaded: JSON array of strings, Docker's "Loaded image: NAME" lines, i.e.
 * ["docker.io/library/busybox:latest"] (or "sha256:<id>" for untagged images).
 * ret_warnings (may be NULL): JSON array of strings (skipped device nodes, ...). */
int image_store_load(struct image_store *s, int fd, json_t **ret_loaded, json_t **ret_warnings,
		     struct shoal_err *err);

/* Imports a root file system tarball (plain/gzip/zstd) from fd as a one-layer image
 * tagged ref (normalised). ret_id: "sha256:<hex>". */
int image_store_import(struct image_store *s, int fd, const char *ref, json_t *config_overrides,
		       char **ret_id, struct shoal_err *err);

/* Docker's GET /images/json array: Id, RepoTags, RepoDigests, Created, Size, ... */
int image_store_list(struct image_store *s, json_t **ret, struct shoal_err *err);

/* Removes a tag (or, given an id / when the last tag goes, the image and every layer
 * no other image uses). ret: Docker's [{"Untagged": ...}, {"Deleted": ...}] array.
 * The caller checks for containers using the image first. */
int image_store_remove(struct image_store *s, const char *ref, json_t **ret, struct shoal_err *err);

/* Tags the image ref names as target (NAME[:TAG], normalised); a tag another
 * image had moves. ret_id (may be NULL): "sha256:<hex>" of the image. */
int image_store_tag(struct image_store *s, const char *ref, const char *target, char **ret_id,
		    struct shoal_err *err);
/* Docker's GET /images/{name}/history array, newest first, from the image
 * config's history; each layer's Size is the bytes of its files (a directory
 * walk: call it on a worker). */
int image_store_history(struct image_store *s, const char *ref, json_t **ret,
			struct shoal_err *err);
/* Bytes of the regular files under path, on its file system (a walk). */
uint64_t image_dir_size(const char *path);

struct image_info {
	char *id;	   /* "sha256:<hex>" */
	char *ref;	   /* normalised name it was found by, or the id */
	char **layer_dirs; /* absolute paths of unpacked layers, lowest first; NULL-terminated */
	size_t n_layers;
	json_t *config; /* the image config's "config" object: Env, Cmd, Entrypoint,
			 * WorkingDir, User, ExposedPorts, Healthcheck, StopSignal ... */
};

/* Finds an image by name (normalised), "sha256:<hex>", or a unique id prefix
 * (>= 4 hex). -ENOENT with a message saying how to load it if absent. */
int image_store_resolve(struct image_store *s, const char *ref, struct image_info **ret,
			struct shoal_err *err);
void image_info_free(struct image_info *info);

/* Docker's reference normalisation: "busybox" -> "docker.io/library/busybox:latest",
 * "me/app:1" -> "docker.io/me/app:1", "reg:5000/x" -> "reg:5000/x:latest".
 * -EINVAL for a malformed reference. */
int image_ref_normalize(const char *ref, char **ret);
/* The short form Docker shows: "busybox:latest", "me/app:1". */
int image_ref_familiar(const char *normalized, char **ret);

/* ---- pulls from registries (image-pull.c) ---- */

/* Compressed bytes one pull may download, unless the options say otherwise. */
#define IMAGE_PULL_MAX_BYTES (16ull << 30)
/* Layer downloads at once. */
#define IMAGE_PULL_PARALLEL 3

/* One line of Docker's pull progress: status is "Pulling from <repo>" (id: the
 * tag or digest), "Pulling fs layer", "Already exists", "Downloading"
 * (current/total bytes), "Verifying Checksum", "Download complete", "Extracting",
 * "Pull complete"; id is the layer digest's first 12 hex digits. */
struct image_pull_event {
	const char *id;
	const char *status;
	uint64_t current, total;
};
typedef void (*image_pull_progress_cb)(const struct image_pull_event *ev, void *userdata);

struct image_pull_opts {
	/* Docker's X-Registry-Auth value: base64url JSON {"username", "password",
	 * "serveraddress"}; NULL or "" pulls anonymously. */
	const char *auth;
	/* Registries ("host" for every port, or "host:port") reached over plain
	 * HTTP; every other one over HTTPS with the certificate verified.
	 * NULL-terminated, may be NULL. */
	char *const *insecure;
	image_pull_progress_cb progress; /* may be NULL; called on the pulling thread */
	void *userdata;
	const atomic_int *cancel; /* may be NULL; non-zero stops the pull (ECANCELED) */
	uint64_t max_bytes;	  /* 0: IMAGE_PULL_MAX_BYTES */
};

struct image_pull_result {
	char *id;     /* "sha256:<config hex>" */
	char *ref;    /* the normalised reference pulled */
	char *digest; /* "sha256:<hex>" of the manifest (or list) the reference named */
	bool updated; /* false: the reference named this image already ("Image is up to date") */
};
void image_pull_result_done(struct image_pull_result *r);

/* Pulls ref (normalised as image_ref_normalize does) from its registry per the
 * distribution spec (Docker schema 2 or OCI; lists/indexes pick linux and this
 * machine's architecture). Every blob is checked against its digest before use;
 * layers the store has are not downloaded; a partial download is resumed. All
 * or nothing, like a load. Blocking: call it on a worker thread. Errors name the
 * registry; err->code ENOENT for an unknown image, EACCES for refused
 * credentials, ECANCELED when cancelled. */
int image_store_pull(struct image_store *s, const char *ref, const struct image_pull_opts *opts,
		     struct image_pull_result *ret, struct shoal_err *err);
/* Whether auth is an X-Registry-Auth value a pull can use (image_pull_opts'
 * auth); -EINVAL with the reason otherwise. */
int image_pull_auth_check(const char *auth, struct shoal_err *err);
