// SPDX-License-Identifier: Apache-2.0
/* The image store once images are in it: reference normalisation, tags moved and
 * removed with garbage collection of layers, concurrent loads and import of a
 * root filesystem tarball. */
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

/* ---- tags, remove, GC ---- */

static void load_simple(struct fx *f, const char *tag, const char *seed, const char *seed2,
			char id[72])
{
	struct img im = {};
	img_two_layers(&im, seed, seed2);
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
		img_two_layers(&im, "base", "top-b");
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
		img_two_layers(&im, "shared-base", k ? "top-1" : "top-0");
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
	struct feeder fd;
	int in = feeder_start(&fd, &rootfs);
	json_t *ov =
		json_pack("{s:[s], s:[s, s]}", "Cmd", "/bin/hello", "Env", "FOO=bar", "PATH=/bin");
	char *id = NULL;
	struct shoal_err err = {};
	int r = image_store_import(f->s, in, "imported:v1", ov, &id, &err);
	feeder_join(&fd, in);
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
		cmocka_unit_test_setup_teardown(test_tag_move_and_remove, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_loads, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_import, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_import_default_env, fx_setup, fx_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
