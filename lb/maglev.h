/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Maglev consistent hashing (Eisenbud et al., NSDI 2016, section 3.4).
 *
 * Each backend is named by a stable 64-bit key (lb/ uses address and port),
 * which gives it a permutation of the m table slots: offset = h1(key) % m,
 * skip = h2(key) % (m - 1) + 1, slot j = (offset + j * skip) % m. Backends
 * then take turns claiming their next preferred free slot until the table
 * is full, so each owns floor(m/n) or ceil(m/n) slots, and removing one
 * backend moves few slots between the others.
 *
 * The turn order is the keys' sorted order, so the table depends only on
 * the set of keys, not on the order the caller lists them in. */

/* True if m is a prime the data plane accepts as a table size. */
bool lb_maglev_size_valid(uint32_t m);

/* Fills table[0..m) with indices into keys[0..n). m must be a valid size,
 * 1 <= n <= m, keys distinct. Returns 0, -EINVAL or -ENOMEM. */
int lb_maglev_build(const uint64_t *keys, size_t n, uint32_t m, uint32_t *table);
