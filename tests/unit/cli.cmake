# SPDX-License-Identifier: Apache-2.0
shoal_add_unit_test(test-cli SOURCES test-cli.c LIBS shoal_cli_san)
shoal_add_unit_test(test-cli-http SOURCES test-cli-http.c LIBS shoal_cli_san pthread)
shoal_add_unit_test(test-cli-service SOURCES test-cli-service.c LIBS shoal_cli_san pthread)
