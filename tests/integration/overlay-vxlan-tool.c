// SPDX-License-Identifier: Apache-2.0
/*
 * Drives overlay/vxlan.h from overlay-vxlan.sh, one call per run (so that
 * every apply is a fresh process, as after an agent restart), in the network
 * namespace it is started in.
 *
 *   overlay-vxlan-tool names PREFIX ID
 *   overlay-vxlan-tool apply|plan NET-OPTIONS
 *   overlay-vxlan-tool remove BRIDGE VXLAN
 *   overlay-vxlan-tool sweep PREFIX [KEEP...]
 *   overlay-vxlan-tool filter-open|filter-stats|filter-remove FILTER-OPTIONS
 *
 * NET-OPTIONS: --id ID --prefix P --vni N --underlay DEV --local IP
 *   --gw IP/LEN [--mtu N] [--port N] [--remote IP,VTEP]... (the MAC of a
 *   remote is 02:42 and its address, as the bridge network gives them)
 * FILTER-OPTIONS: --underlay DEV --prefix P --pin-dir DIR [--port N] [--nft]
 *   [--allow IP,IP,...]
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/libbpf.h>

#include "overlay/vxlan.h"

#define REMOTES_MAX 64
#define ALLOW_MAX   64

static int usage(void)
{
	fprintf(stderr, "usage: overlay-vxlan-tool names|apply|plan|remove|sweep|filter-open|"
			"filter-stats|filter-remove ...\n");
	return 2;
}

static int die(const struct shoal_err *err)
{
	fprintf(stderr, "error: %s\n", err->msg);
	return 1;
}

static int parse_ip(const char *s, struct in_addr *ret)
{
	if (inet_pton(AF_INET, s, ret) != 1) {
		fprintf(stderr, "error: bad address \"%s\"\n", s);
		return -1;
	}
	return 0;
}

static int parse_net(int argc, char **argv, struct vxlan_net *net, struct vxlan_remote *remotes,
		     struct shoal_err *err)
{
	const char *prefix = NULL;

	memset(net, 0, sizeof(*net));
	net->remotes = remotes;
	for (int i = 0; i < argc; i++) {
		const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!v)
			return fprintf(stderr, "error: %s needs a value\n", k), -1;
		i++;
		if (!strcmp(k, "--id")) {
			snprintf(net->id, sizeof(net->id), "%s", v);
		} else if (!strcmp(k, "--prefix")) {
			prefix = v;
		} else if (!strcmp(k, "--vni")) {
			net->vni = (uint32_t)strtoul(v, NULL, 10);
		} else if (!strcmp(k, "--underlay")) {
			snprintf(net->underlay, sizeof(net->underlay), "%s", v);
		} else if (!strcmp(k, "--local")) {
			if (parse_ip(v, &net->local) < 0)
				return -1;
		} else if (!strcmp(k, "--gw")) {
			char ip[32];
			const char *slash = strchr(v, '/');

			if (!slash)
				return fprintf(stderr, "error: --gw wants IP/LEN\n"), -1;
			snprintf(ip, sizeof(ip), "%.*s", (int)(slash - v), v);
			if (parse_ip(ip, &net->gateway) < 0)
				return -1;
			net->prefixlen = (uint8_t)atoi(slash + 1);
		} else if (!strcmp(k, "--mtu")) {
			net->mtu = atoi(v);
		} else if (!strcmp(k, "--port")) {
			net->port = (uint16_t)atoi(v);
		} else if (!strcmp(k, "--remote")) {
			char ip[32];
			const char *comma = strchr(v, ',');
			struct vxlan_remote *r = &remotes[net->n_remotes];

			if (!comma || net->n_remotes == REMOTES_MAX)
				return fprintf(stderr, "error: --remote wants IP,VTEP\n"), -1;
			snprintf(ip, sizeof(ip), "%.*s", (int)(comma - v), v);
			if (parse_ip(ip, &r->ip) < 0 || parse_ip(comma + 1, &r->vtep) < 0)
				return -1;
			vxlan_mac_from_addr(r->ip, r->mac);
			net->n_remotes++;
		} else {
			return fprintf(stderr, "error: unknown option %s\n", k), -1;
		}
	}
	if (vxlan_net_ifnames(prefix, net->id, net->bridge, net->vxlan, err) < 0)
		return die(err), -1;
	return 0;
}

static void print_stats(const char *what, const struct vxlan_apply_stats *s)
{
	printf("%s ops=%u created=%u deleted=%u changed=%u addrs=%u fdb=%u neigh=%u mtu=%d\n", what,
	       s->ops, s->links_created, s->links_deleted, s->links_changed, s->addrs_changed,
	       s->fdb_changed, s->neigh_changed, s->mtu);
}

static int parse_filter(int argc, char **argv, struct vxlan_filter_opts *o, struct in_addr *allow,
			size_t *n_allow, bool *have_allow)
{
	memset(o, 0, sizeof(*o));
	*n_allow = 0;
	*have_allow = false;
	for (int i = 0; i < argc; i++) {
		const char *k = argv[i];

		if (!strcmp(k, "--nft")) {
			o->force_nft = true;
			continue;
		}
		const char *v = i + 1 < argc ? argv[++i] : NULL;
		if (!v)
			return fprintf(stderr, "error: %s needs a value\n", k), -1;
		if (!strcmp(k, "--underlay")) {
			o->underlay = v;
		} else if (!strcmp(k, "--prefix")) {
			o->prefix = v;
		} else if (!strcmp(k, "--pin-dir")) {
			o->pin_dir = v;
		} else if (!strcmp(k, "--port")) {
			o->port = (uint16_t)atoi(v);
		} else if (!strcmp(k, "--allow")) {
			char buf[1024];

			*have_allow = true;
			snprintf(buf, sizeof(buf), "%s", v);
			for (char *save = NULL, *t = strtok_r(buf, ",", &save); t;
			     t = strtok_r(NULL, ",", &save)) {
				if (*n_allow == ALLOW_MAX || parse_ip(t, &allow[*n_allow]) < 0)
					return -1;
				(*n_allow)++;
			}
		} else {
			return fprintf(stderr, "error: unknown option %s\n", k), -1;
		}
	}
	return 0;
}

/* libbpf reports expected misses (no filter there yet) as warnings; the
 * library's errors carry what matters. */
static int quiet_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	return getenv("VXLAN_TOOL_VERBOSE") ? vfprintf(stderr, fmt, ap) : 0;
}

static int cmd_filter(const char *cmd, int argc, char **argv)
{
	struct vxlan_filter_opts o;
	struct in_addr allow[ALLOW_MAX];
	size_t n_allow;
	bool have_allow;
	struct shoal_err err = {0};
	struct vxlan_filter *f = NULL;
	int rc = 0;

	if (parse_filter(argc, argv, &o, allow, &n_allow, &have_allow) < 0)
		return 2;
	libbpf_set_print(quiet_print);
	if (!strcmp(cmd, "filter-remove"))
		return vxlan_filter_remove(&o, &err) < 0 ? die(&err) : 0;
	if (vxlan_filter_open(&o, &f, &err) < 0)
		return die(&err);
	if (!strcmp(cmd, "filter-open")) {
		if (have_allow && vxlan_filter_set_allowed(f, allow, n_allow, &err) < 0)
			rc = die(&err);
		else
			printf("kind=%s reason=%s\n", vxlan_filter_kind_name(vxlan_filter_kind(f)),
			       vxlan_filter_fallback_reason(f));
	} else {
		struct vxlan_filter_stats s;

		if (vxlan_filter_stats(f, &s, &err) < 0)
			rc = die(&err);
		else
			printf("kind=%s accepted=%" PRIu64 " dropped=%" PRIu64 "\n",
			       vxlan_filter_kind_name(vxlan_filter_kind(f)), s.accepted,
			       s.dropped_unknown_source);
	}
	vxlan_filter_free(f);
	return rc;
}

int main(int argc, char **argv)
{
	struct shoal_err err = {0};
	struct vxlan_ctx *ctx = NULL;
	int rc = 0;

	if (argc < 2)
		return usage();
	const char *cmd = argv[1];

	if (!strcmp(cmd, "names")) {
		char b[IFNAMSIZ], x[IFNAMSIZ];

		if (argc != 4)
			return usage();
		if (vxlan_net_ifnames(argv[2], argv[3], b, x, &err) < 0)
			return die(&err);
		printf("%s %s\n", b, x);
		return 0;
	}
	if (!strncmp(cmd, "filter-", 7))
		return cmd_filter(cmd, argc - 2, argv + 2);

	if (vxlan_ctx_new(&ctx, &err) < 0)
		return die(&err);
	if (!strcmp(cmd, "apply") || !strcmp(cmd, "plan")) {
		static struct vxlan_remote remotes[REMOTES_MAX];
		struct vxlan_net net;
		struct vxlan_apply_stats s;
		char desc[8192];

		if (parse_net(argc - 2, argv + 2, &net, remotes, &err) < 0) {
			rc = 2;
		} else if (!strcmp(cmd, "apply")) {
			if (vxlan_net_apply(ctx, &net, &s, &err) < 0)
				rc = die(&err);
			else
				print_stats("applied", &s);
		} else {
			if (vxlan_net_plan(ctx, &net, &s, desc, sizeof(desc), &err) < 0) {
				rc = die(&err);
			} else {
				print_stats("plan", &s);
				fputs(desc, stdout);
			}
		}
	} else if (!strcmp(cmd, "remove") && argc == 4) {
		if (vxlan_net_remove(ctx, argv[2], argv[3], &err) < 0)
			rc = die(&err);
	} else if (!strcmp(cmd, "sweep") && argc >= 3) {
		int n = vxlan_sweep(ctx, argv[2], (const char *const *)argv + 3, (size_t)(argc - 3),
				    &err);
		if (n < 0)
			rc = die(&err);
		else
			printf("removed=%d\n", n);
	} else {
		rc = usage();
	}
	vxlan_ctx_free(ctx);
	return rc;
}
