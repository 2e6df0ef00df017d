// SPDX-License-Identifier: Apache-2.0
#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <net/if.h>
#include <linux/rtnetlink.h>

#include <nftables/libnftables.h>

#include "lib/cleanup.h"
#include "lib/util.h"
#include "overlay/bridge.h"
#include "overlay/bridge-internal.h"
#include "overlay/netns-internal.h"
#include "overlay/nl-internal.h"

#define DEFAULT_SUBNET "10.213.0.0/16"
#define NET_PREFIX_MAX 8
#define ID_MAX	       128
#define FALLBACK_MTU   1500

struct bridge_net {
	char prefix[NET_PREFIX_MAX + 1];
	char bridge[IFNAMSIZ];
	char subnet[32];
	char netns_dir[PATH_MAX];
	bool netns_dir_ready;
	int bridge_ifindex;
	int mtu;
	struct ipam *ipam;
	struct nl_sock nl;
	char *buf; /* NL_BUF_SIZE request scratch */
};

DEFINE_TRIVIAL_CLEANUP_FUNC(struct nft_ctx *, nft_ctx_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(struct bridge_net *, bridge_net_free)

static const char *fmt_addr(struct in_addr a, char buf[INET_ADDRSTRLEN])
{
	return inet_ntop(AF_INET, &a, buf, INET_ADDRSTRLEN);
}

static int check_prefix(const char *prefix, struct shoal_err *err)
{
	size_t n = prefix ? strlen(prefix) : 0;
	if (n == 0 || n > NET_PREFIX_MAX)
		return shoal_err_set(err, EINVAL,
				     "network prefix \"%s\" must be 1 to %d characters",
				     prefix ? prefix : "", NET_PREFIX_MAX);
	/* It names devices and an nftables table: keep to what both accept unquoted. */
	if (!isalpha((unsigned char)prefix[0]))
		return shoal_err_set(err, EINVAL, "network prefix \"%s\" must start with a letter",
				     prefix);
	for (const char *p = prefix; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '_')
			return shoal_err_set(
				err, EINVAL,
				"network prefix \"%s\" may hold only letters, digits and '_'",
				prefix);
	return 0;
}

static bool is_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!s[i] || !isxdigit((unsigned char)s[i]) || isupper((unsigned char)s[i]))
			return false;
	return true;
}

/* <prefix>v<8 hex of the id>; when the prefix leaves less room, or the id is
 * not hex, as many hex characters of the id's sha256 as fit. Teardown finds
 * them all by "<prefix>v" followed by hex only. */
void bridge_host_ifname(const char *prefix, const char *id, char ret[IFNAMSIZ])
{
	size_t room = IFNAMSIZ - 1 - strlen(prefix) - 1;
	if (room > 8)
		room = 8;
	if (room == 8 && is_hex(id, 8)) {
		snprintf(ret, IFNAMSIZ, "%sv%.8s", prefix, id);
		return;
	}
	char h[65];
	sha256_hex(id, strlen(id), h);
	snprintf(ret, IFNAMSIZ, "%sv%.*s", prefix, (int)room, h);
}

bool bridge_is_host_ifname(const char *prefix, const char *name)
{
	size_t n = strlen(prefix);
	if (strncmp(name, prefix, n) != 0 || name[n] != 'v')
		return false;
	const char *hex = name + n + 1;
	size_t hl = strlen(hex);
	return hl > 0 && is_hex(hex, hl);
}

static void mac_from_addr(struct in_addr a, uint8_t mac[6])
{
	mac[0] = 0x02;
	mac[1] = 0x42;
	memcpy(mac + 2, &a.s_addr, 4);
}

static int check_id(const char *id, struct shoal_err *err)
{
	size_t n = id ? strlen(id) : 0;
	if (n == 0 || n > ID_MAX || strchr(id, '/') || !strcmp(id, ".") || !strcmp(id, ".."))
		return shoal_err_set(err, EINVAL,
				     "endpoint id \"%s\" must be 1 to %d characters without '/'",
				     id ? id : "", ID_MAX);
	return 0;
}

/* ---- nftables ---- */

static int nft_run(const char *cmd, bool handles, char **ret_out, struct shoal_err *err)
{
	_cleanup_(nft_ctx_freep) struct nft_ctx *ctx = nft_ctx_new(NFT_CTX_DEFAULT);
	if (!ctx)
		return shoal_err_set(err, ENOMEM, "creating an nftables context");
	nft_ctx_buffer_output(ctx);
	nft_ctx_buffer_error(ctx);
	if (handles)
		nft_ctx_output_set_flags(ctx, NFT_CTX_OUTPUT_HANDLE);
	if (nft_run_cmd_from_buffer(ctx, cmd) != 0) {
		const char *e = nft_ctx_get_error_buffer(ctx);
		char msg[512];
		snprintf(msg, sizeof(msg), "%s", e && *e ? e : "unknown error");
		size_t n = strlen(msg);
		while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
			msg[--n] = '\0';
		return shoal_err_set(err, EIO, "nftables: %s", msg);
	}
	if (ret_out) {
		const char *o = nft_ctx_get_output_buffer(ctx);
		*ret_out = strdup(o ? o : "");
		if (!*ret_out)
			return shoal_err_set(err, ENOMEM, "copying nftables output");
	}
	return 0;
}

/*
 * Reads `nft -a list ruleset` text: the ip/inet base chains on the forward
 * hook whose policy is drop (our subnet needs an accept there), and the rules
 * carrying our comment (to skip re-adding them, or to delete them). The
 * iptables-nft FORWARD chain is left to iptables.
 */
void bridge_nft_scan_ruleset(char *text, const char *comment, struct bridge_nft_scan *sc)
{
	struct bridge_nft_chain cur = {0};
	char want[96];
	snprintf(want, sizeof(want), "comment \"%s\"", comment);
	for (char *save = NULL, *line = strtok_r(text, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		while (*line == '\t' || *line == ' ')
			line++;
		if (str_has_prefix(line, "table ")) {
			memset(&cur, 0, sizeof(cur));
			sscanf(line, "table %7s %63s", cur.family, cur.table);
		} else if (str_has_prefix(line, "chain ")) {
			cur.chain[0] = '\0';
			sscanf(line, "chain %63s", cur.chain);
		} else if (strstr(line, "hook forward") && strstr(line, "policy drop;")) {
			bool fam = !strcmp(cur.family, "ip") || !strcmp(cur.family, "inet");
			if (fam && strcmp(cur.chain, "FORWARD") != 0 &&
			    sc->n_drop_fwd < BRIDGE_NFT_CHAINS_MAX)
				sc->drop_fwd[sc->n_drop_fwd++] = cur;
		} else if (strstr(line, want)) {
			const char *h = strstr(line, "# handle ");
			if (h && sc->n_ours < BRIDGE_NFT_RULES_MAX) {
				sc->ours[sc->n_ours].c = cur;
				sc->ours[sc->n_ours].handle = strtoul(h + 9, NULL, 10);
				sc->n_ours++;
			}
		}
	}
}

static bool same_chain(const struct bridge_nft_chain *a, const struct bridge_nft_chain *b)
{
	return !strcmp(a->family, b->family) && !strcmp(a->table, b->table) &&
	       !strcmp(a->chain, b->chain);
}

static int nft_scan(const char *comment, struct bridge_nft_scan *sc, struct shoal_err *err)
{
	_cleanup_free_ char *out = NULL;
	memset(sc, 0, sizeof(*sc));
	int r = nft_run("list ruleset", true, &out, err);
	if (r < 0)
		return r;
	bridge_nft_scan_ruleset(out, comment, sc);
	return 0;
}

static int nft_setup(const char *prefix, const char *bridge, const char *subnet,
		     struct shoal_err *err)
{
	char cmd[2048], fwd_comment[32];
	snprintf(fwd_comment, sizeof(fwd_comment), "%s_fwd", prefix);
	/* add+delete+create in one buffer is one transaction: the table is
	 * replaced atomically, whether or not it existed. */
	int n = snprintf(cmd, sizeof(cmd),
			 "add table ip %1$s_nat\n"
			 "delete table ip %1$s_nat\n"
			 "table ip %1$s_nat {\n"
			 "\tchain postrouting {\n"
			 "\t\ttype nat hook postrouting priority srcnat; policy accept;\n"
			 "\t\tip saddr %2$s oifname != \"%3$s\" masquerade\n"
			 "\t}\n"
			 "}\n",
			 prefix, subnet, bridge);
	if (n < 0 || (size_t)n >= sizeof(cmd))
		return shoal_err_set(err, ENAMETOOLONG, "nftables command too long");
	int r = nft_run(cmd, false, NULL, err);
	if (r < 0)
		return shoal_err_wrap(err, "creating NAT table ip %s_nat", prefix);

	struct bridge_nft_scan sc;
	r = nft_scan(fwd_comment, &sc, err);
	if (r < 0)
		return shoal_err_wrap(err, "reading the nftables ruleset");
	size_t off = 0;
	cmd[0] = '\0';
	for (size_t i = 0; i < sc.n_drop_fwd; i++) {
		const struct bridge_nft_chain *c = &sc.drop_fwd[i];
		bool have = false;
		for (size_t j = 0; j < sc.n_ours; j++)
			if (same_chain(&sc.ours[j].c, c))
				have = true;
		if (have)
			continue;
		n = snprintf(cmd + off, sizeof(cmd) - off,
			     "insert rule %1$s %2$s %3$s ip saddr %4$s accept comment \"%5$s\"\n"
			     "insert rule %1$s %2$s %3$s ip daddr %4$s accept comment \"%5$s\"\n",
			     c->family, c->table, c->chain, subnet, fwd_comment);
		if (n < 0 || (size_t)n >= sizeof(cmd) - off)
			return shoal_err_set(err, ENAMETOOLONG, "too many forward chains to open");
		off += (size_t)n;
	}
	if (off == 0)
		return 0;
	r = nft_run(cmd, false, NULL, err);
	if (r < 0)
		return shoal_err_wrap(err, "accepting %s in forward chains with a drop policy",
				      subnet);
	return 0;
}

static int nft_teardown(const char *prefix, struct shoal_err *err)
{
	char cmd[4096], fwd_comment[32];
	snprintf(fwd_comment, sizeof(fwd_comment), "%s_fwd", prefix);
	struct bridge_nft_scan sc;
	int r = nft_scan(fwd_comment, &sc, err);
	if (r < 0)
		return shoal_err_wrap(err, "reading the nftables ruleset");
	size_t off = (size_t)snprintf(cmd, sizeof(cmd),
				      "add table ip %1$s_nat\ndelete table ip %1$s_nat\n", prefix);
	for (size_t i = 0; i < sc.n_ours; i++) {
		const struct bridge_nft_rule *o = &sc.ours[i];
		int n = snprintf(cmd + off, sizeof(cmd) - off, "delete rule %s %s %s handle %lu\n",
				 o->c.family, o->c.table, o->c.chain, o->handle);
		if (n < 0 || (size_t)n >= sizeof(cmd) - off)
			return shoal_err_set(err, ENAMETOOLONG, "too many rules to delete");
		off += (size_t)n;
	}
	r = nft_run(cmd, false, NULL, err);
	if (r < 0)
		return shoal_err_wrap(err, "deleting NAT table ip %s_nat", prefix);
	return 0;
}

/* ---- netlink helpers ---- */

struct link_list {
	struct nl_link *v;
	size_t n, cap;
};

static int link_collect_cb(const struct nlmsghdr *nlh, void *data)
{
	struct link_list *l = data;
	struct nl_link k;
	if (nl_parse_link(nlh, &k) < 0)
		return 0;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 32;
		struct nl_link *v = realloc(l->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = k;
	return 0;
}

static int dump_links(struct nl_sock *s, char *buf, struct link_list *ret, struct shoal_err *err)
{
	struct nlmsghdr *nlh = nl_build_link_dump(buf);
	char ext[256];
	int r = nl_sock_transact(s, buf, nlh->nlmsg_len, link_collect_cb, ret, ext, sizeof(ext));
	if (r < 0)
		return nl_err(err, r, ext, "listing links");
	return 0;
}

struct addr_list {
	int ifindex;
	struct nl_addr v[16];
	size_t n;
};

static int addr_collect_cb(const struct nlmsghdr *nlh, void *data)
{
	struct addr_list *l = data;
	struct nl_addr a;
	if (nl_parse_addr(nlh, &a) < 0 || a.ifindex != l->ifindex)
		return 0;
	if (l->n < ARRAY_SIZE(l->v))
		l->v[l->n++] = a;
	return 0;
}

static int default_route_cb(const struct nlmsghdr *nlh, void *data)
{
	int *oif = data;
	struct nl_route rt;
	if (nl_parse_route(nlh, &rt) == 0 && rt.dst_len == 0 && rt.table == RT_TABLE_MAIN &&
	    rt.oif > 0 && *oif == 0)
		*oif = rt.oif;
	return 0;
}

/* ---- setup / teardown ---- */

static int resolve_mtu(struct bridge_net *bn, const struct link_list *links, int want,
		       struct shoal_err *err)
{
	if (want > 0) {
		if (want < 68 || want > 65535)
			return shoal_err_set(err, EINVAL, "MTU %d is out of range (68..65535)",
					     want);
		bn->mtu = want;
		return 0;
	}
	int oif = 0;
	struct nlmsghdr *nlh = nl_build_route_dump(bn->buf);
	char ext[256];
	int r = nl_sock_transact(&bn->nl, bn->buf, nlh->nlmsg_len, default_route_cb, &oif, ext,
				 sizeof(ext));
	if (r < 0)
		return nl_err(err, r, ext, "listing routes");
	bn->mtu = FALLBACK_MTU;
	for (size_t i = 0; i < links->n; i++)
		if (links->v[i].ifindex == oif && links->v[i].mtu > 0)
			bn->mtu = links->v[i].mtu;
	return 0;
}

static int bridge_adopt(struct bridge_net *bn, const struct nl_link *l, struct shoal_err *err)
{
	char ext[256], a1[INET_ADDRSTRLEN], a2[INET_ADDRSTRLEN];
	if (strcmp(l->kind, "bridge") != 0)
		return shoal_err_set(
			err, EEXIST,
			"%s exists and is a %s device, not a bridge: delete it or choose another prefix",
			bn->bridge, l->kind[0] ? l->kind : "plain");
	bn->bridge_ifindex = l->ifindex;

	struct addr_list al = {.ifindex = l->ifindex};
	struct nlmsghdr *nlh = nl_build_addr_dump(bn->buf);
	int r = nl_sock_transact(&bn->nl, bn->buf, nlh->nlmsg_len, addr_collect_cb, &al, ext,
				 sizeof(ext));
	if (r < 0)
		return nl_err(err, r, ext, "listing addresses of %s", bn->bridge);

	struct in_addr gw = ipam_gateway(bn->ipam);
	bool have_gw = false;
	for (size_t i = 0; i < al.n; i++) {
		if (al.v[i].addr.s_addr == gw.s_addr &&
		    al.v[i].prefixlen == ipam_prefixlen(bn->ipam)) {
			have_gw = true;
			continue;
		}
		return shoal_err_set(
			err, EEXIST,
			"bridge %s has address %s/%u but the configured subnet is %s (gateway %s/%u): "
			"configure the subnet the bridge has, or tear the network down first",
			bn->bridge, fmt_addr(al.v[i].addr, a1), al.v[i].prefixlen, bn->subnet,
			fmt_addr(gw, a2), ipam_prefixlen(bn->ipam));
	}

	size_t off = 0;
	int mtu = l->mtu == bn->mtu ? 0 : bn->mtu;
	if (!(l->flags & IFF_UP) || mtu)
		off += nl_build_link_set(bn->buf, l->ifindex, NULL, 1, mtu)->nlmsg_len;
	if (!have_gw)
		off += nl_build_addr_new(bn->buf + off, l->ifindex, gw, ipam_prefixlen(bn->ipam),
					 ipam_broadcast(bn->ipam))
			       ->nlmsg_len;
	if (off == 0)
		return 0;
	r = nl_sock_transact(&bn->nl, bn->buf, off, NULL, NULL, ext, sizeof(ext));
	if (r < 0)
		return nl_err(err, r, ext, "configuring bridge %s", bn->bridge);
	return 0;
}

static int bridge_create(struct bridge_net *bn, struct shoal_err *err)
{
	char ext[256];
	uint8_t mac[6];
	struct in_addr gw = ipam_gateway(bn->ipam);
	mac_from_addr(gw, mac);

	size_t off = nl_build_bridge_new(bn->buf, bn->bridge, bn->mtu, mac)->nlmsg_len;
	off += nl_build_link_get(bn->buf + off, bn->bridge)->nlmsg_len;
	struct nl_link l = {0};
	int r = nl_sock_transact(&bn->nl, bn->buf, off, nl_link_get_cb, &l, ext, sizeof(ext));
	if (r < 0)
		return nl_err(err, r, ext, "creating bridge %s", bn->bridge);
	if (l.ifindex <= 0)
		return shoal_err_set(err, EIO, "bridge %s vanished after creation", bn->bridge);
	bn->bridge_ifindex = l.ifindex;

	struct nlmsghdr *nlh = nl_build_addr_new(bn->buf, l.ifindex, gw, ipam_prefixlen(bn->ipam),
						 ipam_broadcast(bn->ipam));
	r = nl_sock_transact(&bn->nl, bn->buf, nlh->nlmsg_len, NULL, NULL, ext, sizeof(ext));
	if (r < 0) {
		char a[INET_ADDRSTRLEN];
		return nl_err(err, r, ext, "adding %s/%u to bridge %s", fmt_addr(gw, a),
			      ipam_prefixlen(bn->ipam), bn->bridge);
	}
	return 0;
}

static int enable_ip_forward(struct shoal_err *err)
{
	static const char knob[] = "/proc/sys/net/ipv4/ip_forward";
	_cleanup_free_ char *cur = NULL;
	if (read_file(knob, 64, &cur, NULL) >= 0 && cur[0] == '1')
		return 0;
	int r = write_string_file(knob, "1");
	if (r < 0)
		return shoal_err_errno(err, r, "enabling IPv4 forwarding (%s)", knob);
	return 0;
}

int bridge_net_setup(const struct bridge_net_options *opts, struct bridge_net **ret,
		     struct shoal_err *err)
{
	int r = check_prefix(opts->prefix, err);
	if (r < 0)
		return r;
	const char *subnet = opts->subnet && *opts->subnet ? opts->subnet : DEFAULT_SUBNET;
	if (!opts->netns_dir || !*opts->netns_dir ||
	    strlen(opts->netns_dir) >= PATH_MAX - ID_MAX - 2)
		return shoal_err_set(err, EINVAL, "bridge network needs a netns directory");

	_cleanup_(bridge_net_freep) struct bridge_net *bn = calloc(1, sizeof(*bn));
	if (!bn)
		return shoal_err_set(err, ENOMEM, "allocating bridge network");
	bn->nl.fd = -EBADF;
	snprintf(bn->prefix, sizeof(bn->prefix), "%s", opts->prefix);
	snprintf(bn->bridge, sizeof(bn->bridge), "%s0", opts->prefix);
	snprintf(bn->subnet, sizeof(bn->subnet), "%s", subnet);
	snprintf(bn->netns_dir, sizeof(bn->netns_dir), "%s", opts->netns_dir);
	r = ipam_new(subnet, &bn->ipam, err);
	if (r < 0)
		return r;
	bn->buf = malloc(NL_BUF_SIZE);
	if (!bn->buf)
		return shoal_err_set(err, ENOMEM, "allocating netlink buffer");
	r = nl_sock_open(&bn->nl);
	if (r < 0)
		return shoal_err_errno(err, r, "opening a netlink socket");

	struct link_list links = {0};
	r = dump_links(&bn->nl, bn->buf, &links, err);
	if (r >= 0)
		r = resolve_mtu(bn, &links, opts->mtu, err);
	const struct nl_link *existing = NULL;
	for (size_t i = 0; r >= 0 && i < links.n; i++)
		if (!strcmp(links.v[i].ifname, bn->bridge))
			existing = &links.v[i];
	if (r >= 0)
		r = existing ? bridge_adopt(bn, existing, err) : bridge_create(bn, err);
	free(links.v);
	if (r < 0)
		return r;

	r = enable_ip_forward(err);
	if (r < 0)
		return r;
	r = nft_setup(bn->prefix, bn->bridge, bn->subnet, err);
	if (r < 0)
		return r;
	*ret = TAKE_PTR(bn);
	return 0;
}

void bridge_net_free(struct bridge_net *bn)
{
	if (!bn)
		return;
	nl_sock_close(&bn->nl);
	ipam_free(bn->ipam);
	free(bn->buf);
	free(bn);
}

int bridge_net_teardown(const struct bridge_net_options *opts, struct shoal_err *err)
{
	int r = check_prefix(opts->prefix, err);
	if (r < 0)
		return r;
	char bridge[IFNAMSIZ], ext[256];
	snprintf(bridge, sizeof(bridge), "%s0", opts->prefix);

	struct nl_sock s = {.fd = -EBADF};
	r = nl_sock_open(&s);
	if (r < 0)
		return shoal_err_errno(err, r, "opening a netlink socket");
	_cleanup_free_ char *buf = malloc(NL_BUF_SIZE);
	struct link_list links = {0};
	if (!buf)
		r = shoal_err_set(err, ENOMEM, "allocating netlink buffer");
	else
		r = dump_links(&s, buf, &links, err);

	/* One request per link: a batch stops being useful when one of them
	 * went away meanwhile, and ENODEV is fine here. */
	for (size_t i = 0; r >= 0 && i < links.n; i++) {
		const struct nl_link *l = &links.v[i];
		bool ours = (!strcmp(l->kind, "veth") &&
			     bridge_is_host_ifname(opts->prefix, l->ifname)) ||
			    (!strcmp(l->kind, "bridge") && !strcmp(l->ifname, bridge));
		if (!ours)
			continue;
		struct nlmsghdr *nlh = nl_build_link_del(buf, l->ifindex, NULL);
		int q = nl_sock_transact(&s, buf, nlh->nlmsg_len, NULL, NULL, ext, sizeof(ext));
		if (q < 0 && q != -ENODEV)
			r = nl_err(err, q, ext, "deleting %s", l->ifname);
	}
	free(links.v);
	nl_sock_close(&s);
	if (r < 0)
		return r;
	/* the containers' namespaces (their veths went with the links above) */
	if (opts->netns_dir && *opts->netns_dir) {
		r = netns_dir_remove(opts->netns_dir, err);
		if (r < 0)
			return r;
	}
	return nft_teardown(opts->prefix, err);
}

int bridge_net_reserve(struct bridge_net *bn, struct in_addr addr, struct shoal_err *err)
{
	char a[INET_ADDRSTRLEN];
	int r = ipam_reserve(bn->ipam, addr);
	if (r == -ERANGE)
		return shoal_err_set(err, ERANGE, "address %s is outside subnet %s",
				     fmt_addr(addr, a), bn->subnet);
	if (r == -EEXIST)
		return shoal_err_set(err, EEXIST, "address %s is already in use on %s",
				     fmt_addr(addr, a), bn->bridge);
	return r;
}

/* ---- endpoints ---- */

int bridge_net_endpoint_fill(struct bridge_net *bn, const char *id, struct in_addr addr,
			     struct bridge_endpoint *ret, struct shoal_err *err)
{
	int r = check_id(id, err);
	if (r < 0)
		return r;
	char a[INET_ADDRSTRLEN];
	if (!ipam_contains(bn->ipam, addr))
		return shoal_err_set(err, ERANGE, "address %s is outside subnet %s",
				     fmt_addr(addr, a), bn->subnet);
	if (!bn->netns_dir_ready) {
		r = netns_dir_prepare(bn->netns_dir, err);
		if (r < 0)
			return r;
		bn->netns_dir_ready = true;
	}
	struct bridge_endpoint ep = {0};
	int n = snprintf(ep.netns_path, sizeof(ep.netns_path), "%s/%s", bn->netns_dir, id);
	if (n < 0 || (size_t)n >= sizeof(ep.netns_path))
		return shoal_err_set(err, ENAMETOOLONG, "netns path %s/%s is too long",
				     bn->netns_dir, id);
	bridge_host_ifname(bn->prefix, id, ep.host_ifname);
	ep.addr = addr;
	ep.gateway = ipam_gateway(bn->ipam);
	ep.prefixlen = ipam_prefixlen(bn->ipam);
	mac_from_addr(ep.addr, ep.mac);
	*ret = ep;
	return 0;
}

int bridge_net_endpoint_alloc(struct bridge_net *bn, const char *id, struct bridge_endpoint *ret,
			      struct shoal_err *err)
{
	int r = check_id(id, err);
	if (r < 0)
		return r;
	struct in_addr addr;
	if (ipam_alloc(bn->ipam, &addr) < 0)
		return shoal_err_set(
			err, ENOSPC,
			"no free address left in %s on %s: remove containers or use a larger subnet",
			bn->subnet, bn->bridge);
	r = bridge_net_endpoint_fill(bn, id, addr, ret, err);
	if (r < 0)
		(void)ipam_release(bn->ipam, addr);
	return r;
}

int bridge_net_endpoint_plumb(struct bridge_net *bn, const char *id,
			      const struct bridge_endpoint *ep, struct shoal_err *err)
{
	/* A socket and a buffer of its own: this may run on a thread beside
	 * the one that owns bn (see bridge.h). */
	_cleanup_free_ char *buf = malloc(NL_BUF_SIZE);
	_cleanup_(nl_sock_close) struct nl_sock nl = {.fd = -EBADF};
	if (!buf)
		return shoal_err_set(err, ENOMEM, "out of memory");
	int r = nl_sock_open(&nl);
	if (r < 0)
		return shoal_err_errno(err, -r, "opening a netlink socket");
	struct netns_ep nep = {
		.netns_path = ep->netns_path,
		.host_ifname = ep->host_ifname,
		.master = bn->bridge_ifindex,
		.mtu = bn->mtu,
		.mac = ep->mac,
		.addr = ep->addr,
		.broadcast = ipam_broadcast(bn->ipam),
		.gateway = ep->gateway,
		.prefixlen = ep->prefixlen,
	};
	if ((r = netns_ep_plumb(&nl, buf, &nep, err)) < 0)
		return shoal_err_wrap(err, "attaching %s to %s", id, bn->bridge);
	return 0;
}

int bridge_net_attach(struct bridge_net *bn, const char *id, struct bridge_endpoint *ret,
		      struct shoal_err *err)
{
	struct bridge_endpoint ep;
	int r = bridge_net_endpoint_alloc(bn, id, &ep, err);
	if (r < 0)
		return r;
	r = bridge_net_endpoint_plumb(bn, id, &ep, err);
	if (r < 0) {
		(void)ipam_release(bn->ipam, ep.addr);
		return r;
	}
	*ret = ep;
	return 0;
}

int bridge_net_detach(struct bridge_net *bn, const char *id, struct in_addr addr,
		      struct shoal_err *err)
{
	int r = check_id(id, err);
	if (r < 0)
		return r;
	char ifname[IFNAMSIZ], path[PATH_MAX], ext[256], a[INET_ADDRSTRLEN];
	bridge_host_ifname(bn->prefix, id, ifname);
	snprintf(path, sizeof(path), "%s/%s", bn->netns_dir, id);

	/* Deleting a veth waits for the kernel to quiesce the device (about
	 * 20-30 ms each, on the caller's thread). Dropping the last reference to
	 * the netns instead hands the pair to the kernel's batched, asynchronous
	 * netns cleanup. Only a veth whose netns is already gone is deleted here. */
	bool had_netns = access(path, F_OK) == 0;
	r = netns_remove(path);
	if (r < 0)
		return shoal_err_errno(err, r, "removing network namespace %s", path);
	if (!had_netns) {
		struct nlmsghdr *nlh = nl_build_link_del(bn->buf, 0, ifname);
		r = nl_sock_transact(&bn->nl, bn->buf, nlh->nlmsg_len, NULL, NULL, ext,
				     sizeof(ext));
		if (r < 0 && r != -ENODEV)
			return nl_err(err, r, ext, "deleting veth %s", ifname);
	}

	if (addr.s_addr != 0) {
		r = ipam_release(bn->ipam, addr);
		if (r == -ERANGE || r == -EINVAL)
			return shoal_err_set(err, EINVAL,
					     "address %s is not an endpoint address of %s",
					     fmt_addr(addr, a), bn->subnet);
	}
	return 0;
}

/* ---- sweep ---- */

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int cmp_ifname(const void *a, const void *b)
{
	return strcmp(a, b);
}

int bridge_net_sweep(struct bridge_net *bn, const char *const *keep, size_t n,
		     struct shoal_err *err)
{
	/* sorted: the dump and the directory are matched in n log n */
	_cleanup_free_ const char **ids = calloc(n + 1, sizeof(*ids));
	_cleanup_free_ char(*ifn)[IFNAMSIZ] = calloc(n + 1, IFNAMSIZ);
	if (!ids || !ifn)
		return shoal_err_set(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		ids[i] = keep[i];
		bridge_host_ifname(bn->prefix, keep[i], ifn[i]);
	}
	qsort(ids, n, sizeof(*ids), cmp_str);
	qsort(ifn, n, IFNAMSIZ, cmp_ifname);

	/* Namespaces first: a veth whose other end was in one may be gone with
	 * it by the time the links are listed. */
	int removed = 0, r = 0;
	_cleanup_closedir_ DIR *d = opendir(bn->netns_dir);
	if (!d && errno != ENOENT)
		return shoal_err_errno(err, errno, "opening %s", bn->netns_dir);
	for (struct dirent *de; d && (de = readdir(d));) {
		const char *name = de->d_name;
		if (name[0] == '.' || bsearch(&name, ids, n, sizeof(*ids), cmp_str))
			continue;
		char path[PATH_MAX];
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", bn->netns_dir, name) >=
		    sizeof(path))
			continue;
		int q = netns_remove(path);
		if (q < 0) {
			if (r == 0)
				r = shoal_err_errno(err, q, "removing network namespace %s", path);
			continue;
		}
		removed++;
	}

	struct link_list links = {0};
	int q = dump_links(&bn->nl, bn->buf, &links, err);
	if (q < 0) {
		free(links.v);
		return q;
	}
	char ext[256];
	for (size_t i = 0; i < links.n; i++) {
		const struct nl_link *l = &links.v[i];
		if (strcmp(l->kind, "veth") != 0 || !bridge_is_host_ifname(bn->prefix, l->ifname) ||
		    bsearch(l->ifname, ifn, n, IFNAMSIZ, cmp_ifname))
			continue;
		/* ENODEV: its namespace took it meanwhile */
		struct nlmsghdr *nlh = nl_build_link_del(bn->buf, l->ifindex, NULL);
		q = nl_sock_transact(&bn->nl, bn->buf, nlh->nlmsg_len, NULL, NULL, ext,
				     sizeof(ext));
		if (q < 0 && q != -ENODEV) {
			if (r == 0)
				r = nl_err(err, q, ext, "deleting veth %s", l->ifname);
			continue;
		}
		removed++;
	}
	free(links.v);
	return r < 0 ? r : removed;
}
