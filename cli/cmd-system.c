// SPDX-License-Identifier: Apache-2.0
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

#include "cli/cli-internal.h"
#include "cli/cli.h"
#include "cli/format.h"
#include "lib/cleanup.h"

#define _cleanup_json_ _cleanup_(json_decrefp)

static const struct cli_opt format_opts[] = {
	{'f', "format", 'f', CLI_OPT_VALUE, "string",
	 "Format output using a template (see inspect --help)"},
	{0},
};

/* Parses the only flag these commands take; returns -1 to go on, else an exit status. */
static int parse_format(struct cli_ctx *ctx, int argc, char **argv, const char *desc,
			const char **ret_format)
{
	struct cli_opts p;
	cli_opts_init(&p, format_opts, argc, argv, false);
	int id;
	while ((id = cli_opts_next(&p)) != 0) {
		if (id == 'f') {
			*ret_format = p.value;
		} else if (id == CLI_OPT_HELP) {
			cli_opts_done(&p);
			cli_usage(ctx, "[OPTIONS]", desc, format_opts);
			return 0;
		} else {
			cli_opts_done(&p);
			return cli_usage_error(ctx, p.error);
		}
	}
	int npos = p.npos;
	cli_opts_done(&p);
	if (npos > 0)
		return cli_args_error(ctx, "[OPTIONS]", desc, "accepts no arguments");
	return -1;
}

static int print_template(const char *format, json_t *v)
{
	char terr[256];
	_cleanup_free_ char *s = cli_template_render(format, v, terr, sizeof(terr));
	if (!s) {
		fprintf(stderr, "template parsing error: %s\n", terr);
		return 1;
	}
	printf("%s\n", s);
	return 0;
}

static void kv(int indent, const char *key, json_t *obj, const char *field)
{
	json_t *v = json_object_get(obj, field);
	if (!v || json_is_null(v) || (json_is_string(v) && !*json_string_value(v)))
		return;
	printf("%*s%s:", indent, "", key);
	if (json_is_string(v))
		printf(" %s\n", json_string_value(v));
	else if (json_is_integer(v))
		printf(" %" JSON_INTEGER_FORMAT "\n", json_integer_value(v));
	else if (json_is_boolean(v))
		printf(" %s\n", json_is_true(v) ? "true" : "false");
	else
		printf("\n");
}

int cli_cmd_version(struct cli_ctx *ctx, int argc, char **argv)
{
	const char *format = NULL;
	int r = parse_format(ctx, argc, argv, "Show the shoal version information", &format);
	if (r >= 0)
		return r;
	struct utsname u;
	uname(&u);
	char osarch[128];
	snprintf(osarch, sizeof(osarch), "linux/%s",
		 strcmp(u.machine, "x86_64") == 0    ? "amd64"
		 : strcmp(u.machine, "aarch64") == 0 ? "arm64"
						     : u.machine);
	_cleanup_json_ json_t *client =
		json_pack("{s:s,s:s,s:s,s:s}", "Version", SHOAL_VERSION, "ApiVersion",
			  CLI_API_VERSION, "Os", "linux", "Arch", osarch + 6);
	struct shoal_err err = {0};
	_cleanup_json_ json_t *server = NULL;
	int cr = cli_call_json(ctx, "GET", "/version", NULL, NULL, &server, &err);
	if (format) {
		_cleanup_json_ json_t *all = json_pack("{s:O,s:O}", "Client", client, "Server",
						       server ? server : json_null());
		int s = all ? print_template(format, all) : 1;
		if (cr < 0) {
			cli_print_err(&err);
			return 1;
		}
		return s;
	}
	printf("Client:\n");
	printf(" Version:           %s\n", SHOAL_VERSION);
	printf(" API version:       %s\n", CLI_API_VERSION);
	printf(" OS/Arch:           %s\n", osarch);
	if (cr < 0) {
		printf("\n");
		fflush(stdout);
		cli_print_err(&err);
		return 1;
	}
	printf("\nServer:\n");
	const char *sv = json_string_value(json_object_get(server, "Version"));
	const char *api = json_string_value(json_object_get(server, "ApiVersion"));
	const char *minapi = json_string_value(json_object_get(server, "MinAPIVersion"));
	const char *os = json_string_value(json_object_get(server, "Os"));
	const char *arch = json_string_value(json_object_get(server, "Arch"));
	printf(" Engine:\n");
	if (sv)
		printf("  Version:          %s\n", sv);
	if (api)
		printf("  API version:      %s%s%s%s\n", api, minapi ? " (minimum version " : "",
		       minapi ? minapi : "", minapi ? ")" : "");
	const char *commit = json_string_value(json_object_get(server, "GitCommit"));
	if (commit)
		printf("  Git commit:       %s\n", commit);
	const char *built = json_string_value(json_object_get(server, "BuildTime"));
	if (built)
		printf("  Built:            %s\n", built);
	if (os || arch)
		printf("  OS/Arch:          %s/%s\n", os ? os : "", arch ? arch : "");
	const char *kernel = json_string_value(json_object_get(server, "KernelVersion"));
	if (kernel)
		printf("  Kernel version:   %s\n", kernel);
	size_t i;
	json_t *comp;
	json_array_foreach(json_object_get(server, "Components"), i, comp)
	{
		const char *name = json_string_value(json_object_get(comp, "Name"));
		const char *ver = json_string_value(json_object_get(comp, "Version"));
		if (name && strcmp(name, "Engine") != 0)
			printf(" %s:\n  Version:          %s\n", name, ver ? ver : "");
	}
	return 0;
}

int cli_cmd_info(struct cli_ctx *ctx, int argc, char **argv)
{
	const char *format = NULL;
	int r = parse_format(ctx, argc, argv, "Display system-wide information", &format);
	if (r >= 0)
		return r;
	struct shoal_err err = {0};
	_cleanup_json_ json_t *info = NULL;
	if (cli_call_json(ctx, "GET", "/info", NULL, NULL, &info, &err) < 0) {
		cli_print_err(&err);
		return 1;
	}
	if (format)
		return print_template(format, info);
	printf("Client:\n Version:    %s\n\nServer:\n", SHOAL_VERSION);
	kv(1, "Containers", info, "Containers");
	kv(2, "Running", info, "ContainersRunning");
	kv(2, "Paused", info, "ContainersPaused");
	kv(2, "Stopped", info, "ContainersStopped");
	kv(1, "Images", info, "Images");
	kv(1, "Server Version", info, "ServerVersion");
	kv(1, "Storage Driver", info, "Driver");
	kv(1, "Logging Driver", info, "LoggingDriver");
	kv(1, "Cgroup Driver", info, "CgroupDriver");
	kv(1, "Cgroup Version", info, "CgroupVersion");
	json_t *swarm = json_object_get(info, "Swarm");
	if (json_is_object(swarm)) {
		kv(1, "Swarm", swarm, "LocalNodeState");
		kv(2, "NodeID", swarm, "NodeID");
		kv(2, "Is Manager", swarm, "ControlAvailable");
		kv(2, "Nodes", swarm, "Nodes");
		kv(2, "Managers", swarm, "Managers");
		kv(2, "Node Address", swarm, "NodeAddr");
		kv(2, "Error", swarm, "Error");
	}
	json_t *store = json_object_get(info, "ShoalStore");
	if (json_is_object(store)) {
		kv(1, "Store", store, "Backend");
		kv(2, "Endpoints", store, "Endpoints");
		kv(2, "Reachable", store, "Reachable");
		kv(2, "Leader", store, "Leader");
		kv(2, "This Node Leads", store, "Leading");
		kv(2, "Role", store, "Role");
	}
	kv(1, "Kernel Version", info, "KernelVersion");
	kv(1, "Operating System", info, "OperatingSystem");
	kv(1, "OSType", info, "OSType");
	kv(1, "Architecture", info, "Architecture");
	kv(1, "CPUs", info, "NCPU");
	json_t *mem = json_object_get(info, "MemTotal");
	if (json_is_number(mem)) {
		char buf[32];
		cli_bytes_size(json_number_value(mem), buf, sizeof(buf));
		printf(" Total Memory: %s\n", buf);
	}
	kv(1, "Name", info, "Name");
	kv(1, "ID", info, "ID");
	kv(1, "Shoal Root Dir", info, "DockerRootDir");
	kv(1, "Debug Mode", info, "Debug");
	size_t i;
	json_t *w;
	json_t *features = json_object_get(info, "ShoalDataPlane");
	if (json_array_size(features) > 0) {
		printf(" Data Plane:\n");
		json_array_foreach(features, i, w)
		{
			const char *state = json_string_value(json_object_get(w, "State"));
			const char *reason = json_string_value(json_object_get(w, "Reason"));
			const char *fb = json_string_value(json_object_get(w, "Fallback"));
			printf("  %-14s %s", json_string_value(json_object_get(w, "Name")),
			       state ? state : "?");
			if (reason && *reason)
				printf(": %s", reason);
			if (fb && state && strcmp(state, "unavailable") == 0)
				printf(" (instead: %s)", fb);
			printf("\n");
		}
	}
	kv(1, "Data Plane Error", info, "ShoalDataPlaneError");
	cli_policy_map_print(json_object_get(info, "ShoalPolicyMap"), " ");
	json_t *ovl = json_object_get(info, "ShoalOverlay");
	if (json_is_object(ovl)) {
		json_t *f = json_object_get(ovl, "Filter");
		printf(" Overlay:\n");
		kv(2, "VTEP", ovl, "VTEP");
		kv(2, "Underlay", ovl, "Underlay");
		kv(2, "Error", ovl, "Error");
		kv(2, "VXLAN Filter", f, "Kind");
		kv(3, "Fallback Reason", f, "FallbackReason");
		kv(3, "Dropped (unknown source)", f, "DroppedUnknownSource");
		kv(3, "Error", f, "Error");
		json_t *mesh = json_object_get(ovl, "Mesh");
		kv(2, "Routing Mesh", mesh, "State");
		kv(3, "Reason", mesh, "Reason");
		kv(3, "Replies returned to their entry node", mesh, "Returned");
		json_array_foreach(json_object_get(ovl, "Networks"), i, w)
		{
			printf("  Network: %s (%s, %s, vni %lld, mtu %lld, %lld remote endpoints)%s%s\n",
			       json_string_value(json_object_get(w, "Name")) ?: "",
			       json_string_value(json_object_get(w, "Bridge")) ?: "",
			       json_string_value(json_object_get(w, "Vxlan")) ?: "",
			       (long long)json_integer_value(json_object_get(w, "VNI")),
			       (long long)json_integer_value(json_object_get(w, "MTU")),
			       (long long)json_integer_value(json_object_get(w, "Remotes")),
			       json_object_get(w, "Error") ? ": " : "",
			       json_string_value(json_object_get(w, "Error")) ?: "");
		}
	}
	json_array_foreach(json_object_get(info, "Warnings"), i, w) if (json_is_string(w))
		fprintf(stderr, "%s\n", json_string_value(w));
	return 0;
}
