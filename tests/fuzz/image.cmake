# SPDX-License-Identifier: Apache-2.0
# fuzz-image-load: libFuzzer over image_store_load, built with clang (checked,
# with its libFuzzer runtime, in CMakeLists.txt). The image sources are compiled
# with the fuzzer and ASan; shoal_lib is linked as built.
set(_image_fuzz_bin ${CMAKE_CURRENT_BINARY_DIR}/fuzz-image-load)
set(_image_fuzz_src
	${CMAKE_CURRENT_SOURCE_DIR}/fuzz-image-load.c
	${PROJECT_SOURCE_DIR}/runtime/image-load.c
	${PROJECT_SOURCE_DIR}/runtime/image-ref.c
	${PROJECT_SOURCE_DIR}/runtime/image-store.c
	${PROJECT_SOURCE_DIR}/runtime/image-unpack.c)
add_custom_command(OUTPUT ${_image_fuzz_bin}
	COMMAND ${SHOAL_CLANG} -g -O1 -std=gnu11 -D_GNU_SOURCE
		-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
		-I${PROJECT_SOURCE_DIR} ${JANSSON_CFLAGS} ${LIBARCHIVE_CFLAGS}
		${_image_fuzz_src} $<TARGET_FILE:shoal_lib>
		${LIBARCHIVE_LDFLAGS} ${JANSSON_LDFLAGS} ${OPENSSL_LDFLAGS} -lpthread
		-o ${_image_fuzz_bin}
	DEPENDS ${_image_fuzz_src} shoal_lib
		${PROJECT_SOURCE_DIR}/runtime/image.h
		${PROJECT_SOURCE_DIR}/runtime/image-internal.h
	COMMENT "Building fuzz-image-load with clang/libFuzzer"
	VERBATIM)
# A small seed with the same shape as the busybox image (two layers, a
# whiteout, an opaque directory) but a stub binary, well under libFuzzer's
# default 1 MiB input limit.
set(_image_seeds ${CMAKE_CURRENT_BINARY_DIR}/image-seeds)
file(WRITE ${CMAKE_CURRENT_BINARY_DIR}/image-stub-busybox "#!/bin/sh\necho bin/sh usr/bin/env\n")
file(CHMOD ${CMAKE_CURRENT_BINARY_DIR}/image-stub-busybox
	PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE)
add_custom_command(OUTPUT ${_image_seeds}/tiny.tar
	COMMAND ${CMAKE_COMMAND} -E make_directory ${_image_seeds}
	COMMAND ${CMAKE_COMMAND} -E env BUSYBOX=${CMAKE_CURRENT_BINARY_DIR}/image-stub-busybox
		${PROJECT_SOURCE_DIR}/scripts/mkimage-busybox.sh ${_image_seeds}/tiny.tar tiny:1
	DEPENDS ${PROJECT_SOURCE_DIR}/scripts/mkimage-busybox.sh
	VERBATIM)
add_custom_target(fuzz-image-load ALL DEPENDS ${_image_fuzz_bin} ${_image_seeds}/tiny.tar)
add_dependencies(fuzz-image-load test-image)

# 20 s over the seeds (the tiny image, the busybox image); the new corpus and the store go to a
# temporary directory removed on exit.
add_test(NAME fuzz/image-load
	COMMAND sh -c "d=$(mktemp -d /tmp/shoal-fuzz-image.XXXXXX) || exit 1; trap 'rm -rf \"$d\"' EXIT; mkdir \"$d/corpus\" \"$d/store\" && SHOAL_FUZZ_STORE=\"$d/store\" \"$0\" -max_total_time=20 -rss_limit_mb=1024 \"$d/corpus\" \"$1\" \"$2\""
		${_image_fuzz_bin} ${_image_seeds} ${CMAKE_BINARY_DIR}/images)
set_tests_properties(fuzz/image-load PROPERTIES LABELS fuzz TIMEOUT 120)
