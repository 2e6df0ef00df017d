// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <jansson.h>

#include "bench/bench.h"
#include "cli/cli-internal.h"
#include "cli/cli.h"
#include "lib/cleanup.h"
#include "lib/util.h"
#include "sched/scheduler.h"

/* `shoal bench sched`: the scheduler alone, on a simulated cluster in memory.
 * Nodes carry zone (z0..z9), rack and disk labels, mixed capacities, a few are
 * paused, drained or down; services of mixed sizes (1 to 10,000 tasks) add up
 * to --tasks, with reservations, some with max replicas or host ports, and with
 * --constraints one of a few constraints each. Every service is placed as one
 * request; the report gives placements per second and how even the result is. */

#define GIB  (1024ll * 1024 * 1024)
#define MIB  (1024ll * 1024)
#define NCPU 1000000000ll

struct sim_node {
	char id[24], zone[16], rack[16], disk[16];
	enum node_role role;
	enum node_availability avail;
	bool ready;
};

struct sim {
	uint32_t n_nodes;
	uint64_t n_tasks;
	bool constraints;
	const char *spread_key;	  /* "node.labels.zone" */
	const char *spread_label; /* "zone" */
	bool json;
	struct sim_node *nodes;
	struct sched_cluster *c;
};

static const uint32_t service_sizes[] = {1,   2,   3,	5,    10,   20,	  50,
					 100, 250, 500, 1000, 2500, 5000, 10000};

static const struct constraint sim_constraints[] = {
	{.key = (char *)"node.labels.zone", .op = CONSTRAINT_NE, .value = (char *)"z3"},
	{.key = (char *)"node.role", .op = CONSTRAINT_EQ, .value = (char *)"worker"},
	{.key = (char *)"node.labels.disk", .op = CONSTRAINT_EQ, .value = (char *)"ssd"},
};

static const int64_t node_cpus[] = {8, 16, 32, 64};
static const int64_t node_mem_gib[] = {32, 64, 128, 256};

static int64_t total_cpus(uint32_t i)
{
	return node_cpus[i % 4] * NCPU;
}

static int64_t total_mem(uint32_t i)
{
	return node_mem_gib[(i / 4) % 4] * GIB;
}

static int build_cluster(struct sim *s, struct shoal_err *err)
{
	s->nodes = calloc(s->n_nodes, sizeof(*s->nodes));
	s->c = sched_cluster_new();
	if (!s->nodes || !s->c)
		return shoal_err_set(err, ENOMEM, "building a cluster of %u nodes", s->n_nodes);
	for (uint32_t i = 0; i < s->n_nodes; i++) {
		struct sim_node *n = &s->nodes[i];
		snprintf(n->id, sizeof(n->id), "node-%06u", i);
		snprintf(n->zone, sizeof(n->zone), "zone=z%u", i % 10);
		snprintf(n->rack, sizeof(n->rack), "rack=r%u", (i / 10) % 40);
		snprintf(n->disk, sizeof(n->disk), "disk=%s", i % 3 ? "ssd" : "hdd");
		n->role = i % 25 == 0 ? NODE_MANAGER : NODE_WORKER;
		n->avail = i % 97 == 5 ? NODE_DRAIN : i % 89 == 3 ? NODE_PAUSE : NODE_ACTIVE;
		n->ready = i % 193 != 11;
		/* A node of every 50 has no zone label: its own spread branch. */
		const char *labels[4], **l = labels;
		if (i % 50 != 49)
			*l++ = n->zone;
		*l++ = n->rack;
		*l++ = n->disk;
		*l = NULL;
		struct sched_node_desc d = {
			.id = n->id,
			.hostname = n->id,
			.role = n->role,
			.os = "linux",
			.arch = "x86_64",
			.labels = labels,
			.availability = n->avail,
			.ready = n->ready,
			.total = {.nano_cpus = total_cpus(i), .memory_bytes = total_mem(i)},
		};
		int r = sched_cluster_add_node(s->c, &d, err);
		if (r < 0)
			return r;
	}
	return 0;
}

/* The bench's own view of which nodes a service may use (static filters). */
static bool sim_eligible(const struct sim *s, uint32_t i, const struct constraint *k)
{
	const struct sim_node *n = &s->nodes[i];
	if (!n->ready || n->avail != NODE_ACTIVE)
		return false;
	if (!k)
		return true;
	if (k == &sim_constraints[0])
		return i % 50 == 49 || strcmp(n->zone, "zone=z3") != 0;
	if (k == &sim_constraints[1])
		return n->role == NODE_WORKER;
	return strcmp(n->disk, "disk=ssd") == 0;
}

/* Spread branch of a node: the value of the spread label, "" when missing. */
static const char *sim_branch(const struct sim *s, uint32_t i)
{
	const struct sim_node *n = &s->nodes[i];
	bool no_zone = i % 50 == 49;
	const char *label = NULL;
	if (strcmp(s->spread_label, "zone") == 0)
		label = no_zone ? NULL : n->zone;
	else if (strcmp(s->spread_label, "rack") == 0)
		label = n->rack;
	else if (strcmp(s->spread_label, "disk") == 0)
		label = n->disk;
	return label ? strchr(label, '=') + 1 : "";
}

struct quality {
	uint64_t violations;	/* tasks on a node the service may not use */
	uint32_t node_spread;	/* worst max - min per node, within a branch */
	uint32_t branch_spread; /* worst max - min between branches */
	uint32_t services_checked;
};

struct branch {
	const char *name;
	uint32_t tasks, min, max;
	bool seen, room;
};

static bool has_room(const struct sim *s, uint32_t i, const struct sched_resources *r)
{
	struct sched_node_usage u;
	if (sched_cluster_node_usage(s->c, i, NULL, &u) < 0)
		return false;
	return (!r->nano_cpus || u.reserved.nano_cpus + r->nano_cpus <= total_cpus(i)) &&
	       (!r->memory_bytes || u.reserved.memory_bytes + r->memory_bytes <= total_mem(i));
}

static int measure(struct sim *s, const struct sched_request *req, const struct sched_result *res,
		   const struct constraint *k, bool check_spread, uint32_t *count,
		   struct branch *br, size_t n_br, struct quality *q)
{
	for (uint32_t t = 0; t < res->count; t++)
		if (res->nodes[t] >= 0)
			q->violations += !sim_eligible(s, (uint32_t)res->nodes[t], k);
	if (!check_spread || res->placed == 0)
		return 0;
	for (uint32_t t = 0; t < res->count; t++)
		if (res->nodes[t] >= 0)
			count[res->nodes[t]]++;
	for (size_t b = 0; b < n_br; b++)
		br[b] = (struct branch){.name = br[b].name, .min = UINT32_MAX};
	for (uint32_t i = 0; i < s->n_nodes; i++) {
		if (!sim_eligible(s, i, k))
			continue;
		size_t b = 0;
		if (s->spread_label) {
			const char *name = sim_branch(s, i);
			for (b = 0; b < n_br && strcmp(br[b].name, name) != 0; b++)
				;
			if (b == n_br)
				return -EINVAL;
		}
		struct branch *x = &br[b];
		x->seen = true;
		x->tasks += count[i];
		x->max = count[i] > x->max ? count[i] : x->max;
		/* A node that cannot take one more task rightly holds fewer. */
		if (has_room(s, i, &req->reservations)) {
			x->min = count[i] < x->min ? count[i] : x->min;
			x->room = true;
		}
	}
	uint32_t bmin = UINT32_MAX, bmax = 0;
	for (size_t b = 0; b < n_br; b++) {
		if (!br[b].seen)
			continue;
		if (br[b].min != UINT32_MAX && br[b].max - br[b].min > q->node_spread)
			q->node_spread = br[b].max - br[b].min;
		if (br[b].room)
			bmin = br[b].tasks < bmin ? br[b].tasks : bmin;
		bmax = br[b].tasks > bmax ? br[b].tasks : bmax;
	}
	if (bmax >= bmin && bmax - bmin > q->branch_spread)
		q->branch_spread = bmax - bmin;
	q->services_checked++;
	for (uint32_t t = 0; t < res->count; t++)
		if (res->nodes[t] >= 0)
			count[res->nodes[t]] = 0;
	return 0;
}

static int run(struct sim *s, json_t *out, struct shoal_err *err)
{
	int64_t t0 = mono_ns();
	int r = build_cluster(s, err);
	if (r < 0)
		return r;
	int64_t t_build = mono_ns() - t0;

	/* Spread branches the bench knows about. */
	static char names[64][8];
	struct branch br[64] = {0};
	size_t n_br = 1;
	br[0].name = "";
	if (s->spread_label) {
		const char *prefix = strcmp(s->spread_label, "zone") == 0   ? "z"
				     : strcmp(s->spread_label, "rack") == 0 ? "r"
									    : NULL;
		int nv = strcmp(s->spread_label, "zone") == 0 ? 10 : 40;
		if (prefix) {
			for (int v = 0; v < nv; v++) {
				snprintf(names[v], sizeof(names[v]), "%s%d", prefix, v);
				br[n_br++].name = names[v];
			}
		} else {
			br[n_br++].name = "ssd";
			br[n_br++].name = "hdd";
		}
	}
	_cleanup_free_ uint32_t *count = calloc(s->n_nodes, sizeof(*count));
	if (!count)
		return -ENOMEM;

	struct placement_pref pref = {(char *)s->spread_key};
	struct port_config port = {PORT_TCP, 80, 0, PUBLISH_HOST};
	struct quality q = {0};
	uint64_t left = s->n_tasks, placed = 0, unplaced = 0;
	int64_t t_place = 0;
	uint32_t services = 0;
	char first_unplaced[512] = "";
	for (size_t i = 0; left > 0; i++) {
		uint32_t size = service_sizes[i % ARRAY_SIZE(service_sizes)];
		if (size > left)
			size = (uint32_t)left;
		left -= size;
		char id[32];
		snprintf(id, sizeof(id), "svc-%05u", services++);
		const struct constraint *k = NULL;
		if (s->constraints && i % 4 != 3)
			k = &sim_constraints[i % 3];
		struct sched_request req = {
			.service_id = id,
			.count = size,
			.reservations = {.nano_cpus = (int64_t)(i % 3) * NCPU / 100,
					 .memory_bytes = (int64_t)(i % 4) * 16 * MIB},
			.constraints = k,
			.n_constraints = k ? 1 : 0,
			.prefs = s->spread_key ? &pref : NULL,
			.n_prefs = s->spread_key ? 1 : 0,
			.max_replicas = i % 7 == 6 ? size / (s->n_nodes / 4 + 1) + 2 : 0,
		};
		/* Small services now and then publish a host port. */
		if (i % 11 == 4 && size <= s->n_nodes / 4) {
			port.published_port = (uint16_t)(10000 + i % 50000);
			req.ports = &port;
			req.n_ports = 1;
		}
		struct sched_result res;
		int64_t t1 = mono_ns();
		r = sched_place(s->c, &req, &res, err);
		t_place += mono_ns() - t1;
		if (r < 0)
			return shoal_err_wrap(err, "placing %s", id);
		placed += res.placed;
		unplaced += res.count - res.placed;
		if (res.explanation && !first_unplaced[0])
			snprintf(first_unplaced, sizeof(first_unplaced), "%s: %s", id,
				 res.explanation);
		/* Exactness is judged where it is feasible: no limit but the spread. */
		r = measure(s, &req, &res, k,
			    !req.max_replicas && !req.n_ports && res.placed == res.count, count, br,
			    n_br, &q);
		sched_result_done(&res);
		if (r < 0)
			return shoal_err_set(err, -r, "measuring %s", id);
	}
	/* No node holds more than it offers. */
	uint32_t overcommitted = 0;
	for (uint32_t i = 0; i < s->n_nodes; i++) {
		struct sched_node_usage u;
		if (sched_cluster_node_usage(s->c, i, NULL, &u) < 0)
			continue;
		overcommitted += u.reserved.nano_cpus > total_cpus(i) ||
				 u.reserved.memory_bytes > total_mem(i);
	}
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	double secs = (double)t_place / 1e9;
	json_object_set_new(out, "nodes", json_integer(s->n_nodes));
	json_object_set_new(out, "tasks", json_integer((json_int_t)s->n_tasks));
	json_object_set_new(out, "services", json_integer(services));
	json_object_set_new(out, "constraints", json_boolean(s->constraints));
	json_object_set_new(out, "spread",
			    s->spread_key ? json_string(s->spread_key) : json_null());
	json_object_set_new(out, "build_seconds", json_real((double)t_build / 1e9));
	json_object_set_new(out, "place_seconds", json_real(secs));
	json_object_set_new(out, "placements_per_second",
			    json_real(secs > 0 ? (double)placed / secs : 0));
	json_object_set_new(out, "placed", json_integer((json_int_t)placed));
	json_object_set_new(out, "unplaced", json_integer((json_int_t)unplaced));
	json_object_set_new(out, "services_checked", json_integer(q.services_checked));
	json_object_set_new(out, "max_node_spread", json_integer(q.node_spread));
	json_object_set_new(out, "max_branch_spread", json_integer(q.branch_spread));
	json_object_set_new(out, "constraint_violations", json_integer((json_int_t)q.violations));
	json_object_set_new(out, "overcommitted_nodes", json_integer(overcommitted));
	json_object_set_new(out, "peak_rss_kib", json_integer(ru.ru_maxrss));
	if (first_unplaced[0])
		json_object_set_new(out, "first_unplaced", json_string(first_unplaced));
	return 0;
}

static void print_report(json_t *o)
{
#define I(k) ((long long)json_integer_value(json_object_get(o, k)))
#define F(k) (json_real_value(json_object_get(o, k)))
	json_t *spread = json_object_get(o, "spread");
	printf("shoal bench sched: %lld nodes, %lld tasks in %lld services, constraints %s, "
	       "spread %s\n",
	       I("nodes"), I("tasks"), I("services"),
	       json_is_true(json_object_get(o, "constraints")) ? "on" : "off",
	       json_is_string(spread) ? json_string_value(spread) : "none");
	printf("  cluster build          %10.3f s\n", F("build_seconds"));
	printf("  placement              %10.3f s   %.0f placements/s\n", F("place_seconds"),
	       F("placements_per_second"));
	printf("  placed                 %10lld   (unplaced %lld)\n", I("placed"), I("unplaced"));
	printf("  spread, worst of %lld services: per node (within a branch) max-min %lld, "
	       "per branch max-min %lld\n",
	       I("services_checked"), I("max_node_spread"), I("max_branch_spread"));
	printf("  checks                 %lld tasks on ineligible nodes, %lld nodes overcommitted\n",
	       I("constraint_violations"), I("overcommitted_nodes"));
	printf("  peak memory            %10.1f MiB\n", (double)I("peak_rss_kib") / 1024);
	json_t *u = json_object_get(o, "first_unplaced");
	if (u)
		printf("  first unplaced         %s\n", json_string_value(u));
#undef I
#undef F
}

static int parse_count(const char *v, uint64_t max, uint64_t *ret)
{
	char *end;
	errno = 0;
	unsigned long long x = strtoull(v, &end, 10);
	if (errno || end == v || *end || x == 0 || x > max)
		return -EINVAL;
	*ret = x;
	return 0;
}

int bench_sched(struct cli_ctx *ctx, int argc, char **argv)
{
	enum { O_NODES = 1, O_TASKS, O_CONS, O_SPREAD, O_JSON };
	static const struct cli_opt opts[] = {
		{O_NODES, "nodes", 0, CLI_OPT_VALUE, "int", "Simulated nodes (default 10000)"},
		{O_TASKS, "tasks", 0, CLI_OPT_VALUE, "int",
		 "Tasks over all services (default 1000000)"},
		{O_CONS, "constraints", 0, CLI_OPT_BOOL, NULL,
		 "Give services constraints (zone!=z3, role==worker, disk==ssd)"},
		{O_SPREAD, "spread", 0, CLI_OPT_VALUE, "string",
		 "Spread every service over this node label (zone, rack or disk)"},
		{O_JSON, "json", 0, CLI_OPT_BOOL, NULL, "Print the results as JSON"},
		{0},
	};
	struct sim s = {.n_nodes = 10000, .n_tasks = 1000000};
	_cleanup_free_ char *key = NULL;
	struct cli_opts p;
	cli_opts_init(&p, opts, argc, argv, false);
	int o;
	while ((o = cli_opts_next(&p)) > 0) {
		uint64_t v;
		switch (o) {
		case O_NODES:
			if (parse_count(p.value, SCHED_MAX_NODES, &v) < 0) {
				cli_opts_done(&p);
				return cli_usage_error(ctx, "--nodes: expected 1 to 1048576");
			}
			s.n_nodes = (uint32_t)v;
			break;
		case O_TASKS:
			if (parse_count(p.value, 100000000, &v) < 0) {
				cli_opts_done(&p);
				return cli_usage_error(ctx, "--tasks: expected 1 to 100000000");
			}
			s.n_tasks = v;
			break;
		case O_CONS:
			s.constraints = cli_opts_bool(&p);
			break;
		case O_SPREAD: {
			const char *l = p.value;
			if (str_has_prefix(l, "node.labels."))
				l += strlen("node.labels.");
			if (strcmp(l, "zone") != 0 && strcmp(l, "rack") != 0 &&
			    strcmp(l, "disk") != 0) {
				cli_opts_done(&p);
				return cli_usage_error(ctx,
						       "--spread: the simulated nodes carry the "
						       "labels zone, rack and disk");
			}
			free(key);
			if (asprintf(&key, "node.labels.%s", l) < 0) {
				cli_opts_done(&p);
				return 1;
			}
			s.spread_label = key + strlen("node.labels.");
			break;
		}
		case O_JSON:
			s.json = cli_opts_bool(&p);
			break;
		}
	}
	if (o == CLI_OPT_HELP || o == CLI_OPT_ERROR)
		return cli_opts_fail(
			ctx, &p, o, "[OPTIONS]",
			"Place services on a simulated cluster in memory and report the "
			"scheduler's speed and spread");
	if (p.npos > 0) {
		cli_opts_done(&p);
		return cli_usage_error(ctx, "unexpected argument");
	}
	cli_opts_done(&p);
	s.spread_key = key;
	struct shoal_err err = {0};
	json_t *out = json_object();
	int rc = 0;
	if (!out || run(&s, out, &err) < 0) {
		if (!err.code)
			shoal_err_set(&err, ENOMEM, "running the scheduler benchmark");
		cli_print_err(&err);
		rc = 1;
	} else if (s.json) {
		/* in process: no agent's data plane to record */
		bench_result_stamp(out, "sched", NULL);
		json_dumpf(out, stdout, JSON_INDENT(2));
		putchar('\n');
	} else {
		print_report(out);
	}
	json_decref(out);
	sched_cluster_free(s.c);
	free(s.nodes);
	return rc;
}
