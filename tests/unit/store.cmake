# SPDX-License-Identifier: Apache-2.0
include(${PROJECT_SOURCE_DIR}/agent/store/store.cmake)
shoal_add_unit_test(test-store
	SOURCES ${CMAKE_CURRENT_LIST_DIR}/test-store.c
	LIBS shoal_store_san)
