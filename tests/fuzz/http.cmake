# SPDX-License-Identifier: Apache-2.0
# fuzz-api-http: libFuzzer over the agent's whole HTTP request path (agent/http.c
# and its connection guard, on libevent's evhttp and http_parser; stub route
# handlers), built with clang (checked, with its libFuzzer runtime, in
# CMakeLists.txt).
set(_http_fuzz_bin ${CMAKE_CURRENT_BINARY_DIR}/fuzz-api-http)
set(_http_fuzz_src
	${CMAKE_CURRENT_SOURCE_DIR}/fuzz-api-http.c
	${PROJECT_SOURCE_DIR}/agent/http.c
	${PROJECT_SOURCE_DIR}/agent/http-guard.c
	${PROJECT_SOURCE_DIR}/lib/log.c
	${PROJECT_SOURCE_DIR}/lib/err.c
	${PROJECT_SOURCE_DIR}/lib/util.c)
add_custom_command(OUTPUT ${_http_fuzz_bin}
	COMMAND ${SHOAL_CLANG} -g -O1 -std=gnu11 -D_GNU_SOURCE
		-DSHOAL_VERSION="${PROJECT_VERSION}"
		-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
		-I${PROJECT_SOURCE_DIR} ${JANSSON_CFLAGS} ${LIBEVENT_CFLAGS}
		${_http_fuzz_src} ${LIBEVENT_LDFLAGS} ${JANSSON_LDFLAGS} ${OPENSSL_LDFLAGS} ${HTTP_PARSER_LIBRARY}
		-o ${_http_fuzz_bin}
	DEPENDS ${_http_fuzz_src} ${PROJECT_SOURCE_DIR}/agent/http.h
		${PROJECT_SOURCE_DIR}/agent/http-internal.h
		${PROJECT_SOURCE_DIR}/agent/api.h ${PROJECT_SOURCE_DIR}/agent/agent.h
	COMMENT "Building fuzz-api-http with clang/libFuzzer"
	VERBATIM)
add_custom_target(fuzz-api-http ALL DEPENDS ${_http_fuzz_bin})
add_test(NAME fuzz/api-http
	COMMAND sh -c "d=$(mktemp -d /tmp/shoal-fuzz-http.XXXXXX) || exit 1; trap 'rm -rf \"$d\"' EXIT; \"$0\" -max_total_time=15 -rss_limit_mb=1024 -max_len=8192 \"$d\" \"$1\""
		${_http_fuzz_bin} ${CMAKE_CURRENT_SOURCE_DIR}/http-seeds)
set_tests_properties(fuzz/api-http PROPERTIES LABELS fuzz TIMEOUT 120)
