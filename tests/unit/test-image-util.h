/* SPDX-License-Identifier: Apache-2.0 */
/* Shared by the image store tests (test-image-load.c, test-image-store.c). */
#pragma once

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include <archive.h>
#include <jansson.h>

#include "runtime/image.h"

struct buf {
	char *data;
	size_t len, cap;
};

enum { T_FILE, T_DIR, T_SYMLINK, T_HARDLINK, T_CHR, T_FIFO };

#define MAX_TEST_LAYERS 200

struct img {
	size_t n;
	struct buf layers[MAX_TEST_LAYERS]; /* uncompressed tars */
	char diff[MAX_TEST_LAYERS][65];
	char *config; /* JSON text */
	char config_hex[65];
};

struct da_opts {
	const char *tag;
	const char *outer_filter;
	const char *layer_filter;
	bool wrong_config_name;
	bool skip_manifest, skip_layer, skip_config;
	const char *manifest_text;
	size_t n_listed_layers; /* 0: im->n */
	bool blobs_layout;	/* Docker 25+: config and layers under blobs/sha256/ */
	bool link_last_layer;	/* the last layer is a symlink to a copy elsewhere */
};

struct feeder {
	int fd;
	const struct buf *b;
	pthread_t thread;
};

struct fx {
	char root[PATH_MAX];
	struct image_store *s;
};

void buf_append(struct buf *b, const void *d, size_t n);
void buf_free(struct buf *b);
/* in compressed as a bare stream with filter ("gzip", "zstd") */
void buf_compress(const struct buf *in, const char *filter, struct buf *out);
void hex_of(const struct buf *b, char hex[65]);

/* A tar writer into b; filter NULL, "gzip" or "zstd". */
struct archive *tar_new(struct buf *b, const char *filter);
void tar_close(struct archive *a);
void tar_add(struct archive *a, const char *name, int type, unsigned mode, const void *data,
	     size_t len, const char *link);
void tar_file(struct archive *a, const char *name, const char *text);
void tar_buf(struct archive *a, const char *name, const struct buf *b);

/* Computes the diff ids and the config of im's layers. */
void img_finish(struct img *im, const char *extra_config);
void img_free(struct img *im);
/* A layer with a few files; seed makes its content (and digest) unique. */
void layer_simple(struct buf *b, const char *seed);
/* im made of two layer_simple() layers, finished. */
void img_two_layers(struct img *im, const char *seed, const char *seed2);
void write_docker_archive(const struct img *im, const struct da_opts *o, struct buf *out);

/* A fresh image store under /tmp per test; fx_teardown removes it. */
int fx_setup(void **state);
int fx_teardown(void **state);
const char *store_root(struct fx *f);
/* A thread writing b into a pipe; feeder_start returns the read end, which
 * feeder_join closes before it waits for the thread. */
int feeder_start(struct feeder *fd, const struct buf *b);
void feeder_join(struct feeder *fd, int read_fd);
/* Loads b through a pipe, as the agent does from an HTTP body. */
int load_buf(struct fx *f, const struct buf *b, json_t **loaded, json_t **warnings,
	     struct shoal_err *err);
void read_whole(const char *path, struct buf *b);
int load_busybox(struct fx *f, json_t **loaded, json_t **warnings);
/* A listing of every file in the store (path, type, size, inode), sorted. */
char *snapshot(struct fx *f);
size_t count_dir(const char *path);
size_t count_layers(struct fx *f);
bool is_root(void);
