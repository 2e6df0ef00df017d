# SPDX-License-Identifier: Apache-2.0
list(APPEND SHOAL_SCHED_SOURCES
	${CMAKE_CURRENT_LIST_DIR}/task.c
	${CMAKE_CURRENT_LIST_DIR}/update.c
	${CMAKE_CURRENT_LIST_DIR}/orchestrator.c
	${CMAKE_CURRENT_LIST_DIR}/orchestrator-slot.c
	${CMAKE_CURRENT_LIST_DIR}/orchestrator-update.c)
