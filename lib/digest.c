// SPDX-License-Identifier: Apache-2.0
/* In a file of its own so that a program that never hashes (the CLI) does not
 * load libcrypto: the static library's other objects do not pull it in. */
#include <stdio.h>

#include <openssl/evp.h>

#include "lib/util.h"

void sha256_hex(const void *data, size_t len, char ret[65])
{
	unsigned char md[32];
	unsigned int mdlen = 0;
	EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL);
	for (int i = 0; i < 32; i++)
		sprintf(ret + 2 * i, "%02x", md[i]);
}
