# SPDX-License-Identifier: Apache-2.0
# The scheduler: filters, spread, placement explanations (pure logic).
list(APPEND SHOAL_SCHED_SOURCES
	${CMAKE_CURRENT_LIST_DIR}/scheduler.c
	${CMAKE_CURRENT_LIST_DIR}/scheduler-cluster.c
	${CMAKE_CURRENT_LIST_DIR}/scheduler-filter.c)
