# SPDX-License-Identifier: Apache-2.0
# Sealing secrets with the node's key, and the key file's checks
# (agent/secrets.c, linked whole: no agent state); the service spec's Secrets
# and Configs (sched/).
shoal_add_unit_test(test-secrets
	SOURCES ${CMAKE_CURRENT_LIST_DIR}/test-secrets.c ${PROJECT_SOURCE_DIR}/agent/secrets.c
	LIBS shoal_sched_san shoal_lib_san PkgConfig::OPENSSL PkgConfig::JANSSON)
target_include_directories(test-secrets PRIVATE ${PROJECT_SOURCE_DIR})
