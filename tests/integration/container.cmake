# SPDX-License-Identifier: Apache-2.0
# Containers through rt_spawn and shoal-monitor (root; skips otherwise).
if(TARGET shoal_runtime AND TARGET shoal-monitor)
	add_executable(runtime-container ${CMAKE_CURRENT_LIST_DIR}/runtime-container.c)
	target_link_libraries(runtime-container PRIVATE shoal_runtime)
	add_dependencies(runtime-container shoal-monitor)
	add_test(NAME integration/runtime-container
		COMMAND runtime-container $<TARGET_FILE:shoal-monitor>)
	set_tests_properties(integration/runtime-container PROPERTIES
		LABELS integration TIMEOUT 300 SKIP_RETURN_CODE 77)
endif()
