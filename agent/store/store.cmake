# SPDX-License-Identifier: Apache-2.0
# The cluster store: dispatch over backends (store.c) and the SQLite backend
# (store-sqlite*.c: statements, reads and writes; watches; leases).
# Included from agent/CMakeLists.txt; guarded so tests can include it too.
include_guard(GLOBAL)
shoal_add_library(shoal_store
	SOURCES
		${CMAKE_CURRENT_LIST_DIR}/store.c
		${CMAKE_CURRENT_LIST_DIR}/store-sqlite.c
		${CMAKE_CURRENT_LIST_DIR}/store-sqlite-lease.c
		${CMAKE_CURRENT_LIST_DIR}/store-sqlite-watch.c
	LIBS shoal_lib PkgConfig::SQLITE PkgConfig::LIBEVENT PkgConfig::JANSSON)
