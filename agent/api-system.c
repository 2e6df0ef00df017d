// SPDX-License-Identifier: Apache-2.0
#include <stdio.h>
#include <string.h>
#include <sys/sysinfo.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "agent/agent.h"
#include "agent/api.h"
#include "agent/overlay-agent.h"
#include "agent/swarm.h"
#include "agent/policy-agent.h"
#include "agent/cluster.h"
#include "agent/container.h"
#include "agent/membership.h"
#include "runtime/cgroup.h"
#include "runtime/image.h"
#include "agent/publish.h"

void api_ping(struct api_req *r)
{
	api_reply_raw(r, 200, "text/plain; charset=utf-8", "OK", 2);
}

void api_version(struct api_req *r)
{
	struct utsname u;
	uname(&u);
	/* Docker's shape: the engine is a component; the docker CLI reads
	 * Platform.Name and Components */
	api_reply_json(
		r, 200,
		json_pack("{s:{s:s}, s:[{s:s, s:s, s:{s:s, s:s, s:s, s:s, s:s}}], s:s, s:s, s:s, "
			  "s:s, s:s, s:s}",
			  "Platform", "Name", "shoal", "Components", "Name", "Engine", "Version",
			  SHOAL_VERSION, "Details", "ApiVersion", "1.43", "MinAPIVersion", "1.24",
			  "Os", "linux", "Arch", "amd64", "KernelVersion", u.release, "Version",
			  SHOAL_VERSION, "ApiVersion", "1.43", "MinAPIVersion", "1.24", "Os",
			  "linux", "Arch", "amd64", "KernelVersion", u.release));
}

/* Docker's Swarm section of /info, from shoal's cluster; and shoal's own
 * view of the store. */
static json_t *swarm_info(struct agent *a)
{
	int nodes = 0, managers = 0;
	json_t *remote = json_array();
	json_t *all = NULL;
	if (cluster_list(a, CLUSTER_NODES, &all, NULL) == 0) {
		size_t i;
		json_t *n;
		json_array_foreach(all, i, n)
		{
			nodes++;
			json_t *mst = json_object_get(n, "ManagerStatus");
			if (!json_is_object(mst))
				continue;
			managers++;
			json_array_append_new(remote, json_pack("{s:O?, s:O?}", "NodeID",
								json_object_get(n, "ID"), "Addr",
								json_object_get(mst, "Addr")));
		}
	}
	json_decref(all);
	bool manager = strcmp(a->cfg.role, "manager") == 0;
	json_t *sw =
		json_pack("{s:s, s:s, s:s, s:b, s:s, s:o, s:i, s:i}", "NodeID", a->node_id,
			  "NodeAddr", a->cfg.advertise_addr ? a->cfg.advertise_addr : "127.0.0.1",
			  "LocalNodeState", "active", "ControlAvailable", manager, "Error",
			  membership_store_ok(a) ? "" : "the cluster store does not answer",
			  "RemoteManagers", remote, "Nodes", nodes, "Managers", managers);
	/* a manager shows the cluster, as Docker's do (without its tokens) */
	json_t *cluster = NULL;
	if (sw && manager && swarm_get(a, &cluster, NULL, NULL) == 0) {
		json_object_del(cluster, "JoinTokens");
		json_object_set_new(sw, "Cluster", cluster);
	}
	return sw;
}

static json_t *store_info(struct agent *a)
{
	const char *leader = membership_leader(a);
	return json_pack("{s:s, s:s?, s:b, s:s?, s:b, s:s, s:i}", "Backend", a->cfg.store_backend,
			 "Endpoints", a->cfg.store_endpoints, "Reachable", membership_store_ok(a),
			 "Leader", leader[0] ? leader : NULL, "Leading", membership_is_leader(a),
			 "Role", a->cfg.role, "NodeTTL", a->cfg.node_ttl_s);
}

void api_info(struct api_req *r)
{
	struct agent *a = r->agent;
	int running = 0, stopped = 0, total = 0;
	for (struct container *c = a->containers; c; c = c->next) {
		total++;
		if (c->state == CONTAINER_RUNNING)
			running++;
		else if (c->state == CONTAINER_EXITED)
			stopped++;
	}
	json_t *images = NULL;
	size_t nimages = 0;
	if (image_store_list(a->images, &images, NULL) == 0)
		nimages = json_array_size(images);
	json_decref(images);
	struct utsname u;
	uname(&u);
	struct sysinfo si;
	sysinfo(&si);
	enum rt_cgroup_layout layout = RT_CGROUP_V2;
	rt_cgroup_detect(&layout, NULL);
	const char *cgv = layout == RT_CGROUP_V2 ? "2" : "1";
	/* shoal's own: the data plane's kernel features, and a warning per
	 * one that is unavailable, as docker info has for missing support */
	json_t *features = publish_features(a);
	json_t *warnings = json_array();
	size_t i;
	json_t *f;
	json_array_foreach(features, i, f)
	{
		const char *name = json_string_value(json_object_get(f, "Name"));
		const char *state = json_string_value(json_object_get(f, "State"));
		const char *fb = json_string_value(json_object_get(f, "Fallback"));
		/* XDP not asked for is no loss, whatever the kernel has */
		if (strcmp(state, "unavailable") != 0 || (strcmp(name, "xdp") == 0 && !a->cfg.xdp))
			continue;
		char w[1024];
		snprintf(w, sizeof(w), "WARNING: data plane: %s unavailable: %s; %s", name,
			 json_string_value(json_object_get(f, "Reason")),
			 fb ? fb : "published ports are refused");
		json_array_append_new(warnings, json_string(w));
	}
	json_t *policy_fill = policy_agent_map_fill(a, warnings);
	json_t *publish_err = NULL;
	struct shoal_err perr = {0};
	if (!publish_available(a, &perr))
		publish_err = json_string(perr.msg);
	api_reply_json(
		r, 200,
		json_pack("{s:s, s:s, s:i, s:i, s:i, s:i, s:i, s:s, s:s, s:s, s:s, s:s, s:s, s:i,"
			  " s:I, s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:o*, s:o, s:o, s:o, s:o}",
			  "ID", a->node_id, "Name", a->hostname, "Containers", total,
			  "ContainersRunning", running, "ContainersPaused", 0, "ContainersStopped",
			  stopped, "Images", (int)nimages, "Driver", "overlay", "CgroupDriver",
			  "cgroupfs", "CgroupVersion", cgv, "CgroupLayout",
			  layout == RT_CGROUP_HYBRID ? "hybrid"
			  : layout == RT_CGROUP_V1   ? "v1"
						     : "v2",
			  "KernelVersion", u.release, "OperatingSystem", "linux", "NCPU",
			  (int)sysconf(_SC_NPROCESSORS_ONLN), "MemTotal",
			  (json_int_t)si.totalram * si.mem_unit, "ServerVersion", SHOAL_VERSION,
			  "DockerRootDir", a->cfg.data_dir, "RunDir", a->cfg.run_dir,
			  "CgroupParent", a->cfg.cgroup_parent, "StoreBackend",
			  a->cfg.store_backend, "DefaultRuntime", "shoal", "ShoalDataPlane",
			  features, "Warnings", warnings, "ShoalDataPlaneError", publish_err,
			  "Swarm", swarm_info(a), "ShoalStore", store_info(a), "ShoalPolicyMap",
			  policy_fill, "ShoalOverlay", overlay_agent_info(a)));
}

/* shoal's own: the published ports and where their traffic goes. */
void api_lb_list(struct api_req *r)
{
	api_reply_json(r, 200, publish_list(r->agent));
}

static void metric(FILE *f, const char *name, const char *labels, long long v)
{
	fprintf(f, "%s%s%s%s %lld\n", name, labels ? "{" : "", labels ? labels : "",
		labels ? "}" : "", v);
}

/* Prometheus text format. */
void api_metrics(struct api_req *r)
{
	struct agent *a = r->agent;
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	if (!f) {
		api_reply_error(r, 500, "out of memory");
		return;
	}
	long long running = 0, total = 0;
	for (struct container *c = a->containers; c; c = c->next) {
		total++;
		running += c->state == CONTAINER_RUNNING;
	}
	fprintf(f,
		"# HELP shoal_containers Containers on this node.\n# TYPE shoal_containers gauge\n");
	metric(f, "shoal_containers", "state=\"running\"", running);
	metric(f, "shoal_containers", "state=\"all\"", total);
	json_t *lb = publish_list(a);
	fprintf(f, "# HELP shoal_lb_packets_total Packets to a published port.\n"
		   "# TYPE shoal_lb_packets_total counter\n");
	size_t i;
	json_t *p;
	json_array_foreach(json_object_get(lb, "Ports"), i, p)
	{
		char lab[256];
		snprintf(lab, sizeof(lab), "proto=\"%s\",port=\"%lld\"",
			 json_string_value(json_object_get(p, "Protocol")),
			 (long long)json_integer_value(json_object_get(p, "PublishedPort")));
		metric(f, "shoal_lb_packets_total", lab,
		       json_integer_value(json_object_get(p, "Packets")));
		metric(f, "shoal_lb_bytes_total", lab,
		       json_integer_value(json_object_get(p, "Bytes")));
		metric(f, "shoal_lb_new_flows_total", lab,
		       json_integer_value(json_object_get(p, "NewFlows")));
		size_t k;
		json_t *b;
		json_array_foreach(json_object_get(p, "Backends"), k, b)
		{
			char blab[384];
			snprintf(blab, sizeof(blab), "%s,backend=\"%s:%lld\",state=\"%s\"", lab,
				 json_string_value(json_object_get(b, "Addr")),
				 (long long)json_integer_value(json_object_get(b, "Port")),
				 json_string_value(json_object_get(b, "State")));
			metric(f, "shoal_lb_backend_packets_total", blab,
			       json_integer_value(json_object_get(b, "Packets")));
			metric(f, "shoal_lb_backend_bytes_total", blab,
			       json_integer_value(json_object_get(b, "Bytes")));
			metric(f, "shoal_lb_backend_new_flows_total", blab,
			       json_integer_value(json_object_get(b, "NewFlows")));
		}
	}
	fprintf(f, "# HELP shoal_lb_drops_total Packets the data plane dropped, by reason.\n"
		   "# TYPE shoal_lb_drops_total counter\n");
	const char *reason;
	json_t *n;
	json_object_foreach(json_object_get(lb, "Drops"), reason, n)
	{
		char lab[128];
		snprintf(lab, sizeof(lab), "reason=\"%s\"", reason);
		metric(f, "shoal_lb_drops_total", lab, json_integer_value(n));
	}
	json_decref(lb);
	policy_agent_metrics(a, f);
	fclose(f);
	api_reply_raw(r, 200, "text/plain; version=0.0.4", text, len);
	free(text);
}
