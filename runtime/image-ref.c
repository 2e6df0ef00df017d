// SPDX-License-Identifier: Apache-2.0
/* Image references as Docker's distribution/reference package parses them:
 *   reference := name [ ":" tag ] [ "@" digest ]
 *   name      := [ domain "/" ] path-component ( "/" path-component )*
 * The domain is only a domain when the first component contains "." or ":" or
 * is "localhost"; otherwise the name lives on docker.io (and single-component
 * names under docker.io/library). */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/cleanup.h"
#include "lib/util.h"
#include "runtime/image-internal.h"
#include "runtime/image.h"

#define REF_MAX_NAME 255
#define REF_MAX_TAG  128

static bool is_alnum_lower(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* path-component := [a-z0-9]+ ( separator [a-z0-9]+ )*, separator := [_.] | "__" | "-"+ */
static bool valid_path_component(const char *s, size_t n)
{
	size_t i = 0;
	if (n == 0 || !is_alnum_lower(s[0]))
		return false;
	while (i < n) {
		while (i < n && is_alnum_lower(s[i]))
			i++;
		if (i == n)
			return true;
		/* a separator, which must be followed by an alphanumeric */
		if (s[i] == '.') {
			i++;
		} else if (s[i] == '_') {
			i++;
			if (i < n && s[i] == '_')
				i++;
		} else if (s[i] == '-') {
			while (i < n && s[i] == '-')
				i++;
		} else {
			return false;
		}
		if (i == n || !is_alnum_lower(s[i]))
			return false;
	}
	return true;
}

/* domain-component := [a-zA-Z0-9] | [a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9] */
static bool valid_domain_component(const char *s, size_t n)
{
	if (n == 0 || !isalnum((unsigned char)s[0]) || !isalnum((unsigned char)s[n - 1]))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '-')
			return false;
	return true;
}

/* domain := domain-component ( "." domain-component )* [ ":" [0-9]+ ] */
static bool valid_domain(const char *s, size_t n)
{
	const char *colon = memchr(s, ':', n);
	size_t host_len = colon ? (size_t)(colon - s) : n;
	if (colon) {
		size_t plen = n - host_len - 1;
		if (plen == 0)
			return false;
		for (size_t i = 0; i < plen; i++)
			if (!isdigit((unsigned char)colon[1 + i]))
				return false;
	}
	size_t start = 0;
	for (size_t i = 0; i <= host_len; i++) {
		if (i == host_len || s[i] == '.') {
			if (!valid_domain_component(s + start, i - start))
				return false;
			start = i + 1;
		}
	}
	return true;
}

/* tag := [\w][\w.-]{0,127} */
static bool valid_tag(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > REF_MAX_TAG)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		bool word = isalnum((unsigned char)c) || c == '_';
		if (!word && (i == 0 || (c != '.' && c != '-')))
			return false;
	}
	return true;
}

bool image_is_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

/* digest := algorithm ":" encoded; only sha256 (64 lowercase hex) is accepted, as
 * Docker does when it validates the digest. */
static bool valid_digest(const char *s)
{
	if (!str_has_prefix(s, "sha256:"))
		return false;
	s += strlen("sha256:");
	return strlen(s) == 64 && image_is_hex(s, 64);
}

int image_ref_parse(const char *ref, struct image_ref *ret)
{
	if (!ref || !*ref || strlen(ref) > REF_MAX_NAME + REF_MAX_TAG + 80)
		return -EINVAL;
	_cleanup_free_ char *buf = strdup(ref);
	if (!buf)
		return -ENOMEM;

	char *digest = strchr(buf, '@');
	if (digest) {
		*digest++ = '\0';
		if (!valid_digest(digest))
			return -EINVAL;
	}
	char *tag = NULL;
	char *last_slash = strrchr(buf, '/');
	char *colon = strrchr(last_slash ? last_slash : buf, ':');
	if (colon) {
		*colon = '\0';
		tag = colon + 1;
		if (!valid_tag(tag))
			return -EINVAL;
	}
	char *name = buf;
	size_t name_len = strlen(name);
	if (name_len == 0)
		return -EINVAL;
	/* Docker refuses a bare 64-hex name: it would be confused with an image id. */
	if (name_len == 64 && image_is_hex(name, 64))
		return -EINVAL;

	const char *domain = "docker.io";
	char *remainder = name;
	char *slash = strchr(name, '/');
	if (slash) {
		size_t dlen = (size_t)(slash - name);
		bool has_upper = false;
		for (size_t i = 0; i < dlen; i++)
			if (isupper((unsigned char)name[i]))
				has_upper = true;
		bool is_domain = memchr(name, '.', dlen) || memchr(name, ':', dlen) ||
				 (dlen == 9 && strncmp(name, "localhost", 9) == 0) || has_upper;
		if (is_domain) {
			if (!valid_domain(name, dlen))
				return -EINVAL;
			*slash = '\0';
			domain = name;
			remainder = slash + 1;
		}
	}
	if (strcmp(domain, "index.docker.io") == 0)
		domain = "docker.io";

	/* every path component valid */
	size_t start = 0, rlen = strlen(remainder);
	for (size_t i = 0; i <= rlen; i++) {
		if (i == rlen || remainder[i] == '/') {
			if (!valid_path_component(remainder + start, i - start))
				return -EINVAL;
			start = i + 1;
		}
	}

	bool library = strcmp(domain, "docker.io") == 0 && !strchr(remainder, '/');
	char *repo = NULL;
	if (asprintf(&repo, "%s/%s%s", domain, library ? "library/" : "", remainder) < 0)
		return -ENOMEM;
	if (strlen(repo) > REF_MAX_NAME) {
		free(repo);
		return -EINVAL;
	}
	ret->repo = repo;
	ret->tag = tag ? strdup(tag) : NULL;
	ret->digest = digest ? strdup(digest) : NULL;
	if ((tag && !ret->tag) || (digest && !ret->digest)) {
		image_ref_done(ret);
		return -ENOMEM;
	}
	return 0;
}

void image_ref_done(struct image_ref *r)
{
	free(r->repo);
	free(r->tag);
	free(r->digest);
	r->repo = r->tag = r->digest = NULL;
}

int image_ref_normalize(const char *ref, char **ret)
{
	struct image_ref r = {};
	int k = image_ref_parse(ref, &r);
	if (k < 0)
		return k;
	char *out = NULL;
	if (r.digest)
		k = asprintf(&out, "%s%s%s@%s", r.repo, r.tag ? ":" : "", r.tag ? r.tag : "",
			     r.digest);
	else
		k = asprintf(&out, "%s:%s", r.repo, r.tag ? r.tag : "latest");
	image_ref_done(&r);
	if (k < 0)
		return -ENOMEM;
	*ret = out;
	return 0;
}

int image_ref_familiar(const char *normalized, char **ret)
{
	if (!normalized)
		return -EINVAL;
	const char *s = normalized;
	if (str_has_prefix(s, "docker.io/")) {
		s += strlen("docker.io/");
		if (str_has_prefix(s, "library/")) {
			const char *rest = s + strlen("library/");
			/* only when what follows is a single component */
			size_t n = strcspn(rest, ":@");
			if (!memchr(rest, '/', n))
				s = rest;
		}
	}
	char *out = strdup(s);
	if (!out)
		return -ENOMEM;
	*ret = out;
	return 0;
}
