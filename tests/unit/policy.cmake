# SPDX-License-Identifier: Apache-2.0
if(TARGET shoal_policy_san)
	shoal_add_unit_test(test-policy-parse SOURCES ${CMAKE_CURRENT_LIST_DIR}/test-policy-parse.c
		LIBS shoal_policy_san)
	shoal_add_unit_test(test-policy-eval SOURCES ${CMAKE_CURRENT_LIST_DIR}/test-policy-eval.c
		LIBS shoal_policy_san)
	shoal_add_unit_test(test-policy-compile
		SOURCES ${CMAKE_CURRENT_LIST_DIR}/test-policy-compile.c
		LIBS shoal_policy_san)
endif()
