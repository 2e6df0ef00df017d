# SPDX-License-Identifier: Apache-2.0
# fuzz-api-body: libFuzzer over the /containers/create body check (clang and
# its libFuzzer runtime are checked in CMakeLists.txt).
set(_api_fuzz_bin ${CMAKE_CURRENT_BINARY_DIR}/fuzz-api-body)
set(_api_fuzz_src
	${CMAKE_CURRENT_SOURCE_DIR}/fuzz-api-body.c
	${PROJECT_SOURCE_DIR}/agent/container-config.c
	${PROJECT_SOURCE_DIR}/agent/container-mounts.c
	${PROJECT_SOURCE_DIR}/runtime/caps.c
	${PROJECT_SOURCE_DIR}/lib/json.c
	${PROJECT_SOURCE_DIR}/lib/err.c
	${PROJECT_SOURCE_DIR}/lib/util.c)
add_custom_command(OUTPUT ${_api_fuzz_bin}
	COMMAND ${SHOAL_CLANG} -g -O1 -std=gnu11 -D_GNU_SOURCE
		-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
		-I${PROJECT_SOURCE_DIR} ${JANSSON_CFLAGS}
		${_api_fuzz_src} ${JANSSON_LDFLAGS} ${OPENSSL_LDFLAGS}
		-o ${_api_fuzz_bin}
	DEPENDS ${_api_fuzz_src} ${PROJECT_SOURCE_DIR}/agent/container-config.h
	COMMENT "Building fuzz-api-body with clang/libFuzzer"
	VERBATIM)
add_custom_target(fuzz-api-body ALL DEPENDS ${_api_fuzz_bin})
add_test(NAME fuzz/api-body
	COMMAND sh -c "d=$(mktemp -d /tmp/shoal-fuzz-api.XXXXXX) || exit 1; trap 'rm -rf \"$d\"' EXIT; \"$0\" -max_total_time=15 -rss_limit_mb=1024 -max_len=4096 \"$d\" \"$1\""
		${_api_fuzz_bin} ${CMAKE_CURRENT_SOURCE_DIR}/api-seeds)
set_tests_properties(fuzz/api-body PROPERTIES LABELS fuzz TIMEOUT 120)
