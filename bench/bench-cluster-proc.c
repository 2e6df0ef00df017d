// SPDX-License-Identifier: Apache-2.0
/* What `shoal bench cluster` runs beside itself: etcd and the real agents,
 * children of this process in the network namespace it made, each with roots
 * of its own under one temp dir; and their removal, whatever happened. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libgen.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "bench/bench-cluster-internal.h"
#include "bench/bench-util.h"
#include "cli/http.h"
#include "lib/cleanup.h"
#include "lib/util.h"

#define ETCD_READY_MS  20000
#define AGENT_READY_MS 30000
#define AGENT_STOP_MS  10000
#define METRICS_MAX    (16u << 20)

static void msleep(int ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* Runs argv to its end, its output discarded. 0 or -EIO. */
static int run_wait(char *const argv[])
{
	pid_t pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		int fd = open("/dev/null", O_RDWR | O_CLOEXEC);
		dup2(fd, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		execvp(argv[0], argv);
		_exit(127);
	}
	int st = 0;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -EIO;
}

static const char *label_of(const struct bcl_procs *p)
{
	return p->label ? p->label : BCL_AGENT_PREFIX;
}

/* A child that dies with this process, its output to log; in the network
 * namespace at netns when one is named. */
static pid_t spawn(char *const argv[], const char *log, const char *netns)
{
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid != 0)
		return pid;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(1);
	bench_child_prepare(log, netns);
	execv(argv[0], argv);
	_exit(127);
}

static bool reap(pid_t pid, int wait_ms)
{
	for (int waited = 0;; waited += 10) {
		pid_t r = waitpid(pid, NULL, WNOHANG);
		if (r == pid || (r < 0 && errno == ECHILD))
			return true;
		if (waited >= wait_ms)
			return false;
		msleep(10);
	}
}

static void log_tail(const char *path, struct shoal_err *err)
{
	_cleanup_free_ char *s = NULL;
	size_t len = 0;
	if (read_file(path, 4 << 20, &s, &len) < 0 || !len)
		return;
	const char *tail = len > 600 ? s + len - 600 : s;
	shoal_err_wrap(err, "%s ends with:\n%s\n", path, tail);
}

static int free_port(void)
{
	_cleanup_close_ int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t l = sizeof(a);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &l) < 0)
		return -errno;
	return ntohs(a.sin_port);
}

static const char *fs_name(const char *path, char *buf, size_t size)
{
	struct statfs st;
	if (statfs(path, &st) < 0)
		return "unknown";
	switch ((unsigned long)st.f_type) {
	case 0x01021994:
		return "tmpfs";
	case 0xEF53:
		return "ext4";
	case 0x9123683E:
		return "btrfs";
	case 0x58465342:
		return "xfs";
	case 0x794c7630:
		return "overlayfs";
	}
	snprintf(buf, size, "0x%lx", (unsigned long)st.f_type);
	return buf;
}

int bcl_procs_init(struct bcl_procs *p, const char *endpoints, struct shoal_err *err)
{
	char self[4096];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n < 0)
		return shoal_err_errno(err, errno, "reading /proc/self/exe");
	self[n] = '\0';
	if (!p->shoald[0])
		snprintf(p->shoald, sizeof(p->shoald), "%s/shoald", dirname(self));
	if (access(p->shoald, X_OK) < 0)
		return shoal_err_errno(err, errno,
				       "%s (the agent, beside this shoal; --shoald PATH names "
				       "another)",
				       p->shoald);
	const char *tmp = getenv("TMPDIR");
	snprintf(p->tmp, sizeof(p->tmp), "%s/%s.XXXXXX", tmp && *tmp ? tmp : "/tmp", label_of(p));
	if (!mkdtemp(p->tmp)) {
		p->tmp[0] = '\0';
		return shoal_err_errno(err, errno, "making a temp dir");
	}
	/* inherited by every process of the run, the agents' container
	 * monitors too, whose command lines name nothing of it */
	setenv(BCL_RUN_ENV, p->tmp, 1);
	/* the agents' addresses, on lo of the namespace this bench made */
	for (size_t i = 0; i < p->n_agents; i++) {
		struct bcl_agent *a = &p->agents[i];
		if (a->addr[0])
			continue;
		snprintf(a->addr, sizeof(a->addr), "10.213.0.%zu", 10 + i);
		char cidr[24];
		snprintf(cidr, sizeof(cidr), "%s/32", a->addr);
		char *const add[] = {"ip", "addr", "add", cidr, "dev", "lo", NULL};
		if (run_wait(add) < 0)
			return shoal_err_set(err, EIO, "ip addr add %s dev lo failed", cidr);
	}
	if (endpoints)
		snprintf(p->endpoints, sizeof(p->endpoints), "%s", endpoints);
	return 0;
}

int bcl_etcd_start(struct bcl_procs *p, struct shoal_err *err)
{
	const char *bin = NULL;
	static const char *const paths[] = {"/usr/bin/etcd", "/usr/local/bin/etcd",
					    "/usr/sbin/etcd"};
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
		if (access(paths[i], X_OK) == 0)
			bin = paths[i];
	if (!bin)
		return shoal_err_set(err, ENOENT,
				     "etcd is not installed (Debian: etcd-server), or give "
				     "--store-endpoints");
	int cport = free_port(), pport = free_port();
	if (cport < 0 || pport < 0 || cport == pport)
		return shoal_err_set(err, EADDRINUSE, "no free ports for etcd on 127.0.0.1");
	snprintf(p->etcd_dir, sizeof(p->etcd_dir), "%s/etcd", p->tmp);
	if (mkdir(p->etcd_dir, 0700) < 0)
		return shoal_err_errno(err, errno, "mkdir %s", p->etcd_dir);
	char data[400], log[400], client[64], peer[64], cluster[96];
	const char *host = p->etcd_addr[0] ? p->etcd_addr : "127.0.0.1";
	snprintf(data, sizeof(data), "%s/data", p->etcd_dir);
	snprintf(log, sizeof(log), "%s/etcd.log", p->etcd_dir);
	snprintf(client, sizeof(client), "http://%s:%d", host, cport);
	snprintf(peer, sizeof(peer), "http://%s:%d", host, pport);
	snprintf(cluster, sizeof(cluster), "bench=%s", peer);
	snprintf(p->endpoints, sizeof(p->endpoints), "%s", client);
	char fsb[32];
	snprintf(p->etcd_fs, sizeof(p->etcd_fs), "%s", fs_name(p->etcd_dir, fsb, sizeof(fsb)));
	char *const argv[] = {(char *)bin, "--name",
			      "bench",	   "--data-dir",
			      data,	   "--listen-client-urls",
			      client,	   "--advertise-client-urls",
			      client,	   "--listen-peer-urls",
			      peer,	   "--initial-advertise-peer-urls",
			      peer,	   "--initial-cluster",
			      cluster,	   NULL};
	p->etcd_pid = spawn(argv, log, NULL);
	if (p->etcd_pid < 0)
		return shoal_err_errno(err, errno, "starting etcd");
	bool ready = false;
	for (int waited = 0; !ready && waited < ETCD_READY_MS; waited += 50) {
		if (bcl_interrupted)
			return shoal_err_set(err, EINTR, "interrupted");
		if (waitpid(p->etcd_pid, NULL, WNOHANG) == p->etcd_pid) {
			p->etcd_pid = 0;
			shoal_err_set(err, EIO, "etcd exited at its start");
			log_tail(log, err);
			return -EIO;
		}
		struct bcl_metrics m = {0};
		struct shoal_err e = {0};
		if (bcl_metrics_read(p->endpoints, &m, &e) == 0) {
			json_decref(m.by_method);
			ready = true;
			break;
		}
		msleep(50);
	}
	if (!ready) {
		shoal_err_set(err, ETIMEDOUT, "etcd did not answer within %d s",
			      ETCD_READY_MS / 1000);
		log_tail(log, err);
		return -ETIMEDOUT;
	}
	/* the version, for the report */
	FILE *f = popen("etcd --version 2>/dev/null", "re");
	if (f) {
		char line[128];
		if (fgets(line, sizeof(line), f) && str_has_prefix(line, "etcd Version: "))
			snprintf(p->etcd_version, sizeof(p->etcd_version), "%.*s",
				 (int)strcspn(line + 14, "\n"), line + 14);
		pclose(f);
	}
	return 0;
}

int bcl_agent_start(struct bcl_procs *p, size_t i, struct shoal_err *err)
{
	struct bcl_agent *a = &p->agents[i];
	char ttl[16], datadir[400], rundir[400], log[400];
	if (!a->dir[0]) {
		char d[sizeof(a->dir)], sock[sizeof(a->sock)];
		snprintf(d, sizeof(d), "%s/agent%zu", p->tmp, i);
		snprintf(sock, sizeof(sock), "%s/shoal.sock", d);
		memcpy(a->dir, d, sizeof(d));
		memcpy(a->sock, sock, sizeof(sock));
		if (mkdir(a->dir, 0700) < 0)
			return shoal_err_errno(err, errno, "mkdir %s", a->dir);
		snprintf(a->cgroup_parent, sizeof(a->cgroup_parent), "/%s-%d-a%zu", label_of(p),
			 (int)getpid(), i);
		snprintf(a->bpffs_dir, sizeof(a->bpffs_dir), "/sys/fs/bpf/%s-%d-a%zu", label_of(p),
			 (int)getpid(), i);
		snprintf(a->prefix, sizeof(a->prefix), "bc%03d%zu", (int)getpid() % 1000, i);
		char host[320];
		snprintf(host, sizeof(host), "unix://%s", a->sock);
		a->ctx.host = strdup(host);
		if (!a->ctx.host || cli_http_parse_host(a->ctx.host, a->ctx.sock_path,
							sizeof(a->ctx.sock_path)) < 0)
			return shoal_err_set(err, ENAMETOOLONG, "%s: too long for a socket",
					     a->sock);
		snprintf(a->ctx.cmdpath, sizeof(a->ctx.cmdpath), "shoal bench cluster");
	} else {
		a->restarts++;
	}
	snprintf(ttl, sizeof(ttl), "%d", p->ttl_s);
	snprintf(datadir, sizeof(datadir), "%s/data", a->dir);
	snprintf(rundir, sizeof(rundir), "%s/run", a->dir);
	snprintf(log, sizeof(log), "%s/shoald.log", a->dir);
	char *const argv[] = {
		p->shoald,	  "--data-dir",	      datadir,	    "--run-dir",
		rundir,		  "--socket",	      a->sock,	    "--cgroup-parent",
		a->cgroup_parent, "--bpffs-dir",      a->bpffs_dir, "--device-prefix",
		a->prefix,	  "--store",	      "etcd",	    "--store-endpoints",
		p->endpoints,	  "--advertise-addr", a->addr,	    "--role",
		"manager",	  "--node-ttl",	      ttl,	    NULL};
	a->pid = spawn(argv, log, a->netns);
	if (a->pid < 0) {
		a->pid = 0;
		return shoal_err_errno(err, errno, "starting shoald");
	}
	for (int waited = 0; waited < AGENT_READY_MS; waited += 50) {
		if (bcl_interrupted)
			return shoal_err_set(err, EINTR, "interrupted");
		if (waitpid(a->pid, NULL, WNOHANG) == a->pid) {
			a->pid = 0;
			shoal_err_set(err, EIO, "agent %zu (shoald) exited at its start", i);
			log_tail(log, err);
			return -EIO;
		}
		int status = 0;
		json_t *j = NULL;
		if (access(a->sock, F_OK) == 0 &&
		    cli_call_json(&a->ctx, "GET", "/version", NULL, &status, &j, NULL) >= 0 &&
		    status == 200) {
			json_decref(j);
			char path[512];
			snprintf(path, sizeof(path), "%s/node-id", datadir);
			_cleanup_free_ char *id = NULL;
			if (read_file(path, 128, &id, NULL) < 0 || strlen(id) < 64)
				return shoal_err_set(err, EIO, "agent %zu wrote no node id", i);
			snprintf(a->node_id, sizeof(a->node_id), "%.64s", id);
			return 0;
		}
		json_decref(j);
		msleep(50);
	}
	shoal_err_set(err, ETIMEDOUT, "agent %zu did not answer within %d s", i,
		      AGENT_READY_MS / 1000);
	log_tail(log, err);
	return -ETIMEDOUT;
}

void bcl_agent_kill9(struct bcl_procs *p, size_t i)
{
	struct bcl_agent *a = &p->agents[i];
	if (a->pid <= 0)
		return;
	kill(a->pid, SIGKILL);
	reap(a->pid, 5000);
	a->pid = 0;
}

void bcl_agent_stop(struct bcl_procs *p, size_t i)
{
	struct bcl_agent *a = &p->agents[i];
	if (a->pid <= 0)
		return;
	kill(a->pid, SIGTERM);
	if (!reap(a->pid, AGENT_STOP_MS)) {
		kill(a->pid, SIGKILL);
		reap(a->pid, 5000);
	}
	a->pid = 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	if (flag == FTW_DP || flag == FTW_D)
		rmdir(path);
	else
		unlink(path);
	return 0;
}

/* A cgroup under every hierarchy (v1 controllers, the v2 tree), children
 * first: cgroupfs refuses a non-empty rmdir. */
static void cgroup_remove(const char *parent)
{
	static const char root[] = "/sys/fs/cgroup";
	char path[512];
	struct stat st;
	snprintf(path, sizeof(path), "%s%s", root, parent);
	if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode))
		nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	_cleanup_closedir_ DIR *d = opendir(root);
	for (struct dirent *de; d && (de = readdir(d));) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s%s", root, de->d_name, parent);
		if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode))
			nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	}
}

/* Mounts under dir (a run dir's namespace files), deepest first. */
static void unmount_under(const char *dir)
{
	for (int pass = 0; pass < 1024; pass++) {
		FILE *f = fopen("/proc/self/mounts", "re");
		if (!f)
			return;
		char line[4096], found[4096] = "";
		size_t len = strlen(dir);
		while (fgets(line, sizeof(line), f)) {
			char *mp = strchr(line, ' ');
			if (!mp)
				continue;
			mp++;
			mp[strcspn(mp, " ")] = '\0';
			if (strncmp(mp, dir, len) == 0 && strlen(mp) > strlen(found))
				snprintf(found, sizeof(found), "%s", mp);
		}
		fclose(f);
		if (!found[0] || umount2(found, MNT_DETACH) < 0)
			return;
	}
}

/* Adds the pids of a cgroup tree's cgroup.procs files to pids. */
static void cgroup_pids(const char *dir, pid_t *pids, size_t *n, size_t cap)
{
	_cleanup_closedir_ DIR *d = opendir(dir);
	for (struct dirent *de; d && (de = readdir(d));) {
		char path[1024];
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (de->d_type == DT_DIR) {
			cgroup_pids(path, pids, n, cap);
		} else if (strcmp(de->d_name, "cgroup.procs") == 0) {
			FILE *f = fopen(path, "re");
			long v;
			while (f && *n < cap && fscanf(f, "%ld", &v) == 1)
				pids[(*n)++] = (pid_t)v;
			if (f)
				fclose(f);
		}
	}
}

/* What an agent leaves running on purpose (containers outlive it, and so do
 * their monitors): every process in its cgroups, and every process whose
 * command line names the temp dir or whose environment carries the run's
 * mark, killed. */
static void kill_leftovers(struct bcl_procs *p)
{
	enum { CAP = 4096 };
	pid_t *pids = calloc(CAP, sizeof(*pids));
	if (!pids)
		return;
	for (int pass = 0; pass < 20; pass++) {
		size_t n = 0;
		for (size_t i = 0; i < p->n_agents; i++) {
			const char *cg = p->agents[i].cgroup_parent;
			if (!cg[0])
				continue;
			char path[512];
			snprintf(path, sizeof(path), "/sys/fs/cgroup%s", cg);
			cgroup_pids(path, pids, &n, CAP);
			_cleanup_closedir_ DIR *d = opendir("/sys/fs/cgroup");
			for (struct dirent *de; d && (de = readdir(d));) {
				if (de->d_name[0] == '.')
					continue;
				snprintf(path, sizeof(path), "/sys/fs/cgroup/%s%s", de->d_name, cg);
				cgroup_pids(path, pids, &n, CAP);
			}
		}
		_cleanup_closedir_ DIR *d = p->tmp[0] ? opendir("/proc") : NULL;
		for (struct dirent *de; d && (de = readdir(d)) && n < CAP;) {
			char path[300];
			pid_t pid = (pid_t)atoi(de->d_name);
			if (pid <= 0 || pid == getpid())
				continue;
			snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
			_cleanup_free_ char *cmd = NULL;
			size_t len = 0;
			if (read_file(path, 1 << 16, &cmd, &len) < 0 || !len)
				continue;
			for (size_t k = 0; k < len; k++)
				if (!cmd[k])
					cmd[k] = ' ';
			if (strstr(cmd, p->tmp)) {
				pids[n++] = pid;
				continue;
			}
			snprintf(path, sizeof(path), "/proc/%d/environ", (int)pid);
			_cleanup_free_ char *env = NULL;
			if (read_file(path, 1 << 20, &env, &len) < 0)
				continue;
			for (size_t k = 0; k < len; k += strlen(env + k) + 1)
				if (str_has_prefix(env + k, BCL_RUN_ENV "=") &&
				    strcmp(env + k + strlen(BCL_RUN_ENV) + 1, p->tmp) == 0)
					pids[n++] = pid;
		}
		size_t killed = 0;
		for (size_t k = 0; k < n; k++)
			if (pids[k] > 0 && pids[k] != getpid() && kill(pids[k], SIGKILL) == 0)
				killed++;
		for (size_t k = 0; k < n; k++)
			waitpid(pids[k], NULL, WNOHANG);
		if (!killed)
			break;
		msleep(50);
	}
	free(pids);
}

void bcl_procs_cleanup(struct bcl_procs *p)
{
	for (size_t i = 0; i < p->n_agents; i++)
		bcl_agent_stop(p, i);
	if (p->etcd_pid > 0) {
		kill(p->etcd_pid, SIGTERM);
		if (!reap(p->etcd_pid, 5000)) {
			kill(p->etcd_pid, SIGKILL);
			reap(p->etcd_pid, 5000);
		}
		p->etcd_pid = 0;
	}
	kill_leftovers(p);
	for (size_t i = 0; i < p->n_agents; i++) {
		struct bcl_agent *a = &p->agents[i];
		if (a->cgroup_parent[0])
			cgroup_remove(a->cgroup_parent);
		if (a->bpffs_dir[0])
			nftw(a->bpffs_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
		free((char *)a->ctx.host);
		a->ctx.host = NULL;
	}
	if (p->tmp[0]) {
		unmount_under(p->tmp);
		rm_rf(p->tmp);
		p->tmp[0] = '\0';
	}
}

/* ---- etcd's counters ---- */

static size_t grow_cb(char *data, size_t size, size_t n, void *arg)
{
	char **buf = arg;
	size_t add = size * n, have = *buf ? strlen(*buf) : 0;
	if (have + add > METRICS_MAX)
		return 0;
	char *nb = realloc(*buf, have + add + 1);
	if (!nb)
		return 0;
	memcpy(nb + have, data, add);
	nb[have + add] = '\0';
	*buf = nb;
	return add;
}

int bcl_metrics_read(const char *endpoints, struct bcl_metrics *ret, struct shoal_err *err)
{
	char url[600];
	snprintf(url, sizeof(url), "%.*s/metrics", (int)strcspn(endpoints, ","), endpoints);
	CURL *h = curl_easy_init();
	if (!h)
		return shoal_err_set(err, ENOMEM, "out of memory");
	_cleanup_free_ char *body = NULL;
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, grow_cb);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &body);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 3000L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	CURLcode rc = curl_easy_perform(h);
	long code = 0;
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
	curl_easy_cleanup(h);
	if (rc != CURLE_OK || code != 200 || !body)
		return shoal_err_set(err, EIO, "GET %s: %s", url,
				     rc != CURLE_OK ? curl_easy_strerror(rc) : "no answer");
	struct bcl_metrics m = {.by_method = json_object()};
	for (char *l = body, *next; l && *l; l = next) {
		next = strchr(l, '\n');
		if (next)
			*next++ = '\0';
		char *sp = strrchr(l, ' ');
		if (!sp || *l == '#')
			continue;
		double v = strtod(sp + 1, NULL);
		if (str_has_prefix(l, "etcd_network_client_grpc_received_bytes_total "))
			m.bytes_in = v;
		else if (str_has_prefix(l, "etcd_network_client_grpc_sent_bytes_total "))
			m.bytes_out = v;
		else if (str_has_prefix(l, "grpc_server_msg_received_total{") && v > 0) {
			m.requests += v;
			const char *meth = strstr(l, "grpc_method=\"");
			if (meth && m.by_method) {
				meth += strlen("grpc_method=\"");
				char name[64];
				snprintf(name, sizeof(name), "%.*s", (int)strcspn(meth, "\""),
					 meth);
				json_object_set_new(m.by_method, name, json_real(v));
			}
		}
	}
	*ret = m;
	return 0;
}
