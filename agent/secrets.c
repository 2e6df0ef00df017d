// SPDX-License-Identifier: Apache-2.0
/* The secrets key, sealing and opening values with it, and the encodings and
 * name rule secrets and configs share. No agent state: unit-tested alone. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "agent/secrets.h"
#include "lib/cleanup.h"
#include "lib/util.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_CIPHER_CTX *, EVP_CIPHER_CTX_free)

void secrets_key_id(const uint8_t key[SECRETS_KEY_LEN], char ret[SECRETS_KEY_ID_LEN + 1])
{
	char hex[65];
	sha256_hex(key, SECRETS_KEY_LEN, hex);
	memcpy(ret, hex, SECRETS_KEY_ID_LEN);
	ret[SECRETS_KEY_ID_LEN] = '\0';
}

static int key_create(const char *path, struct shoal_err *err)
{
	uint8_t k[SECRETS_KEY_LEN];
	if (getrandom(k, sizeof(k), 0) != (ssize_t)sizeof(k))
		return shoal_err_errno(err, errno, "reading random bytes for %s", path);
	_cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		explicit_bzero(k, sizeof(k));
		return errno == EEXIST ? 0 : shoal_err_errno(err, errno, "creating %s", path);
	}
	int r = write_all(fd, k, sizeof(k));
	explicit_bzero(k, sizeof(k));
	if (r < 0 || fsync(fd) < 0) {
		unlink(path);
		return shoal_err_errno(err, r < 0 ? -r : errno, "writing %s", path);
	}
	return 0;
}

int secrets_key_load(const char *path, bool create, struct secrets_key *ret, struct shoal_err *err)
{
	if (strlen(path) >= sizeof(ret->path))
		return shoal_err_set(err, ENAMETOOLONG, "secrets key file %s: path too long", path);
	if (create) {
		int r = key_create(path, err);
		if (r < 0)
			return r;
	}
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return shoal_err_errno(err, errno, "secrets key file %s", path);
	struct stat st;
	if (fstat(fd, &st) < 0)
		return shoal_err_errno(err, errno, "secrets key file %s", path);
	if (!S_ISREG(st.st_mode))
		return shoal_err_set(err, EINVAL, "secrets key file %s is not a regular file",
				     path);
	if (st.st_uid != 0)
		return shoal_err_set(err, EPERM,
				     "secrets key file %s is owned by uid %u; it must be owned by "
				     "root (chown root %s)",
				     path, (unsigned)st.st_uid, path);
	if (st.st_mode & 077)
		return shoal_err_set(err, EPERM,
				     "secrets key file %s has mode %04o; group and others must "
				     "have no access (chmod 600 %s)",
				     path, (unsigned)(st.st_mode & 07777), path);
	if (st.st_size != SECRETS_KEY_LEN)
		return shoal_err_set(
			err, EINVAL,
			"secrets key file %s holds %lld bytes; it must hold exactly %d "
			"random bytes (head -c %d /dev/urandom > FILE)",
			path, (long long)st.st_size, SECRETS_KEY_LEN, SECRETS_KEY_LEN);
	struct secrets_key k = {0};
	int r = read_all(fd, k.key, SECRETS_KEY_LEN);
	if (r < 0) {
		explicit_bzero(&k, sizeof(k));
		return shoal_err_errno(err, -r, "reading secrets key file %s", path);
	}
	secrets_key_id(k.key, k.id);
	snprintf(k.path, sizeof(k.path), "%s", path);
	*ret = k;
	explicit_bzero(&k, sizeof(k));
	return 0;
}

/* ---- base64 ---- */

char *secrets_b64_encode(const void *data, size_t len)
{
	char *out = malloc(4 * ((len + 2) / 3) + 1);
	if (!out)
		return NULL;
	EVP_EncodeBlock((unsigned char *)out, data, (int)len);
	return out;
}

static int b64_val(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

int secrets_b64_decode(const char *s, size_t n, uint8_t **ret, size_t *ret_len)
{
	if (n % 4 != 0)
		return -EINVAL;
	uint8_t *out = malloc(n / 4 * 3 + 1);
	if (!out)
		return -ENOMEM;
	size_t o = 0;
	for (size_t i = 0; i < n; i += 4) {
		int v[4];
		size_t pad = 0;
		for (size_t k = 0; k < 4; k++) {
			char c = s[i + k];
			if (c == '=' && i + 4 == n && k >= 2) {
				v[k] = 0;
				pad++;
				continue;
			}
			v[k] = pad ? -1 : b64_val(c);
			if (v[k] < 0) {
				free(out);
				return -EINVAL;
			}
		}
		/* "x=y=" is not padding */
		if (pad == 1 && s[i + 2] == '=') {
			free(out);
			return -EINVAL;
		}
		uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 |
			     (uint32_t)v[3];
		out[o++] = (uint8_t)(w >> 16);
		if (pad < 2)
			out[o++] = (uint8_t)(w >> 8);
		if (pad < 1)
			out[o++] = (uint8_t)w;
	}
	out[o] = '\0';
	*ret = out;
	*ret_len = o;
	return 0;
}

bool secrets_name_valid(const char *name)
{
	size_t n = name ? strlen(name) : 0;
	if (n == 0 || n > SECRETS_MAX_NAME)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		bool alnum =
			(c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
		bool edge = i == 0 || i == n - 1;
		if (!alnum && (edge || (c != '-' && c != '_' && c != '.')))
			return false;
	}
	return true;
}

/* ---- sealing ---- */

json_t *secrets_seal(const struct secrets_key *key, const char *aad, const void *data, size_t len)
{
	uint8_t nonce[SECRETS_NONCE_LEN];
	if (getrandom(nonce, sizeof(nonce), 0) != (ssize_t)sizeof(nonce))
		return NULL;
	_cleanup_free_ uint8_t *ct = malloc(len + SECRETS_TAG_LEN);
	_cleanup_(EVP_CIPHER_CTX_freep) EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	int outl = 0, fin = 0;
	if (!ct || !ctx) {
		errno = ENOMEM;
		return NULL;
	}
	if (EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, SECRETS_NONCE_LEN, NULL) != 1 ||
	    EVP_EncryptInit_ex(ctx, NULL, NULL, key->key, nonce) != 1 ||
	    EVP_EncryptUpdate(ctx, NULL, &outl, (const uint8_t *)aad, (int)strlen(aad)) != 1 ||
	    EVP_EncryptUpdate(ctx, ct, &outl, data, (int)len) != 1 ||
	    EVP_EncryptFinal_ex(ctx, ct + outl, &fin) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, SECRETS_TAG_LEN, ct + len) != 1) {
		errno = EIO;
		return NULL;
	}
	_cleanup_free_ char *n64 = secrets_b64_encode(nonce, sizeof(nonce));
	_cleanup_free_ char *c64 = secrets_b64_encode(ct, len + SECRETS_TAG_LEN);
	if (!n64 || !c64) {
		errno = ENOMEM;
		return NULL;
	}
	json_t *o = json_pack("{s:s, s:s, s:s, s:s}", "Cipher", "AES-256-GCM", "KeyID", key->id,
			      "Nonce", n64, "Data", c64);
	if (!o)
		errno = ENOMEM;
	return o;
}

int secrets_unseal(const struct secrets_key *key, const char *aad, json_t *sealed, uint8_t **ret,
		   size_t *ret_len, struct shoal_err *err)
{
	const char *cipher = json_string_value(json_object_get(sealed, "Cipher"));
	const char *kid = json_string_value(json_object_get(sealed, "KeyID"));
	json_t *nj = json_object_get(sealed, "Nonce"), *dj = json_object_get(sealed, "Data");
	if (!cipher || strcmp(cipher, "AES-256-GCM") != 0 || !kid || !json_is_string(nj) ||
	    !json_is_string(dj))
		return shoal_err_set(err, EINVAL, "the stored value is not a sealed secret");
	if (strcmp(kid, key->id) != 0)
		return shoal_err_set_status(
			err, 500, EKEYREJECTED,
			"it was encrypted with secrets key %s, and this node's key (%s) is %s: "
			"give every node the same --secrets-key-file",
			kid, key->path, key->id);
	_cleanup_free_ uint8_t *nonce = NULL, *ct = NULL;
	size_t nlen = 0, clen = 0;
	if (secrets_b64_decode(json_string_value(nj), json_string_length(nj), &nonce, &nlen) < 0 ||
	    secrets_b64_decode(json_string_value(dj), json_string_length(dj), &ct, &clen) < 0 ||
	    nlen != SECRETS_NONCE_LEN || clen < SECRETS_TAG_LEN)
		return shoal_err_set(err, EINVAL, "the stored value is not a sealed secret");
	size_t len = clen - SECRETS_TAG_LEN;
	uint8_t *pt = malloc(len + 1);
	_cleanup_(EVP_CIPHER_CTX_freep) EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	if (!pt || !ctx) {
		free(pt);
		return shoal_err_set(err, ENOMEM, "out of memory");
	}
	int outl = 0, fin = 0;
	bool ok =
		EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) == 1 &&
		EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, SECRETS_NONCE_LEN, NULL) == 1 &&
		EVP_DecryptInit_ex(ctx, NULL, NULL, key->key, nonce) == 1 &&
		EVP_DecryptUpdate(ctx, NULL, &outl, (const uint8_t *)aad, (int)strlen(aad)) == 1 &&
		EVP_DecryptUpdate(ctx, pt, &outl, ct, (int)len) == 1 &&
		EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, SECRETS_TAG_LEN, ct + len) == 1 &&
		EVP_DecryptFinal_ex(ctx, pt + outl, &fin) == 1;
	if (!ok) {
		explicit_bzero(pt, len + 1);
		free(pt);
		return shoal_err_set(err, EBADMSG,
				     "its stored value failed authentication under key %s: it "
				     "was altered, or belongs to another record",
				     key->id);
	}
	pt[len] = '\0';
	*ret = pt;
	*ret_len = len;
	return 0;
}
