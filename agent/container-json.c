// SPDX-License-Identifier: Apache-2.0
/* Container records: names of states and signals, the persisted record, and
 * the JSON views the API serves (inspect, list). */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "agent/agent.h"
#include "agent/container-internal.h"
#include "agent/container.h"
#include "agent/overlay-agent.h"
#include "agent/volumes.h"
#include "lib/cleanup.h"
#include "lib/json.h"
#include "lib/util.h"
#include "overlay/vxlan.h"

const char *container_state_name(enum container_state s)
{
	switch (s) {
	case CONTAINER_CREATED:
		return "created";
	case CONTAINER_STARTING:
		return "created";
	case CONTAINER_RUNNING:
		return "running";
	case CONTAINER_EXITED:
		return "exited";
	case CONTAINER_REMOVING:
		return "removing";
	}
	return "dead";
}

const char *container_status(struct container *c)
{
	if (c->restarting)
		return "restarting";
	return c->state == CONTAINER_RUNNING && c->paused ? "paused"
							  : container_state_name(c->state);
}

enum container_state container_state_from_name(const char *s)
{
	if (strcmp(s, "running") == 0)
		return CONTAINER_RUNNING;
	if (strcmp(s, "exited") == 0)
		return CONTAINER_EXITED;
	if (strcmp(s, "starting") == 0)
		return CONTAINER_STARTING;
	if (strcmp(s, "removing") == 0)
		return CONTAINER_REMOVING;
	return CONTAINER_CREATED;
}

int parse_signal(const char *s, int *ret)
{
	static const struct {
		const char *name;
		int sig;
	} sigs[] = {
		{"HUP", SIGHUP},       {"INT", SIGINT},	  {"QUIT", SIGQUIT},   {"ILL", SIGILL},
		{"TRAP", SIGTRAP},     {"ABRT", SIGABRT}, {"BUS", SIGBUS},     {"FPE", SIGFPE},
		{"KILL", SIGKILL},     {"USR1", SIGUSR1}, {"SEGV", SIGSEGV},   {"USR2", SIGUSR2},
		{"PIPE", SIGPIPE},     {"ALRM", SIGALRM}, {"TERM", SIGTERM},   {"CHLD", SIGCHLD},
		{"CONT", SIGCONT},     {"STOP", SIGSTOP}, {"TSTP", SIGTSTP},   {"TTIN", SIGTTIN},
		{"TTOU", SIGTTOU},     {"URG", SIGURG},	  {"XCPU", SIGXCPU},   {"XFSZ", SIGXFSZ},
		{"VTALRM", SIGVTALRM}, {"PROF", SIGPROF}, {"WINCH", SIGWINCH}, {"IO", SIGIO},
		{"PWR", SIGPWR},       {"SYS", SIGSYS},
	};
	if (!s || !*s)
		return -EINVAL;
	if (isdigit((unsigned char)*s)) {
		char *end;
		long v = strtol(s, &end, 10);
		if (*end || v <= 0 || v > 64)
			return -EINVAL;
		*ret = (int)v;
		return 0;
	}
	const char *n = strncasecmp(s, "SIG", 3) == 0 ? s + 3 : s;
	for (size_t i = 0; i < ARRAY_SIZE(sigs); i++)
		if (strcasecmp(n, sigs[i].name) == 0) {
			*ret = sigs[i].sig;
			return 0;
		}
	return -EINVAL;
}

/* ---- persistence ---- */

json_t *strv_to_json(char **v)
{
	json_t *arr = json_array();
	for (size_t i = 0; v && v[i]; i++)
		json_array_append_new(arr, json_string(v[i]));
	return arr;
}

char **json_to_strv(json_t *arr)
{
	char **v = calloc(1, sizeof(char *));
	size_t i;
	json_t *e;
	if (!v)
		return NULL;
	json_array_foreach(arr, i, e)
	{
		if (json_is_string(e) && strv_push(&v, json_string_value(e)) < 0) {
			strv_free(v);
			return NULL;
		}
	}
	return v;
}

int container_persist(struct container *c)
{
	char ip[INET_ADDRSTRLEN] = "", gw[INET_ADDRSTRLEN] = "";
	if (c->net_attached) {
		inet_ntop(AF_INET, &c->ip, ip, sizeof(ip));
		inet_ntop(AF_INET, &c->gateway, gw, sizeof(gw));
	}
	const char *state =
		c->state == CONTAINER_STARTING ? "starting" : container_state_name(c->state);
	json_t *j = json_pack(
		"{s:s, s:s, s:I, s:O, s:O, s:s, s:s, s:o, s:{s:s, s:i, s:i, s:i, s:b, s:I, s:I, s:s, s:i},"
		" s:{s:s, s:b, s:s, s:s, s:i, s:s, s:s}}",
		"Id", c->id, "Name", c->name, "Created", (json_int_t)c->created_ns, "Config",
		c->config, "HostConfig", c->host_config, "ImageRef", c->image_ref, "Image",
		c->image_id, "LayerDirs", strv_to_json(c->layer_dirs), "State", "Status", state,
		"Pid", (int)c->pid, "MonitorPid", (int)c->monitor_pid, "ExitCode", c->exit_code,
		"OOMKilled", c->oom_killed, "StartedAt", (json_int_t)c->started_ns, "FinishedAt",
		(json_int_t)c->finished_ns, "Error", c->error, "RestartCount", c->restart_count,
		"Network", "Mode", c->net_mode, "Attached", c->net_attached, "IPAddress", ip,
		"Gateway", gw, "PrefixLen", (int)c->prefixlen, "SandboxKey",
		c->net_attached ? c->netns_path : "", "HostIfname",
		c->net_attached ? c->host_ifname : "");
	if (j && c->n_more_nets)
		json_object_set_new(json_object_get(j, "Network"), "More",
				    container_nets_record(c));
	if (j && json_array_size(c->mounts))
		json_object_set(j, "MountPoints", c->mounts);
	if (!j)
		return -ENOMEM;
	if (c->paused)
		json_object_set_new(json_object_get(j, "State"), "Paused", json_true());
	if (c->restarting)
		json_object_set_new(json_object_get(j, "State"), "Restarting", json_true());
	if (c->manual_stop)
		json_object_set_new(j, "HasBeenManuallyStopped", json_true());
	char path[4096];
	snprintf(path, sizeof(path), "%s/container.json", c->bundle_dir);
	char *s = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	if (!s)
		return -ENOMEM;
	int r = write_file_atomic(path, s, strlen(s), 0600);
	free(s);
	return r;
}

/* ---- views ---- */

static json_t *network_settings(struct container *c)
{
	char ip[INET_ADDRSTRLEN] = "", gw[INET_ADDRSTRLEN] = "", mac[18] = "";
	if (c->net_attached) {
		inet_ntop(AF_INET, &c->ip, ip, sizeof(ip));
		inet_ntop(AF_INET, &c->gateway, gw, sizeof(gw));
		snprintf(mac, sizeof(mac), "%02x:%02x:%02x:%02x:%02x:%02x", c->mac[0], c->mac[1],
			 c->mac[2], c->mac[3], c->mac[4], c->mac[5]);
	}
	json_t *nets = json_object();
	json_t *one =
		json_pack("{s:s, s:s, s:i, s:s}", "IPAddress", ip, "Gateway", gw, "IPPrefixLen",
			  c->net_attached ? c->prefixlen : 0, "MacAddress", mac);
	/* an overlay network is held by its id; Docker keys it by name */
	const char *key = c->net_mode;
	if (overlay_net_mode(c->net_mode)) {
		const char *name = overlay_network_name(c->agent, c->net_mode);
		if (name)
			key = name;
		if (one)
			json_object_set_new(one, "NetworkID", json_string(c->net_mode));
	}
	json_object_set_new(nets, key, one);
	/* the further networks, by name as Docker keys them */
	for (size_t i = 0; i < c->n_more_nets; i++) {
		const struct container_net *m = &c->more_nets[i];
		char mip[INET_ADDRSTRLEN] = "", mmac[18] = "";
		if (m->attached) {
			inet_ntop(AF_INET, &m->ip, mip, sizeof(mip));
			uint8_t b[6];
			vxlan_mac_from_addr(m->ip, b);
			snprintf(mmac, sizeof(mmac), "%02x:%02x:%02x:%02x:%02x:%02x", b[0], b[1],
				 b[2], b[3], b[4], b[5]);
		}
		const char *name = overlay_network_name(c->agent, m->net);
		json_object_set_new(nets, name ? name : m->net,
				    json_pack("{s:s, s:s, s:s, s:i, s:s, s:s}", "NetworkID", m->net,
					      "IPAddress", mip, "Gateway", "", "IPPrefixLen",
					      m->attached ? m->prefixlen : 0, "MacAddress", mmac,
					      "Interface", m->ifname));
	}
	return json_pack("{s:s, s:s, s:i, s:s, s:o, s:{}, s:s}", "IPAddress", ip, "Gateway", gw,
			 "IPPrefixLen", c->net_attached ? c->prefixlen : 0, "MacAddress", mac,
			 "Networks", nets, "Ports", "SandboxKey",
			 c->net_attached ? c->netns_path : "");
}

json_t *container_inspect_json(struct container *c)
{
	char created[40], started[40], finished[40];
	format_rfc3339(c->created_ns, created);
	format_rfc3339(c->started_ns, started);
	format_rfc3339(c->finished_ns, finished);
	json_t *ep = json_object_get(c->config, "Entrypoint"),
	       *cmd = json_object_get(c->config, "Cmd");
	json_t *all = json_array();
	json_array_extend(all, ep);
	json_array_extend(all, cmd);
	json_t *path = json_array_size(all) ? json_incref(json_array_get(all, 0)) : json_string("");
	json_t *args = json_array();
	for (size_t i = 1; i < json_array_size(all); i++)
		json_array_append(args, json_array_get(all, i));
	json_decref(all);
	char name[130];
	snprintf(name, sizeof(name), "/%s", c->name);
	bool running = c->state == CONTAINER_RUNNING;
	json_t *out = json_pack(
		"{s:s, s:s, s:o, s:o, s:{s:s, s:b, s:b, s:b, s:b, s:b, s:i, s:i, s:s, s:s, s:s},"
		" s:s, s:s, s:s, s:s, s:s, s:i, s:s, s:O, s:O, s:o, s:{s:s, s:{s:s, s:s}}}",
		"Id", c->id, "Created", created, "Path", path, "Args", args, "State", "Status",
		container_status(c), "Running", running || c->restarting, "Paused",
		running && c->paused, "Restarting", c->restarting, "OOMKilled", c->oom_killed,
		"Dead", 0, "Pid", running ? (int)c->pid : 0, "ExitCode", c->exit_code, "Error",
		c->error, "StartedAt", started, "FinishedAt", finished, "Image", c->image_id,
		"Name", name, "ResolvConfPath", c->bundle_dir, "HostnamePath", c->bundle_dir,
		"LogPath", c->log_path, "RestartCount", c->restart_count, "Driver", "overlay",
		"Config", c->config, "HostConfig", c->host_config, "NetworkSettings",
		network_settings(c), "GraphDriver", "Name", "overlay", "Data", "UpperDir",
		c->bundle_dir, "LowerDir",
		c->layer_dirs && c->layer_dirs[0] ? c->layer_dirs[0] : "");
	if (out)
		json_object_set_new(out, "Mounts", volumes_inspect(c->agent, c->mounts));
	return out;
}

static void format_ago(int64_t ns, char *out, size_t len)
{
	int64_t s = (now_ns() - ns) / 1000000000;
	if (s < 1)
		snprintf(out, len, "Less than a second");
	else if (s < 60)
		snprintf(out, len, "%lld second%s", (long long)s, s == 1 ? "" : "s");
	else if (s < 3600)
		snprintf(out, len, "%lld minute%s", (long long)(s / 60), s / 60 == 1 ? "" : "s");
	else if (s < 86400)
		snprintf(out, len, "%lld hour%s", (long long)(s / 3600), s / 3600 == 1 ? "" : "s");
	else
		snprintf(out, len, "%lld days", (long long)(s / 86400));
}

json_t *container_summary_json(struct container *c)
{
	char status[128], ago[64];
	switch (c->state) {
	case CONTAINER_RUNNING:
		format_ago(c->started_ns, ago, sizeof(ago));
		snprintf(status, sizeof(status), "Up %s%s", ago, c->paused ? " (Paused)" : "");
		break;
	case CONTAINER_EXITED:
		format_ago(c->finished_ns, ago, sizeof(ago));
		snprintf(status, sizeof(status), "%s (%d) %s ago",
			 c->restarting ? "Restarting" : "Exited", c->exit_code, ago);
		break;
	case CONTAINER_REMOVING:
		snprintf(status, sizeof(status), "Removal In Progress");
		break;
	default:
		snprintf(status, sizeof(status), "Created");
	}
	_cleanup_strv_ char **ep = NULL, **cmd = NULL;
	json_get_strv(c->config, "Entrypoint", true, &ep, NULL);
	json_get_strv(c->config, "Cmd", true, &cmd, NULL);
	char command[1024] = "";
	size_t off = 0;
	for (size_t i = 0; ep && ep[i]; i++)
		off += (size_t)snprintf(command + off,
					off < sizeof(command) ? sizeof(command) - off : 0, "%s%s",
					off ? " " : "", ep[i]);
	for (size_t i = 0; cmd && cmd[i] && off < sizeof(command); i++)
		off += (size_t)snprintf(command + off,
					off < sizeof(command) ? sizeof(command) - off : 0, "%s%s",
					off ? " " : "", cmd[i]);
	char name[130];
	snprintf(name, sizeof(name), "/%s", c->name);
	json_t *labels = json_object_get(c->config, "Labels");
	return json_pack("{s:s, s:[s], s:s, s:s, s:s, s:I, s:s, s:s, s:[], s:o, s:{s:s}}", "Id",
			 c->id, "Names", name, "Image", c->image_ref, "ImageID", c->image_id,
			 "Command", command, "Created", (json_int_t)(c->created_ns / 1000000000),
			 "State", container_status(c), "Status", status, "Ports", "Labels",
			 labels ? json_incref(labels) : json_object(), "HostConfig", "NetworkMode",
			 c->net_mode);
}
