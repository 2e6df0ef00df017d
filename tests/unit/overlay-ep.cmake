# SPDX-License-Identifier: Apache-2.0
# The overlay endpoints' egress table, as text (overlay/vxlan-ep.c): pure.
shoal_add_unit_test(test-overlay-ep SOURCES ${CMAKE_CURRENT_LIST_DIR}/test-overlay-ep.c
	LIBS shoal_overlay_san)
