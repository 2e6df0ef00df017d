// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "lib/util.h"
#include "tests/unit/etcd-fixture.h"

#define LIVE_MAX     8
#define READY_WAIT_S 20

/* Members still running, for the exit and signal handlers. */
static struct etcd_fixture *live[LIVE_MAX];
static bool handlers_set;

static void cleanup_all(void)
{
	for (size_t i = 0; i < LIVE_MAX; i++) {
		struct etcd_fixture *f = live[i];
		if (!f)
			continue;
		if (f->pid > 0) {
			kill(f->pid, SIGKILL);
			waitpid(f->pid, NULL, 0);
			f->pid = 0;
		}
		if (f->dir[0])
			rm_rf(f->dir);
		live[i] = NULL;
	}
}

static void on_signal(int sig)
{
	cleanup_all();
	signal(sig, SIG_DFL);
	raise(sig);
}

static void track(struct etcd_fixture *f, bool on)
{
	if (!handlers_set) {
		/* A failed assertion returns to teardown; these cover an abort or a kill. A
		 * crash stays with cmocka's and the sanitizers' handlers, and the member
		 * still dies with the process (PR_SET_PDEATHSIG). */
		atexit(cleanup_all);
		signal(SIGABRT, on_signal);
		signal(SIGTERM, on_signal);
		signal(SIGINT, on_signal);
		handlers_set = true;
	}
	for (size_t i = 0; i < LIVE_MAX; i++) {
		if (on && !live[i]) {
			live[i] = f;
			return;
		}
		if (!on && live[i] == f) {
			live[i] = NULL;
			return;
		}
	}
}

int etcd_fixture_free_port(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &len) < 0) {
		int r = -errno;
		close(fd);
		return r;
	}
	close(fd);
	return ntohs(a.sin_port);
}

static int run_sh(const char *dir, const char *script)
{
	char cmd[4096];
	snprintf(cmd, sizeof(cmd), "cd '%s' && { %s ; } >>'%s/setup.log' 2>&1", dir, script, dir);
	int st = system(cmd);
	if (st != 0) {
		fprintf(stderr, "etcd fixture: failed (status %d): %s; see %s/setup.log\n", st,
			script, dir);
		return -EIO;
	}
	return 0;
}

static int make_certs(struct etcd_fixture *f)
{
	/* EC keys: quick to make. Server and client share the CA; the server's name is its
	 * address. */
	static const char script[] =
		"set -e; K='-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes';"
		"openssl req -x509 $K -keyout ca.key -out ca.pem -days 1 -subj /CN=shoal-test-ca;"
		"printf 'subjectAltName=IP:127.0.0.1\\nextendedKeyUsage=serverAuth,clientAuth\\n' "
		"> server.ext;"
		"printf 'extendedKeyUsage=clientAuth\\n' > client.ext;"
		"for n in server client; do"
		" openssl req $K -keyout $n.key -out $n.csr -subj /CN=$n;"
		" openssl x509 -req -in $n.csr -CA ca.pem -CAkey ca.key -CAcreateserial"
		" -days 1 -out $n.pem -extfile $n.ext;"
		"done";
	int r = run_sh(f->dir, script);
	if (r < 0)
		return r;
	snprintf(f->cacert, sizeof(f->cacert), "%s/ca.pem", f->dir);
	snprintf(f->cert, sizeof(f->cert), "%s/client.pem", f->dir);
	snprintf(f->key, sizeof(f->key), "%s/client.key", f->dir);
	return 0;
}

static size_t discard(char *p, size_t size, size_t nmemb, void *userdata)
{
	long *got = userdata;
	*got += (long)(size * nmemb);
	return size * nmemb;
}

/* One range request answered with 200: the member serves. */
static bool serving(struct etcd_fixture *f)
{
	char url[128];
	long status = 0, got = 0;
	CURL *h = curl_easy_init();
	if (!h)
		return false;
	snprintf(url, sizeof(url), "%s/v3/kv/range", f->url);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, "{\"key\":\"AA==\"}");
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 1000L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &got);
	if (f->tls) {
		curl_easy_setopt(h, CURLOPT_CAINFO, f->cacert);
		curl_easy_setopt(h, CURLOPT_SSLCERT, f->cert);
		curl_easy_setopt(h, CURLOPT_SSLKEY, f->key);
	}
	CURLcode rc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(h);
	/* With auth enabled an anonymous read is refused (400), which also says it serves. */
	return rc == CURLE_OK && (status == 200 || status == 400) && got > 0;
}

/* The end of etcd's log, which says why it did not come up. */
static void print_log_tail(const char *log)
{
	char *text = NULL;
	size_t len = 0;
	if (read_file(log, 1 << 20, &text, &len) < 0)
		return;
	const char *tail = len > 1500 ? text + len - 1500 : text;
	fprintf(stderr, "etcd fixture: the end of %s:\n%s\n", log, tail);
	free(text);
}

static bool log_says(const char *log, const char *what)
{
	char *text = NULL;
	size_t len = 0;
	if (read_file(log, 1 << 20, &text, &len) < 0)
		return false;
	bool found = strstr(text, what) != NULL;
	free(text);
	return found;
}

static int spawn(struct etcd_fixture *f)
{
	char data[192], log[192], server_cert[192], server_key[192];
	snprintf(data, sizeof(data), "%s/data", f->dir);
	snprintf(log, sizeof(log), "%s/etcd.log", f->dir);
	snprintf(server_cert, sizeof(server_cert), "%s/server.pem", f->dir);
	snprintf(server_key, sizeof(server_key), "%s/server.key", f->dir);
	char cluster[128];
	snprintf(cluster, sizeof(cluster), "t=%s", f->peer_url);

	const char *argv[40] = {
		"etcd",
		"--name",
		"t",
		"--data-dir",
		data,
		"--listen-client-urls",
		f->url,
		"--advertise-client-urls",
		f->url,
		"--listen-peer-urls",
		f->peer_url,
		"--initial-advertise-peer-urls",
		f->peer_url,
		"--initial-cluster",
		cluster,
		"--logger",
		"zap",
		"--log-level",
		"warn",
		/* Room for the store's largest value (1.5 MiB) and its key in one request. */
		"--max-request-bytes",
		"4194304",
	};
	size_t n = 21;
	if (f->tls) {
		argv[n++] = "--cert-file";
		argv[n++] = server_cert;
		argv[n++] = "--key-file";
		argv[n++] = server_key;
		argv[n++] = "--trusted-ca-file";
		argv[n++] = f->cacert;
		argv[n++] = "--client-cert-auth";
	}
	argv[n] = NULL;

	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		/* The member must not outlive a test process that crashed. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execvp("etcd", (char *const *)argv);
		fprintf(stderr, "exec etcd: %s\n", strerror(errno));
		_exit(127);
	}
	f->pid = pid;

	struct timespec t0, now;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		int st;
		if (waitpid(pid, &st, WNOHANG) == pid) {
			f->pid = 0;
			fprintf(stderr, "etcd fixture: etcd exited (status %d) before serving\n",
				st);
			print_log_tail(log);
			return log_says(log, "address already in use") ? -EADDRINUSE : -ECHILD;
		}
		if (serving(f))
			return 0;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec - t0.tv_sec > READY_WAIT_S) {
			fprintf(stderr, "etcd fixture: etcd does not serve at %s\n", f->url);
			print_log_tail(log);
			return -ETIMEDOUT;
		}
		usleep(20 * 1000);
	}
}

int etcd_fixture_start(struct etcd_fixture *f, bool tls)
{
	*f = (struct etcd_fixture){.tls = tls};
	/* tmpfs when there is one: etcd syncs every write, which the tests need not pay for. */
	const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
	snprintf(f->dir, sizeof(f->dir), "%s/test-store-etcd-XXXXXX", base);
	if (!mkdtemp(f->dir)) {
		int r = -errno;
		f->dir[0] = '\0';
		return r;
	}
	track(f, true);
	if (tls) {
		int r = make_certs(f);
		if (r < 0)
			return r;
	}
	int r = -EADDRINUSE;
	/* A port found free may be taken before etcd binds it: then other ports. */
	for (int attempt = 0; attempt < 3 && r == -EADDRINUSE; attempt++) {
		int cp = etcd_fixture_free_port(), pp = etcd_fixture_free_port();
		if (cp < 0 || pp < 0)
			return cp < 0 ? cp : pp;
		snprintf(f->url, sizeof(f->url), "%s://127.0.0.1:%d", tls ? "https" : "http", cp);
		snprintf(f->peer_url, sizeof(f->peer_url), "http://127.0.0.1:%d", pp);
		r = spawn(f);
		if (r < 0) {
			char path[192];
			snprintf(path, sizeof(path), "%s/data", f->dir);
			rm_rf(path);
			snprintf(path, sizeof(path), "%s/etcd.log", f->dir);
			unlink(path);
		}
	}
	return r;
}

void etcd_fixture_kill(struct etcd_fixture *f)
{
	if (f->pid > 0) {
		kill(f->pid, SIGKILL);
		waitpid(f->pid, NULL, 0);
		f->pid = 0;
	}
}

int etcd_fixture_restart(struct etcd_fixture *f)
{
	etcd_fixture_kill(f);
	return spawn(f);
}

void etcd_fixture_destroy(struct etcd_fixture *f)
{
	etcd_fixture_kill(f);
	if (f->dir[0])
		rm_rf(f->dir);
	track(f, false);
	f->dir[0] = '\0';
}

int etcd_fixture_ctl(struct etcd_fixture *f, const char *const *args)
{
	char script[1024];
	int n = snprintf(script, sizeof(script), "ETCDCTL_API=3 etcdctl --endpoints=%s", f->url);
	if (f->tls)
		n += snprintf(script + n, sizeof(script) - (size_t)n,
			      " --cacert=%s --cert=%s --key=%s", f->cacert, f->cert, f->key);
	for (size_t i = 0; args[i]; i++)
		n += snprintf(script + n, sizeof(script) - (size_t)n, " '%s'", args[i]);
	return run_sh(f->dir, script);
}
