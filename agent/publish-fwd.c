// SPDX-License-Identifier: Apache-2.0
/* Host routing for published ports: every running container on this node's
 * bridge network is registered as a local endpoint (its address, the host
 * side of its veth pair, both MACs), with the reply program on that veth, so
 * that published-port traffic to it skips the node's IP stack both ways.
 * Containers that are gone are removed. */
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent/agent.h"
#include "agent/container.h"
#include "agent/policy-agent.h"
#include "agent/publish.h"
#include "lb/lb.h"
#include "lib/cleanup.h"
#include "lib/log.h"
#include "overlay/bridge.h"

/* Per agent; the handle lives as long as the load balancer handle it was
 * opened on. */
struct publish_fwd {
	struct lb *lb;
	struct lb_fwd *fwd;
	bool warned;
	struct lb_endpoint *eps; /* as last programmed */
	size_t n;
};

static bool ep_equal(const struct lb_endpoint *x, const struct lb_endpoint *y)
{
	return x->addr == y->addr && x->ifindex == y->ifindex && memcmp(x->mac, y->mac, 6) == 0 &&
	       memcmp(x->host_mac, y->host_mac, 6) == 0;
}

static int cmp_ep(const void *x, const void *y)
{
	uint32_t a = ((const struct lb_endpoint *)x)->addr,
		 b = ((const struct lb_endpoint *)y)->addr;
	return a < b ? -1 : a > b;
}

/* v sorted by address (a sync holds a thousand containers: no linear scans) */
static const struct lb_endpoint *ep_find(const struct lb_endpoint *v, size_t n, uint32_t addr)
{
	struct lb_endpoint key = {.addr = addr};
	return n ? bsearch(&key, v, n, sizeof(*v), cmp_ep) : NULL;
}

static bool ifindex_in(const struct lb_endpoint *v, size_t n, int ifindex)
{
	for (size_t i = 0; i < n; i++)
		if (v[i].ifindex == ifindex)
			return true;
	return false;
}

/* The container's endpoint as the bridge network made it; false when it has
 * none on this node (not running, not on the bridge, veth gone). */
static bool container_endpoint(struct agent *a, int sock, struct container *c, bool full,
			       struct lb_endpoint *ret)
{
	struct ifreq ifr = {0};
	static const uint8_t zero[6];
	char name[IFNAMSIZ];

	if (c->state != CONTAINER_RUNNING || !c->net_attached || c->ip.s_addr == 0)
		return false;
	/* the veth of this run, read once (two syscalls per container and
	 * sync made a thousand containers tens of milliseconds) */
	if (full || !c->fwd_ifindex || c->fwd_started_ns != c->started_ns) {
		c->fwd_ifindex = 0;
		bridge_host_ifname(a->cfg.device_prefix, c->id, name);
		snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
		if (ioctl(sock, SIOCGIFINDEX, &ifr) < 0 || ifr.ifr_ifindex <= 0)
			return false;
		int idx = ifr.ifr_ifindex;
		if (ioctl(sock, SIOCGIFHWADDR, &ifr) < 0)
			return false;
		c->fwd_ifindex = idx;
		c->fwd_started_ns = c->started_ns;
		memcpy(c->fwd_host_mac, ifr.ifr_hwaddr.sa_data, 6);
	}
	*ret = (struct lb_endpoint){.addr = c->ip.s_addr, .ifindex = c->fwd_ifindex};
	memcpy(ret->host_mac, c->fwd_host_mac, 6);
	if (memcmp(c->mac, zero, 6) != 0) {
		memcpy(ret->mac, c->mac, 6);
	} else {
		/* not kept across an agent restart: the bridge network's rule */
		ret->mac[0] = 0x02;
		ret->mac[1] = 0x42;
		memcpy(ret->mac + 2, &c->ip.s_addr, 4);
	}
	return true;
}

static int fwd_open(struct agent *a, struct publish_fwd *st, struct lb *lb)
{
	struct shoal_err err = {0};
	char pins[4096];

	st->fwd = lb_fwd_close(st->fwd);
	free(st->eps);
	st->eps = NULL;
	st->n = 0;
	st->lb = lb;
	snprintf(pins, sizeof(pins), "%s/lb", a->cfg.bpffs_dir);
	struct lb_fwd_open_opts o = {.pin_dir = pins};
	int r = lb_fwd_open(lb, &o, &st->fwd, &err);
	if (r < 0) {
		if (!st->warned)
			log_warn("publish: published ports to local containers go through the "
				 "node's stack: %s",
				 err.msg);
		st->warned = true;
		return r;
	}
	st->warned = false;
	return 0;
}

void publish_fwd_sync(struct agent *a, struct lb *lb, bool full)
{
	_cleanup_free_ struct lb_endpoint *want = NULL, *have = NULL;
	_cleanup_close_ int sock = -EBADF;
	size_t nw = 0, nh = 0;
	struct shoal_err err = {0};

	/* without host routing the kernel routes to local containers too
	 * (said once at startup) */
	if (!lb || lb_feature(lb, LB_FEAT_HOST_ROUTING)->state != LB_FEATURE_ON)
		return;
	if (!a->publish_fwd && !(a->publish_fwd = calloc(1, sizeof(*a->publish_fwd))))
		return;
	struct publish_fwd *st = a->publish_fwd;
	if ((st->lb != lb || !st->fwd) && fwd_open(a, st, lb) < 0)
		return;
	sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	want = calloc(a->n_containers ? a->n_containers : 1, sizeof(*want));
	if (sock < 0 || !want)
		return;
	/* With network policy, published-port traffic takes the node's stack
	 * to the container: a redirect to the container's side of the veth
	 * would skip the host side's egress hook that judges it. */
	for (struct container *c = a->containers;
	     c && nw < a->n_containers && !policy_agent_active(a); c = c->next) {
		struct lb_endpoint ep;

		if (container_endpoint(a, sock, c, full, &ep))
			want[nw++] = ep;
	}
	/* by address, one endpoint per address */
	qsort(want, nw, sizeof(*want), cmp_ep);
	size_t k = 0;
	for (size_t i = 0; i < nw; i++)
		if (!k || want[i].addr != want[k - 1].addr)
			want[k++] = want[i];
	nw = k;

	/* What the map holds: read back on a full sync, else as last written. */
	int r = 0;
	if (full) {
		r = lb_endpoint_list(st->fwd, &have, &nh);
		if (r == 0)
			qsort(have, nh, sizeof(*have), cmp_ep);
	} else {
		have = calloc(st->n ? st->n : 1, sizeof(*have));
		if (!have)
			return;
		for (size_t i = 0; i < st->n; i++)
			if (st->eps[i].addr) /* one that failed is not in the map */
				have[nh++] = st->eps[i];
	}
	/* Gone first: their addresses may be handed out again below. */
	if (r == 0) {
		for (size_t i = 0; i < nh; i++) {
			const struct lb_endpoint *w = ep_find(want, nw, have[i].addr);

			if (w && ep_equal(w, &have[i]))
				continue;
			if (!w)
				lb_endpoint_delete(st->fwd, have[i].addr, NULL);
			if (!ifindex_in(want, nw, have[i].ifindex) &&
			    lb_veth_detach(st->fwd, have[i].ifindex, &err) < 0)
				log_debug("publish: %s", err.msg);
		}
	}
	for (size_t i = 0; i < nw; i++) {
		const struct lb_endpoint *was = ep_find(st->eps, st->n, want[i].addr);
		const struct lb_endpoint *in_map = ep_find(have, nh, want[i].addr);

		if (was && in_map && ep_equal(was, &want[i]) && ep_equal(in_map, &want[i]))
			continue;
		/* The reply program goes in before the forward redirect can send
		 * it anything. */
		if (lb_veth_attach(st->fwd, want[i].ifindex, &err) < 0 ||
		    lb_endpoint_set(st->fwd, &want[i], &err) < 0) {
			log_warn("publish: direct forwarding to a local container: %s", err.msg);
			lb_endpoint_delete(st->fwd, want[i].addr, NULL);
			want[i].addr = 0; /* tried again on the next sync */
			continue;
		}
		log_debug("publish: local endpoint on interface %d", want[i].ifindex);
	}
	/* sorted again: the ones that failed are 0 now */
	qsort(want, nw, sizeof(*want), cmp_ep);
	free(st->eps);
	st->eps = TAKE_PTR(want);
	st->n = nw;
}

void publish_fwd_resync(struct agent *a)
{
	if (a->publish_fwd && a->publish_fwd->lb)
		publish_fwd_sync(a, a->publish_fwd->lb, false);
}

void publish_fwd_free(struct agent *a)
{
	struct publish_fwd *st = a->publish_fwd;

	if (!st)
		return;
	/* the reply programs stay on the veths and the pins stay: flows
	 * survive an agent restart */
	lb_fwd_close(st->fwd);
	free(st->eps);
	free(st);
	a->publish_fwd = NULL;
}
