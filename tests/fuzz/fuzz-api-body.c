// SPDX-License-Identifier: Apache-2.0
/* libFuzzer over what shoald does with a /containers/create body before it
 * touches any state: JSON parsing with the agent's flags, then the field-by-
 * field check. Any input must end in success or a message, never a crash. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <jansson.h>

#include "agent/container-config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	json_error_t jerr;
	json_t *j = json_loadb((const char *)data, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!j)
		return 0;
	if (json_is_object(j)) {
		struct shoal_err err = {0};
		if (container_config_check(j, &err) < 0 && err.msg[0] == '\0')
			__builtin_trap(); /* every refusal names its reason */
	}
	json_decref(j);
	return 0;
}
