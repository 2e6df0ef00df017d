# SPDX-License-Identifier: Apache-2.0
# One program, two suites: the store's contract against SQLite (unit/test-store) and against
# a real etcd the test starts itself (unit/test-store-etcd, which needs etcd-server and
# etcd-client, installed by scripts/deps.sh; without them it fails).
include(${PROJECT_SOURCE_DIR}/agent/store/store.cmake)
shoal_add_unit_test(test-store
	SOURCES ${CMAKE_CURRENT_LIST_DIR}/test-store.c ${CMAKE_CURRENT_LIST_DIR}/etcd-fixture.c
	LIBS shoal_store_san)
add_test(NAME unit/test-store-etcd COMMAND test-store etcd)
set_tests_properties(unit/test-store-etcd PROPERTIES LABELS unit TIMEOUT 300
	ENVIRONMENT "ASAN_OPTIONS=detect_leaks=1;UBSAN_OPTIONS=print_stacktrace=1")
