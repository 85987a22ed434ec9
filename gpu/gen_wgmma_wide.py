#!/usr/bin/env python3
"""Write gpu/wgmma_wide.cuh: the wgmma shapes other than m64n64k16 that the
sm_90 kernels use (inline PTX needs every accumulator register spelled out,
so these are written by this script rather than by hand):

    wgmma_ss_n<N>:  D(64xN) (=|+=) A(64x16, smem) B(16xN, smem)   N = 32, 64, 80,
                                                                  128, 176
    wgmma_rs_n<N>:  D(64xN) +=      A(64x16, regs) B(16xN, smem)   N = 64, 128, 256

Run from the repository root:  python3 gpu/gen_wgmma_wide.py > gpu/wgmma_wide.cuh
"""

SS = (32, 64, 80, 128, 176)
RS = (64, 128, 256)


def regs(n):
    return "{" + ", ".join("%%%d" % i for i in range(n)) + "}"


def ops(n):
    return ", ".join('"+f"(d[%d])' % i for i in range(n))


def shape(n, a_regs):
    """wgmma m64n<n>k16 with A from shared memory (a descriptor and the
    accumulate flag) or from registers (four, always accumulating)."""
    nd = n // 2
    if a_regs:
        name, args = "wgmma_rs_n%d" % n, "const uint32_t (&a)[4], uint64_t db"
        tmpl, a_ops, a_txt = "template <bool IS_BF16, int TB>", 5, "{%%%d, %%%d, %%%d, %%%d}, %%%d" % (
            nd, nd + 1, nd + 2, nd + 3, nd + 4)
        ins = '"r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db), "r"(1), "n"(TB)'
        tail = "p, 1, 1, %%%d" % (nd + 6)
    else:
        name, args = "wgmma_ss_n%d" % n, "uint64_t da, uint64_t db, int accumulate"
        tmpl, a_ops, a_txt = "template <bool IS_BF16, int TA, int TB>", 2, "%%%d, %%%d" % (nd, nd + 1)
        ins = '"l"(da), "l"(db), "r"(accumulate), "n"(TA), "n"(TB)'
        tail = "p, 1, 1, %%%d, %%%d" % (nd + 3, nd + 4)
    pred = nd + a_ops  # the operand the scale-d predicate is set from
    out = [tmpl,
           "__device__ __forceinline__ void %s(float (&d)[%d], %s)" % (name, nd, args),
           "{", "#if FA2_HAVE_WGMMA"]
    for bf, ty in ((True, "bf16"), (False, "f16")):
        out.append("    %s (%sIS_BF16)" % ("if" if bf else "else if", "" if bf else "!"))
        out.append('        asm volatile("{\\n.reg .pred p;\\nsetp.ne.b32 p, %%%d, 0;\\n"' % pred)
        out.append('                     "wgmma.mma_async.sync.aligned.m64n%dk16.f32.%s.%s "' % (n, ty, ty))
        out.append('                     "%s, "' % regs(nd))
        out.append('                     "%s, %s;\\n}\\n"' % (a_txt, tail))
        out.append("                     : %s" % ops(nd))
        out.append("                     : %s);" % ins)
    out += ["#endif", "}"]
    return "\n".join(out)


print("/* wgmma_wide.cuh — written by gpu/gen_wgmma_wide.py; do not edit by hand.")
print(" * More wgmma shapes for the sm_90 kernels (gpu/fwd_kernel_sm90.cuh; n32:")
print(" * the backward's S^T and dP^T at head dim 256, gpu/bwd_kernel_sm90.cuh); the")
print(" * accumulator layout, descriptors and ordering rules are wgmma.cuh's. */")
print("#ifndef FA2_GPU_WGMMA_WIDE_CUH")
print("#define FA2_GPU_WGMMA_WIDE_CUH")
print()
print('#include "wgmma.cuh"')
print()
print("namespace fa2gpu {")
for n in SS:
    print()
    print(shape(n, False))
for n in RS:
    print()
    print(shape(n, True))
print()
print("} // namespace fa2gpu")
print()
print("#endif /* FA2_GPU_WGMMA_WIDE_CUH */")
