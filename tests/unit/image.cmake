# SPDX-License-Identifier: Apache-2.0
shoal_add_unit_test(test-image-store
	SOURCES ${CMAKE_CURRENT_LIST_DIR}/test-image.c
	LIBS shoal_image_san shoal_lib_san PkgConfig::LIBARCHIVE PkgConfig::JANSSON pthread)
if(TARGET test-image-store)
	target_compile_definitions(test-image-store PRIVATE
		SHOAL_BUSYBOX_TAR="${CMAKE_BINARY_DIR}/images/busybox.tar")
	add_dependencies(test-image-store test-image)
endif()
