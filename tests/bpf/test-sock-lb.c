// SPDX-License-Identifier: Apache-2.0
/* East-west socket-level balancing, end to end: the cgroup hooks attached
 * to a child cgroup v2, a VIP programmed with real backends listening on
 * loopback addresses of a private network namespace, and clients forked
 * into the cgroup. A listener on the VIP itself stands for "not balanced":
 * sockets outside the cgroup, or after detach, reach it. The node hooks
 * (published ports from the node itself) go on the cgroup root and act on
 * this namespace alone.
 * Needs root and cgroup v2 at /sys/fs/cgroup/unified; exits 77 otherwise. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/mount.h>
#include <linux/magic.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <cmocka.h>

#include "lb/lb.h"
#include "lib/cleanup.h"
#include "lib/util.h"

#define CG_ROOT	     "/sys/fs/cgroup/unified"
#define CG_PREFIX    "shoal-socklb-test-"
#define VIP	     "10.254.0.10"
#define VIP_TCP_PORT 80
#define VIP_UDP_PORT 53
#define BE_TCP_PORT  8080
#define BE_UDP_PORT  5353
#define NBE	     3
#define DIRECT	     9 /* the answer of the listeners on the VIP itself */
#define MANY	     60

static const char *const be_addrs[NBE] = {"127.0.0.2", "127.0.0.3", "127.0.0.4"};

static char cg_path[256];
static struct lb *lb;
static pid_t server_pid = -1;

static const struct lb_service_key tcp_svc = {.port = VIP_TCP_PORT, .proto = IPPROTO_TCP};
static const struct lb_service_key udp_svc = {.port = VIP_UDP_PORT, .proto = IPPROTO_UDP};

static uint32_t A(const char *s)
{
	struct in_addr a;

	if (inet_pton(AF_INET, s, &a) != 1)
		abort();
	return a.s_addr;
}

static struct sockaddr_in sin_of(const char *addr, uint16_t port)
{
	return (struct sockaddr_in){
		.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = A(addr)};
}

static struct lb_service_key key_of(const struct lb_service_key *k)
{
	struct lb_service_key r = *k;

	r.addr = A(VIP);
	return r;
}

static int program(const struct lb_service_key *k, uint16_t be_port, const int *states)
{
	struct lb_backend_spec be[NBE];
	struct lb_service_key key = key_of(k);
	struct shoal_err err = {};

	for (int i = 0; i < NBE; i++)
		be[i] = (struct lb_backend_spec){A(be_addrs[i]), be_port,
						 states ? states[i] : LB_BACKEND_ACTIVE};
	if (lb_service_upsert(lb, &key, be, NBE, &err) < 0) {
		fprintf(stderr, "upsert: %s\n", err.msg);
		return -1;
	}
	return 0;
}

static void program_all_active(void)
{
	assert_int_equal(program(&tcp_svc, BE_TCP_PORT, NULL), 0);
	assert_int_equal(program(&udp_svc, BE_UDP_PORT, NULL), 0);
}

/* ---- backends: one process answering every listener with its index ---- */

static int bound(int type, const char *addr, uint16_t port)
{
	struct sockaddr_in sa = sin_of(addr, port);
	int one = 1, fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    (type == SOCK_STREAM && listen(fd, 256) < 0)) {
		int r = -errno;

		close(fd);
		return r;
	}
	return fd;
}

/* TCP: accept, write the index, close. UDP: answer each datagram with the
 * index, to its source. Runs outside the cgroup until killed. */
static void serve(const int *fds, const int *types, const uint8_t *ids, int n)
{
	struct pollfd pfd[2 * (NBE + 1)];

	for (int i = 0; i < n; i++)
		pfd[i] = (struct pollfd){.fd = fds[i], .events = POLLIN};
	for (;;) {
		if (poll(pfd, n, -1) < 0) {
			if (errno == EINTR)
				continue;
			_exit(1);
		}
		for (int i = 0; i < n; i++) {
			struct sockaddr_in from;
			socklen_t flen = sizeof(from);
			char b;

			if (!(pfd[i].revents & POLLIN))
				continue;
			if (types[i] == SOCK_STREAM) {
				int c = accept4(fds[i], NULL, NULL, SOCK_CLOEXEC);

				if (c >= 0) {
					(void)!write(c, &ids[i], 1);
					close(c);
				}
			} else if (recvfrom(fds[i], &b, 1, 0, (struct sockaddr *)&from, &flen) >=
				   0) {
				sendto(fds[i], &ids[i], 1, 0, (struct sockaddr *)&from, flen);
			}
		}
	}
}

static int start_servers(void)
{
	int fds[2 * (NBE + 1)], types[2 * (NBE + 1)], n = 0;
	uint8_t ids[2 * (NBE + 1)];

	for (int i = 0; i <= NBE; i++) {
		const char *addr = i < NBE ? be_addrs[i] : VIP;
		uint8_t id = i < NBE ? i : DIRECT;

		types[n] = SOCK_STREAM;
		ids[n] = id;
		fds[n++] = bound(SOCK_STREAM, addr, i < NBE ? BE_TCP_PORT : VIP_TCP_PORT);
		types[n] = SOCK_DGRAM;
		ids[n] = id;
		fds[n++] = bound(SOCK_DGRAM, addr, i < NBE ? BE_UDP_PORT : VIP_UDP_PORT);
	}
	for (int i = 0; i < n; i++)
		if (fds[i] < 0) {
			fprintf(stderr, "binding a test listener: %s\n", strerror(-fds[i]));
			return -1;
		}
	server_pid = fork();
	if (server_pid < 0)
		return -1;
	if (server_pid == 0) {
		/* Gone with the test, even when it dies without cleaning up. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		serve(fds, types, ids, n);
		_exit(0);
	}
	for (int i = 0; i < n; i++)
		close(fds[i]);
	return 0;
}

/* ---- clients ---- */

/* What a client saw: the index answering it and the peer it was shown. */
struct reply {
	int id; /* 0..NBE-1, DIRECT, or -errno */
	uint32_t peer_addr;
	uint16_t peer_port; /* host order */
};

static void hang_guard(int fd)
{
	/* Not a timing assertion: a broken data path fails the test instead
	 * of hanging it. */
	struct timeval tv = {.tv_sec = 10};

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
}

static struct reply tcp_query(const char *addr, uint16_t port)
{
	struct sockaddr_in sa = sin_of(addr, port), peer;
	socklen_t plen = sizeof(peer);
	_cleanup_close_ int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct reply r = {.id = -EIO};
	uint8_t b;

	if (fd < 0)
		return (struct reply){.id = -errno};
	hang_guard(fd);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return (struct reply){.id = -errno};
	if (getpeername(fd, (struct sockaddr *)&peer, &plen) < 0)
		return (struct reply){.id = -errno};
	r.peer_addr = peer.sin_addr.s_addr;
	r.peer_port = ntohs(peer.sin_port);
	if (read(fd, &b, 1) == 1)
		r.id = b;
	return r;
}

/* One datagram to addr:port on fd; the answer's source is the peer. */
static struct reply udp_query(int fd, const char *addr, uint16_t port)
{
	struct sockaddr_in sa = sin_of(addr, port), from;
	socklen_t flen = sizeof(from);
	struct reply r = {.id = -EIO};
	uint8_t b;

	hang_guard(fd);
	if (sendto(fd, "q", 1, 0, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return (struct reply){.id = -errno};
	if (recvfrom(fd, &b, 1, 0, (struct sockaddr *)&from, &flen) != 1)
		return (struct reply){.id = -errno};
	r.id = b;
	r.peer_addr = from.sin_addr.s_addr;
	r.peer_port = ntohs(from.sin_port);
	return r;
}

static int udp_socket(void)
{
	return socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
}

/* Results shared with a forked client. */
struct shared {
	struct reply r[MANY];
	int n;
	int sticky_id, sticky_after; /* a kept socket's backend before and after */
	bool moved;		     /* a UDP socket's datagrams changed backend */
};

static struct shared *sh;

/* A child that joined the test cgroup and runs fn(in, out); the pipes let
 * a case step in lockstep with the parent. client_wait() fails the test if
 * the child could not join or did not finish. */
struct client {
	pid_t pid;
	int to_child, from_child;
};

static struct client spawn_in_cgroup(void (*fn)(int in, int out))
{
	int down[2], up[2];
	struct client c;

	memset(sh, 0, sizeof(*sh));
	assert_int_equal(pipe2(down, O_CLOEXEC), 0);
	assert_int_equal(pipe2(up, O_CLOEXEC), 0);
	c.pid = fork();
	assert_true(c.pid >= 0);
	if (c.pid == 0) {
		char procs[300], pid[32];

		snprintf(procs, sizeof(procs), "%s/cgroup.procs", cg_path);
		snprintf(pid, sizeof(pid), "%d\n", getpid());
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		{
			_cleanup_close_ int f = open(procs, O_WRONLY | O_CLOEXEC);

			if (f < 0 || write(f, pid, strlen(pid)) < 0)
				_exit(3);
		}
		close(down[1]);
		close(up[0]);
		fn(down[0], up[1]);
		_exit(0);
	}
	close(down[0]);
	close(up[1]);
	c.to_child = down[1];
	c.from_child = up[0];
	return c;
}

static void client_wait(struct client *c)
{
	int st = 0;

	close(c->to_child);
	close(c->from_child);
	assert_int_equal(waitpid(c->pid, &st, 0), c->pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

static void run_in_cgroup(void (*fn)(int in, int out))
{
	struct client c = spawn_in_cgroup(fn);

	client_wait(&c);
}

static void step_send(int fd)
{
	(void)!write(fd, "s", 1);
}

static void step_wait(int fd)
{
	char b;

	(void)!read(fd, &b, 1);
}

static void assert_peer_is(const struct reply *r, const char *addr, uint16_t port)
{
	assert_int_equal(r->peer_addr, A(addr));
	assert_int_equal(r->peer_port, port);
}

static void count(const struct reply *r, int n, int counts[DIRECT + 1])
{
	memset(counts, 0, sizeof(int) * (DIRECT + 1));
	for (int i = 0; i < n; i++) {
		assert_true(r[i].id >= 0 && r[i].id <= DIRECT);
		counts[r[i].id]++;
	}
}

/* ---- cases ---- */

static void many_tcp(int in, int out)
{
	for (int i = 0; i < MANY; i++)
		sh->r[i] = tcp_query(VIP, VIP_TCP_PORT);
	sh->n = MANY;
}

static void test_tcp_spread_peer_is_vip(void **state)
{
	int c[DIRECT + 1];

	run_in_cgroup(many_tcp);
	count(sh->r, sh->n, c);
	for (int i = 0; i < sh->n; i++)
		assert_peer_is(&sh->r[i], VIP, VIP_TCP_PORT);
	assert_int_equal(c[DIRECT], 0);
	for (int i = 0; i < NBE; i++)
		assert_true(c[i] > 0);
}

static void test_tcp_draining_takes_no_new_connections(void **state)
{
	const int states[NBE] = {LB_BACKEND_ACTIVE, LB_BACKEND_DRAINING, LB_BACKEND_ACTIVE};
	int c[DIRECT + 1];

	assert_int_equal(program(&tcp_svc, BE_TCP_PORT, states), 0);
	run_in_cgroup(many_tcp);
	program_all_active();
	count(sh->r, sh->n, c);
	assert_int_equal(c[1], 0);
	assert_int_equal(c[DIRECT], 0);
	assert_true(c[0] > 0 && c[2] > 0);
	for (int i = 0; i < sh->n; i++)
		assert_peer_is(&sh->r[i], VIP, VIP_TCP_PORT);
}

static void test_tcp_counters(void **state)
{
	struct lb_service_key k = key_of(&tcp_svc);
	struct lb_counters before, after, be[NBE], be_after;
	uint64_t sum = 0;

	assert_int_equal(lb_service_counters(lb, &k, &before), 0);
	for (int i = 0; i < NBE; i++)
		assert_int_equal(lb_backend_counters(lb, &k, A(be_addrs[i]), BE_TCP_PORT, &be[i]),
				 0);
	run_in_cgroup(many_tcp);
	assert_int_equal(lb_service_counters(lb, &k, &after), 0);
	assert_int_equal(after.new_flows - before.new_flows, MANY);
	for (int i = 0; i < NBE; i++) {
		assert_int_equal(
			lb_backend_counters(lb, &k, A(be_addrs[i]), BE_TCP_PORT, &be_after), 0);
		sum += be_after.new_flows - be[i].new_flows;
	}
	assert_int_equal(sum, MANY);
}

/* Unconnected UDP: each datagram goes through sendmsg4, each answer's
 * source through recvmsg4. A socket stays on its backend. */
static void udp_sockets(int in, int out)
{
	for (int i = 0; i < MANY / 2; i++) {
		_cleanup_close_ int fd = udp_socket();
		struct reply again;

		sh->r[i] = udp_query(fd, VIP, VIP_UDP_PORT);
		again = udp_query(fd, VIP, VIP_UDP_PORT);
		if (again.id != sh->r[i].id)
			sh->moved = true;
	}
	sh->n = MANY / 2;
}

static void test_udp_roundtrip_peer_is_vip(void **state)
{
	int c[DIRECT + 1];

	run_in_cgroup(udp_sockets);
	count(sh->r, sh->n, c);
	assert_false(sh->moved);
	assert_int_equal(c[DIRECT], 0);
	for (int i = 0; i < NBE; i++)
		assert_true(c[i] > 0);
	for (int i = 0; i < sh->n; i++)
		assert_peer_is(&sh->r[i], VIP, VIP_UDP_PORT);
}

/* Connected UDP goes through connect4 once; getpeername shows the VIP. */
static void udp_connected(int in, int out)
{
	struct sockaddr_in sa = sin_of(VIP, VIP_UDP_PORT), peer;
	socklen_t plen = sizeof(peer);
	_cleanup_close_ int fd = udp_socket();
	uint8_t b;

	sh->n = 1;
	sh->r[0].id = -EIO;
	hang_guard(fd);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    getpeername(fd, (struct sockaddr *)&peer, &plen) < 0) {
		sh->r[0].id = -errno;
		return;
	}
	sh->r[0].peer_addr = peer.sin_addr.s_addr;
	sh->r[0].peer_port = ntohs(peer.sin_port);
	if (send(fd, "q", 1, 0) == 1 && recv(fd, &b, 1, 0) == 1)
		sh->r[0].id = b;
}

static void test_udp_connected(void **state)
{
	run_in_cgroup(udp_connected);
	assert_true(sh->r[0].id >= 0 && sh->r[0].id < NBE);
	assert_peer_is(&sh->r[0], VIP, VIP_UDP_PORT);
}

/* A socket on backend 1 keeps it once 1 drains; new sockets avoid it. */
static void udp_drain(int in, int out)
{
	_cleanup_close_ int keep = -EBADF;

	sh->sticky_id = -1;
	for (int i = 0; i < MANY && keep < 0; i++) {
		int fd = udp_socket();
		struct reply r = udp_query(fd, VIP, VIP_UDP_PORT);

		if (r.id == 1)
			keep = fd;
		else
			close(fd);
	}
	if (keep < 0)
		return;
	sh->sticky_id = 1;
	step_send(out);
	step_wait(in); /* backend 1 is draining now */
	sh->sticky_after = udp_query(keep, VIP, VIP_UDP_PORT).id;
	for (int i = 0; i < MANY / 2; i++) {
		_cleanup_close_ int fd = udp_socket();

		sh->r[i] = udp_query(fd, VIP, VIP_UDP_PORT);
	}
	sh->n = MANY / 2;
}

static void test_udp_draining_keeps_socket(void **state)
{
	const int states[NBE] = {LB_BACKEND_ACTIVE, LB_BACKEND_DRAINING, LB_BACKEND_ACTIVE};
	struct client cl = spawn_in_cgroup(udp_drain);
	int c[DIRECT + 1];

	step_wait(cl.from_child);
	assert_int_equal(program(&udp_svc, BE_UDP_PORT, states), 0);
	step_send(cl.to_child);
	client_wait(&cl);
	program_all_active();
	assert_int_equal(sh->sticky_id, 1);
	assert_int_equal(sh->sticky_after, 1);
	count(sh->r, sh->n, c);
	assert_int_equal(c[1], 0);
	assert_true(c[0] > 0 && c[2] > 0);
}

static void one_tcp(int in, int out)
{
	sh->r[0] = tcp_query(VIP, VIP_TCP_PORT);
	sh->n = 1;
}

static void test_no_active_backend_refuses(void **state)
{
	const int states[NBE] = {LB_BACKEND_DRAINING, LB_BACKEND_MAINTENANCE, LB_BACKEND_DRAINING};
	uint64_t d0[LB_DROP_MAX + 1], d1[LB_DROP_MAX + 1];

	assert_int_equal(lb_drops_read(lb, d0), 0);
	assert_int_equal(program(&tcp_svc, BE_TCP_PORT, states), 0);
	run_in_cgroup(one_tcp);
	program_all_active();
	assert_int_equal(sh->r[0].id, -EPERM);
	assert_int_equal(lb_drops_read(lb, d1), 0);
	assert_int_equal(d1[-LB_DROP_NO_BACKEND] - d0[-LB_DROP_NO_BACKEND], 1);
}

/* A published port (address 0) is the tc path's alone: connecting to some
 * address on that port is left as it is (refused: nobody listens). */
static void tcp_port_81(int in, int out)
{
	sh->r[0] = tcp_query(VIP, 81);
	sh->n = 1;
}

static void test_published_port_untouched(void **state)
{
	struct lb_service_key k = {.addr = 0, .port = 81, .proto = IPPROTO_TCP};
	struct lb_backend_spec be = {A(be_addrs[0]), BE_TCP_PORT, LB_BACKEND_ACTIVE};
	struct shoal_err err = {};

	assert_int_equal(lb_service_upsert(lb, &k, &be, 1, &err), 0);
	run_in_cgroup(tcp_port_81);
	assert_int_equal(lb_service_delete(lb, &k, &err), 0);
	assert_int_equal(sh->r[0].id, -ECONNREFUSED);
}

static void test_outside_cgroup_untouched(void **state)
{
	_cleanup_close_ int fd = udp_socket();
	struct reply r;

	/* This process is not in the cgroup. */
	r = tcp_query(VIP, VIP_TCP_PORT);
	assert_int_equal(r.id, DIRECT);
	r = udp_query(fd, VIP, VIP_UDP_PORT);
	assert_int_equal(r.id, DIRECT);
	assert_peer_is(&r, VIP, VIP_UDP_PORT);
}

static int count_ours(enum bpf_attach_type type, const char *name, uint32_t *ret_id)
{
	uint32_t ids[64], cnt = 64, flags = 0;
	_cleanup_close_ int cg = open(cg_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int n = 0;

	if (cg < 0 || bpf_prog_query(cg, type, 0, &flags, ids, &cnt) < 0)
		return -1;
	for (uint32_t i = 0; i < cnt; i++) {
		struct bpf_prog_info info = {};
		uint32_t len = sizeof(info);
		_cleanup_close_ int fd = bpf_prog_get_fd_by_id(ids[i]);

		if (fd >= 0 && bpf_obj_get_info_by_fd(fd, &info, &len) == 0 &&
		    strcmp(info.name, name) == 0) {
			n++;
			if (ret_id)
				*ret_id = ids[i];
		}
	}
	return n;
}

static const struct {
	enum bpf_attach_type type;
	const char *name;
} hooks[] = {
	{BPF_CGROUP_INET4_CONNECT, "lb_connect4"},
	{BPF_CGROUP_UDP4_SENDMSG, "lb_sendmsg4"},
	{BPF_CGROUP_UDP4_RECVMSG, "lb_recvmsg4"},
	{BPF_CGROUP_INET4_GETPEERNAME, "lb_getpeername4"},
};

/* The map ids a program uses, sorted by nothing: compared as sets. */
static int prog_map_ids(uint32_t prog_id, uint32_t ids[16])
{
	_cleanup_close_ int fd = bpf_prog_get_fd_by_id(prog_id);
	struct bpf_prog_info info = {.nr_map_ids = 16, .map_ids = (uint64_t)(uintptr_t)ids};
	uint32_t len = sizeof(info);

	if (fd < 0 || bpf_obj_get_info_by_fd(fd, &info, &len) < 0 || info.nr_map_ids > 16)
		return -1;
	return (int)info.nr_map_ids;
}

/* A UDP socket keeps its backend and its reverse translation across a
 * re-attach (a restarted agent): the new programs reuse the maps. */
static void udp_across_reattach(int in, int out)
{
	_cleanup_close_ int fd = udp_socket();
	struct reply r = udp_query(fd, VIP, VIP_UDP_PORT);

	sh->sticky_id = r.id;
	step_send(out);
	step_wait(in);
	sh->r[0] = udp_query(fd, VIP, VIP_UDP_PORT);
	sh->n = 1;
}

static void test_reattach_replaces_and_keeps_maps(void **state)
{
	struct shoal_err err = {};
	uint32_t old_id = 0, new_id = 0, old_maps[16], new_maps[16];
	int n_old, n_new;
	struct client cl;

	assert_int_equal(count_ours(BPF_CGROUP_INET4_CONNECT, "lb_connect4", &old_id), 1);
	n_old = prog_map_ids(old_id, old_maps);
	assert_true(n_old > 0);

	cl = spawn_in_cgroup(udp_across_reattach);
	step_wait(cl.from_child);
	assert_int_equal(lb_sock_attach(lb, cg_path, &err), 0);
	step_send(cl.to_child);
	client_wait(&cl);
	assert_true(sh->sticky_id >= 0 && sh->sticky_id < NBE);
	assert_int_equal(sh->r[0].id, sh->sticky_id);
	assert_peer_is(&sh->r[0], VIP, VIP_UDP_PORT);

	for (size_t i = 0; i < ARRAY_SIZE(hooks); i++)
		assert_int_equal(count_ours(hooks[i].type, hooks[i].name, NULL), 1);
	assert_int_equal(count_ours(BPF_CGROUP_INET4_CONNECT, "lb_connect4", &new_id), 1);
	assert_int_not_equal(new_id, old_id);
	n_new = prog_map_ids(new_id, new_maps);
	assert_int_equal(n_new, n_old);
	for (int i = 0; i < n_old; i++) {
		bool found = false;

		for (int j = 0; j < n_new && !found; j++)
			found = old_maps[i] == new_maps[j];
		/* .rodata is the program's own; every other map is shared. */
		if (!found) {
			_cleanup_close_ int mfd = bpf_map_get_fd_by_id(old_maps[i]);
			struct bpf_map_info mi = {};
			uint32_t len = sizeof(mi);

			assert_true(mfd >= 0);
			assert_int_equal(bpf_obj_get_info_by_fd(mfd, &mi, &len), 0);
			assert_non_null(strstr(mi.name, ".rodata"));
		}
	}
}

static void test_detach_restores_direct_path(void **state)
{
	struct shoal_err err = {};

	assert_int_equal(lb_sock_detach(lb, cg_path, &err), 0);
	for (size_t i = 0; i < ARRAY_SIZE(hooks); i++)
		assert_int_equal(count_ours(hooks[i].type, hooks[i].name, NULL), 0);
	run_in_cgroup(one_tcp);
	assert_int_equal(lb_sock_attach(lb, cg_path, &err), 0);
	assert_int_equal(sh->r[0].id, DIRECT);
	assert_peer_is(&sh->r[0], VIP, VIP_TCP_PORT);
}

/* ---- published ports from the node itself (node hooks on the cgroup root) ---- */

#define NODE_PORT   81
#define NODE_PIN_FS "/sys/fs/bpf"
static char node_pins[256];

static int lo_up(void);

/* In a network namespace of its own, with a listener of its own on
 * 127.0.0.1:NODE_PORT: the node hooks of another namespace leave it alone. */
static void other_netns_query(void)
{
	pid_t pid = fork();
	int status = 0;

	assert_true(pid >= 0);
	if (pid == 0) {
		struct reply r = {.id = -EIO};
		_cleanup_close_ int fd = -EBADF;

		if (unshare(CLONE_NEWNET) == 0 && lo_up() == 0) {
			fd = bound(SOCK_STREAM, "127.0.0.1", NODE_PORT);
			pid_t srv = fd >= 0 ? fork() : -1;
			if (srv == 0) {
				int types[] = {SOCK_STREAM};
				uint8_t ids[] = {DIRECT};

				prctl(PR_SET_PDEATHSIG, SIGKILL);
				serve(&fd, types, ids, 1);
				_exit(0);
			}
			if (srv > 0) {
				r = tcp_query("127.0.0.1", NODE_PORT);
				kill(srv, SIGKILL);
				waitpid(srv, NULL, 0);
			}
		}
		sh->r[0] = r;
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
}

static void test_node_hooks(void **state)
{
	struct lb_service_key k = {.addr = 0, .port = NODE_PORT, .proto = IPPROTO_TCP};
	struct lb_backend_spec be = {A(be_addrs[1]), BE_TCP_PORT, LB_BACKEND_ACTIVE};
	struct shoal_err err = {};
	uint32_t node_addr = A(VIP);
	struct statfs fs;
	struct reply r;

	assert_true(statfs(NODE_PIN_FS, &fs) == 0 && fs.f_type == 0xcafe4a11);
	snprintf(node_pins, sizeof(node_pins), NODE_PIN_FS "/%s%d-node", CG_PREFIX, getpid());
	assert_int_equal(lb_service_upsert(lb, &k, &be, 1, &err), 0);
	/* nothing on the port yet: refused */
	assert_int_equal(tcp_query("127.0.0.1", NODE_PORT).id, -ECONNREFUSED);

	assert_int_equal(lb_sock_node_attach(lb, cg_path, node_pins, &err), 0);
	/* this process is outside the agent's cgroup, but in its namespace */
	r = tcp_query("127.0.0.1", NODE_PORT);
	assert_int_equal(r.id, 1);
	assert_peer_is(&r, "127.0.0.1", NODE_PORT);
	assert_int_equal(tcp_query("127.0.0.9", NODE_PORT).id, 1);
	/* a node address only once the agent lists it */
	assert_int_equal(tcp_query(VIP, NODE_PORT).id, -ECONNREFUSED);
	assert_int_equal(lb_sock_node_addrs(node_pins, &node_addr, 1, &err), 0);
	assert_int_equal(tcp_query(VIP, NODE_PORT).id, 1);
	assert_int_equal(lb_sock_node_addrs(node_pins, NULL, 0, &err), 0);
	assert_int_equal(tcp_query(VIP, NODE_PORT).id, -ECONNREFUSED);
	/* another network namespace is not the agent's */
	other_netns_query();
	assert_int_equal(sh->r[0].id, DIRECT);
	/* a second attach (a restarted agent) swaps the programs in place */
	assert_int_equal(lb_sock_node_attach(lb, cg_path, node_pins, &err), 0);
	assert_int_equal(tcp_query("127.0.0.1", NODE_PORT).id, 1);

	assert_int_equal(lb_sock_node_detach(node_pins, &err), 0);
	node_pins[0] = 0;
	assert_int_equal(tcp_query("127.0.0.1", NODE_PORT).id, -ECONNREFUSED);
	assert_int_equal(lb_service_delete(lb, &k, &err), 0);
}

static void test_attach_refuses_v1_and_missing(void **state)
{
	struct shoal_err err = {};

	assert_int_equal(lb_sock_attach(lb, "/proc", &err), -EINVAL);
	assert_non_null(strstr(err.msg, "cgroup v2"));
	assert_int_equal(lb_sock_attach(lb, CG_ROOT "/" CG_PREFIX "missing", &err), -ENOENT);
}

/* ---- setup ---- */

static void cleanup(void)
{
	struct shoal_err err = {};

	if (server_pid > 0) {
		kill(server_pid, SIGKILL);
		waitpid(server_pid, NULL, 0);
		server_pid = -1;
	}
	if (lb && cg_path[0])
		lb_sock_detach(lb, cg_path, &err);
	if (node_pins[0])
		lb_sock_node_detach(node_pins, &err);
	lb = lb_close(lb);
	if (cg_path[0]) {
		/* The kernel may take a moment to let go of reaped members. */
		for (int i = 0; i < 100 && rmdir(cg_path) < 0 && errno == EBUSY; i++)
			usleep(10000);
		cg_path[0] = 0;
	}
	if (sh)
		munmap(sh, sizeof(*sh));
	sh = NULL;
}

/* Cgroups of earlier runs that died before their cleanup (a sanitizer abort). */
static void remove_stale_cgroups(void)
{
	_cleanup_closedir_ DIR *d = opendir(CG_ROOT);
	struct dirent *de;

	while (d && (de = readdir(d))) {
		char path[300];
		int pid;

		if (sscanf(de->d_name, CG_PREFIX "%d", &pid) != 1 || pid <= 0)
			continue;
		if (kill(pid, 0) == 0 || errno != ESRCH)
			continue;
		snprintf(path, sizeof(path), "%s/%s", CG_ROOT, de->d_name);
		rmdir(path);
	}
	/* and their node hooks, pinned in bpffs */
	_cleanup_closedir_ DIR *b = opendir(NODE_PIN_FS);
	while (b && (de = readdir(b))) {
		char path[300];
		int pid;
		struct shoal_err err = {};

		if (sscanf(de->d_name, CG_PREFIX "%d-node", &pid) != 1 || pid <= 0)
			continue;
		if (kill(pid, 0) == 0 || errno != ESRCH)
			continue;
		snprintf(path, sizeof(path), "%s/%s", NODE_PIN_FS, de->d_name);
		lb_sock_node_detach(path, &err);
	}
}

static int lo_up(void)
{
	_cleanup_close_ int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct ifreq ifr = {.ifr_name = "lo"};

	if (fd < 0 || ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
		return -errno;
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
		return -errno;
	return 0;
}

static int lo_up_with_vip(void)
{
	_cleanup_close_ int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct ifreq ifr;
	struct sockaddr_in *sa = (struct sockaddr_in *)&ifr.ifr_addr;
	int r = lo_up();

	if (r < 0)
		return r;
	if (fd < 0)
		return -errno;
	/* The VIP as a /32 on lo, for the listeners that stand for "not
	 * balanced". */
	memset(&ifr, 0, sizeof(ifr));
	strcpy(ifr.ifr_name, "lo:vip");
	*sa = sin_of(VIP, 0);
	if (ioctl(fd, SIOCSIFADDR, &ifr) < 0)
		return -errno;
	*sa = sin_of("255.255.255.255", 0);
	if (ioctl(fd, SIOCSIFNETMASK, &ifr) < 0)
		return -errno;
	return 0;
}

/* Without the socket hooks (a kernel without them, or SHOAL_LB_DISABLE):
 * both attach calls refuse at once with the reason, and nothing of ours is
 * on the cgroup, so a VIP is not balanced (the agent answers service names
 * with task addresses instead, and proxies published ports). */
static void test_fallback_refuses(void **state)
{
	static const enum bpf_attach_type types[] = {
		BPF_CGROUP_INET4_CONNECT, BPF_CGROUP_UDP4_SENDMSG, BPF_CGROUP_UDP4_RECVMSG,
		BPF_CGROUP_INET4_GETPEERNAME};
	const struct lb_feature_status *st = lb_feature(lb, LB_FEAT_SOCKET_LB);
	struct shoal_err err = {};
	_cleanup_close_ int cg = open(cg_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	print_message("    socket hooks unavailable: %s\n", st->reason);
	assert_int_equal(st->state, LB_FEATURE_UNAVAILABLE);
	assert_int_equal(lb_sock_attach(lb, cg_path, &err), -EOPNOTSUPP);
	assert_non_null(strstr(err.msg, st->reason));
	snprintf(node_pins, sizeof(node_pins), NODE_PIN_FS "/%s%d-node", CG_PREFIX, getpid());
	assert_int_equal(lb_sock_node_attach(lb, cg_path, node_pins, &err), -EOPNOTSUPP);
	assert_true(cg >= 0);
	for (size_t i = 0; i < ARRAY_SIZE(types); i++) {
		uint32_t ids[8], cnt = 8, flags = 0;

		assert_int_equal(bpf_prog_query(cg, types[i], 0, &flags, ids, &cnt), 0);
		assert_int_equal(cnt, 0);
	}
	node_pins[0] = '\0';
}

int main(void)
{
	const struct CMUnitTest fallback_tests[] = {
		cmocka_unit_test(test_fallback_refuses),
	};
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tcp_spread_peer_is_vip),
		cmocka_unit_test(test_tcp_draining_takes_no_new_connections),
		cmocka_unit_test(test_tcp_counters),
		cmocka_unit_test(test_udp_roundtrip_peer_is_vip),
		cmocka_unit_test(test_udp_connected),
		cmocka_unit_test(test_udp_draining_keeps_socket),
		cmocka_unit_test(test_no_active_backend_refuses),
		cmocka_unit_test(test_published_port_untouched),
		cmocka_unit_test(test_outside_cgroup_untouched),
		cmocka_unit_test(test_reattach_replaces_and_keeps_maps),
		cmocka_unit_test(test_detach_restores_direct_path),
		cmocka_unit_test(test_attach_refuses_v1_and_missing),
		cmocka_unit_test(test_node_hooks),
	};
	struct shoal_err err = {};
	struct statfs fs;
	int r;

	if (geteuid() != 0) {
		printf("SKIP: cgroup BPF programs need root\n");
		return 77;
	}
	if (statfs(CG_ROOT, &fs) < 0 || fs.f_type != CGROUP2_SUPER_MAGIC) {
		printf("SKIP: no cgroup v2 hierarchy at %s\n", CG_ROOT);
		return 77;
	}
	/* A private network namespace: the listeners and the VIP address go
	 * away with the process. */
	if (unshare(CLONE_NEWNET) < 0) {
		printf("SKIP: cannot create a network namespace: %m\n");
		return 77;
	}
	r = lo_up_with_vip();
	if (r < 0) {
		printf("FAIL: cannot set up lo in the test namespace: %s\n", strerror(-r));
		return 1;
	}
	if ((statfs(NODE_PIN_FS, &fs) < 0 || fs.f_type != 0xcafe4a11) &&
	    mount("bpf", NODE_PIN_FS, "bpf", 0, "mode=0700") < 0) {
		printf("SKIP: no bpffs at %s and mounting one failed: %m\n", NODE_PIN_FS);
		return 77;
	}
	if (!getenv("LB_TEST_VERBOSE"))
		libbpf_set_print(NULL);
	remove_stale_cgroups();

	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED) {
		sh = NULL;
		return 1;
	}
	atexit(cleanup);
	snprintf(cg_path, sizeof(cg_path), "%s/%s%d", CG_ROOT, CG_PREFIX, getpid());
	if (mkdir(cg_path, 0755) < 0) {
		printf("FAIL: cannot create cgroup %s: %m\n", cg_path);
		cg_path[0] = 0;
		return 1;
	}
	if (lb_open(NULL, &lb, &err) < 0) {
		printf("FAIL: cannot load the load balancer programs: %s\n", err.msg);
		return 1;
	}
	if (lb_feature(lb, LB_FEAT_SOCKET_LB)->state != LB_FEATURE_ON)
		return cmocka_run_group_tests(fallback_tests, NULL, NULL);
	if (lb_sock_attach(lb, cg_path, &err) < 0) {
		printf("FAIL: cannot attach the socket hooks: %s\n", err.msg);
		return 1;
	}
	if (program(&tcp_svc, BE_TCP_PORT, NULL) < 0 || program(&udp_svc, BE_UDP_PORT, NULL) < 0 ||
	    start_servers() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
