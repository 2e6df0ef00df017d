# SPDX-License-Identifier: Apache-2.0
# Capabilities, seccomp and cgroups (the cgroup tests skip without root).
if(NOT TARGET shoal_rtsec)
	include(${PROJECT_SOURCE_DIR}/runtime/security.cmake)
endif()

shoal_add_unit_test(test-caps SOURCES ${CMAKE_CURRENT_LIST_DIR}/test-caps.c
	LIBS shoal_rtsec_san shoal_lib_san)
shoal_add_unit_test(test-seccomp SOURCES ${CMAKE_CURRENT_LIST_DIR}/test-seccomp.c
	LIBS shoal_rtsec_san shoal_lib_san)
shoal_add_unit_test(test-cgroup SOURCES ${CMAKE_CURRENT_LIST_DIR}/test-cgroup.c
	LIBS shoal_rtsec_san shoal_lib_san)
shoal_add_unit_test(test-cgroup-v2 SOURCES ${CMAKE_CURRENT_LIST_DIR}/test-cgroup-v2.c
	LIBS shoal_rtsec_san shoal_lib_san)
