// SPDX-License-Identifier: Apache-2.0
/* Loading images into the store: docker-archive (classic and blobs/ layouts),
 * OCI layout, compressions, layer sharing, whiteouts and entry types, and the
 * refusals (malformed archives, unsafe entries, digest mismatches) that leave
 * the store as it was. */
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
	img_two_layers(&im, layer_filter, outer_filter);
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
	img_two_layers(&im, "layout-a", "layout-b");
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
	img_two_layers(&im, "a", "b");

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
		buf_compress(&im->layers[i], "gzip", &c);
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
	img_two_layers(&im, "oci-base", "oci-top");

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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_load_busybox, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_layer_sharing, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_compressed_layers, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_docker_layouts, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_refuse_malformed, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_refuse_unsafe_entries, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_entry_types, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_oci_layout, fx_setup, fx_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
