# SPDX-License-Identifier: Apache-2.0
shoal_add_unit_test(test-ipam SOURCES ${CMAKE_CURRENT_LIST_DIR}/test-ipam.c LIBS shoal_overlay_san)
shoal_add_unit_test(test-overlay-nl SOURCES ${CMAKE_CURRENT_LIST_DIR}/test-overlay-nl.c
	LIBS shoal_overlay_san)
shoal_add_unit_test(test-overlay-diff SOURCES ${CMAKE_CURRENT_LIST_DIR}/test-overlay-diff.c
	LIBS shoal_overlay_san)
