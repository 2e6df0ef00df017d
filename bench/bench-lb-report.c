// SPDX-License-Identifier: Apache-2.0
/* `shoal bench lb`'s report: ratios to the direct path and the table, from
 * the results object alone. */
#include <stdio.h>

#include "bench/bench-lb-internal.h"

static double get(json_t *o, const char *a, const char *m, const char *f)
{
	return json_real_value(json_object_get(json_object_get(json_object_get(o, a), m), f));
}

void bench_lb_ratios(json_t *out)
{
	json_t *r = json_object();
	const char *names[] = {"shoal",	   "shoal_xdp", "iptables",
			       "nftables", "haproxy",	"shoal_loaded"};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (!json_object_get(out, names[i]))
			continue;
		json_object_set_new(r, names[i],
				    json_pack("{s:f, s:f}", "keepalive",
					      get(out, names[i], "keepalive", "per_sec") /
						      get(out, "direct", "keepalive", "per_sec"),
					      "newconn",
					      get(out, names[i], "newconn", "per_sec") /
						      get(out, "direct", "newconn", "per_sec")));
	}
	if (json_object_get(out, "shoal_loaded"))
		json_object_set_new(r, "loaded_vs_one_service",
				    json_pack("{s:f, s:f}", "keepalive",
					      get(out, "shoal_loaded", "keepalive", "per_sec") /
						      get(out, "shoal", "keepalive", "per_sec"),
					      "newconn",
					      get(out, "shoal_loaded", "newconn", "per_sec") /
						      get(out, "shoal", "newconn", "per_sec")));
	json_object_set_new(out, "ratio_to_direct", r);
}

void bench_lb_print(json_t *o)
{
	json_t *cfg = json_object_get(o, "config"), *cpus = json_object_get(o, "cpus");
	printf("\nshoal bench lb: %d backends, %d connections, %.0f s per figure, median of %d "
	       "rounds\n\n",
	       (int)json_integer_value(json_object_get(cfg, "backends")),
	       (int)json_integer_value(json_object_get(cfg, "connections")),
	       json_real_value(json_object_get(cfg, "seconds_per_figure")),
	       (int)json_integer_value(json_object_get(cfg, "rounds")));
	if (cpus)
		printf("client (load generator) on CPU %d, backends and haproxy on CPU %s\n\n",
		       (int)json_integer_value(json_object_get(cpus, "client")),
		       json_string_value(json_object_get(cpus, "servers")));
	printf("  %-22s %12s %6s %9s %9s %12s %6s %9s %9s\n", "", "keep-alive/s", "ratio", "p50 us",
	       "p99 us", "new conn/s", "ratio", "p50 us", "p99 us");
	const char *names[] = {"direct",   "shoal",   "shoal_xdp",   "iptables",
			       "nftables", "haproxy", "shoal_loaded"};
	const char *labels[] = {"direct (one backend)", "shoal (tc eBPF)",	"shoal (XDP + tc)",
				"iptables DNAT random", "nftables DNAT numgen", "haproxy",
				"shoal, loaded"};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (!json_object_get(o, names[i]))
			continue;
		printf("  %-22s %12.0f %6.3f %9.1f %9.1f %12.0f %6.3f %9.1f %9.1f\n", labels[i],
		       get(o, names[i], "keepalive", "per_sec"),
		       get(o, names[i], "keepalive", "per_sec") /
			       get(o, "direct", "keepalive", "per_sec"),
		       get(o, names[i], "keepalive", "p50_us"),
		       get(o, names[i], "keepalive", "p99_us"),
		       get(o, names[i], "newconn", "per_sec"),
		       get(o, names[i], "newconn", "per_sec") /
			       get(o, "direct", "newconn", "per_sec"),
		       get(o, names[i], "newconn", "p50_us"),
		       get(o, names[i], "newconn", "p99_us"));
	}
	json_t *ld = json_object_get(o, "loaded");
	if (ld) {
		json_t *r = json_object_get(json_object_get(o, "ratio_to_direct"),
					    "loaded_vs_one_service");
		printf("\n  loaded: %lld services, %lld backends (asked %lld and %lld; the maps hold "
		       "%lld services), in %.2f s\n",
		       (long long)json_integer_value(json_object_get(ld, "services")),
		       (long long)json_integer_value(json_object_get(ld, "backends")),
		       (long long)json_integer_value(json_object_get(ld, "requested_services")),
		       (long long)json_integer_value(json_object_get(ld, "requested_backends")),
		       (long long)json_integer_value(json_object_get(ld, "max_services")),
		       json_real_value(json_object_get(ld, "load_seconds")));
		if (r)
			printf("  loaded / one service: keep-alive %.3f, new connections %.3f\n",
			       json_real_value(json_object_get(r, "keepalive")),
			       json_real_value(json_object_get(r, "newconn")));
	}
	json_t *u = json_object_get(o, "update");
	if (u)
		printf("  backend set update, loaded (lb_service_upsert): p50 %.1f us, p99 %.1f us, "
		       "max %.1f us (%lld runs)\n",
		       json_real_value(json_object_get(u, "p50_us")),
		       json_real_value(json_object_get(u, "p99_us")),
		       json_real_value(json_object_get(u, "max_us")),
		       (long long)json_integer_value(json_object_get(u, "runs")));
	json_t *p = json_object_get(o, "packet_ns");
	if (p) {
		printf("  tc ingress per packet (BPF_PROG_TEST_RUN x1e6): hit (established flow, "
		       "DNAT) %.1f ns, miss %.1f ns, empty program %.1f ns\n",
		       json_real_value(json_object_get(p, "hit")),
		       json_real_value(json_object_get(p, "miss")),
		       json_real_value(json_object_get(p, "empty_program")));
		json_t *hc = json_object_get(p, "hit_checksum_complete");
		if (hc)
			printf("    hit on a CHECKSUM_COMPLETE skb (as from a summing NIC): %.1f ns\n",
			       json_real_value(hc));
		json_t *x = json_object_get(p, "xdp");
		const char *xu = json_string_value(json_object_get(x, "unavailable"));
		if (xu)
			printf("  XDP ingress per packet: not measured, XDP unavailable: %s\n", xu);
		else if (x)
			printf("  XDP ingress per packet (same runs): hit %.1f ns, miss %.1f ns, empty "
			       "program %.1f ns\n",
			       json_real_value(json_object_get(x, "hit")),
			       json_real_value(json_object_get(x, "miss")),
			       json_real_value(json_object_get(x, "empty_program")));
	}
	json_t *sk = json_object_get(o, "skipped");
	if (sk && json_object_size(sk)) {
		const char *k;
		json_t *v;
		json_object_foreach(sk, k, v)
		{
			printf("  skipped %s: %s\n", k, json_string_value(v));
		}
	}
}
