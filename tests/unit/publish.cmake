# SPDX-License-Identifier: Apache-2.0
# The pure part of publish_sync (agent/publish.c, linked whole; the agent
# functions it calls elsewhere are stubbed in the test), and the scheduler's
# host-mode port rule.
if(TARGET shoal_lb_san)
	shoal_add_unit_test(test-publish
		SOURCES ${CMAKE_CURRENT_LIST_DIR}/test-publish.c ${PROJECT_SOURCE_DIR}/agent/publish.c
		${PROJECT_SOURCE_DIR}/agent/publish-proxy.c
		LIBS shoal_lb_san shoal_lib_san PkgConfig::JANSSON PkgConfig::LIBEVENT)
	target_include_directories(test-publish PRIVATE ${PROJECT_SOURCE_DIR})
endif()
if(TARGET shoal_sched_san)
	shoal_add_unit_test(test-publish-sched
		SOURCES ${CMAKE_CURRENT_LIST_DIR}/test-publish-sched.c
		LIBS shoal_sched_san)
endif()
