# SPDX-License-Identifier: Apache-2.0
# Registry pulls: the pure parsers (test-image-pull) and image_store_pull against
# a registry served by the test itself on 127.0.0.1 (test-image-pull-fetch).
shoal_add_unit_test(test-image-pull
	SOURCES ${CMAKE_CURRENT_LIST_DIR}/test-image-pull.c
	LIBS shoal_image_san shoal_lib_san PkgConfig::JANSSON)
shoal_add_unit_test(test-image-pull-fetch
	SOURCES ${CMAKE_CURRENT_LIST_DIR}/test-image-pull-fetch.c
		${CMAKE_CURRENT_LIST_DIR}/test-image-util.c
	LIBS shoal_image_san shoal_lib_san PkgConfig::LIBARCHIVE PkgConfig::JANSSON
		PkgConfig::LIBCURL pthread)
target_compile_definitions(test-image-pull-fetch PRIVATE
	SHOAL_BUSYBOX_TAR="${CMAKE_BINARY_DIR}/images/busybox.tar")
