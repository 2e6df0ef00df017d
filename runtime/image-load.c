// SPDX-License-Identifier: Apache-2.0
/* image_store_load and image_store_import.
 *
 * The outer tarball is read once, from a pipe if need be: every regular entry
 * is staged as a file under tmp/<random>/ and hashed while it is written. Then
 * the manifest (docker-archive) or index (OCI layout) is read from the stage,
 * every digest the format states is checked, the layers that are new to the
 * store are unpacked into the stage, and the whole lot is committed at once. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>
#include <openssl/evp.h>

#include "lib/cleanup.h"
#include "lib/util.h"
#include "runtime/image-internal.h"
#include "runtime/image.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(struct archive *, archive_read_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_MD_CTX *, EVP_MD_CTX_free)

#define MAX_IMAGES_PER_LOAD 256

#define MT_OCI_INDEX	   "application/vnd.oci.image.index.v1+json"
#define MT_OCI_MANIFEST	   "application/vnd.oci.image.manifest.v1+json"
#define MT_DOCKER_LIST	   "application/vnd.docker.distribution.manifest.list.v2+json"
#define MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"

struct staged {
	char *name; /* clean path inside the outer tarball */
	char *path; /* staged file; NULL for links */
	char *link; /* clean path of what a symlink or hard link points at */
	char hex[65];
	uint64_t size;
	bool have_diff; /* diff_hex/diff_size computed */
	char diff_hex[65];
	uint64_t diff_size;
};

struct load {
	struct image_store *s;
	struct shoal_err *err;
	json_t *warnings;
	char *stage;
	struct staged *files;
	size_t n_files;
	struct image_plan *plans;
	size_t n_plans;
	/* chain ids pinned in the store, and which of them were present already */
	char (*pinned)[65];
	size_t n_pinned;
};

static void load_done(struct load *l)
{
	if (l->n_pinned)
		image_store_unpin_layers(l->s, l->pinned, l->n_pinned);
	free(l->pinned);
	for (size_t i = 0; i < l->n_files; i++) {
		free(l->files[i].name);
		free(l->files[i].path);
		free(l->files[i].link);
	}
	free(l->files);
	for (size_t i = 0; i < l->n_plans; i++)
		image_plan_done(&l->plans[i]);
	free(l->plans);
	if (l->stage)
		rm_rf(l->stage);
	free(l->stage);
}

/* Normalises a path inside the outer tarball; ".." pops a component. base is the
 * directory a relative symlink target is relative to (NULL: the root). Returns
 * NULL for paths that leave the root. */
static char *norm_join(const char *base, const char *path)
{
	_cleanup_free_ char *joined = NULL;
	if (base && *base && path[0] != '/') {
		if (asprintf(&joined, "%s/%s", base, path) < 0)
			return NULL;
	} else {
		joined = strdup(path);
	}
	if (!joined)
		return NULL;
	char *out = malloc(strlen(joined) + 1);
	if (!out)
		return NULL;
	size_t o = 0;
	const char *p = joined;
	while (*p) {
		size_t n = strcspn(p, "/");
		if (n == 2 && p[0] == '.' && p[1] == '.') {
			if (o == 0) {
				free(out);
				return NULL;
			}
			while (o > 0 && out[o - 1] != '/')
				o--;
			if (o > 0)
				o--;
		} else if (n > 0 && !(n == 1 && p[0] == '.')) {
			if (o > 0)
				out[o++] = '/';
			memcpy(out + o, p, n);
			o += n;
		}
		p += n;
		if (*p == '/')
			p++;
	}
	out[o] = '\0';
	return out;
}

static struct staged *find_staged(struct load *l, const char *name)
{
	_cleanup_free_ char *cur = norm_join(NULL, name);
	for (int hops = 0; cur && hops <= IMAGE_MAX_LINK_HOPS; hops++) {
		struct staged *f = NULL;
		for (size_t i = l->n_files; i > 0; i--)
			if (strcmp(l->files[i - 1].name, cur) == 0) {
				f = &l->files[i - 1];
				break;
			}
		if (!f)
			return NULL;
		if (f->path)
			return f;
		free(cur);
		cur = strdup(f->link);
	}
	return NULL;
}

/* ---- reading the outer tarball ---- */

static int stage_entry(struct load *l, struct archive *a, struct archive_entry *e)
{
	const char *raw = archive_entry_pathname(e);
	mode_t type = archive_entry_filetype(e);
	const char *hardlink = archive_entry_hardlink(e);
	if (!raw || (type != AE_IFREG && type != AE_IFLNK && !hardlink))
		return 0; /* directories and the like carry nothing we read */
	if (strlen(raw) > IMAGE_MAX_ENTRY_PATH)
		return shoal_err_set(l->err, ENAMETOOLONG,
				     "tarball entry \"%.64s...\": path too long", raw);
	if (l->n_files >= IMAGE_MAX_OUTER_ENTRIES)
		return shoal_err_set(l->err, E2BIG, "tarball has more than %d files",
				     IMAGE_MAX_OUTER_ENTRIES);
	struct staged *nf = realloc(l->files, (l->n_files + 1) * sizeof(*nf));
	if (!nf)
		return shoal_err_set(l->err, ENOMEM, "out of memory");
	l->files = nf;
	struct staged *f = &l->files[l->n_files];
	memset(f, 0, sizeof(*f));
	f->name = norm_join(NULL, raw);
	if (!f->name)
		return 0; /* outside the tarball root: nothing can refer to it */
	l->n_files++;

	if (hardlink || type == AE_IFLNK) {
		if (hardlink) {
			f->link = norm_join(NULL, hardlink);
		} else {
			const char *target = archive_entry_symlink(e);
			_cleanup_free_ char *dir = strdup(f->name);
			if (!dir || !target)
				return shoal_err_set(l->err, EBADMSG,
						     "tarball entry \"%s\": bad link", raw);
			char *slash = strrchr(dir, '/');
			if (slash)
				*slash = '\0';
			else
				dir[0] = '\0';
			f->link = norm_join(dir, target);
		}
		if (!f->link)
			f->link = strdup("");
		return f->link ? 0 : shoal_err_set(l->err, ENOMEM, "out of memory");
	}

	if (asprintf(&f->path, "%s/in/%zu", l->stage, l->n_files) < 0) {
		f->path = NULL;
		return shoal_err_set(l->err, ENOMEM, "out of memory");
	}
	_cleanup_close_ int fd = open(f->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return shoal_err_errno(l->err, errno, "staging %s", f->path);
	_cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *md = EVP_MD_CTX_new();
	if (!md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1)
		return shoal_err_set(l->err, ENOMEM, "sha256 context");
	static __thread char buf[65536];
	for (;;) {
		la_ssize_t k = archive_read_data(a, buf, sizeof(buf));
		if (k < 0)
			return shoal_err_set(l->err, EBADMSG,
					     "truncated or corrupt tarball at entry \"%s\": %s",
					     raw, archive_error_string(a));
		if (k == 0)
			break;
		EVP_DigestUpdate(md, buf, (size_t)k);
		int r = write_all(fd, buf, (size_t)k);
		if (r < 0)
			return shoal_err_errno(l->err, r, "staging \"%s\"", raw);
		f->size += (uint64_t)k;
	}
	unsigned char d[32];
	unsigned int dlen = 0;
	EVP_DigestFinal_ex(md, d, &dlen);
	for (int i = 0; i < 32; i++)
		sprintf(f->hex + 2 * i, "%02x", d[i]);

	/* OCI blobs are named by their digest: check it now */
	const char *b = f->name;
	if (str_has_prefix(b, "blobs/sha256/")) {
		const char *want = b + strlen("blobs/sha256/");
		if (strlen(want) == 64 && image_is_hex(want, 64) && strcmp(want, f->hex) != 0)
			return shoal_err_set(l->err, EBADMSG,
					     "blob %s: digest mismatch: expected sha256:%s, got "
					     "sha256:%s",
					     f->name, want, f->hex);
	}
	return 0;
}

static int read_outer(struct load *l, int fd)
{
	_cleanup_(archive_read_freep) struct archive *a = image_archive_new(false);
	if (!a)
		return shoal_err_set(l->err, ENOMEM, "libarchive");
	if (archive_read_open_fd(a, fd, 65536) != ARCHIVE_OK)
		return shoal_err_set(l->err, EBADMSG, "reading tarball: %s",
				     archive_error_string(a));
	for (;;) {
		struct archive_entry *e;
		int k = archive_read_next_header(a, &e);
		if (k == ARCHIVE_EOF)
			return 0;
		if (k != ARCHIVE_OK && k != ARCHIVE_WARN)
			return shoal_err_set(
				l->err, EBADMSG,
				"truncated or corrupt tarball (not a tar archive?): %s",
				archive_error_string(a));
		int r = stage_entry(l, a, e);
		if (r < 0)
			return r;
	}
}

/* ---- JSON from the stage ---- */

static int read_json(struct load *l, struct staged *f, const char *what, size_t max, json_t **ret)
{
	if (f->size > max)
		return shoal_err_set(l->err, EFBIG, "%s is %llu bytes, more than the %zu allowed",
				     what, (unsigned long long)f->size, max);
	_cleanup_free_ char *text = NULL;
	size_t len;
	int r = read_file(f->path, max, &text, &len);
	if (r < 0)
		return shoal_err_errno(l->err, r, "reading %s", what);
	json_error_t je;
	json_t *j = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
	if (!j)
		return shoal_err_set(l->err, EBADMSG, "malformed JSON in %s: line %d: %s", what,
				     je.line, je.text);
	*ret = j;
	return 0;
}

/* "sha256:<hex>" -> the staged blob, checked against the descriptor size. */
static int find_blob(struct load *l, json_t *desc, const char *referrer, struct staged **ret,
		     char ret_hex[65])
{
	const char *digest = json_string_value(json_object_get(desc, "digest"));
	if (!digest)
		return shoal_err_set(l->err, EBADMSG, "%s: descriptor without a digest", referrer);
	if (!str_has_prefix(digest, "sha256:") || strlen(digest) != 71 ||
	    !image_is_hex(digest + 7, 64))
		return shoal_err_set(l->err, EBADMSG, "%s: unsupported digest \"%s\"", referrer,
				     digest);
	char name[96];
	snprintf(name, sizeof(name), "blobs/sha256/%s", digest + 7);
	struct staged *f = find_staged(l, name);
	if (!f)
		return shoal_err_set(l->err, ENOENT, "missing blob %s (referenced by %s)", digest,
				     referrer);
	/* a blob reached through a link was not checked by name while staging */
	if (strcmp(f->hex, digest + 7) != 0)
		return shoal_err_set(l->err, EBADMSG,
				     "blob %s: digest mismatch: expected %s, got sha256:%s", name,
				     digest, f->hex);
	json_t *size = json_object_get(desc, "size");
	if (json_is_integer(size) && (uint64_t)json_integer_value(size) != f->size)
		return shoal_err_set(l->err, EBADMSG,
				     "blob %s: size mismatch: descriptor says %lld bytes, blob has "
				     "%llu",
				     digest, (long long)json_integer_value(size),
				     (unsigned long long)f->size);
	*ret = f;
	if (ret_hex)
		memcpy(ret_hex, digest + 7, 65);
	return 0;
}

/* ---- building plans ---- */

static struct image_plan *plan_new(struct load *l)
{
	if (l->n_plans >= MAX_IMAGES_PER_LOAD) {
		shoal_err_set(l->err, E2BIG, "tarball holds more than %d images",
			      MAX_IMAGES_PER_LOAD);
		return NULL;
	}
	struct image_plan *np = realloc(l->plans, (l->n_plans + 1) * sizeof(*np));
	if (!np) {
		shoal_err_set(l->err, ENOMEM, "out of memory");
		return NULL;
	}
	l->plans = np;
	struct image_plan *p = &l->plans[l->n_plans++];
	memset(p, 0, sizeof(*p));
	p->tags = calloc(1, sizeof(char *));
	p->repo_digests = calloc(1, sizeof(char *));
	if (!p->tags || !p->repo_digests) {
		shoal_err_set(l->err, ENOMEM, "out of memory");
		return NULL;
	}
	return p;
}

static int plan_add_tag(struct load *l, struct image_plan *p, const char *tag, const char *where)
{
	_cleanup_free_ char *norm = NULL;
	if (image_ref_normalize(tag, &norm) < 0 || strchr(norm, '@'))
		return shoal_err_set(l->err, EINVAL, "%s: invalid image name \"%s\"", where, tag);
	for (char **t = p->tags; *t; t++)
		if (strcmp(*t, norm) == 0)
			return 0;
	if (strv_push(&p->tags, norm) < 0)
		return shoal_err_set(l->err, ENOMEM, "out of memory");
	return 0;
}

/* Reads the config, checks its diff_ids against the layers, computes chain ids. */
static int plan_fill(struct load *l, struct image_plan *p, struct staged *config,
		     const char *config_name, struct staged **layers, const char **layer_names,
		     size_t n_layers)
{
	_cleanup_(json_decrefp) json_t *cfg = NULL;
	char what[IMAGE_MAX_ENTRY_PATH + 32];
	snprintf(what, sizeof(what), "config %s", config_name);
	int r = read_json(l, config, what, IMAGE_MAX_CONFIG_BYTES, &cfg);
	if (r < 0)
		return r;
	memcpy(p->config_hex, config->hex, 65);
	json_t *diffs = json_object_get(json_object_get(cfg, "rootfs"), "diff_ids");
	if (!json_is_array(diffs))
		return shoal_err_set(l->err, EBADMSG, "%s: no rootfs.diff_ids", what);
	if (json_array_size(diffs) != n_layers)
		return shoal_err_set(
			l->err, EBADMSG,
			"%s: rootfs.diff_ids lists %zu layers but the manifest has %zu", what,
			json_array_size(diffs), n_layers);
	if (n_layers == 0)
		return shoal_err_set(l->err, EBADMSG, "%s: image has no layers", what);
	const char *created = json_string_value(json_object_get(cfg, "created"));
	p->created = image_parse_time(created);
	p->n_layers = n_layers;
	p->chain = calloc(n_layers, sizeof(*p->chain));
	p->diff = calloc(n_layers, sizeof(*p->diff));
	p->layer_paths = calloc(n_layers + 1, sizeof(char *));
	if (!p->chain || !p->diff || !p->layer_paths)
		return shoal_err_set(l->err, ENOMEM, "out of memory");

	for (size_t i = 0; i < n_layers; i++) {
		const char *d = json_string_value(json_array_get(diffs, i));
		if (!d || !str_has_prefix(d, "sha256:") || strlen(d) != 71 ||
		    !image_is_hex(d + 7, 64))
			return shoal_err_set(l->err, EBADMSG, "%s: bad diff_id #%zu", what, i);
		struct staged *f = layers[i];
		if (!f->have_diff) {
			if (strcmp(f->hex, d + 7) == 0) {
				/* an uncompressed layer: the blob is the tar */
				memcpy(f->diff_hex, f->hex, 65);
				f->diff_size = f->size;
			} else {
				r = image_stream_digest(f->path, f->diff_hex, &f->diff_size,
							l->err);
				if (r < 0)
					return shoal_err_wrap(l->err, "layer %s", layer_names[i]);
			}
			f->have_diff = true;
		}
		if (strcmp(f->diff_hex, d + 7) != 0)
			return shoal_err_set(l->err, EBADMSG,
					     "layer %s: digest mismatch: expected diff_id %s (from "
					     "the config), got sha256:%s",
					     layer_names[i], d, f->diff_hex);
		memcpy(p->diff[i], d + 7, 65);
		p->layer_paths[i] = strdup(f->path);
		if (!p->layer_paths[i])
			return shoal_err_set(l->err, ENOMEM, "out of memory");
		if (i == 0) {
			memcpy(p->chain[0], p->diff[0], 65);
		} else {
			char buf[160];
			int n = snprintf(buf, sizeof(buf), "sha256:%s sha256:%s", p->chain[i - 1],
					 p->diff[i]);
			sha256_hex(buf, (size_t)n, p->chain[i]);
		}
		p->size += f->diff_size;
	}
	p->config_path = strdup(config->path);
	if (!p->config_path)
		return shoal_err_set(l->err, ENOMEM, "out of memory");
	return 0;
}

static int docker_archive(struct load *l, struct staged *manifest_file)
{
	_cleanup_(json_decrefp) json_t *manifest = NULL;
	int r = read_json(l, manifest_file, "manifest.json", IMAGE_MAX_MANIFEST_BYTES, &manifest);
	if (r < 0)
		return r;
	if (!json_is_array(manifest) || json_array_size(manifest) == 0)
		return shoal_err_set(l->err, EBADMSG, "manifest.json: expected a non-empty array");
	size_t i;
	json_t *entry;
	json_array_foreach(manifest, i, entry)
	{
		const char *config_name = json_string_value(json_object_get(entry, "Config"));
		json_t *layers = json_object_get(entry, "Layers");
		json_t *tags = json_object_get(entry, "RepoTags");
		if (!config_name || !json_is_array(layers))
			return shoal_err_set(l->err, EBADMSG,
					     "manifest.json: entry %zu lacks Config or Layers", i);
		size_t n = json_array_size(layers);
		if (n > IMAGE_MAX_LAYERS)
			return shoal_err_set(l->err, E2BIG, "too many layers: %zu (at most %d)", n,
					     IMAGE_MAX_LAYERS);
		struct staged *config = find_staged(l, config_name);
		if (!config)
			return shoal_err_set(l->err, ENOENT,
					     "missing config %s (listed in manifest.json)",
					     config_name);
		/* the config is named after its digest ("<hex>.json" or blobs/sha256/<hex>) */
		const char *base = strrchr(config_name, '/');
		base = base ? base + 1 : config_name;
		size_t blen = strlen(base);
		if ((blen == 64 || (blen == 69 && strcmp(base + 64, ".json") == 0)) &&
		    image_is_hex(base, 64) && strncmp(base, config->hex, 64) != 0)
			return shoal_err_set(
				l->err, EBADMSG,
				"config %s: digest mismatch: expected sha256:%.64s, got "
				"sha256:%s",
				config_name, base, config->hex);

		struct staged *files[IMAGE_MAX_LAYERS];
		const char *names[IMAGE_MAX_LAYERS];
		for (size_t k = 0; k < n; k++) {
			names[k] = json_string_value(json_array_get(layers, k));
			if (!names[k])
				return shoal_err_set(l->err, EBADMSG,
						     "manifest.json: layer %zu is not a string", k);
			files[k] = find_staged(l, names[k]);
			if (!files[k])
				return shoal_err_set(l->err, ENOENT,
						     "missing layer %s (listed in manifest.json)",
						     names[k]);
		}
		struct image_plan *p = plan_new(l);
		if (!p)
			return -l->err->code;
		size_t t;
		json_t *tag;
		json_array_foreach(tags, t, tag)
		{
			if (!json_is_string(tag))
				return shoal_err_set(l->err, EBADMSG,
						     "manifest.json: RepoTags must be strings");
			r = plan_add_tag(l, p, json_string_value(tag), "manifest.json");
			if (r < 0)
				return r;
		}
		r = plan_fill(l, p, config, config_name, files, names, n);
		if (r < 0)
			return r;
	}
	return 0;
}

static const char *host_arch(void)
{
#if defined(__x86_64__)
	return "amd64";
#elif defined(__aarch64__)
	return "arm64";
#elif defined(__arm__)
	return "arm";
#elif defined(__i386__)
	return "386";
#elif defined(__powerpc64__)
	return "ppc64le";
#elif defined(__s390x__)
	return "s390x";
#elif defined(__riscv)
	return "riscv64";
#else
	return "unknown";
#endif
}

static bool platform_ok(json_t *desc)
{
	json_t *plat = json_object_get(desc, "platform");
	if (!plat)
		return true;
	const char *os = json_string_value(json_object_get(plat, "os"));
	const char *arch = json_string_value(json_object_get(plat, "architecture"));
	return (!os || strcmp(os, "linux") == 0) && (!arch || strcmp(arch, host_arch()) == 0);
}

/* The name an index entry gives its image, if any. */
static const char *oci_name(json_t *desc, const char *inherited)
{
	json_t *ann = json_object_get(desc, "annotations");
	const char *n = json_string_value(json_object_get(ann, "io.containerd.image.name"));
	if (n)
		return n;
	n = json_string_value(json_object_get(ann, "org.opencontainers.image.ref.name"));
	/* a bare tag ("latest") names no repository */
	if (n && (strchr(n, '/') || strchr(n, ':')))
		return n;
	return inherited;
}

static int oci_manifest(struct load *l, json_t *desc, const char *name, const char *referrer)
{
	struct staged *mf;
	char mhex[65];
	int r = find_blob(l, desc, referrer, &mf, mhex);
	if (r < 0)
		return r;
	char what[128];
	snprintf(what, sizeof(what), "manifest sha256:%s", mhex);
	_cleanup_(json_decrefp) json_t *m = NULL;
	r = read_json(l, mf, what, IMAGE_MAX_MANIFEST_BYTES, &m);
	if (r < 0)
		return r;
	json_t *cdesc = json_object_get(m, "config");
	json_t *layers = json_object_get(m, "layers");
	if (!json_is_object(cdesc) || !json_is_array(layers))
		return shoal_err_set(l->err, EBADMSG, "%s: no config or layers", what);
	size_t n = json_array_size(layers);
	if (n > IMAGE_MAX_LAYERS)
		return shoal_err_set(l->err, E2BIG, "too many layers: %zu (at most %d)", n,
				     IMAGE_MAX_LAYERS);
	struct staged *config;
	r = find_blob(l, cdesc, what, &config, NULL);
	if (r < 0)
		return r;
	struct staged *files[IMAGE_MAX_LAYERS];
	const char *names[IMAGE_MAX_LAYERS];
	for (size_t k = 0; k < n; k++) {
		json_t *ld = json_array_get(layers, k);
		r = find_blob(l, ld, what, &files[k], NULL);
		if (r < 0)
			return r;
		names[k] = files[k]->name;
	}
	struct image_plan *p = plan_new(l);
	if (!p)
		return -l->err->code;
	if (name) {
		r = plan_add_tag(l, p, name, "index.json");
		if (r < 0)
			return r;
		struct image_ref ref = {};
		if (image_ref_parse(name, &ref) == 0) {
			_cleanup_free_ char *dref = NULL;
			if (asprintf(&dref, "%s@sha256:%s", ref.repo, mhex) >= 0)
				strv_push(&p->repo_digests, dref);
			image_ref_done(&ref);
		}
	}
	return plan_fill(l, p, config, config->name, files, names, n);
}

static int oci_index(struct load *l, json_t *index, const char *what, const char *name, int depth)
{
	if (depth > IMAGE_MAX_INDEX_DEPTH)
		return shoal_err_set(l->err, E2BIG, "%s: indexes nested deeper than %d", what,
				     IMAGE_MAX_INDEX_DEPTH);
	json_t *manifests = json_object_get(index, "manifests");
	if (!json_is_array(manifests))
		return shoal_err_set(l->err, EBADMSG, "%s: no manifests array", what);
	size_t before = l->n_plans;
	size_t i;
	json_t *desc;
	json_array_foreach(manifests, i, desc)
	{
		const char *mt = json_string_value(json_object_get(desc, "mediaType"));
		const char *n = oci_name(desc, name);
		if (!mt)
			mt = MT_OCI_MANIFEST;
		int r = 0;
		if (strcmp(mt, MT_OCI_INDEX) == 0 || strcmp(mt, MT_DOCKER_LIST) == 0) {
			struct staged *f;
			char hex[65];
			r = find_blob(l, desc, what, &f, hex);
			if (r < 0)
				return r;
			char sub[128];
			snprintf(sub, sizeof(sub), "index sha256:%s", hex);
			_cleanup_(json_decrefp) json_t *j = NULL;
			r = read_json(l, f, sub, IMAGE_MAX_MANIFEST_BYTES, &j);
			if (r < 0)
				return r;
			r = oci_index(l, j, sub, n, depth + 1);
		} else if (strcmp(mt, MT_OCI_MANIFEST) == 0 ||
			   strcmp(mt, MT_DOCKER_MANIFEST) == 0) {
			/* other platforms' manifests are usually not in the layout at all */
			if (!platform_ok(desc))
				continue;
			r = oci_manifest(l, desc, n, what);
		}
		if (r < 0)
			return r;
	}
	if (l->n_plans == before)
		return shoal_err_set(l->err, ENOENT, "%s: no image manifest for linux/%s", what,
				     host_arch());
	return 0;
}

static int oci_layout(struct load *l, struct staged *index_file)
{
	struct staged *layout = find_staged(l, "oci-layout");
	if (!layout)
		return shoal_err_set(l->err, ENOENT, "missing oci-layout next to index.json");
	_cleanup_(json_decrefp) json_t *lj = NULL;
	int r = read_json(l, layout, "oci-layout", IMAGE_MAX_MANIFEST_BYTES, &lj);
	if (r < 0)
		return r;
	const char *ver = json_string_value(json_object_get(lj, "imageLayoutVersion"));
	if (!ver || strcmp(ver, "1.0.0") != 0)
		return shoal_err_set(l->err, EBADMSG, "oci-layout: unsupported imageLayoutVersion");
	_cleanup_(json_decrefp) json_t *index = NULL;
	r = read_json(l, index_file, "index.json", IMAGE_MAX_MANIFEST_BYTES, &index);
	if (r < 0)
		return r;
	return oci_index(l, index, "index.json", NULL, 0);
}

/* ---- unpacking and commit ---- */

static int unpack_layers(struct load *l)
{
	size_t total = 0;
	for (size_t i = 0; i < l->n_plans; i++)
		total += l->plans[i].n_layers;
	l->pinned = calloc(total ? total : 1, sizeof(*l->pinned));
	_cleanup_free_ bool *exists = calloc(total ? total : 1, sizeof(bool));
	if (!l->pinned || !exists)
		return shoal_err_set(l->err, ENOMEM, "out of memory");
	size_t k = 0;
	for (size_t i = 0; i < l->n_plans; i++)
		for (size_t j = 0; j < l->plans[i].n_layers; j++)
			memcpy(l->pinned[k++], l->plans[i].chain[j], 65);
	if (image_store_pin_layers(l->s, l->pinned, total, exists) < 0)
		return shoal_err_set(l->err, ENOMEM, "out of memory");
	l->n_pinned = total;

	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s/layers", l->stage);
	if (mkdir(dir, 0755) < 0)
		return shoal_err_errno(l->err, errno, "creating %s", dir);
	k = 0;
	for (size_t i = 0; i < l->n_plans; i++) {
		struct image_plan *p = &l->plans[i];
		for (size_t j = 0; j < p->n_layers; j++, k++) {
			if (exists[k])
				continue;
			char dest[PATH_MAX];
			snprintf(dest, sizeof(dest), "%s/layers/%s", l->stage, p->chain[j]);
			struct stat st;
			if (lstat(dest, &st) == 0)
				continue; /* another image of this load has it */
			int r = image_layer_unpack(p->layer_paths[j], dest, l->warnings, l->err);
			if (r < 0)
				return shoal_err_wrap(l->err, "layer sha256:%s", p->diff[j]);
		}
	}
	return 0;
}

static int load_run(struct load *l, int fd, json_t **ret_loaded)
{
	int r = image_store_stage_new(l->s, &l->stage, l->err);
	if (r < 0)
		return r;
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s/in", l->stage);
	if (mkdir(dir, 0700) < 0)
		return shoal_err_errno(l->err, errno, "creating %s", dir);
	r = read_outer(l, fd);
	if (r < 0)
		return r;

	struct staged *manifest = find_staged(l, "manifest.json");
	struct staged *index = find_staged(l, "index.json");
	if (manifest)
		r = docker_archive(l, manifest);
	else if (index)
		r = oci_layout(l, index);
	else
		return shoal_err_set(l->err, ENOENT,
				     "not an image archive: no manifest.json (docker save) or "
				     "index.json (OCI image layout) in the tarball");
	if (r < 0)
		return r;
	r = unpack_layers(l);
	if (r < 0)
		return r;
	return image_store_commit(l->s, l->plans, l->n_plans, l->stage, l->warnings, ret_loaded,
				  l->err);
}

int image_store_load(struct image_store *s, int fd, json_t **ret_loaded, json_t **ret_warnings,
		     struct shoal_err *err)
{
	_cleanup_(json_decrefp) json_t *warnings = json_array();
	if (!warnings)
		return shoal_err_set(err, ENOMEM, "out of memory");
	struct load l = {
		.s = s,
		.err = err,
		.warnings = warnings,
	};
	json_t *loaded = NULL;
	int r = load_run(&l, fd, &loaded);
	load_done(&l);
	if (r < 0)
		return shoal_err_wrap(err, "loading image");
	*ret_loaded = loaded;
	if (ret_warnings)
		*ret_warnings = TAKE_PTR(warnings);
	return 0;
}

/* ---- import ---- */

#define DEFAULT_PATH "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* Env entries merge by variable name; the override wins. */
static int merge_env(json_t *env, json_t *add)
{
	size_t i;
	json_t *v;
	json_array_foreach(add, i, v)
	{
		const char *s = json_string_value(v);
		if (!s)
			return -EINVAL;
		size_t klen = strcspn(s, "=");
		size_t j;
		json_t *old;
		bool replaced = false;
		json_array_foreach(env, j, old)
		{
			const char *o = json_string_value(old);
			if (o && strncmp(o, s, klen) == 0 && (o[klen] == '=' || o[klen] == '\0')) {
				json_array_set(env, j, v);
				replaced = true;
				break;
			}
		}
		if (!replaced)
			json_array_append(env, v);
	}
	return 0;
}

static int import_config(struct load *l, const char *diff_hex, json_t *overrides, char ret_hex[65])
{
	if (overrides && !json_is_object(overrides))
		return shoal_err_set(l->err, EINVAL, "config overrides must be a JSON object");
	char created[40];
	format_rfc3339(now_ns(), created);
	_cleanup_(json_decrefp) json_t *config = json_pack("{s:[s]}", "Env", DEFAULT_PATH);
	if (!config)
		return shoal_err_set(l->err, ENOMEM, "out of memory");
	const char *key;
	json_t *v;
	json_object_foreach(overrides, key, v)
	{
		if (strcmp(key, "Env") == 0) {
			if (!json_is_array(v) || merge_env(json_object_get(config, "Env"), v) < 0)
				return shoal_err_set(l->err, EINVAL,
						     "config overrides: Env must be an array of "
						     "\"NAME=value\" strings");
		} else {
			json_object_set(config, key, v);
		}
	}
	_cleanup_(json_decrefp) json_t *img =
		json_pack("{s:s, s:s, s:s, s:O, s:{s:s, s:[s+]}, s:[{s:s, s:s}]}", "architecture",
			  host_arch(), "os", "linux", "created", created, "config", config,
			  "rootfs", "type", "layers", "diff_ids", "sha256:", diff_hex, "history",
			  "created", created, "comment", "Imported from -");
	if (!img)
		return shoal_err_set(l->err, ENOMEM, "out of memory");
	_cleanup_free_ char *text = json_dumps(img, JSON_COMPACT | JSON_SORT_KEYS);
	if (!text)
		return shoal_err_set(l->err, ENOMEM, "out of memory");
	sha256_hex(text, strlen(text), ret_hex);
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/config.json", l->stage);
	int r = write_file_atomic(path, text, strlen(text), 0644);
	if (r < 0)
		return shoal_err_errno(l->err, r, "writing %s", path);
	return 0;
}

static int copy_fd_to(struct load *l, int fd, const char *path)
{
	_cleanup_close_ int out = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (out < 0)
		return shoal_err_errno(l->err, errno, "creating %s", path);
	static __thread char buf[65536];
	for (;;) {
		ssize_t k = read(fd, buf, sizeof(buf));
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return shoal_err_errno(l->err, errno, "reading the tarball");
		if (k == 0)
			return 0;
		int r = write_all(out, buf, (size_t)k);
		if (r < 0)
			return shoal_err_errno(l->err, r, "writing %s", path);
	}
}

static int import_run(struct load *l, int fd, const char *ref, json_t *overrides,
		      json_t **ret_loaded)
{
	struct image_plan *p = plan_new(l);
	if (!p)
		return -l->err->code;
	if (ref && *ref) {
		int r = plan_add_tag(l, p, ref, "import");
		if (r < 0)
			return r;
	}
	int r = image_store_stage_new(l->s, &l->stage, l->err);
	if (r < 0)
		return r;
	p->n_layers = 1;
	p->chain = calloc(1, sizeof(*p->chain));
	p->diff = calloc(1, sizeof(*p->diff));
	p->layer_paths = calloc(2, sizeof(char *));
	if (!p->chain || !p->diff || !p->layer_paths ||
	    asprintf(&p->layer_paths[0], "%s/rootfs.tar", l->stage) < 0 ||
	    asprintf(&p->config_path, "%s/config.json", l->stage) < 0)
		return shoal_err_set(l->err, ENOMEM, "out of memory");
	r = copy_fd_to(l, fd, p->layer_paths[0]);
	if (r < 0)
		return r;
	r = image_stream_digest(p->layer_paths[0], p->diff[0], &p->size, l->err);
	if (r < 0)
		return shoal_err_wrap(l->err, "root file system tarball");
	memcpy(p->chain[0], p->diff[0], 65);
	r = import_config(l, p->diff[0], overrides, p->config_hex);
	if (r < 0)
		return r;
	p->created = now_ns() / 1000000000;
	r = unpack_layers(l);
	if (r < 0)
		return r;
	return image_store_commit(l->s, l->plans, l->n_plans, l->stage, l->warnings, ret_loaded,
				  l->err);
}

int image_store_import(struct image_store *s, int fd, const char *ref, json_t *config_overrides,
		       char **ret_id, struct shoal_err *err)
{
	struct load l = {
		.s = s,
		.err = err,
	};
	_cleanup_(json_decrefp) json_t *loaded = NULL;
	int r = import_run(&l, fd, ref, config_overrides, &loaded);
	char *id = NULL;
	if (r >= 0 && asprintf(&id, "sha256:%s", l.plans[0].config_hex) < 0)
		r = shoal_err_set(err, ENOMEM, "out of memory");
	load_done(&l);
	if (r < 0)
		return shoal_err_wrap(err, "importing image");
	*ret_id = id;
	return 0;
}
