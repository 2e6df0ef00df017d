// SPDX-License-Identifier: Apache-2.0
/* shoal-bench-echo [-a ADDR] [-d N] [-x N] PORT: TCP and UDP echo on PORT,
 * the peer of `shoal bench tcp|udp` in tests. One thread, epoll. -d N drops
 * every Nth datagram (a lossy path), -x N flips a byte in every Nth answer
 * (a corrupting one), so that the bench's loss and mismatch counts can be
 * checked against a known truth. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF_SIZE 65536

static unsigned long drop_every, corrupt_every, answers, datagrams;
static unsigned char buf[BUF_SIZE];

static void on_term(int sig)
{
	_exit(0);
}

static void maybe_corrupt(ssize_t n)
{
	if (corrupt_every && n > 0 && ++answers % corrupt_every == 0)
		buf[n - 1] ^= 0x5a;
}

/* Echoes what a connection has; -1 when it is done. Blocking writes: an
 * echo peer that cannot keep up slows its client, as a real one does. */
static int serve_tcp(int fd)
{
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n == 0)
			return -1;
		if (n < 0)
			return errno == EAGAIN ? 0 : errno == EINTR ? 0 : -1;
		maybe_corrupt(n);
		for (ssize_t off = 0; off < n;) {
			ssize_t k = write(fd, buf + off, (size_t)(n - off));
			if (k < 0 && errno == EAGAIN) {
				fd_set w;
				FD_ZERO(&w);
				FD_SET(fd, &w);
				select(fd + 1, NULL, &w, NULL, NULL);
				continue;
			}
			if (k < 0 && errno == EINTR)
				continue;
			if (k < 0)
				return -1;
			off += k;
		}
	}
}

/* Answers from the address each datagram was sent to (IP_PKTINFO): a server
 * bound to 0.0.0.0 would otherwise answer from the outgoing interface's
 * address, and a connected client socket drops that. */
static void serve_udp(int fd)
{
	for (;;) {
		struct sockaddr_storage from;
		union {
			char buf[CMSG_SPACE(sizeof(struct in_pktinfo))];
			struct cmsghdr align;
		} ctl;
		struct iovec iov = {.iov_base = buf, .iov_len = sizeof(buf)};
		struct msghdr m = {.msg_name = &from,
				   .msg_namelen = sizeof(from),
				   .msg_iov = &iov,
				   .msg_iovlen = 1,
				   .msg_control = ctl.buf,
				   .msg_controllen = sizeof(ctl.buf)};
		ssize_t n = recvmsg(fd, &m, 0);
		if (n < 0)
			return;
		if (drop_every && ++datagrams % drop_every == 0)
			continue;
		maybe_corrupt(n);
		iov.iov_len = (size_t)n;
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c))
			if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO)
				((struct in_pktinfo *)CMSG_DATA(c))->ipi_ifindex = 0;
		m.msg_flags = 0;
		sendmsg(fd, &m, 0);
	}
}

int main(int argc, char **argv)
{
	const char *addr = "0.0.0.0";
	int opt;
	while ((opt = getopt(argc, argv, "a:d:x:")) != -1) {
		if (opt == 'a')
			addr = optarg;
		else if (opt == 'd')
			drop_every = strtoul(optarg, NULL, 10);
		else if (opt == 'x')
			corrupt_every = strtoul(optarg, NULL, 10);
		else
			return 2;
	}
	if (optind != argc - 1) {
		fprintf(stderr, "usage: shoal-bench-echo [-a ADDR] [-d N] [-x N] PORT\n");
		return 2;
	}
	int port = atoi(argv[optind]);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	if (port < 1 || port > 65535 || inet_pton(AF_INET, addr, &sa.sin_addr) != 1) {
		fprintf(stderr, "shoal-bench-echo: bad address %s or port %s\n", addr,
			argv[optind]);
		return 2;
	}
	signal(SIGTERM, on_term);
	signal(SIGINT, on_term);
	signal(SIGPIPE, SIG_IGN);
	int one = 1;
	int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int us = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	setsockopt(us, IPPROTO_IP, IP_PKTINFO, &one, sizeof(one));
	if (ls < 0 || us < 0 || bind(ls, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(ls, 1024) < 0 || bind(us, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		perror("shoal-bench-echo: listen");
		return 1;
	}
	int ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev = {.events = EPOLLIN, .data.fd = ls};
	epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
	ev.data.fd = us;
	epoll_ctl(ep, EPOLL_CTL_ADD, us, &ev);
	printf("listening on %s:%d (tcp, udp)\n", addr, port);
	fflush(stdout);
	struct epoll_event evs[256];
	for (;;) {
		int n = epoll_wait(ep, evs, 256, -1);
		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;
			if (fd == ls) {
				int c;
				while ((c = accept4(ls, NULL, NULL,
						    SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
					setsockopt(c, IPPROTO_TCP, 1 /* TCP_NODELAY */, &one,
						   sizeof(one));
					struct epoll_event ce = {.events = EPOLLIN, .data.fd = c};
					epoll_ctl(ep, EPOLL_CTL_ADD, c, &ce);
				}
			} else if (fd == us) {
				serve_udp(us);
			} else if (serve_tcp(fd) < 0) {
				epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
				close(fd);
			}
		}
	}
}
