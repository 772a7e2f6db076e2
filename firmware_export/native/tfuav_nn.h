/*
 * tfuav_nn.h -- int8 kernels for networks compiled ahead of time by tfuav (plain C99).
 *
 * Every kernel computes exactly what the TFLite reference kernels compute for the same
 * quantization parameters: the generator derives the fixed-point multipliers the way TFLite
 * does and the kernels use the same integer arithmetic (SaturatingRoundingDoublingHighMul
 * followed by RoundingDivideByPOT).  Tensors are NHWC, int8, densely packed.  No kernel
 * allocates memory; temporary space ("work") comes from the caller's scratch buffer.
 *
 * Build options:
 *   TFUAV_USE_DSP   use the Armv7E-M SIMD instructions (SXTB16, SMLAD) in the dot products
 *                   when the compiler targets a core that has them (__ARM_FEATURE_DSP);
 *                   results are identical either way.
 */
#ifndef TFUAV_NN_H
#define TFUAV_NN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(TFUAV_USE_DSP) && defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
#define TFUAV_DSP 1
#else
#define TFUAV_DSP 0
#endif

#if defined(__GNUC__)
#define TFUAV_ALIGNED(n) __attribute__((aligned(n)))
#define TFUAV_INLINE static inline __attribute__((always_inline))
#else
#define TFUAV_ALIGNED(n)
#define TFUAV_INLINE static inline
#endif

/* Per-op profiling: with TFUAV_PROFILE defined, the generated invoke calls
 * tfuav_profile_op(op index) after each op (the harness provides it). */
#if defined(TFUAV_PROFILE)
void tfuav_profile_op(int32_t op_index);
#define TFUAV_PROFILE_OP(i) tfuav_profile_op(i)
#else
#define TFUAV_PROFILE_OP(i) ((void)0)
#endif

/* ---- fixed-point arithmetic (gemmlowp / TFLite semantics) ---------------------------- */

/* SaturatingRoundingDoublingHighMul: round(a * b / 2^31), ties away from zero. */
TFUAV_INLINE int32_t tfuav_srdhm(int32_t a, int32_t b)
{
    if (a == b && a == INT32_MIN) {
        return INT32_MAX;
    }
    /* (ab + nudge) / 2^31 truncated toward zero equals floor((ab + 2^30) / 2^31) */
    return (int32_t)(((int64_t)a * (int64_t)b + ((int64_t)1 << 30)) >> 31);
}

/* RoundingDivideByPOT: x / 2^exponent rounded to nearest, ties away from zero. */
TFUAV_INLINE int32_t tfuav_rdbp(int32_t x, int32_t exponent)
{
    const int32_t mask = (int32_t)((1u << exponent) - 1u);
    const int32_t remainder = x & mask;
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

/* MultiplyByQuantizedMultiplier: x * multiplier * 2^(shift - 31) with TFLite's two roundings
 * (RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(x << left, m), right)), for
 * multipliers m >= 0 as QuantizeMultiplier produces them.  With p = (x << left) * m and
 * r = right > 0 both roundings fold into one 64-bit addition:
 *   floor((p + 2^30 + 2^(30+r) - [x << left < 0] * 2^31) / 2^(31+r))
 * (the high product rounds toward zero from below only for negative inputs, and where the
 * two conditions differ the result is 0 either way); r = 0 is the high product alone.
 * setup() does the per-channel part once; apply() is the per-value part. */
typedef struct {
    int64_t k;        /* 2^30 + 2^(30+r) */
    int32_t mult;
    int32_t left;
    int32_t right_m1; /* r - 1; -1 when r == 0 */
} tfuav_requant_t;

TFUAV_INLINE tfuav_requant_t tfuav_requant_setup(int32_t multiplier, int32_t shift)
{
    tfuav_requant_t r;
    r.mult = multiplier;
    r.left = shift > 0 ? shift : 0;
    r.right_m1 = (shift > 0 ? 0 : -shift) - 1;
    r.k = ((int64_t)1 << 30) + (r.right_m1 >= 0 ? ((int64_t)1 << (31 + r.right_m1)) : 0);
    return r;
}

TFUAV_INLINE int32_t tfuav_requant_apply(int32_t x, const tfuav_requant_t *r)
{
    const int32_t xs = (int32_t)((uint32_t)x << r->left);
    const int64_t p = (int64_t)xs * (int64_t)r->mult;
    if (r->right_m1 < 0) {
        return (int32_t)((p + ((int64_t)1 << 30)) >> 31);
    }
    return (int32_t)((p + r->k - (xs < 0 ? ((int64_t)1 << 31) : 0)) >> 32) >> r->right_m1;
}

TFUAV_INLINE int32_t tfuav_mbqm(int32_t x, int32_t multiplier, int32_t shift)
{
    const tfuav_requant_t r = tfuav_requant_setup(multiplier, shift);
    return tfuav_requant_apply(x, &r);
}

/* The same, in the reference kernels' two steps (any multiplier sign). */
TFUAV_INLINE int32_t tfuav_mbqm_reference(int32_t x, int32_t multiplier, int32_t shift)
{
    const int32_t left = shift > 0 ? shift : 0;
    const int32_t right = shift > 0 ? 0 : -shift;
    return tfuav_rdbp(tfuav_srdhm((int32_t)((uint32_t)x << left), multiplier), right);
}

TFUAV_INLINE int32_t tfuav_clamp(int32_t x, int32_t lo, int32_t hi)
{
    return x < lo ? lo : (x > hi ? hi : x);
}

/* std::round for the float requantization of FULLY_CONNECTED: halves away from zero. */
int32_t tfuav_round_to_int(double x);

/* gemmlowp one_over_one_plus_x_for_x_in_0_1 (Q0.31 in, Q0.31 out). */
int32_t tfuav_one_over_one_plus_x(int32_t a);

/* TFLite GetReciprocal: 1/x for x with x_integer_digits integer bits, as Q0.31 and a shift. */
int32_t tfuav_reciprocal(int32_t x, int32_t x_integer_digits, int32_t *num_bits_over_unit);

/* ---- requantization of int32 accumulators ------------------------------------------- */

typedef struct {
    const int32_t *q;     /* per output channel: {bias, multiplier, shift}; the bias has the
                           * input offset folded in where the kernel says so */
    const double *scale;  /* FULLY_CONNECTED: per output channel real scale (the reference
                           * kernel requantizes in double); NULL elsewhere */
    int32_t out_zp;
    int32_t act_min;
    int32_t act_max;
} tfuav_rq_t;

/* ---- convolutions and matrix products ----------------------------------------------- */

typedef struct {
    int32_t in_h, in_w, in_c;
    int32_t out_h, out_w, out_c;
    int32_t k_h, k_w;
    int32_t stride_h, stride_w;
    int32_t dil_h, dil_w;
    int32_t pad_t, pad_l;
    int32_t groups;
    int32_t in_zp;       /* value of padded input positions */
    int32_t tile;        /* pointwise conv: input rows per cache tile (0: all); other convs:
                          * im2col columns per batch */
    int32_t depth_mult;  /* depthwise: output channels per input channel */
    const int8_t *w;     /* conv: channel pairs interleaved (see tfuav_nn_conv.c);
                          * depthwise with a depth multiplier: [k_h][k_w][out_c] */
    const int16_t *w16;  /* depthwise, depth multiplier 1: channels in blocks of four, each
                          * block [k_h * k_w][4] as (c, c+2, c+1, c+3); then the last
                          * out_c % 4 channels, each [k_h * k_w] */
    const int32_t *bias_raw; /* depthwise: bias without the folded input offset */
    tfuav_rq_t rq;
} tfuav_conv_t;

/* work: conv_s8 tile * k_h * k_w * in_c / groups bytes (im2col columns); depthwise_s8
 * out_c * sizeof(tfuav_requant_t) + 12 * k_h * k_w bytes (requantization, tap lists). */
void tfuav_conv_s8(const tfuav_conv_t *p, const int8_t *in, int8_t *out, void *work);
void tfuav_conv_1x1_s8(const tfuav_conv_t *p, const int8_t *in, int8_t *out);
void tfuav_depthwise_s8(const tfuav_conv_t *p, const int8_t *in, int8_t *out, void *work);

typedef struct {
    int32_t rows;   /* batches */
    int32_t depth;  /* accumulation depth */
    int32_t units;  /* output channels */
    int32_t row_tile; /* input rows per cache tile (0: all) */
    const int8_t *w; /* channel pairs interleaved, as for CONV_2D */
    tfuav_rq_t rq;
} tfuav_fc_t;

void tfuav_fully_connected_s8(const tfuav_fc_t *p, const int8_t *in, int8_t *out);

typedef struct {
    int32_t in_h, in_w, in_c;
    int32_t out_h, out_w, out_c;
    int32_t k_h, k_w, stride_h, stride_w, pad_t, pad_l;
    int32_t in_offset;
    const int8_t *w;       /* [out_c][k_h][k_w][in_c] */
    tfuav_rq_t rq;         /* bias without folding */
} tfuav_tconv_t;

/* work: out_h * out_w * out_c int32 accumulators. */
void tfuav_transpose_conv_s8(const tfuav_tconv_t *p, const int8_t *in, int8_t *out,
                             int32_t *work);

typedef struct {
    int32_t batches;
    int32_t lhs_batch_stride, rhs_batch_stride; /* elements; 0 broadcasts */
    int32_t rows, depth, cols;                  /* out[b][r][c] = sum_d lhs[r][d] * rhs[d][c] */
    int32_t lhs_row_stride, lhs_depth_stride;
    int32_t rhs_depth_stride, rhs_col_stride;
    int32_t lhs_offset, rhs_offset;
    int32_t mult, shift, out_zp, act_min, act_max;
} tfuav_bmm_t;

void tfuav_batch_matmul_s8(const tfuav_bmm_t *p, const int8_t *lhs, const int8_t *rhs,
                           int8_t *out);

/* ---- element-wise ------------------------------------------------------------------- */

/* out[i] = table[(uint8_t)in[i]] (activations, requantization, any int8 -> int8 map). */
void tfuav_lut_s8(const int8_t *table, int32_t n, const int8_t *in, int8_t *out);

/* Two inputs broadcast against each other over up to 4 dimensions (strides 0 broadcast). */
typedef struct {
    int32_t dims[4];
    int32_t stride1[4];
    int32_t stride2[4];
    int32_t in1_offset, in2_offset;
    int32_t left_shift;
    int32_t mult1, shift1, mult2, shift2; /* ADD/SUB/SQUARED_DIFFERENCE input rescaling */
    int32_t mult, shift;                   /* output rescaling */
    int32_t out_zp, act_min, act_max;
    const int32_t *table1, *table2; /* the rescaled inputs for all 256 values, or NULL */
} tfuav_binary_t;

void tfuav_add_s8(const tfuav_binary_t *p, const int8_t *a, const int8_t *b, int8_t *out);
void tfuav_sub_s8(const tfuav_binary_t *p, const int8_t *a, const int8_t *b, int8_t *out);
void tfuav_mul_s8(const tfuav_binary_t *p, const int8_t *a, const int8_t *b, int8_t *out);
void tfuav_squared_difference_s8(const tfuav_binary_t *p, const int8_t *a, const int8_t *b,
                                 int8_t *out);
void tfuav_div_s8(const tfuav_binary_t *p, const int8_t *a, const int8_t *b, int8_t *out);
void tfuav_max_s8(const tfuav_binary_t *p, const int8_t *a, const int8_t *b, int8_t *out);
void tfuav_min_s8(const tfuav_binary_t *p, const int8_t *a, const int8_t *b, int8_t *out);

/* ---- pooling and reductions --------------------------------------------------------- */

typedef struct {
    int32_t in_h, in_w, c;
    int32_t out_h, out_w;
    int32_t k_h, k_w, stride_h, stride_w, pad_t, pad_l;
    int32_t act_min, act_max;
} tfuav_pool_t;

void tfuav_max_pool_s8(const tfuav_pool_t *p, const int8_t *in, int8_t *out);
void tfuav_avg_pool_s8(const tfuav_pool_t *p, const int8_t *in, int8_t *out);

/* Mean over the middle axis of [outer][reduce][inner]; or, when dims[0] > 0, over any axes of
 * a 4-D input: out_stride is 0 on the reduced axes. */
typedef struct {
    int32_t outer, reduce, inner;
    int32_t dims[4], out_stride[4];
    int32_t n_out;
    int32_t in_zp_times_n;
    int32_t mult, shift, out_zp;
} tfuav_mean_t;

/* work: inner (or n_out) int32 sums. */
void tfuav_mean_s8(const tfuav_mean_t *p, const int8_t *in, int8_t *out, int32_t *work);

typedef struct {
    int32_t outer, depth;
    int32_t diff_min;
    const int32_t *exp_table; /* exp of the scaled difference, indexed by -(x - max) */
} tfuav_softmax_t;

void tfuav_softmax_s8(const tfuav_softmax_t *p, const int8_t *in, int8_t *out);

typedef struct {
    int32_t outer, depth, in_zp;
} tfuav_l2norm_t;

void tfuav_l2norm_s8(const tfuav_l2norm_t *p, const int8_t *in, int8_t *out);

/* ---- data movement ------------------------------------------------------------------ */

/* Copies a strided block of up to 5 dimensions; the innermost `run` bytes are contiguous
 * in both source and destination. */
typedef struct {
    int32_t dims[4];
    int32_t src_stride[4];
    int32_t dst_stride[4];
    int32_t src_offset, dst_offset;
    int32_t run;
} tfuav_copy_t;

void tfuav_copy(const tfuav_copy_t *p, const int8_t *src, int8_t *dst);
void tfuav_fill(int8_t *dst, int32_t n, int8_t value);

/* out[o][j][i] = in[o][index[j]][i] */
typedef struct {
    int32_t outer, axis_in, axis_out, inner;
    const int32_t *index;
} tfuav_gather_t;

void tfuav_gather(const tfuav_gather_t *p, const int8_t *in, int8_t *out);

/* out[b][y][x] = in[b][src_y[y]][src_x[x]] for pixels of `depth` bytes. */
typedef struct {
    int32_t batches, in_h, in_w, out_h, out_w, depth;
    const int32_t *src_y, *src_x;
} tfuav_resize_t;

void tfuav_resize_nearest(const tfuav_resize_t *p, const int8_t *in, int8_t *out);

#ifdef __cplusplus
}
#endif

#endif /* TFUAV_NN_H */
