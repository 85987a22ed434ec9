/* fa2_teach_html.h — `fa2 trace --html FILE`: the teaching page (check/teach_html.c). */
#ifndef FA2_CHECK_TEACH_HTML_H
#define FA2_CHECK_TEACH_HTML_H

#include "fa2.h"

/* Run the tiled mirror's forward on a (fp32, one sequence, one head), then
 * its backward with dout, dq, dk, dv (buffers shaped like a's q and k), with
 * a trace callback, and write one self-contained HTML page to path: the
 * grid of tiles (visited, masked, skipped) in the order the forward visits
 * them, every row's running max, sum and rescale factor as key blocks
 * arrive, LSE, and the backward's order. d_show: the head dim to print
 * (a.q's may be padded). 0 on success, else 1 with a message on stderr. */
int trace_html_write(const char *path, const fa2_fwd_args *a, float *dout,
                     float *dq, float *dk, float *dv);

#endif
