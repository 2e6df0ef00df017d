/* SPDX-License-Identifier: Apache-2.0 */
/* YAML of the JSON shape: the document is turned into a jansson value, then
 * read by the JSON parser, so both forms share every check. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <yaml.h>

#include "lib/err.h"
#include "policy/policy-internal.h"

#define YAML_MAX_DEPTH 64

bool policy_yaml_supported(void)
{
	return true;
}

/* A plain scalar typed as YAML 1.2's core schema does for what a policy holds:
 * integers, true/false, null; anything else (and every quoted scalar) is a
 * string. */
static json_t *scalar_to_json(const yaml_node_t *n)
{
	const char *s = (const char *)n->data.scalar.value;
	size_t len = n->data.scalar.length;
	if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return json_stringn(s, len);
	if (len == 0 || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 || strcmp(s, "Null") == 0 ||
	    strcmp(s, "NULL") == 0)
		return json_null();
	if (strcmp(s, "true") == 0 || strcmp(s, "True") == 0 || strcmp(s, "TRUE") == 0)
		return json_true();
	if (strcmp(s, "false") == 0 || strcmp(s, "False") == 0 || strcmp(s, "FALSE") == 0)
		return json_false();
	const char *p = s + (s[0] == '-' || s[0] == '+');
	bool digits = *p != '\0' && strlen(p) <= 18;
	for (const char *q = p; digits && *q; q++)
		digits = *q >= '0' && *q <= '9';
	if (digits)
		return json_integer(strtoll(s, NULL, 10));
	return json_stringn(s, len);
}

static int node_to_json(yaml_document_t *doc, yaml_node_t *n, int depth, json_t **ret,
			struct shoal_err *err)
{
	if (depth > YAML_MAX_DEPTH)
		return shoal_err_set_status(err, 400, EINVAL, "YAML nested deeper than %d levels",
					    YAML_MAX_DEPTH);
	json_t *v = NULL;
	int r = 0;
	switch (n->type) {
	case YAML_SCALAR_NODE:
		v = scalar_to_json(n);
		break;
	case YAML_SEQUENCE_NODE:
		v = json_array();
		for (yaml_node_item_t *i = n->data.sequence.items.start;
		     v && r >= 0 && i < n->data.sequence.items.top; i++) {
			json_t *e = NULL;
			r = node_to_json(doc, yaml_document_get_node(doc, *i), depth + 1, &e, err);
			if (r >= 0 && json_array_append_new(v, e) < 0)
				r = shoal_err_set(err, ENOMEM, "out of memory reading YAML");
		}
		break;
	case YAML_MAPPING_NODE:
		v = json_object();
		for (yaml_node_pair_t *p = n->data.mapping.pairs.start;
		     v && r >= 0 && p < n->data.mapping.pairs.top; p++) {
			yaml_node_t *k = yaml_document_get_node(doc, p->key);
			if (!k || k->type != YAML_SCALAR_NODE) {
				r = shoal_err_set_status(err, 400, EINVAL,
							 "YAML line %zu: a key must be a scalar",
							 k ? k->start_mark.line + 1 : 0);
				break;
			}
			const char *key = (const char *)k->data.scalar.value;
			if (json_object_get(v, key)) {
				r = shoal_err_set_status(err, 400, EINVAL,
							 "YAML line %zu: %s is given twice",
							 k->start_mark.line + 1, key);
				break;
			}
			json_t *e = NULL;
			r = node_to_json(doc, yaml_document_get_node(doc, p->value), depth + 1, &e,
					 err);
			if (r >= 0 && json_object_set_new(v, key, e) < 0)
				r = shoal_err_set(err, ENOMEM, "out of memory reading YAML");
		}
		break;
	default:
		r = shoal_err_set_status(err, 400, EINVAL, "YAML: an empty node");
	}
	if (r >= 0 && !v)
		r = shoal_err_set(err, ENOMEM, "out of memory reading YAML");
	if (r < 0) {
		json_decref(v);
		return r;
	}
	*ret = v;
	return 0;
}

int policy_yaml_to_json(const char *buf, size_t len, json_t **ret, struct shoal_err *err)
{
	yaml_parser_t parser;
	yaml_document_t doc;
	if (!yaml_parser_initialize(&parser))
		return shoal_err_set(err, ENOMEM, "out of memory reading YAML");
	yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
	int r;
	if (!yaml_parser_load(&parser, &doc)) {
		r = shoal_err_set_status(
			err, 400, EINVAL, "not valid YAML: line %zu column %zu: %s",
			parser.problem_mark.line + 1, parser.problem_mark.column + 1,
			parser.problem ? parser.problem : "parse error");
		yaml_parser_delete(&parser);
		return r;
	}
	yaml_node_t *root = yaml_document_get_root_node(&doc);
	if (!root) {
		r = shoal_err_set_status(err, 400, EINVAL, "the YAML document is empty");
	} else {
		r = node_to_json(&doc, root, 0, ret, err);
		/* A second document would be ignored: refuse it instead. */
		yaml_document_t next;
		if (r >= 0 && yaml_parser_load(&parser, &next)) {
			if (yaml_document_get_root_node(&next)) {
				json_decref(*ret);
				r = shoal_err_set_status(err, 400, EINVAL,
							 "one policy per file: the YAML has a "
							 "second document");
			}
			yaml_document_delete(&next);
		}
	}
	yaml_document_delete(&doc);
	yaml_parser_delete(&parser);
	return r;
}

int policy_from_yaml(const char *buf, size_t len, struct policy **ret, struct shoal_err *err)
{
	json_t *j = NULL;
	int r = policy_yaml_to_json(buf, len, &j, err);
	if (r < 0)
		return r;
	r = policy_from_json(j, ret, err);
	json_decref(j);
	return r;
}
