// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <net/if.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>

#include <libmnl/libmnl.h>

#include "lib/cleanup.h"
#include "overlay/nl-internal.h"

/* Dumps fill skbs up to the largest buffer recv() was given, so one size fits. */
#define NL_RECV_SIZE 32768

int nl_socket_fd(void)
{
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (fd < 0)
		return -errno;
	struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int r = -errno;
		close(fd);
		return r;
	}
	int one = 1;
	/* Best effort: without them errors lose their text, nothing else. */
	(void)setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
	(void)setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one));
	return fd;
}

int nl_sock_adopt(struct nl_sock *s, int fd)
{
	s->fd = fd;
	s->seq = (uint32_t)getpid() << 8;
	return 0;
}

int nl_sock_open(struct nl_sock *s)
{
	int fd = nl_socket_fd();
	if (fd < 0)
		return fd;
	return nl_sock_adopt(s, fd);
}

void nl_sock_close(struct nl_sock *s)
{
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -EBADF;
}

static int ext_ack_attr_cb(const struct nlattr *attr, void *data)
{
	const struct nlattr **tb = data;
	int type = mnl_attr_get_type(attr);
	if (type <= NLMSGERR_ATTR_MAX)
		tb[type] = attr;
	return MNL_CB_OK;
}

static void ext_ack_text(const struct nlmsghdr *nlh, char *ext, size_t extlen)
{
	if (!ext || !(nlh->nlmsg_flags & NLM_F_ACK_TLVS))
		return;
	const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);
	size_t off = sizeof(*e);
	if (!(nlh->nlmsg_flags & NLM_F_CAPPED))
		off += e->msg.nlmsg_len - sizeof(struct nlmsghdr);
	if (mnl_nlmsg_get_payload_len(nlh) < off)
		return;
	const struct nlattr *tb[NLMSGERR_ATTR_MAX + 1] = {0};
	if (mnl_attr_parse(nlh, (unsigned int)off, ext_ack_attr_cb, tb) < 0)
		return;
	if (tb[NLMSGERR_ATTR_MSG])
		snprintf(ext, extlen, "%s", mnl_attr_get_str(tb[NLMSGERR_ATTR_MSG]));
}

int nl_sock_transact(struct nl_sock *s, void *buf, size_t len, nl_msg_cb cb, void *data, char *ext,
		     size_t extlen)
{
	uint32_t seqs[NL_BATCH_MAX];
	bool done[NL_BATCH_MAX] = {0};
	size_t n = 0;

	if (ext && extlen)
		ext[0] = '\0';
	for (struct nlmsghdr *nlh = buf; mnl_nlmsg_ok(nlh, (int)((char *)buf + len - (char *)nlh));
	     nlh = (struct nlmsghdr *)((char *)nlh + NLMSG_ALIGN(nlh->nlmsg_len))) {
		if (n == NL_BATCH_MAX)
			return -E2BIG;
		nlh->nlmsg_seq = ++s->seq;
		/* NLM_F_DUMP shares a bit with NLM_F_EXCL: only a GET is a dump. */
		bool dump =
			(nlh->nlmsg_type & 3) == 2 && (nlh->nlmsg_flags & NLM_F_DUMP) == NLM_F_DUMP;
		if (!dump)
			nlh->nlmsg_flags |= NLM_F_ACK;
		seqs[n++] = nlh->nlmsg_seq;
	}
	if (n == 0)
		return -EINVAL;

	struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
	ssize_t w;
	do
		w = sendto(s->fd, buf, len, 0, (struct sockaddr *)&sa, sizeof(sa));
	while (w < 0 && errno == EINTR);
	if (w < 0)
		return -errno;

	int first_err = 0;
	size_t pending = n;
	_cleanup_free_ char *rbuf = malloc(NL_RECV_SIZE);
	if (!rbuf)
		return -ENOMEM;
	while (pending > 0) {
		ssize_t rn = recv(s->fd, rbuf, NL_RECV_SIZE, 0);
		if (rn < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		int left = (int)rn;
		for (struct nlmsghdr *nlh = (struct nlmsghdr *)rbuf; mnl_nlmsg_ok(nlh, left);
		     nlh = mnl_nlmsg_next(nlh, &left)) {
			size_t k;
			for (k = 0; k < n; k++)
				if (seqs[k] == nlh->nlmsg_seq)
					break;
			if (k == n || done[k])
				continue; /* stale reply from an aborted earlier transaction */

			if (nlh->nlmsg_type == NLMSG_ERROR) {
				const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);
				if (e->error < 0 && first_err == 0) {
					first_err = e->error;
					ext_ack_text(nlh, ext, extlen);
				}
				done[k] = true;
				pending--;
			} else if (nlh->nlmsg_type == NLMSG_DONE) {
				if (mnl_nlmsg_get_payload_len(nlh) >= sizeof(int)) {
					int e = *(int *)mnl_nlmsg_get_payload(nlh);
					if (e < 0 && first_err == 0) {
						first_err = e;
						ext_ack_text(nlh, ext, extlen);
					}
				}
				done[k] = true;
				pending--;
			} else if (cb && first_err == 0) {
				int r = cb(nlh, data);
				if (r < 0)
					first_err = r;
			}
		}
	}
	return first_err;
}

static struct nlmsghdr *msg_start(void *buf, uint16_t type, uint16_t flags)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST | flags;
	return nlh;
}

static struct ifinfomsg *put_ifinfo(struct nlmsghdr *nlh, int ifindex)
{
	struct ifinfomsg *ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
	ifi->ifi_family = AF_UNSPEC;
	ifi->ifi_index = ifindex;
	return ifi;
}

struct nlmsghdr *nl_build_link_get(void *buf, const char *ifname)
{
	struct nlmsghdr *nlh = msg_start(buf, RTM_GETLINK, 0);
	put_ifinfo(nlh, 0);
	mnl_attr_put_strz(nlh, IFLA_IFNAME, ifname);
	/* Without stats the reply is a third the size. */
	mnl_attr_put_u32(nlh, IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
	return nlh;
}

struct nlmsghdr *nl_build_link_dump(void *buf)
{
	struct nlmsghdr *nlh = msg_start(buf, RTM_GETLINK, NLM_F_DUMP);
	put_ifinfo(nlh, 0);
	mnl_attr_put_u32(nlh, IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
	return nlh;
}

struct nlmsghdr *nl_build_bridge_new(void *buf, const char *ifname, int mtu, const uint8_t *mac)
{
	struct nlmsghdr *nlh = msg_start(buf, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
	struct ifinfomsg *ifi = put_ifinfo(nlh, 0);
	ifi->ifi_flags = IFF_UP;
	ifi->ifi_change = IFF_UP;
	mnl_attr_put_strz(nlh, IFLA_IFNAME, ifname);
	if (mtu > 0)
		mnl_attr_put_u32(nlh, IFLA_MTU, (uint32_t)mtu);
	if (mac)
		mnl_attr_put(nlh, IFLA_ADDRESS, 6, mac);
	struct nlattr *li = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
	mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "bridge");
	mnl_attr_nest_end(nlh, li);
	return nlh;
}

struct nlmsghdr *nl_build_veth_new(void *buf, const struct nl_veth_spec *spec)
{
	struct nlmsghdr *nlh = msg_start(buf, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
	struct ifinfomsg *ifi = put_ifinfo(nlh, 0);
	ifi->ifi_flags = IFF_UP;
	ifi->ifi_change = IFF_UP;
	mnl_attr_put_strz(nlh, IFLA_IFNAME, spec->ifname);
	if (spec->mtu > 0)
		mnl_attr_put_u32(nlh, IFLA_MTU, (uint32_t)spec->mtu);
	if (spec->master > 0)
		mnl_attr_put_u32(nlh, IFLA_MASTER, (uint32_t)spec->master);

	struct nlattr *li = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
	mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "veth");
	struct nlattr *id = mnl_attr_nest_start(nlh, IFLA_INFO_DATA);
	struct nlattr *peer = mnl_attr_nest_start(nlh, VETH_INFO_PEER);
	/* The peer's attributes follow its own ifinfomsg inside the nest. */
	struct ifinfomsg *pifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*pifi));
	pifi->ifi_family = AF_UNSPEC;
	mnl_attr_put_strz(nlh, IFLA_IFNAME, spec->peer_ifname);
	if (spec->mtu > 0)
		mnl_attr_put_u32(nlh, IFLA_MTU, (uint32_t)spec->mtu);
	if (spec->peer_mac)
		mnl_attr_put(nlh, IFLA_ADDRESS, 6, spec->peer_mac);
	if (spec->peer_netns_fd >= 0)
		mnl_attr_put_u32(nlh, IFLA_NET_NS_FD, (uint32_t)spec->peer_netns_fd);
	mnl_attr_nest_end(nlh, peer);
	mnl_attr_nest_end(nlh, id);
	mnl_attr_nest_end(nlh, li);
	return nlh;
}

struct nlmsghdr *nl_build_link_set(void *buf, int ifindex, const char *ifname, int up, int mtu)
{
	struct nlmsghdr *nlh = msg_start(buf, RTM_SETLINK, 0);
	struct ifinfomsg *ifi = put_ifinfo(nlh, ifindex);
	if (up >= 0) {
		ifi->ifi_flags = up ? IFF_UP : 0;
		ifi->ifi_change = IFF_UP;
	}
	if (ifindex <= 0 && ifname)
		mnl_attr_put_strz(nlh, IFLA_IFNAME, ifname);
	if (mtu > 0)
		mnl_attr_put_u32(nlh, IFLA_MTU, (uint32_t)mtu);
	return nlh;
}

struct nlmsghdr *nl_build_link_del(void *buf, int ifindex, const char *ifname)
{
	struct nlmsghdr *nlh = msg_start(buf, RTM_DELLINK, 0);
	put_ifinfo(nlh, ifindex);
	if (ifindex <= 0 && ifname)
		mnl_attr_put_strz(nlh, IFLA_IFNAME, ifname);
	return nlh;
}

struct nlmsghdr *nl_build_addr_new(void *buf, int ifindex, struct in_addr addr, uint8_t prefixlen,
				   struct in_addr brd)
{
	struct nlmsghdr *nlh = msg_start(buf, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL);
	struct ifaddrmsg *ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));
	ifa->ifa_family = AF_INET;
	ifa->ifa_prefixlen = prefixlen;
	ifa->ifa_scope = RT_SCOPE_UNIVERSE;
	ifa->ifa_index = (uint32_t)ifindex;
	mnl_attr_put(nlh, IFA_LOCAL, sizeof(addr), &addr);
	mnl_attr_put(nlh, IFA_ADDRESS, sizeof(addr), &addr);
	if (brd.s_addr)
		mnl_attr_put(nlh, IFA_BROADCAST, sizeof(brd), &brd);
	return nlh;
}

struct nlmsghdr *nl_build_addr_dump(void *buf)
{
	struct nlmsghdr *nlh = msg_start(buf, RTM_GETADDR, NLM_F_DUMP);
	struct ifaddrmsg *ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));
	ifa->ifa_family = AF_INET;
	return nlh;
}

struct nlmsghdr *nl_build_route_default(void *buf, struct in_addr gw, int oif)
{
	struct nlmsghdr *nlh = msg_start(buf, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL);
	struct rtmsg *rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));
	rtm->rtm_family = AF_INET;
	rtm->rtm_dst_len = 0;
	rtm->rtm_table = RT_TABLE_MAIN;
	rtm->rtm_protocol = RTPROT_BOOT;
	rtm->rtm_scope = RT_SCOPE_UNIVERSE;
	rtm->rtm_type = RTN_UNICAST;
	mnl_attr_put(nlh, RTA_GATEWAY, sizeof(gw), &gw);
	if (oif > 0)
		mnl_attr_put_u32(nlh, RTA_OIF, (uint32_t)oif);
	return nlh;
}

struct nlmsghdr *nl_build_route_dump(void *buf)
{
	struct nlmsghdr *nlh = msg_start(buf, RTM_GETROUTE, NLM_F_DUMP);
	struct rtmsg *rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));
	rtm->rtm_family = AF_INET;
	return nlh;
}

struct attr_tb {
	const struct nlattr **tb;
	int max;
};

static int attr_cb(const struct nlattr *attr, void *data)
{
	struct attr_tb *t = data;
	int type = mnl_attr_get_type(attr);
	if (type <= t->max)
		t->tb[type] = attr;
	return MNL_CB_OK;
}

static int parse_attrs(const struct nlmsghdr *nlh, size_t hdr, const struct nlattr **tb, int max)
{
	if (mnl_nlmsg_get_payload_len(nlh) < hdr)
		return -EBADMSG;
	struct attr_tb t = {tb, max};
	return mnl_attr_parse(nlh, (unsigned int)hdr, attr_cb, &t) < 0 ? -EBADMSG : 0;
}

static int parse_nested(const struct nlattr *nest, const struct nlattr **tb, int max)
{
	struct attr_tb t = {tb, max};
	return mnl_attr_parse_nested(nest, attr_cb, &t) < 0 ? -EBADMSG : 0;
}

static void copy_str(char *dst, size_t size, const struct nlattr *a)
{
	size_t n = mnl_attr_get_payload_len(a);
	const char *s = mnl_attr_get_payload(a);
	if (n > 0 && s[n - 1] == '\0')
		n--;
	if (n >= size)
		n = size - 1;
	memcpy(dst, s, n);
	dst[n] = '\0';
}

int nl_parse_link(const struct nlmsghdr *nlh, struct nl_link *ret)
{
	if (nlh->nlmsg_type != RTM_NEWLINK)
		return -EBADMSG;
	const struct nlattr *tb[IFLA_MAX + 1] = {0};
	int r = parse_attrs(nlh, sizeof(struct ifinfomsg), tb, IFLA_MAX);
	if (r < 0)
		return r;
	const struct ifinfomsg *ifi = mnl_nlmsg_get_payload(nlh);
	struct nl_link l = {.ifindex = ifi->ifi_index, .flags = ifi->ifi_flags};
	if (tb[IFLA_IFNAME])
		copy_str(l.ifname, sizeof(l.ifname), tb[IFLA_IFNAME]);
	if (tb[IFLA_MASTER])
		l.master = (int)mnl_attr_get_u32(tb[IFLA_MASTER]);
	if (tb[IFLA_MTU])
		l.mtu = (int)mnl_attr_get_u32(tb[IFLA_MTU]);
	if (tb[IFLA_ADDRESS] && mnl_attr_get_payload_len(tb[IFLA_ADDRESS]) == 6) {
		memcpy(l.mac, mnl_attr_get_payload(tb[IFLA_ADDRESS]), 6);
		l.has_mac = true;
	}
	if (tb[IFLA_LINKINFO]) {
		const struct nlattr *li[IFLA_INFO_MAX + 1] = {0};
		if (parse_nested(tb[IFLA_LINKINFO], li, IFLA_INFO_MAX) == 0 && li[IFLA_INFO_KIND])
			copy_str(l.kind, sizeof(l.kind), li[IFLA_INFO_KIND]);
	}
	*ret = l;
	return 0;
}

int nl_parse_addr(const struct nlmsghdr *nlh, struct nl_addr *ret)
{
	if (nlh->nlmsg_type != RTM_NEWADDR)
		return -EBADMSG;
	const struct nlattr *tb[IFA_MAX + 1] = {0};
	int r = parse_attrs(nlh, sizeof(struct ifaddrmsg), tb, IFA_MAX);
	if (r < 0)
		return r;
	const struct ifaddrmsg *ifa = mnl_nlmsg_get_payload(nlh);
	if (ifa->ifa_family != AF_INET)
		return -EAFNOSUPPORT;
	const struct nlattr *a = tb[IFA_LOCAL] ? tb[IFA_LOCAL] : tb[IFA_ADDRESS];
	if (!a || mnl_attr_get_payload_len(a) != 4)
		return -EBADMSG;
	struct nl_addr out = {.ifindex = (int)ifa->ifa_index, .prefixlen = ifa->ifa_prefixlen};
	memcpy(&out.addr, mnl_attr_get_payload(a), 4);
	*ret = out;
	return 0;
}

int nl_parse_route(const struct nlmsghdr *nlh, struct nl_route *ret)
{
	if (nlh->nlmsg_type != RTM_NEWROUTE)
		return -EBADMSG;
	const struct nlattr *tb[RTA_MAX + 1] = {0};
	int r = parse_attrs(nlh, sizeof(struct rtmsg), tb, RTA_MAX);
	if (r < 0)
		return r;
	const struct rtmsg *rtm = mnl_nlmsg_get_payload(nlh);
	if (rtm->rtm_family != AF_INET)
		return -EAFNOSUPPORT;
	struct nl_route out = {.dst_len = rtm->rtm_dst_len, .table = rtm->rtm_table};
	if (tb[RTA_TABLE])
		out.table = mnl_attr_get_u32(tb[RTA_TABLE]);
	if (tb[RTA_OIF])
		out.oif = (int)mnl_attr_get_u32(tb[RTA_OIF]);
	if (tb[RTA_DST] && mnl_attr_get_payload_len(tb[RTA_DST]) == 4)
		memcpy(&out.dst, mnl_attr_get_payload(tb[RTA_DST]), 4);
	if (tb[RTA_GATEWAY] && mnl_attr_get_payload_len(tb[RTA_GATEWAY]) == 4)
		memcpy(&out.gateway, mnl_attr_get_payload(tb[RTA_GATEWAY]), 4);
	*ret = out;
	return 0;
}

int nl_err(struct shoal_err *err, int r, const char *ext, const char *fmt, ...)
{
	char what[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (ext && *ext)
		return shoal_err_errno(err, r, "%s (kernel: %s)", what, ext);
	return shoal_err_errno(err, r, "%s", what);
}

int nl_link_get_cb(const struct nlmsghdr *nlh, void *data)
{
	(void)nl_parse_link(nlh, data);
	return 0;
}

#define LOOPBACK_IFINDEX 1

int nl_eth0_configure(int nlfd, char *buf, const char *where, struct in_addr addr,
		      uint8_t prefixlen, struct in_addr broadcast, struct in_addr gateway,
		      struct shoal_err *err)
{
	return nl_if_configure(nlfd, buf, where, "eth0", addr, prefixlen, broadcast, gateway, err);
}

int nl_if_configure(int nlfd, char *buf, const char *where, const char *ifname, struct in_addr addr,
		    uint8_t prefixlen, struct in_addr broadcast, struct in_addr gateway,
		    struct shoal_err *err)
{
	struct nl_sock s;
	nl_sock_adopt(&s, nlfd);
	char ext[256];
	/* its index in the namespace is the kernel's choice */
	struct nlmsghdr *nlh = nl_build_link_get(buf, ifname);
	struct nl_link l = {0};
	int r = nl_sock_transact(&s, buf, nlh->nlmsg_len, nl_link_get_cb, &l, ext, sizeof(ext));
	if (r < 0)
		return nl_err(err, r, ext, "finding %s in %s", ifname, where);
	size_t off = nl_build_link_set(buf, LOOPBACK_IFINDEX, NULL, 1, 0)->nlmsg_len;
	off += nl_build_link_set(buf + off, l.ifindex, NULL, 1, 0)->nlmsg_len;
	off += nl_build_addr_new(buf + off, l.ifindex, addr, prefixlen, broadcast)->nlmsg_len;
	if (gateway.s_addr)
		off += nl_build_route_default(buf + off, gateway, l.ifindex)->nlmsg_len;
	r = nl_sock_transact(&s, buf, off, NULL, NULL, ext, sizeof(ext));
	if (r < 0)
		return nl_err(err, r, ext, "configuring %s in %s", ifname, where);
	return 0;
}
