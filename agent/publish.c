// SPDX-License-Identifier: Apache-2.0
#include <arpa/inet.h>
#include <errno.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <bpf/libbpf.h>

#include "agent/agent.h"
#include "agent/cluster.h"
#include "agent/container.h"
#include "agent/overlay-agent.h"
#include "agent/publish.h"
#include "lb/lb.h"
#include "lib/cleanup.h"
#include "lib/log.h"
#include "lib/util.h"

#define PUBLISH_MAX_UPLINKS 64

struct publish {
	struct lb *lb;
	struct shoal_err err;
	int uplinks[PUBLISH_MAX_UPLINKS];
	size_t n_uplinks;
	json_t *programmed; /* "tcp/8080" -> "addr:port:state,..." as last written */
	/* "tcp/8080" -> [{"Task", "Node"}]: the port's running tasks on other
	 * nodes, which this node's balancer cannot reach without the overlay */
	json_t *remote;
	bool swept; /* stale pinned services removed once */
	/* published ports from the node itself: hooks pinned here, and the
	 * node addresses last written for them */
	char node_pins[4096];
	uint32_t node_addrs[LB_NODE_ADDRS_MAX];
	size_t n_node_addrs;
	/* the containers as the local endpoints were last synced for, and when */
	uint64_t fwd_sig;
	int64_t fwd_at;
};

/* Local endpoints are synced again when the node's containers moved (one
 * started, stopped, went), and at least this often whatever happens, which
 * puts back what someone else removed: that sync costs syscalls per
 * container. */
#define PUBLISH_FWD_RESYNC_NS (10LL * 1000000000)

static int libbpf_quiet(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	/* libbpf speaks through the agent's log, at debug level only */
	if (level == LIBBPF_DEBUG || log_get_level() < LOG_LVL_DEBUG)
		return 0;
	char buf[512];
	vsnprintf(buf, sizeof(buf), fmt, ap);
	buf[strcspn(buf, "\n")] = '\0';
	log_debug("libbpf: %s", buf);
	return 0;
}

/* The socket hooks are on: both sets attached (a failed attach marks the
 * feature unavailable, so the feature's state says it all). */
static bool node_hooks_on(const struct publish *p)
{
	return p->lb && lb_feature(p->lb, LB_FEAT_SOCKET_LB)->state == LB_FEATURE_ON;
}

int publish_init(struct agent *a, struct shoal_err *err)
{
	struct publish *p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	a->publish = p;
	p->programmed = json_object();
	/* whatever the load balancer can do: keys of services gone freed, and
	 * records from before the reservations given theirs */
	struct shoal_err aerr = {0};
	if (publish_alloc_reconcile(a, &aerr) < 0)
		log_warn("publish: reconciling VIP and port allocations: %s", aerr.msg);
	libbpf_set_print(libbpf_quiet);
	char pins[4096];
	snprintf(pins, sizeof(pins), "%s/lb", a->cfg.bpffs_dir);
	struct lb_open_opts o = {.pin_dir = pins,
				 .xdp = a->cfg.xdp,
				 .maglev_size = a->cfg.maglev_size,
				 .ct_size = a->cfg.lb_flows};
	int r = lb_open(&o, &p->lb, &p->err);
	if (r < 0) {
		shoal_err_wrap(&p->err, "the eBPF load balancer is unavailable");
		if (err)
			*err = p->err;
		return r;
	}
	/* east-west: service VIPs balanced at connect() for every container,
	 * and published ports from the node's own processes (localhost:PORT):
	 * both on, or both fallbacks (DNS round robin, the userland proxy) */
	snprintf(p->node_pins, sizeof(p->node_pins), "%s/node", a->cfg.bpffs_dir);
	struct shoal_err serr = {0};
	if (node_hooks_on(p)) {
		if (!a->cgroup_v2[0])
			shoal_err_set(&serr, ENOENT, "no cgroup v2 hierarchy to attach to");
		if (!a->cgroup_v2[0] || lb_sock_attach(p->lb, a->cgroup_v2, &serr) < 0 ||
		    lb_sock_node_attach(p->lb, a->cgroup_v2, p->node_pins, &serr) < 0)
			lb_feature_unavailable(p->lb, LB_FEAT_SOCKET_LB, serr.msg);
	}
	if (!node_hooks_on(p)) {
		/* an earlier agent's hooks would still translate */
		if (a->cgroup_v2[0])
			lb_sock_detach(NULL, a->cgroup_v2, NULL);
		lb_sock_node_detach(p->node_pins, NULL);
	}
	for (enum lb_feature f = 0; f < LB_FEAT_MAX; f++) {
		const struct lb_feature_status *st = lb_feature(p->lb, f);
		if (st->state == LB_FEATURE_UNAVAILABLE && (f != LB_FEAT_XDP || a->cfg.xdp))
			log_warn("publish: %s unavailable: %s; instead: %s", lb_feature_name(f),
				 st->reason, lb_feature_fallback(f));
	}
	publish_scan_uplinks(a);
	return 0;
}

void publish_free(struct agent *a)
{
	struct publish *p = a->publish;
	if (!p)
		return;
	/* hooks and pinned maps stay: established flows survive a restart */
	publish_fwd_free(a);
	publish_proxy_free(a);
	lb_close(p->lb);
	json_decref(p->programmed);
	json_decref(p->remote);
	free(p);
	a->publish = NULL;
}

bool publish_vips_balanced(struct agent *a)
{
	struct publish *p = a->publish;
	return p && node_hooks_on(p);
}

json_t *publish_features_json(const struct lb_feature_status *st)
{
	json_t *arr = json_array();
	for (enum lb_feature f = 0; f < LB_FEAT_MAX; f++) {
		const char *reason = st[f].reason;
		if (st[f].state == LB_FEATURE_OFF)
			reason =
				f == LB_FEAT_XDP ? "not asked for (shoald --xdp)" : "not asked for";
		json_t *o = json_pack("{s:s, s:s, s:b, s:s, s:s}", "Name", lb_feature_name(f),
				      "State", lb_feature_state_name(st[f].state), "Required",
				      lb_feature_required(f), "Description", lb_feature_what(f),
				      "Reason", reason);
		if (st[f].state == LB_FEATURE_UNAVAILABLE) {
			const char *fb = lb_feature_fallback(f);
			json_object_set_new(o, "Provides", json_string(lb_feature_provides(f)));
			if (fb)
				json_object_set_new(o, "Fallback", json_string(fb));
		}
		json_array_append_new(arr, o);
	}
	return arr;
}

json_t *publish_features(struct agent *a)
{
	struct publish *p = a->publish;
	struct lb_feature_status st[LB_FEAT_MAX];
	if (p && p->lb) {
		for (enum lb_feature f = 0; f < LB_FEAT_MAX; f++)
			st[f] = *lb_feature(p->lb, f);
	} else {
		/* the load balancer did not open: what the kernel has, and why */
		uint32_t disable = 0;
		lb_features_parse(getenv(LB_DISABLE_ENV), &disable, NULL);
		lb_features_probe(disable, st);
		if (!a->cfg.xdp && st[LB_FEAT_XDP].state == LB_FEATURE_ON)
			st[LB_FEAT_XDP].state = LB_FEATURE_OFF;
	}
	return publish_features_json(st);
}

bool publish_available(struct agent *a, struct shoal_err *err)
{
	struct publish *p = a->publish;
	if (p && p->lb)
		return true;
	if (err) {
		if (p)
			*err = p->err;
		else
			shoal_err_set(err, ENODEV, "the eBPF load balancer is not set up");
		err->status = 400;
	}
	return false;
}

/* Adds in to addrs unless it is there or is loopback. */
static void addr_add(uint32_t *addrs, size_t *n, uint32_t in)
{
	bool dup = (ntohl(in) >> 24) == 127;
	for (size_t i = 0; i < *n; i++)
		dup = dup || addrs[i] == in;
	if (!dup && *n < LB_NODE_ADDRS_MAX)
		addrs[(*n)++] = in;
}

/* The node's IPv4 addresses, from one RTM_GETADDR dump: getifaddrs() dumps
 * every link as well, and with a veth per container (a thousand of them)
 * that is tens of milliseconds on the loop, every resync. */
static int node_ipv4_addrs(uint32_t *addrs, size_t *ret_n)
{
	_cleanup_close_ int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (fd < 0)
		return -errno;
	struct {
		struct nlmsghdr nh;
		struct ifaddrmsg ifa;
	} req = {
		.nh = {.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifaddrmsg)),
		       .nlmsg_type = RTM_GETADDR,
		       .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP,
		       .nlmsg_seq = 1},
		.ifa = {.ifa_family = AF_INET},
	};
	struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
	if (sendto(fd, &req, req.nh.nlmsg_len, 0, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return -errno;
	size_t n = 0;
	for (;;) {
		char buf[16384] __attribute__((aligned(NLMSG_ALIGNTO)));
		ssize_t len = recv(fd, buf, sizeof(buf), 0);
		if (len < 0 && errno == EINTR)
			continue;
		if (len <= 0)
			return len < 0 ? -errno : -EIO;
		int left = (int)len;
		for (struct nlmsghdr *nh = (struct nlmsghdr *)buf; NLMSG_OK(nh, left);
		     nh = NLMSG_NEXT(nh, left)) {
			if (nh->nlmsg_type == NLMSG_DONE) {
				*ret_n = n;
				return 0;
			}
			if (nh->nlmsg_type == NLMSG_ERROR) {
				const struct nlmsgerr *e = NLMSG_DATA(nh);
				return e->error < 0 ? e->error : -EIO;
			}
			if (nh->nlmsg_type != RTM_NEWADDR)
				continue;
			struct ifaddrmsg *ifa = NLMSG_DATA(nh);
			if (ifa->ifa_family != AF_INET)
				continue;
			/* the local address (IFA_ADDRESS is the peer's on a
			 * point-to-point link), as getifaddrs() takes it */
			const void *local = NULL, *address = NULL;
			int alen = (int)IFA_PAYLOAD(nh);
			for (struct rtattr *rta = IFA_RTA(ifa); RTA_OK(rta, alen);
			     rta = RTA_NEXT(rta, alen)) {
				if (RTA_PAYLOAD(rta) < 4)
					continue;
				if (rta->rta_type == IFA_LOCAL)
					local = RTA_DATA(rta);
				else if (rta->rta_type == IFA_ADDRESS)
					address = RTA_DATA(rta);
			}
			uint32_t in;
			if (local || address) {
				memcpy(&in, local ? local : address, 4);
				addr_add(addrs, &n, in);
			}
		}
	}
}

/* The node hooks translate connections to these addresses (and loopback). */
static void node_addrs_sync(struct publish *p)
{
	uint32_t addrs[LB_NODE_ADDRS_MAX];
	size_t n = 0;
	if (!node_hooks_on(p) || node_ipv4_addrs(addrs, &n) < 0)
		return;
	if (n == p->n_node_addrs && memcmp(addrs, p->node_addrs, n * sizeof(*addrs)) == 0)
		return;
	struct shoal_err err = {0};
	if (lb_sock_node_addrs(p->node_pins, addrs, n, &err) < 0) {
		log_warn("publish: node addresses: %s", err.msg);
		return;
	}
	memcpy(p->node_addrs, addrs, n * sizeof(*addrs));
	p->n_node_addrs = n;
}

void publish_scan_uplinks(struct agent *a)
{
	struct publish *p = a->publish;
	if (!p || !p->lb)
		return;
	node_addrs_sync(p);
	/* the agent's own network namespace (sysfs may show another one's):
	 * /proc/net is the reading thread's. Not if_nameindex(), which dumps
	 * every link with all its attributes, a veth per container included. */
	_cleanup_fclose_ FILE *f = fopen("/proc/net/dev", "re");
	if (!f)
		return;
	char line[512];
	while (fgets(line, sizeof(line), f)) {
		char *colon = strchr(line, ':');
		if (!colon)
			continue; /* the two header lines */
		*colon = '\0';
		const char *n = line + strspn(line, " ");
		if (strcmp(n, "lo") == 0 || str_has_prefix(n, a->cfg.device_prefix))
			continue;
		bool named = !a->cfg.uplinks;
		for (size_t u = 0; a->cfg.uplinks && a->cfg.uplinks[u]; u++)
			if (strcmp(a->cfg.uplinks[u], n) == 0)
				named = true;
		if (!named)
			continue;
		int idx = (int)if_nametoindex(n);
		if (idx <= 0)
			continue;
		bool have = false;
		for (size_t i = 0; i < p->n_uplinks; i++)
			if (p->uplinks[i] == idx)
				have = true;
		if (have || p->n_uplinks == PUBLISH_MAX_UPLINKS)
			continue;
		struct shoal_err err = {0};
		int r = lb_attach(p->lb, idx, &err);
		if (r < 0) {
			log_warn("publish: attaching to uplink %s: %s", n, err.msg);
			continue;
		}
		const char *how = r > 0	       ? "XDP and tc"
				  : a->cfg.xdp ? "tc, no native XDP there"
					       : "tc";
		log_info("publish: balancing published ports on uplink %s (%s)", n, how);
		p->uplinks[p->n_uplinks++] = idx;
	}
}

static int proto_num(const char *s)
{
	if (!s || !*s || strcasecmp(s, "tcp") == 0)
		return IPPROTO_TCP;
	if (strcasecmp(s, "udp") == 0)
		return IPPROTO_UDP;
	return -1;
}

static const char *proto_name(int proto)
{
	return proto == IPPROTO_UDP ? "udp" : "tcp";
}

static bool port_is_host(json_t *pc)
{
	const char *m = json_string_value(json_object_get(pc, "PublishMode"));
	return m && strcmp(m, "host") == 0;
}

/* A key is "tcp/8080" for a published port, "tcp/10.214.0.2/0" for a VIP. */
static void desired_add_key(json_t *desired, const char *vip, int proto, int port,
			    struct in_addr addr, int tport, enum lb_backend_state st)
{
	char key[64], be[64], ip[INET_ADDRSTRLEN];
	if (vip)
		snprintf(key, sizeof(key), "%s/%s/%d", proto_name(proto), vip, port);
	else
		snprintf(key, sizeof(key), "%s/%d", proto_name(proto), port);
	json_t *arr = json_object_get(desired, key);
	if (!arr) {
		arr = json_array();
		json_object_set_new(desired, key, arr);
	}
	if (addr.s_addr == 0)
		return;
	inet_ntop(AF_INET, &addr, ip, sizeof(ip));
	snprintf(be, sizeof(be), "%s:%d:%d", ip, tport, (int)st);
	json_array_append_new(arr, json_string(be));
}

static void desired_add(json_t *desired, int proto, int port, struct in_addr addr, int tport,
			enum lb_backend_state st)
{
	desired_add_key(desired, NULL, proto, port, addr, tport, st);
}

/* Whether a task of service sid is a backend, and in which state: running and
 * not unhealthy; one being stopped keeps its flows but takes no new ones. */
static bool task_backend(json_t *t, const char *sid, enum lb_backend_state *ret)
{
	json_t *st = json_object_get(t, "Status");
	const char *obs = json_string_value(json_object_get(st, "State")) ?: "";
	const char *health = json_string_value(json_object_get(st, "Health")) ?: "";
	const char *ds = json_string_value(json_object_get(t, "DesiredState")) ?: "";
	if (strcmp(json_string_value(json_object_get(t, "ServiceID")) ?: "", sid) != 0 ||
	    strcmp(obs, "running") != 0 || strcmp(health, "unhealthy") == 0)
		return false;
	*ret = strcmp(ds, "running") == 0 ? LB_BACKEND_ACTIVE : LB_BACKEND_DRAINING;
	return true;
}

int publish_task_host_port(json_t *task, int proto, int target)
{
	size_t i;
	json_t *pc;
	json_array_foreach(
		json_object_get(json_object_get(json_object_get(task, "Status"), "PortStatus"),
				"Ports"),
		i, pc)
	{
		if (proto_num(json_string_value(json_object_get(pc, "Protocol"))) == proto &&
		    json_integer_value(json_object_get(pc, "TargetPort")) == target)
			return (int)json_integer_value(json_object_get(pc, "PublishedPort"));
	}
	return 0;
}

static void services_desired(json_t *services, json_t *tasks, publish_addr_fn addr_of, void *ctx,
			     bool mesh, const char *ingress, json_t *desired)
{
	size_t i;
	json_t *svc;
	json_array_foreach(services, i, svc)
	{
		if (json_is_true(json_object_get(svc, "Removed")))
			continue;
		json_t *ports = json_object_get(
			json_object_get(json_object_get(svc, "Spec"), "EndpointSpec"), "Ports");
		const char *sid = json_string_value(json_object_get(svc, "ID")) ?: "";
		/* the routing mesh: an ingress port of a service on an overlay
		 * network goes to its tasks on every node, over the overlay
		 * (without the mesh's return path, to this node's alone) */
		const char *net = mesh ? publish_service_network(svc, ingress) : NULL;
		size_t k;
		json_t *pc;
		json_array_foreach(ports, k, pc)
		{
			int proto = proto_num(json_string_value(json_object_get(pc, "Protocol")));
			int pub = (int)json_integer_value(json_object_get(pc, "PublishedPort"));
			int tgt = (int)json_integer_value(json_object_get(pc, "TargetPort"));
			bool host = port_is_host(pc);
			if (proto < 0 || tgt <= 0 || (!host && pub <= 0))
				continue;
			/* ingress: on the node whether or not a task runs here */
			if (!host)
				desired_add(desired, proto, pub, (struct in_addr){0}, 0, 0);
			size_t m;
			json_t *t;
			json_array_foreach(tasks, m, t)
			{
				enum lb_backend_state bs;
				if (!task_backend(t, sid, &bs))
					continue;
				struct in_addr in = addr_of(ctx, t, host ? NULL : net);
				if (!host) {
					desired_add(desired, proto, pub, in, tgt, bs);
					continue;
				}
				/* host: only where a task of the service runs, to that
				 * node's tasks, on the port given or the task's own */
				int hp = pub > 0 ? pub : publish_task_host_port(t, proto, tgt);
				if (in.s_addr && hp > 0)
					desired_add(desired, proto, hp, in, tgt, bs);
			}
		}
	}
}

const char *publish_service_network(json_t *svc, const char *ingress)
{
	json_t *nets = json_object_get(
		json_object_get(json_object_get(svc, "Spec"), "TaskTemplate"), "Networks");
	const char *net = json_string_value(json_object_get(json_array_get(nets, 0), "Target"));
	if (net && *net)
		return net;
	return ingress && publish_service_meshed(svc) ? ingress : NULL;
}

bool publish_service_net_at(json_t *svc, size_t i, const char *ingress, const char **ret_net,
			    const char **ret_vip)
{
	if (i == 0) {
		*ret_net = publish_service_network(svc, ingress);
		*ret_vip = json_string_value(json_object_get(svc, "VirtualIP"));
		return true;
	}
	json_t *nets = json_object_get(
		json_object_get(json_object_get(svc, "Spec"), "TaskTemplate"), "Networks");
	const char *net = json_string_value(json_object_get(json_array_get(nets, i), "Target"));
	if (!net)
		return false;
	*ret_net = net;
	*ret_vip = json_string_value(json_object_get(json_object_get(svc, PUBLISH_MORE_VIPS), net));
	return true;
}

bool publish_service_meshed(json_t *svc)
{
	size_t k;
	json_t *pc;
	json_array_foreach(
		json_object_get(json_object_get(json_object_get(svc, "Spec"), "EndpointSpec"),
				"Ports"),
		k, pc)
	{
		if (!port_is_host(pc) &&
		    json_integer_value(json_object_get(pc, "PublishedPort")) > 0)
			return true;
	}
	return false;
}

bool publish_task_active(json_t *t)
{
	enum lb_backend_state bs;
	return task_backend(t, json_string_value(json_object_get(t, "ServiceID")) ?: "", &bs) &&
	       bs == LB_BACKEND_ACTIVE;
}

/* Service VIPs: every port, TCP and UDP, to the same port of a task; a
 * service on an overlay network to its tasks' addresses there, on any node,
 * one on the bridge to this node's tasks. The tasks are grouped by service
 * first: one walk of each. */
static void vips_desired(json_t *services, json_t *tasks, publish_addr_fn addr_of, void *ctx,
			 const char *ingress, json_t *desired)
{
	json_t *by_sid = json_object();
	size_t i;
	json_t *t;
	json_array_foreach(tasks, i, t)
	{
		const char *sid = json_string_value(json_object_get(t, "ServiceID"));
		if (!sid || !by_sid)
			continue;
		json_t *arr = json_object_get(by_sid, sid);
		if (!arr)
			json_object_set_new(by_sid, sid, arr = json_array());
		json_array_append(arr, t);
	}
	json_t *svc;
	json_array_foreach(services, i, svc)
	{
		if (json_is_true(json_object_get(svc, "Removed")))
			continue;
		const char *sid = json_string_value(json_object_get(svc, "ID")) ?: "";
		json_t *mine = json_object_get(by_sid, sid);
		/* a VIP on each of its networks, to its tasks' addresses there */
		const char *net, *vip;
		for (size_t ni = 0; publish_service_net_at(svc, ni, ingress, &net, &vip); ni++) {
			if (!vip)
				continue;
			for (int pi = 0; pi < 2; pi++) {
				int proto = pi ? IPPROTO_UDP : IPPROTO_TCP;
				desired_add_key(desired, vip, proto, 0, (struct in_addr){0}, 0, 0);
				size_t m;
				json_array_foreach(mine, m, t)
				{
					enum lb_backend_state bs;
					if (task_backend(t, sid, &bs))
						desired_add_key(desired, vip, proto, 0,
								addr_of(ctx, t, net), 0, bs);
				}
			}
		}
	}
	json_decref(by_sid);
}

/* `shoal run -p HOST:CONTAINER[/udp]`: {"80/tcp":[{"HostPort":"8080"}]} */
static void containers_desired(json_t *containers, json_t *desired)
{
	size_t ci;
	json_t *c;
	json_array_foreach(containers, ci, c)
	{
		json_t *pb = json_object_get(c, "PortBindings");
		if (!json_is_object(pb) || json_object_size(pb) == 0)
			continue;
		struct in_addr addr = {0};
		const char *ip = json_string_value(json_object_get(c, "Addr"));
		if (ip && *ip && inet_pton(AF_INET, ip, &addr) != 1)
			addr.s_addr = 0;
		const char *k;
		json_t *binds;
		json_object_foreach(pb, k, binds)
		{
			int tport = atoi(k);
			const char *slash = strchr(k, '/');
			int proto = proto_num(slash ? slash + 1 : "tcp");
			size_t i;
			json_t *b;
			json_array_foreach(binds, i, b)
			{
				int hport = atoi(json_string_value(json_object_get(b, "HostPort"))
							 ?: "0");
				if (proto < 0 || hport <= 0 || tport <= 0)
					continue;
				desired_add(desired, proto, hport, addr, tport, LB_BACKEND_ACTIVE);
			}
		}
	}
}

static int cmp_str(const void *x, const void *y)
{
	return strcmp(*(const char *const *)x, *(const char *const *)y);
}

json_t *publish_desired(json_t *services, json_t *tasks, json_t *containers,
			publish_addr_fn addr_of, void *ctx, bool mesh, const char *ingress)
{
	json_t *raw = json_object(), *out = json_object();
	if (!raw || !out) {
		json_decref(raw);
		json_decref(out);
		return NULL;
	}
	services_desired(services, tasks, addr_of, ctx, mesh, ingress, raw);
	vips_desired(services, tasks, addr_of, ctx, ingress, raw);
	containers_desired(containers, raw);
	/* one string per key, backends sorted, so that a change is one
	 * comparison and the order of tasks does not matter */
	const char *key;
	json_t *arr;
	json_object_foreach(raw, key, arr)
	{
		size_t n = json_array_size(arr), len = 1;
		const char **v = calloc(n ? n : 1, sizeof(*v));
		if (!v)
			continue;
		for (size_t i = 0; i < n; i++) {
			v[i] = json_string_value(json_array_get(arr, i));
			len += strlen(v[i]) + 1;
		}
		qsort(v, n, sizeof(*v), cmp_str);
		char *joined = calloc(1, len), *end = joined;
		for (size_t i = 0; joined && i < n; i++) {
			/* the same backend twice (two ports of one task) once */
			if (i > 0 && strcmp(v[i], v[i - 1]) == 0)
				continue;
			size_t l = strlen(v[i]);
			memcpy(end, v[i], l);
			end[l] = ',';
			end += l + 1;
		}
		if (joined)
			json_object_set_new(out, key, json_string(joined));
		free(joined);
		free(v);
	}
	json_decref(raw);
	return out;
}

json_t *publish_plan(json_t *desired, json_t *programmed)
{
	json_t *up = json_object(), *del = json_array();
	const char *key;
	json_t *v;
	json_object_foreach(desired, key, v)
	{
		const char *was = json_string_value(json_object_get(programmed, key));
		if (!was || strcmp(was, json_string_value(v) ?: "") != 0)
			json_object_set(up, key, v);
	}
	json_object_foreach(programmed, key, v)
	{
		if (!json_object_get(desired, key))
			json_array_append_new(del, json_string(key));
	}
	return json_pack("{s:o, s:o}", "Upsert", up, "Delete", del);
}

int publish_parse_key(const char *key, struct lb_service_key *ret)
{
	char proto[8], vip[INET_ADDRSTRLEN];
	int port;
	struct in_addr in = {0};
	if (sscanf(key, "%7[a-z]/%15[0-9.]/%d", proto, vip, &port) == 3) {
		if (inet_pton(AF_INET, vip, &in) != 1)
			return -EINVAL;
	} else if (sscanf(key, "%7[a-z]/%d", proto, &port) != 2) {
		return -EINVAL;
	}
	int pn = proto_num(proto);
	if (pn < 0 || port < 0 || port > 65535)
		return -EINVAL;
	*ret = (struct lb_service_key){
		.addr = in.s_addr, .port = (uint16_t)port, .proto = (uint8_t)pn};
	return 0;
}

int publish_parse_backends(const char *joined, struct lb_backend_spec **ret, size_t *ret_n)
{
	size_t n = 0, cap = 1;
	for (const char *s = joined; *s; s++)
		cap += *s == ',';
	struct lb_backend_spec *bs = calloc(cap, sizeof(*bs));
	if (!bs)
		return -ENOMEM;
	for (const char *s = joined; *s;) {
		char ip[INET_ADDRSTRLEN];
		int port, st;
		struct in_addr in;
		if (sscanf(s, "%15[0-9.]:%d:%d", ip, &port, &st) == 3 &&
		    inet_pton(AF_INET, ip, &in) == 1 && port >= 0 && port <= 65535)
			bs[n++] = (struct lb_backend_spec){.addr = in.s_addr,
							   .port = (uint16_t)port,
							   .state = (enum lb_backend_state)st};
		const char *comma = strchr(s, ',');
		if (!comma)
			break;
		s = comma + 1;
	}
	*ret = bs;
	*ret_n = n;
	return 0;
}

/* Task -> the local container's address, or 0; with net, its address on
 * that overlay network on any live node (its endpoint is its container's). */
static struct in_addr task_addr(void *ctx, json_t *t, const char *net)
{
	struct agent *a = ctx;
	struct in_addr none = {0};
	const char *cid = json_string_value(json_object_get(
		json_object_get(json_object_get(t, "Status"), "ContainerStatus"), "ContainerID"));
	if (net)
		return cid ? overlay_ep_addr(a, net, cid) : none;
	struct container *c = container_get(a, cid);
	if (!c || c->state != CONTAINER_RUNNING || !c->net_attached)
		return none;
	return c->ip;
}

/* The node's containers as publish_desired() takes them. */
static json_t *containers_json(struct agent *a)
{
	json_t *out = json_array();
	for (struct container *c = a->containers; c; c = c->next) {
		json_t *pb = json_object_get(c->host_config, "PortBindings");
		if (!json_is_object(pb) || json_object_size(pb) == 0)
			continue;
		char ip[INET_ADDRSTRLEN] = "";
		if (c->state == CONTAINER_RUNNING && c->net_attached)
			inet_ntop(AF_INET, &c->ip, ip, sizeof(ip));
		json_array_append_new(out, json_pack("{s:s, s:O}", "Addr", ip, "PortBindings", pb));
	}
	return out;
}

/* A task whose container is gone for good holds no port any more. */
static bool task_ended(json_t *t)
{
	static const char *const ended[] = {"complete", "failed",   "shutdown",
					    "rejected", "orphaned", "remove"};
	const char *st =
		json_string_value(json_object_get(json_object_get(t, "Status"), "State")) ?: "";
	for (size_t i = 0; i < sizeof(ended) / sizeof(ended[0]); i++)
		if (strcmp(st, ended[i]) == 0)
			return true;
	return false;
}

/* Whether a task that has not ended holds proto/port as its own host port;
 * *ret_task: which one. */
static bool task_ports_use(json_t *tasks, int proto, int port, const char *except_sid,
			   json_t **ret_task)
{
	size_t i;
	json_t *t;
	json_array_foreach(tasks, i, t)
	{
		if (task_ended(t) ||
		    (except_sid && strcmp(json_string_value(json_object_get(t, "ServiceID")) ?: "",
					  except_sid) == 0))
			continue;
		size_t k;
		json_t *pc;
		json_array_foreach(
			json_object_get(json_object_get(json_object_get(t, "Status"), "PortStatus"),
					"Ports"),
			k, pc)
		{
			if (proto_num(json_string_value(json_object_get(pc, "Protocol"))) ==
				    proto &&
			    json_integer_value(json_object_get(pc, "PublishedPort")) == port) {
				if (ret_task)
					*ret_task = t;
				return true;
			}
		}
	}
	return false;
}

/* Host-mode ports of the node's running tasks, in Status.PortStatus.Ports as
 * Docker shows them; a port without PublishedPort gets a free one per task.
 * The record is written back (compare-and-swap) and the in-memory task too,
 * so that this sync programs it. */
static void tasks_port_status(struct agent *a, json_t *services, json_t *tasks)
{
	size_t i;
	json_t *t;
	json_array_foreach(tasks, i, t)
	{
		enum lb_backend_state bs;
		const char *sid = json_string_value(json_object_get(t, "ServiceID")) ?: "";
		if (!task_backend(t, sid, &bs) || task_addr(a, t, NULL).s_addr == 0)
			continue;
		json_t *svc = NULL;
		size_t k;
		json_t *s;
		json_array_foreach(services, k, s)
		{
			if (strcmp(json_string_value(json_object_get(s, "ID")) ?: "", sid) == 0)
				svc = s;
		}
		json_t *ports = json_object_get(
			json_object_get(json_object_get(svc, "Spec"), "EndpointSpec"), "Ports");
		json_t *want = json_array();
		json_t *pc;
		json_array_foreach(ports, k, pc)
		{
			int proto = proto_num(json_string_value(json_object_get(pc, "Protocol")));
			int tgt = (int)json_integer_value(json_object_get(pc, "TargetPort"));
			int pub = (int)json_integer_value(json_object_get(pc, "PublishedPort"));
			if (!port_is_host(pc) || proto < 0 || tgt <= 0)
				continue;
			if (pub <= 0)
				pub = publish_task_host_port(t, proto, tgt);
			for (int cand = PUBLISH_PORT_MIN; pub <= 0 && cand <= PUBLISH_PORT_MAX;
			     cand++) {
				char buf[128];
				if (!task_ports_use(tasks, proto, cand, NULL, NULL) &&
				    !publish_port_owner(a, proto, cand, NULL, buf, sizeof(buf)))
					pub = cand;
			}
			if (pub <= 0) {
				log_warn("publish: no free port left for task %s",
					 json_string_value(json_object_get(t, "ID")) ?: "");
				continue;
			}
			json_array_append_new(want, json_pack("{s:s, s:i, s:i, s:s}", "Protocol",
							      proto_name(proto), "TargetPort", tgt,
							      "PublishedPort", pub, "PublishMode",
							      "host"));
		}
		json_t *st = json_object_get(t, "Status");
		json_t *have = json_object_get(json_object_get(st, "PortStatus"), "Ports");
		if (json_array_size(want) == 0 || json_equal(want, have)) {
			json_decref(want);
			continue;
		}
		json_object_set_new(st, "PortStatus", json_pack("{s:O}", "Ports", want));
		char key[160];
		snprintf(key, sizeof(key), "%s%s", CLUSTER_TASKS,
			 json_string_value(json_object_get(t, "ID")) ?: "");
		for (int attempt = 0; attempt < 5; attempt++) {
			json_t *rec = NULL;
			int64_t rev = 0;
			if (cluster_get(a, key, &rec, &rev, NULL) < 0)
				break;
			json_t *rst = json_object_get(rec, "Status");
			if (!json_is_object(rst)) {
				rst = json_object();
				json_object_set_new(rec, "Status", rst);
			}
			json_object_set_new(rst, "PortStatus", json_pack("{s:O}", "Ports", want));
			int r = cluster_put(a, key, rec, rev, NULL, NULL);
			json_decref(rec);
			if (r != -EAGAIN)
				break;
		}
		json_decref(want);
	}
}

/* What the local endpoints are made of: each container, its state and its
 * address. */
static uint64_t containers_sig(struct agent *a)
{
	uint64_t h = 1469598103934665603ull;
	for (struct container *c = a->containers; c; c = c->next) {
		uint64_t v[] = {(uintptr_t)c, (uint64_t)c->state, c->net_attached, c->ip.s_addr};
		for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
			h = (h ^ v[i]) * 1099511628211ull;
	}
	return h;
}

/* The published ports' running tasks on other nodes (ingress mode) that the
 * load balancer here does not use: those of services on the node's bridge
 * (a service on an overlay network reaches them through the mesh). */
static json_t *remote_backends(struct agent *a, json_t *services, json_t *tasks,
			       const char *ingress)
{
	json_t *out = json_object();
	size_t i, k, m;
	json_t *svc, *pc, *t;
	json_array_foreach(services, i, svc)
	{
		if (json_is_true(json_object_get(svc, "Removed")) ||
		    publish_service_network(svc, ingress))
			continue;
		const char *sid = json_string_value(json_object_get(svc, "ID")) ?: "";
		json_array_foreach(json_object_get(json_object_get(json_object_get(svc, "Spec"),
								   "EndpointSpec"),
						   "Ports"),
				   k, pc)
		{
			int proto = proto_num(json_string_value(json_object_get(pc, "Protocol")));
			int pub = (int)json_integer_value(json_object_get(pc, "PublishedPort"));
			if (proto < 0 || pub <= 0 || port_is_host(pc))
				continue;
			char key[32];
			snprintf(key, sizeof(key), "%s/%d", proto_name(proto), pub);
			json_array_foreach(tasks, m, t)
			{
				const char *node = json_string_value(json_object_get(t, "NodeID"));
				if (strcmp(json_string_value(json_object_get(t, "ServiceID")) ?: "",
					   sid) != 0 ||
				    !node || strcmp(node, a->node_id) == 0)
					continue;
				json_t *arr = json_object_get(out, key);
				if (!arr)
					json_object_set_new(out, key, arr = json_array());
				json_array_append_new(
					arr,
					json_pack("{s:s, s:s}", "Task",
						  json_string_value(json_object_get(t, "ID")) ?: "",
						  "Node", node));
			}
		}
	}
	return out;
}

void publish_sync(struct agent *a, json_t *services, json_t *tasks)
{
	struct publish *p = a->publish;
	if (!p || !p->lb)
		return;
	json_decref(p->remote);
	const char *ingress = overlay_ingress_network(a);
	p->remote = remote_backends(a, services, tasks, ingress);
	int64_t t0 = mono_ns();
	uint64_t sig = containers_sig(a);
	bool full = t0 - p->fwd_at >= PUBLISH_FWD_RESYNC_NS;
	if (sig != p->fwd_sig || full) {
		publish_fwd_sync(a, p->lb, full);
		p->fwd_sig = sig;
		if (full)
			p->fwd_at = t0;
	}
	int64_t t1 = mono_ns();
	tasks_port_status(a, services, tasks);
	json_t *containers = containers_json(a);
	json_t *desired = publish_desired(services, tasks, containers, task_addr, a,
					  overlay_mesh_on(a), ingress);
	json_decref(containers);
	int64_t t2 = mono_ns();
	json_t *plan = desired ? publish_plan(desired, p->programmed) : NULL;
	const char *key;
	json_t *v;
	json_object_foreach(json_object_get(plan, "Upsert"), key, v)
	{
		struct lb_service_key sk;
		struct lb_backend_spec *bs = NULL;
		size_t nb = 0;
		const char *joined = json_string_value(v) ?: "";
		if (publish_parse_key(key, &sk) < 0 || publish_parse_backends(joined, &bs, &nb) < 0)
			continue;
		struct shoal_err err = {0};
		if (lb_service_upsert(p->lb, &sk, bs, nb, &err) < 0) {
			log_warn("publish: port %s: %s", key, err.msg);
		} else {
			log_debug("publish: port %s -> %zu backend(s)", key, nb);
			json_object_set_new(p->programmed, key, json_string(joined));
		}
		free(bs);
	}
	/* ports no longer published */
	size_t i;
	json_array_foreach(json_object_get(plan, "Delete"), i, v)
	{
		struct lb_service_key sk;
		key = json_string_value(v);
		if (publish_parse_key(key, &sk) == 0)
			lb_service_delete(p->lb, &sk, NULL);
		json_object_del(p->programmed, key);
	}
	json_decref(plan);
	if (desired && !p->swept) {
		/* pins outlive the agent: drop what nothing publishes any more */
		struct lb_service_key *keys = NULL;
		size_t nk = 0;
		if (lb_service_list(p->lb, &keys, &nk) == 0) {
			for (size_t k = 0; k < nk; k++) {
				char kb[64], ip[INET_ADDRSTRLEN];
				struct in_addr in = {.s_addr = keys[k].addr};
				inet_ntop(AF_INET, &in, ip, sizeof(ip));
				if (keys[k].addr)
					snprintf(kb, sizeof(kb), "%s/%s/%u",
						 proto_name(keys[k].proto), ip,
						 (unsigned)keys[k].port);
				else
					snprintf(kb, sizeof(kb), "%s/%u", proto_name(keys[k].proto),
						 (unsigned)keys[k].port);
				if (!json_object_get(desired, kb))
					lb_service_delete(p->lb, &keys[k], NULL);
			}
			free(keys);
		}
		p->swept = true;
	}
	json_decref(desired);
	if (!node_hooks_on(p))
		publish_proxy_sync(a, p->programmed);
	int64_t t3 = mono_ns();
	if (t3 - t0 > 10000000)
		log_debug("publish: a sync took %.1f ms (%zu tasks; local endpoints %.1f ms, "
			  "desired state %.1f ms, maps %.1f ms)",
			  (double)(t3 - t0) / 1e6, json_array_size(tasks), (double)(t1 - t0) / 1e6,
			  (double)(t2 - t1) / 1e6, (double)(t3 - t2) / 1e6);
}

const char *publish_port_owner(struct agent *a, int proto, int port, const char *except_id,
			       char *buf, size_t len)
{
	json_t *services = NULL;
	if (cluster_list(a, CLUSTER_SERVICES, &services, NULL) == 0) {
		size_t i;
		json_t *svc;
		json_array_foreach(services, i, svc)
		{
			const char *sid = json_string_value(json_object_get(svc, "ID")) ?: "";
			if (json_is_true(json_object_get(svc, "Removed")) ||
			    (except_id && strcmp(sid, except_id) == 0))
				continue;
			json_t *ports = json_object_get(
				json_object_get(json_object_get(svc, "Spec"), "EndpointSpec"),
				"Ports");
			size_t k;
			json_t *pc;
			json_array_foreach(ports, k, pc)
			{
				if (proto_num(json_string_value(json_object_get(pc, "Protocol"))) ==
					    proto &&
				    json_integer_value(json_object_get(pc, "PublishedPort")) ==
					    port) {
					snprintf(buf, len, "service %s",
						 json_string_value(json_object_get(
							 json_object_get(svc, "Spec"), "Name"))
							 ?: sid);
					json_decref(services);
					return buf;
				}
			}
		}
		json_decref(services);
	}
	/* host-mode ports assigned to tasks */
	json_t *tasks = NULL;
	if (cluster_list(a, CLUSTER_TASKS, &tasks, NULL) == 0) {
		json_t *t = NULL;
		if (task_ports_use(tasks, proto, port, except_id, &t)) {
			snprintf(buf, len, "task %s",
				 json_string_value(json_object_get(t, "ID")) ?: "");
			json_decref(tasks);
			return buf;
		}
		json_decref(tasks);
	}
	for (struct container *c = a->containers; c; c = c->next) {
		if (except_id && strcmp(c->id, except_id) == 0)
			continue;
		json_t *pb = json_object_get(c->host_config, "PortBindings");
		const char *k;
		json_t *binds;
		json_object_foreach(pb, k, binds)
		{
			const char *slash = strchr(k, '/');
			if (proto_num(slash ? slash + 1 : "tcp") != proto)
				continue;
			size_t i;
			json_t *b;
			json_array_foreach(binds, i, b)
			{
				if (atoi(json_string_value(json_object_get(b, "HostPort"))
						 ?: "0") == port) {
					snprintf(buf, len, "container %s", c->name);
					return buf;
				}
			}
		}
	}
	return NULL;
}

int publish_bindings_check(struct agent *a, json_t *pb, struct shoal_err *err)
{
	if (json_object_size(pb) == 0)
		return 0;
	if (!publish_available(a, err))
		return shoal_err_wrap(err, "cannot publish ports");
	const char *k;
	json_t *binds;
	json_object_foreach(pb, k, binds)
	{
		int proto = strstr(k, "/udp") ? IPPROTO_UDP : IPPROTO_TCP;
		size_t i;
		json_t *b;
		json_array_foreach(binds, i, b)
		{
			int port = atoi(json_string_value(json_object_get(b, "HostPort")) ?: "0");
			char owner[160];
			if (publish_port_owner(a, proto, port, NULL, owner, sizeof(owner)))
				return shoal_err_set_status(err, 409, EADDRINUSE,
							    "port %d/%s is already published by %s",
							    port, proto_name(proto), owner);
		}
	}
	return 0;
}

json_t *publish_port_stats(struct agent *a, int proto, int port)
{
	struct publish *p = a->publish;
	if (!p || !p->lb)
		return NULL;
	struct lb_service_key sk = {.addr = 0, .port = (uint16_t)port, .proto = (uint8_t)proto};
	struct lb_counters sc = {0};
	if (lb_service_counters(p->lb, &sk, &sc) < 0)
		return NULL;
	json_t *out =
		json_pack("{s:I, s:I, s:I, s:[]}", "Packets", (json_int_t)sc.packets, "Bytes",
			  (json_int_t)sc.bytes, "NewFlows", (json_int_t)sc.new_flows, "Backends");
	struct lb_backend_spec *bs = NULL;
	size_t n = 0;
	if (lb_service_backends(p->lb, &sk, &bs, &n) == 0) {
		static const char *const states[] = {"unused", "active", "draining", "maintenance"};
		for (size_t i = 0; i < n; i++) {
			struct lb_counters bc = {0};
			lb_backend_counters(p->lb, &sk, bs[i].addr, bs[i].port, &bc);
			char ip[INET_ADDRSTRLEN];
			struct in_addr in = {.s_addr = bs[i].addr};
			inet_ntop(AF_INET, &in, ip, sizeof(ip));
			json_array_append_new(
				json_object_get(out, "Backends"),
				json_pack("{s:s, s:i, s:s, s:I, s:I, s:I}", "Addr", ip, "Port",
					  (int)bs[i].port, "State",
					  bs[i].state < 4 ? states[bs[i].state] : "unknown",
					  "Packets", (json_int_t)bc.packets, "Bytes",
					  (json_int_t)bc.bytes, "NewFlows",
					  (json_int_t)bc.new_flows));
		}
		free(bs);
	}
	return out;
}

json_t *publish_list(struct agent *a)
{
	struct publish *p = a->publish;
	json_t *out = json_pack("{s:[], s:{}, s:b}", "Ports", "Drops", "Available", p && p->lb);
	if (!p || !p->lb)
		return out;
	const char *key;
	json_t *v;
	json_object_foreach(p->programmed, key, v)
	{
		struct lb_service_key sk;
		if (publish_parse_key(key, &sk) < 0)
			continue;
		json_t *e = publish_port_stats(a, sk.proto, sk.port);
		if (!e)
			continue;
		char owner[160];
		json_object_set_new(e, "Protocol", json_string(proto_name(sk.proto)));
		json_object_set_new(e, "PublishedPort", json_integer(sk.port));
		json_object_set_new(e, "Owner",
				    json_string(publish_port_owner(a, sk.proto, sk.port, NULL,
								   owner, sizeof(owner))
							?: ""));
		json_t *remote = json_object_get(p->remote, key);
		json_object_set_new(e, "RemoteBackends",
				    remote ? json_incref(remote) : json_array());
		json_array_append_new(json_object_get(out, "Ports"), e);
	}
	uint64_t drops[LB_DROP_MAX + 1] = {0};
	if (lb_drops_read(p->lb, drops) == 0)
		for (int i = 1; i <= LB_DROP_MAX; i++)
			json_object_set_new(json_object_get(out, "Drops"), lb_drop_reason_name(-i),
					    json_integer((json_int_t)drops[i]));
	return out;
}
