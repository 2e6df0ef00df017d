// SPDX-License-Identifier: Apache-2.0
/* The image store: loads (docker-archive, OCI layout, compressions), layer
 * sharing, whiteouts, refusals that leave the store intact, tags, remove + GC,
 * import, and reference normalisation. Test tarballs are written with
 * libarchive's writer. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
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

#ifndef SHOAL_BUSYBOX_TAR
#define SHOAL_BUSYBOX_TAR "images/busybox.tar"
#endif

/* ---- byte buffers and tar writing ---- */

struct buf {
	char *data;
	size_t len, cap;
};

static void buf_append(struct buf *b, const void *d, size_t n)
{
	if (b->len + n > b->cap) {
		b->cap = (b->len + n) * 2 + 4096;
		b->data = realloc(b->data, b->cap);
		assert_non_null(b->data);
	}
	memcpy(b->data + b->len, d, n);
	b->len += n;
}

static void buf_free(struct buf *b)
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

static struct archive *tar_new(struct buf *b, const char *filter)
{
	struct archive *a = archive_write_new();
	assert_non_null(a);
	assert_int_equal(archive_write_set_format_pax_restricted(a), ARCHIVE_OK);
	add_filter(a, filter);
	archive_write_set_bytes_in_last_block(a, 1);
	assert_int_equal(archive_write_open(a, b, NULL, buf_write_cb, NULL), ARCHIVE_OK);
	return a;
}

static void tar_close(struct archive *a)
{
	assert_int_equal(archive_write_close(a), ARCHIVE_OK);
	archive_write_free(a);
}

enum { T_FILE, T_DIR, T_SYMLINK, T_HARDLINK, T_CHR, T_FIFO };

static void tar_add(struct archive *a, const char *name, int type, unsigned mode, const void *data,
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

static void tar_file(struct archive *a, const char *name, const char *text)
{
	tar_add(a, name, T_FILE, 0644, text, strlen(text), NULL);
}

static void tar_buf(struct archive *a, const char *name, const struct buf *b)
{
	tar_add(a, name, T_FILE, 0644, b->data, b->len, NULL);
}

/* data compressed as a bare stream */
static void compress(const struct buf *in, const char *filter, struct buf *out)
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

static void hex_of(const struct buf *b, char hex[65])
{
	sha256_hex(b->data, b->len, hex);
}

/* ---- synthetic images ---- */

#define MAX_TEST_LAYERS 200

struct img {
	size_t n;
	struct buf layers[MAX_TEST_LAYERS]; /* uncompressed tars */
	char diff[MAX_TEST_LAYERS][65];
	char *config; /* JSON text */
	char config_hex[65];
};

static void img_finish(struct img *im, const char *extra_config)
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

static void img_free(struct img *im)
{
	for (size_t i = 0; i < im->n; i++)
		buf_free(&im->layers[i]);
	free(im->config);
	memset(im, 0, sizeof(*im));
}

/* A layer with a few files; seed makes its content (and digest) unique. */
static void layer_simple(struct buf *b, const char *seed)
{
	struct archive *a = tar_new(b, NULL);
	tar_add(a, "etc", T_DIR, 0755, NULL, 0, NULL);
	tar_file(a, "etc/seed", seed);
	tar_add(a, "bin", T_DIR, 0755, NULL, 0, NULL);
	tar_add(a, "bin/tool", T_FILE, 0755, "#!/bin/sh\n", 10, NULL);
	tar_close(a);
}

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

static void write_docker_archive(const struct img *im, const struct da_opts *o, struct buf *out)
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
			compress(&im->layers[k], o->layer_filter, &c);
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

struct fx {
	char root[PATH_MAX];
	struct image_store *s;
};

static int setup(void **state)
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

static int teardown(void **state)
{
	struct fx *f = *state;
	image_store_free(f->s);
	rm_rf(f->root);
	free(f);
	return 0;
}

static const char *store_root(struct fx *f)
{
	static __thread char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s/store", f->root);
	return p;
}

struct feeder {
	int fd;
	const struct buf *b;
};

static void *feed_thread(void *arg)
{
	struct feeder *fd = arg;
	write_all(fd->fd, fd->b->data, fd->b->len); /* EPIPE when the reader gives up */
	close(fd->fd);
	return NULL;
}

/* Loads b through a pipe, as the agent does from an HTTP body. */
static int load_buf(struct fx *f, const struct buf *b, json_t **loaded, json_t **warnings,
		    struct shoal_err *err)
{
	int p[2];
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	struct feeder fd = {.fd = p[1], .b = b};
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, feed_thread, &fd), 0);
	json_t *l = NULL, *w = NULL;
	int r = image_store_load(f->s, p[0], &l, &w, err);
	close(p[0]);
	pthread_join(t, NULL);
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

static void read_whole(const char *path, struct buf *b)
{
	char *text;
	size_t len;
	assert_int_equal(read_file(path, 64u << 20, &text, &len), 0);
	b->data = text;
	b->len = b->cap = len;
}

static int load_busybox(struct fx *f, json_t **loaded, json_t **warnings)
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

static char *snapshot(struct fx *f)
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

static size_t count_dir(const char *path)
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

static size_t count_layers(struct fx *f)
{
	char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s/layers", store_root(f));
	return count_dir(p);
}

static bool is_root(void)
{
	return geteuid() == 0;
}

/* ---- tests ---- */

static void test_ref_normalize(void **state)
{
	static const char *const digest =
		"sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
	static const struct {
		const char *in, *out;
	} ok[] = {
		{"busybox", "docker.io/library/busybox:latest"},
		{"busybox:1.36", "docker.io/library/busybox:1.36"},
		{"me/app:1", "docker.io/me/app:1"},
		{"reg:5000/x", "reg:5000/x:latest"},
		{"localhost/foo", "localhost/foo:latest"},
		{"localhost:5000/a/b:v_1.0-rc", "localhost:5000/a/b:v_1.0-rc"},
		{"docker.io/busybox", "docker.io/library/busybox:latest"},
		{"index.docker.io/library/busybox:1", "docker.io/library/busybox:1"},
		{"quay.io/a/b/c:v1", "quay.io/a/b/c:v1"},
		{"my-org/my_app__x.y", "docker.io/my-org/my_app__x.y:latest"},
		{"Example.com/foo", "Example.com/foo:latest"},
		{"docker.io/library/busybox:latest", "docker.io/library/busybox:latest"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(ok); i++) {
		char *out = NULL;
		assert_int_equal(image_ref_normalize(ok[i].in, &out), 0);
		assert_string_equal(out, ok[i].out);
		free(out);
	}
	char in[160], want[200], *out = NULL;
	snprintf(in, sizeof(in), "busybox@%s", digest);
	snprintf(want, sizeof(want), "docker.io/library/busybox@%s", digest);
	assert_int_equal(image_ref_normalize(in, &out), 0);
	assert_string_equal(out, want);
	free(out);
	snprintf(in, sizeof(in), "me/app:2@%s", digest);
	snprintf(want, sizeof(want), "docker.io/me/app:2@%s", digest);
	assert_int_equal(image_ref_normalize(in, &out), 0);
	assert_string_equal(out, want);
	free(out);

	static const char *const bad[] = {
		"",	      "Busybox",
		"busybox:",   ":tag",
		"a//b",	      "-a",
		"a-",	      "a@sha256:123",
		"a:b:c",      "a/b:-x",
		"a..b",	      "a/B",
		"reg:port/x", "/a",
		"a/",	      "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		out = NULL;
		if (image_ref_normalize(bad[i], &out) != -EINVAL)
			fail_msg("\"%s\" accepted as %s", bad[i], out);
	}

	static const struct {
		const char *in, *out;
	} fam[] = {
		{"docker.io/library/busybox:latest", "busybox:latest"},
		{"docker.io/me/app:1", "me/app:1"},
		{"reg:5000/x:latest", "reg:5000/x:latest"},
		{"docker.io/library/a/b:1", "library/a/b:1"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(fam); i++) {
		assert_int_equal(image_ref_familiar(fam[i].in, &out), 0);
		assert_string_equal(out, fam[i].out);
		free(out);
	}
}

static void test_load_busybox(void **state)
{
	struct fx *f = *state;
	if (!is_root())
		skip(); /* whiteouts are device nodes and trusted.* xattrs */
	json_t *loaded = NULL, *warnings = NULL;
	assert_int_equal(load_busybox(f, &loaded, &warnings), 0);
	assert_int_equal(json_array_size(loaded), 1);
	assert_string_equal(json_string_value(json_array_get(loaded, 0)),
			    "docker.io/library/busybox:latest");
	assert_int_equal(json_array_size(warnings), 0);
	json_decref(loaded);
	json_decref(warnings);

	struct shoal_err err = {};
	struct image_info *info = NULL;
	assert_int_equal(image_store_resolve(f->s, "busybox", &info, &err), 0);
	assert_string_equal(info->ref, "docker.io/library/busybox:latest");
	assert_int_equal(info->n_layers, 2);
	assert_null(info->layer_dirs[2]);
	json_t *cmd = json_object_get(info->config, "Cmd");
	assert_string_equal(json_string_value(json_array_get(cmd, 0)), "sh");
	assert_string_equal(json_string_value(json_object_get(info->config, "WorkingDir")), "/");

	char p[PATH_MAX], lnk[64];
	struct stat st;
	const char *base = info->layer_dirs[0], *top = info->layer_dirs[1];
	snprintf(p, sizeof(p), "%s/bin/busybox", base);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0755);
	assert_int_equal(st.st_mtime, 1704067200);
	snprintf(p, sizeof(p), "%s/bin/sh", base);
	ssize_t n = readlink(p, lnk, sizeof(lnk) - 1);
	assert_true(n > 0);
	lnk[n] = '\0';
	assert_string_equal(lnk, "/bin/busybox");
	snprintf(p, sizeof(p), "%s/tmp", base);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 07777, 01777);
	assert_int_equal(st.st_mtime, 1704067200);
	snprintf(p, sizeof(p), "%s/home/app", base);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_uid, 1000);
	assert_int_equal(st.st_gid, 1000);

	/* .wh.motd -> a 0/0 character device; .wh..wh..opq -> opaque xattr */
	snprintf(p, sizeof(p), "%s/etc/motd", top);
	assert_int_equal(lstat(p, &st), 0);
	assert_true(S_ISCHR(st.st_mode));
	assert_int_equal(st.st_rdev, makedev(0, 0));
	snprintf(p, sizeof(p), "%s/etc/.wh.motd", top);
	assert_int_equal(lstat(p, &st), -1);
	snprintf(p, sizeof(p), "%s/var/www", top);
	char v[8] = {};
	assert_int_equal(lgetxattr(p, "trusted.overlay.opaque", v, sizeof(v)), 1);
	assert_int_equal(v[0], 'y');
	snprintf(p, sizeof(p), "%s/var/www/index.html", top);
	struct buf b = {};
	read_whole(p, &b);
	assert_int_equal(b.len, strlen("hello from shoal\n"));
	assert_memory_equal(b.data, "hello from shoal\n", b.len);
	buf_free(&b);
	snprintf(p, sizeof(p), "%s/var/www/.wh..wh..opq", top);
	assert_int_equal(lstat(p, &st), -1);

	/* by id, id prefix and short id */
	char id[80];
	snprintf(id, sizeof(id), "%s", info->id);
	image_info_free(info);
	assert_int_equal(image_store_resolve(f->s, id, &info, &err), 0);
	assert_string_equal(info->ref, id);
	image_info_free(info);
	char prefix[16];
	snprintf(prefix, sizeof(prefix), "%.12s", id + 7);
	assert_int_equal(image_store_resolve(f->s, prefix, &info, &err), 0);
	assert_string_equal(info->id, id);
	image_info_free(info);
	assert_int_equal(image_store_resolve(f->s, "nothere", &info, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "No such image: nothere"));

	json_t *list = NULL;
	assert_int_equal(image_store_list(f->s, &list, &err), 0);
	assert_int_equal(json_array_size(list), 1);
	json_t *item = json_array_get(list, 0);
	assert_string_equal(json_string_value(json_object_get(item, "Id")), id);
	assert_string_equal(json_string_value(json_array_get(json_object_get(item, "RepoTags"), 0)),
			    "busybox:latest");
	assert_int_equal(json_integer_value(json_object_get(item, "Created")), 1704067200);
	assert_true(json_integer_value(json_object_get(item, "Size")) > 1000000);
	json_decref(list);

	/* a reopened store knows the image */
	image_store_free(f->s);
	assert_int_equal(image_store_open(store_root(f), &f->s, &err), 0);
	assert_int_equal(image_store_resolve(f->s, "busybox:latest", &info, &err), 0);
	assert_string_equal(info->id, id);
	image_info_free(info);
}

static void test_layer_sharing(void **state)
{
	struct fx *f = *state;
	if (!is_root())
		skip();
	assert_int_equal(load_busybox(f, NULL, NULL), 0);
	assert_int_equal(count_layers(f), 2);
	struct shoal_err err = {};
	struct image_info *info = NULL;
	assert_int_equal(image_store_resolve(f->s, "busybox", &info, &err), 0);
	struct stat before, after;
	assert_int_equal(stat(info->layer_dirs[0], &before), 0);
	char *snap = snapshot(f);

	/* the same tarball again: nothing unpacked, nothing changed */
	assert_int_equal(load_busybox(f, NULL, NULL), 0);
	char *snap2 = snapshot(f);
	assert_string_equal(snap, snap2);
	free(snap2);
	free(snap);

	/* an image on the same base with a different top layer: one new layer */
	struct img im = {};
	im.n = 2;
	char *base_tar = NULL;
	size_t base_len;
	/* the base layer of the busybox tarball, byte for byte */
	struct archive *a = archive_read_new();
	archive_read_support_format_tar(a);
	assert_int_equal(archive_read_open_filename(a, SHOAL_BUSYBOX_TAR, 65536), ARCHIVE_OK);
	struct archive_entry *e;
	size_t biggest = 0;
	while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
		size_t sz = (size_t)archive_entry_size(e);
		if (sz > biggest && strstr(archive_entry_pathname(e), "layer.tar")) {
			free(base_tar);
			base_tar = malloc(sz);
			assert_int_equal(archive_read_data(a, base_tar, sz), (la_ssize_t)sz);
			biggest = sz;
		}
	}
	archive_read_free(a);
	base_len = biggest;
	buf_append(&im.layers[0], base_tar, base_len);
	free(base_tar);
	layer_simple(&im.layers[1], "other");
	img_finish(&im, NULL);
	struct buf out = {};
	struct da_opts o = {.tag = "other:1"};
	write_docker_archive(&im, &o, &out);
	assert_int_equal(load_buf(f, &out, NULL, NULL, &err), 0);
	assert_int_equal(count_layers(f), 3);
	assert_int_equal(stat(info->layer_dirs[0], &after), 0);
	assert_int_equal(before.st_ino, after.st_ino);

	struct image_info *other = NULL;
	assert_int_equal(image_store_resolve(f->s, "other:1", &other, &err), 0);
	assert_string_equal(other->layer_dirs[0], info->layer_dirs[0]);
	assert_string_not_equal(other->layer_dirs[1], info->layer_dirs[1]);
	image_info_free(other);
	image_info_free(info);
	buf_free(&out);
	img_free(&im);
}

static void load_compressed(struct fx *f, const char *layer_filter, const char *outer_filter)
{
	struct img im = {};
	im.n = 2;
	layer_simple(&im.layers[0], layer_filter);
	layer_simple(&im.layers[1], outer_filter);
	img_finish(&im, NULL);
	struct buf out = {};
	struct da_opts o = {
		.tag = "comp:1", .layer_filter = layer_filter, .outer_filter = outer_filter};
	write_docker_archive(&im, &o, &out);
	struct shoal_err err = {};
	if (load_buf(f, &out, NULL, NULL, &err) < 0)
		fail_msg("%s/%s: %s", layer_filter, outer_filter, err.msg);
	struct image_info *info = NULL;
	assert_int_equal(image_store_resolve(f->s, "comp:1", &info, &err), 0);
	char want[72];
	snprintf(want, sizeof(want), "sha256:%s", im.config_hex);
	assert_string_equal(info->id, want);
	char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s/etc/seed", info->layer_dirs[1]);
	struct buf b = {};
	read_whole(p, &b);
	assert_int_equal(b.len, strlen(outer_filter));
	assert_memory_equal(b.data, outer_filter, b.len);
	buf_free(&b);
	image_info_free(info);
	buf_free(&out);
	img_free(&im);
}

static void expect_refused(struct fx *f, const struct buf *b, const char *needle);

static void test_docker_layouts(void **state)
{
	struct fx *f = *state;
	struct img im = {};
	im.n = 2;
	layer_simple(&im.layers[0], "layout-a");
	layer_simple(&im.layers[1], "layout-b");
	img_finish(&im, NULL);
	struct buf out = {};
	write_docker_archive(&im, &(struct da_opts){.tag = "blobs:1", .blobs_layout = true}, &out);
	struct shoal_err err = {};
	if (load_buf(f, &out, NULL, NULL, &err) < 0)
		fail_msg("%s", err.msg);
	buf_free(&out);
	write_docker_archive(&im, &(struct da_opts){.tag = "linked:1", .link_last_layer = true},
			     &out);
	if (load_buf(f, &out, NULL, NULL, &err) < 0)
		fail_msg("%s", err.msg);
	buf_free(&out);
	struct image_info *a = NULL, *b = NULL;
	assert_int_equal(image_store_resolve(f->s, "blobs:1", &a, &err), 0);
	assert_int_equal(image_store_resolve(f->s, "linked:1", &b, &err), 0);
	assert_string_equal(a->id, b->id);
	image_info_free(a);
	image_info_free(b);
	assert_int_equal(count_layers(f), 2);

	/* a config blob whose content does not match its name */
	write_docker_archive(
		&im, &(struct da_opts){.blobs_layout = true, .wrong_config_name = true}, &out);
	expect_refused(f, &out, "digest mismatch");
	buf_free(&out);
	img_free(&im);
}

static void test_compressed_layers(void **state)
{
	load_compressed(*state, "gzip", "zstd");
	load_compressed(*state, "zstd", "gzip");
}

/* ---- refusals ---- */

static void expect_refused(struct fx *f, const struct buf *b, const char *needle)
{
	char *before = snapshot(f);
	struct shoal_err err = {};
	json_t *loaded = NULL;
	int r = load_buf(f, b, &loaded, NULL, &err);
	if (r >= 0)
		fail_msg("load accepted, expected an error mentioning \"%s\"", needle);
	if (!strstr(err.msg, needle))
		fail_msg("error \"%s\" does not mention \"%s\"", err.msg, needle);
	char *after = snapshot(f);
	assert_string_equal(before, after);
	free(before);
	free(after);
}

static void refuse_docker(struct fx *f, struct img *im, const struct da_opts *o, const char *needle)
{
	struct buf out = {};
	write_docker_archive(im, o, &out);
	expect_refused(f, &out, needle);
	buf_free(&out);
}

static void test_refuse_malformed(void **state)
{
	struct fx *f = *state;
	if (!is_root())
		skip();
	/* a store with an image in it, which every refusal must leave alone */
	assert_int_equal(load_busybox(f, NULL, NULL), 0);

	struct img im = {};
	im.n = 2;
	layer_simple(&im.layers[0], "a");
	layer_simple(&im.layers[1], "b");
	img_finish(&im, NULL);

	struct buf good = {};
	write_docker_archive(&im, &(struct da_opts){}, &good);
	struct buf cut = {};
	buf_append(&cut, good.data, good.len / 2 + 100);
	expect_refused(f, &cut, "truncated");
	buf_free(&cut);
	buf_free(&good);

	refuse_docker(f, &im, &(struct da_opts){.wrong_config_name = true}, "digest mismatch");
	refuse_docker(f, &im, &(struct da_opts){.skip_manifest = true}, "manifest.json");
	refuse_docker(f, &im, &(struct da_opts){.skip_layer = true}, "missing layer");
	refuse_docker(f, &im, &(struct da_opts){.skip_config = true}, "missing config");
	refuse_docker(f, &im, &(struct da_opts){.manifest_text = "[{\"Config\": "},
		      "malformed JSON in manifest.json");
	refuse_docker(f, &im, &(struct da_opts){.n_listed_layers = IMAGE_MAX_LAYERS + 1},
		      "too many layers");
	refuse_docker(f, &im, &(struct da_opts){.tag = "Bad Name"}, "invalid image name");

	/* diff_id in the config does not match the layer */
	struct img bad = {};
	bad.n = 2;
	layer_simple(&bad.layers[0], "a");
	layer_simple(&bad.layers[1], "b");
	img_finish(&bad, NULL);
	buf_free(&bad.layers[1]);
	layer_simple(&bad.layers[1], "c"); /* content changes after the config was made */
	struct buf out = {};
	write_docker_archive(&bad, &(struct da_opts){}, &out);
	expect_refused(f, &out, "digest mismatch");
	buf_free(&out);
	img_free(&bad);

	/* oversized manifest and config */
	char *pad = malloc(IMAGE_MAX_MANIFEST_BYTES + 2);
	memset(pad, 'x', IMAGE_MAX_MANIFEST_BYTES + 1);
	pad[IMAGE_MAX_MANIFEST_BYTES + 1] = '\0';
	refuse_docker(f, &im, &(struct da_opts){.manifest_text = pad}, "manifest.json is");
	struct img big = {};
	big.n = 1;
	layer_simple(&big.layers[0], "big");
	img_finish(&big, pad);
	refuse_docker(f, &big, &(struct da_opts){}, "more than");
	img_free(&big);
	free(pad);

	/* not an archive at all */
	struct buf junk = {};
	buf_append(&junk, "this is not a tarball, not even close, no", 41);
	expect_refused(f, &junk, "tar");
	buf_free(&junk);
	img_free(&im);
}

/* A one-layer image whose layer is built by fn; expects refusal naming needle. */
static void refuse_layer(struct fx *f, void (*fn)(struct archive *), const char *needle)
{
	struct img im = {};
	im.n = 1;
	struct archive *a = tar_new(&im.layers[0], NULL);
	fn(a);
	tar_close(a);
	img_finish(&im, NULL);
	refuse_docker(f, &im, &(struct da_opts){}, needle);
	img_free(&im);
}

static void layer_absolute(struct archive *a)
{
	tar_file(a, "/etc/passwd", "x");
}

static void layer_dotdot(struct archive *a)
{
	tar_add(a, "etc", T_DIR, 0755, NULL, 0, NULL);
	tar_file(a, "etc/../../escape", "x");
}

static void layer_through_symlink(struct archive *a)
{
	tar_add(a, "etc", T_SYMLINK, 0777, NULL, 0, "/tmp");
	tar_file(a, "etc/evil", "x");
}

static void layer_through_relative_symlink(struct archive *a)
{
	tar_add(a, "d", T_DIR, 0755, NULL, 0, NULL);
	tar_add(a, "d/up", T_SYMLINK, 0777, NULL, 0, "../..");
	tar_file(a, "d/up/evil", "x");
}

static void layer_hardlink_outside(struct archive *a)
{
	tar_add(a, "passwd", T_HARDLINK, 0644, NULL, 0, "../../../../etc/passwd");
}

static void layer_hardlink_absent(struct archive *a)
{
	tar_add(a, "passwd", T_HARDLINK, 0644, NULL, 0, "etc/passwd");
}

static void layer_long_path(struct archive *a)
{
	char name[IMAGE_MAX_ENTRY_PATH + 64];
	size_t o = 0;
	while (o < IMAGE_MAX_ENTRY_PATH + 10) {
		memcpy(name + o, "aaaaaaaaa/", 10);
		o += 10;
	}
	memcpy(name + o, "f", 2);
	tar_file(a, name, "x");
}

static void test_refuse_unsafe_entries(void **state)
{
	struct fx *f = *state;
	refuse_layer(f, layer_absolute, "\"/etc/passwd\": absolute path");
	refuse_layer(f, layer_dotdot, "etc/../../escape");
	refuse_layer(f, layer_through_symlink, "etc/evil");
	refuse_layer(f, layer_through_relative_symlink, "d/up/evil");
	refuse_layer(f, layer_hardlink_outside, "passwd");
	refuse_layer(f, layer_hardlink_absent, "not in the layer");
	refuse_layer(f, layer_long_path, "longer than");
	struct stat st;
	assert_int_equal(stat("/tmp/evil", &st), -1);
}

static void layer_mixed(struct archive *a)
{
	tar_add(a, "dev", T_DIR, 0755, NULL, 0, NULL);
	tar_add(a, "dev/null", T_CHR, 0666, NULL, 0, NULL);
	tar_add(a, "run", T_DIR, 0755, NULL, 0, NULL);
	tar_add(a, "run/fifo", T_FIFO, 0640, NULL, 0, NULL);
	tar_add(a, "usr/bin", T_DIR, 0755, NULL, 0, NULL); /* parent usr/ not listed */
	tar_add(a, "usr/bin/a", T_FILE, 04755, "abc", 3, NULL);
	tar_add(a, "usr/bin/b", T_HARDLINK, 0755, NULL, 0, "usr/bin/a");
	tar_add(a, "usr/bin/c", T_SYMLINK, 0777, NULL, 0, "a");
	tar_add(a, ".wh..wh.plnk", T_DIR, 0700, NULL, 0, NULL);
	tar_file(a, ".wh..wh.plnk/1234.5678", "aufs");
}

static void test_entry_types(void **state)
{
	struct fx *f = *state;
	struct img im = {};
	im.n = 1;
	struct archive *a = tar_new(&im.layers[0], NULL);
	layer_mixed(a);
	tar_close(a);
	img_finish(&im, NULL);
	struct buf out = {};
	write_docker_archive(&im, &(struct da_opts){.tag = "mixed"}, &out);
	struct shoal_err err = {};
	json_t *warnings = NULL;
	if (load_buf(f, &out, NULL, &warnings, &err) < 0)
		fail_msg("%s", err.msg);
	assert_int_equal(json_array_size(warnings), 1);
	assert_string_equal(json_string_value(json_array_get(warnings, 0)),
			    "skipped device node /dev/null");
	json_decref(warnings);

	struct image_info *info = NULL;
	assert_int_equal(image_store_resolve(f->s, "mixed", &info, &err), 0);
	const char *l = info->layer_dirs[0];
	char p[PATH_MAX], q[PATH_MAX];
	struct stat st, st2;
	snprintf(p, sizeof(p), "%s/dev/null", l);
	assert_int_equal(lstat(p, &st), -1);
	snprintf(p, sizeof(p), "%s/run/fifo", l);
	assert_int_equal(lstat(p, &st), 0);
	assert_true(S_ISFIFO(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0640);
	snprintf(p, sizeof(p), "%s/usr/bin/a", l);
	snprintf(q, sizeof(q), "%s/usr/bin/b", l);
	assert_int_equal(lstat(p, &st), 0);
	assert_int_equal(lstat(q, &st2), 0);
	assert_int_equal(st.st_ino, st2.st_ino);
	assert_int_equal(st.st_nlink, 2);
	assert_int_equal(st.st_mode & 07777, 04755);
	assert_int_equal(st.st_mtime, 1700000000);
	snprintf(p, sizeof(p), "%s/usr/bin/c", l);
	assert_int_equal(lstat(p, &st), 0);
	assert_true(S_ISLNK(st.st_mode));
	snprintf(p, sizeof(p), "%s/.wh..wh.plnk", l);
	assert_int_equal(lstat(p, &st), -1);
	image_info_free(info);
	buf_free(&out);
	img_free(&im);
}

/* ---- OCI image layout ---- */

static void oci_blob(struct archive *a, const struct buf *b, char hex[65])
{
	hex_of(b, hex);
	char name[96];
	snprintf(name, sizeof(name), "blobs/sha256/%s", hex);
	tar_buf(a, name, b);
}

static void oci_blob_text(struct archive *a, const char *text, char hex[65])
{
	struct buf b = {};
	buf_append(&b, text, strlen(text));
	oci_blob(a, &b, hex);
	buf_free(&b);
}

/* index.json -> nested index (with a foreign platform) -> manifest -> gzip layers */
static void write_oci(const struct img *im, bool corrupt_blob, struct buf *out, char mhex[65])
{
	struct archive *a = tar_new(out, NULL);
	tar_file(a, "oci-layout", "{\"imageLayoutVersion\":\"1.0.0\"}");
	char chex[65];
	oci_blob_text(a, im->config, chex);
	json_t *layers = json_array();
	for (size_t i = 0; i < im->n; i++) {
		struct buf c = {};
		compress(&im->layers[i], "gzip", &c);
		char lhex[65];
		if (corrupt_blob && i == 0) {
			hex_of(&c, lhex);
			c.data[c.len / 2] ^= 0x55;
			char name[96];
			snprintf(name, sizeof(name), "blobs/sha256/%s", lhex);
			tar_buf(a, name, &c);
		} else {
			oci_blob(a, &c, lhex);
		}
		json_array_append_new(
			layers, json_pack("{s:s, s:s+, s:I}", "mediaType",
					  "application/vnd.oci.image.layer.v1.tar+gzip", "digest",
					  "sha256:", lhex, "size", (json_int_t)c.len));
		buf_free(&c);
	}
	json_t *m =
		json_pack("{s:i, s:s, s:{s:s, s:s+, s:I}, s:o}", "schemaVersion", 2, "mediaType",
			  "application/vnd.oci.image.manifest.v1+json", "config", "mediaType",
			  "application/vnd.oci.image.config.v1+json", "digest", "sha256:", chex,
			  "size", (json_int_t)strlen(im->config), "layers", layers);
	char *mt = json_dumps(m, JSON_COMPACT);
	oci_blob_text(a, mt, mhex);
	json_t *nested = json_pack(
		"{s:i, s:s, s:[{s:s, s:s+, s:I, s:{s:s, s:s}}, {s:s, s:s, s:I, s:{s:s, s:s}}]}",
		"schemaVersion", 2, "mediaType", "application/vnd.oci.image.index.v1+json",
		"manifests", "mediaType", "application/vnd.oci.image.manifest.v1+json", "digest",
		"sha256:", mhex, "size", (json_int_t)strlen(mt), "platform", "os", "linux",
		"architecture", "amd64", "mediaType", "application/vnd.oci.image.manifest.v1+json",
		"digest", "sha256:1111111111111111111111111111111111111111111111111111111111111111",
		"size", (json_int_t)10, "platform", "os", "linux", "architecture", "s390x");
	char *nt = json_dumps(nested, JSON_COMPACT);
	char nhex[65];
	oci_blob_text(a, nt, nhex);
	json_t *index =
		json_pack("{s:i, s:[{s:s, s:s+, s:I, s:{s:s}}]}", "schemaVersion", 2, "manifests",
			  "mediaType", "application/vnd.oci.image.index.v1+json", "digest",
			  "sha256:", nhex, "size", (json_int_t)strlen(nt), "annotations",
			  "io.containerd.image.name", "example.com/oci/app:v2");
	char *it = json_dumps(index, JSON_COMPACT);
	tar_file(a, "index.json", it);
	tar_close(a);
	free(mt);
	free(nt);
	free(it);
	json_decref(m);
	json_decref(nested);
	json_decref(index);
}

static void test_oci_layout(void **state)
{
	struct fx *f = *state;
	struct img im = {};
	im.n = 2;
	layer_simple(&im.layers[0], "oci-base");
	layer_simple(&im.layers[1], "oci-top");
	img_finish(&im, NULL);

	struct buf bad = {};
	char mhex[65];
	write_oci(&im, true, &bad, mhex);
	expect_refused(f, &bad, "digest mismatch");
	buf_free(&bad);

	struct buf out = {};
	write_oci(&im, false, &out, mhex);
	struct shoal_err err = {};
	json_t *loaded = NULL;
	if (load_buf(f, &out, &loaded, NULL, &err) < 0)
		fail_msg("%s", err.msg);
	assert_string_equal(json_string_value(json_array_get(loaded, 0)), "example.com/oci/app:v2");
	json_decref(loaded);
	struct image_info *info = NULL;
	assert_int_equal(image_store_resolve(f->s, "example.com/oci/app:v2", &info, &err), 0);
	assert_int_equal(info->n_layers, 2);
	char want[72];
	snprintf(want, sizeof(want), "sha256:%s", im.config_hex);
	assert_string_equal(info->id, want);
	image_info_free(info);
	char dref[200];
	snprintf(dref, sizeof(dref), "example.com/oci/app@sha256:%s", mhex);
	assert_int_equal(image_store_resolve(f->s, dref, &info, &err), 0);
	assert_string_equal(info->id, want);
	image_info_free(info);
	buf_free(&out);
	img_free(&im);
}

/* ---- tags, remove, GC ---- */

static void load_simple(struct fx *f, const char *tag, const char *seed, const char *seed2,
			char id[72])
{
	struct img im = {};
	im.n = 2;
	layer_simple(&im.layers[0], seed);
	layer_simple(&im.layers[1], seed2);
	img_finish(&im, NULL);
	struct buf out = {};
	write_docker_archive(&im, &(struct da_opts){.tag = tag}, &out);
	struct shoal_err err = {};
	if (load_buf(f, &out, NULL, NULL, &err) < 0)
		fail_msg("%s", err.msg);
	snprintf(id, 72, "sha256:%s", im.config_hex);
	buf_free(&out);
	img_free(&im);
}

static void test_tag_move_and_remove(void **state)
{
	struct fx *f = *state;
	char a[72], b[72];
	load_simple(f, "app:1", "base", "top-a", a);
	{
		struct img im = {};
		im.n = 2;
		layer_simple(&im.layers[0], "base");
		layer_simple(&im.layers[1], "top-b");
		img_finish(&im, NULL);
		struct buf buf = {};
		write_docker_archive(&im, &(struct da_opts){.tag = "app:1"}, &buf);
		json_t *warnings = NULL;
		struct shoal_err e = {};
		if (load_buf(f, &buf, NULL, &warnings, &e) < 0)
			fail_msg("%s", e.msg);
		char want[200];
		snprintf(want, sizeof(want),
			 "The image app:1 already exists, renaming the old one with ID %s to "
			 "empty string",
			 a);
		assert_int_equal(json_array_size(warnings), 1);
		assert_string_equal(json_string_value(json_array_get(warnings, 0)), want);
		json_decref(warnings);
		snprintf(b, 72, "sha256:%s", im.config_hex);
		buf_free(&buf);
		img_free(&im);
	}
	assert_int_equal(count_layers(f), 3);

	struct shoal_err err = {};
	struct image_info *info = NULL;
	assert_int_equal(image_store_resolve(f->s, "app:1", &info, &err), 0);
	assert_string_equal(info->id, b);
	image_info_free(info);
	/* the old image lost its tag but is still there, by id */
	assert_int_equal(image_store_resolve(f->s, a, &info, &err), 0);
	image_info_free(info);
	json_t *list = NULL;
	assert_int_equal(image_store_list(f->s, &list, &err), 0);
	assert_int_equal(json_array_size(list), 2);
	json_decref(list);

	/* removing the tag of b deletes b and its own top layer; the base stays */
	json_t *out = NULL;
	assert_int_equal(image_store_remove(f->s, "app:1", &out, &err), 0);
	assert_string_equal(json_string_value(json_object_get(json_array_get(out, 0), "Untagged")),
			    "app:1");
	assert_string_equal(json_string_value(json_object_get(json_array_get(out, 1), "Deleted")),
			    b);
	assert_int_equal(json_array_size(out), 3);
	json_decref(out);
	assert_int_equal(count_layers(f), 2);
	assert_int_equal(image_store_resolve(f->s, "app:1", &info, &err), -ENOENT);

	/* by id: the last image goes with every layer */
	assert_int_equal(image_store_remove(f->s, a, &out, &err), 0);
	assert_int_equal(json_array_size(out), 3);
	json_decref(out);
	assert_int_equal(count_layers(f), 0);
	char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s/images", store_root(f));
	assert_int_equal(count_dir(p), 0);
	snprintf(p, sizeof(p), "%s/blobs/sha256", store_root(f));
	assert_int_equal(count_dir(p), 0);
	snprintf(p, sizeof(p), "%s/tmp", store_root(f));
	assert_int_equal(count_dir(p), 0);
	assert_int_equal(image_store_remove(f->s, a, &out, &err), -ENOENT);

	/* two tags: removing one only untags */
	load_simple(f, "x:1", "s1", "s2", a);
	load_simple(f, "x:2", "s1", "s2", b);
	assert_string_equal(a, b);
	assert_int_equal(image_store_remove(f->s, "x:1", &out, &err), 0);
	assert_int_equal(json_array_size(out), 1);
	json_decref(out);
	assert_int_equal(count_layers(f), 2);
	assert_int_equal(image_store_resolve(f->s, "x:2", &info, &err), 0);
	image_info_free(info);

	/* what no record refers to is collected when the store is opened */
	char stray[PATH_MAX];
	snprintf(stray, sizeof(stray), "%s/layers/%064d/etc", store_root(f), 7);
	assert_int_equal(mkdir_p(stray, 0755), 0);
	snprintf(stray, sizeof(stray), "%s/blobs/sha256/%064d", store_root(f), 7);
	assert_int_equal(write_file_atomic(stray, "{}", 2, 0644), 0);
	assert_int_equal(count_layers(f), 3);
	image_store_free(f->s);
	assert_int_equal(image_store_open(store_root(f), &f->s, &err), 0);
	assert_int_equal(count_layers(f), 2);
	snprintf(p, sizeof(p), "%s/blobs/sha256", store_root(f));
	assert_int_equal(count_dir(p), 1);
	assert_int_equal(image_store_resolve(f->s, "x:2", &info, &err), 0);
	image_info_free(info);
}

struct par_load {
	struct fx *f;
	struct buf b;
	int r;
	struct shoal_err err;
};

static void *par_load_thread(void *arg)
{
	struct par_load *pl = arg;
	for (int i = 0; i < 3 && pl->r == 0; i++)
		pl->r = load_buf(pl->f, &pl->b, NULL, NULL, &pl->err);
	return NULL;
}

static void test_concurrent_loads(void **state)
{
	struct fx *f = *state;
	struct par_load pl[2] = {{.f = f}, {.f = f}};
	for (int k = 0; k < 2; k++) {
		struct img im = {};
		im.n = 2;
		layer_simple(&im.layers[0], "shared-base");
		layer_simple(&im.layers[1], k ? "top-1" : "top-0");
		img_finish(&im, NULL);
		write_docker_archive(&im, &(struct da_opts){.tag = k ? "par:1" : "par:0"},
				     &pl[k].b);
		img_free(&im);
	}
	pthread_t t[2];
	for (int k = 0; k < 2; k++)
		assert_int_equal(pthread_create(&t[k], NULL, par_load_thread, &pl[k]), 0);
	/* resolve keeps working (and never sees a half-made image) meanwhile */
	for (int i = 0; i < 200; i++) {
		struct image_info *info = NULL;
		struct shoal_err err = {};
		int r = image_store_resolve(f->s, "par:0", &info, &err);
		assert_true(r == 0 || r == -ENOENT);
		if (r == 0) {
			assert_int_equal(info->n_layers, 2);
			struct stat st;
			assert_int_equal(stat(info->layer_dirs[1], &st), 0);
			image_info_free(info);
		}
	}
	for (int k = 0; k < 2; k++) {
		pthread_join(t[k], NULL);
		if (pl[k].r < 0)
			fail_msg("load %d: %s", k, pl[k].err.msg);
		buf_free(&pl[k].b);
	}
	assert_int_equal(count_layers(f), 3);
	char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s/tmp", store_root(f));
	assert_int_equal(count_dir(p), 0);
}

static void test_import(void **state)
{
	struct fx *f = *state;
	struct buf rootfs = {};
	struct archive *a = tar_new(&rootfs, "gzip");
	tar_add(a, "bin", T_DIR, 0755, NULL, 0, NULL);
	tar_add(a, "bin/hello", T_FILE, 0755, "hi\n", 3, NULL);
	tar_close(a);
	int p[2];
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	struct feeder fd = {.fd = p[1], .b = &rootfs};
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, feed_thread, &fd), 0);
	json_t *ov =
		json_pack("{s:[s], s:[s, s]}", "Cmd", "/bin/hello", "Env", "FOO=bar", "PATH=/bin");
	char *id = NULL;
	struct shoal_err err = {};
	int r = image_store_import(f->s, p[0], "imported:v1", ov, &id, &err);
	close(p[0]);
	pthread_join(t, NULL);
	json_decref(ov);
	if (r < 0)
		fail_msg("%s", err.msg);
	assert_true(str_has_prefix(id, "sha256:"));

	struct image_info *info = NULL;
	assert_int_equal(image_store_resolve(f->s, "imported:v1", &info, &err), 0);
	assert_string_equal(info->id, id);
	assert_int_equal(info->n_layers, 1);
	json_t *env = json_object_get(info->config, "Env");
	assert_int_equal(json_array_size(env), 2);
	assert_string_equal(json_string_value(json_array_get(env, 0)), "PATH=/bin");
	assert_string_equal(json_string_value(json_array_get(env, 1)), "FOO=bar");
	assert_string_equal(
		json_string_value(json_array_get(json_object_get(info->config, "Cmd"), 0)),
		"/bin/hello");
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/bin/hello", info->layer_dirs[0]);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, 3);
	image_info_free(info);
	free(id);
	buf_free(&rootfs);
}

static void test_import_default_env(void **state)
{
	struct fx *f = *state;
	struct buf rootfs = {};
	struct archive *a = tar_new(&rootfs, NULL);
	tar_file(a, "x", "y");
	tar_close(a);
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/rootfs.tar", f->root);
	assert_int_equal(write_file_atomic(path, rootfs.data, rootfs.len, 0600), 0);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	char *id = NULL;
	struct shoal_err err = {};
	assert_int_equal(image_store_import(f->s, fd, NULL, NULL, &id, &err), 0);
	close(fd);
	struct image_info *info = NULL;
	assert_int_equal(image_store_resolve(f->s, id, &info, &err), 0);
	assert_string_equal(
		json_string_value(json_array_get(json_object_get(info->config, "Env"), 0)),
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
	image_info_free(info);
	free(id);
	buf_free(&rootfs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ref_normalize),
		cmocka_unit_test_setup_teardown(test_load_busybox, setup, teardown),
		cmocka_unit_test_setup_teardown(test_layer_sharing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_compressed_layers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_docker_layouts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refuse_malformed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refuse_unsafe_entries, setup, teardown),
		cmocka_unit_test_setup_teardown(test_entry_types, setup, teardown),
		cmocka_unit_test_setup_teardown(test_oci_layout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tag_move_and_remove, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_loads, setup, teardown),
		cmocka_unit_test_setup_teardown(test_import, setup, teardown),
		cmocka_unit_test_setup_teardown(test_import_default_env, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
