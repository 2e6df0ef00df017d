// SPDX-License-Identifier: Apache-2.0
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/cleanup.h"
#include "lib/util.h"
#include "overlay/bridge.h"
#include "overlay/netns-internal.h"
#include "overlay/nl-internal.h"

/* The kernel gives every namespace's loopback this index. */
#define LOOPBACK_IFINDEX 1

int netns_dir_prepare(const char *dir, struct shoal_err *err)
{
	int r = mkdir_p(dir, 0755);
	if (r < 0)
		return shoal_err_errno(err, r, "creating netns directory %s", dir);
	if (mount("", dir, "none", MS_SHARED | MS_REC, NULL) == 0)
		return 0;
	if (errno != EINVAL)
		return shoal_err_errno(err, errno, "making %s a shared mount", dir);
	/* Not a mount point yet: make it one. */
	if (mount(dir, dir, "none", MS_BIND | MS_REC, NULL) < 0)
		return shoal_err_errno(err, errno, "bind-mounting %s on itself", dir);
	if (mount("", dir, "none", MS_SHARED | MS_REC, NULL) < 0)
		return shoal_err_errno(err, errno, "making %s a shared mount", dir);
	return 0;
}

int netns_dir_remove(const char *dir, struct shoal_err *err)
{
	_cleanup_closedir_ DIR *d = opendir(dir);
	struct dirent *de;
	char path[PATH_MAX];

	if (!d)
		return errno == ENOENT ? 0 : shoal_err_errno(err, errno, "opening %s", dir);
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, de->d_name) >= sizeof(path))
			return shoal_err_set(err, ENAMETOOLONG, "%s/%s is too long", dir,
					     de->d_name);
		/* EINVAL: a file nothing is mounted on (left by a crash) */
		if (umount2(path, MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT)
			return shoal_err_errno(err, errno, "unmounting %s", path);
		if (unlink(path) < 0 && errno != ENOENT)
			return shoal_err_errno(err, errno, "removing %s", path);
	}
	if (umount2(dir, MNT_DETACH) < 0 && errno != EINVAL)
		return shoal_err_errno(err, errno, "unmounting %s", dir);
	if (rmdir(dir) < 0 && errno != ENOENT)
		return shoal_err_errno(err, errno, "removing %s", dir);
	return 0;
}

struct ns_job {
	const char *path;
	int nsfd;
	int nlfd;
	struct shoal_err *err;
	int r;
};

/*
 * Runs on a short-lived thread: unshare(CLONE_NEWNET) moves only this thread
 * into the new namespace, and the thread ends there, so the caller's thread
 * never changes namespace and no failure can leave it in the wrong one. The
 * netlink socket opened here stays bound to the new namespace after the
 * thread is gone.
 */
static void *ns_thread(void *arg)
{
	struct ns_job *job = arg;

	if (unshare(CLONE_NEWNET) < 0) {
		job->r = shoal_err_errno(job->err, errno, "creating network namespace");
		return NULL;
	}
	if (mount("/proc/thread-self/ns/net", job->path, "none", MS_BIND, NULL) < 0) {
		job->r = shoal_err_errno(job->err, errno, "bind-mounting network namespace at %s",
					 job->path);
		return NULL;
	}
	job->nsfd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (job->nsfd < 0) {
		job->r = shoal_err_errno(job->err, errno, "opening the new network namespace");
		return NULL;
	}
	job->nlfd = nl_socket_fd();
	if (job->nlfd < 0) {
		job->r = shoal_err_errno(job->err, job->nlfd,
					 "opening a netlink socket in the new network namespace");
		return NULL;
	}
	job->r = 0;
	return NULL;
}

/* ---- the pool of fresh namespaces ---- */

/*
 * Creating a network namespace costs a few hundred microseconds of kernel
 * work (and a thread, here); a container start should not wait for it. A
 * background thread keeps a few fresh namespaces ready, lo up and nothing
 * else, each used once: a taken namespace is exactly what a new one would be.
 * The thread unshares into each new namespace in turn and never returns to
 * another, so no other thread's namespace ever changes. It runs at a lower
 * priority than the agent's loop, so that refilling gives way to the starts
 * that drain the pool.
 */
#define POOL_SIZE 4

static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool started;
	pid_t owner; /* a forked copy of the process has no thread: it refills nothing */
	int nsfd[POOL_SIZE], nlfd[POOL_SIZE];
	unsigned n;
} pool = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

/* In the calling thread: a new namespace, entered, with lo up. */
static int fresh_here(int *ret_nsfd, int *ret_nlfd, struct shoal_err *err)
{
	if (unshare(CLONE_NEWNET) < 0)
		return shoal_err_errno(err, errno, "creating network namespace");
	_cleanup_close_ int nsfd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (nsfd < 0)
		return shoal_err_errno(err, errno, "opening the new network namespace");
	_cleanup_close_ int nlfd = nl_socket_fd();
	if (nlfd < 0)
		return shoal_err_errno(err, -nlfd,
				       "opening a netlink socket in the new network namespace");
	int r = netns_lo_up(nlfd, err);
	if (r < 0)
		return r;
	*ret_nsfd = TAKE_FD(nsfd);
	*ret_nlfd = TAKE_FD(nlfd);
	return 0;
}

static void *pool_thread(void *arg)
{
	/* Per thread on Linux: only this one runs at the lower priority. */
	(void)setpriority(PRIO_PROCESS, (id_t)gettid(), 10);
	for (;;) {
		pthread_mutex_lock(&pool.lock);
		while (pool.n >= POOL_SIZE)
			pthread_cond_wait(&pool.cond, &pool.lock);
		pthread_mutex_unlock(&pool.lock);
		int nsfd, nlfd;
		if (fresh_here(&nsfd, &nlfd, NULL) < 0) {
			/* Out of some resource: takes make their own meanwhile. */
			struct timespec ts = {.tv_sec = 1};
			nanosleep(&ts, NULL);
			continue;
		}
		pthread_mutex_lock(&pool.lock);
		if (pool.n < POOL_SIZE) {
			pool.nsfd[pool.n] = nsfd;
			pool.nlfd[pool.n] = nlfd;
			pool.n++;
			nsfd = nlfd = -1;
		}
		pthread_mutex_unlock(&pool.lock);
		if (nsfd >= 0) {
			close(nsfd);
			close(nlfd);
		}
	}
	return arg;
}

struct fresh_job {
	int nsfd, nlfd, r;
	struct shoal_err *err;
};

static void *fresh_thread(void *arg)
{
	struct fresh_job *job = arg;
	job->r = fresh_here(&job->nsfd, &job->nlfd, job->err);
	return NULL;
}

int netns_pool_take(bool make, int *ret_nsfd, int *ret_nlfd, struct shoal_err *err)
{
	int nsfd = -1, nlfd = -1;
	pthread_mutex_lock(&pool.lock);
	if (!pool.started || pool.owner != getpid()) {
		/* First use here (or in a forked copy, whose fds the parent's thread
		 * does not fill): start the thread, detached, signals blocked. */
		pool.n = 0;
		pthread_t t;
		pthread_attr_t attr;
		sigset_t all, old;
		sigfillset(&all);
		pthread_attr_init(&attr);
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		pthread_sigmask(SIG_SETMASK, &all, &old);
		if (pthread_create(&t, &attr, pool_thread, NULL) == 0) {
			pool.started = true;
			pool.owner = getpid();
		}
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		pthread_attr_destroy(&attr);
	}
	if (pool.n > 0) {
		pool.n--;
		nsfd = pool.nsfd[pool.n];
		nlfd = pool.nlfd[pool.n];
	}
	pthread_cond_signal(&pool.cond);
	pthread_mutex_unlock(&pool.lock);
	if (nsfd < 0 && !make)
		return shoal_err_set(err, EAGAIN, "no network namespace ready");
	if (nsfd < 0) {
		struct fresh_job job = {.nsfd = -1, .nlfd = -1, .r = -EIO, .err = err};
		pthread_t t;
		int r = pthread_create(&t, NULL, fresh_thread, &job);
		if (r != 0)
			return shoal_err_errno(err, r, "starting the network namespace thread");
		pthread_join(t, NULL);
		if (job.r < 0)
			return job.r;
		nsfd = job.nsfd;
		nlfd = job.nlfd;
	}
	*ret_nsfd = nsfd;
	if (ret_nlfd)
		*ret_nlfd = nlfd;
	else
		close(nlfd);
	return 0;
}

int netns_take_at(const char *path, int *ret_nsfd, int *ret_nlfd, struct shoal_err *err)
{
	_cleanup_close_ int nsfd = -EBADF, nlfd = -EBADF;
	int r = netns_pool_take(true, &nsfd, &nlfd, err);
	if (r < 0)
		return r;
	int fd = open(path, O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0);
	if (fd < 0) {
		if (errno == EEXIST)
			return shoal_err_set(err, EEXIST,
					     "network namespace %s already exists: remove it first",
					     path);
		return shoal_err_errno(err, errno, "creating network namespace file %s", path);
	}
	close(fd);
	char src[64];
	snprintf(src, sizeof(src), "/proc/self/fd/%d", nsfd);
	if (mount(src, path, "none", MS_BIND, NULL) < 0) {
		r = shoal_err_errno(err, errno, "bind-mounting network namespace at %s", path);
		unlink(path);
		return r;
	}
	*ret_nsfd = TAKE_FD(nsfd);
	*ret_nlfd = TAKE_FD(nlfd);
	return 0;
}

int netns_create_open(const char *path, int *ret_nsfd, int *ret_nlfd, struct shoal_err *err)
{
	int fd = open(path, O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0);
	if (fd < 0) {
		if (errno == EEXIST)
			return shoal_err_set(err, EEXIST,
					     "network namespace %s already exists: remove it first",
					     path);
		return shoal_err_errno(err, errno, "creating network namespace file %s", path);
	}
	close(fd);

	struct ns_job job = {.path = path, .nsfd = -EBADF, .nlfd = -EBADF, .err = err, .r = -EIO};
	pthread_t t;
	int r = pthread_create(&t, NULL, ns_thread, &job);
	if (r != 0) {
		unlink(path);
		return shoal_err_errno(err, r, "starting the network namespace thread");
	}
	pthread_join(t, NULL);
	if (job.r < 0) {
		if (job.nsfd >= 0)
			close(job.nsfd);
		netns_remove(path);
		return job.r;
	}
	*ret_nsfd = job.nsfd;
	*ret_nlfd = job.nlfd;
	return 0;
}

int netns_lo_up(int nlfd, struct shoal_err *err)
{
	struct nl_sock s;
	nl_sock_adopt(&s, nlfd);
	_cleanup_free_ char *buf = malloc(NL_BUF_SIZE);
	if (!buf)
		return shoal_err_set(err, ENOMEM, "bringing lo up");
	struct nlmsghdr *nlh = nl_build_link_set(buf, LOOPBACK_IFINDEX, NULL, 1, 0);
	char ext[256];
	int r = nl_sock_transact(&s, buf, nlh->nlmsg_len, NULL, NULL, ext, sizeof(ext));
	if (r < 0)
		return shoal_err_errno(err, r, "bringing lo up%s%s", ext[0] ? ": " : "", ext);
	return 0;
}

int netns_create(const char *path, struct shoal_err *err)
{
	char dirbuf[PATH_MAX];
	if (!path || !*path || strlen(path) >= sizeof(dirbuf))
		return shoal_err_set(err, EINVAL, "invalid network namespace path");
	snprintf(dirbuf, sizeof(dirbuf), "%s", path);
	int r = netns_dir_prepare(dirname(dirbuf), err);
	if (r < 0)
		return r;

	_cleanup_close_ int nsfd = -EBADF, nlfd = -EBADF;
	r = netns_create_open(path, &nsfd, &nlfd, err);
	if (r < 0)
		return r;
	r = netns_lo_up(nlfd, err);
	if (r < 0) {
		netns_remove(path);
		return shoal_err_wrap(err, "network namespace %s", path);
	}
	return 0;
}

int netns_remove(const char *path)
{
	int r = 0;
	if (umount2(path, MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT)
		r = -errno;
	if (unlink(path) < 0 && errno != ENOENT && r == 0)
		r = -errno;
	return r;
}

/* On a short-lived thread, as ns_thread(): only it enters the namespace. */
static void *join_thread(void *arg)
{
	struct ns_job *job = arg;
	if (setns(job->nsfd, CLONE_NEWNET) < 0) {
		job->r = shoal_err_errno(job->err, errno, "entering network namespace %s",
					 job->path);
		return NULL;
	}
	job->nlfd = nl_socket_fd();
	if (job->nlfd < 0) {
		job->r = shoal_err_errno(job->err, -job->nlfd,
					 "opening a netlink socket in network namespace %s",
					 job->path);
		return NULL;
	}
	job->r = 0;
	return NULL;
}

int netns_open_at(const char *path, int *ret_nsfd, int *ret_nlfd, struct shoal_err *err)
{
	struct ns_job job = {.path = path, .nsfd = -EBADF, .nlfd = -EBADF, .err = err, .r = -EIO};
	job.nsfd = open(path, O_RDONLY | O_CLOEXEC);
	if (job.nsfd < 0)
		return shoal_err_errno(err, errno, "opening network namespace %s", path);
	pthread_t t;
	int r = pthread_create(&t, NULL, join_thread, &job);
	if (r != 0) {
		close(job.nsfd);
		return shoal_err_errno(err, r, "starting the network namespace thread");
	}
	pthread_join(t, NULL);
	if (job.r < 0) {
		close(job.nsfd);
		return job.r;
	}
	*ret_nsfd = job.nsfd;
	*ret_nlfd = job.nlfd;
	return 0;
}

/* The veth whose host end is ep->host_ifname and whose peer is ifname in the
 * namespace nsfd. */
static int veth_into(struct nl_sock *nl, char *buf, const struct netns_ep *ep, int nsfd,
		     const char *ifname, struct shoal_err *err)
{
	char ext[256];
	struct nl_veth_spec spec = {
		.ifname = ep->host_ifname,
		.master = ep->master,
		.mtu = ep->mtu,
		.peer_ifname = ifname,
		.peer_netns_fd = nsfd,
		.peer_mac = ep->mac,
	};
	struct nlmsghdr *nlh = nl_build_veth_new(buf, &spec);
	int r = nl_sock_transact(nl, buf, nlh->nlmsg_len, NULL, NULL, ext, sizeof(ext));
	if (r < 0)
		return nl_err(err, r, ext, "creating veth %s", ep->host_ifname);
	return 0;
}

int netns_ep_join(struct nl_sock *nl, char *buf, const struct netns_ep *ep, const char *ifname,
		  struct shoal_err *err)
{
	_cleanup_close_ int nsfd = -EBADF, nlfd = -EBADF;
	int r = netns_open_at(ep->netns_path, &nsfd, &nlfd, err);
	if (r < 0 || (r = veth_into(nl, buf, ep, nsfd, ifname, err)) < 0)
		return r;
	/* no default route: the first network keeps it */
	r = nl_if_configure(nlfd, buf, ep->netns_path, ifname, ep->addr, ep->prefixlen,
			    ep->broadcast, (struct in_addr){0}, err);
	if (r < 0) {
		struct nlmsghdr *nlh = nl_build_link_del(buf, 0, ep->host_ifname);
		(void)nl_sock_transact(nl, buf, nlh->nlmsg_len, NULL, NULL, NULL, 0);
	}
	return r;
}

int netns_ep_plumb(struct nl_sock *nl, char *buf, const struct netns_ep *ep, struct shoal_err *err)
{
	_cleanup_close_ int nsfd = -EBADF, nlfd = -EBADF;
	int r = netns_take_at(ep->netns_path, &nsfd, &nlfd, err);
	if (r < 0)
		return r;
	if ((r = veth_into(nl, buf, ep, nsfd, "eth0", err)) < 0) {
		netns_remove(ep->netns_path);
		return r;
	}
	r = nl_eth0_configure(nlfd, buf, ep->netns_path, ep->addr, ep->prefixlen, ep->broadcast,
			      ep->gateway, err);
	if (r < 0) {
		struct nlmsghdr *nlh = nl_build_link_del(buf, 0, ep->host_ifname);
		(void)nl_sock_transact(nl, buf, nlh->nlmsg_len, NULL, NULL, NULL, 0);
		netns_remove(ep->netns_path);
	}
	return r;
}
