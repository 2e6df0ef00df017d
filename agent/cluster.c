// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include "agent/agent.h"
#include "agent/cluster.h"
#include "agent/manager.h"
#include "agent/store/store.h"
#include "lib/log.h"
#include "lib/util.h"

int cluster_get(struct agent *a, const char *key, json_t **ret, int64_t *ret_rev,
		struct shoal_err *err)
{
	struct store_kvs *kvs = NULL;
	int r = store_get(a->store, key, false, 0, &kvs, err);
	if (r < 0)
		return r;
	if (kvs->n == 0) {
		store_kvs_free(kvs);
		return shoal_err_set_status(err, 404, ENOENT, "%s not found", key);
	}
	json_error_t jerr;
	json_t *j = json_loadb(kvs->kvs[0].value, kvs->kvs[0].value_len, 0, &jerr);
	if (!j) {
		store_kvs_free(kvs);
		return shoal_err_set(err, EBADMSG, "stored object %s is not JSON: %s", key,
				     jerr.text);
	}
	if (ret_rev)
		*ret_rev = kvs->kvs[0].mod_revision;
	json_object_set_new(j, "Version",
			    json_pack("{s:I}", "Index", (json_int_t)kvs->kvs[0].mod_revision));
	store_kvs_free(kvs);
	*ret = j;
	return 0;
}

int cluster_list(struct agent *a, const char *prefix, json_t **ret, struct shoal_err *err)
{
	struct store_kvs *kvs = NULL;
	int r = store_get(a->store, prefix, true, 0, &kvs, err);
	if (r < 0)
		return r;
	json_t *arr = json_array();
	for (size_t i = 0; i < kvs->n; i++) {
		json_t *j = json_loadb(kvs->kvs[i].value, kvs->kvs[i].value_len, 0, NULL);
		if (!j) {
			log_warn("store: %s is not JSON; skipped", kvs->kvs[i].key);
			continue;
		}
		json_object_set_new(
			j, "Version",
			json_pack("{s:I}", "Index", (json_int_t)kvs->kvs[i].mod_revision));
		json_array_append_new(arr, j);
	}
	store_kvs_free(kvs);
	*ret = arr;
	return 0;
}

int cluster_put(struct agent *a, const char *key, json_t *obj, int64_t expect_rev, int64_t *ret_rev,
		struct shoal_err *err)
{
	json_t *copy = json_copy(obj);
	json_object_del(copy, "Version");
	char *s = json_dumps(copy, JSON_COMPACT);
	json_decref(copy);
	if (!s)
		return shoal_err_set(err, ENOMEM, "encoding %s", key);
	struct store_op op = {.type = STORE_OP_PUT, .key = key, .value = s, .value_len = strlen(s)};
	struct store_txn_result res = {0};
	int r;
	if (expect_rev < 0) {
		int64_t rev = 0;
		r = store_put(a->store, key, s, strlen(s), 0, &rev, err);
		free(s);
		if (r >= 0)
			manager_note_write(a, key, rev);
		if (r >= 0 && ret_rev)
			*ret_rev = rev;
		cluster_kick(a);
		return r;
	}
	struct store_cmp cmp = {
		.key = key, .target = STORE_CMP_MOD, .op = STORE_CMP_EQ, .num = expect_rev};
	r = store_txn(a->store, &cmp, 1, &op, 1, NULL, 0, &res, err);
	free(s);
	if (r < 0)
		return r;
	bool ok = res.succeeded;
	int64_t rev = res.revision;
	store_txn_result_clear(&res);
	if (!ok)
		return shoal_err_set_status(
			err, 409, EAGAIN,
			"update out of sequence: %s changed since version %lld; read it again and retry",
			key, (long long)expect_rev);
	manager_note_write(a, key, rev);
	if (ret_rev)
		*ret_rev = rev;
	cluster_kick(a);
	return 0;
}

int cluster_delete(struct agent *a, const char *key, int64_t expect_rev, struct shoal_err *err)
{
	/* a transaction even when unconditional: it tells the revision written */
	struct store_cmp cmp = {
		.key = key, .target = STORE_CMP_MOD, .op = STORE_CMP_EQ, .num = expect_rev};
	struct store_op op = {.type = STORE_OP_DELETE, .key = key};
	struct store_txn_result res = {0};
	int r = store_txn(a->store, &cmp, expect_rev < 0 ? 0 : 1, &op, 1, NULL, 0, &res, err);
	if (r < 0)
		return r;
	bool ok = res.succeeded;
	if (ok)
		manager_note_write(a, key, res.revision);
	store_txn_result_clear(&res);
	if (!ok)
		return shoal_err_set_status(
			err, 409, EAGAIN, "%s changed since version %lld; read it again and retry",
			key, (long long)expect_rev);
	cluster_kick(a);
	return 0;
}

void cluster_kick(struct agent *a)
{
	manager_kick(a);
}
