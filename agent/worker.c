// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include <event2/event.h>

#include "agent/worker.h"

/* Jobs queued beyond this are refused: the API answers 503 rather than grow. */
#define WORKER_MAX_QUEUE 64

struct job {
	struct job *next;
	void (*work)(void *);
	void (*done)(void *);
	void *arg;
	struct event *ev;
};

struct worker {
	struct event_base *base;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct job *head, *tail;
	unsigned queued;
	bool stop;
};

static void job_done_cb(evutil_socket_t fd, short what, void *arg)
{
	struct job *j = arg;
	event_free(j->ev);
	j->done(j->arg);
	free(j);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	pthread_mutex_lock(&w->lock);
	for (;;) {
		while (!w->head && !w->stop)
			pthread_cond_wait(&w->cond, &w->lock);
		if (w->stop)
			break;
		struct job *j = w->head;
		w->head = j->next;
		if (!w->head)
			w->tail = NULL;
		w->queued--;
		pthread_mutex_unlock(&w->lock);
		j->work(j->arg);
		event_active(j->ev, EV_READ, 0);
		pthread_mutex_lock(&w->lock);
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

int worker_new(struct event_base *base, struct worker **ret)
{
	struct worker *w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->base = base;
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
	int r = pthread_create(&w->thread, NULL, worker_main, w);
	if (r) {
		free(w);
		return -r;
	}
	*ret = w;
	return 0;
}

void worker_free(struct worker *w)
{
	if (!w)
		return;
	pthread_mutex_lock(&w->lock);
	w->stop = true;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
	pthread_join(w->thread, NULL);
	for (struct job *j = w->head, *n; j; j = n) {
		n = j->next;
		event_free(j->ev);
		free(j);
	}
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->cond);
	free(w);
}

int worker_submit(struct worker *w, void (*work)(void *), void (*done)(void *), void *arg)
{
	struct job *j = calloc(1, sizeof(*j));
	if (!j)
		return -ENOMEM;
	j->work = work;
	j->done = done;
	j->arg = arg;
	j->ev = event_new(w->base, -1, 0, job_done_cb, j);
	if (!j->ev) {
		free(j);
		return -ENOMEM;
	}
	pthread_mutex_lock(&w->lock);
	if (w->queued >= WORKER_MAX_QUEUE) {
		pthread_mutex_unlock(&w->lock);
		event_free(j->ev);
		free(j);
		return -EAGAIN;
	}
	if (w->tail)
		w->tail->next = j;
	else
		w->head = j;
	w->tail = j;
	w->queued++;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
	return 0;
}
