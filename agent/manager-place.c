// SPDX-License-Identifier: Apache-2.0
/* Placement's side of the manager (agent/manager-place.c): the nodes and the
 * tasks holding resources as the scheduler sees them, the specs parsed for
 * it, dry runs, and a service's status; what agent/manager.c shares with it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent.h"
#include "agent/executor.h"
#include "agent/manager-internal.h"
#include "agent/manager.h"
#include "agent/membership.h"
#include "agent/publish.h"
#include "agent/task-cache.h"
#include "lib/cleanup.h"
#include "lib/log.h"
#include "lib/util.h"
#include "sched/orchestrator.h"
#include "sched/scheduler.h"
#include "sched/spec.h"

/* ---- nodes ---- */

/* The node records, each with its liveness as its state: the membership's
 * cache, kept from the store's watches, not a read of every record. */
int mgr_nodes_load(struct agent *a, json_t **ret, struct shoal_err *err)
{
	json_t *nodes = membership_nodes(a);
	if (!nodes)
		return shoal_err_set(err, ENOMEM, "the node list is not available");
	*ret = json_incref(nodes);
	return 0;
}

enum node_availability mgr_node_avail(json_t *n)
{
	const char *s =
		json_string_value(json_object_get(json_object_get(n, "Spec"), "Availability"));
	if (s && strcmp(s, "pause") == 0)
		return NODE_PAUSE;
	if (s && strcmp(s, "drain") == 0)
		return NODE_DRAIN;
	return NODE_ACTIVE;
}

/* The scheduler's view of the cluster: nodes, and the tasks holding resources
 * (but except_sid's). */
struct sched_cluster *mgr_build_cluster(struct agent *a, json_t *nodes, struct task_cache *tc,
					const char *except_sid, uint64_t *ret_sig)
{
	/* what placement depends on: the nodes (their versions, this one's
	 * limit) and the tasks holding resources */
	uint64_t sig = 1469598103934665603ull, holders = 0;
#define SIG_ADD(v) (sig = (sig ^ (uint64_t)(v)) * 1099511628211ull)
	struct sched_cluster *cl = sched_cluster_new();
	if (!cl)
		return NULL;
	size_t i;
	json_t *n;
	json_array_foreach(nodes, i, n)
	{
		json_t *desc = json_object_get(n, "Description");
		json_t *lab = json_object_get(json_object_get(n, "Spec"), "Labels");
		char **labels = calloc(json_object_size(lab) + 1, sizeof(char *));
		size_t k = 0;
		const char *lk;
		json_t *lv;
		json_object_foreach(lab, lk, lv)
		{
			if (asprintf(&labels[k], "%s=%s", lk, json_string_value(lv) ?: "") >= 0)
				k++;
		}
		const char *role =
			json_string_value(json_object_get(json_object_get(n, "Spec"), "Role"));
		struct sched_node_desc d = {
			.id = json_string_value(json_object_get(n, "ID")),
			.hostname = json_string_value(json_object_get(desc, "Hostname")),
			.role = role && strcmp(role, "worker") == 0 ? NODE_WORKER : NODE_MANAGER,
			.os = "linux",
			.arch = json_string_value(
				json_object_get(json_object_get(desc, "Platform"), "Architecture")),
			.labels = (const char *const *)labels,
			.availability = mgr_node_avail(n),
			.ready = strcmp(json_string_value(json_object_get(
						json_object_get(n, "Status"), "State"))
						?: "",
					"ready") == 0,
			.total = {.nano_cpus = json_integer_value(json_object_get(
					  json_object_get(desc, "Resources"), "NanoCPUs")),
				  .memory_bytes = json_integer_value(json_object_get(
					  json_object_get(desc, "Resources"), "MemoryBytes"))},
		};
		/* this node's own limit, as it stands now; other nodes' are theirs */
		if (d.id && strcmp(d.id, a->node_id) == 0)
			d.max_tasks = executor_task_capacity(a);
		SIG_ADD(mgr_task_rev(n));
		SIG_ADD(d.max_tasks);
		SIG_ADD(d.ready);
		if (d.id)
			sched_cluster_add_node(cl, &d, NULL);
		strv_free(labels);
	}
	/* one node lookup per run of tasks on the same node */
	const char *last_node = NULL;
	int idx = -1;
	for (struct task_entry *e = task_cache_holding(tc); e; e = e->onext) {
		if (except_sid && strcmp(e->svc->id, except_sid) == 0)
			continue;
		if (!last_node || strcmp(last_node, e->node_id) != 0) {
			idx = sched_cluster_find_node(cl, e->node_id);
			last_node = e->node_id;
		}
		if (idx < 0)
			continue;
		struct sched_task st_ = {.service_id = e->svc->id, .reservations = e->reservations};
		sched_cluster_add_task(cl, (uint32_t)idx, &st_, NULL);
		/* which task holds what where, in any order (a task's state
		 * moving on its node changes nothing here) */
		uint64_t h = 1469598103934665603ull;
		for (const char *p = e->id; *p; p++)
			h = (h ^ (unsigned char)*p) * 1099511628211ull;
		h ^= (uint64_t)idx * 0x9e3779b97f4a7c15ull;
		h ^= (uint64_t)e->reservations.nano_cpus * 0xc2b2ae3d27d4eb4full;
		h ^= (uint64_t)e->reservations.memory_bytes * 0x165667b19e3779f9ull;
		holders += h ^ (h >> 31);
	}
	SIG_ADD(holders);
#undef SIG_ADD
	if (ret_sig)
		*ret_sig = sig;
	return cl;
}

void mgr_request_from_spec(const char *sid, const struct service_spec *spec, uint32_t count,
			   struct sched_request *req)
{
	memset(req, 0, sizeof(*req));
	req->service_id = sid;
	req->count = count;
	req->reservations = spec->task.reservations;
	req->constraints = spec->task.constraints;
	req->n_constraints = spec->task.n_constraints;
	req->prefs = spec->task.prefs;
	req->n_prefs = spec->task.n_prefs;
	req->max_replicas = spec->task.max_replicas;
	req->ports = spec->ports;
	req->n_ports = spec->n_ports;
}

struct service_spec *mgr_parse_spec(json_t *spec_json)
{
	struct service_spec *spec = NULL;
	if (service_spec_from_json(spec_json, &spec, NULL) < 0)
		return NULL;
	return spec;
}

int manager_plan(struct agent *a, const char *service_id, const struct service_spec *spec,
		 json_t **ret, struct shoal_err *err)
{
	json_t *nodes = NULL;
	if (!mgr_task_cache(a))
		return shoal_err_set(err, EAGAIN, "the manager is not running");
	if (mgr_nodes_load(a, &nodes, err) < 0)
		return -EIO;
	/* the service's own tasks would be replaced: they hold nothing in the plan */
	struct sched_cluster *cl = mgr_build_cluster(a, nodes, mgr_task_cache(a), service_id, NULL);
	json_t *plan = json_array();
	int r = 0;
	if (spec->mode == SERVICE_GLOBAL) {
		struct sched_request req;
		mgr_request_from_spec(service_id, spec, 1, &req);
		req.dry_run = true;
		size_t i;
		json_t *n;
		json_array_foreach(nodes, i, n)
		{
			const char *id = json_string_value(json_object_get(n, "ID"));
			int idx = sched_cluster_find_node(cl, id);
			struct shoal_err e = {0};
			if (idx >= 0 && sched_place_on_node(cl, &req, (uint32_t)idx, &e) == 0)
				json_array_append_new(
					plan, json_pack("{s:s, s:s}", "NodeID", id, "NodeHostname",
							json_string_value(json_object_get(
								json_object_get(n, "Description"),
								"Hostname"))
								?: ""));
			else
				json_array_append_new(plan, json_pack("{s:s, s:s}", "NodeID", id,
								      "Unplaced", e.msg));
		}
	} else {
		struct sched_request req;
		mgr_request_from_spec(service_id, spec, (uint32_t)spec->replicas, &req);
		req.dry_run = true;
		struct sched_result res = {0};
		r = sched_place(cl, &req, &res, err);
		for (uint32_t i = 0; r >= 0 && i < res.count; i++) {
			if (res.nodes[i] < 0) {
				json_array_append_new(
					plan, json_pack("{s:I, s:s}", "Slot", (json_int_t)i + 1,
							"Unplaced",
							res.explanation ?: "no suitable node"));
				continue;
			}
			const char *nid = sched_cluster_node_id(cl, (uint32_t)res.nodes[i]);
			const char *hn = "";
			size_t k;
			json_t *n;
			json_array_foreach(nodes, k, n)
			{
				if (strcmp(json_string_value(json_object_get(n, "ID")) ?: "",
					   nid) == 0)
					hn = json_string_value(json_object_get(
						     json_object_get(n, "Description"), "Hostname"))
						     ?: "";
			}
			json_array_append_new(plan, json_pack("{s:I, s:s, s:s}", "Slot",
							      (json_int_t)i + 1, "NodeID", nid,
							      "NodeHostname", hn));
		}
		sched_result_done(&res);
	}
	sched_cluster_free(cl);
	json_decref(nodes);
	if (r < 0) {
		json_decref(plan);
		return r;
	}
	*ret = plan;
	return 0;
}

void manager_service_status(struct agent *a, json_t *svc)
{
	const char *sid = json_string_value(json_object_get(svc, "ID")) ?: "";
	json_t *tasks = manager_service_tasks(a, sid);
	json_int_t running = 0, desired = 0, completed = 0;
	const char *i;
	json_t *t;
	json_object_foreach(tasks, i, t)
	{
		const char *ds = json_string_value(json_object_get(t, "DesiredState")) ?: "";
		const char *st =
			json_string_value(json_object_get(json_object_get(t, "Status"), "State"))
				?: "";
		if (strcmp(ds, "running") == 0) {
			desired++;
			if (strcmp(st, "running") == 0)
				running++;
		}
		if (strcmp(st, "complete") == 0)
			completed++;
	}
	json_t *spec = json_object_get(svc, "Spec");
	json_t *rep = json_object_get(json_object_get(spec, "Mode"), "Replicated");
	if (rep)
		desired = json_integer_value(json_object_get(rep, "Replicas"));
	json_object_set_new(svc, "ServiceStatus",
			    json_pack("{s:I, s:I, s:I}", "RunningTasks", running, "DesiredTasks",
				      desired, "CompletedTasks", completed));
	/* Docker's Endpoint, with the data plane's counters per published port */
	json_t *eps = json_object_get(spec, "EndpointSpec");
	json_t *ports = json_object_get(eps, "Ports");
	if (json_array_size(ports)) {
		json_t *out = json_array();
		size_t k;
		json_t *pc;
		json_array_foreach(ports, k, pc)
		{
			json_t *e = json_deep_copy(pc);
			const char *pr = json_string_value(json_object_get(pc, "Protocol"));
			json_t *stats = publish_port_stats(
				a, pr && strcmp(pr, "udp") == 0 ? 17 : 6,
				(int)json_integer_value(json_object_get(pc, "PublishedPort")));
			if (stats)
				json_object_set_new(e, "Stats", stats);
			json_array_append_new(out, e);
		}
		json_t *ep = json_object_get(svc, "Endpoint");
		if (!json_is_object(ep)) {
			ep = json_object();
			json_object_set_new(svc, "Endpoint", ep);
		}
		json_object_set(ep, "Spec", eps);
		json_object_set_new(ep, "Ports", out);
	}
	json_t *upd = json_object_get(svc, "Updater");
	if (upd) {
		struct orch_update u = {0};
		if (orch_update_from_json(upd, &u, NULL) == 0) {
			json_t *us = orch_update_status_json(&u);
			if (us)
				json_object_set_new(svc, "UpdateStatus", us);
			orch_update_clear(&u);
		}
	}
}
