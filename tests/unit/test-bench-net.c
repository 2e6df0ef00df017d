// SPDX-License-Identifier: Apache-2.0
/* The pure pieces of `shoal bench tcp|udp` and of the load generators'
 * shared machinery: echo payloads and their check, ADDR:PORT, the open-loop
 * schedule, the rounds, the client namespace's addresses. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bench/bench-load.h"
#include "bench/hist.h"

static void test_payload(void **state)
{
	uint8_t a[300], b[300];
	bench_payload_fill(a, 7, 0, sizeof(a));
	assert_int_equal(bench_payload_check(a, 7, 0, sizeof(a)), -1);
	assert_int_equal(bench_payload_seq(a, sizeof(a)), 7);
	/* a slice in the middle checks against the same bytes at its offset */
	bench_payload_fill(b, 7, 100, 50);
	assert_memory_equal(a + 100, b, 50);
	assert_int_equal(bench_payload_check(a + 100, 7, 100, 50), -1);
	/* one flipped byte: its index */
	a[201] ^= 1;
	assert_int_equal(bench_payload_check(a, 7, 0, sizeof(a)), 201);
	a[201] ^= 1;
	/* another request's answer differs in its number and in its body */
	assert_int_equal(bench_payload_check(a, 8, 0, sizeof(a)), 0);
	assert_true(bench_payload_check(a + 8, 8, 8, sizeof(a) - 8) >= 0);
	/* an answer shifted by one byte (a lost or extra byte) */
	assert_true(bench_payload_check(a + 1, 7, 0, sizeof(a) - 1) >= 0);
	assert_true(bench_payload_check(a, 7, 1, sizeof(a) - 1) >= 0);
	/* no two neighbours alike in the pattern, so a repeated byte shows */
	for (size_t i = 9; i < sizeof(a); i++)
		assert_int_not_equal(a[i], a[i - 1]);
	/* the number is little-endian in the first eight bytes */
	bench_payload_fill(b, 0x0102030405060708ull, 0, 8);
	assert_int_equal(b[0], 0x08);
	assert_int_equal(b[7], 0x01);
	assert_true(bench_payload_seq(b, 8) == 0x0102030405060708ull);
}

static void test_hostport(void **state)
{
	char host[64], msg[256];
	int port = 0;
	assert_int_equal(
		bench_parse_hostport("127.0.0.1:7", host, sizeof(host), &port, msg, sizeof(msg)),
		0);
	assert_string_equal(host, "127.0.0.1");
	assert_int_equal(port, 7);
	assert_int_equal(
		bench_parse_hostport("[::1]:8080", host, sizeof(host), &port, msg, sizeof(msg)), 0);
	assert_string_equal(host, "::1");
	assert_int_equal(port, 8080);
	assert_int_equal(
		bench_parse_hostport("echo.test:9", host, sizeof(host), &port, msg, sizeof(msg)),
		0);
	assert_string_equal(host, "echo.test");
	static const char *const bad[] = {"127.0.0.1",	 "127.0.0.1:0", "127.0.0.1:65536",
					  "127.0.0.1:x", ":80",		"::1:80",
					  "[::1]80",	 "[::1]:",	"1.2.3.4:80x"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		msg[0] = '\0';
		assert_int_equal(
			bench_parse_hostport(bad[i], host, sizeof(host), &port, msg, sizeof(msg)),
			-EINVAL);
		assert_true(msg[0] != '\0');
	}
}

struct started {
	struct bench_slot *slot[16];
	int64_t at[16];
	int n;
};

static void start_cb(struct bench_slot *slot, int64_t now, void *arg)
{
	struct started *s = arg;
	s->slot[s->n] = slot;
	s->at[s->n++] = now;
}

static void test_schedule(void **state)
{
	struct bench_slot slots[3] = {0};
	struct bench_slot *idle[3];
	/* 1000/s from t0 = 1 s: request k is due at 1 s + k ms */
	struct bench_sched s = {.rate = 1000, .t0 = 1000000000, .idle = idle, .cap = 3};
	assert_true(bench_sched_due(&s, 0) == 1000000000);
	assert_true(bench_sched_due(&s, 5) == 1005000000);
	struct started st = {0};
	for (int i = 0; i < 3; i++)
		bench_sched_idle(&s, &slots[i], 1000000000);
	/* at 1.0015 s two are due (k = 0, 1): two slots start, latency from when due */
	bench_sched_dispatch(&s, 1001500000, 0, start_cb, &st);
	assert_int_equal(st.n, 2);
	assert_true(st.slot[0]->t_start == 1000000000);
	assert_true(st.slot[1]->t_start == 1001000000);
	assert_int_equal(s.nidle, 1);
	assert_int_equal(s.next_k, 2);
	assert_int_equal(s.waited, 0);
	/* the last free one takes k = 2 at 1.002 s; at 1.010 s nothing is free:
	 * requests 3..10 wait, and when a slot frees at 1.0105 s, request 3
	 * (due at 1.003 s) goes with its wait counted */
	bench_sched_dispatch(&s, 1002000000, 0, start_cb, &st);
	assert_int_equal(st.n, 3);
	assert_int_equal(s.nidle, 0);
	bench_sched_dispatch(&s, 1010000000, 0, start_cb, &st);
	assert_int_equal(st.n, 3);
	bench_sched_idle(&s, st.slot[0], 1010500000);
	bench_sched_dispatch(&s, 1010500000, 0, start_cb, &st);
	assert_int_equal(st.n, 4);
	assert_true(st.slot[3]->t_start == 1003000000);
	assert_int_equal(s.waited, 1);
	/* waits before the measured window are warm-up, not counted */
	bench_sched_idle(&s, st.slot[3], 1010600000);
	bench_sched_dispatch(&s, 1010600000, 2000000000, start_cb, &st);
	assert_int_equal(s.waited, 1);
	/* a slot that goes away while idle leaves the stack */
	bench_sched_idle(&s, &slots[2], 1011000000);
	assert_int_equal(s.nidle, 1);
	bench_sched_forget(&s, &slots[2]);
	assert_int_equal(s.nidle, 0);
}

static void test_rounds(void **state)
{
	struct bench_rounds r;
	assert_int_equal(bench_rounds_init(&r, 3), 0);
	/* 1 s warm-up, then 3 s in three rounds */
	bench_rounds_window(&r, 0, 1, 3);
	assert_true(r.from == 1000000000 && r.end == 4000000000);
	assert_int_equal(bench_rounds_index(&r, 1500000000), 0);
	assert_int_equal(bench_rounds_index(&r, 2500000000), 1);
	assert_int_equal(bench_rounds_index(&r, 3999999999), 2);
	/* an answer to a request sent in the warm-up is not counted */
	assert_int_equal(bench_rounds_answer(&r, 900000000, 1100000000), 0);
	/* one after the window neither */
	assert_int_equal(bench_rounds_answer(&r, 3900000000, 4100000000), 0);
	assert_int_equal(bench_rounds_answer(&r, 2000000000, 2000250000), 1);
	assert_int_equal(r.req[1], 1);
	assert_int_equal(bench_hist_percentile(r.hist[1], 50), 250);
	/* the variant: requests, per second over the window, errors by kind */
	uint64_t errors[2] = {3, 4};
	static const char *const names[2] = {"lost", "status_5xx"};
	struct bench_load_report rep = {.name = "udp",
					.conns = 1,
					.err_names = names,
					.errors = errors,
					.nkinds = 2,
					.not_errors = 2};
	json_t *v = json_object(), *w = json_array();
	assert_int_equal(bench_load_variant(&r, &rep, v, w), 1);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(v, "errors"), "lost")),
			 3);
	assert_int_equal(json_array_size(json_object_get(v, "rounds")), 3);
	/* the failures warned about: 3 lost, the statuses not */
	assert_int_equal(json_array_size(w), 1);
	assert_non_null(strstr(json_string_value(json_array_get(w, 0)), "3 requests failed"));
	json_decref(v);
	json_decref(w);
	bench_rounds_free(&r);
}

static void test_netns_addresses(void **state)
{
	uint32_t h, c;
	bench_netns_subnet(0, &h, &c);
	assert_true(h == 0xa9fe4001u && c == 0xa9fe4002u); /* 169.254.64.1, .2 */
	bench_netns_subnet(BENCH_NETNS_SUBNETS - 1, &h, &c);
	assert_true(c == 0xa9fe7ffeu); /* 169.254.127.254: the last of the /18 */
	/* every subnet number wraps into the range, a /30 of its own */
	bench_netns_subnet(BENCH_NETNS_SUBNETS + 5, &h, &c);
	uint32_t h5, c5;
	bench_netns_subnet(5, &h5, &c5);
	assert_true(h == h5 && c == c5 && (h & ~3u) == (c & ~3u));
	struct sockaddr_storage ss = {0};
	struct sockaddr_in *in = (struct sockaddr_in *)&ss;
	in->sin_family = AF_INET;
	inet_pton(AF_INET, "127.0.0.53", &in->sin_addr);
	assert_true(bench_addr_is_loopback(&ss));
	inet_pton(AF_INET, "169.254.64.1", &in->sin_addr);
	assert_false(bench_addr_is_loopback(&ss));
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
	in6->sin6_family = AF_INET6;
	inet_pton(AF_INET6, "::1", &in6->sin6_addr);
	assert_true(bench_addr_is_loopback(&ss));
}

static void test_flags(void **state)
{
	double v;
	assert_int_equal(bench_parse_seconds("500ms", &v), 0);
	assert_true(v == 0.5);
	assert_int_equal(bench_parse_seconds("2m", &v), 0);
	assert_true(v == 120);
	assert_int_equal(bench_parse_seconds("5x", &v), -EINVAL);
	assert_int_equal(bench_parse_seconds("2h", &v), -ERANGE);
	assert_int_equal(bench_parse_rate("600/m", &v), 0);
	assert_true(v == 10);
	assert_int_equal(bench_parse_rate("0", &v), -EINVAL);
	assert_int_equal(bench_parse_rate("fast", &v), -EINVAL);
	/* the shared flags follow a command's own, each once */
	static const struct cli_opt own[] = {{1, "target", 0, CLI_OPT_VALUE, "a", "t"}, {0}};
	struct cli_opt all[40];
	assert_int_equal(bench_load_opts_join(own, all, 40), 0);
	assert_string_equal(all[0].name, "target");
	size_t n = 0;
	while (all[n].id)
		n++;
	assert_true(n > 10);
	assert_int_equal(bench_load_opts_join(own, all, 3), -E2BIG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_payload),		cmocka_unit_test(test_hostport),
		cmocka_unit_test(test_schedule),	cmocka_unit_test(test_rounds),
		cmocka_unit_test(test_netns_addresses), cmocka_unit_test(test_flags),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
