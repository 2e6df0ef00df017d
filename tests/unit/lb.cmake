# SPDX-License-Identifier: Apache-2.0
shoal_add_unit_test(test-maglev SOURCES ${CMAKE_CURRENT_LIST_DIR}/test-maglev.c LIBS shoal_lb_san)
# The NAT rewrite's checksum arithmetic (bpf/lib/csum.h), every kind of skb.
shoal_add_unit_test(test-lb-csum SOURCES ${CMAKE_CURRENT_LIST_DIR}/test-lb-csum.c LIBS shoal_lb_san)
# Feature names, the disable list, verifier reasons: no kernel needed.
shoal_add_unit_test(test-lb-features SOURCES ${CMAKE_CURRENT_LIST_DIR}/test-lb-features.c
	LIBS shoal_lb_san)

# BPF_PROG_TEST_RUN tables and the socket hooks (tests/bpf/): root, bpffs,
# cgroup v2; they exit 77 (skip) only for what the machine lacks, saying so.
# A program that does not load is a failure.
#
# Every fallback runs on every kernel: each suite runs again with the
# optional features it covers turned off through SHOAL_LB_DISABLE, as if
# the kernel lacked them, and asserts what is done instead.
set(bpf_test_env "ASAN_OPTIONS=detect_leaks=1" "UBSAN_OPTIONS=print_stacktrace=1")
function(shoal_bpf_test name exe)
	cmake_parse_arguments(T "" "DISABLE" "ARGS" ${ARGN})
	set(env ${bpf_test_env})
	if(T_DISABLE)
		list(APPEND env "SHOAL_LB_DISABLE=${T_DISABLE}")
	endif()
	add_test(NAME ${name} COMMAND ${exe} ${T_ARGS})
	set_tests_properties(${name} PROPERTIES LABELS "bpf" TIMEOUT 300 SKIP_RETURN_CODE 77
		ENVIRONMENT "${env}")
endfunction()

foreach(t test-lb-bpf test-sock-lb test-lb-fwd test-lb-mesh)
	add_executable(${t} ${PROJECT_SOURCE_DIR}/tests/bpf/${t}.c)
	target_compile_options(${t} PRIVATE ${SHOAL_SAN_FLAGS})
	target_link_options(${t} PRIVATE -fsanitize=address,undefined)
	target_link_libraries(${t} PRIVATE shoal_lb_san PkgConfig::CMOCKA)
endforeach()

shoal_bpf_test(bpf/lb test-lb-bpf)
shoal_bpf_test(bpf/lb-fallbacks test-lb-bpf DISABLE "xdp,host-routing,coarse-clock")
# Its own entry: kernels before 6.11 have no BPF_F_TEST_SKB_CHECKSUM_COMPLETE.
shoal_bpf_test(bpf/lb-csum-complete test-lb-bpf ARGS checksum-complete)
# The knobs take the helpers out of the programs (read back through kallsyms).
shoal_bpf_test(bpf/lb-knobs test-lb-bpf ARGS knobs)
shoal_bpf_test(bpf/sock-lb test-sock-lb)
shoal_bpf_test(bpf/sock-lb-fallback test-sock-lb DISABLE "socket-lb")
shoal_bpf_test(bpf/lb-fwd test-lb-fwd)
shoal_bpf_test(bpf/lb-fwd-fallback test-lb-fwd DISABLE "host-routing")
# The routing mesh's return path: basic helpers only, no fallback to force.
shoal_bpf_test(bpf/lb-mesh test-lb-mesh)
