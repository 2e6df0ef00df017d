# SPDX-License-Identifier: Apache-2.0
# The image store: docker-archive / OCI layout loads, imports, registry pulls,
# layers, tags.
shoal_add_library(shoal_image
	SOURCES
		${CMAKE_CURRENT_LIST_DIR}/image-load.c
		${CMAKE_CURRENT_LIST_DIR}/image-pull.c
		${CMAKE_CURRENT_LIST_DIR}/image-pull-parse.c
		${CMAKE_CURRENT_LIST_DIR}/image-ref.c
		${CMAKE_CURRENT_LIST_DIR}/image-store.c
		${CMAKE_CURRENT_LIST_DIR}/image-unpack.c
	LIBS shoal_lib PkgConfig::LIBARCHIVE PkgConfig::JANSSON PkgConfig::OPENSSL PkgConfig::LIBCURL
		pthread)

# A tiny busybox image for tests and demos, rebuilt when the script changes.
set(SHOAL_BUSYBOX_IMAGE ${CMAKE_BINARY_DIR}/images/busybox.tar)
add_custom_command(OUTPUT ${SHOAL_BUSYBOX_IMAGE}
	COMMAND ${PROJECT_SOURCE_DIR}/scripts/mkimage-busybox.sh ${SHOAL_BUSYBOX_IMAGE}
		docker.io/library/busybox:latest
	DEPENDS ${PROJECT_SOURCE_DIR}/scripts/mkimage-busybox.sh
	COMMENT "Building busybox test image"
	VERBATIM)
add_custom_target(test-image ALL DEPENDS ${SHOAL_BUSYBOX_IMAGE})
