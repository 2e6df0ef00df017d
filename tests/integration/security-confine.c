// SPDX-License-Identifier: Apache-2.0
/*
 * End to end confinement of a real process, in the order the container child
 * uses: join the cgroups, read the seccomp program, keep capabilities across
 * setuid, rt_caps_apply(), no_new_privs, install the filter, execve. The exec'd busybox reports
 * what the kernel says about it (/proc/self/status, /proc/self/cgroup) and tries a few things it
 * must not be able to do.
 *
 * Exit 0 = pass, 1 = fail, 77 = skipped (not root, no busybox).
 */
#include <errno.h>
#include <grp.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/capability.h>

#include "lib/cleanup.h"
#include "lib/util.h"
#include "runtime/caps.h"
#include "runtime/cgroup.h"
#include "runtime/seccomp.h"

#define BUSYBOX "/bin/busybox"
#define BIT(n)	(UINT64_C(1) << (n))

static char tmpdir[64];
static char parent[64];
static struct rt_cgroup *cg;
static pid_t child = -1;

static void cleanup(void)
{
	if (child > 0) {
		kill(child, SIGKILL);
		waitpid(child, NULL, 0);
		child = -1;
	}
	if (cg) {
		rt_cgroup_destroy(cg, NULL);
		rt_cgroup_free(cg);
		cg = NULL;
	}
	if (parent[0])
		rt_cgroup_parent_remove(parent, NULL);
	if (tmpdir[0])
		rm_rf(tmpdir);
}

static void __attribute__((noreturn, format(printf, 1, 2))) fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "FAIL: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	cleanup();
	exit(1);
}

static const char script[] =
	"grep -E '^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp):' /proc/self/status\n"
	"cat /proc/self/cgroup\n"
	"hostname shoal-must-not 2>/dev/null; echo hostname=$?\n"
	"mount -t tmpfs none /mnt 2>/dev/null; echo mount=$?\n"
	/* The shell and its children work under the filter: fork, exec, pipes. */
	"echo piped | cat | cat\n";

/* Child side: never returns. */
static void run_child(int out_fd, uid_t uid, uint64_t mask, const char *filter)
{
	static char prog[RT_SECCOMP_FILE_MAX];
	size_t prog_len;
	struct shoal_err err = {};
	if (dup2(out_fd, 1) < 0)
		_exit(120);
	/* Read while still root: a reduced set cannot open the agent's file. */
	if (rt_seccomp_read_file(filter, prog, sizeof(prog), &prog_len, &err) < 0) {
		fprintf(stderr, "child: %s\n", err.msg);
		_exit(118);
	}
	if (uid != 0) {
		if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0 || setgroups(0, NULL) < 0 ||
		    setresgid(uid, uid, uid) < 0 || setresuid(uid, uid, uid) < 0)
			_exit(121);
	}
	if (rt_caps_apply(mask, &err) < 0) {
		fprintf(stderr, "child: %s\n", err.msg);
		_exit(122);
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		_exit(123);
	if (rt_seccomp_install(prog, prog_len, &err) < 0) {
		fprintf(stderr, "child: %s\n", err.msg);
		_exit(124);
	}
	char *const argv[] = {"sh", "-c", (char *)script, NULL};
	char *const envp[] = {"PATH=/bin", NULL};
	execve(BUSYBOX, argv, envp);
	_exit(125);
}

static bool has_line(const char *out, const char *line)
{
	size_t n = strlen(line);
	for (const char *p = out; (p = strstr(p, line)); p += n)
		if ((p == out || p[-1] == '\n') && (p[n] == '\n' || p[n] == '\0'))
			return true;
	return false;
}

static void expect_line(const char *out, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (!has_line(out, line))
		fail("expected line \"%s\" in:\n%s", line, out);
}

static void run_case(const char *name, uid_t uid, uint64_t mask, const char *filter)
{
	struct shoal_err err = {};
	struct rt_cgroup_limits lim = {.memory = 64 * 1024 * 1024, .pids_limit = 64};
	if (rt_cgroup_create(parent, name, &lim, &cg, &err) < 0)
		fail("%s: create cgroup: %s", name, err.msg);

	int out[2], go[2];
	if (pipe(out) < 0 || pipe(go) < 0)
		fail("pipe: %m");
	child = fork();
	if (child < 0)
		fail("fork: %m");
	if (child == 0) {
		char c;
		close(out[0]);
		close(go[1]);
		if (read(go[0], &c, 1) != 1)
			_exit(119);
		run_child(out[1], uid, mask, filter);
	}
	close(out[1]);
	close(go[0]);
	if (rt_cgroup_attach(cg, child, &err) < 0)
		fail("%s: attach: %s", name, err.msg);
	if (write(go[1], "x", 1) != 1)
		fail("release child: %m");
	close(go[1]);

	char buf[8192];
	size_t len = 0;
	for (;;) {
		ssize_t k = read(out[0], buf + len, sizeof(buf) - 1 - len);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			break;
		len += (size_t)k;
		if (len == sizeof(buf) - 1)
			break;
	}
	buf[len] = '\0';
	close(out[0]);
	int status;
	if (waitpid(child, &status, 0) != child)
		fail("waitpid: %m");
	child = -1;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fail("%s: child status 0x%x, output:\n%s", name, status, buf);

	/* Capabilities as the kernel reports them after execve. */
	/* As Docker's spec under runc: a non-root uid holds nothing, only the
	 * bounding set; nobody gets inheritable or ambient capabilities. */
	uint64_t held = uid == 0 ? mask : 0;
	expect_line(buf, "CapInh:\t%016" PRIx64, (uint64_t)0);
	expect_line(buf, "CapPrm:\t%016" PRIx64, held);
	expect_line(buf, "CapEff:\t%016" PRIx64, held);
	expect_line(buf, "CapBnd:\t%016" PRIx64, mask);
	expect_line(buf, "CapAmb:\t%016" PRIx64, (uint64_t)0);
	expect_line(buf, "NoNewPrivs:\t1");
	expect_line(buf, "Seccomp:\t2");
	/* Denied by capabilities and by the filter. */
	if (has_line(buf, "hostname=0"))
		fail("%s: sethostname succeeded", name);
	if (has_line(buf, "mount=0"))
		fail("%s: mount succeeded", name);
	expect_line(buf, "piped");

	/* In the container cgroup of every hierarchy it uses. */
	const char *ctrls[] = {"memory", "cpu", "pids", ""};
	for (size_t i = 0; i < ARRAY_SIZE(ctrls); i++) {
		const char *p = rt_cgroup_path(cg, ctrls[i]);
		if (!p)
			continue;
		char want[256];
		snprintf(want, sizeof(want), "%s/%s", parent, name);
		if (!strstr(buf, want))
			fail("%s: %s not in /proc/self/cgroup:\n%s", name, want, buf);
	}

	char saved[4096];
	snprintf(saved, sizeof(saved), "%s", rt_cgroup_path(cg, "memory") ?: "");
	if (rt_cgroup_destroy(cg, &err) < 0)
		fail("%s: destroy: %s", name, err.msg);
	rt_cgroup_free(cg);
	cg = NULL;
	if (saved[0] && access(saved, F_OK) == 0)
		fail("%s: %s still exists after destroy", name, saved);
	printf("ok - %s\n", name);
}

int main(void)
{
	if (geteuid() != 0) {
		printf("SKIP: needs root\n");
		return 77;
	}
	if (access(BUSYBOX, X_OK) != 0) {
		printf("SKIP: %s missing\n", BUSYBOX);
		return 77;
	}
	struct shoal_err err = {};
	strcpy(tmpdir, "/tmp/shoal-itest-sec-XXXXXX");
	if (!mkdtemp(tmpdir)) {
		tmpdir[0] = '\0';
		fail("mkdtemp: %m");
	}
	snprintf(parent, sizeof(parent), "/shoal-itest-sec-%d", (int)getpid());
	if (rt_cgroup_parent_prepare(parent, NULL, 0, &err) < 0)
		fail("parent: %s", err.msg);

	char filter[128];
	snprintf(filter, sizeof(filter), "%s/default.bpf", tmpdir);
	if (rt_seccomp_compile_caps(filter, rt_caps_default(), &err) < 0)
		fail("compile: %s", err.msg);

	run_case("root-default", 0, rt_caps_default(), filter);
	run_case("user-default", 1000, rt_caps_default(), filter);
	uint64_t less = 0;
	const char *drop[] = {"ALL", NULL};
	const char *add[] = {"NET_BIND_SERVICE", NULL};
	if (rt_caps_compute(add, drop, false, &less, &err) < 0)
		fail("compute: %s", err.msg);
	run_case("user-bind-only", 1000, less, filter);

	if (rt_cgroup_parent_remove(parent, &err) < 0)
		fail("parent remove: %s", err.msg);
	parent[0] = '\0';
	cleanup();
	return 0;
}
