// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/capability.h>

#include <cmocka.h>

#include "lib/util.h"
#include "runtime/caps.h"
#include "runtime/runtime.h"
#include "runtime/seccomp.h"

#define BIT(n) (UINT64_C(1) << (n))

struct fixture {
	char dir[64];
	char path[128];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	strcpy(f->dir, "/tmp/shoal-test-seccomp-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->path, sizeof(f->path), "%s/filter.bpf", f->dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	rm_rf(f->dir);
	free(f);
	return 0;
}

static off_t file_size(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? st.st_size : -1;
}

static void test_compile(void **state)
{
	struct fixture *f = *state;
	struct shoal_err err = {};
	assert_int_equal(rt_seccomp_compile(f->path, &err), 0);
	off_t sz = file_size(f->path);
	assert_true(sz > 100 * 8);
	assert_int_equal(sz % 8, 0);
	/* No temporary left behind. */
	char tmp[160];
	snprintf(tmp, sizeof(tmp), "%s.tmp.%d", f->path, (int)getpid());
	assert_int_equal(access(tmp, F_OK), -1);

	/* More capabilities, more rules. */
	char path2[160];
	snprintf(path2, sizeof(path2), "%s/admin.bpf", f->dir);
	assert_int_equal(
		rt_seccomp_compile_caps(path2, rt_caps_default() | BIT(CAP_SYS_ADMIN), &err), 0);
	assert_int_equal(file_size(path2) % 8, 0);
	assert_true(file_size(path2) != sz);
}

static void test_compile_bad_path(void **state)
{
	struct shoal_err err = {};
	assert_true(rt_seccomp_compile("/nonexistent-dir-shoal/x.bpf", &err) < 0);
	assert_int_equal(err.code, ENOENT);
}

static void test_load_bad_file(void **state)
{
	struct fixture *f = *state;
	struct shoal_err err = {};
	char bad[160];
	snprintf(bad, sizeof(bad), "%s/bad.bpf", f->dir);
	assert_int_equal(write_file_atomic(bad, "12345", 5, 0644), 0);
	assert_int_equal(rt_seccomp_load_file(bad, &err), -EINVAL);
	assert_int_equal(rt_seccomp_load_file("/nonexistent-shoal.bpf", &err), -ENOENT);

	/* The split form: a buffer too small for the program, a torn length. */
	char good[160];
	snprintf(good, sizeof(good), "%s/good.bpf", f->dir);
	assert_int_equal(rt_seccomp_compile(good, &err), 0);
	static char buf[RT_SECCOMP_FILE_MAX];
	size_t len = 0;
	assert_int_equal(rt_seccomp_read_file(good, buf, 64, &len, &err), -EFBIG);
	assert_int_equal(rt_seccomp_read_file(good, buf, sizeof(buf), &len, &err), 0);
	assert_int_equal((off_t)len, file_size(good));
	assert_int_equal(rt_seccomp_install(buf, len - 3, &err), -EINVAL);
	assert_int_equal(rt_seccomp_install(buf, 0, &err), -EINVAL);
}

enum probe {
	P_UNSHARE_USER,
	P_UNSHARE_UTS,
	P_KEYCTL,
	P_ADD_KEY,
	P_GETPID,
	P_CLONE3,
	P_PERSONALITY_BAD,
	P_PERSONALITY_QUERY,
	P_SOCKET_VSOCK,
	P_SOCKET_UNIX,
	P_MOUNT,
	P_CLONE_NEWNET,
	P_I386_GETPID,
	P_I386_KEYCTL,
	P_IO_URING_SETUP,
	P_IO_URING_ENTER,
	P_IO_URING_REGISTER,
	P_SOCKET_ALG,
	P_SOCKET_INET6,
	P_SOCKET_HIGH,
};

#ifndef SYS_io_uring_setup
#define SYS_io_uring_setup 425
#endif
#ifndef SYS_io_uring_enter
#define SYS_io_uring_enter 426
#endif
#ifndef SYS_io_uring_register
#define SYS_io_uring_register 427
#endif

#if defined(__x86_64__)
/* A 32-bit x86 system call through int 0x80 from a 64-bit process. */
static long int80(long nr, long a1, long a2, long a3)
{
	long ret;
	__asm__ volatile("int $0x80"
			 : "=a"(ret)
			 : "a"(nr), "b"(a1), "c"(a2), "d"(a3)
			 : "memory", "r8", "r9", "r10", "r11");
	return ret;
}
#define I386_NR_GETPID 20
#define I386_NR_KEYCTL 288
#endif

/* Runs one call in a child that first loads the filter; returns the child's
 * errno for the call (0 = it succeeded). */
static int probe_in_child(const char *path, enum probe what)
{
	int pipefd[2];
	assert_int_equal(pipe(pipefd), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct shoal_err err = {};
		close(pipefd[0]);
		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
		    rt_seccomp_load_file(path, &err) < 0)
			_exit(100);
		long r = 0;
		errno = 0;
		switch (what) {
		case P_UNSHARE_USER:
			r = unshare(CLONE_NEWUSER);
			break;
		case P_UNSHARE_UTS:
			r = unshare(CLONE_NEWUTS);
			break;
		case P_KEYCTL:
			r = syscall(SYS_keyctl, 0 /* KEYCTL_GET_KEYRING_ID */, -3, 0);
			break;
		case P_ADD_KEY:
			r = syscall(SYS_add_key, "user", "shoal", "x", 1, -3);
			break;
		case P_GETPID:
			r = syscall(SYS_getpid) > 0 ? 0 : -1;
			break;
		case P_CLONE3:
			r = syscall(SYS_clone3, NULL, 0);
			/* Without the filter, a NULL args struct is EFAULT/EINVAL. */
			break;
		case P_PERSONALITY_BAD:
			r = personality(PER_BSD);
			break;
		case P_PERSONALITY_QUERY:
			r = personality(0xffffffff) < 0 ? -1 : 0;
			break;
		case P_SOCKET_VSOCK:
			r = socket(40 /* AF_VSOCK */, SOCK_STREAM, 0);
			break;
		case P_SOCKET_UNIX:
			r = socket(AF_UNIX, SOCK_STREAM, 0);
			break;
		case P_IO_URING_SETUP: {
			/* Unfiltered, a zeroed params struct with 1 entry
			 * succeeds (or EPERM/ENOSYS where io_uring is off). */
			static char params[120];
			r = syscall(SYS_io_uring_setup, 1, params);
			break;
		}
		case P_IO_URING_ENTER:
			/* Unfiltered: EBADF for fd -1. */
			r = syscall(SYS_io_uring_enter, -1, 0, 0, 0, NULL, 0);
			break;
		case P_IO_URING_REGISTER:
			r = syscall(SYS_io_uring_register, -1, 0, NULL, 0);
			break;
		case P_SOCKET_ALG:
			r = socket(38 /* AF_ALG */, SOCK_SEQPACKET, 0);
			break;
		case P_SOCKET_INET6:
			r = socket(AF_INET6, SOCK_DGRAM, 0);
			if (r < 0 && errno == EAFNOSUPPORT)
				r = 0; /* IPv6 off: what matters is that it got past the filter */
			break;
		case P_SOCKET_HIGH:
			/* Past AF_VSOCK and past AF_MAX: the filter lets it through
			 * and the kernel answers EAFNOSUPPORT before it would load a
			 * module (a real family could pull one into the host). */
			r = socket(63, SOCK_STREAM, 0);
			break;
		case P_MOUNT:
			r = mount("none", "/nonexistent-shoal", "tmpfs", 0, NULL);
			break;
#if defined(__x86_64__)
		case P_I386_GETPID:
			r = int80(I386_NR_GETPID, 0, 0, 0);
			if (r == getpid())
				r = 0;
			else if (r < 0)
				errno = (int)-r, r = -1;
			else
				errno = ESRCH, r = -1;
			break;
		case P_I386_KEYCTL:
			r = int80(I386_NR_KEYCTL, 0, -3, 0);
			if (r < 0)
				errno = (int)-r, r = -1;
			break;
#else
		case P_I386_GETPID:
		case P_I386_KEYCTL:
			break;
#endif
		case P_CLONE_NEWNET: {
			r = syscall(SYS_clone, CLONE_NEWNET | SIGCHLD, 0, 0, 0, 0);
			if (r == 0)
				_exit(0);
			if (r > 0) {
				waitpid((pid_t)r, NULL, 0);
				r = 0;
			}
			break;
		}
		}
		int e = r < 0 ? errno : 0;
		if (write(pipefd[1], &e, sizeof(e)) != sizeof(e))
			_exit(101);
		_exit(0);
	}
	close(pipefd[1]);
	int e = -1;
	assert_int_equal(read(pipefd[0], &e, sizeof(e)), (ssize_t)sizeof(e));
	close(pipefd[0]);
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	return e;
}

static void test_default_profile_blocks(void **state)
{
	struct fixture *f = *state;
	struct shoal_err err = {};
	assert_int_equal(rt_seccomp_compile(f->path, &err), 0);

	assert_int_equal(probe_in_child(f->path, P_GETPID), 0);
	assert_int_equal(probe_in_child(f->path, P_SOCKET_UNIX), 0);
	assert_int_equal(probe_in_child(f->path, P_PERSONALITY_QUERY), 0);
	assert_int_equal(probe_in_child(f->path, P_UNSHARE_USER), EPERM);
	assert_int_equal(probe_in_child(f->path, P_UNSHARE_UTS), EPERM);
	assert_int_equal(probe_in_child(f->path, P_KEYCTL), EPERM);
	assert_int_equal(probe_in_child(f->path, P_ADD_KEY), EPERM);
	assert_int_equal(probe_in_child(f->path, P_PERSONALITY_BAD), EPERM);
	assert_int_equal(probe_in_child(f->path, P_SOCKET_VSOCK), EPERM);
	assert_int_equal(probe_in_child(f->path, P_MOUNT), EPERM);
	/* clone3 answers ENOSYS so the C library falls back to clone. */
	assert_int_equal(probe_in_child(f->path, P_CLONE3), ENOSYS);
	/* clone with a namespace flag is filtered by argument. */
	assert_int_equal(probe_in_child(f->path, P_CLONE_NEWNET), EPERM);
}

/* What Docker's current default profile blocks and shoal's used to allow:
 * io_uring (Docker 25+) and AF_ALG sockets, with the families around them
 * still open. */
static void test_docker_gaps(void **state)
{
	struct fixture *f = *state;
	struct shoal_err err = {};
	assert_int_equal(rt_seccomp_compile(f->path, &err), 0);
	assert_int_equal(probe_in_child(f->path, P_IO_URING_SETUP), EPERM);
	assert_int_equal(probe_in_child(f->path, P_IO_URING_ENTER), EPERM);
	assert_int_equal(probe_in_child(f->path, P_IO_URING_REGISTER), EPERM);
	assert_int_equal(probe_in_child(f->path, P_SOCKET_ALG), EPERM);
	assert_int_equal(probe_in_child(f->path, P_SOCKET_INET6), 0);
	assert_int_equal(probe_in_child(f->path, P_SOCKET_HIGH), EAFNOSUPPORT);
	/* Even with every capability: Docker has no capability that opens them. */
	assert_int_equal(rt_seccomp_compile_caps(f->path, rt_caps_all(), &err), 0);
	assert_int_equal(probe_in_child(f->path, P_IO_URING_SETUP), EPERM);
	assert_int_equal(probe_in_child(f->path, P_SOCKET_ALG), EPERM);
}

/* The filter covers the 32-bit ABI too (Docker's archMap): without the x86
 * sub-architecture an int 0x80 call would be killed as a bad architecture, or
 * with it missing from the rules reach the kernel unfiltered. */
static void test_i386_abi(void **state)
{
#if defined(__x86_64__)
	struct fixture *f = *state;
	struct shoal_err err = {};
	if (int80(I386_NR_GETPID, 0, 0, 0) != getpid())
		skip(); /* no IA32 emulation in this kernel */
	assert_int_equal(rt_seccomp_compile(f->path, &err), 0);
	assert_int_equal(probe_in_child(f->path, P_I386_GETPID), 0);
	assert_int_equal(probe_in_child(f->path, P_I386_KEYCTL), EPERM);
#else
	skip();
#endif
}

static void test_cap_conditional(void **state)
{
	struct fixture *f = *state;
	struct shoal_err err = {};
	if (geteuid() != 0)
		skip(); /* the unfiltered calls themselves need root */
	assert_int_equal(
		rt_seccomp_compile_caps(f->path, rt_caps_default() | BIT(CAP_SYS_ADMIN), &err), 0);

	assert_int_equal(probe_in_child(f->path, P_UNSHARE_UTS), 0);
	assert_int_equal(probe_in_child(f->path, P_CLONE_NEWNET), 0);
	/* mount is let through to the kernel: ENOENT for the missing target. */
	assert_int_equal(probe_in_child(f->path, P_MOUNT), ENOENT);
	/* clone3 reaches the kernel, which rejects the NULL args itself. */
	assert_int_not_equal(probe_in_child(f->path, P_CLONE3), ENOSYS);
	assert_int_not_equal(probe_in_child(f->path, P_CLONE3), EPERM);
	/* Still blocked: keyctl is in no group. */
	assert_int_equal(probe_in_child(f->path, P_KEYCTL), EPERM);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_compile, setup, teardown),
		cmocka_unit_test(test_compile_bad_path),
		cmocka_unit_test_setup_teardown(test_load_bad_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_default_profile_blocks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_docker_gaps, setup, teardown),
		cmocka_unit_test_setup_teardown(test_i386_abi, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cap_conditional, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
