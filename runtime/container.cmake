# SPDX-License-Identifier: Apache-2.0
# The container runtime (library side, used by the agent) and shoal-monitor.
include(${CMAKE_CURRENT_LIST_DIR}/security.cmake OPTIONAL)

set(SHOAL_RT_COMMON_SOURCES
	${CMAKE_CURRENT_LIST_DIR}/bundle.c
	${CMAKE_CURRENT_LIST_DIR}/spec.c
	${CMAKE_CURRENT_LIST_DIR}/user.c
	${CMAKE_CURRENT_LIST_DIR}/logfile.c)

shoal_add_library(shoal_runtime
	SOURCES
		${CMAKE_CURRENT_LIST_DIR}/spawn.c
		${SHOAL_RT_COMMON_SOURCES}
		${SHOAL_RT_SECURITY_SOURCES}
	LIBS shoal_lib PkgConfig::JANSSON ${SHOAL_RT_SECURITY_LIBS})

# The monitor runs once per container for the container's whole life, so it is
# built small: static, with unused sections dropped. That also drops the
# libseccomp-based compiler from seccomp.c (only the raw loader is reached) and
# the OpenSSL-based hash from lib/util.c, so neither library is linked in.
find_library(SHOAL_JANSSON_STATIC NAMES libjansson.a)
find_file(SHOAL_LIBC_STATIC NAMES libc.a PATHS /usr/lib/x86_64-linux-gnu /usr/lib64 /usr/lib)
add_executable(shoal-monitor
	${CMAKE_CURRENT_LIST_DIR}/monitor.c
	${CMAKE_CURRENT_LIST_DIR}/monitor-ctl.c
	${CMAKE_CURRENT_LIST_DIR}/monitor-exec.c
	${CMAKE_CURRENT_LIST_DIR}/child.c
	${CMAKE_CURRENT_LIST_DIR}/mount.c
	${SHOAL_RT_COMMON_SOURCES}
	${SHOAL_RT_SECURITY_SOURCES}
	${PROJECT_SOURCE_DIR}/lib/err.c
	${PROJECT_SOURCE_DIR}/lib/util.c)
target_include_directories(shoal-monitor PRIVATE ${PROJECT_SOURCE_DIR} ${JANSSON_INCLUDE_DIRS}
	${LIBSECCOMP_INCLUDE_DIRS})
target_compile_options(shoal-monitor PRIVATE -ffunction-sections -fdata-sections)
if(SHOAL_JANSSON_STATIC AND SHOAL_LIBC_STATIC)
	target_link_options(shoal-monitor PRIVATE -static -Wl,--gc-sections)
	target_link_libraries(shoal-monitor PRIVATE ${SHOAL_JANSSON_STATIC})
else()
	target_link_options(shoal-monitor PRIVATE -Wl,--gc-sections -Wl,--as-needed)
	target_link_libraries(shoal-monitor PRIVATE PkgConfig::JANSSON ${SHOAL_RT_SECURITY_LIBS})
endif()
