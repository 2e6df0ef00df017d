// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/capability.h>

#include <cmocka.h>

#include "runtime/caps.h"

#define BIT(n) (UINT64_C(1) << (n))

static void test_names(void **state)
{
	struct shoal_err err = {};
	int cap = -1;

	assert_int_equal(rt_cap_from_name("NET_ADMIN", &cap, &err), 0);
	assert_int_equal(cap, CAP_NET_ADMIN);
	cap = -1;
	assert_int_equal(rt_cap_from_name("CAP_NET_ADMIN", &cap, &err), 0);
	assert_int_equal(cap, CAP_NET_ADMIN);
	cap = -1;
	assert_int_equal(rt_cap_from_name("net_admin", &cap, &err), 0);
	assert_int_equal(cap, CAP_NET_ADMIN);
	assert_int_equal(rt_cap_from_name("cap_sys_admin", &cap, &err), 0);
	assert_int_equal(cap, CAP_SYS_ADMIN);
	assert_int_equal(rt_cap_from_name("CHOWN", &cap, &err), 0);
	assert_int_equal(cap, 0);

	assert_string_equal(rt_cap_to_name(CAP_NET_ADMIN), "CAP_NET_ADMIN");
	assert_string_equal(rt_cap_to_name(CAP_CHOWN), "CAP_CHOWN");
	assert_string_equal(rt_cap_to_name(CAP_AUDIT_WRITE), "CAP_AUDIT_WRITE");
	assert_null(rt_cap_to_name(-1));
	assert_null(rt_cap_to_name(64));

	/* Every name of this kernel's capabilities round-trips. */
	for (int i = 0; i <= rt_cap_last() && rt_cap_to_name(i); i++) {
		assert_int_equal(rt_cap_from_name(rt_cap_to_name(i), &cap, &err), 0);
		assert_int_equal(cap, i);
	}
}

static void test_bad_name(void **state)
{
	struct shoal_err err = {};
	int cap = 1234;
	assert_int_equal(rt_cap_from_name("NET_ADMINX", &cap, &err), -EINVAL);
	assert_int_equal(cap, 1234);
	assert_int_equal(err.code, EINVAL);
	assert_int_equal(err.status, 400);
	assert_non_null(strstr(err.msg, "NET_ADMINX"));
	assert_int_equal(rt_cap_from_name("", &cap, &err), -EINVAL);
	assert_int_equal(rt_cap_from_name("CAP_", &cap, &err), -EINVAL);

	uint64_t mask = 77;
	const char *add[] = {"NET_ADMIN", "bogus", NULL};
	assert_int_equal(rt_caps_compute(add, NULL, false, &mask, &err), -EINVAL);
	assert_int_equal(mask, 77);
	assert_non_null(strstr(err.msg, "bogus"));
}

static void test_all(void **state)
{
	int last;
	FILE *f = fopen("/proc/sys/kernel/cap_last_cap", "r");
	assert_non_null(f);
	assert_int_equal(fscanf(f, "%d", &last), 1);
	fclose(f);
	assert_int_equal(rt_cap_last(), last);
	uint64_t all = rt_caps_all();
	for (int i = 0; i < 64; i++)
		assert_int_equal(!!(all & BIT(i)), i <= last);
}

static void test_default(void **state)
{
	uint64_t d = rt_caps_default();
	const int expect[] = {CAP_CHOWN,   CAP_DAC_OVERRIDE, CAP_FSETID,	   CAP_FOWNER,
			      CAP_MKNOD,   CAP_NET_RAW,	     CAP_SETGID,	   CAP_SETUID,
			      CAP_SETFCAP, CAP_SETPCAP,	     CAP_NET_BIND_SERVICE, CAP_SYS_CHROOT,
			      CAP_KILL,	   CAP_AUDIT_WRITE};
	uint64_t m = 0;
	for (size_t i = 0; i < sizeof(expect) / sizeof(expect[0]); i++)
		m |= BIT(expect[i]);
	assert_int_equal(d, m);
	assert_false(d & BIT(CAP_SYS_ADMIN));
	assert_false(d & BIT(CAP_NET_ADMIN));
}

static void test_compute(void **state)
{
	struct shoal_err err = {};
	uint64_t m;

	assert_int_equal(rt_caps_compute(NULL, NULL, false, &m, &err), 0);
	assert_int_equal(m, rt_caps_default());

	const char *add[] = {"NET_ADMIN", "CAP_SYS_PTRACE", NULL};
	const char *drop[] = {"chown", "CAP_NET_RAW", NULL};
	assert_int_equal(rt_caps_compute(add, drop, false, &m, &err), 0);
	assert_int_equal(m, (rt_caps_default() | BIT(CAP_NET_ADMIN) | BIT(CAP_SYS_PTRACE)) &
				    ~(BIT(CAP_CHOWN) | BIT(CAP_NET_RAW)));

	/* An add wins over a drop of the same capability, as in Docker. */
	const char *add_kill[] = {"KILL", NULL};
	const char *drop_kill[] = {"KILL", NULL};
	assert_int_equal(rt_caps_compute(add_kill, drop_kill, false, &m, &err), 0);
	assert_true(m & BIT(CAP_KILL));

	const char *all[] = {"ALL", NULL};
	const char *drop_admin[] = {"SYS_ADMIN", NULL};
	assert_int_equal(rt_caps_compute(all, drop_admin, false, &m, &err), 0);
	assert_int_equal(m, rt_caps_all() & ~BIT(CAP_SYS_ADMIN));

	const char *add_bind[] = {"NET_BIND_SERVICE", NULL};
	const char *drop_all[] = {"all", NULL};
	assert_int_equal(rt_caps_compute(add_bind, drop_all, false, &m, &err), 0);
	assert_int_equal(m, BIT(CAP_NET_BIND_SERVICE));
	assert_int_equal(rt_caps_compute(NULL, drop_all, false, &m, &err), 0);
	assert_int_equal(m, 0);

	/* Privileged: every capability, lists ignored. */
	assert_int_equal(rt_caps_compute(NULL, drop_all, true, &m, &err), 0);
	assert_int_equal(m, rt_caps_all());
}

static void test_format(void **state)
{
	char buf[1024];
	int n = rt_caps_format(BIT(CAP_CHOWN) | BIT(CAP_KILL) | BIT(CAP_NET_ADMIN), buf,
			       sizeof(buf));
	assert_string_equal(buf, "CAP_CHOWN,CAP_KILL,CAP_NET_ADMIN");
	assert_int_equal(n, (int)strlen(buf));
	assert_int_equal(rt_caps_format(0, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "");
	char small[12];
	assert_int_equal(rt_caps_format(BIT(CAP_CHOWN) | BIT(CAP_KILL), small, sizeof(small)),
			 -ENOBUFS);
	assert_true(rt_caps_format(rt_caps_all(), buf, sizeof(buf)) > 0);
	assert_non_null(strstr(buf, "CAP_SYS_ADMIN"));
}

/* Docker's spec as runc applies it: root holds the set, any other uid holds
 * only the bounding set; inheritable and ambient always empty. */
static void test_for_user(void **state)
{
	struct rt_cap_sets s;
	uint64_t d = rt_caps_default();

	rt_caps_for_user(d, 0, &s);
	assert_int_equal(s.bounding, d);
	assert_int_equal(s.effective, d);
	assert_int_equal(s.permitted, d);
	assert_int_equal(s.inheritable, 0);
	assert_int_equal(s.ambient, 0);

	/* The case: -u 1000 used to get a80425fb in all four. */
	memset(&s, 0xff, sizeof(s));
	rt_caps_for_user(d, 1000, &s);
	assert_int_equal(s.bounding, d);
	assert_int_equal(s.effective, 0);
	assert_int_equal(s.permitted, 0);
	assert_int_equal(s.inheritable, 0);
	assert_int_equal(s.ambient, 0);

	/* --cap-add NET_ADMIN for a non-root user widens the bounding set only
	 * (what a setcap'd binary can draw on), never what the process holds. */
	struct shoal_err err = {};
	const char *add[] = {"NET_ADMIN", NULL};
	uint64_t m;
	assert_int_equal(rt_caps_compute(add, NULL, false, &m, &err), 0);
	rt_caps_for_user(m, 65534, &s);
	assert_int_equal(s.bounding, d | BIT(CAP_NET_ADMIN));
	assert_int_equal(s.effective | s.permitted | s.inheritable | s.ambient, 0);

	/* Privileged: root holds everything, a non-root user still nothing. */
	assert_int_equal(rt_caps_compute(NULL, NULL, true, &m, &err), 0);
	rt_caps_for_user(m, 0, &s);
	assert_int_equal(s.permitted, rt_caps_all());
	rt_caps_for_user(m, 1, &s);
	assert_int_equal(s.bounding, rt_caps_all());
	assert_int_equal(s.effective | s.permitted | s.inheritable | s.ambient, 0);
}

static uint64_t cur_caps(int which)
{
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct d[2] = {};
	if (syscall(SYS_capget, &hdr, d) < 0)
		return UINT64_MAX;
	switch (which) {
	case 0:
		return d[0].effective | ((uint64_t)d[1].effective << 32);
	case 1:
		return d[0].permitted | ((uint64_t)d[1].permitted << 32);
	default:
		return d[0].inheritable | ((uint64_t)d[1].inheritable << 32);
	}
}

/* Child exit codes: 0 ok, else the step that failed. */
static int apply_child(uint64_t mask, uid_t uid)
{
	struct shoal_err err = {};
	if (uid != 0) {
		if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
			return 10;
		if (setresgid(uid, uid, uid) < 0 || setresuid(uid, uid, uid) < 0)
			return 11;
		if (cur_caps(0) != 0)
			return 12; /* setuid clears the effective set */
	}
	if (rt_caps_apply(mask, &err) < 0)
		return 13;
	/* Root: mask in effective and permitted; anyone else: nothing. Never
	 * inheritable, never ambient. */
	uint64_t held = uid == 0 ? mask : 0;
	if (cur_caps(0) != held || cur_caps(1) != held || cur_caps(2) != 0)
		return 14;
	for (int i = 0; i <= rt_cap_last(); i++) {
		int in_bset = prctl(PR_CAPBSET_READ, (unsigned long)i, 0, 0, 0);
		if (in_bset != !!(mask & BIT(i)))
			return 15;
		if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, (unsigned long)i, 0, 0) != 0)
			return 16;
	}
	/* Dropped for real: CAP_SYS_ADMIN work fails. */
	if (!(mask & BIT(CAP_SYS_ADMIN)) && sethostname("x", 1) == 0)
		return 17;
	return 0;
}

static void run_apply(uint64_t mask, uid_t uid)
{
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(apply_child(mask, uid));
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

static void test_apply_root(void **state)
{
	if (geteuid() != 0)
		skip();
	run_apply(rt_caps_default(), 0);
}

static void test_apply_nonroot(void **state)
{
	if (geteuid() != 0)
		skip();
	run_apply(rt_caps_default() | BIT(CAP_NET_ADMIN), 4242);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),	      cmocka_unit_test(test_bad_name),
		cmocka_unit_test(test_all),	      cmocka_unit_test(test_default),
		cmocka_unit_test(test_compute),	      cmocka_unit_test(test_format),
		cmocka_unit_test(test_for_user),      cmocka_unit_test(test_apply_root),
		cmocka_unit_test(test_apply_nonroot),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
