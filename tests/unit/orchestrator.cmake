# SPDX-License-Identifier: Apache-2.0
if(TARGET shoal_sched_san)
	shoal_add_unit_test(test-orchestrator
		SOURCES ${CMAKE_CURRENT_LIST_DIR}/test-orch.c
		LIBS shoal_sched_san)
endif()
