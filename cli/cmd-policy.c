// SPDX-License-Identifier: Apache-2.0
/* `shoal policy ...`: network policies through /policies. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli-internal.h"
#include "cli/cli.h"
#include "cli/format.h"
#include "lib/cleanup.h"
#include "lib/util.h"
#include "policy/policy.h"

enum {
	POPT_SELECTOR = 3100,
	POPT_INGRESS_FROM,
	POPT_EGRESS_TO,
	POPT_PORT,
	POPT_AUDIT,
	POPT_VERDICT,
	POPT_FROM,
	POPT_TO
};

#define MAX_FLAGS 64

DEFINE_TRIVIAL_CLEANUP_FUNC(struct policy *, policy_free)

/* The policy in FILE (JSON or YAML) as the API's JSON; NULL after printing why. */
static json_t *policy_file_json(const char *path)
{
	_cleanup_free_ char *buf = NULL;
	size_t len = 0;
	int r;
	if (strcmp(path, "-") == 0) {
		FILE *f = open_memstream(&buf, &len);
		char chunk[8192];
		size_t n;
		if (!f)
			return NULL;
		while ((n = fread(chunk, 1, sizeof(chunk), stdin)) > 0 && len <= POLICY_MAX_DOC)
			fwrite(chunk, 1, n, f);
		fclose(f);
		r = 0;
	} else {
		r = read_file(path, POLICY_MAX_DOC + 1, &buf, &len);
	}
	if (r < 0 || !buf) {
		fprintf(stderr, "Error: reading %s: %s\n", path, strerror(r < 0 ? -r : ENOMEM));
		return NULL;
	}
	if (len > POLICY_MAX_DOC) {
		fprintf(stderr, "Error: %s is larger than %d bytes\n", path, POLICY_MAX_DOC);
		return NULL;
	}
	struct shoal_err err = {0};
	_cleanup_(policy_freep) struct policy *p = NULL;
	if (policy_from_text(buf, len, &p, &err) < 0) {
		fprintf(stderr, "Error: %s: %s\n", path, err.msg);
		return NULL;
	}
	json_t *j = policy_to_json(p);
	if (!j)
		cli_oom();
	return j;
}

/* "service=web", "network=n", "K=V" (a label) -> a selector or peer. Peers
 * also take "cidr=A/N" and "entity=world|node|published|cluster". */
static int peer_add(json_t *obj, const char *s, bool peer, char *err, size_t errsize)
{
	const char *eq = strchr(s, '=');
	if (!eq || eq == s) {
		snprintf(err, errsize,
			 "%s: expected KEY=VALUE (service=NAME, network=NAME%s or a label)", s,
			 peer ? ", cidr=PREFIX, entity=NAME" : "");
		return -EINVAL;
	}
	size_t kl = (size_t)(eq - s);
	const char *v = eq + 1;
	if (kl == 7 && strncmp(s, "service", 7) == 0)
		return json_object_set_new(obj, "Service", json_string(v));
	if (kl == 7 && strncmp(s, "network", 7) == 0)
		return json_object_set_new(obj, "Network", json_string(v));
	if (peer && kl == 4 && strncmp(s, "cidr", 4) == 0)
		return json_object_set_new(obj, "CIDR", json_string(v));
	if (peer && kl == 6 && strncmp(s, "entity", 6) == 0)
		return json_object_set_new(obj, "Entity", json_string(v));
	json_t *labels = cli_json_obj(obj, "Labels");
	if (!labels)
		return -ENOMEM;
	_cleanup_free_ char *k = strndup(s, kl);
	if (!k)
		return -ENOMEM;
	return json_object_set_new(labels, k, json_string(v));
}

/* create */

static const struct cli_opt create_opts[] = {
	{'f', "file", 'f', CLI_OPT_VALUE, "file", "The policy in JSON or YAML (- for stdin)"},
	{POPT_SELECTOR, "selector", 0, CLI_OPT_VALUE, "list",
	 "Endpoints the policy applies to: service=NAME, network=NAME or a label K=V "
	 "(repeated labels all must match; none: every endpoint)"},
	{POPT_INGRESS_FROM, "ingress-from", 0, CLI_OPT_VALUE, "list",
	 "Allow ingress from service=NAME, K=V, cidr=PREFIX or entity=NAME (repeatable)"},
	{POPT_EGRESS_TO, "egress-to", 0, CLI_OPT_VALUE, "list",
	 "Allow egress to service=NAME, K=V, cidr=PREFIX or entity=NAME (repeatable)"},
	{POPT_PORT, "port", 0, CLI_OPT_VALUE, "list",
	 "Port of the allowed traffic: 80/tcp, 8000-8100/udp (repeatable; none: every port)"},
	{POPT_AUDIT, "audit", 0, CLI_OPT_BOOL, NULL, "Log and count would-be drops, do not drop"},
	{0},
};

static int policy_post(struct cli_ctx *ctx, const char *path, json_t *body, bool print_name)
{
	struct shoal_err e = {0};
	_cleanup_json_ json_t *resp = NULL;
	if (cli_call_json(ctx, "POST", path, body, NULL, &resp, &e) < 0) {
		cli_print_err(&e);
		return 1;
	}
	if (print_name)
		printf("%s\n", cli_json_str(resp, "Name") ?: cli_json_str(body, "Name") ?: "");
	return 0;
}

static int policy_create(struct cli_ctx *ctx, int argc, char **argv)
{
	static const char usage[] = "[OPTIONS] (-f FILE | NAME)",
			  desc[] = "Create a network policy from a file, or the common case from "
				   "flags:\n  shoal policy create web-in --selector service=web "
				   "--ingress-from service=frontend --port 80/tcp";
	struct cli_opts p;
	const char *file = NULL;
	const char *sel[MAX_FLAGS], *from[MAX_FLAGS], *to[MAX_FLAGS], *ports[MAX_FLAGS];
	size_t n_sel = 0, n_from = 0, n_to = 0, n_ports = 0;
	bool audit = false;
	int id;
	cli_opts_init(&p, create_opts, argc, argv, false);
	while ((id = cli_opts_next(&p)) != 0) {
		const char **dst = NULL;
		size_t *n = NULL;
		switch (id) {
		case 'f':
			file = p.value;
			continue;
		case POPT_AUDIT:
			audit = cli_opts_bool(&p);
			continue;
		case POPT_SELECTOR:
			dst = sel, n = &n_sel;
			break;
		case POPT_INGRESS_FROM:
			dst = from, n = &n_from;
			break;
		case POPT_EGRESS_TO:
			dst = to, n = &n_to;
			break;
		case POPT_PORT:
			dst = ports, n = &n_ports;
			break;
		default:
			return cli_opts_fail(ctx, &p, id, usage, desc);
		}
		if (*n >= MAX_FLAGS) {
			cli_opts_done(&p);
			return cli_usage_error(ctx, "too many flags of one kind; use -f FILE");
		}
		dst[(*n)++] = p.value;
	}
	bool flags = n_sel || n_from || n_to || n_ports || audit;
	if (file && (p.npos || flags)) {
		cli_opts_done(&p);
		return cli_usage_error(ctx,
				       "-f takes the whole policy: give no NAME or other flags");
	}
	if (!file && p.npos != 1)
		return cli_opts_args_fail(ctx, &p, usage, desc, "exactly 1 argument (or -f FILE)");
	_cleanup_json_ json_t *body = NULL;
	if (file) {
		cli_opts_done(&p);
		body = policy_file_json(file);
		if (!body)
			return 1;
		return policy_post(ctx, "/policies/create", body, true);
	}
	char err[256] = "";
	body = json_pack("{s:s,s:{},s:b}", "Name", p.pos[0], "Selector", "Audit", audit);
	cli_opts_done(&p);
	if (!body)
		return cli_oom();
	json_t *selector = json_object_get(body, "Selector");
	for (size_t i = 0; i < n_sel; i++)
		if (peer_add(selector, sel[i], false, err, sizeof(err)) < 0)
			return cli_usage_error(ctx, err[0] ? err : "out of memory");
	json_t *port_list = json_array();
	for (size_t i = 0; i < n_ports; i++) {
		struct policy_port pp;
		struct shoal_err pe = {0};
		if (policy_parse_port(ports[i], &pp, &pe) < 0) {
			json_decref(port_list);
			snprintf(err, sizeof(err), "--port %s: %s", ports[i], pe.msg);
			return cli_usage_error(ctx, err);
		}
		json_t *o = json_pack("{s:s}", "Protocol", policy_proto_str(pp.proto));
		if (pp.port)
			json_object_set_new(o, "Port", json_integer(pp.port));
		if (pp.end_port)
			json_object_set_new(o, "EndPort", json_integer(pp.end_port));
		json_array_append_new(port_list, o);
	}
	json_t *types = json_array();
	json_object_set_new(body, "Types", types);
	/* ingress unless only egress is asked for; no peers and no ports: deny all */
	bool ingress = n_from || !n_to;
	const struct {
		bool on;
		const char *dir, *key;
		const char **peers;
		size_t n;
	} dirs[] = {{ingress, "Ingress", "From", from, n_from},
		    {n_to > 0, "Egress", "To", to, n_to}};
	for (size_t d = 0; d < 2; d++) {
		if (!dirs[d].on)
			continue;
		json_array_append_new(types, json_string(dirs[d].dir));
		json_t *rules = json_array();
		json_object_set_new(body, dirs[d].dir, rules);
		if (!dirs[d].n && !n_ports)
			continue;
		json_t *rule = json_object();
		if (dirs[d].n) {
			json_t *peers = json_array();
			for (size_t i = 0; i < dirs[d].n; i++) {
				json_t *peer = json_object();
				json_array_append_new(peers, peer);
				if (peer_add(peer, dirs[d].peers[i], true, err, sizeof(err)) < 0) {
					json_decref(rule);
					json_decref(peers);
					json_decref(port_list);
					return cli_usage_error(ctx, err[0] ? err : "out of memory");
				}
			}
			json_object_set_new(rule, dirs[d].key, peers);
		}
		if (n_ports)
			json_object_set(rule, "Ports", port_list);
		json_array_append_new(rules, rule);
	}
	json_decref(port_list);
	return policy_post(ctx, "/policies/create", body, true);
}

/* ls */

static const struct cli_opt ls_opts[] = {
	{'q', "quiet", 'q', CLI_OPT_BOOL, NULL, "Only display names"},
	{OPT_FORMAT, "format", 0, CLI_OPT_VALUE, "string",
	 "Format output using a template (fields: .Name .ID .Tier .Selector .Types .Audit)"},
	{0},
};

static void selector_str(json_t *sel, char *buf, size_t size)
{
	const char *s;
	if ((s = cli_json_str(sel, "Service")))
		snprintf(buf, size, "service=%s", s);
	else if ((s = cli_json_str(sel, "Network")))
		snprintf(buf, size, "network=%s", s);
	else if (json_object_size(json_object_get(sel, "Labels"))) {
		size_t off = 0;
		const char *k;
		json_t *v;
		buf[0] = '\0';
		json_object_foreach(json_object_get(sel, "Labels"), k, v)
		{
			int n = snprintf(buf + off, size - off, "%s%s=%s", off ? "," : "", k,
					 json_string_value(v) ?: "");
			if (n < 0 || (size_t)n >= size - off)
				break;
			off += (size_t)n;
		}
	} else
		snprintf(buf, size, "(all)");
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(cli_json_str(*(json_t *const *)a, "Name") ?: "",
		      cli_json_str(*(json_t *const *)b, "Name") ?: "");
}

/* The policy map's fill from /info's "ShoalPolicyMap" (shoal info and
 * policy ls). */
void cli_policy_map_print(json_t *pm, const char *indent)
{
	if (!json_is_object(pm))
		return;
	printf("%sPolicy Map: %" JSON_INTEGER_FORMAT " of %" JSON_INTEGER_FORMAT
	       " entries on this node (%.1f%%), %" JSON_INTEGER_FORMAT
	       " per endpoint and direction\n",
	       indent, cli_json_int(pm, "NodeEntries"), cli_json_int(pm, "NodeCapacity"),
	       json_number_value(json_object_get(pm, "NodePercent")),
	       cli_json_int(pm, "EndpointCapacity"));
	size_t i;
	json_t *e;
	json_array_foreach(json_object_get(pm, "Fullest"), i, e)
	{
		double pct = json_number_value(json_object_get(e, "Percent"));
		printf("%s %-32s %5.1f%%  ingress %" JSON_INTEGER_FORMAT
		       ", egress %" JSON_INTEGER_FORMAT "%s\n",
		       indent, cli_json_str(e, "Name") ?: "?", pct, cli_json_int(e, "Ingress"),
		       cli_json_int(e, "Egress"),
		       pct > (double)cli_json_int(pm, "WarnPercent") ? "  (nearly full)" : "");
	}
	const char *err = cli_json_str(pm, "Error");
	if (err)
		printf("%s Not applied: %s\n", indent, err);
}

static int policy_ls(struct cli_ctx *ctx, int argc, char **argv)
{
	static const char usage[] = "[OPTIONS]", desc[] = "List network policies";
	bool quiet = false;
	_cleanup_free_ char *fmt = NULL;
	int r = cli_ls_parse(ctx, argc, argv, ls_opts, usage, desc, &quiet, &fmt);
	if (r)
		return r == CLI_OPT_HELP ? 0 : r;
	_cleanup_json_ json_t *list = cli_list_get(ctx, "/policies", "policy");
	if (!list)
		return 1;
	size_t n = json_array_size(list);
	_cleanup_free_ json_t **sorted = calloc(n + 1, sizeof(*sorted));
	if (!sorted)
		return cli_oom();
	for (size_t i = 0; i < n; i++)
		sorted[i] = json_array_get(list, i);
	qsort(sorted, n, sizeof(*sorted), name_cmp);
	struct cli_table *t = cli_table_new(5);
	if (!t)
		return cli_oom();
	static const char *const head[] = {"NAME", "TIER", "SELECTOR", "TYPES", "MODE"};
	cli_table_add(t, head);
	int status = 0;
	for (size_t i = 0; i < n && !status; i++) {
		json_t *o = sorted[i];
		json_t *spec = json_object_get(o, "Spec");
		const char *name = cli_json_str(o, "Name") ?: "";
		if (quiet) {
			printf("%s\n", name);
			continue;
		}
		char sel[256], types[32] = "", tier[48];
		selector_str(json_object_get(spec, "Selector"), sel, sizeof(sel));
		size_t k;
		json_t *ty;
		json_array_foreach(json_object_get(spec, "Types"), k, ty)
		{
			size_t l = strlen(types);
			snprintf(types + l, sizeof(types) - l, "%s%s", l ? "," : "",
				 json_string_value(ty) ?: "");
		}
		const char *tr = cli_json_str(spec, "Tier");
		if (tr && strcmp(tr, "service") != 0)
			snprintf(tier, sizeof(tier), "%s/%" JSON_INTEGER_FORMAT, tr,
				 cli_json_int(spec, "Order"));
		else
			snprintf(tier, sizeof(tier), "service");
		const char *mode =
			json_is_true(json_object_get(spec, "Audit")) ? "audit" : "enforce";
		if (fmt) {
			_cleanup_json_ json_t *row =
				json_pack("{s:s,s:s,s:s,s:s,s:s,s:b}", "Name", name, "ID",
					  cli_json_str(o, "ID") ?: "", "Tier", tier, "Selector",
					  sel, "Types", types, "Audit", strcmp(mode, "audit") == 0);
			status = cli_template_println(fmt, row);
			continue;
		}
		const char *cells[] = {name, tier, sel, types, mode};
		cli_table_add(t, cells);
	}
	if (!quiet && !fmt)
		cli_table_print(t, stdout);
	cli_table_free(t);
	if (!quiet && !fmt && !status) {
		_cleanup_json_ json_t *info = NULL;
		struct shoal_err ierr = {0};
		if (cli_call_json(ctx, "GET", "/info", NULL, NULL, &info, &ierr) == 0) {
			json_t *pm = json_object_get(info, "ShoalPolicyMap");
			if (json_is_object(pm)) {
				printf("\n");
				cli_policy_map_print(pm, "");
			}
			size_t k;
			json_t *w;
			json_array_foreach(json_object_get(info, "Warnings"), k, w)
			{
				const char *ws = json_string_value(w);
				if (ws && strstr(ws, "policy map"))
					fprintf(stderr, "%s\n", ws);
			}
		}
	}
	return status;
}

/* inspect, rm */

static int policy_inspect(struct cli_ctx *ctx, int argc, char **argv)
{
	static const char usage[] = "NAME [NAME...]",
			  desc[] = "Display detailed information on one or more network policies";
	struct cli_opts p;
	int r = cli_args_only(ctx, &p, argc, argv, usage, desc);
	if (r >= 0)
		return r;
	_cleanup_json_ json_t *all = json_array();
	int status = 0;
	for (int i = 0; i < p.npos; i++) {
		struct shoal_err e = {0};
		json_t *o = cli_object_get(ctx, "/policies", p.pos[i], NULL, "policy", &e);
		if (!o) {
			cli_print_err(&e);
			status = 1;
			continue;
		}
		json_array_append_new(all, o);
	}
	cli_opts_done(&p);
	char *s = json_dumps(all, JSON_INDENT(4));
	if (s) {
		printf("%s\n", s);
		free(s);
	}
	return status;
}

static int policy_rm(struct cli_ctx *ctx, int argc, char **argv)
{
	return cli_rm_cmd(ctx, argc, argv, "NAME [NAME...]", "Remove one or more network policies",
			  "/policies");
}

/* update */

static int policy_update(struct cli_ctx *ctx, int argc, char **argv)
{
	static const char usage[] = "-f FILE NAME",
			  desc[] = "Replace a network policy with the one in FILE (JSON or YAML)";
	static const struct cli_opt opts[] = {
		{'f', "file", 'f', CLI_OPT_VALUE, "file",
		 "The policy in JSON or YAML (- for stdin)"},
		{0},
	};
	struct cli_opts p;
	const char *file = NULL;
	int id;
	cli_opts_init(&p, opts, argc, argv, false);
	while ((id = cli_opts_next(&p)) != 0) {
		if (id == 'f')
			file = p.value;
		else
			return cli_opts_fail(ctx, &p, id, usage, desc);
	}
	if (p.npos != 1)
		return cli_opts_args_fail(ctx, &p, usage, desc, "exactly 1 argument");
	if (!file) {
		cli_opts_done(&p);
		return cli_usage_error(ctx, "-f FILE is required: the whole new policy");
	}
	_cleanup_free_ char *name = strdup(p.pos[0]);
	cli_opts_done(&p);
	if (!name)
		return cli_oom();
	_cleanup_json_ json_t *body = policy_file_json(file);
	if (!body)
		return 1;
	struct shoal_err e = {0};
	_cleanup_json_ json_t *cur = cli_object_get(ctx, "/policies", name, NULL, "policy", &e);
	if (!cur) {
		cli_print_err(&e);
		return 1;
	}
	char suffix[64];
	snprintf(suffix, sizeof(suffix), "/update?version=%" JSON_INTEGER_FORMAT,
		 cli_json_int(cur, "Version.Index"));
	_cleanup_free_ char *path = cli_obj_path("/policies", name, suffix);
	if (!path)
		return cli_oom();
	int r = policy_post(ctx, path, body, false);
	if (r == 0)
		printf("%s\n", name);
	return r;
}

/* explain */

static void print_side(const char *what, json_t *d)
{
	if (!json_is_object(d))
		return;
	printf("%s:\n", what);
	const char *text = cli_json_str(d, "Text") ?: "";
	while (*text) {
		const char *nl = strchr(text, '\n');
		size_t l = nl ? (size_t)(nl - text) : strlen(text);
		printf("  %.*s\n", (int)l, text);
		text += l + (nl ? 1 : 0);
	}
}

static void party_str(json_t *p, char *buf, size_t size)
{
	const char *name = cli_json_str(p, "Name"), *addr = cli_json_str(p, "Address") ?: "";
	if (name)
		snprintf(buf, size, "%s (%s)", name, addr);
	else
		snprintf(buf, size, "%s (%s)", addr, cli_json_str(p, "Kind") ?: "");
}

static int policy_explain(struct cli_ctx *ctx, int argc, char **argv)
{
	static const char usage[] = "FROM TO PORT[/PROTO]",
			  desc[] = "Explain the verdict on a flow: every policy and rule that "
				   "decides it.\nFROM and TO are containers, services or IPv4 "
				   "addresses; PROTO is tcp (default) or udp";
	static const struct cli_opt opts[] = {
		{OPT_FORMAT, "format", 0, CLI_OPT_VALUE, "string", "json: the API's answer"},
		{0},
	};
	struct cli_opts p;
	const char *format = NULL;
	int id;
	cli_opts_init(&p, opts, argc, argv, false);
	while ((id = cli_opts_next(&p)) != 0) {
		if (id == OPT_FORMAT)
			format = p.value;
		else
			return cli_opts_fail(ctx, &p, id, usage, desc);
	}
	if (p.npos != 3)
		return cli_opts_args_fail(ctx, &p, usage, desc, "exactly 3 arguments");
	struct policy_port pp;
	struct shoal_err pe = {0};
	if (policy_parse_port(p.pos[2], &pp, &pe) < 0 || pp.end_port) {
		char msg[400];
		snprintf(msg, sizeof(msg), "%s: %s", p.pos[2],
			 pe.msg[0] ? pe.msg : "one port, not a range");
		cli_opts_done(&p);
		return cli_usage_error(ctx, msg);
	}
	_cleanup_free_ char *f = cli_escape(p.pos[0]), *t = cli_escape(p.pos[1]);
	cli_opts_done(&p);
	_cleanup_free_ char *path = NULL;
	if (!f || !t ||
	    asprintf(&path, "/policies/explain?from=%s&to=%s&port=%u&proto=%s", f, t, pp.port,
		     policy_proto_str(pp.proto)) < 0)
		return cli_oom();
	struct shoal_err e = {0};
	_cleanup_json_ json_t *res = NULL;
	if (cli_call_json(ctx, "GET", path, NULL, NULL, &res, &e) < 0) {
		cli_print_err(&e);
		return 1;
	}
	if (format && strcmp(format, "json") == 0) {
		char *s = json_dumps(res, JSON_INDENT(4));
		printf("%s\n", s ?: "");
		free(s);
		return 0;
	}
	char fb[256], tb[256];
	party_str(json_object_get(res, "From"), fb, sizeof(fb));
	party_str(json_object_get(res, "To"), tb, sizeof(tb));
	printf("%s -> %s, %u/%s: %s\n", fb, tb, pp.port, policy_proto_str(pp.proto),
	       cli_json_str(res, "Verdict") ?: "?");
	print_side("egress of the sender", json_object_get(res, "Egress"));
	print_side("ingress of the receiver", json_object_get(res, "Ingress"));
	return 0;
}

/* log */

static void log_print(json_t *o)
{
	char src[160], dst[160], pol[96];
	json_t *s = json_object_get(o, "Source"), *d = json_object_get(o, "Destination");
	snprintf(src, sizeof(src), "%s%s%s:%" JSON_INTEGER_FORMAT, cli_json_str(s, "Name") ?: "",
		 cli_json_str(s, "Name") ? "/" : "", cli_json_str(s, "Address") ?: "",
		 cli_json_int(s, "Port"));
	snprintf(dst, sizeof(dst), "%s%s%s:%" JSON_INTEGER_FORMAT, cli_json_str(d, "Name") ?: "",
		 cli_json_str(d, "Name") ? "/" : "", cli_json_str(d, "Address") ?: "",
		 cli_json_int(d, "Port"));
	json_t *rule = json_object_get(o, "Rule");
	const char *pn = cli_json_str(o, "Policy");
	if (!pn)
		snprintf(pol, sizeof(pol), "(no policy)");
	else if (json_is_integer(rule))
		snprintf(pol, sizeof(pol), "%s[%" JSON_INTEGER_FORMAT "]", pn,
			 json_integer_value(rule));
	else
		snprintf(pol, sizeof(pol), "%s (isolation, no rule matched)", pn);
	printf("%s  %-8s %s -> %s %s  %s %s\n", cli_json_str(o, "Time") ?: "",
	       cli_json_str(o, "Verdict") ?: "", src, dst, cli_json_str(o, "Protocol") ?: "",
	       cli_json_str(o, "Direction") ?: "", pol);
	fflush(stdout);
}

static int policy_log(struct cli_ctx *ctx, int argc, char **argv)
{
	static const char usage[] = "[OPTIONS]",
			  desc[] = "Show the flow log: each flow judged, who decided and how";
	static const struct cli_opt opts[] = {
		{'f', "follow", 'f', CLI_OPT_BOOL, NULL, "Follow new flows"},
		{POPT_VERDICT, "verdict", 0, CLI_OPT_VALUE, "string",
		 "Only flows dropped, audit or allowed"},
		{POPT_FROM, "from", 0, CLI_OPT_VALUE, "string",
		 "Only flows from this container, service or address"},
		{POPT_TO, "to", 0, CLI_OPT_VALUE, "string",
		 "Only flows to this container, service or address"},
		{'n', "tail", 'n', CLI_OPT_VALUE, "int", "Only the last N flows"},
		{OPT_FORMAT, "format", 0, CLI_OPT_VALUE, "string", "json: one JSON object a line"},
		{0},
	};
	struct cli_opts p;
	const char *verdict = NULL, *from = NULL, *to = NULL, *tail = NULL, *format = NULL;
	bool follow = false;
	int id;
	cli_opts_init(&p, opts, argc, argv, false);
	while ((id = cli_opts_next(&p)) != 0) {
		switch (id) {
		case 'f':
			follow = cli_opts_bool(&p);
			break;
		case POPT_VERDICT:
			verdict = p.value;
			break;
		case POPT_FROM:
			from = p.value;
			break;
		case POPT_TO:
			to = p.value;
			break;
		case 'n':
			tail = p.value;
			break;
		case OPT_FORMAT:
			format = p.value;
			break;
		default:
			return cli_opts_fail(ctx, &p, id, usage, desc);
		}
	}
	if (p.npos != 0)
		return cli_opts_args_fail(ctx, &p, usage, desc, "no arguments");
	bool json = format && strcmp(format, "json") == 0;
	if (format && !json) {
		cli_opts_done(&p);
		return cli_usage_error(ctx, "--format: only json is supported");
	}
	if (verdict && strcmp(verdict, "dropped") != 0 && strcmp(verdict, "audit") != 0 &&
	    strcmp(verdict, "allowed") != 0) {
		cli_opts_done(&p);
		return cli_usage_error(ctx, "--verdict: expected dropped, audit or allowed");
	}
	char *path = NULL;
	size_t plen = 0;
	FILE *pf = open_memstream(&path, &plen);
	if (!pf) {
		cli_opts_done(&p);
		return cli_oom();
	}
	fprintf(pf, "/policies/log?follow=%d", follow ? 1 : 0);
	const char *keys[] = {"verdict", "from", "to", "tail"};
	const char *vals[] = {verdict, from, to, tail};
	for (size_t i = 0; i < 4; i++) {
		if (!vals[i])
			continue;
		_cleanup_free_ char *esc = cli_escape(vals[i]);
		fprintf(pf, "&%s=%s", keys[i], esc ?: "");
	}
	fclose(pf);
	cli_opts_done(&p);
	_cleanup_free_ char *owned = path;
	if (!path)
		return cli_oom();
	struct shoal_err err = {0};
	_cleanup_http_ struct cli_http *c = NULL;
	struct cli_http_resp resp;
	struct cli_call call = {.method = "GET", .path = path, .body_fd = -1};
	if (cli_request(ctx, &call, &c, &resp, &err) < 0) {
		cli_print_err(&err);
		return 1;
	}
	char buf[16384];
	_cleanup_free_ char *line = NULL;
	size_t llen = 0;
	for (;;) {
		ssize_t n = cli_http_read_body(c, buf, sizeof(buf));
		if (n < 0) {
			fprintf(stderr, "Error reading the flow log: %s\n", strerror((int)-n));
			return 1;
		}
		if (n == 0)
			break;
		char *grown = realloc(line, llen + (size_t)n + 1);
		if (!grown)
			return cli_oom();
		line = grown;
		memcpy(line + llen, buf, (size_t)n);
		llen += (size_t)n;
		line[llen] = '\0';
		char *start = line, *nl;
		while ((nl = strchr(start, '\n'))) {
			*nl = '\0';
			if (json) {
				printf("%s\n", start);
				fflush(stdout);
			} else {
				json_t *o = json_loads(start, 0, NULL);
				if (o)
					log_print(o);
				json_decref(o);
			}
			start = nl + 1;
		}
		llen = strlen(start);
		memmove(line, start, llen + 1);
	}
	return 0;
}

const struct cli_command cli_policy_commands[] = {
	{"create", policy_create, "Create a network policy"},
	{"ls", policy_ls, "List network policies"},
	{"list", policy_ls, NULL},
	{"inspect", policy_inspect, "Display detailed information on network policies"},
	{"rm", policy_rm, "Remove network policies"},
	{"remove", policy_rm, NULL},
	{"update", policy_update, "Replace a network policy"},
	{"explain", policy_explain, "Explain the verdict on a flow"},
	{"log", policy_log, "Show the flow log"},
	{NULL, NULL, NULL},
};

int cli_cmd_policy(struct cli_ctx *ctx, int argc, char **argv)
{
	return cli_dispatch(ctx, "shoal policy", cli_policy_commands, argc, argv);
}
