/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "lib/err.h"

struct image_store;

/* At most this many warnings are kept; the rest are counted in one last line. */
#define IMAGE_MAX_WARNINGS 64
/* Entries an outer tarball may hold (each is staged as a file). */
#define IMAGE_MAX_OUTER_ENTRIES 16384
/* Entries one layer may hold. */
#define IMAGE_MAX_LAYER_ENTRIES (1u << 20)
/* Nesting of OCI indexes, and symlink hops inside the outer tarball. */
#define IMAGE_MAX_INDEX_DEPTH 4
#define IMAGE_MAX_LINK_HOPS   8

/* A parsed reference; repo is normalised ("docker.io/library/busybox"), tag and
 * digest ("sha256:<hex>") are NULL when absent. */
struct image_ref {
	char *repo;
	char *tag;
	char *digest;
};
int image_ref_parse(const char *ref, struct image_ref *ret);
void image_ref_done(struct image_ref *r);
bool image_is_hex(const char *s, size_t n);

/* Appends a formatted warning to warnings (a JSON array, may be NULL). */
void image_warn(json_t *warnings, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* sha256 (hex) and byte count of the decompressed stream of a (possibly
 * gzip/zstd/... compressed) file. */
int image_stream_digest(const char *path, char ret_hex[65], uint64_t *ret_size,
			struct shoal_err *err);

/* Unpacks the layer tarball at src (any compression) into dest, which must not
 * exist; creates it. Whiteouts become overlayfs whiteouts. Refuses unsafe entries
 * (the message names the entry). On failure dest may be left half-written. */
int image_layer_unpack(const char *src, const char *dest, json_t *warnings, struct shoal_err *err);

/* One image ready to be committed: everything verified, its new layers staged as
 * <stage>/layers/<chain-hex>. */
struct image_plan {
	char config_hex[65];
	char *config_path;   /* staged, verified config blob */
	char **tags;	     /* normalised, NULL-terminated (may be empty) */
	char **repo_digests; /* "repo@sha256:<hex>", NULL-terminated */
	size_t n_layers;
	char (*chain)[65];
	char (*diff)[65];
	char **layer_paths; /* staged layer blobs, lowest first (load only) */
	uint64_t size;
	int64_t created; /* seconds since the epoch, from the config */
};
void image_plan_done(struct image_plan *p);

/* Staging area under the store's tmp/: a fresh random directory. */
int image_store_stage_new(struct image_store *s, char **ret_dir, struct shoal_err *err);
const char *image_store_root(struct image_store *s);

/* Marks chain ids as in use by a load in progress so that a concurrent remove
 * does not collect them; ret_exists[i] tells whether layers/<chain[i]> exists. */
int image_store_pin_layers(struct image_store *s, char (*chain)[65], size_t n, bool *ret_exists);
void image_store_unpin_layers(struct image_store *s, char (*chain)[65], size_t n);

/* Moves staged layers and configs into place and writes the image records; all
 * or nothing. Tags taken from other images are reported in warnings (may be
 * NULL). ret_loaded as image_store_load's. */
int image_store_commit(struct image_store *s, struct image_plan *plans, size_t n, const char *stage,
		       json_t *warnings, json_t **ret_loaded, struct shoal_err *err);

/* Parses an RFC 3339 time into seconds since the epoch; 0 when absent or bad. */
int64_t image_parse_time(const char *s);

/* A libarchive reader with the compressions images use and either the tar or
 * the raw format (to read a compressed stream as bytes). */
struct archive *image_archive_new(bool raw);
