# SPDX-License-Identifier: Apache-2.0
# The cluster store: dispatch over backends (store.c), the SQLite backend
# (store-sqlite*.c: statements, reads and writes; watches; leases) and the etcd
# backend (store-etcd*.c: the ops; HTTP with libcurl; watch streams; keep-alives).
# Included from agent/CMakeLists.txt; guarded so tests can include it too.
include_guard(GLOBAL)
shoal_add_library(shoal_store
	SOURCES
		${CMAKE_CURRENT_LIST_DIR}/store.c
		${CMAKE_CURRENT_LIST_DIR}/store-sqlite.c
		${CMAKE_CURRENT_LIST_DIR}/store-sqlite-lease.c
		${CMAKE_CURRENT_LIST_DIR}/store-sqlite-watch.c
		${CMAKE_CURRENT_LIST_DIR}/store-etcd.c
		${CMAKE_CURRENT_LIST_DIR}/store-etcd-http.c
		${CMAKE_CURRENT_LIST_DIR}/store-etcd-lease.c
		${CMAKE_CURRENT_LIST_DIR}/store-etcd-watch.c
	LIBS shoal_lib PkgConfig::SQLITE PkgConfig::LIBEVENT PkgConfig::JANSSON
		PkgConfig::LIBCURL PkgConfig::OPENSSL)
