# SPDX-License-Identifier: Apache-2.0
# A task record moved by a node's report (sched/task-record.c): the one rule the
# agent's executor and the simulated nodes of `shoal bench cluster` share.
if(TARGET shoal_sched_san)
	shoal_add_unit_test(test-task-record
		SOURCES ${CMAKE_CURRENT_LIST_DIR}/test-task-record.c
		LIBS shoal_sched_san shoal_lib_san PkgConfig::JANSSON)
	target_include_directories(test-task-record PRIVATE ${PROJECT_SOURCE_DIR})
endif()
