// SPDX-License-Identifier: Apache-2.0
/* The pure parts of a registry pull: manifests and their refusals, manifest
 * lists and the platform choice, WWW-Authenticate challenges, X-Registry-Auth,
 * digests and the insecure-registry list. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/cleanup.h"
#include "lib/util.h"
#include "runtime/image-pull-internal.h"

#define H1 "1111111111111111111111111111111111111111111111111111111111111111"
#define H2 "2222222222222222222222222222222222222222222222222222222222222222"
#define H3 "3333333333333333333333333333333333333333333333333333333333333333"
#define H4 "4444444444444444444444444444444444444444444444444444444444444444"

#define CONFIG_DOCKER                                                                      \
	"\"config\": {\"mediaType\": \"application/vnd.docker.container.image.v1+json\", " \
	"\"size\": 1469, \"digest\": \"sha256:" H1 "\"}"
#define CONFIG_OCI                                                                   \
	"\"config\": {\"mediaType\": \"application/vnd.oci.image.config.v1+json\", " \
	"\"size\": 10, \"digest\": \"sha256:" H1 "\"}"

static int parse(const char *body, const char *ctype, struct pull_manifest *m,
		 struct shoal_err *err)
{
	shoal_err_clear(err);
	return pull_manifest_parse(body, strlen(body), ctype, "linux", "amd64", 127, m, err);
}

static void test_docker_manifest(void **state)
{
	const char *body =
		"{\"schemaVersion\": 2, \"mediaType\": "
		"\"application/vnd.docker.distribution.manifest.v2+json\", " CONFIG_DOCKER
		", \"layers\": ["
		"{\"mediaType\": \"application/vnd.docker.image.rootfs.diff.tar.gzip\", \"size\": "
		"2811478, \"digest\": \"sha256:" H2 "\"},"
		"{\"mediaType\": \"application/vnd.docker.image.rootfs.diff.tar.gzip\", \"size\": "
		"32, \"digest\": \"sha256:" H3 "\"}]}";
	struct pull_manifest m;
	struct shoal_err err = {};
	assert_int_equal(
		parse(body, "application/vnd.docker.distribution.manifest.v2+json", &m, &err), 0);
	assert_int_equal(m.kind, PULL_MANIFEST_IMAGE);
	assert_string_equal(m.config.hex, H1);
	assert_int_equal(m.config.size, 1469);
	assert_int_equal(m.n_layers, 2);
	assert_string_equal(m.layers[0].hex, H2);
	assert_int_equal(m.layers[0].size, 2811478);
	assert_int_equal(m.layers[0].compression, PULL_LAYER_GZIP);
	assert_string_equal(m.layers[1].hex, H3);
	pull_manifest_done(&m);
	/* a Content-Type with parameters, or a generic one, is fine */
	assert_int_equal(parse(body,
			       "application/vnd.docker.distribution.manifest.v2+json; "
			       "charset=utf-8",
			       &m, &err),
			 0);
	pull_manifest_done(&m);
	assert_int_equal(parse(body, "application/json", &m, &err), 0);
	pull_manifest_done(&m);
	assert_int_equal(parse(body, NULL, &m, &err), 0);
	pull_manifest_done(&m);
	/* but a Content-Type that says something else is refused */
	assert_int_equal(parse(body, "application/vnd.oci.image.manifest.v1+json", &m, &err),
			 -EBADMSG);
	assert_non_null(strstr(err.msg, "differs from the response's Content-Type"));
}

static void test_oci_manifest(void **state)
{
	/* no mediaType at all: the shape and the Content-Type tell */
	const char *body =
		"{\"schemaVersion\": 2, " CONFIG_OCI ", \"layers\": ["
		"{\"mediaType\": \"application/vnd.oci.image.layer.v1.tar+zstd\", \"size\": 5, "
		"\"digest\": \"sha256:" H2 "\"},"
		"{\"mediaType\": \"application/vnd.oci.image.layer.v1.tar\", \"size\": 6, "
		"\"digest\": \"sha256:" H3 "\"},"
		"{\"mediaType\": \"application/vnd.oci.image.layer.v1.tar+gzip\", \"size\": 7, "
		"\"digest\": \"sha256:" H4 "\"}]}";
	struct pull_manifest m;
	struct shoal_err err = {};
	assert_int_equal(parse(body, NULL, &m, &err), 0);
	assert_int_equal(m.kind, PULL_MANIFEST_IMAGE);
	assert_int_equal(m.n_layers, 3);
	assert_int_equal(m.layers[0].compression, PULL_LAYER_ZSTD);
	assert_int_equal(m.layers[1].compression, PULL_LAYER_PLAIN);
	assert_int_equal(m.layers[2].compression, PULL_LAYER_GZIP);
	pull_manifest_done(&m);
	assert_int_equal(parse(body, "application/vnd.oci.image.manifest.v1+json", &m, &err), 0);
	pull_manifest_done(&m);
}

/* A one-layer manifest whose layer descriptor is `layer`. */
static int parse_layer(const char *layer, struct shoal_err *err)
{
	char body[2048];
	snprintf(body, sizeof(body),
		 "{\"schemaVersion\": 2, \"mediaType\": "
		 "\"application/vnd.oci.image.manifest.v1+json\", " CONFIG_OCI
		 ", \"layers\": [%s]}",
		 layer);
	struct pull_manifest m;
	int r = parse(body, NULL, &m, err);
	if (r == 0)
		pull_manifest_done(&m);
	return r;
}

static void test_manifest_refusals(void **state)
{
	struct shoal_err err = {};
	assert_int_equal(
		parse_layer("{\"mediaType\": "
			    "\"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip\", "
			    "\"size\": 1, \"digest\": \"sha256:" H2 "\"}",
			    &err),
		-EBADMSG);
	assert_non_null(strstr(err.msg, "non-distributable"));
	assert_int_equal(
		parse_layer("{\"mediaType\": "
			    "\"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip\", "
			    "\"size\": 1, \"digest\": \"sha256:" H2 "\"}",
			    &err),
		-EBADMSG);
	assert_non_null(strstr(err.msg, "non-distributable"));
	/* a layer elsewhere than in the registry */
	assert_int_equal(parse_layer("{\"mediaType\": "
				     "\"application/vnd.oci.image.layer.v1.tar+gzip\", \"size\": "
				     "1, \"digest\": \"sha256:" H2
				     "\", \"urls\": [\"https://example.com/l\"]}",
				     &err),
			 -EBADMSG);
	assert_non_null(strstr(err.msg, "foreign layer"));
	assert_int_equal(parse_layer("{\"mediaType\": \"application/x-tar+bzip2\", \"size\": 1, "
				     "\"digest\": \"sha256:" H2 "\"}",
				     &err),
			 -EBADMSG);
	assert_non_null(strstr(err.msg, "unsupported layer media type"));
	assert_int_equal(parse_layer("{\"mediaType\": "
				     "\"application/vnd.oci.image.layer.v1.tar\", \"size\": 1, "
				     "\"digest\": \"sha512:" H2 H2 "\"}",
				     &err),
			 -EBADMSG);
	assert_non_null(strstr(err.msg, "sha256 only"));
	assert_int_equal(parse_layer("{\"mediaType\": "
				     "\"application/vnd.oci.image.layer.v1.tar\", "
				     "\"digest\": \"sha256:" H2 "\"}",
				     &err),
			 -EBADMSG);
	assert_non_null(strstr(err.msg, "size"));
	assert_int_equal(parse_layer("{\"mediaType\": "
				     "\"application/vnd.oci.image.layer.v1.tar\", \"size\": 1, "
				     "\"digest\": \"sha256:ABC\"}",
				     &err),
			 -EBADMSG);

	struct pull_manifest m;
	/* schema 1 */
	assert_int_equal(parse("{\"schemaVersion\": 1, \"name\": \"x\", \"fsLayers\": []}",
			       "application/vnd.docker.distribution.manifest.v1+prettyjws", &m,
			       &err),
			 -EBADMSG);
	assert_non_null(strstr(err.msg, "schema 1"));
	/* not an image: a config of another kind (an artifact) */
	assert_int_equal(parse("{\"schemaVersion\": 2, \"config\": {\"mediaType\": "
			       "\"application/vnd.cncf.helm.config.v1+json\", \"size\": 1, "
			       "\"digest\": \"sha256:" H1 "\"}, \"layers\": []}",
			       NULL, &m, &err),
			 -EBADMSG);
	assert_non_null(strstr(err.msg, "not a container image"));
	/* no layers */
	assert_int_equal(
		parse("{\"schemaVersion\": 2, " CONFIG_OCI ", \"layers\": []}", NULL, &m, &err),
		-EBADMSG);
	/* an unknown manifest type, and JSON that is no JSON */
	assert_int_equal(
		parse("{\"schemaVersion\": 2, \"mediaType\": \"text/html\"}", NULL, &m, &err),
		-EBADMSG);
	assert_non_null(strstr(err.msg, "unsupported manifest media type"));
	assert_int_equal(parse("<html>", NULL, &m, &err), -EBADMSG);
	assert_non_null(strstr(err.msg, "malformed manifest JSON"));

	/* too many layers */
	char *big = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&big, &len);
	fprintf(f, "{\"schemaVersion\": 2, " CONFIG_OCI ", \"layers\": [");
	for (int i = 0; i < 128; i++)
		fprintf(f,
			"%s{\"mediaType\": \"application/vnd.oci.image.layer.v1.tar\", "
			"\"size\": 1, \"digest\": \"sha256:" H2 "\"}",
			i ? "," : "");
	fprintf(f, "]}");
	fclose(f);
	assert_int_equal(parse(big, NULL, &m, &err), -E2BIG);
	assert_non_null(strstr(err.msg, "too many layers: 128"));
	free(big);
}

#define ENTRY(digest, os, arch, variant_json)                                                  \
	"{\"mediaType\": \"application/vnd.docker.distribution.manifest.v2+json\", \"size\": " \
	"525, \"digest\": \"sha256:" digest "\", \"platform\": {\"architecture\": \"" arch     \
	"\", \"os\": \"" os "\"" variant_json "}}"

static void test_index_platform(void **state)
{
	const char *list =
		"{\"schemaVersion\": 2, \"mediaType\": "
		"\"application/vnd.docker.distribution.manifest.list.v2+json\", \"manifests\": "
		"[" ENTRY(H1, "linux", "arm64", ", \"variant\": \"v8\"") "," ENTRY(
			H2, "linux", "amd64",
			", \"variant\": \"v3\"") "," ENTRY(H3, "linux", "amd64",
							   "") "," ENTRY(H4, "windows", "amd64",
									 "") "]}";
	struct pull_manifest m;
	struct shoal_err err = {};
	assert_int_equal(parse(list, NULL, &m, &err), 0);
	assert_int_equal(m.kind, PULL_MANIFEST_INDEX);
	assert_string_equal(m.chosen.hex, H3); /* linux/amd64 without a variant */
	assert_int_equal(m.chosen.size, 525);
	assert_string_equal(m.chosen_type, MT_DOCKER_MANIFEST_V2);
	pull_manifest_done(&m);

	/* an OCI index with an attestation entry (unknown/unknown) and the image */
	const char *index =
		"{\"schemaVersion\": 2, \"mediaType\": \"application/vnd.oci.image.index.v1+json\", "
		"\"manifests\": ["
		"{\"mediaType\": \"application/vnd.oci.image.manifest.v1+json\", \"size\": 5, "
		"\"digest\": \"sha256:" H1 "\", \"platform\": {\"architecture\": \"unknown\", "
		"\"os\": \"unknown\"}},"
		"{\"mediaType\": \"application/vnd.oci.image.manifest.v1+json\", \"size\": 6, "
		"\"digest\": \"sha256:" H2 "\", \"platform\": {\"architecture\": \"amd64\", "
		"\"os\": \"linux\"}}]}";
	assert_int_equal(parse(index, "application/vnd.oci.image.index.v1+json", &m, &err), 0);
	assert_string_equal(m.chosen.hex, H2);
	assert_string_equal(m.chosen_type, MT_OCI_MANIFEST_V1);
	pull_manifest_done(&m);

	/* no variant-less linux/amd64 entry: refused, naming what there is */
	const char *other =
		"{\"schemaVersion\": 2, \"mediaType\": "
		"\"application/vnd.docker.distribution.manifest.list.v2+json\", \"manifests\": "
		"[" ENTRY(H1, "linux", "arm64", ", \"variant\": \"v8\"") "," ENTRY(
			H2, "linux", "amd64", ", \"variant\": \"v3\"") "," ENTRY(H4, "windows",
										 "amd64", "") "]}";
	assert_int_equal(parse(other, NULL, &m, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "no matching manifest for linux/amd64"));
	assert_non_null(strstr(err.msg, "linux/arm64/v8, linux/amd64/v3, windows/amd64"));

	/* an entry that is itself a list is not an image for the platform */
	const char *nested =
		"{\"schemaVersion\": 2, \"mediaType\": \"application/vnd.oci.image.index.v1+json\", "
		"\"manifests\": [{\"mediaType\": \"application/vnd.oci.image.index.v1+json\", "
		"\"size\": 5, \"digest\": \"sha256:" H1 "\", \"platform\": {\"architecture\": "
		"\"amd64\", \"os\": \"linux\"}}]}";
	assert_int_equal(parse(nested, NULL, &m, &err), -ENOENT);
	/* nor an empty one */
	assert_int_equal(parse("{\"schemaVersion\": 2, \"manifests\": []}", NULL, &m, &err),
			 -ENOENT);
	assert_non_null(strstr(err.msg, "no platforms"));
	/* a bad digest in the chosen entry */
	const char *bad =
		"{\"schemaVersion\": 2, \"manifests\": [{\"mediaType\": "
		"\"application/vnd.oci.image.manifest.v1+json\", \"size\": 5, \"digest\": "
		"\"md5:abc\", \"platform\": {\"architecture\": \"amd64\", \"os\": \"linux\"}}]}";
	assert_int_equal(parse(bad, NULL, &m, &err), -EBADMSG);
}

static void test_challenge(void **state)
{
	struct pull_challenge c;
	assert_int_equal(pull_challenge_parse("Bearer realm=\"https://auth.docker.io/token\","
					      "service=\"registry.docker.io\","
					      "scope=\"repository:library/busybox:pull\"",
					      &c),
			 0);
	assert_int_equal(c.scheme, PULL_AUTH_BEARER);
	assert_string_equal(c.realm, "https://auth.docker.io/token");
	assert_string_equal(c.service, "registry.docker.io");
	assert_string_equal(c.scope, "repository:library/busybox:pull");
	pull_challenge_done(&c);

	/* case, spaces, a comma and an escaped quote inside a quoted value, unknown params */
	assert_int_equal(pull_challenge_parse("bearer  realm = \"http://127.0.0.1:5002/token\" , "
					      "error=\"insufficient_scope\", "
					      "scope=\"repository:a/b:pull,push\", "
					      "service=\"x\\\"y\"",
					      &c),
			 0);
	assert_int_equal(c.scheme, PULL_AUTH_BEARER);
	assert_string_equal(c.realm, "http://127.0.0.1:5002/token");
	assert_string_equal(c.scope, "repository:a/b:pull,push");
	assert_string_equal(c.service, "x\"y");
	pull_challenge_done(&c);

	assert_int_equal(pull_challenge_parse("Basic realm=\"Registry Realm\"", &c), 0);
	assert_int_equal(c.scheme, PULL_AUTH_BASIC);
	assert_string_equal(c.realm, "Registry Realm");
	assert_null(c.service);
	pull_challenge_done(&c);

	/* several challenges: Bearer is preferred wherever it stands */
	assert_int_equal(pull_challenge_parse("Basic realm=\"r\", Bearer realm=\"https://t/x\", "
					      "service=s",
					      &c),
			 0);
	assert_int_equal(c.scheme, PULL_AUTH_BEARER);
	assert_string_equal(c.realm, "https://t/x");
	assert_string_equal(c.service, "s");
	pull_challenge_done(&c);
	assert_int_equal(pull_challenge_parse("Negotiate abc=, Basic realm=r", &c), 0);
	assert_int_equal(c.scheme, PULL_AUTH_BASIC);
	pull_challenge_done(&c);

	/* nothing usable */
	assert_int_equal(pull_challenge_parse("Negotiate", &c), -EINVAL);
	assert_int_equal(pull_challenge_parse("", &c), -EINVAL);
	assert_int_equal(pull_challenge_parse("Bearer realm=\"unterminated", &c), -EINVAL);
	assert_int_equal(pull_challenge_parse(NULL, &c), -EINVAL);
}

static void test_creds(void **state)
{
	struct pull_creds c;
	struct shoal_err err = {};
	/* {"username":"alice","password":"s3cr:t?","serveraddress":"127.0.0.1:5000"},
	 * base64url without padding */
	const char *url = "eyJ1c2VybmFtZSI6ImFsaWNlIiwicGFzc3dvcmQiOiJzM2NyOnQ_Iiwic2VydmVyYWRk"
			  "cmVzcyI6IjEyNy4wLjAuMTo1MDAwIn0";
	assert_int_equal(pull_creds_parse(url, &c, &err), 0);
	assert_string_equal(c.username, "alice");
	assert_string_equal(c.password, "s3cr:t?");
	assert_string_equal(c.server, "127.0.0.1:5000");
	pull_creds_done(&c);
	/* the same in standard base64, padded */
	const char *std = "eyJ1c2VybmFtZSI6ImFsaWNlIiwicGFzc3dvcmQiOiJzM2NyOnQ/Iiwic2VydmVyYWRk"
			  "cmVzcyI6IjEyNy4wLjAuMTo1MDAwIn0=";
	assert_int_equal(pull_creds_parse(std, &c, &err), 0);
	assert_string_equal(c.password, "s3cr:t?");
	pull_creds_done(&c);
	/* {"username":"u","password":"p","serveraddress":"https://index.docker.io/v1/"} */
	assert_int_equal(pull_creds_parse("eyJ1c2VybmFtZSI6InUiLCJwYXNzd29yZCI6InAiLCJzZXJ2ZXJh"
					  "ZGRyZXNzIjoiaHR0cHM6Ly9pbmRleC5kb2NrZXIuaW8vdjEvIn0",
					  &c, &err),
			 0);
	assert_string_equal(c.server, "docker.io");
	pull_creds_done(&c);

	/* nothing, or {} (what docker sends without credentials): anonymous */
	assert_int_equal(pull_creds_parse(NULL, &c, &err), 0);
	assert_null(c.username);
	assert_int_equal(pull_creds_parse("", &c, &err), 0);
	assert_int_equal(pull_creds_parse("e30", &c, &err), 0);
	assert_null(c.username);
	assert_null(c.password);
	assert_null(c.server);

	/* malformed */
	assert_int_equal(pull_creds_parse("not base64!", &c, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "not base64"));
	assert_int_equal(pull_creds_parse("bm90IGpzb24", &c, &err), -EINVAL); /* "not json" */
	assert_non_null(strstr(err.msg, "JSON object"));
	/* {"username":"alice"} */
	assert_int_equal(pull_creds_parse("eyJ1c2VybmFtZSI6ImFsaWNlIn0", &c, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "needs a password"));
	/* {"identitytoken":"x"} */
	assert_int_equal(pull_creds_parse("eyJpZGVudGl0eXRva2VuIjoieCJ9", &c, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "identity tokens"));
}

static void test_server_host(void **state)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{"https://index.docker.io/v1/", "docker.io"}, {"registry-1.docker.io", "docker.io"},
		{"http://127.0.0.1:5000/", "127.0.0.1:5000"}, {"Quay.IO", "quay.io"},
		{"localhost:5000/v2/", "localhost:5000"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		char *h = NULL;
		assert_int_equal(pull_server_host(cases[i].in, &h), 0);
		assert_string_equal(h, cases[i].out);
		free(h);
	}
	char *h = NULL;
	assert_int_equal(pull_server_host("https:///x", &h), -EINVAL);
}

static void test_digest(void **state)
{
	char hex[65];
	assert_int_equal(pull_digest_hex("sha256:" H1, hex), 0);
	assert_string_equal(hex, H1);
	assert_int_equal(pull_digest_hex("sha256:" H1 "0", hex), -EINVAL);
	assert_int_equal(pull_digest_hex("sha512:" H1, hex), -EINVAL);
	assert_int_equal(pull_digest_hex("sha256:ABCDEF", hex), -EINVAL);
	assert_int_equal(pull_digest_hex(NULL, hex), -EINVAL);

	/* sha256("abc") */
	const char *abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
	struct shoal_err err = {};
	assert_int_equal(pull_digest_check("blob", abc, "abc", 3, &err), 0);
	assert_int_equal(pull_digest_check("config", abc, "abd", 3, &err), -EBADMSG);
	assert_non_null(strstr(err.msg, "config: digest mismatch: expected sha256:ba7816bf"));
}

static void test_insecure(void **state)
{
	char *list[] = {"127.0.0.1:5000", "registry.test", NULL};
	assert_true(pull_host_insecure("127.0.0.1:5000", list));
	assert_false(pull_host_insecure("127.0.0.1:5001", list));
	assert_false(pull_host_insecure("127.0.0.1", list));
	/* a name without a port covers every port */
	assert_true(pull_host_insecure("registry.test", list));
	assert_true(pull_host_insecure("registry.test:8443", list));
	assert_true(pull_host_insecure("REGISTRY.test:1", list));
	assert_false(pull_host_insecure("registry.testing", list));
	assert_false(pull_host_insecure("docker.io", list));
	assert_false(pull_host_insecure("docker.io", NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_docker_manifest),	  cmocka_unit_test(test_oci_manifest),
		cmocka_unit_test(test_manifest_refusals), cmocka_unit_test(test_index_platform),
		cmocka_unit_test(test_challenge),	  cmocka_unit_test(test_creds),
		cmocka_unit_test(test_server_host),	  cmocka_unit_test(test_digest),
		cmocka_unit_test(test_insecure),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
