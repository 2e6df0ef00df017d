# SPDX-License-Identifier: Apache-2.0
# A task's record as stored: Docker's fields from the orchestrator's, and a
# node's report of its state applied to it (the agent's executor and the
# simulated nodes of `shoal bench cluster` share it).
list(APPEND SHOAL_SCHED_SOURCES
	${CMAKE_CURRENT_LIST_DIR}/task-record.c)
