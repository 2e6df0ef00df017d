# SPDX-License-Identifier: Apache-2.0
# Confinement end to end: cgroups + capabilities + seccomp around a real execve.
if(NOT TARGET shoal_rtsec)
	include(${PROJECT_SOURCE_DIR}/runtime/security.cmake)
endif()

add_executable(security-confine ${CMAKE_CURRENT_LIST_DIR}/security-confine.c)
target_link_libraries(security-confine PRIVATE shoal_rtsec shoal_lib)
add_test(NAME integration/security-confine COMMAND security-confine)
set_tests_properties(integration/security-confine PROPERTIES LABELS integration TIMEOUT 120
	SKIP_RETURN_CODE 77)
