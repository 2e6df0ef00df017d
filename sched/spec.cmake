# SPDX-License-Identifier: Apache-2.0
list(APPEND SHOAL_SCHED_SOURCES
	${CMAKE_CURRENT_LIST_DIR}/spec.c
	${CMAKE_CURRENT_LIST_DIR}/spec-copy.c
	${CMAKE_CURRENT_LIST_DIR}/spec-output.c
	${CMAKE_CURRENT_LIST_DIR}/spec-parse.c)
