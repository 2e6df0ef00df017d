// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bpf/shared/lb_consts.h"
#include "lib/cleanup.h"
#include "lb/maglev.h"

bool lb_maglev_size_valid(uint32_t m)
{
	if (m < LB_MAGLEV_MIN || m > LB_MAGLEV_MAX)
		return false;
	if (m % 2 == 0)
		return false;
	for (uint32_t d = 3; (uint64_t)d * d <= m; d += 2)
		if (m % d == 0)
			return false;
	return true;
}

/* SplitMix64's finaliser: a full-avalanche mix, so that nearby keys (two
 * ports of one address) get unrelated permutations. */
static uint64_t maglev_mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

struct maglev_perm {
	uint64_t key;
	uint32_t index; /* into the caller's keys */
	uint32_t pos;	/* next preferred slot */
	uint32_t skip;
};

static int maglev_perm_cmp(const void *a, const void *b)
{
	const struct maglev_perm *x = a, *y = b;

	return x->key < y->key ? -1 : x->key > y->key;
}

int lb_maglev_build(const uint64_t *keys, size_t n, uint32_t m, uint32_t *table)
{
	_cleanup_free_ struct maglev_perm *perm = NULL;
	size_t filled = 0;

	if (!keys || !table || n == 0 || n > m || !lb_maglev_size_valid(m))
		return -EINVAL;
	perm = calloc(n, sizeof(*perm));
	if (!perm)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		perm[i].key = keys[i];
		perm[i].index = i;
		perm[i].pos = maglev_mix(keys[i] ^ 0x6d61676c65763031ULL) % m;
		perm[i].skip = maglev_mix(keys[i] ^ 0x736b697070657232ULL) % (m - 1) + 1;
	}
	qsort(perm, n, sizeof(*perm), maglev_perm_cmp);
	for (size_t i = 1; i < n; i++)
		if (perm[i].key == perm[i - 1].key)
			return -EINVAL;

	for (uint32_t s = 0; s < m; s++)
		table[s] = UINT32_MAX;
	/* Every permutation visits every slot (skip and m are coprime as m is
	 * prime), so each inner loop ends, and each round fills n slots. pos
	 * and skip are below m, so one subtraction stands for the modulo (a
	 * division per step made this most of a backend set update). */
	for (;;) {
		for (size_t i = 0; i < n; i++) {
			struct maglev_perm *p = &perm[i];
			uint32_t pos = p->pos;

			while (table[pos] != UINT32_MAX) {
				pos += p->skip;
				if (pos >= m)
					pos -= m;
			}
			table[pos] = p->index;
			pos += p->skip;
			if (pos >= m)
				pos -= m;
			p->pos = pos;
			if (++filled == m)
				return 0;
		}
	}
}
