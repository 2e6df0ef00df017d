# SPDX-License-Identifier: Apache-2.0
shoal_add_unit_test(test-maglev SOURCES ${CMAKE_CURRENT_LIST_DIR}/test-maglev.c LIBS shoal_lb_san)
# The NAT rewrite's checksum arithmetic (bpf/lib/csum.h), every kind of skb.
shoal_add_unit_test(test-lb-csum SOURCES ${CMAKE_CURRENT_LIST_DIR}/test-lb-csum.c LIBS shoal_lb_san)

# BPF_PROG_TEST_RUN tables (tests/bpf/): root, bpffs; skip with 77 otherwise.
if(CMOCKA_FOUND)
	add_executable(test-lb-bpf ${PROJECT_SOURCE_DIR}/tests/bpf/test-lb-bpf.c)
	target_compile_options(test-lb-bpf PRIVATE ${SHOAL_SAN_FLAGS})
	target_link_options(test-lb-bpf PRIVATE -fsanitize=address,undefined)
	target_link_libraries(test-lb-bpf PRIVATE shoal_lb_san PkgConfig::CMOCKA)
	add_test(NAME bpf/lb COMMAND test-lb-bpf)
	set_tests_properties(bpf/lb PROPERTIES LABELS "bpf" TIMEOUT 300 SKIP_RETURN_CODE 77
		ENVIRONMENT "ASAN_OPTIONS=detect_leaks=1;UBSAN_OPTIONS=print_stacktrace=1")
endif()

# East-west socket hooks on a child cgroup v2 (tests/bpf/): root, cgroup v2;
# skip with 77 otherwise.
if(CMOCKA_FOUND)
	add_executable(test-sock-lb ${PROJECT_SOURCE_DIR}/tests/bpf/test-sock-lb.c)
	target_compile_options(test-sock-lb PRIVATE ${SHOAL_SAN_FLAGS})
	target_link_options(test-sock-lb PRIVATE -fsanitize=address,undefined)
	target_link_libraries(test-sock-lb PRIVATE shoal_lb_san PkgConfig::CMOCKA)
	add_test(NAME bpf/sock-lb COMMAND test-sock-lb)
	set_tests_properties(bpf/sock-lb PROPERTIES LABELS "bpf" TIMEOUT 300 SKIP_RETURN_CODE 77
		ENVIRONMENT "ASAN_OPTIONS=detect_leaks=1;UBSAN_OPTIONS=print_stacktrace=1")
endif()

# Host routing to local endpoints (tests/bpf/): root, bpffs; skip with 77
# otherwise.
if(CMOCKA_FOUND)
	add_executable(test-lb-fwd ${PROJECT_SOURCE_DIR}/tests/bpf/test-lb-fwd.c)
	target_compile_options(test-lb-fwd PRIVATE ${SHOAL_SAN_FLAGS})
	target_link_options(test-lb-fwd PRIVATE -fsanitize=address,undefined)
	target_link_libraries(test-lb-fwd PRIVATE shoal_lb_san PkgConfig::CMOCKA)
	add_test(NAME bpf/lb-fwd COMMAND test-lb-fwd)
	set_tests_properties(bpf/lb-fwd PROPERTIES LABELS "bpf" TIMEOUT 300 SKIP_RETURN_CODE 77
		ENVIRONMENT "ASAN_OPTIONS=detect_leaks=1;UBSAN_OPTIONS=print_stacktrace=1")
endif()
