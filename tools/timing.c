/* timing.c — see timing.h. */
#include "config.h"
#include "timing.h"

#include <time.h>

double timing_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double median(double *v, int n)
{
    for (int i = 1; i < n; i++) /* insertion sort: n is tiny */
        for (int j = i; j > 0 && v[j] < v[j - 1]; j--) {
            const double t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

fa2_status timing_measure(timing_fn fn, void *ctx, double warmup_s,
                          int warmup_is_timed, timing_result *out)
{
    if (warmup_is_timed && warmup_s >= TIMING_EXPENSIVE_S) {
        out->seconds = warmup_s;
        out->runs = 1;
        return FA2_OK;
    }
    int n = warmup_s > 0.0 ? (int)(TIMING_BUDGET_S / warmup_s) : TIMING_MAX_RUNS;
    n = n < 1 ? 1 : (n > TIMING_MAX_RUNS ? TIMING_MAX_RUNS : n);
    double t[TIMING_MAX_RUNS];
    for (int i = 0; i < n; i++) {
        const fa2_status st = fn(ctx, &t[i]);
        if (st != FA2_OK)
            return st;
    }
    out->seconds = median(t, n);
    out->runs = n;
    return FA2_OK;
}
