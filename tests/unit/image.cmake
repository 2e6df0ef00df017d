# SPDX-License-Identifier: Apache-2.0
# The image store: loading and refusals (test-image-load), and tags, removal,
# import and references (test-image-store); helpers in test-image-util.c.
foreach(t test-image-load test-image-store)
	shoal_add_unit_test(${t}
		SOURCES ${CMAKE_CURRENT_LIST_DIR}/${t}.c ${CMAKE_CURRENT_LIST_DIR}/test-image-util.c
		LIBS shoal_image_san shoal_lib_san PkgConfig::LIBARCHIVE PkgConfig::JANSSON pthread)
	target_compile_definitions(${t} PRIVATE
		SHOAL_BUSYBOX_TAR="${CMAKE_BINARY_DIR}/images/busybox.tar")
	add_dependencies(${t} test-image)
endforeach()
