// SPDX-License-Identifier: Apache-2.0
/* Container endpoints on an overlay network's bridge (overlay/vxlan-ep.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/rtnetlink.h>

#include <nftables/libnftables.h>

#include "lib/cleanup.h"
#include "overlay/bridge.h"
#include "overlay/netns-internal.h"
#include "overlay/nl-internal.h"
#include "overlay/vxlan-ep.h"

#define MASQ_MAX 4096

DEFINE_TRIVIAL_CLEANUP_FUNC(struct nft_ctx *, nft_ctx_free)

int vxlan_ep_dir_prepare(const char *dir, struct shoal_err *err)
{
	return netns_dir_prepare(dir, err);
}

int vxlan_ep_plumb(const struct vxlan_ep *ep, struct shoal_err *err)
{
	if (!ep->netns_path[0] || !ep->host_ifname[0] || !ep->bridge[0] || !ep->prefixlen ||
	    ep->prefixlen > 30)
		return shoal_err_set(err, EINVAL,
				     "endpoint: netns path, veth, bridge and prefix "
				     "are required");
	_cleanup_free_ char *buf = malloc(NL_BUF_SIZE);
	_cleanup_(nl_sock_close) struct nl_sock nl = {.fd = -EBADF};
	if (!buf)
		return shoal_err_set(err, ENOMEM, "out of memory");
	int r = nl_sock_open(&nl);
	if (r < 0)
		return shoal_err_errno(err, -r, "opening a netlink socket");
	char ext[256];
	struct nlmsghdr *nlh = nl_build_link_get(buf, ep->bridge);
	struct nl_link br = {0};
	r = nl_sock_transact(&nl, buf, nlh->nlmsg_len, nl_link_get_cb, &br, ext, sizeof(ext));
	if (r < 0 || br.ifindex <= 0)
		return nl_err(err, r < 0 ? r : -ENODEV, ext, "finding bridge %s", ep->bridge);

	bool join = ep->ifname[0] && strcmp(ep->ifname, "eth0") != 0;
	/* What a start cut short left (same id, same names): out of the way. */
	if (!join && access(ep->netns_path, F_OK) == 0)
		(void)netns_remove(ep->netns_path);
	nlh = nl_build_link_del(buf, 0, ep->host_ifname);
	(void)nl_sock_transact(&nl, buf, nlh->nlmsg_len, NULL, NULL, NULL, 0);

	uint32_t mask = ep->prefixlen ? ~0u << (32 - ep->prefixlen) : 0;
	struct netns_ep nep = {
		.netns_path = ep->netns_path,
		.host_ifname = ep->host_ifname,
		.master = br.ifindex,
		.mtu = ep->mtu,
		.mac = ep->mac,
		.addr = ep->addr,
		.broadcast = {htonl(ntohl(ep->addr.s_addr) | ~mask)},
		.gateway = ep->gateway,
		.prefixlen = ep->prefixlen,
	};
	r = join ? netns_ep_join(&nl, buf, &nep, ep->ifname, err)
		 : netns_ep_plumb(&nl, buf, &nep, err);
	if (r < 0)
		return shoal_err_wrap(err, "attaching to %s", ep->bridge);
	return 0;
}

int vxlan_ep_unplumb(const char *netns_path, const char *host_ifname, struct shoal_err *err)
{
	/* Dropping the namespace hands its veth to the kernel's batched,
	 * asynchronous cleanup; only a veth without one is deleted here. */
	bool had_netns = netns_path && *netns_path && access(netns_path, F_OK) == 0;
	if (netns_path && *netns_path) {
		int r = netns_remove(netns_path);
		if (r < 0)
			return shoal_err_errno(err, -r, "removing network namespace %s",
					       netns_path);
	}
	if (had_netns || !host_ifname || !*host_ifname)
		return 0;
	_cleanup_free_ char *buf = malloc(NL_BUF_SIZE);
	_cleanup_(nl_sock_close) struct nl_sock nl = {.fd = -EBADF};
	if (!buf)
		return shoal_err_set(err, ENOMEM, "out of memory");
	int r = nl_sock_open(&nl);
	if (r < 0)
		return shoal_err_errno(err, -r, "opening a netlink socket");
	char ext[256];
	struct nlmsghdr *nlh = nl_build_link_del(buf, 0, host_ifname);
	r = nl_sock_transact(&nl, buf, nlh->nlmsg_len, NULL, NULL, ext, sizeof(ext));
	if (r < 0 && r != -ENODEV)
		return nl_err(err, r, ext, "deleting veth %s", host_ifname);
	return 0;
}

char *vxlan_masq_ruleset(const char *prefix, const struct vxlan_masq *nets, size_t n,
			 struct shoal_err *err)
{
	if (!prefix || !*prefix || strlen(prefix) > 8) {
		shoal_err_set(err, EINVAL, "device prefix \"%s\": 1 to 8 characters",
			      prefix ? prefix : "");
		return NULL;
	}
	if (n > MASQ_MAX) {
		shoal_err_set(err, E2BIG, "%zu overlay networks: at most %d masqueraded", n,
			      MASQ_MAX);
		return NULL;
	}
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	if (!f) {
		shoal_err_set(err, ENOMEM, "out of memory");
		return NULL;
	}
	/* add+delete: the delete cannot fail on a missing table, and the new
	 * table replaces the old in the same transaction */
	fprintf(f, "add table ip %s_ovl\ndelete table ip %s_ovl\n", prefix, prefix);
	if (n) {
		fprintf(f,
			"table ip %s_ovl {\n chain post {\n  type nat hook postrouting priority "
			"srcnat; policy accept;\n",
			prefix);
		for (size_t i = 0; i < n; i++) {
			char net[INET_ADDRSTRLEN];
			inet_ntop(AF_INET, &nets[i].net, net, sizeof(net));
			if (!nets[i].internal)
				fprintf(f, "  ip saddr %s/%u oifname != \"%s\" masquerade\n", net,
					nets[i].prefixlen, nets[i].bridge);
		}
		/* networks are apart: nothing of one is routed by the node into
		 * another's subnet (a container on both goes by its own
		 * interface there), and nothing of an internal one leaves it */
		fprintf(f, " }\n set nets {\n  type ipv4_addr; flags interval;\n  elements = { ");
		for (size_t i = 0; i < n; i++) {
			char net[INET_ADDRSTRLEN];
			inet_ntop(AF_INET, &nets[i].net, net, sizeof(net));
			fprintf(f, "%s%s/%u", i ? ", " : "", net, nets[i].prefixlen);
		}
		fprintf(f, " }\n }\n chain isolate {\n  type filter hook forward priority "
			   "filter; policy accept;\n");
		for (size_t i = 0; i < n; i++) {
			char net[INET_ADDRSTRLEN];
			inet_ntop(AF_INET, &nets[i].net, net, sizeof(net));
			if (nets[i].internal)
				fprintf(f, "  iifname \"%s\" oifname != \"%s\" drop\n",
					nets[i].bridge, nets[i].bridge);
			else
				fprintf(f,
					"  iifname \"%s\" ip daddr != %s/%u ip daddr @nets drop\n",
					nets[i].bridge, net, nets[i].prefixlen);
		}
		fprintf(f, " }\n}\n");
	}
	if (fclose(f) != 0 || !text) {
		free(text);
		shoal_err_set(err, ENOMEM, "out of memory");
		return NULL;
	}
	return text;
}

int vxlan_masq_set(const char *prefix, const struct vxlan_masq *nets, size_t n,
		   struct shoal_err *err)
{
	_cleanup_free_ char *cmd = vxlan_masq_ruleset(prefix, nets, n, err);
	if (!cmd)
		return -(err && err->code ? err->code : ENOMEM);
	/* routed egress needs forwarding on (the bridge network turns it on
	 * too, but it may not be in use) */
	for (size_t i = 0; i < n; i++) {
		if (nets[i].internal)
			continue;
		_cleanup_close_ int fd =
			open("/proc/sys/net/ipv4/ip_forward", O_WRONLY | O_CLOEXEC);
		if (fd < 0 || write(fd, "1", 1) != 1)
			return shoal_err_errno(err, errno, "turning IPv4 forwarding on");
		break;
	}
	_cleanup_(nft_ctx_freep) struct nft_ctx *nft = nft_ctx_new(NFT_CTX_DEFAULT);
	if (!nft)
		return shoal_err_set(err, ENOMEM, "nft_ctx_new");
	nft_ctx_buffer_output(nft);
	nft_ctx_buffer_error(nft);
	if (nft_run_cmd_from_buffer(nft, cmd) != 0) {
		const char *e = nft_ctx_get_error_buffer(nft);
		return shoal_err_set(err, EIO, "nftables table %s_ovl: %s", prefix,
				     e && *e ? e : "failed");
	}
	return 0;
}
