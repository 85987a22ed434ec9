/* workers.c — the library's own worker threads. Each call starts its
 * workers, hands out work items from one atomic counter and joins them: no
 * pool outlives a call, so the library keeps no global state. Items are
 * independent and each writes only its own outputs, so the result does not
 * depend on the thread count or on which worker ran which item. */
#include "config.h"
#include "fa2_internal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

typedef struct work_queue {
    fa2_work_fn fn;
    void *ctx;
    int64_t n_items;
    atomic_llong next;
} work_queue;

typedef struct worker_arg {
    work_queue *q;
    int worker;
} worker_arg;

static void drain(work_queue *q, int worker)
{
    for (;;) {
        const int64_t item = atomic_fetch_add(&q->next, 1);
        if (item >= q->n_items)
            return;
        q->fn(q->ctx, item, worker);
    }
}

static void *worker_main(void *p)
{
    worker_arg *w = p;
    drain(w->q, w->worker);
    return NULL;
}

int fa2_default_num_threads(void)
{
    const long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : (n > 256 ? 256 : (int)n);
}

fa2_status fa2_parallel_for(int num_threads, int64_t n_items, fa2_work_fn fn,
                            void *ctx)
{
    enum { MAX_WORKERS = 1024 };
    pthread_t threads[MAX_WORKERS];
    worker_arg args[MAX_WORKERS];
    work_queue q;
    int started = 0;

    q.fn = fn;
    q.ctx = ctx;
    q.n_items = n_items;
    atomic_init(&q.next, 0);
    if (num_threads > MAX_WORKERS)
        num_threads = MAX_WORKERS;
    if (num_threads > n_items)
        num_threads = (int)(n_items > 0 ? n_items : 1);
    /* worker 0 is the calling thread */
    for (int t = 1; t < num_threads; t++) {
        args[t].q = &q;
        args[t].worker = t;
        /* a thread that cannot start is no error: the ones that did
         * (and the caller) drain the queue all the same */
        if (pthread_create(&threads[t], NULL, worker_main, &args[t]) != 0)
            break;
        started = t;
    }
    drain(&q, 0);
    for (int t = 1; t <= started; t++)
        pthread_join(threads[t], NULL);
    return FA2_OK;
}
