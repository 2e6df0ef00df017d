// SPDX-License-Identifier: Apache-2.0
/* Helpers for the image store tests: tarballs written with libarchive's writer,
 * synthetic images in docker-archive form, a store per test, loads through a pipe
 * and listings of the store. */
#include <dirent.h>
#include <ftw.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>
#include <cmocka.h>
#include <jansson.h>

#include "lib/cleanup.h"
#include "lib/util.h"
#include "runtime/image.h"
#include "tests/unit/test-image-util.h"

#ifndef SHOAL_BUSYBOX_TAR
#define SHOAL_BUSYBOX_TAR "images/busybox.tar"
#endif

/* ---- byte buffers and tar writing ---- */

void buf_append(struct buf *b, const void *d, size_t n)
{
	if (b->len + n > b->cap) {
		b->cap = (b->len + n) * 2 + 4096;
		b->data = realloc(b->data, b->cap);
		assert_non_null(b->data);
	}
	memcpy(b->data + b->len, d, n);
	b->len += n;
}

void buf_free(struct buf *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}

static la_ssize_t buf_write_cb(struct archive *a, void *c, const void *d, size_t n)
{
	buf_append(c, d, n);
	return (la_ssize_t)n;
}

static void add_filter(struct archive *a, const char *filter)
{
	if (!filter)
		return;
	if (strcmp(filter, "gzip") == 0)
		assert_int_equal(archive_write_add_filter_gzip(a), ARCHIVE_OK);
	else if (strcmp(filter, "zstd") == 0)
		assert_int_equal(archive_write_add_filter_zstd(a), ARCHIVE_OK);
	else
		fail_msg("unknown filter %s", filter);
}

struct archive *tar_new(struct buf *b, const char *filter)
{
	struct archive *a = archive_write_new();
	assert_non_null(a);
	assert_int_equal(archive_write_set_format_pax_restricted(a), ARCHIVE_OK);
	add_filter(a, filter);
	archive_write_set_bytes_in_last_block(a, 1);
	assert_int_equal(archive_write_open(a, b, NULL, buf_write_cb, NULL), ARCHIVE_OK);
	return a;
}

void tar_close(struct archive *a)
{
	assert_int_equal(archive_write_close(a), ARCHIVE_OK);
	archive_write_free(a);
}

void tar_add(struct archive *a, const char *name, int type, unsigned mode, const void *data,
	     size_t len, const char *link)
{
	struct archive_entry *e = archive_entry_new();
	archive_entry_set_pathname(e, name);
	archive_entry_set_mtime(e, 1700000000, 0);
	archive_entry_set_uid(e, 0);
	archive_entry_set_gid(e, 0);
	switch (type) {
	case T_FILE:
		archive_entry_set_filetype(e, AE_IFREG);
		archive_entry_set_size(e, (la_int64_t)len);
		break;
	case T_DIR:
		archive_entry_set_filetype(e, AE_IFDIR);
		break;
	case T_SYMLINK:
		archive_entry_set_filetype(e, AE_IFLNK);
		archive_entry_set_symlink(e, link);
		break;
	case T_HARDLINK:
		archive_entry_set_filetype(e, AE_IFREG);
		archive_entry_set_hardlink(e, link);
		break;
	case T_CHR:
		archive_entry_set_filetype(e, AE_IFCHR);
		archive_entry_set_rdev(e, makedev(1, 3));
		break;
	case T_FIFO:
		archive_entry_set_filetype(e, AE_IFIFO);
		break;
	}
	archive_entry_set_perm(e, mode);
	assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
	if (type == T_FILE && len)
		assert_int_equal(archive_write_data(a, data, len), (la_ssize_t)len);
	archive_entry_free(e);
}

void tar_file(struct archive *a, const char *name, const char *text)
{
	tar_add(a, name, T_FILE, 0644, text, strlen(text), NULL);
}

void tar_buf(struct archive *a, const char *name, const struct buf *b)
{
	tar_add(a, name, T_FILE, 0644, b->data, b->len, NULL);
}

/* data compressed as a bare stream */
void buf_compress(const struct buf *in, const char *filter, struct buf *out)
{
	struct archive *a = archive_write_new();
	assert_int_equal(archive_write_set_format_raw(a), ARCHIVE_OK);
	add_filter(a, filter);
	archive_write_set_bytes_in_last_block(a, 1);
	assert_int_equal(archive_write_open(a, out, NULL, buf_write_cb, NULL), ARCHIVE_OK);
	struct archive_entry *e = archive_entry_new();
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_size(e, (la_int64_t)in->len);
	assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
	assert_int_equal(archive_write_data(a, in->data, in->len), (la_ssize_t)in->len);
	archive_entry_free(e);
	tar_close(a);
}

void hex_of(const struct buf *b, char hex[65])
{
	sha256_hex(b->data, b->len, hex);
}

/* ---- synthetic images ---- */

void img_finish(struct img *im, const char *extra_config)
{
	json_t *diffs = json_array();
	for (size_t i = 0; i < im->n; i++) {
		hex_of(&im->layers[i], im->diff[i]);
		json_array_append_new(diffs, json_sprintf("sha256:%s", im->diff[i]));
	}
	json_t *cfg = json_pack("{s:s, s:s, s:s, s:{s:[s], s:[s]}, s:{s:s, s:o}}", "architecture",
				"amd64", "os", "linux", "created", "2023-11-14T22:13:20Z", "config",
				"Env", "PATH=/bin", "Cmd", "sh", "rootfs", "type", "layers",
				"diff_ids", diffs);
	if (extra_config)
		json_object_set_new(cfg, "pad", json_string(extra_config));
	free(im->config);
	im->config = json_dumps(cfg, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(cfg);
	sha256_hex(im->config, strlen(im->config), im->config_hex);
}

void img_free(struct img *im)
{
	for (size_t i = 0; i < im->n; i++)
		buf_free(&im->layers[i]);
	free(im->config);
	memset(im, 0, sizeof(*im));
}

/* A layer with a few files; seed makes its content (and digest) unique. */
void layer_simple(struct buf *b, const char *seed)
{
	struct archive *a = tar_new(b, NULL);
	tar_add(a, "etc", T_DIR, 0755, NULL, 0, NULL);
	tar_file(a, "etc/seed", seed);
	tar_add(a, "bin", T_DIR, 0755, NULL, 0, NULL);
	tar_add(a, "bin/tool", T_FILE, 0755, "#!/bin/sh\n", 10, NULL);
	tar_close(a);
}

void img_two_layers(struct img *im, const char *seed, const char *seed2)
{
	im->n = 2;
	layer_simple(&im->layers[0], seed);
	layer_simple(&im->layers[1], seed2);
	img_finish(im, NULL);
}

void write_docker_archive(const struct img *im, const struct da_opts *o, struct buf *out)
{
	struct archive *a = tar_new(out, o->outer_filter);
	char name[128];
	snprintf(name, sizeof(name), "%s%s%s", o->blobs_layout ? "blobs/sha256/" : "",
		 o->wrong_config_name
			 ? "0000000000000000000000000000000000000000000000000000000000000000"
			 : im->config_hex,
		 o->blobs_layout ? "" : ".json");
	if (!o->skip_config)
		tar_file(a, name, im->config);
	json_t *layers = json_array();
	size_t listed = o->n_listed_layers ? o->n_listed_layers : im->n;
	for (size_t i = 0; i < listed; i++) {
		size_t k = i % im->n;
		char lname[128];
		if (o->blobs_layout)
			snprintf(lname, sizeof(lname), "blobs/sha256/%s", im->diff[k]);
		else
			snprintf(lname, sizeof(lname), "%s/layer.tar", im->diff[k]);
		json_array_append_new(layers, json_string(lname));
		if (i >= im->n || (o->skip_layer && i == im->n - 1))
			continue;
		if (o->link_last_layer && i == im->n - 1) {
			tar_buf(a, "copy/layer.tar", &im->layers[k]);
			tar_add(a, lname, T_SYMLINK, 0777, NULL, 0, "../copy/layer.tar");
		} else if (o->layer_filter) {
			struct buf c = {};
			buf_compress(&im->layers[k], o->layer_filter, &c);
			tar_buf(a, lname, &c);
			buf_free(&c);
		} else {
			tar_buf(a, lname, &im->layers[k]);
		}
	}
	json_t *m = json_pack("[{s:s, s:[s], s:o}]", "Config", name, "RepoTags",
			      o->tag ? o->tag : "test/img:1", "Layers", layers);
	char *text = json_dumps(m, JSON_COMPACT);
	json_decref(m);
	if (!o->skip_manifest)
		tar_file(a, "manifest.json", o->manifest_text ? o->manifest_text : text);
	free(text);
	tar_close(a);
}

/* ---- store fixture ---- */

int fx_setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	snprintf(f->root, sizeof(f->root), "/tmp/shoal-test-image-XXXXXX");
	assert_non_null(mkdtemp(f->root));
	strcat(f->root, "");
	struct shoal_err err = {};
	char store[PATH_MAX];
	snprintf(store, sizeof(store), "%s/store", f->root);
	assert_int_equal(image_store_open(store, &f->s, &err), 0);
	*state = f;
	return 0;
}

int fx_teardown(void **state)
{
	struct fx *f = *state;
	image_store_free(f->s);
	rm_rf(f->root);
	free(f);
	return 0;
}

const char *store_root(struct fx *f)
{
	static __thread char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s/store", f->root);
	return p;
}

static void *feed_thread(void *arg)
{
	struct feeder *fd = arg;
	write_all(fd->fd, fd->b->data, fd->b->len); /* EPIPE when the reader gives up */
	close(fd->fd);
	return NULL;
}

int feeder_start(struct feeder *fd, const struct buf *b)
{
	int p[2];
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	*fd = (struct feeder){.fd = p[1], .b = b};
	assert_int_equal(pthread_create(&fd->thread, NULL, feed_thread, fd), 0);
	return p[0];
}

void feeder_join(struct feeder *fd, int read_fd)
{
	close(read_fd);
	pthread_join(fd->thread, NULL);
}

/* Loads b through a pipe, as the agent does from an HTTP body. */
int load_buf(struct fx *f, const struct buf *b, json_t **loaded, json_t **warnings,
	     struct shoal_err *err)
{
	struct feeder fd;
	int in = feeder_start(&fd, b);
	json_t *l = NULL, *w = NULL;
	int r = image_store_load(f->s, in, &l, &w, err);
	feeder_join(&fd, in);
	if (loaded)
		*loaded = l;
	else
		json_decref(l);
	if (warnings)
		*warnings = w;
	else
		json_decref(w);
	return r;
}

void read_whole(const char *path, struct buf *b)
{
	char *text;
	size_t len;
	assert_int_equal(read_file(path, 64u << 20, &text, &len), 0);
	b->data = text;
	b->len = b->cap = len;
}

int load_busybox(struct fx *f, json_t **loaded, json_t **warnings)
{
	struct buf b = {};
	read_whole(SHOAL_BUSYBOX_TAR, &b);
	struct shoal_err err = {};
	int r = load_buf(f, &b, loaded, warnings, &err);
	if (r < 0)
		print_error("load: %s\n", err.msg);
	buf_free(&b);
	return r;
}

/* A listing of every file in the store (path, type, size, inode) to check that a
 * refused load changed nothing. */
static struct buf snap_acc;
static size_t snap_prefix;

static int snap_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	char line[PATH_MAX + 128];
	int n = snprintf(line, sizeof(line), "%s %o %lld %llu\n", path + snap_prefix, st->st_mode,
			 (long long)(S_ISDIR(st->st_mode) ? 0 : st->st_size),
			 (unsigned long long)st->st_ino);
	buf_append(&snap_acc, line, (size_t)n);
	return 0;
}

static int cmp_lines(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

char *snapshot(struct fx *f)
{
	memset(&snap_acc, 0, sizeof(snap_acc));
	snap_prefix = strlen(store_root(f));
	assert_int_equal(nftw(store_root(f), snap_cb, 16, FTW_PHYS), 0);
	buf_append(&snap_acc, "", 1);
	/* sort lines so directory order does not matter */
	char **lines = NULL;
	size_t n = 0;
	for (char *s = strtok(snap_acc.data, "\n"); s; s = strtok(NULL, "\n")) {
		lines = realloc(lines, (n + 1) * sizeof(*lines));
		lines[n++] = s;
	}
	qsort(lines, n, sizeof(*lines), cmp_lines);
	struct buf out = {};
	for (size_t i = 0; i < n; i++) {
		buf_append(&out, lines[i], strlen(lines[i]));
		buf_append(&out, "\n", 1);
	}
	buf_append(&out, "", 1);
	free(lines);
	buf_free(&snap_acc);
	return out.data;
}

size_t count_dir(const char *path)
{
	_cleanup_closedir_ DIR *d = opendir(path);
	assert_non_null(d);
	size_t n = 0;
	struct dirent *de;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			n++;
	return n;
}

size_t count_layers(struct fx *f)
{
	char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s/layers", store_root(f));
	return count_dir(p);
}

bool is_root(void)
{
	return geteuid() == 0;
}
