# SPDX-License-Identifier: Apache-2.0
# Agent integration tests: shell scripts driving shoald and shoal as root.
foreach(t agent-run agent-restart agent-restart-policy agent-concurrent agent-api agent-service agent-publish publish-proxy
		agent-hardening agent-limits agent-http agent-disk agent-scale agent-crash bench-http bench-net docker-cli docker-cli-more image-pull policy cluster cluster-alloc cluster-join overlay-cluster overlay-connect policy-cluster agent-volumes agent-networks bench-cluster bench-lb bench-overlay bench-policy bench-policy-api bench-policy-cluster agent-secrets stack-cluster)
	if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/${t}.sh)
		add_test(NAME integration/${t} COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/${t}.sh)
		set_tests_properties(integration/${t} PROPERTIES LABELS integration TIMEOUT 600
			SKIP_RETURN_CODE 77 ENVIRONMENT "SHOAL_BUILD=${CMAKE_BINARY_DIR}")
	endif()
endforeach()

# agent-publish once more with every optional data-plane feature turned off,
# as if the kernel lacked it: the same traffic through the fallbacks.
if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/agent-publish.sh)
	add_test(NAME integration/agent-publish-fallbacks
		COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/agent-publish.sh)
	set_tests_properties(integration/agent-publish-fallbacks PROPERTIES LABELS integration
		TIMEOUT 600 SKIP_RETURN_CODE 77 ENVIRONMENT
		"SHOAL_BUILD=${CMAKE_BINARY_DIR};SHOAL_LB_DISABLE=xdp,host-routing,socket-lb,coarse-clock")
endif()

# overlay-cluster once more with the VXLAN source filter's nftables fallback
# forced on, as if the eBPF program did not load.
if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/overlay-cluster.sh)
	add_test(NAME integration/overlay-cluster-nft-filter
		COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/overlay-cluster.sh)
	set_tests_properties(integration/overlay-cluster-nft-filter PROPERTIES LABELS integration
		TIMEOUT 600 SKIP_RETURN_CODE 77 ENVIRONMENT
		"SHOAL_BUILD=${CMAKE_BINARY_DIR};SHOAL_VXLAN_FILTER=nft")
endif()

# The docker CLI scripts once more with Debian's client (docker.io 20.10, API
# 1.41; scripts/deps.sh puts its binary there): what older clients send.
foreach(t docker-cli docker-cli-more)
	if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/${t}.sh)
		add_test(NAME integration/${t}-20.10 COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/${t}.sh)
		set_tests_properties(integration/${t}-20.10 PROPERTIES LABELS integration
			TIMEOUT 600 SKIP_RETURN_CODE 77 ENVIRONMENT
			"SHOAL_BUILD=${CMAKE_BINARY_DIR};DOCKER=/usr/local/libexec/shoal/docker-20.10")
	endif()
endforeach()
