// SPDX-License-Identifier: Apache-2.0
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/http.h>

#include "agent/agent.h"
#include "agent/api.h"
#include "agent/cluster.h"
#include "agent/container.h"
#include "agent/container-config.h"
#include "agent/manager.h"
#include "agent/membership.h"
#include "agent/networks.h"
#include "agent/overlay-agent.h"
#include "agent/publish.h"
#include "agent/secrets.h"
#include "lib/cleanup.h"
#include "lib/log.h"
#include "lib/util.h"
#include "runtime/image.h"
#include "sched/spec.h"
#include "sched/update.h"

/* Services, tasks and nodes: Docker's swarm API objects, kept in the store. */

static void id25(char out[26])
{
	char hex[65];
	random_hex_id(hex);
	memcpy(out, hex, 25);
	out[25] = '\0';
}

/* Published ports: the data plane must be there, and a port published by
 * someone else is a conflict (said here with its owner for what this node can
 * see; the reservation written with the record decides between managers). A
 * port of 0 gets one from the assignment range as the record is written
 * (host mode: per task, where it runs). */
static bool ports_prepare(struct api_req *r, json_t *full, const char *except_id)
{
	json_t *ports = json_object_get(json_object_get(full, "EndpointSpec"), "Ports");
	if (json_array_size(ports) == 0)
		return true;
	struct shoal_err err = {0};
	if (!publish_available(r->agent, &err)) {
		api_reply_error(r, 400, "EndpointSpec.Ports: cannot publish ports: %s", err.msg);
		return false;
	}
	size_t i;
	json_t *pc;
	json_array_foreach(ports, i, pc)
	{
		const char *pr = json_string_value(json_object_get(pc, "Protocol"));
		int proto = pr && strcmp(pr, "udp") == 0 ? 17 : 6;
		if (pr && strcmp(pr, "tcp") != 0 && strcmp(pr, "udp") != 0) {
			api_reply_error(
				r, 400,
				"EndpointSpec.Ports[%zu]: protocol %s cannot be published yet (tcp and udp can)",
				i, pr);
			return false;
		}
		int port = (int)json_integer_value(json_object_get(pc, "PublishedPort"));
		if (port == 0)
			continue; /* assigned with the record (host mode: per task) */
		char owner[160];
		if (publish_port_owner(r->agent, proto, port, except_id, owner, sizeof(owner))) {
			api_reply_error(r, 409, "port %d/%s is already published by %s", port,
					proto == 17 ? "udp" : "tcp", owner);
			return false;
		}
		for (size_t k = 0; k < i; k++) {
			json_t *o = json_array_get(ports, k);
			const char *op = json_string_value(json_object_get(o, "Protocol"));
			if (json_integer_value(json_object_get(o, "PublishedPort")) == port &&
			    (op && strcmp(op, "udp") == 0 ? 17 : 6) == proto) {
				api_reply_error(r, 400,
						"EndpointSpec.Ports: port %d/%s is published twice",
						port, proto == 17 ? "udp" : "tcp");
				return false;
			}
		}
	}
	return true;
}

/* Docker's X-Registry-Auth on a create or update (`--with-registry-auth`):
 * the credentials the nodes pull the service's image with, kept in the record
 * out of the spec and never shown. An update without it keeps what was given
 * before. False and err when it cannot be read. */
static bool registry_auth_take(struct api_req *r, json_t *svc, struct shoal_err *err)
{
	const char *auth = r->req ? evhttp_find_header(evhttp_request_get_input_headers(r->req),
						       "X-Registry-Auth")
				  : NULL;
	if (!auth || !*auth)
		return true;
	if (image_pull_auth_check(auth, err) < 0) {
		shoal_err_wrap(err, "the registry credentials cannot be used");
		err->status = 400;
		return false;
	}
	json_object_set_new(svc, "RegistryAuth", json_string(auth));
	return true;
}

/* A service by full id, unique id prefix or name; NULL and a reply if none. */
static json_t *find_object(struct api_req *r, const char *prefix, const char *ref, const char *what,
			   bool by_name)
{
	struct shoal_err err = {0};
	json_t *all = NULL;
	if (cluster_list(r->agent, prefix, &all, &err) < 0) {
		api_reply_err(r, &err);
		return NULL;
	}
	json_t *match = NULL;
	size_t i, n = 0;
	json_t *o;
	json_array_foreach(all, i, o)
	{
		const char *id = json_string_value(json_object_get(o, "ID")) ?: "";
		const char *name =
			json_string_value(json_object_get(json_object_get(o, "Spec"), "Name"))
				?: "";
		if (json_is_true(json_object_get(o, "Removed")))
			continue;
		if (strcmp(id, ref) == 0 || (by_name && strcmp(name, ref) == 0)) {
			match = o;
			n = 1;
			break;
		}
		if (str_has_prefix(id, ref)) {
			match = o;
			n++;
		}
	}
	if (n == 1)
		json_incref(match);
	json_decref(all);
	if (n == 0)
		api_reply_error(r, 404, "%s %s not found", what, ref);
	else if (n > 1)
		api_reply_error(r, 400, "%s %s is ambiguous (%zu matches); use more characters",
				what, ref, n);
	return n == 1 ? match : NULL;
}

/* Asks for nothing: null, false, 0, "", an empty object or array. */
/* Asks for nothing: null, false, 0, "", [], or an object of such (the docker
 * CLI's stack deploy sends Privileges {"CredentialSpec": null, ...}). */
static bool spec_zero(json_t *v)
{
	if (json_is_object(v)) {
		const char *k;
		json_t *m;
		json_object_foreach(v, k, m) if (!spec_zero(m)) return false;
		return true;
	}
	return !v || json_is_null(v) || json_is_false(v) ||
	       (json_is_integer(v) && json_integer_value(v) == 0) ||
	       (json_is_string(v) && !json_string_length(v)) ||
	       (json_is_array(v) && !json_array_size(v));
}

/* The members of obj shoal's service spec does not read, when they ask for
 * something: refused naming them (the spec parser itself passes unknown
 * members by, as clients send more than they set). */
static bool spec_refuse_unread(struct api_req *r, json_t *obj, const char *where,
			       const char *const *known, size_t n)
{
	const char *k;
	json_t *v;
	json_object_foreach(obj, k, v)
	{
		bool read = false;
		for (size_t i = 0; i < n && !read; i++)
			read = strcmp(k, known[i]) == 0;
		if (read || spec_zero(v) ||
		    (strcmp(k, "Isolation") == 0 && json_is_string(v) &&
		     strcmp(json_string_value(v), "default") == 0))
			continue;
		api_reply_error(r, 400,
				"%s.%s: not supported by shoal; leave it out (it would not be "
				"applied)",
				where, k);
		return true;
	}
	return false;
}

static bool spec_unsupported(struct api_req *r, json_t *body)
{
	static const char *const top[] = {"Name",	  "Labels",	    "TaskTemplate", "Mode",
					  "UpdateConfig", "RollbackConfig", "EndpointSpec"};
	static const char *const task[] = {"ContainerSpec", "Resources", "RestartPolicy",
					   "Placement",	    "Networks",	 "ForceUpdate",
					   "Runtime"};
	static const char *const ctr[] = {"Image",
					  "Labels",
					  "Command",
					  "Args",
					  "Hostname",
					  "Env",
					  "Dir",
					  "User",
					  "Init",
					  "StopSignal",
					  "StopGracePeriod",
					  "Healthcheck",
					  "ReadOnly",
					  "CapabilityAdd",
					  "CapabilityDrop",
					  "Mounts",
					  "Secrets",
					  "Configs"};
	json_t *tt = json_object_get(body, "TaskTemplate");
	const char *rt = json_string_value(json_object_get(tt, "Runtime"));
	if (rt && *rt && strcmp(rt, "container") != 0) {
		api_reply_error(
			r, 400,
			"TaskTemplate.Runtime: \"%s\" is not supported by shoal (container)", rt);
		return true;
	}
	return spec_refuse_unread(r, body, "Spec", top, ARRAY_SIZE(top)) ||
	       spec_refuse_unread(r, tt, "TaskTemplate", task, ARRAY_SIZE(task)) ||
	       spec_refuse_unread(r, json_object_get(tt, "ContainerSpec"),
				  "TaskTemplate.ContainerSpec", ctr, ARRAY_SIZE(ctr));
}

/* Why a network alias is not a name the DNS can answer, NULL when it is. */
static const char *alias_invalid(const char *a)
{
	size_t len = strlen(a);
	if (!len)
		return "is empty";
	if (strncasecmp(a, "tasks.", 6) == 0)
		return "starts with tasks. (the DNS's name for a service's tasks)";
	if (a[0] == '.' || a[0] == '-' || a[len - 1] == '.' || a[len - 1] == '-' || strstr(a, ".."))
		return "is not a DNS name";
	for (const char *c = a; *c; c++)
		if (!isalnum((unsigned char)*c) && *c != '-' && *c != '_' && *c != '.')
			return "holds a character a DNS name cannot";
	struct in_addr in;
	if (inet_pton(AF_INET, a, &in) == 1)
		return "is an address";
	return NULL;
}

/* Whether a service of this spec joins the ingress network: none of its own
 * and a port published in ingress mode. */
static bool on_ingress(json_t *spec)
{
	if (json_array_size(json_object_get(json_object_get(spec, "TaskTemplate"), "Networks")))
		return false;
	size_t i;
	json_t *pc;
	json_array_foreach(json_object_get(json_object_get(spec, "EndpointSpec"), "Ports"), i, pc)
	{
		const char *m = json_string_value(json_object_get(pc, "PublishMode"));
		if (!m || strcmp(m, "host") != 0)
			return true;
	}
	return false;
}

static json_t *spec_from_body(struct api_req *r, json_t *body, struct service_spec **ret_spec)
{
	if (spec_unsupported(r, body))
		return NULL;
	struct spec_errors errs;
	spec_errors_init(&errs);
	struct service_spec *spec = NULL;
	int ret = service_spec_from_json(body, &spec, &errs);
	if (ret < 0) {
		struct shoal_err err = {0};
		if (ret == -ENOMEM)
			api_reply_error(r, 500, "out of memory");
		else {
			spec_errors_format(&errs, &err);
			api_reply_err(r, &err);
		}
		return NULL;
	}
	/* the mounts by the rules of a container's, so that what no node could
	 * mount is refused here rather than by every task */
	struct shoal_err merr = {0};
	if (container_mounts_check("TaskTemplate.ContainerSpec.Mounts", spec->task.container.mounts,
				   &merr) < 0) {
		service_spec_free(spec);
		api_reply_error(r, 400, "%s", merr.msg);
		return NULL;
	}
	/* networks: overlay ones, held by id (a network made later under the
	 * same name is another one) */
	if (spec->task.n_networks > CONTAINER_ATT_MAX) {
		api_reply_error(r, 400,
				"TaskTemplate.Networks: %zu networks given; a task joins %d at "
				"most (eth0 to eth%d)",
				spec->task.n_networks, CONTAINER_ATT_MAX, CONTAINER_ATT_MAX - 1);
		service_spec_free(spec);
		return NULL;
	}
	for (size_t i = 0; i < spec->task.n_networks; i++) {
		struct spec_network *sn = &spec->task.networks[i];
		/* aliases: more names the embedded DNS answers on this network */
		for (size_t k = 0; sn->aliases && sn->aliases[k]; k++) {
			const char *why = alias_invalid(sn->aliases[k]);
			if (!why)
				continue;
			api_reply_error(
				r, 400,
				"TaskTemplate.Networks[%zu].Aliases: \"%s\" %s: an alias is "
				"a DNS name (letters, digits, '-', '_' and '.')",
				i, sn->aliases[k], why);
			service_spec_free(spec);
			return NULL;
		}
		json_t *net = NULL;
		struct shoal_err nerr = {0};
		if (network_get(r->agent, sn->target, &net, &nerr) < 0) {
			shoal_err_wrap(&nerr, "TaskTemplate.Networks[%zu]", i);
			api_reply_err(r, &nerr);
			service_spec_free(spec);
			return NULL;
		}
		const char *driver = json_string_value(json_object_get(net, "Driver"));
		const char *nid = json_string_value(json_object_get(net, "Id"));
		if (json_is_true(json_object_get(net, "Ingress"))) {
			api_reply_error(
				r, 400,
				"TaskTemplate.Networks[%zu]: service cannot be explicitly "
				"attached to the ingress network \"%s\": a service publishing "
				"a port in ingress mode joins it by itself",
				i, sn->target);
			json_decref(net);
			service_spec_free(spec);
			return NULL;
		}
		if (!driver || strcmp(driver, "overlay") != 0 || !nid) {
			api_reply_error(r, 400,
					"TaskTemplate.Networks[%zu]: network %s is not an overlay "
					"network: a service's tasks join overlay networks "
					"(network create -d overlay)",
					i, sn->target);
			json_decref(net);
			service_spec_free(spec);
			return NULL;
		}
		char *id = strdup(nid);
		json_decref(net);
		if (!id) {
			api_reply_error(r, 500, "out of memory");
			service_spec_free(spec);
			return NULL;
		}
		for (size_t k = 0; k < i; k++) {
			if (strcmp(spec->task.networks[k].target, id) != 0)
				continue;
			api_reply_error(
				r, 400,
				"TaskTemplate.Networks[%zu]: network %s is already attached "
				"by Networks[%zu]",
				i, sn->target, k);
			free(id);
			service_spec_free(spec);
			return NULL;
		}
		free(sn->target);
		sn->target = id;
	}
	json_t *full = service_spec_to_json(spec);
	struct shoal_err serr = {0};
	if (full && secrets_service_resolve(r->agent, full, &serr) < 0) {
		api_reply_err(r, &serr);
		json_decref(full);
		service_spec_free(spec);
		return NULL;
	}
	if (ret_spec)
		*ret_spec = spec;
	else
		service_spec_free(spec);
	return full;
}

static bool name_taken(struct agent *a, const char *name, const char *except_id)
{
	json_t *all = NULL;
	if (cluster_list(a, CLUSTER_SERVICES, &all, NULL) < 0)
		return false;
	bool taken = false;
	size_t i;
	json_t *o;
	json_array_foreach(all, i, o)
	{
		const char *n =
			json_string_value(json_object_get(json_object_get(o, "Spec"), "Name"));
		const char *id = json_string_value(json_object_get(o, "ID"));
		if (json_is_true(json_object_get(o, "Removed")))
			continue;
		if (n && strcmp(n, name) == 0 && (!except_id || !id || strcmp(id, except_id) != 0))
			taken = true;
	}
	json_decref(all);
	return taken;
}

void api_service_create(struct api_req *r)
{
	json_t *body = api_body_json(r, false);
	if (!body)
		return;
	char id[26];
	id25(id);
	const char *given = json_string_value(json_object_get(body, "Name"));
	if (!json_object_get(body, "Name") || (given && !*given)) {
		/* Docker's CLI names unnamed services; shoald does, from the id */
		char n[32];
		snprintf(n, sizeof(n), "svc-%.8s", id);
		json_object_set_new(body, "Name", json_string(n));
	}
	struct service_spec *spec = NULL;
	json_t *full = spec_from_body(r, body, &spec);
	json_decref(body);
	if (!full)
		return;
	char name[128];
	snprintf(name, sizeof(name), "%s", json_string_value(json_object_get(full, "Name")) ?: "");
	if (api_query_bool(r, "dryRun", false)) {
		struct shoal_err err = {0};
		json_t *plan = NULL;
		if (manager_plan(r->agent, id, spec, &plan, &err) < 0)
			api_reply_err(r, &err);
		else
			api_reply_json(r, 200, json_pack("{s:o}", "Plan", plan));
		service_spec_free(spec);
		json_decref(full);
		return;
	}
	service_spec_free(spec);
	if (!ports_prepare(r, full, NULL)) {
		json_decref(full);
		return;
	}
	if (name_taken(r->agent, name, NULL)) {
		json_decref(full);
		api_reply_error(r, 409, "service %s already exists; pick another name or update it",
				name);
		return;
	}
	char now[40];
	format_rfc3339(now_ns(), now);
	json_t *svc = json_pack("{s:s, s:s, s:s, s:o, s:i}", "ID", id, "CreatedAt", now,
				"UpdatedAt", now, "Spec", full, "SpecVersion", 1);
	struct shoal_err err = {0};
	if (!registry_auth_take(r, svc, &err)) {
		json_decref(svc);
		api_reply_err(r, &err);
		return;
	}
	/* with its virtual IP (unless DNS round robin) and published ports,
	 * reserved in the same write */
	int ret = publish_service_commit(r->agent, svc, NULL, 0, NULL, &err);
	json_decref(svc);
	if (ret < 0) {
		api_reply_err(r, &err);
		return;
	}
	log_info("service %s (%s) created", name, id);
	api_reply_json(r, 201, json_pack("{s:s, s:[]}", "ID", id, "Warnings"));
}

void api_service_list(struct api_req *r)
{
	struct shoal_err err = {0};
	json_t *all = NULL;
	if (cluster_list(r->agent, CLUSTER_SERVICES, &all, &err) < 0) {
		api_reply_err(r, &err);
		return;
	}
	json_t *out = json_array();
	size_t i;
	json_t *o;
	json_array_foreach(all, i, o)
	{
		if (json_is_true(json_object_get(o, "Removed")))
			continue;
		manager_service_status(r->agent, o);
		json_object_del(o, "RegistryAuth");
		json_array_append(out, o);
	}
	json_decref(all);
	api_reply_json(r, 200, out);
}

void api_service_inspect(struct api_req *r)
{
	json_t *svc = find_object(r, CLUSTER_SERVICES, r->params[0], "service", true);
	if (!svc)
		return;
	manager_service_status(r->agent, svc);
	json_object_del(svc, "RegistryAuth");
	api_reply_json(r, 200, svc);
}

void api_service_update(struct api_req *r)
{
	json_t *svc = find_object(r, CLUSTER_SERVICES, r->params[0], "service", true);
	if (!svc)
		return;
	int64_t version;
	if (api_query_int(r, "version", -1, &version) < 0) {
		json_decref(svc);
		return;
	}
	/* what the record held before, for the allocations it drops */
	_cleanup_(json_decrefp) json_t *before = json_deep_copy(svc);
	if (version < 0) {
		json_decref(svc);
		api_reply_error(r, 400,
				"version is required: the service's Version.Index you read");
		return;
	}
	json_t *body = api_body_json(r, false);
	if (!body) {
		json_decref(svc);
		return;
	}
	const char *rollback = api_query(r, "rollback");
	json_t *full;
	json_t *cur = json_object_get(svc, "Spec");
	char now[40];
	format_rfc3339(now_ns(), now);
	json_int_t curv = json_integer_value(json_object_get(svc, "SpecVersion"));
	if (curv <= 0)
		curv = 1;
	if (rollback && strcmp(rollback, "previous") == 0) {
		json_t *prev = json_object_get(svc, "PreviousSpec");
		if (!prev) {
			json_decref(body);
			json_decref(svc);
			api_reply_error(r, 400, "service %s has no previous spec to roll back to",
					r->params[0]);
			return;
		}
		full = json_incref(prev);
		json_int_t prevv = json_integer_value(json_object_get(svc, "PreviousSpecVersion"));
		struct orch_update u = {0};
		orch_update_from_json(json_object_get(svc, "Updater"), &u, NULL);
		orch_update_rollback(&u, (uint64_t)curv, (uint64_t)prevv, now_ns(), NULL);
		json_object_set_new(svc, "Updater", orch_update_to_json(&u));
		orch_update_clear(&u);
		json_object_set_new(svc, "SpecVersion", json_integer(prevv));
		json_object_set_new(svc, "PreviousSpecVersion", json_integer(curv));
	} else {
		struct service_spec *nspec = NULL;
		full = spec_from_body(r, body, &nspec);
		if (!full) {
			json_decref(body);
			json_decref(svc);
			return;
		}
		if (api_query_bool(r, "dryRun", false)) {
			/* where the updated service's tasks would go; nothing changes */
			struct shoal_err perr = {0};
			json_t *plan = NULL;
			if (manager_plan(r->agent, json_string_value(json_object_get(svc, "ID")),
					 nspec, &plan, &perr) < 0)
				api_reply_err(r, &perr);
			else
				api_reply_json(r, 200, json_pack("{s:o}", "Plan", plan));
			service_spec_free(nspec);
			json_decref(full);
			json_decref(body);
			json_decref(svc);
			return;
		}
		service_spec_free(nspec);
		if (!ports_prepare(r, full, json_string_value(json_object_get(svc, "ID")))) {
			json_decref(full);
			json_decref(body);
			json_decref(svc);
			return;
		}
		if (strcmp(json_string_value(json_object_get(full, "Name")) ?: "",
			   json_string_value(json_object_get(cur, "Name")) ?: "") != 0) {
			json_decref(full);
			json_decref(body);
			json_decref(svc);
			api_reply_error(r, 400, "renaming a service is not supported");
			return;
		}
		if (!json_equal(json_object_get(full, "TaskTemplate"),
				json_object_get(cur, "TaskTemplate")) ||
		    (overlay_ingress_network(r->agent) && on_ingress(full) != on_ingress(cur))) {
			/* (a port published in ingress mode or the last one
			 * gone: its tasks join the ingress network or leave it) */
			/* a new spec version: the orchestrator rolls it out */
			json_object_set_new(svc, "SpecVersion", json_integer(curv + 1));
			json_object_set_new(svc, "PreviousSpecVersion", json_integer(curv));
		} else {
			/* same tasks (scale, labels, update settings): no new version */
			json_decref(body);
			json_object_set_new(svc, "Spec", full);
			json_object_set_new(svc, "UpdatedAt", json_string(now));
			goto write;
		}
	}
	json_decref(body);
	json_object_set(svc, "PreviousSpec", cur);
	json_object_set_new(svc, "Spec", full);
	json_object_set_new(svc, "UpdatedAt", json_string(now));
write:;
	struct shoal_err err = {0};
	int ret = registry_auth_take(r, svc, &err) ? 0 : -EINVAL;
	if (ret == 0)
		ret = publish_service_commit(r->agent, svc, before, version, NULL, &err);
	json_decref(svc);
	if (ret < 0) {
		api_reply_err(r, &err);
		return;
	}
	api_reply_json(r, 200, json_pack("{s:[]}", "Warnings"));
}

void api_service_delete(struct api_req *r)
{
	json_t *svc = find_object(r, CLUSTER_SERVICES, r->params[0], "service", true);
	if (!svc)
		return;
	int64_t rev = json_integer_value(json_object_get(json_object_get(svc, "Version"), "Index"));
	/* The record stays, marked, until the orchestrator has removed its tasks;
	 * its VIP and ports are free at once (the data plane drops them now). */
	json_object_set_new(svc, "Removed", json_true());
	struct shoal_err err = {0};
	int ret = publish_service_commit(r->agent, svc, NULL, rev, NULL, &err);
	json_decref(svc);
	if (ret < 0) {
		api_reply_err(r, &err);
		return;
	}
	api_reply_empty(r, 200);
}

/* filters={"service":{"web":true},"node":{...},"desired-state":{"running":true}} */
/* Whether one of the filter's values (api_filters(): key -> [values]) is v1 or
 * a prefix of it (4 characters or more: ids), or is v2; no such filter: yes. */
static bool filter_match(json_t *filters, const char *key, const char *v1, const char *v2)
{
	json_t *vals = json_object_get(filters, key);
	if (!json_array_size(vals))
		return true;
	size_t i;
	json_t *val;
	json_array_foreach(vals, i, val)
	{
		const char *k = json_string_value(val);
		if ((v1 && (strcmp(k, v1) == 0 || (strlen(k) >= 4 && str_has_prefix(v1, k)))) ||
		    (v2 && strcmp(k, v2) == 0))
			return true;
	}
	return false;
}

/* Docker's NetworksAttachments: the task's addresses on its networks, from
 * its container's endpoint records (while it has them). */
static void task_attachments(struct agent *a, json_t *t)
{
	const char *cid = json_string_value(json_object_get(
		json_object_get(json_object_get(t, "Status"), "ContainerStatus"), "ContainerID"));
	json_t *att = overlay_ep_attachments(a, cid);
	if (json_array_size(att))
		json_object_set_new(t, "NetworksAttachments", att);
	else
		json_decref(att);
}

/* Whether a task passes GET /tasks' filters (Docker's set). by_id: service
 * id -> record; nodes: node id -> hostname, when a node filter is given. */
static bool task_filtered(json_t *filters, json_t *t, json_t *by_id, json_t *nodes)
{
	const char *sid = json_string_value(json_object_get(t, "ServiceID"));
	json_t *svc = sid ? json_object_get(by_id, sid) : NULL;
	const char *sname =
		json_string_value(json_object_get(json_object_get(svc, "Spec"), "Name"));
	const char *nid = json_string_value(json_object_get(t, "NodeID"));
	/* Docker's task names: SERVICE.SLOT, SERVICE.NODE for a global one */
	char tname[384];
	json_int_t slot = json_integer_value(json_object_get(t, "Slot"));
	if (slot > 0)
		snprintf(tname, sizeof(tname), "%s.%lld", sname ?: "", (long long)slot);
	else
		snprintf(tname, sizeof(tname), "%s.%s", sname ?: "", nid ?: "");
	if (!filter_match(filters, "service", sid, sname) ||
	    !filter_match(filters, "node", nid,
			  nid ? json_string_value(json_object_get(nodes, nid)) : NULL) ||
	    !filter_match(filters, "desired-state",
			  json_string_value(json_object_get(t, "DesiredState")), NULL) ||
	    !filter_match(filters, "id", json_string_value(json_object_get(t, "ID")), NULL) ||
	    !filter_match(filters, "runtime", "container", NULL))
		return false;
	size_t i;
	json_t *v;
	bool any = !json_array_size(json_object_get(filters, "name"));
	json_array_foreach(json_object_get(filters, "name"), i, v)
	{
		any |= str_has_prefix(tname, json_string_value(v));
	}
	if (!any)
		return false;
	/* label: the service's labels, as swarm matches a task's service
	 * annotations (`docker stack ps` finds a stack's tasks so) */
	json_t *labels = json_object_get(json_object_get(svc, "Spec"), "Labels");
	json_array_foreach(json_object_get(filters, "label"), i, v)
	{
		if (!api_filter_label(labels, json_string_value(v)))
			return false;
	}
	/* _up-to-date: tasks on their service's current spec (what the docker
	 * CLI's progress waits for), none of a service that is gone */
	json_array_foreach(json_object_get(filters, "_up-to-date"), i, v)
	{
		if (strcmp(json_string_value(v), "true") != 0 &&
		    strcmp(json_string_value(v), "1") != 0)
			continue;
		if (!svc || json_is_true(json_object_get(svc, "Removed")) ||
		    json_integer_value(
			    json_object_get(json_object_get(t, "Orch"), "SpecVersion")) !=
			    json_integer_value(json_object_get(svc, "SpecVersion")))
			return false;
	}
	return true;
}

void api_task_list(struct api_req *r)
{
	static const char *const supported[] = {"_up-to-date", "desired-state", "id",
						"label",       "name",		"node",
						"runtime",     "service"};
	json_t *filters = api_filters(r, supported, ARRAY_SIZE(supported));
	if (!filters)
		return;
	struct shoal_err err = {0};
	json_t *tasks = NULL, *services = NULL, *nodes = NULL;
	if (cluster_list(r->agent, CLUSTER_TASKS, &tasks, &err) < 0 ||
	    cluster_list(r->agent, CLUSTER_SERVICES, &services, &err) < 0 ||
	    (json_object_get(filters, "node") &&
	     cluster_list(r->agent, CLUSTER_NODES, &nodes, &err) < 0)) {
		json_decref(filters);
		json_decref(tasks);
		json_decref(services);
		api_reply_err(r, &err);
		return;
	}
	json_t *by_id = json_object(), *hostnames = json_object(), *out = json_array();
	size_t i;
	json_t *t;
	json_array_foreach(services, i, t)
	{
		const char *id = json_string_value(json_object_get(t, "ID"));
		if (id)
			json_object_set(by_id, id, t);
	}
	json_array_foreach(nodes, i, t)
	{
		const char *id = json_string_value(json_object_get(t, "ID"));
		json_t *h = json_object_get(json_object_get(t, "Description"), "Hostname");
		if (id && json_is_string(h))
			json_object_set(hostnames, id, h);
	}
	json_array_foreach(tasks, i, t)
	{
		if (!task_filtered(filters, t, by_id, hostnames))
			continue;
		/* the orchestrator's own state stays inside: Docker's task has none */
		json_object_del(t, "Orch");
		task_attachments(r->agent, t);
		json_array_append(out, t);
	}
	json_decref(by_id);
	json_decref(hostnames);
	json_decref(nodes);
	json_decref(tasks);
	json_decref(services);
	json_decref(filters);
	api_reply_json(r, 200, out);
}

void api_task_inspect(struct api_req *r)
{
	json_t *t = find_object(r, CLUSTER_TASKS, r->params[0], "task", false);
	if (t) {
		json_object_del(t, "Orch");
		task_attachments(r->agent, t);
		api_reply_json(r, 200, t);
	}
}

void api_node_list(struct api_req *r)
{
	struct shoal_err err = {0};
	json_t *all = NULL;
	if (cluster_list(r->agent, CLUSTER_NODES, &all, &err) < 0) {
		api_reply_err(r, &err);
		return;
	}
	size_t i;
	json_t *o;
	json_array_foreach(all, i, o) membership_decorate(r->agent, o);
	api_reply_json(r, 200, all);
}

static json_t *find_node(struct api_req *r, const char *ref)
{
	/* nodes are found by id, id prefix or hostname */
	struct shoal_err err = {0};
	json_t *all = NULL;
	if (cluster_list(r->agent, CLUSTER_NODES, &all, &err) < 0) {
		api_reply_err(r, &err);
		return NULL;
	}
	json_t *match = NULL;
	size_t i;
	json_t *o;
	json_array_foreach(all, i, o)
	{
		const char *id = json_string_value(json_object_get(o, "ID")) ?: "";
		const char *hn = json_string_value(json_object_get(
					 json_object_get(o, "Description"), "Hostname"))
					 ?: "";
		if (strcmp(id, ref) == 0 || strcmp(hn, ref) == 0 ||
		    (strcmp(ref, "self") == 0 && strcmp(id, r->agent->node_id) == 0) ||
		    (strlen(ref) >= 4 && str_has_prefix(id, ref)))
			match = o;
	}
	if (match)
		json_incref(match);
	json_decref(all);
	if (!match)
		api_reply_error(r, 404, "node %s not found", ref);
	return match;
}

void api_node_inspect(struct api_req *r)
{
	json_t *n = find_node(r, r->params[0]);
	if (n) {
		membership_decorate(r->agent, n);
		api_reply_json(r, 200, n);
	}
}

void api_node_update(struct api_req *r)
{
	json_t *n = find_node(r, r->params[0]);
	if (!n)
		return;
	int64_t version;
	if (api_query_int(r, "version", -1, &version) < 0) {
		json_decref(n);
		return;
	}
	json_t *body = api_body_json(r, false);
	if (!body) {
		json_decref(n);
		return;
	}
	const char *avail = json_string_value(json_object_get(body, "Availability"));
	const char *role = json_string_value(json_object_get(body, "Role"));
	json_t *labels = json_object_get(body, "Labels");
	const char *problem = NULL;
	if (version < 0)
		problem = "version is required: the node's Version.Index you read";
	else if (avail && strcmp(avail, "active") && strcmp(avail, "pause") &&
		 strcmp(avail, "drain"))
		problem = "Availability must be active, pause or drain";
	else if (role && strcmp(role, "worker") && strcmp(role, "manager"))
		problem = "Role must be worker or manager";
	else if (labels && !json_is_object(labels))
		problem = "Labels must be an object of strings";
	if (!problem && labels) {
		const char *k;
		json_t *v;
		json_object_foreach(labels, k, v) if (!json_is_string(v)) problem =
			"Labels must be an object of strings";
	}
	if (problem) {
		json_decref(body);
		json_decref(n);
		api_reply_error(r, 400, "%s", problem);
		return;
	}
	json_t *spec = json_object_get(n, "Spec");
	if (avail)
		json_object_set_new(spec, "Availability", json_string(avail));
	if (role)
		json_object_set_new(spec, "Role", json_string(role));
	json_object_set(spec, "Labels", labels ? labels : json_object());
	if (json_string_value(json_object_get(body, "Name")))
		json_object_set(spec, "Name", json_object_get(body, "Name"));
	char now[40], key[128];
	format_rfc3339(now_ns(), now);
	json_object_set_new(n, "UpdatedAt", json_string(now));
	snprintf(key, sizeof(key), "%s%s", CLUSTER_NODES,
		 json_string_value(json_object_get(n, "ID")));
	struct shoal_err err = {0};
	int ret = cluster_put(r->agent, key, n, version, NULL, &err);
	json_decref(body);
	json_decref(n);
	if (ret < 0) {
		api_reply_err(r, &err);
		return;
	}
	api_reply_empty(r, 200);
}
