# SPDX-License-Identifier: Apache-2.0
# The agent's node list kept from the store's watches (agent/node-cache.c, linked whole).
shoal_add_unit_test(test-node-cache
	SOURCES ${CMAKE_CURRENT_LIST_DIR}/test-node-cache.c ${PROJECT_SOURCE_DIR}/agent/node-cache.c
	LIBS PkgConfig::JANSSON)
target_include_directories(test-node-cache PRIVATE ${PROJECT_SOURCE_DIR})
