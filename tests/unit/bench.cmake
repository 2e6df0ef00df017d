# SPDX-License-Identifier: Apache-2.0
# The latency recorder of `shoal bench http` against known distributions.
shoal_add_unit_test(test-bench-hist SOURCES ${CMAKE_CURRENT_LIST_DIR}/test-bench-hist.c
	LIBS shoal_bench_san m)
# `shoal bench compare` on a recorded result: a 20% regression flagged, 1% not.
shoal_add_unit_test(test-bench-compare SOURCES ${CMAKE_CURRENT_LIST_DIR}/test-bench-compare.c
	LIBS shoal_bench_san m)
target_compile_definitions(test-bench-compare PRIVATE
	BENCH_DATA_DIR="${CMAKE_CURRENT_LIST_DIR}/data")
# `shoal bench report`: one latency chart per variant, self-contained HTML.
shoal_add_unit_test(test-bench-report SOURCES ${CMAKE_CURRENT_LIST_DIR}/test-bench-report.c
	LIBS shoal_bench_san m)
target_compile_definitions(test-bench-report PRIVATE
	BENCH_DATA_DIR="${CMAKE_CURRENT_LIST_DIR}/data")
# `shoal bench tcp|udp` and the load generators' shared parts: echo payloads,
# ADDR:PORT, the open-loop schedule, the rounds, the client namespace's /30s.
shoal_add_unit_test(test-bench-net SOURCES ${CMAKE_CURRENT_LIST_DIR}/test-bench-net.c
	LIBS shoal_bench_san m)
# `shoal bench report`'s scaling curves: points where the axes put them.
shoal_add_unit_test(test-bench-curve SOURCES ${CMAKE_CURRENT_LIST_DIR}/test-bench-curve.c
	LIBS shoal_bench_san m)
