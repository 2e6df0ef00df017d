// SPDX-License-Identifier: Apache-2.0
/* The data-plane feature table without a kernel: names, the disable list
 * of SHOAL_LB_DISABLE, and the reason read out of a verifier log. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "lb/lb-internal.h"
#include "lb/lb.h"

static void test_every_feature_described(void **state)
{
	for (enum lb_feature f = 0; f < LB_FEAT_MAX; f++) {
		assert_non_null(lb_feature_name(f));
		assert_non_null(lb_feature_what(f));
		assert_non_null(lb_feature_provides(f));
		/* optional ones say what is done without them */
		assert_true(lb_feature_required(f) == (lb_feature_fallback(f) == NULL));
	}
	assert_null(lb_feature_name(LB_FEAT_MAX));
	assert_true(lb_feature_required(LB_FEAT_TC));
	assert_false(lb_feature_required(LB_FEAT_XDP));
	assert_string_equal(lb_feature_state_name(LB_FEATURE_UNAVAILABLE), "unavailable");
}

static void test_disable_list(void **state)
{
	struct shoal_err err = {0};
	uint32_t bits = 123;

	assert_int_equal(lb_features_parse(NULL, &bits, &err), 0);
	assert_int_equal(bits, 0);
	assert_int_equal(lb_features_parse("xdp,host-routing", &bits, &err), 0);
	assert_int_equal(bits, (1u << LB_FEAT_XDP) | (1u << LB_FEAT_HOST_ROUTING));
	assert_int_equal(lb_features_parse(" socket-lb , coarse-clock", &bits, &err), 0);
	assert_int_equal(bits, (1u << LB_FEAT_SOCKET_LB) | (1u << LB_FEAT_COARSE_CLOCK));

	bits = 7;
	assert_int_equal(lb_features_parse("xdp,warp-drive", &bits, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "warp-drive"));
	assert_int_equal(bits, 7); /* untouched on error */
	assert_int_equal(lb_features_parse("tc", &bits, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "required"));
}

static void test_verifier_reason(void **state)
{
	const char *log = "0: R1=ctx() R10=fp0\n"
			  "0: (bf) r6 = r1\n"
			  "1: (b7) r2 = -8\n"
			  "2: (85) call bpf_xdp_adjust_meta#54\n"
			  "program of this type cannot use helper bpf_xdp_adjust_meta#54\n"
			  "processed 3 insns (limit 1000000) max_states_per_insn 0\n"
			  "\n";
	const char *wrapped = "libbpf: prog 'x': -- BEGIN PROG LOAD LOG --\n"
			      "invalid func unknown#206\n"
			      "verification time 5 usec\n"
			      "stack depth 0\n"
			      "-- END PROG LOAD LOG --\n";
	char r[128];

	lb_verifier_reason(log, 1, r, sizeof(r));
	assert_string_equal(r, "program of this type cannot use helper bpf_xdp_adjust_meta#54");
	lb_verifier_reason(log, 2, r, sizeof(r));
	assert_string_equal(r, "2: (85) call bpf_xdp_adjust_meta#54 | program of this type "
			       "cannot use helper bpf_xdp_adjust_meta#54");
	lb_verifier_reason(wrapped, 3, r, sizeof(r));
	assert_string_equal(r, "invalid func unknown#206");
	lb_verifier_reason("", 3, r, sizeof(r));
	assert_string_equal(r, "");
	lb_verifier_reason("a very long line that does not fit", 1, r, 8);
	assert_string_equal(r, "a very ");
	lb_verifier_reason("x\n", 0, r, sizeof(r));
	assert_string_equal(r, "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_feature_described),
		cmocka_unit_test(test_disable_list),
		cmocka_unit_test(test_verifier_reason),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
