// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stdlib.h>

#include "lib/cleanup.h"
#include "lib/json.h"
#include "lib/util.h"

static const char *json_type_name(json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return "object";
	case JSON_ARRAY:
		return "array";
	case JSON_STRING:
		return "string";
	case JSON_INTEGER:
		return "integer";
	case JSON_REAL:
		return "number";
	case JSON_TRUE:
	case JSON_FALSE:
		return "boolean";
	default:
		return "null";
	}
}

int json_get_string(json_t *obj, const char *key, const char **ret, struct shoal_err *err)
{
	json_t *v = json_object_get(obj, key);
	if (!v || json_is_null(v))
		return -ENOENT;
	if (!json_is_string(v))
		return shoal_err_set(err, EINVAL, "%s: expected a string, got %s", key,
				     json_type_name(v));
	*ret = json_string_value(v);
	return 0;
}

int json_get_int(json_t *obj, const char *key, int64_t *ret, struct shoal_err *err)
{
	json_t *v = json_object_get(obj, key);
	if (!v || json_is_null(v))
		return -ENOENT;
	if (json_is_integer(v)) {
		*ret = json_integer_value(v);
		return 0;
	}
	if (json_is_real(v)) {
		/* 1e3 is an integer written as a number; 1e300 and 1.5 are not */
		double d = json_real_value(v);
		if (d >= -9.2e18 && d <= 9.2e18 && d == (double)(int64_t)d) {
			*ret = (int64_t)d;
			return 0;
		}
		return shoal_err_set(err, EINVAL, "%s: expected an integer, got %g", key, d);
	}
	return shoal_err_set(err, EINVAL, "%s: expected an integer, got %s", key,
			     json_type_name(v));
}

int json_get_bool(json_t *obj, const char *key, bool *ret, struct shoal_err *err)
{
	json_t *v = json_object_get(obj, key);
	if (!v || json_is_null(v))
		return -ENOENT;
	if (!json_is_boolean(v))
		return shoal_err_set(err, EINVAL, "%s: expected a boolean, got %s", key,
				     json_type_name(v));
	*ret = json_is_true(v);
	return 0;
}

int json_get_strv(json_t *obj, const char *key, bool allow_string, char ***ret,
		  struct shoal_err *err)
{
	json_t *v = json_object_get(obj, key);
	if (!v || json_is_null(v))
		return -ENOENT;
	_cleanup_strv_ char **out = calloc(1, sizeof(char *));
	if (!out)
		return -ENOMEM;
	if (json_is_string(v) && allow_string) {
		if (strv_push(&out, json_string_value(v)) < 0)
			return -ENOMEM;
	} else if (json_is_array(v)) {
		size_t i;
		json_t *e;
		json_array_foreach(v, i, e)
		{
			if (!json_is_string(e))
				return shoal_err_set(err, EINVAL,
						     "%s[%zu]: expected a string, got %s", key, i,
						     json_type_name(e));
			if (strv_push(&out, json_string_value(e)) < 0)
				return -ENOMEM;
		}
	} else {
		return shoal_err_set(err, EINVAL, "%s: expected an array of strings, got %s", key,
				     json_type_name(v));
	}
	*ret = TAKE_PTR(out);
	return 0;
}

int json_get_object(json_t *obj, const char *key, json_t **ret, struct shoal_err *err)
{
	json_t *v = json_object_get(obj, key);
	if (!v || json_is_null(v))
		return -ENOENT;
	if (!json_is_object(v))
		return shoal_err_set(err, EINVAL, "%s: expected an object, got %s", key,
				     json_type_name(v));
	*ret = v;
	return 0;
}
