# SPDX-License-Identifier: Apache-2.0
add_executable(overlay-bridge ${CMAKE_CURRENT_LIST_DIR}/overlay-bridge.c)
target_link_libraries(overlay-bridge PRIVATE shoal_overlay)
add_test(NAME integration/overlay-bridge
	COMMAND ${CMAKE_CURRENT_LIST_DIR}/overlay-bridge.sh $<TARGET_FILE:overlay-bridge>)
set_tests_properties(integration/overlay-bridge PROPERTIES LABELS integration TIMEOUT 300
	SKIP_RETURN_CODE 77)

# VXLAN networks across node namespaces on an underlay bridge (overlay/vxlan.h).
add_executable(overlay-vxlan-tool ${CMAKE_CURRENT_LIST_DIR}/overlay-vxlan-tool.c)
target_link_libraries(overlay-vxlan-tool PRIVATE shoal_overlay)
add_test(NAME integration/overlay-vxlan
	COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/overlay-vxlan.sh $<TARGET_FILE:overlay-vxlan-tool>)
set_tests_properties(integration/overlay-vxlan PROPERTIES LABELS integration TIMEOUT 300
	SKIP_RETURN_CODE 77)
