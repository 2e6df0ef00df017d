# SPDX-License-Identifier: Apache-2.0
shoal_add_unit_test(test-maglev SOURCES ${CMAKE_CURRENT_LIST_DIR}/test-maglev.c LIBS shoal_lb_san)
