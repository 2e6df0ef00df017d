# SPDX-License-Identifier: Apache-2.0
# The /containers/create body check (agent/container-config.c): pure, so it is
# built into its test directly, with the capability names it uses.
if(NOT TARGET shoal_rtsec)
	include(${PROJECT_SOURCE_DIR}/runtime/security.cmake)
endif()

shoal_add_unit_test(test-container-config
	SOURCES ${CMAKE_CURRENT_LIST_DIR}/test-container-config.c
		${PROJECT_SOURCE_DIR}/agent/container-config.c
		${PROJECT_SOURCE_DIR}/agent/container-mounts.c
	LIBS shoal_rtsec_san shoal_lib_san)
