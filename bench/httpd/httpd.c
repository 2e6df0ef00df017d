// SPDX-License-Identifier: Apache-2.0
/* shoal-bench-httpd [PORT]: the backend of `shoal bench lb`. One fixed
 * HTTP/1.1 response to every request, keep-alive unless the request says
 * "Connection: close"; one thread, epoll, edge-triggered; per-connection
 * buffers are a static array indexed by fd, so a request allocates nothing.
 * Linked statically: the image holds this binary and nothing else. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_FDS	 16384
#define BUF_SIZE 2048

static const char resp_keep[] = "HTTP/1.1 200 OK\r\n"
				"Server: shoal-bench\r\n"
				"Content-Type: text/plain\r\n"
				"Content-Length: 13\r\n"
				"\r\n"
				"hello, shoal\n";
static const char resp_close[] = "HTTP/1.1 200 OK\r\n"
				 "Server: shoal-bench\r\n"
				 "Content-Type: text/plain\r\n"
				 "Content-Length: 13\r\n"
				 "Connection: close\r\n"
				 "\r\n"
				 "hello, shoal\n";

struct conn {
	unsigned short len;
	char buf[BUF_SIZE];
};

static struct conn conns[MAX_FDS];

static void on_term(int sig)
{
	_exit(0);
}

static int has_close(const char *hdr, size_t n)
{
	static const char needle[] = "\r\nconnection: close";
	size_t k = sizeof(needle) - 1;
	for (size_t i = 0; i + k <= n; i++)
		if (strncasecmp(hdr + i, needle, k) == 0)
			return 1;
	return 0;
}

static void drop(int ep, int fd)
{
	epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
	close(fd);
}

/* Answers every complete request in the buffer; 0 to keep the connection. */
static int serve(int fd)
{
	struct conn *c = &conns[fd];
	for (;;) {
		ssize_t n = read(fd, c->buf + c->len, BUF_SIZE - 1 - c->len);
		if (n == 0)
			return -1;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN ? 0 : -1;
		}
		c->len += (unsigned short)n;
		c->buf[c->len] = '\0';
		size_t off = 0;
		for (;;) {
			char *end = strstr(c->buf + off, "\r\n\r\n");
			if (!end)
				break;
			size_t hlen = (size_t)(end - (c->buf + off)) + 4;
			int closing = has_close(c->buf + off, hlen);
			const char *r = closing ? resp_close : resp_keep;
			size_t rl = closing ? sizeof(resp_close) - 1 : sizeof(resp_keep) - 1;
			if (write(fd, r, rl) != (ssize_t)rl || closing)
				return -1;
			off += hlen;
		}
		if (off) {
			memmove(c->buf, c->buf + off, c->len - off);
			c->len = (unsigned short)(c->len - off);
		}
		if (c->len >= BUF_SIZE - 1)
			return -1; /* a header larger than the buffer */
	}
}

int main(int argc, char **argv)
{
	int port = argc > 1 ? atoi(argv[1]) : 80;
	signal(SIGTERM, on_term);
	signal(SIGINT, on_term);
	signal(SIGPIPE, SIG_IGN);
	int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;
	setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
	if (ls < 0 || bind(ls, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(ls, 4096) < 0)
		return 1;
	int ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev = {.events = EPOLLIN, .data.fd = ls};
	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev) < 0)
		return 1;
	struct epoll_event evs[256];
	for (;;) {
		int n = epoll_wait(ep, evs, 256, -1);
		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;
			if (fd != ls) {
				if (serve(fd) < 0)
					drop(ep, fd);
				continue;
			}
			for (;;) {
				int cfd = accept4(ls, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
				if (cfd < 0)
					break;
				if (cfd >= MAX_FDS) {
					close(cfd);
					continue;
				}
				setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
				conns[cfd].len = 0;
				struct epoll_event cev = {.events = EPOLLIN | EPOLLET,
							  .data.fd = cfd};
				if (epoll_ctl(ep, EPOLL_CTL_ADD, cfd, &cev) < 0)
					close(cfd);
			}
		}
	}
}
