/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Drop reasons of the load balancer data plane, shared with user space.
 * The logic returns 0 (pass) or one of these negative codes; the tc entry
 * point turns a negative code into TC_ACT_SHOT and counts it in lb_drops at
 * index -code. One list, expanded twice: the enum here, the names in lb/. */
#define LB_DROP_REASONS(X)                                                                   \
	X(LB_DROP_MALFORMED_L3, 1, "malformed-ipv4")	 /* bad version/ihl/length */        \
	X(LB_DROP_MALFORMED_L4, 2, "malformed-l4")	 /* TCP/UDP header cut short */      \
	X(LB_DROP_FRAGMENT, 3, "fragmented-service")	 /* first fragment to a service */   \
	X(LB_DROP_NO_BACKEND, 4, "no-backend")		 /* service has no active backend */ \
	X(LB_DROP_NO_TABLE, 5, "no-maglev-table")	 /* service without a table */       \
	X(LB_DROP_BACKEND_INVALID, 6, "backend-invalid") /* table names an unusable id */    \
	X(LB_DROP_CT_UPDATE, 7, "conntrack-full")	 /* flow entry not stored */         \
	X(LB_DROP_REWRITE, 8, "rewrite-failed")		 /* store/checksum helper failed */

#define LB_DROP_ENUM_(name, num, str) name = -(num),
enum lb_drop_reason { LB_DROP_REASONS(LB_DROP_ENUM_) };
#undef LB_DROP_ENUM_

/* Highest -code; lb_drops has LB_DROP_MAX + 1 slots (slot 0 unused). */
#define LB_DROP_MAX 8
