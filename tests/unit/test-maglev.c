// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bpf/shared/lb_consts.h"
#include "lb/lb.h"
#include "lb/maglev.h"

/* Backend keys as lb/ forms them: IPv4 address << 16 | port. */
static uint64_t be_key(unsigned i)
{
	return (uint64_t)(0x0a000000u + i) << 16 | 8080;
}

static void count_owners(const uint32_t *table, uint32_t m, size_t n, size_t *counts)
{
	memset(counts, 0, n * sizeof(*counts));
	for (uint32_t s = 0; s < m; s++) {
		assert_true(table[s] < n);
		counts[table[s]]++;
	}
}

static void test_sizes(void **state)
{
	assert_true(lb_maglev_size_valid(LB_MAGLEV_DEFAULT));
	assert_true(lb_maglev_size_valid(65537));
	assert_true(lb_maglev_size_valid(LB_MAGLEV_MIN));
	assert_false(lb_maglev_size_valid(16383)); /* 3 * 43 * 127 */
	assert_false(lb_maglev_size_valid(16384));
	assert_false(lb_maglev_size_valid(97)); /* prime, below the minimum */
	assert_false(lb_maglev_size_valid(LB_MAGLEV_MAX + 2));
}

static void test_bad_input(void **state)
{
	uint64_t keys[3] = {be_key(1), be_key(2), be_key(1)};
	uint32_t table[LB_MAGLEV_MIN];

	assert_int_equal(lb_maglev_build(keys, 0, LB_MAGLEV_MIN, table), -EINVAL);
	assert_int_equal(lb_maglev_build(keys, 2, 100, table), -EINVAL);
	assert_int_equal(lb_maglev_build(keys, 3, LB_MAGLEV_MIN, table), -EINVAL); /* duplicate */
	assert_int_equal(lb_maglev_build(keys, 2, LB_MAGLEV_MIN, table), 0);
}

/* Every backend owns floor(m/n) or ceil(m/n) slots: within 1% of even when
 * m >= 100 n, for every backend count up to that bound. */
static void test_distribution(void **state)
{
	const uint32_t m = LB_MAGLEV_DEFAULT;
	const size_t ns[] = {1, 2, 3, 7, 10, 33, 64, 100, 163};
	uint32_t *table = calloc(m, sizeof(*table));
	uint64_t keys[163];
	size_t counts[163];

	assert_non_null(table);
	for (size_t t = 0; t < sizeof(ns) / sizeof(ns[0]); t++) {
		size_t n = ns[t];
		double even = (double)m / n;

		for (size_t i = 0; i < n; i++)
			keys[i] = be_key(i * 7 + 3);
		assert_int_equal(lb_maglev_build(keys, n, m, table), 0);
		count_owners(table, m, n, counts);
		for (size_t i = 0; i < n; i++) {
			assert_true(counts[i] >= m / n);
			assert_true(counts[i] <= (m + n - 1) / n);
			assert_true(counts[i] >= even * 0.99 && counts[i] <= even * 1.01);
		}
	}
	free(table);
}

/* The table depends on the set of backends, not on their order. */
static void test_order_independent(void **state)
{
	const uint32_t m = 1009;
	uint64_t keys[5] = {be_key(5), be_key(1), be_key(4), be_key(2), be_key(3)};
	uint64_t sorted[5] = {be_key(1), be_key(2), be_key(3), be_key(4), be_key(5)};
	uint32_t a[1009], b[1009];

	assert_int_equal(lb_maglev_build(keys, 5, m, a), 0);
	assert_int_equal(lb_maglev_build(sorted, 5, m, b), 0);
	for (uint32_t s = 0; s < m; s++)
		assert_true(keys[a[s]] == sorted[b[s]]);
}

/* Removing one backend of n: its slots go to the others, and few slots move
 * between backends that stayed (the Maglev paper measures a few percent). */
static void test_disruption_on_removal(void **state)
{
	const uint32_t m = LB_MAGLEV_DEFAULT;
	const size_t ns[] = {5, 10, 50, 100};
	uint32_t *before = calloc(m, sizeof(*before));
	uint32_t *after = calloc(m, sizeof(*after));
	uint64_t keys[100], rest[100];

	assert_non_null(before);
	assert_non_null(after);
	for (size_t t = 0; t < sizeof(ns) / sizeof(ns[0]); t++) {
		size_t n = ns[t], gone = n / 2, moved = 0, orphaned = 0;

		for (size_t i = 0; i < n; i++)
			keys[i] = be_key(i + 1);
		assert_int_equal(lb_maglev_build(keys, n, m, before), 0);
		for (size_t i = 0, j = 0; i < n; i++)
			if (i != gone)
				rest[j++] = keys[i];
		assert_int_equal(lb_maglev_build(rest, n - 1, m, after), 0);
		for (uint32_t s = 0; s < m; s++) {
			uint64_t kb = keys[before[s]], ka = rest[after[s]];

			assert_true(ka != keys[gone]);
			if (kb == keys[gone])
				orphaned++;
			else if (kb != ka)
				moved++;
		}
		/* The removed backend's share is all that had to move. */
		assert_true(orphaned >= m / n && orphaned <= (m + n - 1) / n);
		assert_true(moved <= m / 50);
	}
	free(before);
	free(after);
}

/* Adding a backend takes about 1/(n+1) of the slots, mostly from the others
 * evenly, and leaves the rest where they were. */
static void test_disruption_on_add(void **state)
{
	const uint32_t m = LB_MAGLEV_DEFAULT;
	const size_t n = 20;
	uint32_t *before = calloc(m, sizeof(*before));
	uint32_t *after = calloc(m, sizeof(*after));
	uint64_t keys[21];
	size_t changed = 0;

	assert_non_null(before);
	assert_non_null(after);
	for (size_t i = 0; i < n + 1; i++)
		keys[i] = be_key(100 + i);
	assert_int_equal(lb_maglev_build(keys, n, m, before), 0);
	assert_int_equal(lb_maglev_build(keys, n + 1, m, after), 0);
	for (uint32_t s = 0; s < m; s++)
		changed += before[s] != after[s];
	assert_true(changed >= m / (n + 1));
	assert_true(changed <= m / (n + 1) + m / 50);
	free(before);
	free(after);
}

static void test_drop_names(void **state)
{
	assert_string_equal(lb_drop_reason_name(LB_DROP_NO_BACKEND), "no-backend");
	assert_string_equal(lb_drop_reason_name(LB_DROP_MALFORMED_L3), "malformed-ipv4");
	assert_string_equal(lb_drop_reason_name(LB_DROP_REWRITE), "rewrite-failed");
	for (int r = 1; r <= LB_DROP_MAX; r++)
		assert_non_null(lb_drop_reason_name(-r));
	assert_null(lb_drop_reason_name(0));
	assert_null(lb_drop_reason_name(-(LB_DROP_MAX + 1)));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_bad_input),
		cmocka_unit_test(test_distribution),
		cmocka_unit_test(test_order_independent),
		cmocka_unit_test(test_disruption_on_removal),
		cmocka_unit_test(test_disruption_on_add),
		cmocka_unit_test(test_drop_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
