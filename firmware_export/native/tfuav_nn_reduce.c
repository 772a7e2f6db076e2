/*
 * tfuav_nn_reduce.c -- pooling, MEAN, SOFTMAX, L2_NORMALIZATION and the gemmlowp
 * fixed-point functions they need, bit-exact with the TFLite reference kernels.
 */
#include "tfuav_nn.h"

/* ---- gemmlowp fixed point (raw int32 values; Qm.n with m integer bits) --------------- */

/* Rescale from src to dst integer bits: saturating left shift or rounding right shift. */
static int32_t rescale(int32_t x, int32_t src_bits, int32_t dst_bits)
{
    const int32_t e = src_bits - dst_bits;
    if (e > 0) {
        const int32_t threshold = (int32_t)((1u << (31 - e)) - 1u);
        if (x > threshold) {
            return INT32_MAX;
        }
        if (x < -threshold) {
            return INT32_MIN;
        }
        return (int32_t)((uint32_t)x << e);
    }
    if (e < 0) {
        return tfuav_rdbp(x, -e);
    }
    return x;
}

static int32_t rounding_half_sum(int32_t a, int32_t b)
{
    const int64_t sum = (int64_t)a + (int64_t)b;
    return (int32_t)((sum + (sum >= 0 ? 1 : -1)) / 2);
}

int32_t tfuav_one_over_one_plus_x(int32_t a)
{
    /* Newton-Raphson division in Q2.29 starting from 48/17 - 32/17 * d */
    const int32_t half_denominator = rounding_half_sum(a, INT32_MAX);
    const int32_t one_q2 = 1 << 29;
    int32_t x = 1515870810 + tfuav_srdhm(half_denominator, -1010580540);
    int32_t i;
    for (i = 0; i < 3; i++) {
        const int32_t hd_x = tfuav_srdhm(half_denominator, x);      /* Q2 */
        const int32_t one_minus = one_q2 - hd_x;                     /* Q2 */
        x = x + rescale(tfuav_srdhm(x, one_minus), 4, 2);            /* Q4 -> Q2 */
    }
    return rescale(x, 1, 0); /* ExactMulByPot<-1>: Q2 read as Q1, then to Q0 */
}

static int32_t count_leading_zeros(uint32_t x)
{
    int32_t n = 0;
    if (x == 0u) {
        return 32;
    }
    while (!(x & 0x80000000u)) {
        x <<= 1;
        n++;
    }
    return n;
}

int32_t tfuav_reciprocal(int32_t x, int32_t x_integer_digits, int32_t *num_bits_over_unit)
{
    const int32_t headroom_plus_one = count_leading_zeros((uint32_t)x);
    const int32_t shifted_minus_one =
        (int32_t)(((uint32_t)x << headroom_plus_one) - (1u << 31));
    *num_bits_over_unit = x_integer_digits - headroom_plus_one;
    return tfuav_one_over_one_plus_x(shifted_minus_one);
}

/* TFLite GetInvSqrtQuantizedMultiplierExp with reverse_shift -1. */
static void inv_sqrt(int32_t input, int32_t *mult, int32_t *shift)
{
    int32_t s = 11, pairs, x, half_input, i;
    const int32_t half_three = (1 << 28) + (1 << 27); /* 1.5 in Q3.28 */
    if (input <= 1) {
        *mult = INT32_MAX;
        *shift = 0;
        return;
    }
    while (input >= (1 << 29)) {
        input /= 4;
        ++s;
    }
    pairs = (count_leading_zeros((uint32_t)input) - 1) / 2 - 1;
    s -= pairs;
    input <<= 2 * pairs;
    x = input >> 1;                 /* Q3 */
    half_input = tfuav_rdbp(x, 1);  /* Q3 */
    x = 1 << 28;                    /* one in Q3 */
    for (i = 0; i < 5; i++) {
        const int32_t x3 = rescale(tfuav_srdhm(tfuav_srdhm(x, x), x), 9, 3);
        x = rescale(tfuav_srdhm(half_three, x) - tfuav_srdhm(half_input, x3), 6, 3);
    }
    x = tfuav_srdhm(x, 1518500250); /* Q3 * Q0 = Q3: times sqrt(2)/2 */
    if (s < 0) {
        x = (int32_t)((uint32_t)x << -s);
        s = 0;
    }
    *mult = x;
    *shift = -s;
}

/* ---- pooling ------------------------------------------------------------------------ */

void tfuav_max_pool_s8(const tfuav_pool_t *p, const int8_t *in, int8_t *out)
{
    int32_t oy, ox, c, ky, kx;
    for (oy = 0; oy < p->out_h; oy++) {
        const int32_t iy0 = oy * p->stride_h - p->pad_t;
        const int32_t ky0 = iy0 < 0 ? -iy0 : 0;
        const int32_t ky1 = p->in_h - iy0 < p->k_h ? p->in_h - iy0 : p->k_h;
        for (ox = 0; ox < p->out_w; ox++) {
            const int32_t ix0 = ox * p->stride_w - p->pad_l;
            const int32_t kx0 = ix0 < 0 ? -ix0 : 0;
            const int32_t kx1 = p->in_w - ix0 < p->k_w ? p->in_w - ix0 : p->k_w;
            for (c = 0; c < p->c; c++) {
                int32_t m = -128;
                for (ky = ky0; ky < ky1; ky++) {
                    const int8_t *x = in + ((iy0 + ky) * p->in_w + ix0) * p->c + c;
                    for (kx = kx0; kx < kx1; kx++) {
                        const int32_t v = x[kx * p->c];
                        m = v > m ? v : m;
                    }
                }
                *out++ = (int8_t)tfuav_clamp(m, p->act_min, p->act_max);
            }
        }
    }
}

void tfuav_avg_pool_s8(const tfuav_pool_t *p, const int8_t *in, int8_t *out)
{
    int32_t oy, ox, c, ky, kx;
    for (oy = 0; oy < p->out_h; oy++) {
        const int32_t iy0 = oy * p->stride_h - p->pad_t;
        const int32_t ky0 = iy0 < 0 ? -iy0 : 0;
        const int32_t ky1 = p->in_h - iy0 < p->k_h ? p->in_h - iy0 : p->k_h;
        for (ox = 0; ox < p->out_w; ox++) {
            const int32_t ix0 = ox * p->stride_w - p->pad_l;
            const int32_t kx0 = ix0 < 0 ? -ix0 : 0;
            const int32_t kx1 = p->in_w - ix0 < p->k_w ? p->in_w - ix0 : p->k_w;
            const int32_t count = (ky1 - ky0) * (kx1 - kx0);
            for (c = 0; c < p->c; c++) {
                int32_t acc = 0;
                for (ky = ky0; ky < ky1; ky++) {
                    const int8_t *x = in + ((iy0 + ky) * p->in_w + ix0) * p->c + c;
                    for (kx = kx0; kx < kx1; kx++) {
                        acc += x[kx * p->c];
                    }
                }
                acc = acc > 0 ? (acc + count / 2) / count : (acc - count / 2) / count;
                *out++ = (int8_t)tfuav_clamp(acc, p->act_min, p->act_max);
            }
        }
    }
}

/* ---- MEAN --------------------------------------------------------------------------- */

static void mean_any_axes(const tfuav_mean_t *p, const int8_t *in, int8_t *out, int32_t *sum)
{
    int32_t i0, i1, i2, i3, i;
    for (i = 0; i < p->n_out; i++) {
        sum[i] = 0;
    }
    for (i0 = 0; i0 < p->dims[0]; i0++) {
        for (i1 = 0; i1 < p->dims[1]; i1++) {
            for (i2 = 0; i2 < p->dims[2]; i2++) {
                int32_t *s = sum + i0 * p->out_stride[0] + i1 * p->out_stride[1] +
                             i2 * p->out_stride[2];
                for (i3 = 0; i3 < p->dims[3]; i3++) {
                    s[i3 * p->out_stride[3]] += *in++;
                }
            }
        }
    }
    for (i = 0; i < p->n_out; i++) {
        const int32_t v = tfuav_mbqm(sum[i] - p->in_zp_times_n, p->mult, p->shift);
        out[i] = (int8_t)tfuav_clamp(v + p->out_zp, -128, 127);
    }
}

void tfuav_mean_s8(const tfuav_mean_t *p, const int8_t *in, int8_t *out, int32_t *work)
{
    const tfuav_requant_t rq = tfuav_requant_setup(p->mult, p->shift);
    int32_t o, r, i;
    if (p->dims[0] > 0) {
        mean_any_axes(p, in, out, work);
        return;
    }
    for (o = 0; o < p->outer; o++) {
        const int8_t *x = in + o * p->reduce * p->inner;
        if (p->inner == 1) {
            int32_t s = 0;
            for (r = 0; r < p->reduce; r++) {
                s += x[r];
            }
            *out++ = (int8_t)tfuav_clamp(tfuav_requant_apply(s - p->in_zp_times_n, &rq) +
                                         p->out_zp, -128, 127);
            continue;
        }
        for (i = 0; i < p->inner; i++) {
            work[i] = 0;
        }
        for (r = 0; r < p->reduce; r++) {
            for (i = 0; i < p->inner; i++) {
                work[i] += x[i];
            }
            x += p->inner;
        }
        for (i = 0; i < p->inner; i++) {
            const int32_t v = tfuav_requant_apply(work[i] - p->in_zp_times_n, &rq);
            *out++ = (int8_t)tfuav_clamp(v + p->out_zp, -128, 127);
        }
    }
}

/* ---- SOFTMAX ------------------------------------------------------------------------ */

void tfuav_softmax_s8(const tfuav_softmax_t *p, const int8_t *in, int8_t *out)
{
    int32_t o, c;
    for (o = 0; o < p->outer; o++) {
        const int8_t *x = in + o * p->depth;
        int8_t *y = out + o * p->depth;
        int32_t max = -128, sum = 0, bits, scale, exponent;
        for (c = 0; c < p->depth; c++) {
            max = x[c] > max ? x[c] : max;
        }
        for (c = 0; c < p->depth; c++) {
            const int32_t diff = x[c] - max;
            if (diff >= p->diff_min) {
                sum += tfuav_rdbp(p->exp_table[-diff], 12); /* Q0 -> Q12 accumulator */
            }
        }
        scale = tfuav_reciprocal(sum, 12, &bits);
        exponent = bits + 31 - 8;
        for (c = 0; c < p->depth; c++) {
            const int32_t diff = x[c] - max;
            if (diff >= p->diff_min) {
                const int32_t v = tfuav_rdbp(tfuav_srdhm(scale, p->exp_table[-diff]), exponent);
                y[c] = (int8_t)tfuav_clamp(v - 128, -128, 127);
            } else {
                y[c] = -128;
            }
        }
    }
}

/* ---- L2_NORMALIZATION ----------------------------------------------------------------- */

void tfuav_l2norm_s8(const tfuav_l2norm_t *p, const int8_t *in, int8_t *out)
{
    int32_t o, c;
    for (o = 0; o < p->outer; o++) {
        const int8_t *x = in + o * p->depth;
        int32_t acc = 0, mult, shift;
        for (c = 0; c < p->depth; c++) {
            const int32_t v = x[c] - p->in_zp;
            acc += v * v;
        }
        inv_sqrt(acc, &mult, &shift);
        for (c = 0; c < p->depth; c++) {
            const int32_t v = tfuav_mbqm(x[c] - p->in_zp, mult, shift + 7);
            *out++ = (int8_t)tfuav_clamp(v, -128, 127);
        }
    }
}
