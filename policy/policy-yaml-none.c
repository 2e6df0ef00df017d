/* SPDX-License-Identifier: Apache-2.0 */
/* Built without libyaml: YAML policies are refused, saying why. */
#include <errno.h>

#include "lib/err.h"
#include "policy/policy-internal.h"

bool policy_yaml_supported(void)
{
	return false;
}

int policy_yaml_to_json(const char *buf, size_t len, json_t **ret, struct shoal_err *err)
{
	return shoal_err_set_status(err, 400, ENOTSUP,
				    "YAML policies need shoal built with libyaml (libyaml-dev); "
				    "give the policy as JSON");
}

int policy_from_yaml(const char *buf, size_t len, struct policy **ret, struct shoal_err *err)
{
	return policy_yaml_to_json(buf, len, NULL, err);
}
