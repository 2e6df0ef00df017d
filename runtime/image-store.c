// SPDX-License-Identifier: Apache-2.0
/* Image records, tags, resolve, list, remove and the commit of a load.
 *
 * The records live in memory (loaded at open) and on disk as images/<hex>.json.
 * One mutex guards the records and the layer pins; it is held for metadata
 * changes and renames only, never while a tarball is read or unpacked. */
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/cleanup.h"
#include "lib/util.h"
#include "runtime/image-internal.h"
#include "runtime/image.h"

struct image_rec {
	char hex[65];
	char **tags;
	char **digests;
	size_t n_layers;
	char (*chain)[65];
	char (*diff)[65];
	uint64_t size;
	int64_t created;
	bool dirty;
};

struct layer_pin {
	char hex[65];
	unsigned count;
};

struct image_store {
	char *root;
	pthread_mutex_t lock;
	struct image_rec **recs;
	size_t n_recs;
	struct layer_pin *pins;
	size_t n_pins;
};

static void rec_free(struct image_rec *r)
{
	if (!r)
		return;
	strv_free(r->tags);
	strv_free(r->digests);
	free(r->chain);
	free(r->diff);
	free(r);
}

static struct image_rec *rec_clone(const struct image_rec *r)
{
	struct image_rec *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	memcpy(c->hex, r->hex, sizeof(c->hex));
	c->n_layers = r->n_layers;
	c->size = r->size;
	c->created = r->created;
	c->tags = strv_copy(r->tags);
	c->digests = strv_copy(r->digests);
	c->chain = calloc(r->n_layers ? r->n_layers : 1, sizeof(*c->chain));
	c->diff = calloc(r->n_layers ? r->n_layers : 1, sizeof(*c->diff));
	if (!c->tags || !c->digests || !c->chain || !c->diff) {
		rec_free(c);
		return NULL;
	}
	memcpy(c->chain, r->chain, r->n_layers * sizeof(*c->chain));
	memcpy(c->diff, r->diff, r->n_layers * sizeof(*c->diff));
	return c;
}

static void recs_free(struct image_rec **recs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		rec_free(recs[i]);
	free(recs);
}

static bool strv_contains(char **v, const char *s)
{
	for (; v && *v; v++)
		if (strcmp(*v, s) == 0)
			return true;
	return false;
}

/* Removes s from v in place; true if it was there. */
static bool strv_remove(char **v, const char *s)
{
	bool found = false;
	char **w = v;
	for (; v && *v; v++) {
		if (strcmp(*v, s) == 0) {
			free(*v);
			found = true;
		} else {
			*w++ = *v;
		}
	}
	if (w)
		*w = NULL;
	return found;
}

const char *image_store_root(struct image_store *s)
{
	return s->root;
}

int64_t image_parse_time(const char *s)
{
	if (!s)
		return 0;
	struct tm tm = {};
	const char *p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!p)
		return 0;
	int64_t t = (int64_t)timegm(&tm);
	if (*p == '.')
		for (p++; *p >= '0' && *p <= '9'; p++)
			;
	if (*p == '+' || *p == '-') {
		int hh = 0, mm = 0;
		if (sscanf(p + 1, "%2d:%2d", &hh, &mm) == 2)
			t += (*p == '+' ? -1 : 1) * (int64_t)(hh * 3600 + mm * 60);
	}
	return t;
}

/* ---- records on disk ---- */

static json_t *rec_to_json(const struct image_rec *r)
{
	json_t *tags = json_array(), *digests = json_array(), *layers = json_array(),
	       *diffs = json_array();
	for (char **t = r->tags; t && *t; t++)
		json_array_append_new(tags, json_string(*t));
	for (char **t = r->digests; t && *t; t++)
		json_array_append_new(digests, json_string(*t));
	for (size_t i = 0; i < r->n_layers; i++) {
		json_array_append_new(layers, json_sprintf("sha256:%s", r->chain[i]));
		json_array_append_new(diffs, json_sprintf("sha256:%s", r->diff[i]));
	}
	return json_pack("{s:s+, s:o, s:o, s:o, s:o, s:I, s:I}", "Id", "sha256:", r->hex,
			 "RepoTags", tags, "RepoDigests", digests, "Layers", layers, "DiffIds",
			 diffs, "Size", (json_int_t)r->size, "Created", (json_int_t)r->created);
}

static int parse_hex_list(json_t *arr, size_t n, char (*out)[65])
{
	for (size_t i = 0; i < n; i++) {
		const char *v = json_string_value(json_array_get(arr, i));
		if (!v || !str_has_prefix(v, "sha256:") || strlen(v) != 71 ||
		    !image_is_hex(v + 7, 64))
			return -EBADMSG;
		memcpy(out[i], v + 7, 65);
	}
	return 0;
}

static int strv_from_json(json_t *arr, char ***ret)
{
	char **v = calloc(1, sizeof(char *));
	if (!v)
		return -ENOMEM;
	size_t i;
	json_t *x;
	json_array_foreach(arr, i, x)
	{
		if (!json_is_string(x) || strv_push(&v, json_string_value(x)) < 0) {
			strv_free(v);
			return -EBADMSG;
		}
	}
	*ret = v;
	return 0;
}

static int rec_from_json(const char *hex, json_t *j, struct image_rec **ret)
{
	json_t *tags, *digests, *layers, *diffs;
	json_int_t size = 0, created = 0;
	const char *id;
	if (json_unpack(j, "{s:s, s:o, s:o, s:o, s:o, s?I, s?I}", "Id", &id, "RepoTags", &tags,
			"RepoDigests", &digests, "Layers", &layers, "DiffIds", &diffs, "Size",
			&size, "Created", &created) < 0)
		return -EBADMSG;
	if (strlen(id) != 71 || strcmp(id + 7, hex) != 0)
		return -EBADMSG;
	size_t n = json_array_size(layers);
	if (n == 0 || n > IMAGE_MAX_LAYERS || json_array_size(diffs) != n)
		return -EBADMSG;
	struct image_rec *r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	memcpy(r->hex, hex, 65);
	r->n_layers = n;
	r->size = (uint64_t)size;
	r->created = created;
	r->chain = calloc(n, sizeof(*r->chain));
	r->diff = calloc(n, sizeof(*r->diff));
	if (!r->chain || !r->diff || parse_hex_list(layers, n, r->chain) < 0 ||
	    parse_hex_list(diffs, n, r->diff) < 0 || strv_from_json(tags, &r->tags) < 0 ||
	    strv_from_json(digests, &r->digests) < 0) {
		rec_free(r);
		return -EBADMSG;
	}
	*ret = r;
	return 0;
}

static int rec_write(struct image_store *s, const struct image_rec *r)
{
	_cleanup_(json_decrefp) json_t *j = rec_to_json(r);
	if (!j)
		return -ENOMEM;
	_cleanup_free_ char *text = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
	if (!text)
		return -ENOMEM;
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/images/%s.json", s->root, r->hex);
	return write_file_atomic(path, text, strlen(text), 0644);
}

static int rec_unlink(struct image_store *s, const char *hex)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/images/%s.json", s->root, hex);
	if (unlink(path) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}

static int load_records(struct image_store *s, struct shoal_err *err)
{
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s/images", s->root);
	_cleanup_closedir_ DIR *d = opendir(dir);
	if (!d)
		return shoal_err_errno(err, errno, "opening %s", dir);
	struct dirent *de;
	while ((de = readdir(d))) {
		size_t n = strlen(de->d_name);
		char path[PATH_MAX];
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (n > 69 && strstr(de->d_name, ".json.tmp.")) {
			unlink(path); /* a write interrupted by a crash */
			continue;
		}
		if (n != 69 || strcmp(de->d_name + 64, ".json") != 0 ||
		    !image_is_hex(de->d_name, 64))
			continue;
		char hex[65];
		memcpy(hex, de->d_name, 64);
		hex[64] = '\0';
		_cleanup_free_ char *text = NULL;
		if (read_file(path, IMAGE_MAX_MANIFEST_BYTES, &text, NULL) < 0)
			continue;
		_cleanup_(json_decrefp) json_t *j = json_loads(text, 0, NULL);
		struct image_rec *r;
		/* a record that does not parse is not ours to fix; it is left alone and
		 * the image is not listed */
		if (!j || rec_from_json(hex, j, &r) < 0)
			continue;
		struct image_rec **nr = realloc(s->recs, (s->n_recs + 1) * sizeof(*nr));
		if (!nr) {
			rec_free(r);
			return shoal_err_set(err, ENOMEM, "out of memory");
		}
		s->recs = nr;
		s->recs[s->n_recs++] = r;
	}
	return 0;
}

static bool layer_used(struct image_store *s, const char *hex);

static bool blob_used(struct image_store *s, const char *hex)
{
	for (size_t i = 0; i < s->n_recs; i++)
		if (strcmp(s->recs[i]->hex, hex) == 0)
			return true;
	return false;
}

/* Layers and configs that no record refers to: left by a load that failed after a
 * concurrent remove skipped its pinned layers, or by a crash during commit. */
static void collect_garbage(struct image_store *s)
{
	/* init/ holds the runtime's mount points layer per top layer (mount.c),
	 * named by that layer's chain: it goes with the layer. */
	static const char *const dirs[] = {"layers", "blobs/sha256", "init"};
	for (size_t k = 0; k < ARRAY_SIZE(dirs); k++) {
		char dir[PATH_MAX];
		snprintf(dir, sizeof(dir), "%s/%s", s->root, dirs[k]);
		_cleanup_closedir_ DIR *d = opendir(dir);
		if (!d)
			continue;
		struct dirent *de;
		while ((de = readdir(d))) {
			if (de->d_name[0] == '.' && k != 2)
				continue;
			if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
				continue;
			/* (in init/, a ".tmp-" entry is a build a crash left behind) */
			bool used = k == 1 ? blob_used(s, de->d_name)
					   : de->d_name[0] != '.' && layer_used(s, de->d_name);
			if (used)
				continue;
			char path[PATH_MAX];
			snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
			rm_rf(path);
		}
	}
}

int image_store_open(const char *root, struct image_store **ret, struct shoal_err *err)
{
	if (!root || root[0] != '/')
		return shoal_err_set(err, EINVAL, "image store root must be an absolute path");
	struct image_store *s = calloc(1, sizeof(*s));
	if (!s)
		return shoal_err_set(err, ENOMEM, "out of memory");
	s->root = strdup(root);
	pthread_mutex_init(&s->lock, NULL);
	if (!s->root) {
		image_store_free(s);
		return shoal_err_set(err, ENOMEM, "out of memory");
	}
	static const char *const subdirs[] = {"", "/blobs/sha256", "/layers", "/images", "/tmp"};
	char path[PATH_MAX];
	int r;
	snprintf(path, sizeof(path), "%s/tmp", root);
	r = rm_rf(path);
	if (r < 0) {
		image_store_free(s);
		return shoal_err_errno(err, r, "clearing %s", path);
	}
	for (size_t i = 0; i < ARRAY_SIZE(subdirs); i++) {
		snprintf(path, sizeof(path), "%s%s", root, subdirs[i]);
		r = mkdir_p(path, i == ARRAY_SIZE(subdirs) - 1 ? 0700 : 0755);
		if (r < 0) {
			image_store_free(s);
			return shoal_err_errno(err, r, "creating %s", path);
		}
	}
	r = load_records(s, err);
	if (r < 0) {
		image_store_free(s);
		return r;
	}
	collect_garbage(s);
	*ret = s;
	return 0;
}

void image_store_free(struct image_store *s)
{
	if (!s)
		return;
	recs_free(s->recs, s->n_recs);
	free(s->pins);
	pthread_mutex_destroy(&s->lock);
	free(s->root);
	free(s);
}

int image_store_stage_new(struct image_store *s, char **ret_dir, struct shoal_err *err)
{
	char id[65];
	int r = random_hex_id(id);
	if (r < 0)
		return shoal_err_errno(err, r, "random id");
	char *dir = NULL;
	if (asprintf(&dir, "%s/tmp/%.16s", s->root, id) < 0)
		return shoal_err_set(err, ENOMEM, "out of memory");
	if (mkdir(dir, 0700) < 0) {
		r = shoal_err_errno(err, errno, "creating %s", dir);
		free(dir);
		return r;
	}
	*ret_dir = dir;
	return 0;
}

/* ---- layer pins ---- */

static bool layer_exists(struct image_store *s, const char *hex)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/layers/%s", s->root, hex);
	struct stat st;
	return lstat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool layer_pinned(struct image_store *s, const char *hex)
{
	for (size_t i = 0; i < s->n_pins; i++)
		if (strcmp(s->pins[i].hex, hex) == 0)
			return true;
	return false;
}

int image_store_pin_layers(struct image_store *s, char (*chain)[65], size_t n, bool *ret_exists)
{
	pthread_mutex_lock(&s->lock);
	struct layer_pin *np = realloc(s->pins, (s->n_pins + n + 1) * sizeof(*np));
	if (!np) {
		pthread_mutex_unlock(&s->lock);
		return -ENOMEM;
	}
	s->pins = np;
	for (size_t i = 0; i < n; i++) {
		ret_exists[i] = layer_exists(s, chain[i]);
		size_t j;
		for (j = 0; j < s->n_pins; j++)
			if (strcmp(s->pins[j].hex, chain[i]) == 0)
				break;
		if (j == s->n_pins) {
			memcpy(s->pins[j].hex, chain[i], 65);
			s->pins[j].count = 0;
			s->n_pins++;
		}
		s->pins[j].count++;
	}
	pthread_mutex_unlock(&s->lock);
	return 0;
}

void image_store_unpin_layers(struct image_store *s, char (*chain)[65], size_t n)
{
	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < n; i++) {
		for (size_t j = 0; j < s->n_pins; j++) {
			if (strcmp(s->pins[j].hex, chain[i]) != 0)
				continue;
			if (--s->pins[j].count == 0)
				s->pins[j] = s->pins[--s->n_pins];
			break;
		}
	}
	pthread_mutex_unlock(&s->lock);
}

/* ---- lookups (lock held) ---- */

static struct image_rec *find_by_hex(struct image_rec **recs, size_t n, const char *hex)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(recs[i]->hex, hex) == 0)
			return recs[i];
	return NULL;
}

static struct image_rec *find_by_tag(struct image_store *s, const char *tag)
{
	for (size_t i = 0; i < s->n_recs; i++)
		if (strv_contains(s->recs[i]->tags, tag))
			return s->recs[i];
	return NULL;
}

static struct image_rec *find_by_digest(struct image_store *s, const char *ref)
{
	for (size_t i = 0; i < s->n_recs; i++)
		if (strv_contains(s->recs[i]->digests, ref))
			return s->recs[i];
	return NULL;
}

static int find_by_prefix(struct image_store *s, const char *prefix, struct image_rec **ret,
			  struct shoal_err *err)
{
	size_t len = strlen(prefix);
	struct image_rec *found = NULL;
	for (size_t i = 0; i < s->n_recs; i++) {
		if (strncmp(s->recs[i]->hex, prefix, len) != 0)
			continue;
		if (found)
			return shoal_err_set(
				err, EINVAL,
				"image id prefix %s is ambiguous; give more characters", prefix);
		found = s->recs[i];
	}
	if (!found)
		return -ENOENT;
	*ret = found;
	return 0;
}

enum found_by { FOUND_ID, FOUND_TAG, FOUND_DIGEST };

/* ret_name: the normalised tag or digest reference when found by name. */
static int lookup(struct image_store *s, const char *ref, struct image_rec **ret,
		  enum found_by *ret_by, char **ret_name, struct shoal_err *err)
{
	if (!ref || !*ref)
		return shoal_err_set(err, EINVAL, "empty image reference");
	const char *hex = NULL;
	if (str_has_prefix(ref, "sha256:"))
		hex = ref + 7;
	else if (strlen(ref) == 64 && image_is_hex(ref, 64))
		hex = ref;
	if (hex) {
		size_t n = strlen(hex);
		if (n < 4 || n > 64 || !image_is_hex(hex, n))
			return shoal_err_set(err, EINVAL, "invalid image id \"%s\"", ref);
		int r = find_by_prefix(s, hex, ret, err);
		if (r == -ENOENT)
			goto not_found;
		if (r < 0)
			return r;
		*ret_by = FOUND_ID;
		*ret_name = NULL;
		return 0;
	}

	struct image_ref pr = {};
	int r = image_ref_parse(ref, &pr);
	if (r < 0) {
		size_t n = strlen(ref);
		if (n >= 4 && image_is_hex(ref, n)) {
			r = find_by_prefix(s, ref, ret, err);
			if (r == -ENOENT)
				goto not_found;
			if (r < 0)
				return r;
			*ret_by = FOUND_ID;
			*ret_name = NULL;
			return 0;
		}
		return shoal_err_set(err, EINVAL,
				     "invalid reference format: \"%s\" (expected NAME[:TAG] or "
				     "NAME@sha256:DIGEST, lowercase)",
				     ref);
	}
	char *name = NULL;
	struct image_rec *found;
	enum found_by by;
	if (pr.digest) {
		if (asprintf(&name, "%s@%s", pr.repo, pr.digest) < 0)
			name = NULL;
		found = name ? find_by_digest(s, name) : NULL;
		by = FOUND_DIGEST;
	} else {
		if (asprintf(&name, "%s:%s", pr.repo, pr.tag ? pr.tag : "latest") < 0)
			name = NULL;
		found = name ? find_by_tag(s, name) : NULL;
		by = FOUND_TAG;
	}
	image_ref_done(&pr);
	if (!name)
		return shoal_err_set(err, ENOMEM, "out of memory");
	if (found) {
		*ret = found;
		*ret_by = by;
		*ret_name = name;
		return 0;
	}
	free(name);
	/* "docker run 3f57" works when no image is tagged 3f57 */
	size_t n = strlen(ref);
	if (n >= 4 && image_is_hex(ref, n)) {
		r = find_by_prefix(s, ref, ret, err);
		if (r == 0) {
			*ret_by = FOUND_ID;
			*ret_name = NULL;
			return 0;
		}
		if (r != -ENOENT)
			return r;
	}
not_found:
	return shoal_err_set(err, ENOENT,
			     "No such image: %s; load one with `shoal load -i FILE.tar` or create "
			     "one with `shoal import`",
			     ref);
}

static json_t *read_config_blob(struct image_store *s, const char *hex)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/blobs/sha256/%s", s->root, hex);
	_cleanup_free_ char *text = NULL;
	if (read_file(path, IMAGE_MAX_CONFIG_BYTES, &text, NULL) < 0)
		return NULL;
	return json_loads(text, 0, NULL);
}

/* ---- resolve ---- */

void image_info_free(struct image_info *info)
{
	if (!info)
		return;
	free(info->id);
	free(info->ref);
	strv_free(info->layer_dirs);
	json_decref(info->config);
	free(info);
}

int image_store_resolve(struct image_store *s, const char *ref, struct image_info **ret,
			struct shoal_err *err)
{
	pthread_mutex_lock(&s->lock);
	struct image_rec *rec;
	enum found_by by;
	_cleanup_free_ char *name = NULL;
	int r = lookup(s, ref, &rec, &by, &name, err);
	if (r < 0) {
		pthread_mutex_unlock(&s->lock);
		return r;
	}
	struct image_info *info = calloc(1, sizeof(*info));
	json_t *cfg = read_config_blob(s, rec->hex);
	if (!info || !cfg) {
		pthread_mutex_unlock(&s->lock);
		json_decref(cfg);
		free(info);
		return cfg ? shoal_err_set(err, ENOMEM, "out of memory")
			   : shoal_err_set(err, EIO, "image sha256:%s: config blob unreadable",
					   rec->hex);
	}
	int k1 = asprintf(&info->id, "sha256:%s", rec->hex);
	info->ref = name ? TAKE_PTR(name) : (k1 >= 0 ? strdup(info->id) : NULL);
	info->layer_dirs = calloc(rec->n_layers + 1, sizeof(char *));
	info->n_layers = rec->n_layers;
	bool ok = k1 >= 0 && info->ref && info->layer_dirs;
	for (size_t i = 0; ok && i < rec->n_layers; i++)
		if (asprintf(&info->layer_dirs[i], "%s/layers/%s", s->root, rec->chain[i]) < 0) {
			info->layer_dirs[i] = NULL;
			ok = false;
		}
	pthread_mutex_unlock(&s->lock);

	json_t *c = json_object_get(cfg, "config");
	info->config = json_is_object(c) ? json_incref(c) : json_object();
	json_decref(cfg);
	if (!ok || !info->config) {
		image_info_free(info);
		return shoal_err_set(err, ENOMEM, "out of memory");
	}
	*ret = info;
	return 0;
}

/* ---- list ---- */

static json_t *familiar_array(char **v)
{
	json_t *a = json_array();
	for (; v && *v; v++) {
		_cleanup_free_ char *f = NULL;
		if (image_ref_familiar(*v, &f) == 0)
			json_array_append_new(a, json_string(f));
	}
	return a;
}

static int cmp_created_desc(const void *a, const void *b)
{
	json_int_t x = json_integer_value(json_object_get(*(json_t *const *)a, "Created"));
	json_int_t y = json_integer_value(json_object_get(*(json_t *const *)b, "Created"));
	return x < y ? 1 : x > y ? -1 : 0;
}

int image_store_list(struct image_store *s, json_t **ret, struct shoal_err *err)
{
	pthread_mutex_lock(&s->lock);
	size_t n = s->n_recs;
	json_t **items = calloc(n + 1, sizeof(*items));
	bool ok = items != NULL;
	for (size_t i = 0; ok && i < n; i++) {
		struct image_rec *r = s->recs[i];
		_cleanup_(json_decrefp) json_t *cfg = read_config_blob(s, r->hex);
		json_t *labels = json_object_get(json_object_get(cfg, "config"), "Labels");
		items[i] = json_pack("{s:s+, s:s, s:o, s:o, s:I, s:I, s:I, s:I, s:O, s:I}", "Id",
				     "sha256:", r->hex, "ParentId", "", "RepoTags",
				     familiar_array(r->tags), "RepoDigests",
				     familiar_array(r->digests), "Created", (json_int_t)r->created,
				     "Size", (json_int_t)r->size, "VirtualSize",
				     (json_int_t)r->size, "SharedSize", (json_int_t)-1, "Labels",
				     json_is_object(labels) ? labels : json_null(), "Containers",
				     (json_int_t)-1);
		ok = items[i] != NULL;
	}
	pthread_mutex_unlock(&s->lock);
	json_t *arr = ok ? json_array() : NULL;
	if (arr) {
		qsort(items, n, sizeof(*items), cmp_created_desc);
		for (size_t i = 0; i < n; i++)
			json_array_append_new(arr, TAKE_PTR(items[i]));
	}
	for (size_t i = 0; items && i < n; i++)
		json_decref(items[i]);
	free(items);
	if (!arr)
		return shoal_err_set(err, ENOMEM, "out of memory");
	*ret = arr;
	return 0;
}

/* ---- remove ---- */

static bool layer_used(struct image_store *s, const char *hex)
{
	for (size_t i = 0; i < s->n_recs; i++)
		for (size_t j = 0; j < s->recs[i]->n_layers; j++)
			if (strcmp(s->recs[i]->chain[j], hex) == 0)
				return true;
	return layer_pinned(s, hex);
}

static void append_kv(json_t *out, const char *key, const char *value)
{
	json_array_append_new(out, json_pack("{s:s}", key, value));
}

static void append_untagged(json_t *out, const char *name)
{
	_cleanup_free_ char *f = NULL;
	append_kv(out, "Untagged", image_ref_familiar(name, &f) == 0 ? f : name);
}

/* Deletes rec (lock held): its record, its config blob, and layers nobody else
 * uses, which are moved to tmp/ and returned in gc for removal after unlock. */
static int delete_image(struct image_store *s, struct image_rec *rec, json_t *out, char ***gc,
			struct shoal_err *err)
{
	int r = rec_unlink(s, rec->hex);
	if (r < 0)
		return shoal_err_errno(err, r, "removing record of sha256:%s", rec->hex);
	size_t idx = 0;
	while (s->recs[idx] != rec)
		idx++;
	s->recs[idx] = s->recs[--s->n_recs];

	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/blobs/sha256/%s", s->root, rec->hex);
	unlink(path);
	char id[72];
	snprintf(id, sizeof(id), "sha256:%s", rec->hex);
	append_kv(out, "Deleted", id);
	for (size_t i = rec->n_layers; i > 0; i--) {
		const char *hex = rec->chain[i - 1];
		if (layer_used(s, hex))
			continue;
		bool dup = false;
		for (size_t j = i; j < rec->n_layers; j++)
			if (strcmp(rec->chain[j], hex) == 0)
				dup = true;
		if (dup)
			continue;
		char src[PATH_MAX], dst[PATH_MAX], rnd[65];
		snprintf(src, sizeof(src), "%s/layers/%s", s->root, hex);
		if (random_hex_id(rnd) < 0)
			continue;
		snprintf(dst, sizeof(dst), "%s/tmp/gc-%.16s", s->root, rnd);
		if (rename(src, dst) < 0)
			continue;
		strv_push(gc, dst);
		snprintf(src, sizeof(src), "%s/init/%s", s->root, hex);
		snprintf(dst, sizeof(dst), "%s/tmp/gc-%.16s-init", s->root, rnd);
		if (rename(src, dst) == 0)
			strv_push(gc, dst);
		snprintf(id, sizeof(id), "sha256:%s", hex);
		append_kv(out, "Deleted", id);
	}
	rec_free(rec);
	return 0;
}

int image_store_remove(struct image_store *s, const char *ref, json_t **ret, struct shoal_err *err)
{
	_cleanup_(json_decrefp) json_t *out = json_array();
	_cleanup_strv_ char **gc = NULL;
	if (!out)
		return shoal_err_set(err, ENOMEM, "out of memory");

	pthread_mutex_lock(&s->lock);
	struct image_rec *rec;
	enum found_by by;
	_cleanup_free_ char *name = NULL;
	int r = lookup(s, ref, &rec, &by, &name, err);
	if (r < 0)
		goto unlock;

	bool delete = by == FOUND_ID;
	if (by == FOUND_TAG) {
		strv_remove(rec->tags, name);
		append_untagged(out, name);
	} else if (by == FOUND_DIGEST) {
		strv_remove(rec->digests, name);
		append_untagged(out, name);
	} else {
		for (char **t = rec->tags; t && *t; t++)
			append_untagged(out, *t);
		for (char **t = rec->digests; t && *t; t++)
			append_untagged(out, *t);
	}
	if (!delete &&strv_length(rec->tags) + strv_length(rec->digests) == 0)
		delete = true;
	if (delete) {
		r = delete_image(s, rec, out, &gc, err);
	} else {
		r = rec_write(s, rec);
		if (r < 0)
			r = shoal_err_errno(err, r, "writing record of sha256:%s", rec->hex);
	}
unlock:
	pthread_mutex_unlock(&s->lock);
	for (char **g = gc; g && *g; g++)
		rm_rf(*g);
	if (r < 0)
		return r;
	*ret = TAKE_PTR(out);
	return 0;
}

/* ---- commit ---- */

static int merge_plan(struct image_rec ***recs, size_t *n, struct image_plan *p, json_t *warnings)
{
	struct image_rec *rec = find_by_hex(*recs, *n, p->config_hex);
	if (!rec) {
		rec = calloc(1, sizeof(*rec));
		if (!rec)
			return -ENOMEM;
		memcpy(rec->hex, p->config_hex, 65);
		rec->n_layers = p->n_layers;
		rec->size = p->size;
		rec->created = p->created;
		rec->tags = calloc(1, sizeof(char *));
		rec->digests = calloc(1, sizeof(char *));
		rec->chain = calloc(p->n_layers, sizeof(*rec->chain));
		rec->diff = calloc(p->n_layers, sizeof(*rec->diff));
		struct image_rec **nr = realloc(*recs, (*n + 1) * sizeof(*nr));
		if (!rec->tags || !rec->digests || !rec->chain || !rec->diff || !nr) {
			if (nr)
				*recs = nr;
			rec_free(rec);
			return -ENOMEM;
		}
		memcpy(rec->chain, p->chain, p->n_layers * sizeof(*rec->chain));
		memcpy(rec->diff, p->diff, p->n_layers * sizeof(*rec->diff));
		*recs = nr;
		(*recs)[(*n)++] = rec;
		rec->dirty = true;
	}
	for (char **t = p->tags; t && *t; t++) {
		if (strv_contains(rec->tags, *t))
			continue;
		/* the tag moves: whoever had it loses it */
		for (size_t i = 0; i < *n; i++) {
			if ((*recs)[i] == rec || !strv_remove((*recs)[i]->tags, *t))
				continue;
			(*recs)[i]->dirty = true;
			_cleanup_free_ char *fam = NULL;
			image_warn(warnings,
				   "The image %s already exists, renaming the old one with ID "
				   "sha256:%s to empty string",
				   image_ref_familiar(*t, &fam) == 0 ? fam : *t, (*recs)[i]->hex);
		}
		if (strv_push(&rec->tags, *t) < 0)
			return -ENOMEM;
		rec->dirty = true;
	}
	for (char **t = p->repo_digests; t && *t; t++) {
		if (strv_contains(rec->digests, *t))
			continue;
		for (size_t i = 0; i < *n; i++)
			if ((*recs)[i] != rec && strv_remove((*recs)[i]->digests, *t))
				(*recs)[i]->dirty = true;
		if (strv_push(&rec->digests, *t) < 0)
			return -ENOMEM;
		rec->dirty = true;
	}
	return 0;
}

static int rename_new(const char *src, const char *dst, char ***moved)
{
	struct stat st;
	if (lstat(dst, &st) == 0)
		return 0;
	if (rename(src, dst) < 0)
		return -errno;
	if (strv_push(moved, dst) < 0) {
		rename(dst, src);
		return -ENOMEM;
	}
	return 0;
}

int image_store_commit(struct image_store *s, struct image_plan *plans, size_t n, const char *stage,
		       json_t *warnings, json_t **ret_loaded, struct shoal_err *err)
{
	_cleanup_strv_ char **moved = NULL;
	_cleanup_(json_decrefp) json_t *loaded = json_array();
	struct image_rec **view = NULL;
	size_t n_view = 0;
	size_t n_written = 0;
	int r = 0;
	if (!loaded)
		return shoal_err_set(err, ENOMEM, "out of memory");

	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < n && r >= 0; i++) {
		struct image_plan *p = &plans[i];
		for (size_t l = 0; l < p->n_layers && r >= 0; l++) {
			char src[PATH_MAX], dst[PATH_MAX];
			snprintf(src, sizeof(src), "%s/layers/%s", stage, p->chain[l]);
			snprintf(dst, sizeof(dst), "%s/layers/%s", s->root, p->chain[l]);
			r = rename_new(src, dst, &moved);
			if (r < 0)
				r = shoal_err_errno(err, r, "moving layer sha256:%s into place",
						    p->chain[l]);
		}
		char dst[PATH_MAX];
		snprintf(dst, sizeof(dst), "%s/blobs/sha256/%s", s->root, p->config_hex);
		if (r >= 0) {
			r = rename_new(p->config_path, dst, &moved);
			if (r < 0)
				r = shoal_err_errno(err, r, "storing config sha256:%s",
						    p->config_hex);
		}
	}
	if (r < 0)
		goto rollback;

	view = calloc(s->n_recs + 1, sizeof(*view));
	if (!view) {
		r = shoal_err_set(err, ENOMEM, "out of memory");
		goto rollback;
	}
	for (size_t i = 0; i < s->n_recs; i++) {
		view[i] = rec_clone(s->recs[i]);
		if (!view[i]) {
			r = shoal_err_set(err, ENOMEM, "out of memory");
			goto rollback;
		}
		n_view++;
	}
	for (size_t i = 0; i < n; i++) {
		r = merge_plan(&view, &n_view, &plans[i], warnings);
		if (r < 0) {
			r = shoal_err_set(err, ENOMEM, "out of memory");
			goto rollback;
		}
	}
	/* records last: until they exist, nothing refers to what was moved in */
	for (n_written = 0; n_written < n_view; n_written++) {
		if (!view[n_written]->dirty)
			continue;
		r = rec_write(s, view[n_written]);
		if (r < 0) {
			r = shoal_err_errno(err, r, "writing image record sha256:%s",
					    view[n_written]->hex);
			goto rollback;
		}
	}
	for (size_t i = 0; i < n; i++) {
		struct image_plan *p = &plans[i];
		if (!p->tags || !p->tags[0])
			json_array_append_new(loaded, json_sprintf("sha256:%s", p->config_hex));
		for (char **t = p->tags; t && *t; t++)
			json_array_append_new(loaded, json_string(*t));
	}
	recs_free(s->recs, s->n_recs);
	for (size_t i = 0; i < n_view; i++)
		view[i]->dirty = false;
	s->recs = view;
	s->n_recs = n_view;
	pthread_mutex_unlock(&s->lock);
	*ret_loaded = TAKE_PTR(loaded);
	return 0;

rollback:
	for (size_t i = 0; i < n_written; i++) {
		if (!view[i]->dirty)
			continue;
		struct image_rec *old = find_by_hex(s->recs, s->n_recs, view[i]->hex);
		if (old)
			rec_write(s, old);
		else
			rec_unlink(s, view[i]->hex);
	}
	for (char **m = moved; m && *m; m++)
		rm_rf(*m);
	pthread_mutex_unlock(&s->lock);
	if (view)
		recs_free(view, n_view);
	return r;
}

void image_plan_done(struct image_plan *p)
{
	free(p->config_path);
	strv_free(p->tags);
	strv_free(p->repo_digests);
	free(p->chain);
	free(p->diff);
	strv_free(p->layer_paths);
	memset(p, 0, sizeof(*p));
}

/* ---- tag, history ---- */

int image_store_tag(struct image_store *s, const char *ref, const char *target, char **ret_id,
		    struct shoal_err *err)
{
	_cleanup_free_ char *norm = NULL;
	if (image_ref_normalize(target, &norm) < 0 || strchr(norm, '@'))
		return shoal_err_set_status(err, 400, EINVAL,
					    "invalid reference format: \"%s\" (expected "
					    "NAME[:TAG], lowercase)",
					    target);
	pthread_mutex_lock(&s->lock);
	struct image_rec *rec;
	enum found_by by;
	_cleanup_free_ char *name = NULL;
	int r = lookup(s, ref, &rec, &by, &name, err);
	if (r < 0)
		goto unlock;
	if (strv_contains(rec->tags, norm))
		goto done;
	struct image_rec *old = find_by_tag(s, norm);
	if (old) {
		strv_remove(old->tags, norm);
		if ((r = rec_write(s, old)) < 0) {
			r = shoal_err_errno(err, r, "writing record of sha256:%s", old->hex);
			goto unlock;
		}
	}
	if (strv_push(&rec->tags, norm) < 0) {
		r = shoal_err_set(err, ENOMEM, "out of memory");
		goto unlock;
	}
	if ((r = rec_write(s, rec)) < 0) {
		r = shoal_err_errno(err, r, "writing record of sha256:%s", rec->hex);
		goto unlock;
	}
done:
	if (ret_id && asprintf(ret_id, "sha256:%s", rec->hex) < 0) {
		*ret_id = NULL;
		r = shoal_err_set(err, ENOMEM, "out of memory");
	}
unlock:
	pthread_mutex_unlock(&s->lock);
	return r < 0 ? r : 0;
}

static __thread uint64_t du_total;

static int du_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	if (flag == FTW_F && S_ISREG(st->st_mode))
		du_total += (uint64_t)st->st_size;
	return 0;
}

uint64_t image_dir_size(const char *path)
{
	du_total = 0;
	nftw(path, du_cb, 16, FTW_PHYS | FTW_MOUNT);
	return du_total;
}

int image_store_history(struct image_store *s, const char *ref, json_t **ret, struct shoal_err *err)
{
	pthread_mutex_lock(&s->lock);
	struct image_rec *rec;
	enum found_by by;
	_cleanup_free_ char *name = NULL;
	int r = lookup(s, ref, &rec, &by, &name, err);
	if (r < 0) {
		pthread_mutex_unlock(&s->lock);
		return r;
	}
	struct image_rec *copy = rec_clone(rec);
	_cleanup_(json_decrefp) json_t *cfg = copy ? read_config_blob(s, rec->hex) : NULL;
	pthread_mutex_unlock(&s->lock);
	if (!copy || !cfg) {
		rec_free(copy);
		return copy ? shoal_err_set(err, EIO, "image sha256:%s: config blob unreadable",
					    rec->hex)
			    : shoal_err_set(err, ENOMEM, "out of memory");
	}
	json_t *hist = json_object_get(cfg, "history");
	json_t *out = json_array();
	size_t layer = 0, n = json_array_size(hist);
	/* oldest first in the config; Docker lists the newest first */
	for (size_t i = 0; i < (n ? n : copy->n_layers); i++) {
		json_t *h = n ? json_array_get(hist, i) : NULL;
		bool empty = json_is_true(json_object_get(h, "empty_layer"));
		uint64_t size = 0;
		if (!empty && layer < copy->n_layers) {
			char dir[PATH_MAX];
			snprintf(dir, sizeof(dir), "%s/layers/%s", s->root, copy->chain[layer++]);
			size = image_dir_size(dir);
		}
		json_t *e = json_pack(
			"{s:s, s:I, s:s, s:n, s:I, s:s}", "Id", "<missing>", "Created",
			(json_int_t)image_parse_time(
				json_string_value(json_object_get(h, "created"))),
			"CreatedBy", json_string_value(json_object_get(h, "created_by")) ?: "",
			"Tags", "Size", (json_int_t)size, "Comment",
			json_string_value(json_object_get(h, "comment")) ?: "");
		json_array_insert_new(out, 0, e);
	}
	json_t *top = json_array_get(out, 0);
	if (top) {
		json_object_set_new(top, "Id", json_sprintf("sha256:%s", copy->hex));
		json_t *tags = familiar_array(copy->tags);
		if (json_array_size(tags))
			json_object_set_new(top, "Tags", tags);
		else
			json_decref(tags);
	}
	rec_free(copy);
	*ret = out;
	return 0;
}
