# SPDX-License-Identifier: Apache-2.0
# Overlay endpoint addresses and records (agent/overlay-ipam.c): pure.
shoal_add_unit_test(test-overlay-ipam
	SOURCES ${CMAKE_CURRENT_LIST_DIR}/test-overlay-ipam.c
		${PROJECT_SOURCE_DIR}/agent/overlay-ipam.c
		${PROJECT_SOURCE_DIR}/agent/network-ipam.c
	LIBS shoal_lib_san)
