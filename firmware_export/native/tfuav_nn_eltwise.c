/*
 * tfuav_nn_eltwise.c -- element-wise int8 kernels: table lookups (activations,
 * requantization) and two-input arithmetic with broadcasting, bit-exact with the TFLite
 * reference kernels (ADD, SUB, MUL, DIV, MAXIMUM, MINIMUM).
 */
#include "tfuav_nn.h"

void tfuav_lut_s8(const int8_t *table, int32_t n, const int8_t *in, int8_t *out)
{
    int32_t i;
    for (i = 0; i < n; i++) {
        out[i] = table[(uint8_t)in[i]];
    }
}

/* The parameters the element functions use, in locals (the compiler cannot keep them in
 * registers through the struct: the output might alias it). */
typedef struct {
    int32_t off1, off2, left_shift, zp, lo, hi;
    int32_t mult, shift; /* DIV: the output multiplier as given */
    tfuav_requant_t in1, in2, out;
    const int32_t *table1, *table2;
} binary_t;

static binary_t binary_setup(const tfuav_binary_t *p)
{
    binary_t b;
    b.off1 = p->in1_offset;
    b.off2 = p->in2_offset;
    b.left_shift = p->left_shift;
    b.zp = p->out_zp;
    b.mult = p->mult;
    b.shift = p->shift;
    b.lo = p->act_min;
    b.hi = p->act_max;
    b.in1 = tfuav_requant_setup(p->mult1, p->shift1);
    b.in2 = tfuav_requant_setup(p->mult2, p->shift2);
    b.out = tfuav_requant_setup(p->mult, p->shift);
    b.table1 = p->table1;
    b.table2 = p->table2;
    return b;
}

/* Visits the broadcast output in order; F(&b, x, y) gives the output for one pair. */
#define TFUAV_BROADCAST(p, a, b, out, F)                                                     \
    do {                                                                                     \
        const binary_t bp_ = binary_setup(p);                                                \
        const int32_t d0_ = (p)->dims[0], d1_ = (p)->dims[1], d2_ = (p)->dims[2];            \
        const int32_t d3_ = (p)->dims[3], sx_ = (p)->stride1[3], sy_ = (p)->stride2[3];       \
        int32_t i0, i1, i2, i3;                                                              \
        int8_t *o_ = (out);                                                                  \
        for (i0 = 0; i0 < d0_; i0++) {                                                       \
            for (i1 = 0; i1 < d1_; i1++) {                                                   \
                for (i2 = 0; i2 < d2_; i2++) {                                               \
                    const int8_t *x_ = (a) + i0 * (p)->stride1[0] + i1 * (p)->stride1[1] +   \
                                       i2 * (p)->stride1[2];                                 \
                    const int8_t *y_ = (b) + i0 * (p)->stride2[0] + i1 * (p)->stride2[1] +   \
                                       i2 * (p)->stride2[2];                                 \
                    if (sx_ == 1 && sy_ == 1) {                                              \
                        for (i3 = 0; i3 < d3_; i3++) {                                       \
                            *o_++ = F(&bp_, x_[i3], y_[i3]);                                 \
                        }                                                                    \
                    } else {                                                                 \
                        for (i3 = 0; i3 < d3_; i3++) {                                       \
                            *o_++ = F(&bp_, x_[i3 * sx_], y_[i3 * sy_]);                     \
                        }                                                                    \
                    }                                                                        \
                }                                                                            \
            }                                                                                \
        }                                                                                    \
    } while (0)

TFUAV_INLINE int8_t finish(const binary_t *b, int32_t v)
{
    v += b->zp;
    v = v < b->lo ? b->lo : v;
    return (int8_t)(v > b->hi ? b->hi : v);
}

TFUAV_INLINE int8_t add_one(const binary_t *b, int8_t x, int8_t y)
{
    const int32_t sx = tfuav_requant_apply((int32_t)((uint32_t)(x + b->off1) << b->left_shift),
                                           &b->in1);
    const int32_t sy = tfuav_requant_apply((int32_t)((uint32_t)(y + b->off2) << b->left_shift),
                                           &b->in2);
    return finish(b, tfuav_requant_apply(sx + sy, &b->out));
}

TFUAV_INLINE int8_t add_table(const binary_t *b, int8_t x, int8_t y)
{
    return finish(b, tfuav_requant_apply(b->table1[(uint8_t)x] + b->table2[(uint8_t)y], &b->out));
}

TFUAV_INLINE int8_t sub_one(const binary_t *b, int8_t x, int8_t y)
{
    const int32_t sx = tfuav_requant_apply((int32_t)((uint32_t)(x + b->off1) << b->left_shift),
                                           &b->in1);
    const int32_t sy = tfuav_requant_apply((int32_t)((uint32_t)(y + b->off2) << b->left_shift),
                                           &b->in2);
    return finish(b, tfuav_requant_apply(sx - sy, &b->out));
}

TFUAV_INLINE int8_t sub_table(const binary_t *b, int8_t x, int8_t y)
{
    return finish(b, tfuav_requant_apply(b->table1[(uint8_t)x] - b->table2[(uint8_t)y], &b->out));
}

void tfuav_add_s8(const tfuav_binary_t *p, const int8_t *a, const int8_t *b, int8_t *out)
{
    if (p->table1 != NULL) {
        TFUAV_BROADCAST(p, a, b, out, add_table);
    } else {
        TFUAV_BROADCAST(p, a, b, out, add_one);
    }
}

void tfuav_sub_s8(const tfuav_binary_t *p, const int8_t *a, const int8_t *b, int8_t *out)
{
    if (p->table1 != NULL) {
        TFUAV_BROADCAST(p, a, b, out, sub_table);
    } else {
        TFUAV_BROADCAST(p, a, b, out, sub_one);
    }
}

TFUAV_INLINE int8_t sqdiff_one(const binary_t *b, int8_t x, int8_t y)
{
    const int32_t sx = tfuav_requant_apply((int32_t)((uint32_t)(x + b->off1) << b->left_shift),
                                           &b->in1);
    const int32_t sy = tfuav_requant_apply((int32_t)((uint32_t)(y + b->off2) << b->left_shift),
                                           &b->in2);
    return finish(b, tfuav_requant_apply((sx - sy) * (sx - sy), &b->out));
}

TFUAV_INLINE int8_t sqdiff_table(const binary_t *b, int8_t x, int8_t y)
{
    const int32_t d = b->table1[(uint8_t)x] - b->table2[(uint8_t)y];
    return finish(b, tfuav_requant_apply(d * d, &b->out));
}

void tfuav_squared_difference_s8(const tfuav_binary_t *p, const int8_t *a, const int8_t *b,
                                 int8_t *out)
{
    if (p->table1 != NULL) {
        TFUAV_BROADCAST(p, a, b, out, sqdiff_table);
    } else {
        TFUAV_BROADCAST(p, a, b, out, sqdiff_one);
    }
}

TFUAV_INLINE int8_t mul_one(const binary_t *b, int8_t x, int8_t y)
{
    return finish(b, tfuav_requant_apply((x + b->off1) * (y + b->off2), &b->out));
}

void tfuav_mul_s8(const tfuav_binary_t *p, const int8_t *a, const int8_t *b, int8_t *out)
{
    TFUAV_BROADCAST(p, a, b, out, mul_one);
}

/* Number of redundant sign bits (GCC's __builtin_clrsb). */
static int32_t leading_sign_bits(int32_t x)
{
    uint32_t u = x < 0 ? ~(uint32_t)x : (uint32_t)x;
    int32_t n = 0;
    if (u == 0u) {
        return 31;
    }
    while (!(u & 0x80000000u)) {
        u <<= 1;
        n++;
    }
    return n - 1;
}

static int8_t div_one(const binary_t *b, int8_t x, int8_t y)
{
    int32_t num = x + b->off1;
    int32_t den = y + b->off2;
    int32_t recip_shift, inv, headroom, quotient;
    if (den < 0) {
        num = -num;
        den = -den;
    }
    inv = tfuav_reciprocal(den, 31, &recip_shift);
    headroom = leading_sign_bits(num);
    quotient = tfuav_srdhm((int32_t)((uint32_t)num << headroom), inv);
    return finish(b, tfuav_rdbp(tfuav_srdhm(quotient, b->mult),
                                -(b->shift - recip_shift - headroom)));
}

void tfuav_div_s8(const tfuav_binary_t *p, const int8_t *a, const int8_t *b, int8_t *out)
{
    TFUAV_BROADCAST(p, a, b, out, div_one);
}

TFUAV_INLINE int8_t max_one(const binary_t *b, int8_t x, int8_t y)
{
    (void)b;
    return x > y ? x : y;
}

TFUAV_INLINE int8_t min_one(const binary_t *b, int8_t x, int8_t y)
{
    (void)b;
    return x < y ? x : y;
}

void tfuav_max_s8(const tfuav_binary_t *p, const int8_t *a, const int8_t *b, int8_t *out)
{
    TFUAV_BROADCAST(p, a, b, out, max_one);
}

void tfuav_min_s8(const tfuav_binary_t *p, const int8_t *a, const int8_t *b, int8_t *out)
{
    TFUAV_BROADCAST(p, a, b, out, min_one);
}
