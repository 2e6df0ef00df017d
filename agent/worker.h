/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <event2/event.h>

/* A thread for blocking work (unpacking images): work() runs on the worker,
 * done() back on the event loop. Jobs run one at a time, in order. */
struct worker;

int worker_new(struct event_base *base, struct worker **ret);
/* Waits for the running job, drops queued ones (their done() is not called). */
void worker_free(struct worker *w);
int worker_submit(struct worker *w, void (*work)(void *), void (*done)(void *), void *arg);
