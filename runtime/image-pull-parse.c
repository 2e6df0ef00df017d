// SPDX-License-Identifier: Apache-2.0
/* Registry documents and headers, as the distribution spec and Docker define
 * them: image manifests (Docker schema 2, OCI), manifest lists and OCI indexes,
 * WWW-Authenticate challenges (RFC 7235), X-Registry-Auth. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "lib/cleanup.h"
#include "lib/util.h"
#include "runtime/image-internal.h"
#include "runtime/image-pull-internal.h"

#define MT_DOCKER_SCHEMA1	 "application/vnd.docker.distribution.manifest.v1+json"
#define MT_DOCKER_SCHEMA1_SIGNED "application/vnd.docker.distribution.manifest.v1+prettyjws"
#define MT_DOCKER_CONFIG	 "application/vnd.docker.container.image.v1+json"
#define MT_OCI_CONFIG		 "application/vnd.oci.image.config.v1+json"

void pull_manifest_done(struct pull_manifest *m)
{
	free(m->layers);
	memset(m, 0, sizeof(*m));
}

int pull_digest_hex(const char *digest, char ret_hex[65])
{
	if (!digest || !str_has_prefix(digest, "sha256:") || strlen(digest) != 71 ||
	    !image_is_hex(digest + 7, 64))
		return -EINVAL;
	memcpy(ret_hex, digest + 7, 65);
	return 0;
}

int pull_digest_check(const char *what, const char *hex, const void *data, size_t len,
		      struct shoal_err *err)
{
	char got[65];
	sha256_hex(data, len, got);
	if (strcmp(got, hex) != 0)
		return shoal_err_set(err, EBADMSG,
				     "%s: digest mismatch: expected sha256:%s, got sha256:%s", what,
				     hex, got);
	return 0;
}

/* "application/json; charset=utf-8" -> "application/json" */
static void media_type_base(const char *in, char *out, size_t size)
{
	size_t n = in ? strcspn(in, ";") : 0;
	while (n > 0 && isspace((unsigned char)in[n - 1]))
		n--;
	if (n >= size)
		n = size - 1;
	if (n)
		memcpy(out, in, n);
	out[n] = '\0';
}

static int desc_parse(json_t *d, const char *what, struct pull_desc *ret, struct shoal_err *err)
{
	if (!json_is_object(d))
		return shoal_err_set(err, EBADMSG, "%s: not a descriptor object", what);
	const char *digest = json_string_value(json_object_get(d, "digest"));
	if (!digest)
		return shoal_err_set(err, EBADMSG, "%s: descriptor without a digest", what);
	if (pull_digest_hex(digest, ret->hex) < 0)
		return shoal_err_set(err, EBADMSG, "%s: unsupported digest \"%.80s\" (sha256 only)",
				     what, digest);
	json_t *size = json_object_get(d, "size");
	if (!json_is_integer(size) || json_integer_value(size) < 0)
		return shoal_err_set(err, EBADMSG, "%s: descriptor without a valid size", what);
	ret->size = (uint64_t)json_integer_value(size);
	if (json_array_size(json_object_get(d, "urls")) > 0)
		return shoal_err_set(err, EBADMSG,
				     "%s: a foreign layer (to be fetched from other URLs) is not "
				     "supported",
				     what);
	return 0;
}

static int layer_compression(const char *mt, const char *what, enum pull_compression *ret,
			     struct shoal_err *err)
{
	static const struct {
		const char *mt;
		enum pull_compression c;
	} known[] = {
		{"application/vnd.docker.image.rootfs.diff.tar.gzip", PULL_LAYER_GZIP},
		{"application/vnd.oci.image.layer.v1.tar", PULL_LAYER_PLAIN},
		{"application/vnd.oci.image.layer.v1.tar+gzip", PULL_LAYER_GZIP},
		{"application/vnd.oci.image.layer.v1.tar+zstd", PULL_LAYER_ZSTD},
	};
	if (!mt)
		return shoal_err_set(err, EBADMSG, "%s: layer without a mediaType", what);
	for (size_t i = 0; i < ARRAY_SIZE(known); i++)
		if (strcmp(mt, known[i].mt) == 0) {
			*ret = known[i].c;
			return 0;
		}
	if (strstr(mt, "foreign") || strstr(mt, "nondistributable"))
		return shoal_err_set(err, EBADMSG,
				     "%s: non-distributable layer (%s) is not supported: its "
				     "content is not in the registry",
				     what, mt);
	return shoal_err_set(err, EBADMSG, "%s: unsupported layer media type \"%.120s\"", what, mt);
}

static int image_manifest(json_t *m, size_t max_layers, struct pull_manifest *ret,
			  struct shoal_err *err)
{
	json_t *config = json_object_get(m, "config");
	json_t *layers = json_object_get(m, "layers");
	if (!json_is_object(config) || !json_is_array(layers))
		return shoal_err_set(err, EBADMSG, "manifest: no config or layers");
	const char *cmt = json_string_value(json_object_get(config, "mediaType"));
	if (!cmt || (strcmp(cmt, MT_DOCKER_CONFIG) != 0 && strcmp(cmt, MT_OCI_CONFIG) != 0))
		return shoal_err_set(
			err, EBADMSG,
			"manifest: not a container image (config media type \"%.120s\")",
			cmt ? cmt : "");
	int r = desc_parse(config, "manifest config", &ret->config, err);
	if (r < 0)
		return r;
	size_t n = json_array_size(layers);
	if (n == 0)
		return shoal_err_set(err, EBADMSG, "manifest: image has no layers");
	if (n > max_layers)
		return shoal_err_set(err, E2BIG, "manifest: too many layers: %zu (at most %zu)", n,
				     max_layers);
	ret->layers = calloc(n, sizeof(*ret->layers));
	if (!ret->layers)
		return shoal_err_set(err, ENOMEM, "out of memory");
	ret->n_layers = n;
	for (size_t i = 0; i < n; i++) {
		char what[48];
		snprintf(what, sizeof(what), "manifest layer %zu", i);
		json_t *d = json_array_get(layers, i);
		r = desc_parse(d, what, &ret->layers[i], err);
		if (r < 0)
			return r;
		r = layer_compression(json_string_value(json_object_get(d, "mediaType")), what,
				      &ret->layers[i].compression, err);
		if (r < 0)
			return r;
	}
	ret->kind = PULL_MANIFEST_IMAGE;
	return 0;
}

static int index_pick(json_t *m, const char *os, const char *arch, struct pull_manifest *ret,
		      struct shoal_err *err)
{
	json_t *manifests = json_object_get(m, "manifests");
	if (!json_is_array(manifests))
		return shoal_err_set(err, EBADMSG, "manifest list: no manifests array");
	size_t n = json_array_size(manifests);
	if (n > PULL_MAX_INDEX_ENTRIES)
		return shoal_err_set(err, E2BIG, "manifest list: %zu entries (at most %d)", n,
				     PULL_MAX_INDEX_ENTRIES);
	char seen[512] = "";
	size_t used = 0;
	for (size_t i = 0; i < n; i++) {
		json_t *d = json_array_get(manifests, i);
		json_t *plat = json_object_get(d, "platform");
		const char *pos = json_string_value(json_object_get(plat, "os"));
		const char *parch = json_string_value(json_object_get(plat, "architecture"));
		const char *var = json_string_value(json_object_get(plat, "variant"));
		const char *mt = json_string_value(json_object_get(d, "mediaType"));
		if (!pos || !parch)
			continue;
		if (strcmp(pos, os) == 0 && strcmp(parch, arch) == 0 && (!var || !*var) && mt &&
		    (strcmp(mt, MT_DOCKER_MANIFEST_V2) == 0 ||
		     strcmp(mt, MT_OCI_MANIFEST_V1) == 0)) {
			char what[48];
			snprintf(what, sizeof(what), "manifest list entry %zu", i);
			int r = desc_parse(d, what, &ret->chosen, err);
			if (r < 0)
				return r;
			snprintf(ret->chosen_type, sizeof(ret->chosen_type), "%s", mt);
			ret->kind = PULL_MANIFEST_INDEX;
			return 0;
		}
		if (used < sizeof(seen) - 1) {
			int k = snprintf(seen + used, sizeof(seen) - used, "%s%s/%s%s%s",
					 used ? ", " : "", pos, parch, var && *var ? "/" : "",
					 var ? var : "");
			if (k > 0)
				used = used + (size_t)k < sizeof(seen) ? used + (size_t)k
								       : sizeof(seen) - 1;
		}
	}
	return shoal_err_set(err, ENOENT,
			     "no matching manifest for %s/%s in the manifest list (it has: %s)", os,
			     arch, used ? seen : "no platforms");
}

int pull_manifest_parse(const char *body, size_t len, const char *content_type, const char *os,
			const char *arch, size_t max_layers, struct pull_manifest *ret,
			struct shoal_err *err)
{
	memset(ret, 0, sizeof(*ret));
	json_error_t je;
	_cleanup_(json_decrefp) json_t *m = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
	if (!m)
		return shoal_err_set(err, EBADMSG, "malformed manifest JSON: line %d: %s", je.line,
				     je.text);
	if (!json_is_object(m))
		return shoal_err_set(err, EBADMSG, "manifest is not a JSON object");
	char ctype[128];
	media_type_base(content_type, ctype, sizeof(ctype));
	const char *mt = json_string_value(json_object_get(m, "mediaType"));
	json_int_t version = json_integer_value(json_object_get(m, "schemaVersion"));
	if (strcmp(ctype, MT_DOCKER_SCHEMA1) == 0 || strcmp(ctype, MT_DOCKER_SCHEMA1_SIGNED) == 0 ||
	    version == 1)
		return shoal_err_set(err, EBADMSG,
				     "image manifest schema 1 is not supported (deprecated): push "
				     "the image again with a current client");
	if (version != 2)
		return shoal_err_set(err, EBADMSG, "manifest: unsupported schemaVersion %lld",
				     (long long)version);
	bool generic = !*ctype || strcmp(ctype, "application/json") == 0 ||
		       strcmp(ctype, "application/octet-stream") == 0 ||
		       strcmp(ctype, "text/plain") == 0;
	if (mt && !generic && strcmp(mt, ctype) != 0)
		return shoal_err_set(err, EBADMSG,
				     "manifest: mediaType \"%.100s\" differs from the response's "
				     "Content-Type \"%.100s\"",
				     mt, ctype);
	if (!mt && !generic)
		mt = ctype;
	if (!mt) /* OCI allows an absent mediaType: the shape tells */
		mt = json_object_get(m, "manifests") ? MT_OCI_INDEX_V1 : MT_OCI_MANIFEST_V1;
	int r;
	if (strcmp(mt, MT_DOCKER_LIST_V2) == 0 || strcmp(mt, MT_OCI_INDEX_V1) == 0)
		r = index_pick(m, os, arch, ret, err);
	else if (strcmp(mt, MT_DOCKER_MANIFEST_V2) == 0 || strcmp(mt, MT_OCI_MANIFEST_V1) == 0)
		r = image_manifest(m, max_layers, ret, err);
	else
		r = shoal_err_set(err, EBADMSG, "unsupported manifest media type \"%.120s\"", mt);
	if (r < 0)
		pull_manifest_done(ret);
	return r;
}

/* ---- WWW-Authenticate ---- */

void pull_challenge_done(struct pull_challenge *c)
{
	free(c->realm);
	free(c->service);
	free(c->scope);
	memset(c, 0, sizeof(*c));
}

static bool is_token_char(char c)
{
	return c && (isalnum((unsigned char)c) || strchr("!#$%&'*+-.^_`|~", c));
}

static const char *skip_ws(const char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

/* Reads a token or quoted-string value into a new string; *pp moves past it. */
static char *read_value(const char **pp)
{
	const char *p = *pp;
	size_t cap = strlen(p) + 1, n = 0;
	char *out = malloc(cap);
	if (!out)
		return NULL;
	if (*p == '"') {
		p++;
		while (*p && *p != '"') {
			if (*p == '\\' && p[1])
				p++;
			out[n++] = *p++;
		}
		if (*p != '"') {
			free(out);
			return NULL;
		}
		p++;
	} else {
		while (is_token_char(*p) || *p == '/' || *p == ':' || *p == '=')
			out[n++] = *p++;
	}
	out[n] = '\0';
	*pp = p;
	return out;
}

int pull_challenge_parse(const char *header, struct pull_challenge *ret)
{
	memset(ret, 0, sizeof(*ret));
	if (!header)
		return -EINVAL;
	struct pull_challenge cur = {};
	bool have_basic = false;
	struct pull_challenge basic = {};
	const char *p = skip_ws(header);
	while (*p) {
		/* a scheme */
		const char *s = p;
		while (is_token_char(*p))
			p++;
		size_t slen = (size_t)(p - s);
		if (slen == 0) {
			pull_challenge_done(&cur);
			pull_challenge_done(&basic);
			return -EINVAL;
		}
		if (slen == 6 && strncasecmp(s, "Bearer", 6) == 0)
			cur.scheme = PULL_AUTH_BEARER;
		else if (slen == 5 && strncasecmp(s, "Basic", 5) == 0)
			cur.scheme = PULL_AUTH_BASIC;
		else
			cur.scheme = PULL_AUTH_NONE;
		/* its parameters: name=value, comma separated, until a name that
		 * has no "=" after it (the next scheme) */
		p = skip_ws(p);
		for (;;) {
			const char *n = p;
			while (is_token_char(*p))
				p++;
			size_t nlen = (size_t)(p - n);
			const char *after = skip_ws(p);
			if (nlen == 0 || *after != '=') {
				p = n;
				break;
			}
			p = skip_ws(after + 1);
			char *v = read_value(&p);
			if (!v) {
				pull_challenge_done(&cur);
				pull_challenge_done(&basic);
				return -EINVAL;
			}
			char **dst = NULL;
			if (nlen == 5 && strncasecmp(n, "realm", 5) == 0)
				dst = &cur.realm;
			else if (nlen == 7 && strncasecmp(n, "service", 7) == 0)
				dst = &cur.service;
			else if (nlen == 5 && strncasecmp(n, "scope", 5) == 0)
				dst = &cur.scope;
			if (dst) {
				free(*dst);
				*dst = v;
			} else {
				free(v);
			}
			p = skip_ws(p);
			if (*p != ',')
				break;
			p = skip_ws(p + 1);
		}
		if (cur.scheme == PULL_AUTH_BEARER) {
			pull_challenge_done(&basic);
			*ret = cur;
			return 0;
		}
		if (cur.scheme == PULL_AUTH_BASIC && !have_basic) {
			basic = cur;
			have_basic = true;
		} else {
			pull_challenge_done(&cur);
		}
		memset(&cur, 0, sizeof(cur));
		p = skip_ws(p);
		if (*p == ',')
			p = skip_ws(p + 1);
	}
	if (!have_basic)
		return -EINVAL;
	*ret = basic;
	return 0;
}

/* ---- credentials ---- */

void pull_creds_done(struct pull_creds *c)
{
	free(c->username);
	if (c->password)
		explicit_bzero(c->password, strlen(c->password));
	free(c->password);
	free(c->server);
	memset(c, 0, sizeof(*c));
}

#define PULL_MAX_AUTH_HEADER 8192

int pull_creds_parse(const char *header, struct pull_creds *ret, struct shoal_err *err)
{
	memset(ret, 0, sizeof(*ret));
	if (!header || !*header)
		return 0;
	size_t n = strlen(header);
	if (n > PULL_MAX_AUTH_HEADER)
		return shoal_err_set(err, EINVAL, "X-Registry-Auth is longer than %d bytes",
				     PULL_MAX_AUTH_HEADER);
	/* base64url without padding -> standard base64 with padding */
	_cleanup_free_ char *b64 = malloc(n + 4);
	_cleanup_free_ unsigned char *raw = malloc(n + 4);
	if (!b64 || !raw)
		return shoal_err_set(err, ENOMEM, "out of memory");
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		char c = header[i];
		if (c == '-')
			c = '+';
		else if (c == '_')
			c = '/';
		else if (c == '=')
			break;
		else if (!isalnum((unsigned char)c) && c != '+' && c != '/')
			return shoal_err_set(err, EINVAL, "X-Registry-Auth is not base64");
		b64[k++] = c;
	}
	if (k % 4 == 1)
		return shoal_err_set(err, EINVAL, "X-Registry-Auth is not base64");
	size_t pad = (4 - k % 4) % 4;
	for (size_t i = 0; i < pad; i++)
		b64[k++] = '=';
	b64[k] = '\0';
	int len = EVP_DecodeBlock(raw, (unsigned char *)b64, (int)k);
	if (len < 0)
		return shoal_err_set(err, EINVAL, "X-Registry-Auth is not base64");
	len -= (int)pad;
	json_error_t je;
	_cleanup_(json_decrefp) json_t *j = json_loadb((char *)raw, (size_t)len, 0, &je);
	explicit_bzero(raw, n + 4);
	if (!json_is_object(j))
		return shoal_err_set(err, EINVAL,
				     "X-Registry-Auth is not a base64url JSON object "
				     "{\"username\", \"password\", \"serveraddress\"}");
	const char *user = json_string_value(json_object_get(j, "username"));
	const char *pass = json_string_value(json_object_get(j, "password"));
	const char *server = json_string_value(json_object_get(j, "serveraddress"));
	const char *itok = json_string_value(json_object_get(j, "identitytoken"));
	if (itok && *itok && !(pass && *pass))
		return shoal_err_set(err, EINVAL,
				     "X-Registry-Auth: identity tokens are not supported; pass a "
				     "username and password");
	if ((user && *user) != (pass && *pass))
		return shoal_err_set(err, EINVAL,
				     "X-Registry-Auth: a username needs a password and a password "
				     "a username");
	if (user && *user) {
		if (strchr(user, ':'))
			return shoal_err_set(err, EINVAL,
					     "X-Registry-Auth: a username cannot contain ':'");
		ret->username = strdup(user);
		ret->password = strdup(pass);
		if (!ret->username || !ret->password) {
			pull_creds_done(ret);
			return shoal_err_set(err, ENOMEM, "out of memory");
		}
	}
	if (server && *server && pull_server_host(server, &ret->server) < 0) {
		pull_creds_done(ret);
		return shoal_err_set(err, EINVAL, "X-Registry-Auth: bad serveraddress \"%.100s\"",
				     server);
	}
	return 0;
}

int pull_server_host(const char *address, char **ret)
{
	const char *s = address;
	if (str_has_prefix(s, "https://"))
		s += 8;
	else if (str_has_prefix(s, "http://"))
		s += 7;
	size_t n = strcspn(s, "/");
	if (n == 0)
		return -EINVAL;
	char *h = strndup(s, n);
	if (!h)
		return -ENOMEM;
	for (char *c = h; *c; c++)
		*c = (char)tolower((unsigned char)*c);
	if (strcmp(h, "index.docker.io") == 0 || strcmp(h, "registry-1.docker.io") == 0 ||
	    strcmp(h, "registry.hub.docker.com") == 0) {
		free(h);
		h = strdup("docker.io");
		if (!h)
			return -ENOMEM;
	}
	*ret = h;
	return 0;
}

bool pull_host_insecure(const char *host, char *const *insecure)
{
	size_t hlen = strcspn(host, ":");
	for (; insecure && *insecure; insecure++) {
		const char *e = *insecure;
		if (strcasecmp(e, host) == 0)
			return true;
		/* a bare name covers every port */
		if (!strchr(e, ':') && strlen(e) == hlen && strncasecmp(e, host, hlen) == 0)
			return true;
	}
	return false;
}
