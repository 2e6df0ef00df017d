# SPDX-License-Identifier: Apache-2.0
# Agent integration tests: shell scripts driving shoald and shoal as root.
foreach(t agent-run agent-restart agent-concurrent agent-api agent-service agent-publish)
	if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/${t}.sh)
		add_test(NAME integration/${t} COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/${t}.sh)
		set_tests_properties(integration/${t} PROPERTIES LABELS integration TIMEOUT 600
			SKIP_RETURN_CODE 77 ENVIRONMENT "SHOAL_BUILD=${CMAKE_BINARY_DIR}")
	endif()
endforeach()
