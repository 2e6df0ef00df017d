# SPDX-License-Identifier: Apache-2.0
# Container confinement: cgroups (v1, v2, hybrid), capabilities, seccomp.
# Included by container.cmake (sources go into shoal_runtime) and usable on its
# own: shoal_rtsec is the same code as a library of its own.
set(SHOAL_RT_SECURITY_SOURCES
	${CMAKE_CURRENT_LIST_DIR}/cgroup.c
	${CMAKE_CURRENT_LIST_DIR}/cgroup-v1.c
	${CMAKE_CURRENT_LIST_DIR}/cgroup-v2.c
	${CMAKE_CURRENT_LIST_DIR}/caps.c
	${CMAKE_CURRENT_LIST_DIR}/seccomp.c)
set(SHOAL_RT_SECURITY_LIBS PkgConfig::LIBSECCOMP shoal_lib)

if(NOT TARGET shoal_rtsec)
	shoal_add_library(shoal_rtsec SOURCES ${SHOAL_RT_SECURITY_SOURCES}
		LIBS ${SHOAL_RT_SECURITY_LIBS})
endif()
