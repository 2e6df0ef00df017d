# SPDX-License-Identifier: Apache-2.0
# The cluster networks' subnet and VNI reservations (agent/network-ipam.c): pure.
shoal_add_unit_test(test-network-ipam
	SOURCES ${CMAKE_CURRENT_LIST_DIR}/test-network-ipam.c
		${PROJECT_SOURCE_DIR}/agent/network-ipam.c
	LIBS shoal_lib_san)
