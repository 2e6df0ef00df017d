// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "agent/agent.h"
#include "agent/cluster.h"
#include "agent/networks.h"
#include "agent/swarm.h"
#include "lib/cleanup.h"
#include "lib/log.h"
#include "lib/util.h"

/* n characters of [0-9a-z] from the kernel's random source */
static int random_base36(char *buf, size_t n)
{
	static const char digits[] = "0123456789abcdefghijklmnopqrstuvwxyz";
	unsigned char raw[64];
	if (n > sizeof(raw) || getrandom(raw, n, 0) != (ssize_t)n)
		return -EIO;
	for (size_t i = 0; i < n; i++)
		buf[i] = digits[raw[i] % 36]; /* 256 % 36 = 4: a bias of 1.6%, kept */
	buf[n] = '\0';
	return 0;
}

/* SWMTKN-1-<50 characters naming the cluster>-<25 random ones>, the shape of
 * Docker's tokens (where the middle part is the root CA's digest). */
static int make_token(const char *cluster_id, char ret[96])
{
	char digest[65], secret[26];
	sha256_hex(cluster_id, strlen(cluster_id), digest);
	if (random_base36(secret, 25) < 0)
		return -EIO;
	snprintf(ret, 96, "%s%.50s-%s", SWARM_TOKEN_PREFIX, digest, secret);
	return 0;
}

/* Compares in time independent of where the two differ. */
static bool token_eq(const char *a, const char *b)
{
	size_t na = strlen(a), nb = strlen(b);
	unsigned char d = na != nb;
	for (size_t i = 0; i < na && i < nb; i++)
		d |= (unsigned char)(a[i] ^ b[i]);
	return d == 0;
}

static json_t *default_spec(struct agent *a)
{
	return json_pack("{s:s, s:{}, s:{s:i}, s:{s:i, s:i, s:i, s:i, s:i}, s:{s:I},"
			 " s:{s:I}, s:{}, s:{s:b}}",
			 "Name", "default", "Labels", "Orchestration", "TaskHistoryRetentionLimit",
			 a->cfg.task_history_limit, "Raft", "SnapshotInterval", 10000,
			 "KeepOldSnapshots", 0, "LogEntriesForSlowFollowers", 500, "ElectionTick",
			 10, "HeartbeatTick", 1, "Dispatcher", "HeartbeatPeriod",
			 (json_int_t)a->cfg.node_ttl_s * 1000000000, "CAConfig", "NodeCertExpiry",
			 (json_int_t)7776000000000000, "TaskDefaults", "EncryptionConfig",
			 "AutoLockManagers", 0);
}

static int create_record(struct agent *a, struct shoal_err *err)
{
	char hex[65], id[26], worker[96], manager[96], now[40];
	int r = random_hex_id(hex);
	if (r < 0)
		return shoal_err_errno(err, -r, "naming the cluster");
	/* Docker's cluster ids: 25 characters */
	memcpy(id, hex, 25);
	id[25] = '\0';
	if (make_token(id, worker) < 0 || make_token(id, manager) < 0)
		return shoal_err_set(err, EIO, "making the join tokens");
	format_rfc3339(now_ns(), now);
	_cleanup_(json_decrefp) json_t *rec =
		json_pack("{s:s, s:s, s:s, s:o, s:{s:s, s:s}, s:[s], s:i, s:i}", "ID", id,
			  "CreatedAt", now, "UpdatedAt", now, "Spec", default_spec(a), "JoinTokens",
			  "Worker", worker, "Manager", manager, "DefaultAddrPool", "10.0.0.0/8",
			  "SubnetSize", 24, "DataPathPort", 4789);
	if (!rec)
		return shoal_err_set(err, ENOMEM, "out of memory");
	r = cluster_put(a, CLUSTER_SWARM, rec, 0, NULL, err);
	if (r == -EAGAIN) /* another manager made it first: theirs stands */
		return 0;
	if (r < 0)
		return shoal_err_wrap(err, "recording the cluster");
	log_info("swarm: made cluster %s", id);
	/* a cluster of nodes (etcd) gets swarm's default ingress network, the
	 * routing mesh of services without a network of their own (on one node
	 * they stay on its bridge, where their ports answer anyway) */
	if (strcmp(a->cfg.store_backend, "etcd") != 0)
		return 0;
	_cleanup_(json_decrefp) json_t *body =
		json_pack("{s:s, s:s, s:b}", "Name", "ingress", "Driver", "overlay", "Ingress", 1);
	json_t *ret = NULL;
	struct shoal_err e = {0};
	if (!body || network_create(a, body, &ret, &e) < 0)
		log_warn("swarm: making the ingress network: %s (published ports answer from "
			 "the local tasks of services without a network; `network create "
			 "--ingress -d overlay ingress` makes it)",
			 body ? e.msg : "out of memory");
	json_decref(ret);
	return 0;
}

int swarm_get(struct agent *a, json_t **ret, int64_t *ret_rev, struct shoal_err *err)
{
	json_t *rec = NULL;
	int64_t rev = 0;
	int r = cluster_get(a, CLUSTER_SWARM, &rec, &rev, err);
	if (r < 0)
		return r;
	json_object_set_new(rec, "Version", json_pack("{s:I}", "Index", (json_int_t)rev));
	json_object_set_new(rec, "TLSInfo", json_object());
	json_object_set_new(rec, "RootRotationInProgress", json_false());
	if (ret_rev)
		*ret_rev = rev;
	*ret = rec;
	return 0;
}

int swarm_start(struct agent *a, struct shoal_err *err)
{
	const char *token = a->cfg.join_token;
	if (!token)
		return strcmp(a->cfg.role, "manager") == 0 ? create_record(a, err) : 0;
	_cleanup_(json_decrefp) json_t *rec = NULL;
	int r = cluster_get(a, CLUSTER_SWARM, &rec, NULL, err);
	if (r == -ENOENT)
		return shoal_err_set(
			err, ENOENT,
			"--join-token: the store holds no cluster yet; start its first "
			"manager without --join-token (it makes the cluster and its "
			"tokens)");
	if (r < 0)
		return shoal_err_wrap(err, "--join-token: reading the cluster");
	json_t *tokens = json_object_get(rec, "JoinTokens");
	const char *worker = json_string_value(json_object_get(tokens, "Worker"));
	const char *manager = json_string_value(json_object_get(tokens, "Manager"));
	const char *role = NULL;
	if (manager && token_eq(token, manager))
		role = "manager";
	else if (worker && token_eq(token, worker))
		role = "worker";
	if (!role)
		return shoal_err_set(
			err, EACCES,
			"--join-token: not a join token of the cluster in this store "
			"(another cluster's, mistyped, or rotated since: `docker swarm "
			"join-token worker|manager` on a manager shows the current ones)");
	if (a->cfg.role_given && strcmp(a->cfg.role, role) != 0)
		return shoal_err_set(err, EINVAL,
				     "--role %s: the join token is the cluster's %s token",
				     a->cfg.role, role);
	char *dup = strdup(role);
	if (!dup)
		return shoal_err_set(err, ENOMEM, "out of memory");
	free(a->cfg.role);
	a->cfg.role = dup;
	log_info("swarm: joining cluster %s as a %s", json_string_value(json_object_get(rec, "ID")),
		 role);
	return 0;
}

/* Whether want (a member of a spec the caller sent) asks for nothing that
 * have (what shoal has) does not: equal where both have a value, zero where
 * only want has one. path names the first difference. */
static bool spec_same(json_t *have, json_t *want, char *path, size_t len)
{
	if (json_is_object(want)) {
		const char *k;
		json_t *v;
		size_t n = strlen(path);
		json_object_foreach(want, k, v)
		{
			snprintf(path + n, len - n, "%s%s", n ? "." : "", k);
			if (!spec_same(json_object_get(have, k), v, path, len))
				return false;
		}
		path[n] = '\0';
		return true;
	}
	if (!have)
		return json_is_null(want) || json_is_false(want) ||
		       (json_is_integer(want) && json_integer_value(want) == 0) ||
		       (json_is_string(want) && !*json_string_value(want)) ||
		       (json_is_array(want) && !json_array_size(want));
	return json_equal(have, want);
}

int swarm_update(struct agent *a, json_t *spec, int64_t version, bool rotate_worker,
		 bool rotate_manager, struct shoal_err *err)
{
	_cleanup_(json_decrefp) json_t *rec = NULL;
	int64_t rev = 0;
	int r = cluster_get(a, CLUSTER_SWARM, &rec, &rev, err);
	if (r < 0)
		return r;
	if (version != rev)
		return shoal_err_set_status(
			err, 409, EAGAIN,
			"update out of sequence: the cluster is at version %lld, "
			"not %lld (read it again)",
			(long long)rev, (long long)version);
	json_t *cur = json_object_get(rec, "Spec");
	if (json_is_object(spec)) {
		const char *name = json_string_value(json_object_get(spec, "Name"));
		if (name && *name && strcmp(name, "default") != 0)
			return shoal_err_set_status(err, 400, EINVAL,
						    "Spec.Name: a cluster is named \"default\"");
		json_t *labels = json_object_get(spec, "Labels");
		if (labels && !json_is_null(labels) && !json_is_object(labels))
			return shoal_err_set_status(err, 400, EINVAL,
						    "Spec.Labels: expected an object of strings");
		const char *k;
		json_t *v;
		json_object_foreach(labels, k, v) if (
			!json_is_string(
				v)) return shoal_err_set_status(err, 400, EINVAL,
								"Spec.Labels.%s: expected a string",
								k);
		json_object_foreach(spec, k, v)
		{
			if (strcmp(k, "Name") == 0 || strcmp(k, "Labels") == 0)
				continue;
			char path[256];
			snprintf(path, sizeof(path), "%s", k);
			if (spec_same(json_object_get(cur, k), v, path, sizeof(path)))
				continue;
			const char *why =
				strcmp(k, "EncryptionConfig") == 0
					? "autolock is not supported by shoal"
				: strcmp(k, "CAConfig") == 0
					? "shoal has no certificate authority of its own (the "
					  "store's TLS is the cluster's)"
					: "the agents' flags set it (--task-history-limit, "
					  "--node-ttl)";
			return shoal_err_set_status(err, 400, EINVAL,
						    "Spec.%s: cannot be changed in shoal: %s", path,
						    why);
		}
		json_object_set_new(cur, "Labels",
				    json_is_object(labels) ? json_incref(labels) : json_object());
	}
	json_t *tokens = json_object_get(rec, "JoinTokens");
	const char *id = json_string_value(json_object_get(rec, "ID"));
	char tok[96];
	if (rotate_worker) {
		if (make_token(id, tok) < 0)
			return shoal_err_set(err, EIO, "making a join token");
		json_object_set_new(tokens, "Worker", json_string(tok));
	}
	if (rotate_manager) {
		if (make_token(id, tok) < 0)
			return shoal_err_set(err, EIO, "making a join token");
		json_object_set_new(tokens, "Manager", json_string(tok));
	}
	char now[40];
	format_rfc3339(now_ns(), now);
	json_object_set_new(rec, "UpdatedAt", json_string(now));
	r = cluster_put(a, CLUSTER_SWARM, rec, rev, NULL, err);
	if (r == -EAGAIN)
		return shoal_err_set_status(
			err, 409, EAGAIN, "update out of sequence: the cluster changed meanwhile");
	return r;
}
