/* bwd_not_yet.c — the CUDA backward's entry point until its kernels land
 * (built only with CUDA; cuda_stub.c covers builds without it). */
#include "config.h"
#include "fa2_internal.h"

fa2_status fa2_cuda_bwd(const fa2_bwd_args *a, const fa2_problem *p)
{
    fa2_status st = fa2_cuda_available();
    if (st != FA2_OK)
        return st;
    return fa2_fail(FA2_ERR_NOT_BUILT, "the CUDA backward kernel is not part "
                    "of this version of fa2 yet");
}
