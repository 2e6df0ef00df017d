// SPDX-License-Identifier: Apache-2.0
/* libFuzzer target: bytes as an image tarball into image_store_load. Whatever
 * loads is removed again so that the store stays small across runs. The store
 * lives under $SHOAL_FUZZ_STORE, or a temporary directory removed at exit. */
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include <jansson.h>

#include "lib/util.h"
#include "runtime/image.h"

static struct image_store *store;
static char tmp_root[PATH_MAX];

static void cleanup(void)
{
	image_store_free(store);
	store = NULL;
	if (tmp_root[0])
		rm_rf(tmp_root);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char root[PATH_MAX];
	const char *dir = getenv("SHOAL_FUZZ_STORE");
	if (!dir) {
		snprintf(tmp_root, sizeof(tmp_root), "/tmp/shoal-fuzz-image-XXXXXX");
		if (!mkdtemp(tmp_root))
			abort();
		dir = tmp_root;
	}
	snprintf(root, sizeof(root), "%s/store", dir);
	struct shoal_err err = {};
	if (image_store_open(root, &store, &err) < 0) {
		fprintf(stderr, "fuzz-image-load: %s\n", err.msg);
		abort();
	}
	atexit(cleanup);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int fd = memfd_create("fuzz-image", MFD_CLOEXEC);
	if (fd < 0 || write_all(fd, data, size) < 0 || lseek(fd, 0, SEEK_SET) < 0)
		abort();
	json_t *loaded = NULL, *warnings = NULL;
	struct shoal_err err = {};
	if (image_store_load(store, fd, &loaded, &warnings, &err) == 0) {
		size_t i;
		json_t *name;
		json_array_foreach(loaded, i, name)
		{
			json_t *out = NULL;
			if (image_store_remove(store, json_string_value(name), &out, &err) == 0)
				json_decref(out);
		}
	}
	json_decref(loaded);
	json_decref(warnings);
	close(fd);
	return 0;
}
