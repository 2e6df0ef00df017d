// SPDX-License-Identifier: Apache-2.0
/* Where the load of `shoal bench http|tcp|udp` comes from: this host's
 * namespace, a client namespace of its own (--netns-client), or a running
 * container's (--from-container). The whole process moves: every socket the
 * generator opens afterwards belongs to the namespace it was made in. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench/bench-load.h"
#include "bench/bench.h"
#include "cli/cli-internal.h"
#include "cli/cli.h"
#include "lib/cleanup.h"
#include "lib/util.h"

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif

void bench_netns_subnet(unsigned i, uint32_t *ret_host, uint32_t *ret_client)
{
	uint32_t net = BENCH_NETNS_BASE + (i % BENCH_NETNS_SUBNETS) * 4;
	*ret_host = net + 1;
	*ret_client = net + 2;
}

bool bench_addr_is_loopback(const struct sockaddr_storage *a)
{
	if (a->ss_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)a)->sin_addr.s_addr) >> 24) == 127;
	if (a->ss_family == AF_INET6) {
		const struct in6_addr *x = &((const struct sockaddr_in6 *)a)->sin6_addr;
		return IN6_IS_ADDR_LOOPBACK(x) ||
		       (IN6_IS_ADDR_V4MAPPED(x) && x->s6_addr[12] == 127);
	}
	return false;
}

/* Runs argv in the namespace nsfd; 0 or -EIO with err naming the command. */
static int run_in(int nsfd, char *const argv[], struct shoal_err *err)
{
	pid_t pid = fork();
	if (pid < 0)
		return shoal_err_errno(err, errno, "fork");
	if (pid == 0) {
		int fd = open("/dev/null", O_RDWR | O_CLOEXEC);
		dup2(fd, 0);
		dup2(fd, 1);
		if (nsfd >= 0 && setns(nsfd, CLONE_NEWNET) < 0)
			_exit(126);
		execvp(argv[0], argv);
		_exit(127);
	}
	int st = 0;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return 0;
	char line[256] = "";
	for (int i = 0; argv[i]; i++)
		snprintf(line + strlen(line), sizeof(line) - strlen(line), "%s%s", i ? " " : "",
			 argv[i]);
	if (WIFEXITED(st) && WEXITSTATUS(st) == 127)
		return shoal_err_set(err, ENOENT, "%s: %s not found (Debian: iproute2)", line,
				     argv[0]);
	return shoal_err_set(err, EIO, "%s failed (exit status %d)", line,
			     WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
}

/* Whether 169.254.64.0/18 subnet i is free here: no address of this host in it. */
static bool subnet_free(unsigned i)
{
	uint32_t h, c;
	bench_netns_subnet(i, &h, &c);
	struct ifaddrs *ifa = NULL;
	if (getifaddrs(&ifa) < 0)
		return true;
	bool free_ = true;
	for (struct ifaddrs *p = ifa; p; p = p->ifa_next)
		if (p->ifa_addr && p->ifa_addr->sa_family == AF_INET &&
		    (ntohl(((struct sockaddr_in *)p->ifa_addr)->sin_addr.s_addr) & ~3u) ==
			    (h & ~3u))
			free_ = false;
	freeifaddrs(ifa);
	return free_;
}

static void fmt_ip(uint32_t a, char *buf)
{
	struct in_addr x = {.s_addr = htonl(a)};
	inet_ntop(AF_INET, &x, buf, INET_ADDRSTRLEN);
}

/* A process that holds a new network namespace until *ret_release closes: ip
 * names a namespace by a process in it. */
static pid_t ns_holder(int *ret_release, struct shoal_err *err)
{
	int ready[2], release[2];
	if (pipe2(ready, O_CLOEXEC) < 0)
		return shoal_err_errno(err, errno, "pipe");
	if (pipe2(release, O_CLOEXEC) < 0) {
		close(ready[0]);
		close(ready[1]);
		return shoal_err_errno(err, errno, "pipe");
	}
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		close(ready[0]);
		close(ready[1]);
		close(release[0]);
		close(release[1]);
		return shoal_err_errno(err, e, "fork");
	}
	if (pid == 0) {
		close(ready[0]);
		close(release[1]);
		char e = unshare(CLONE_NEWNET) < 0 ? (char)errno : 0;
		if (write(ready[1], &e, 1) != 1 || e)
			_exit(1);
		char c;
		while (read(release[0], &c, 1) < 0 && errno == EINTR)
			;
		_exit(0);
	}
	close(ready[1]);
	close(release[0]);
	char e = EIO;
	ssize_t n = read(ready[0], &e, 1);
	close(ready[0]);
	if (n != 1 || e) {
		close(release[1]);
		waitpid(pid, NULL, 0);
		if (e == EPERM)
			return shoal_err_set(
				err, EPERM,
				"--netns-client: making a network namespace needs root "
				"(CAP_SYS_ADMIN)");
		return shoal_err_errno(err, e, "--netns-client: unshare(CLONE_NEWNET)");
	}
	*ret_release = release[1];
	return pid;
}

int bench_netns_client_up(struct bench_netns *ns, struct shoal_err *err)
{
	*ns = (struct bench_netns){.host_fd = -1, .client_fd = -1};
	ns->host_fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (ns->host_fd < 0)
		return shoal_err_errno(err, errno, "opening /proc/self/ns/net");
	unsigned pid = (unsigned)getpid(), i;
	for (i = 0; i < 64 && !subnet_free(pid + i); i++)
		;
	bench_netns_subnet(pid + i, &ns->host_addr, &ns->client_addr);
	snprintf(ns->host_if, sizeof(ns->host_if), "shb%u", pid % 10000000);
	snprintf(ns->client_if, sizeof(ns->client_if), "shc%u", pid % 10000000);
	int release = -1;
	pid_t holder = ns_holder(&release, err);
	if (holder < 0)
		return (int)holder;
	char path[64], pids[16];
	snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)holder);
	snprintf(pids, sizeof(pids), "%d", (int)holder);
	ns->client_fd = open(path, O_RDONLY | O_CLOEXEC);
	int r = ns->client_fd < 0 ? shoal_err_errno(err, errno, "opening %s", path) : 0;
	if (r == 0) {
		char *const add[] = {"ip",   "link", "add",	    ns->host_if, "type", "veth",
				     "peer", "name", ns->client_if, "netns",	 pids,	 NULL};
		r = run_in(-1, add, err);
	}
	close(release);
	waitpid(holder, NULL, 0);
	if (r < 0)
		return shoal_err_wrap(err, "--netns-client");
	ns->created = true;
	char h[INET_ADDRSTRLEN + 3], c[INET_ADDRSTRLEN + 3], gw[INET_ADDRSTRLEN];
	fmt_ip(ns->host_addr, h);
	fmt_ip(ns->host_addr, gw);
	fmt_ip(ns->client_addr, c);
	strcat(h, "/30");
	strcat(c, "/30");
	char *const cmds[][10] = {
		{"ip", "addr", "add", h, "dev", ns->host_if, NULL},
		{"ip", "link", "set", ns->host_if, "up", NULL},
		{"ip", "link", "set", "lo", "up", NULL},
		{"ip", "addr", "add", c, "dev", ns->client_if, NULL},
		{"ip", "link", "set", ns->client_if, "up", NULL},
		{"ip", "route", "add", "default", "via", gw, NULL},
	};
	for (size_t k = 0; k < ARRAY_SIZE(cmds); k++)
		if ((r = run_in(k < 2 ? ns->host_fd : ns->client_fd, cmds[k], err)) < 0)
			return shoal_err_wrap(err, "--netns-client");
	if (setns(ns->client_fd, CLONE_NEWNET) < 0)
		return shoal_err_errno(err, errno, "--netns-client: entering the namespace");
	return 0;
}

/* The cgroup v2 mount: the unified hierarchy of a hybrid layout, or the
 * whole tree. */
static int cgroup2_root(char *buf, size_t size)
{
	static const char *const roots[] = {"/sys/fs/cgroup/unified", "/sys/fs/cgroup"};
	for (size_t i = 0; i < ARRAY_SIZE(roots); i++) {
		struct statfs st;
		if (statfs(roots[i], &st) == 0 && st.f_type == CGROUP2_SUPER_MAGIC) {
			snprintf(buf, size, "%s", roots[i]);
			return 0;
		}
	}
	return -ENOENT;
}

/* The cgroup v2 path of pid ("0::/path"). */
static int cgroup2_of(const char *pid, char *buf, size_t size)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%s/cgroup", pid);
	_cleanup_free_ char *s = NULL;
	size_t len;
	int r = read_file(path, 1 << 20, &s, &len);
	if (r < 0)
		return r;
	for (char *l = s; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
		if (strncmp(l, "0::", 3) == 0) {
			size_t n = strcspn(l + 3, "\n");
			if (n >= size)
				return -ENAMETOOLONG;
			memcpy(buf, l + 3, n);
			buf[n] = '\0';
			return 0;
		}
	return -ENOENT;
}

static int cgroup_join(const char *root, const char *cg)
{
	char path[4200];
	snprintf(path, sizeof(path), "%s%s/cgroup.procs", root, cg);
	char pid[16];
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	return write_string_file(path, pid);
}

int bench_netns_container_enter(struct cli_ctx *ctx, const char *name, struct bench_netns *ns,
				struct shoal_err *err)
{
	*ns = (struct bench_netns){.host_fd = -1, .client_fd = -1};
	_cleanup_free_ char *esc = cli_escape(name);
	if (!esc)
		return shoal_err_set(err, ENOMEM, "out of memory");
	char path[512];
	snprintf(path, sizeof(path), "/containers/%s/json", esc);
	_cleanup_json_ json_t *c = NULL;
	int status = 0;
	if (cli_call_json(ctx, "GET", path, NULL, &status, &c, err) < 0)
		return shoal_err_wrap(err, "--from-container %s", name);
	if (status != 200)
		return shoal_err_set(err, EIO, "--from-container %s: the agent answered %d: %s",
				     name, status, cli_json_str(c, "message") ?: "");
	json_int_t pid = cli_json_int(c, "State.Pid");
	if (!json_is_true(cli_json_get(c, "State.Running")) || pid <= 0)
		return shoal_err_set(err, ESRCH,
				     "--from-container %s: the container is not running; start "
				     "it first",
				     name);
	ns->container_pid = (int)pid;
	char pids[24];
	snprintf(pids, sizeof(pids), "%lld", (long long)pid);
	snprintf(path, sizeof(path), "/proc/%s/ns/net", pids);
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return shoal_err_errno(err, errno,
				       "--from-container %s: opening %s (the agent's pid "
				       "namespace and root are needed)",
				       name, path);
	ns->host_fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (ns->host_fd < 0)
		return shoal_err_errno(err, errno, "opening /proc/self/ns/net");
	/* the socket load balancer's hooks sit on the containers' cgroup v2
	 * parent: a client outside it would connect to a VIP unbalanced */
	char cg[4096];
	if (cgroup2_root(ns->cgroup_root, sizeof(ns->cgroup_root)) == 0 &&
	    cgroup2_of(pids, cg, sizeof(cg)) == 0 && strcmp(cg, "/") != 0 &&
	    cgroup2_of("self", ns->cgroup_back, sizeof(ns->cgroup_back)) == 0) {
		int r = cgroup_join(ns->cgroup_root, cg);
		if (r < 0)
			return shoal_err_errno(err, -r,
					       "--from-container %s: joining its cgroup %s%s", name,
					       ns->cgroup_root, cg);
		ns->cgroup_moved = true;
	}
	if (setns(fd, CLONE_NEWNET) < 0)
		return shoal_err_errno(err, errno, "--from-container %s: entering %s", name, path);
	ns->client_fd = TAKE_FD(fd);
	return 0;
}

void bench_netns_down(struct bench_netns *ns)
{
	if (ns->host_fd >= 0)
		setns(ns->host_fd, CLONE_NEWNET);
	if (ns->cgroup_moved) {
		cgroup_join(ns->cgroup_root, ns->cgroup_back);
		ns->cgroup_moved = false;
	}
	if (ns->created) {
		/* the namespace goes with its last reference; deleting the host end
		 * takes the pair at once rather than when the kernel gets to it */
		char *const del[] = {"ip", "link", "del", ns->host_if, NULL};
		struct shoal_err e = {0};
		run_in(-1, del, &e);
		ns->created = false;
	}
	if (ns->client_fd >= 0)
		close(ns->client_fd);
	if (ns->host_fd >= 0)
		close(ns->host_fd);
	ns->client_fd = ns->host_fd = -1;
}

int bench_load_client(struct cli_ctx *ctx, const struct bench_load_opts *o, struct bench_netns *ns,
		      json_t *config, struct shoal_err *err)
{
	*ns = (struct bench_netns){.host_fd = -1, .client_fd = -1};
	if (o->netns_client && o->from_container)
		return shoal_err_set(err, EINVAL,
				     "--netns-client and --from-container: give one of them");
	if (o->netns_client) {
		int r = bench_netns_client_up(ns, err);
		if (r < 0) {
			bench_netns_down(ns);
			return r;
		}
		char h[INET_ADDRSTRLEN], c[INET_ADDRSTRLEN];
		fmt_ip(ns->host_addr, h);
		fmt_ip(ns->client_addr, c);
		json_object_set_new(config, "client",
				    json_pack("{s:s, s:s, s:s, s:s}", "kind", "netns", "address", c,
					      "host_address", h, "host_interface", ns->host_if));
		return 0;
	}
	if (o->from_container) {
		int r = bench_netns_container_enter(ctx, o->from_container, ns, err);
		if (r < 0) {
			bench_netns_down(ns);
			return r;
		}
		json_object_set_new(config, "client",
				    json_pack("{s:s, s:s, s:i, s:b}", "kind", "container",
					      "container", o->from_container, "pid",
					      ns->container_pid, "cgroup", ns->cgroup_moved));
		return 0;
	}
	json_object_set_new(config, "client", json_pack("{s:s}", "kind", "host"));
	return 0;
}

int bench_load_begin(struct cli_ctx *ctx, const struct bench_load_opts *o, int conns,
		     const char *suite, struct bench_load_result *ret, struct bench_netns *ns)
{
	struct shoal_err err = {0};
	*ns = (struct bench_netns){.host_fd = -1, .client_fd = -1};
	signal(SIGPIPE, SIG_IGN);
	if (o->cpu >= 0 && bench_load_pin_cpu(o->cpu) < 0) {
		fprintf(stderr, "Error: --cpu %d: %s\n", o->cpu, strerror(errno));
		return 1;
	}
	if (bench_raise_nofile(conns, &err) < 0) {
		cli_print_err(&err);
		return 1;
	}
	struct bench_load_result r = {.out = json_object(),
				      .warnings = json_array(),
				      .variant = json_object(),
				      .config = json_object()};
	json_t *variants = json_array();
	if (!r.out || !r.warnings || !r.variant || !r.config || !variants) {
		json_decref(r.out);
		json_decref(r.warnings);
		json_decref(r.variant);
		json_decref(r.config);
		json_decref(variants);
		return cli_oom();
	}
	json_object_set_new(r.out, "warnings", r.warnings);
	json_object_set_new(r.out, "variants", variants);
	json_object_set_new(r.out, "config", r.config);
	json_array_append_new(variants, r.variant);
	if (bench_result_stamp(r.out, suite, ctx) < 0) {
		json_decref(r.out);
		return cli_oom();
	}
	if (bench_load_client(ctx, o, ns, r.config, &err) < 0) {
		json_decref(r.out);
		cli_print_err(&err);
		return 1;
	}
	*ret = r;
	return 0;
}

void bench_load_service_host(const struct bench_load_opts *o, const struct bench_netns *ns,
			     char *buf, size_t size)
{
	if (o->netns_client)
		fmt_ip(ns->host_addr, buf);
	else
		snprintf(buf, size, "127.0.0.1");
}

int bench_load_check_target(const struct bench_load_opts *o, const struct bench_netns *ns,
			    const struct sockaddr_storage *to, const char *what,
			    struct shoal_err *err)
{
	if (!o->netns_client || !bench_addr_is_loopback(to))
		return 0;
	char h[INET_ADDRSTRLEN];
	fmt_ip(ns->host_addr, h);
	return shoal_err_set(err, EINVAL,
			     "--netns-client: %s is the client namespace's own loopback; give an "
			     "address of this host the client can reach (%s is the host side of "
			     "its veth)",
			     what, h);
}
