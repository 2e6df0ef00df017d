// SPDX-License-Identifier: Apache-2.0
/* vxlan FDB requests on libmnl: libnl-route-3 (3.7) builds AF_BRIDGE
 * neighbour requests without NDA_DST, and the vxlan driver needs it (the
 * remote VTEP). Kept apart from vxlan.c: overlay/nl-internal.h and libnl
 * both name a struct nl_sock. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>

#include <libmnl/libmnl.h>

#include "overlay/nl-internal.h"
#include "overlay/vxlan-internal.h"

struct vxlan_fdb_sock {
	struct nl_sock nl;
	char buf[NL_BUF_SIZE];
};

struct nlmsghdr *vxlan_fdb_build(void *buf, bool add, int ifindex, const uint8_t mac[6],
				 struct in_addr dst)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct ndmsg *ndm;

	nlh->nlmsg_type = add ? RTM_NEWNEIGH : RTM_DELNEIGH;
	/* Replace: an entry someone left (or a crash half way) is
	 * overwritten, never "File exists". */
	nlh->nlmsg_flags = NLM_F_REQUEST | (add ? NLM_F_CREATE | NLM_F_REPLACE : 0);
	ndm = mnl_nlmsg_put_extra_header(nlh, sizeof(*ndm));
	ndm->ndm_family = AF_BRIDGE;
	ndm->ndm_ifindex = ifindex;
	ndm->ndm_state = add ? NUD_PERMANENT : 0;
	/* The vxlan device's own table, not the bridge's above it. */
	ndm->ndm_flags = NTF_SELF;
	mnl_attr_put(nlh, NDA_LLADDR, 6, mac);
	mnl_attr_put(nlh, NDA_DST, sizeof(dst), &dst);
	return nlh;
}

int vxlan_fdb_sock_open(struct vxlan_fdb_sock **ret)
{
	struct vxlan_fdb_sock *s = calloc(1, sizeof(*s));
	int r;

	if (!s)
		return -ENOMEM;
	r = nl_sock_open(&s->nl);
	if (r < 0) {
		free(s);
		return r;
	}
	*ret = s;
	return 0;
}

void vxlan_fdb_sock_free(struct vxlan_fdb_sock *s)
{
	if (!s)
		return;
	nl_sock_close(&s->nl);
	free(s);
}

int vxlan_fdb_send(struct vxlan_fdb_sock *s, bool add, int ifindex, const uint8_t mac[6],
		   struct in_addr dst, char *ext, size_t extlen)
{
	struct nlmsghdr *nlh = vxlan_fdb_build(s->buf, add, ifindex, mac, dst);

	return nl_sock_transact(&s->nl, s->buf, nlh->nlmsg_len, NULL, NULL, ext, extlen);
}
