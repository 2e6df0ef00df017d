/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* The pure pieces of a registry pull (image-pull-parse.c): manifests, indexes,
 * platform choice, WWW-Authenticate challenges, X-Registry-Auth, digests. No
 * I/O, so they are unit-tested offline. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"

#define MT_DOCKER_MANIFEST_V2 "application/vnd.docker.distribution.manifest.v2+json"
#define MT_DOCKER_LIST_V2     "application/vnd.docker.distribution.manifest.list.v2+json"
#define MT_OCI_MANIFEST_V1    "application/vnd.oci.image.manifest.v1+json"
#define MT_OCI_INDEX_V1	      "application/vnd.oci.image.index.v1+json"
/* What a manifest GET accepts, in Docker's order of preference. */
#define PULL_ACCEPT_MANIFESTS                                                           \
	"Accept: " MT_DOCKER_MANIFEST_V2 ", " MT_DOCKER_LIST_V2 ", " MT_OCI_MANIFEST_V1 \
	", " MT_OCI_INDEX_V1

/* Entries of one manifest list / index we look at. */
#define PULL_MAX_INDEX_ENTRIES 1024

enum pull_compression { PULL_LAYER_PLAIN, PULL_LAYER_GZIP, PULL_LAYER_ZSTD };

struct pull_desc {
	char hex[65]; /* sha256 */
	uint64_t size;
	enum pull_compression compression; /* layers only */
};

enum pull_manifest_kind { PULL_MANIFEST_IMAGE, PULL_MANIFEST_INDEX };

struct pull_manifest {
	enum pull_manifest_kind kind;
	/* PULL_MANIFEST_INDEX: the entry chosen for the platform */
	struct pull_desc chosen;
	char chosen_type[128];
	/* PULL_MANIFEST_IMAGE */
	struct pull_desc config;
	struct pull_desc *layers;
	size_t n_layers;
};
void pull_manifest_done(struct pull_manifest *m);

/* Parses a manifest or index body. content_type is the response's (may be NULL);
 * the body's own mediaType wins when both are there and they must agree. An
 * index picks os/arch (a variant-less entry); without one the error lists the
 * platforms there are. max_layers bounds the layer count. */
int pull_manifest_parse(const char *body, size_t len, const char *content_type, const char *os,
			const char *arch, size_t max_layers, struct pull_manifest *ret,
			struct shoal_err *err);

/* "sha256:<64 hex>" -> hex; -EINVAL for anything else (other algorithms too). */
int pull_digest_hex(const char *digest, char ret_hex[65]);
/* Checks that data hashes to hex; -EBADMSG with a message naming what. */
int pull_digest_check(const char *what, const char *hex, const void *data, size_t len,
		      struct shoal_err *err);

/* One WWW-Authenticate challenge (the first Bearer one, else the first Basic). */
enum pull_auth_scheme { PULL_AUTH_NONE, PULL_AUTH_BASIC, PULL_AUTH_BEARER };
struct pull_challenge {
	enum pull_auth_scheme scheme;
	char *realm, *service, *scope;
};
int pull_challenge_parse(const char *header, struct pull_challenge *ret);
void pull_challenge_done(struct pull_challenge *c);

/* Docker's X-Registry-Auth: base64url (padded or not, standard alphabet too) of
 * {"username", "password", "serveraddress"}. An empty header or "{}" gives no
 * credentials (all NULL). -EINVAL with a message for anything malformed. */
struct pull_creds {
	char *username, *password, *server;
};
int pull_creds_parse(const char *header, struct pull_creds *ret, struct shoal_err *err);
void pull_creds_done(struct pull_creds *c);
/* The registry host an address names: "https://index.docker.io/v1/" -> "docker.io",
 * "http://127.0.0.1:5000/" -> "127.0.0.1:5000". */
int pull_server_host(const char *address, char **ret);

/* Whether host ("name[:port]") is in the list of insecure registries, whose
 * entries are "name" (any port) or "name:port". */
bool pull_host_insecure(const char *host, char *const *insecure);
