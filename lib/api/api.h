/* api.h — what the entry points (api/) share: the backend table. */
#ifndef FA2_API_H
#define FA2_API_H

#include "fa2_backend.h"

/* The row of backend b, or NULL if b is no backend. */
const fa2_backend_ops *fa2_backend_row(fa2_backend b);

/* FA2_ERR_INVALID_ARGUMENT with the sentence for a bad backend value. */
fa2_status fa2_backend_unknown(fa2_backend b);

#endif /* FA2_API_H */
