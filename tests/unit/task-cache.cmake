# SPDX-License-Identifier: Apache-2.0
# The manager's parsed task records (agent/task-cache.c, linked whole).
if(TARGET shoal_sched_san)
	shoal_add_unit_test(test-task-cache
		SOURCES ${CMAKE_CURRENT_LIST_DIR}/test-task-cache.c ${PROJECT_SOURCE_DIR}/agent/task-cache.c
		LIBS shoal_sched_san shoal_lib_san PkgConfig::JANSSON)
	target_include_directories(test-task-cache PRIVATE ${PROJECT_SOURCE_DIR})
endif()
