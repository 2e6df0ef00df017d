// SPDX-License-Identifier: Apache-2.0
/* Secrets sealed with AES-256-GCM under the node's key: what is sealed opens
 * with the same key and record id, and a value altered, moved to another
 * record or opened with another key is refused with a reason; the key file is
 * refused when anyone but root could read it or it is not 32 bytes. And a
 * service spec's Secrets and Configs: Docker's defaults filled in, bad
 * references refused with their path, a change of them a new task spec. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent/secrets.h"
#include "lib/util.h"
#include "sched/spec.h"

static void key_of(uint8_t fill, struct secrets_key *k)
{
	memset(k, 0, sizeof(*k));
	for (size_t i = 0; i < SECRETS_KEY_LEN; i++)
		k->key[i] = (uint8_t)(fill + i);
	secrets_key_id(k->key, k->id);
	snprintf(k->path, sizeof(k->path), "/test/key-%u", fill);
}

static void test_round_trip(void **state)
{
	struct secrets_key k;
	key_of(1, &k);
	/* long enough that the sealed record's own base64 never holds it by
	 * chance (two letters did, once in about forty runs) */
	static const uint8_t data[] = "s3cr3t-plaintext\0\xff\n";
	json_t *s = secrets_seal(&k, "id1", data, sizeof(data));
	assert_non_null(s);
	assert_string_equal(json_string_value(json_object_get(s, "KeyID")), k.id);
	/* the plaintext is nowhere in the record */
	char *dump = json_dumps(s, JSON_COMPACT);
	assert_null(memmem(dump, strlen(dump), "s3cr3t-plaintext", 16));
	assert_null(memmem(dump, strlen(dump), "czNjcjN0LXBsYWludGV4dA", 22)); /* its base64 */
	free(dump);
	uint8_t *out = NULL;
	size_t len = 0;
	struct shoal_err err = {0};
	assert_int_equal(secrets_unseal(&k, "id1", s, &out, &len, &err), 0);
	assert_int_equal(len, sizeof(data));
	assert_memory_equal(out, data, sizeof(data));
	free(out);
	json_decref(s);

	/* large values too, and every seal has its own nonce */
	size_t big = SECRETS_MAX_DATA - 1;
	uint8_t *b = malloc(big);
	for (size_t i = 0; i < big; i++)
		b[i] = (uint8_t)(i * 7);
	json_t *s1 = secrets_seal(&k, "id2", b, big), *s2 = secrets_seal(&k, "id2", b, big);
	assert_string_not_equal(json_string_value(json_object_get(s1, "Nonce")),
				json_string_value(json_object_get(s2, "Nonce")));
	assert_string_not_equal(json_string_value(json_object_get(s1, "Data")),
				json_string_value(json_object_get(s2, "Data")));
	assert_int_equal(secrets_unseal(&k, "id2", s2, &out, &len, &err), 0);
	assert_int_equal(len, big);
	assert_memory_equal(out, b, big);
	free(out);
	free(b);
	json_decref(s1);
	json_decref(s2);
}

static void test_tamper_refused(void **state)
{
	struct secrets_key k;
	key_of(1, &k);
	json_t *s = secrets_seal(&k, "id1", "top secret", 10);
	uint8_t *out = NULL, *raw = NULL;
	size_t len = 0, rlen = 0;
	struct shoal_err err = {0};
	/* one bit of the ciphertext flipped */
	json_t *t = json_deep_copy(s);
	const char *d = json_string_value(json_object_get(t, "Data"));
	assert_int_equal(secrets_b64_decode(d, strlen(d), &raw, &rlen), 0);
	raw[0] ^= 1;
	char *enc = secrets_b64_encode(raw, rlen);
	json_object_set_new(t, "Data", json_string(enc));
	free(enc);
	free(raw);
	assert_int_equal(secrets_unseal(&k, "id1", t, &out, &len, &err), -EBADMSG);
	assert_null(out);
	assert_non_null(strstr(err.msg, "altered"));
	json_decref(t);
	/* the tag cut short */
	t = json_deep_copy(s);
	json_object_set_new(t, "Data", json_string("AAAA"));
	assert_true(secrets_unseal(&k, "id1", t, &out, &len, &err) < 0);
	json_decref(t);
	/* another nonce */
	t = json_deep_copy(s);
	json_object_set_new(t, "Nonce", json_string("AAAAAAAAAAAAAAAA"));
	assert_int_equal(secrets_unseal(&k, "id1", t, &out, &len, &err), -EBADMSG);
	json_decref(t);
	/* moved to another record: the id is bound in */
	assert_int_equal(secrets_unseal(&k, "id2", s, &out, &len, &err), -EBADMSG);
	/* not a sealed value at all */
	t = json_pack("{s:s}", "Data", "eA==");
	assert_int_equal(secrets_unseal(&k, "id1", t, &out, &len, &err), -EINVAL);
	json_decref(t);
	json_decref(s);
}

static void test_wrong_key_named(void **state)
{
	struct secrets_key k1, k2;
	key_of(1, &k1);
	key_of(2, &k2);
	assert_string_not_equal(k1.id, k2.id);
	assert_int_equal(strlen(k1.id), SECRETS_KEY_ID_LEN);
	json_t *s = secrets_seal(&k1, "id1", "x", 1);
	uint8_t *out = NULL;
	size_t len = 0;
	struct shoal_err err = {0};
	assert_int_equal(secrets_unseal(&k2, "id1", s, &out, &len, &err), -EKEYREJECTED);
	assert_null(out);
	/* both keys' ids and the file of this node's */
	assert_non_null(strstr(err.msg, k1.id));
	assert_non_null(strstr(err.msg, k2.id));
	assert_non_null(strstr(err.msg, k2.path));
	/* a key whose id was forged to match still does not open it */
	snprintf(k2.id, sizeof(k2.id), "%s", k1.id);
	assert_int_equal(secrets_unseal(&k2, "id1", s, &out, &len, &err), -EBADMSG);
	json_decref(s);
}

static void test_key_id_is_sha256_prefix(void **state)
{
	struct secrets_key k;
	key_of(0, &k);
	char hex[65];
	sha256_hex(k.key, SECRETS_KEY_LEN, hex);
	assert_memory_equal(k.id, hex, SECRETS_KEY_ID_LEN);
}

static void test_base64(void **state)
{
	uint8_t *out = NULL;
	size_t len = 0;
	assert_int_equal(secrets_b64_decode("aGVsbG8=", 8, &out, &len), 0);
	assert_int_equal(len, 5);
	assert_memory_equal(out, "hello", 5);
	free(out);
	assert_int_equal(secrets_b64_decode("aGk=", 4, &out, &len), 0);
	assert_int_equal(len, 2);
	free(out);
	assert_int_equal(secrets_b64_decode("aA==", 4, &out, &len), 0);
	assert_int_equal(len, 1);
	free(out);
	assert_int_equal(secrets_b64_decode("", 0, &out, &len), 0);
	assert_int_equal(len, 0);
	free(out);
	static const char *const bad[] = {
		"aGVsbG8", "aGV*bG8=", "a===", "aA=A", "aGk=aGk=", "aG k"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(secrets_b64_decode(bad[i], strlen(bad[i]), &out, &len), -EINVAL);
	char *e = secrets_b64_encode("hello", 5);
	assert_string_equal(e, "aGVsbG8=");
	free(e);
}

static void test_names(void **state)
{
	assert_true(secrets_name_valid("db_password"));
	assert_true(secrets_name_valid("a"));
	assert_true(secrets_name_valid("stack_db.pass-1"));
	char n64[65], n65[66];
	memset(n64, 'a', 64);
	n64[64] = '\0';
	memset(n65, 'a', 65);
	n65[65] = '\0';
	assert_true(secrets_name_valid(n64));
	assert_false(secrets_name_valid(n65));
	assert_false(secrets_name_valid(""));
	assert_false(secrets_name_valid("-a"));
	assert_false(secrets_name_valid("a."));
	assert_false(secrets_name_valid("a/b"));
	assert_false(secrets_name_valid("a b"));
}

static char tmpdir[64];

static void write_key(const char *path, size_t n, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	uint8_t b[64] = {7};
	assert_int_equal(write(fd, b, n), (ssize_t)n);
	close(fd);
	assert_int_equal(chmod(path, mode), 0);
}

static void test_key_file(void **state)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test-secrets.XXXXXX");
	assert_non_null(mkdtemp(tmpdir));
	char path[128];
	struct secrets_key k;
	struct shoal_err err = {0};
	snprintf(path, sizeof(path), "%s/missing", tmpdir);
	assert_int_equal(secrets_key_load(path, false, &k, &err), -ENOENT);
	assert_non_null(strstr(err.msg, path));

	snprintf(path, sizeof(path), "%s/k", tmpdir);
	if (geteuid() != 0) {
		/* not root: a key of anyone else is refused, naming the owner */
		write_key(path, SECRETS_KEY_LEN, 0600);
		assert_int_equal(secrets_key_load(path, false, &k, &err), -EPERM);
		assert_non_null(strstr(err.msg, "owned by root"));
		unlink(path);
		rmdir(tmpdir);
		return;
	}
	/* made on first use, 0600, and the same key read back */
	assert_int_equal(secrets_key_load(path, true, &k, &err), 0);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(st.st_size, SECRETS_KEY_LEN);
	struct secrets_key k2;
	assert_int_equal(secrets_key_load(path, true, &k2, &err), 0);
	assert_memory_equal(k.key, k2.key, SECRETS_KEY_LEN);
	assert_string_equal(k.id, k2.id);
	/* readable by others */
	assert_int_equal(chmod(path, 0644), 0);
	assert_int_equal(secrets_key_load(path, false, &k2, &err), -EPERM);
	assert_non_null(strstr(err.msg, "mode 0644"));
	/* the wrong size */
	write_key(path, 31, 0600);
	assert_int_equal(secrets_key_load(path, false, &k2, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "31 bytes"));
	write_key(path, 33, 0400);
	assert_int_equal(secrets_key_load(path, false, &k2, &err), -EINVAL);
	/* not owned by root */
	write_key(path, SECRETS_KEY_LEN, 0600);
	assert_int_equal(chown(path, 1, 1), 0);
	assert_int_equal(secrets_key_load(path, false, &k2, &err), -EPERM);
	assert_non_null(strstr(err.msg, "uid 1"));
	unlink(path);
	rmdir(tmpdir);
}

static struct service_spec *spec_of(const char *refs, struct spec_errors *errs)
{
	char text[2048];
	snprintf(
		text, sizeof(text),
		"{\"Name\":\"s\",\"TaskTemplate\":{\"ContainerSpec\":{\"Image\":\"busybox\"%s%s}}}",
		*refs ? "," : "", refs);
	json_t *j = json_loads(text, 0, NULL);
	assert_non_null(j);
	struct service_spec *s = NULL;
	spec_errors_init(errs);
	int r = service_spec_from_json(j, &s, errs);
	json_decref(j);
	if (r < 0)
		return NULL;
	return s;
}

static bool has(const struct spec_errors *e, const char *want)
{
	for (size_t i = 0; i < e->n; i++)
		if (strstr(e->msg[i], want))
			return true;
	return false;
}

static void test_spec_refs(void **state)
{
	struct spec_errors errs;
	struct service_spec *s =
		spec_of("\"Secrets\":[{\"SecretName\":\"db\"}],"
			"\"Configs\":[{\"ConfigID\":\"c1\",\"ConfigName\":\"app\"}]",
			&errs);
	assert_non_null(s);
	/* Docker's defaults: the secret under /run/secrets by its name, the
	 * config at /NAME, 0:0, 0444 */
	json_t *out = service_spec_to_json(s);
	json_t *cs = json_object_get(json_object_get(out, "TaskTemplate"), "ContainerSpec");
	json_t *sf = json_object_get(json_array_get(json_object_get(cs, "Secrets"), 0), "File");
	assert_string_equal(json_string_value(json_object_get(sf, "Name")), "db");
	assert_string_equal(json_string_value(json_object_get(sf, "UID")), "0");
	assert_string_equal(json_string_value(json_object_get(sf, "GID")), "0");
	assert_int_equal(json_integer_value(json_object_get(sf, "Mode")), 0444);
	json_t *cf = json_object_get(json_array_get(json_object_get(cs, "Configs"), 0), "File");
	assert_string_equal(json_string_value(json_object_get(cf, "Name")), "/app");
	/* what is shown parses back to the same task */
	struct service_spec *back = NULL;
	spec_errors_init(&errs);
	assert_int_equal(service_spec_from_json(out, &back, &errs), 0);
	assert_true(service_spec_task_equal(s, back));
	struct service_spec *dup = service_spec_dup(s);
	assert_true(service_spec_task_equal(s, dup));
	/* another list of secrets is another task spec (a rolling update) */
	struct service_spec *other =
		spec_of("\"Secrets\":[{\"SecretName\":\"db\",\"File\":"
			"{\"Name\":\"db\",\"Mode\":256}}],"
			"\"Configs\":[{\"ConfigID\":\"c1\",\"ConfigName\":\"app\"}]",
			&errs);
	assert_non_null(other);
	assert_false(service_spec_task_equal(s, other));
	service_spec_free(other);
	other = spec_of("", &errs);
	assert_false(service_spec_task_equal(s, other));
	service_spec_free(other);
	service_spec_free(back);
	service_spec_free(dup);
	service_spec_free(s);
	json_decref(out);
}

static void test_spec_refs_refused(void **state)
{
	struct spec_errors errs;
	assert_null(spec_of("\"Secrets\":[{\"File\":{\"Name\":\"x\"}}]", &errs));
	assert_true(has(&errs, "Secrets[0]: SecretName or SecretID is required"));
	assert_null(spec_of("\"Secrets\":[{\"SecretName\":\"db\",\"File\":{\"Name\":\"/etc/db\"}}]",
			    &errs));
	assert_true(has(&errs, "Secrets[0].File.Name: \"/etc/db\": a secret's file is a name "
			       "under /run/secrets"));
	assert_null(spec_of("\"Secrets\":[{\"SecretName\":\"db\",\"File\":{\"Name\":\"../x\"}}]",
			    &errs));
	assert_true(has(&errs, "not a clean path"));
	assert_null(spec_of("\"Secrets\":[{\"SecretName\":\"-db\"}]", &errs));
	assert_true(has(&errs, "Secrets[0].SecretName: \"-db\" is not a valid name"));
	assert_null(
		spec_of("\"Secrets\":[{\"SecretName\":\"a\",\"File\":{\"UID\":\"root\"}}]", &errs));
	assert_true(has(&errs, "Secrets[0].File.UID: \"root\" is not a numeric id"));
	assert_null(
		spec_of("\"Configs\":[{\"ConfigName\":\"a\",\"File\":{\"Mode\":4096}}]", &errs));
	assert_true(has(&errs, "Configs[0].File.Mode"));
	assert_null(spec_of("\"Secrets\":[{\"SecretName\":\"a\",\"File\":{\"Name\":\"t\"}},"
			    "{\"SecretName\":\"b\",\"File\":{\"Name\":\"t\"}}]",
			    &errs));
	assert_true(has(&errs, "a and b have a conflicting target: t"));
	assert_null(spec_of("\"Configs\":[{\"ConfigName\":\"a\",\"Runtime\":{\"x\":1}}]", &errs));
	assert_true(has(&errs, "Configs[0].Runtime: not supported"));
	assert_null(spec_of("\"Secrets\":{}", &errs));
	assert_true(has(&errs, "Secrets: expected an array"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_tamper_refused),
		cmocka_unit_test(test_wrong_key_named),
		cmocka_unit_test(test_key_id_is_sha256_prefix),
		cmocka_unit_test(test_base64),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_key_file),
		cmocka_unit_test(test_spec_refs),
		cmocka_unit_test(test_spec_refs_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
