# SPDX-License-Identifier: Apache-2.0
if(TARGET shoal_runtime_san)
	shoal_add_unit_test(test-runtime SOURCES ${CMAKE_CURRENT_LIST_DIR}/test-runtime.c
		LIBS shoal_runtime_san)
endif()
