/*
 * tfuav_nn_conv.c -- convolutions and matrix products (int8 in, int32 accumulators, int8
 * out), bit-exact with the TFLite reference kernels.
 *
 * The input offset (-input zero point) is folded into the bias by the generator:
 *   sum w * (x + off) = sum w * x + off * sum w,
 * which is the same int32 result, so the inner loops are plain int8 dot products.  Padded
 * input positions read as the input zero point, whose term cancels against the folded offset
 * exactly as the reference kernel's skipped positions do.
 */
#include <string.h>

#include "tfuav_nn.h"

/* ---- requantization ------------------------------------------------------------------ */

int32_t tfuav_round_to_int(double x)
{
    /* std::round (halves away from zero), saturated to int32; x - t is exact */
    double t;
    if (x >= 2147483647.0) {
        return INT32_MAX;
    }
    if (x <= -2147483648.0) {
        return INT32_MIN;
    }
    t = (double)(int32_t)x;
    if (x - t >= 0.5) {
        t += 1.0;
    } else if (t - x >= 0.5) {
        t -= 1.0;
    }
    return (int32_t)t;
}

/* acc already holds the bias: q points at {bias, multiplier, shift} of channel k. */
TFUAV_INLINE int8_t requant(const tfuav_rq_t *rq, const int32_t *q, int32_t k, int32_t acc)
{
    int32_t v;
    if (rq->scale == NULL) {
        v = tfuav_mbqm(acc, q[1], q[2]);
    } else {
        v = tfuav_round_to_int((double)acc * rq->scale[k]);
    }
    return (int8_t)tfuav_clamp(v + rq->out_zp, rq->act_min, rq->act_max);
}

/* Output range and zero point, held in locals by the hot loops. */
typedef struct {
    int32_t zp, lo, hi;
} out_range_t;

TFUAV_INLINE out_range_t out_range(const tfuav_rq_t *rq)
{
    out_range_t r;
    r.zp = rq->out_zp;
    r.lo = rq->act_min;
    r.hi = rq->act_max;
    return r;
}

TFUAV_INLINE int8_t clamp8(int32_t v, out_range_t r)
{
    v += r.zp;
    v = v < r.lo ? r.lo : v;
    return (int8_t)(v > r.hi ? r.hi : v);
}

TFUAV_INLINE int8_t requant_int(int32_t acc, const tfuav_requant_t *c, out_range_t r)
{
    return clamp8(tfuav_requant_apply(acc, c), r);
}

TFUAV_INLINE int8_t requant_float(int32_t acc, double scale, out_range_t r)
{
    return clamp8(tfuav_round_to_int((double)acc * scale), r);
}

/* ---- dot products --------------------------------------------------------------------- */

/*
 * Weight layout for the matrix products (written by the generator): output channels in
 * pairs (k, k+1); for each pair, depth/4 blocks of 8 bytes (4 depths of k, then the same 4
 * depths of k+1), then the depth%4 remaining depths as (k, k+1) byte pairs.  An odd last
 * channel follows as `depth` plain bytes.  One pointer walks a pair's weights in order.
 */
#if TFUAV_DSP
TFUAV_INLINE uint32_t ld32(const int8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

TFUAV_INLINE uint32_t sxtb16(uint32_t x)
{
    uint32_t r;
    __asm__("sxtb16 %0, %1" : "=r"(r) : "r"(x));
    return r;
}

TFUAV_INLINE uint32_t sxtb16_ror8(uint32_t x)
{
    uint32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
    return r;
}

TFUAV_INLINE int32_t smlad(uint32_t x, uint32_t y, int32_t acc)
{
    int32_t r;
    __asm__("smlad %0, %1, %2, %3" : "=r"(r) : "r"(x), "r"(y), "r"(acc));
    return r;
}
#endif

/* Two rows of a (a0, a1) times one channel pair: s = {a0.k, a0.k+1, a1.k, a1.k+1}. */
TFUAV_INLINE void dot_2x2(const int8_t *a0, const int8_t *a1, const int8_t *w, int32_t depth,
                          int32_t s[4])
{
    int32_t s00 = s[0], s01 = s[1], s10 = s[2], s11 = s[3];
    int32_t n = depth >> 2;
#if TFUAV_DSP
    for (; n > 0; n--) {
        const uint32_t x0 = ld32(a0), x1 = ld32(a1);
        const uint32_t x0e = sxtb16(x0), x0o = sxtb16_ror8(x0);
        const uint32_t x1e = sxtb16(x1), x1o = sxtb16_ror8(x1);
        uint32_t y = ld32(w);
        uint32_t ye = sxtb16(y), yo = sxtb16_ror8(y);
        s00 = smlad(x0e, ye, s00);
        s00 = smlad(x0o, yo, s00);
        s10 = smlad(x1e, ye, s10);
        s10 = smlad(x1o, yo, s10);
        y = ld32(w + 4);
        ye = sxtb16(y);
        yo = sxtb16_ror8(y);
        s01 = smlad(x0e, ye, s01);
        s01 = smlad(x0o, yo, s01);
        s11 = smlad(x1e, ye, s11);
        s11 = smlad(x1o, yo, s11);
        a0 += 4;
        a1 += 4;
        w += 8;
    }
#else
    for (; n > 0; n--) {
        int32_t x0 = a0[0], x1 = a1[0], y0 = w[0], y1 = w[4];
        s00 += x0 * y0;
        s01 += x0 * y1;
        s10 += x1 * y0;
        s11 += x1 * y1;
        x0 = a0[1];
        x1 = a1[1];
        y0 = w[1];
        y1 = w[5];
        s00 += x0 * y0;
        s01 += x0 * y1;
        s10 += x1 * y0;
        s11 += x1 * y1;
        x0 = a0[2];
        x1 = a1[2];
        y0 = w[2];
        y1 = w[6];
        s00 += x0 * y0;
        s01 += x0 * y1;
        s10 += x1 * y0;
        s11 += x1 * y1;
        x0 = a0[3];
        x1 = a1[3];
        y0 = w[3];
        y1 = w[7];
        s00 += x0 * y0;
        s01 += x0 * y1;
        s10 += x1 * y0;
        s11 += x1 * y1;
        a0 += 4;
        a1 += 4;
        w += 8;
    }
#endif
    for (n = depth & 3; n > 0; n--) {
        const int32_t x0 = *a0++, x1 = *a1++, y0 = w[0], y1 = w[1];
        s00 += x0 * y0;
        s01 += x0 * y1;
        s10 += x1 * y0;
        s11 += x1 * y1;
        w += 2;
    }
    s[0] = s00;
    s[1] = s01;
    s[2] = s10;
    s[3] = s11;
}

/* One row of a times one channel pair. */
TFUAV_INLINE void dot_1x2(const int8_t *a0, const int8_t *w, int32_t depth, int32_t s[2])
{
    int32_t s0 = s[0], s1 = s[1];
    int32_t n = depth >> 2;
#if TFUAV_DSP
    for (; n > 0; n--) {
        const uint32_t x0 = ld32(a0), y0 = ld32(w), y1 = ld32(w + 4);
        const uint32_t xe = sxtb16(x0), xo = sxtb16_ror8(x0);
        s0 = smlad(xe, sxtb16(y0), s0);
        s0 = smlad(xo, sxtb16_ror8(y0), s0);
        s1 = smlad(xe, sxtb16(y1), s1);
        s1 = smlad(xo, sxtb16_ror8(y1), s1);
        a0 += 4;
        w += 8;
    }
#else
    for (; n > 0; n--) {
        int32_t x0 = a0[0];
        s0 += x0 * w[0];
        s1 += x0 * w[4];
        x0 = a0[1];
        s0 += x0 * w[1];
        s1 += x0 * w[5];
        x0 = a0[2];
        s0 += x0 * w[2];
        s1 += x0 * w[6];
        x0 = a0[3];
        s0 += x0 * w[3];
        s1 += x0 * w[7];
        a0 += 4;
        w += 8;
    }
#endif
    for (n = depth & 3; n > 0; n--) {
        const int32_t x0 = *a0++;
        s0 += x0 * w[0];
        s1 += x0 * w[1];
        w += 2;
    }
    s[0] = s0;
    s[1] = s1;
}

/* Plain layout: one row of a times one channel. */
TFUAV_INLINE int32_t dot_1x1(const int8_t *a0, const int8_t *w0, int32_t depth, int32_t s)
{
    int32_t d = 0;
#if TFUAV_DSP
    for (; d + 4 <= depth; d += 4) {
        const uint32_t x0 = ld32(a0 + d), y0 = ld32(w0 + d);
        s = smlad(sxtb16(x0), sxtb16(y0), s);
        s = smlad(sxtb16_ror8(x0), sxtb16_ror8(y0), s);
    }
#endif
    for (; d < depth; d++) {
        s += (int32_t)a0[d] * w0[d];
    }
    return s;
}

/*
 * out[r * out_stride + k] = requant(q[k0 + k] bias + dot(a + r * a_stride, weights of k))
 * for r < rows, k < n_out.  Weight-stationary: each channel pair's requantization is set up
 * once and its weights meet every row of a tile of row_tile rows (sized by the generator so
 * that the tile of `a` stays in cache while all channel pairs pass over it).  use_scale
 * selects the float requantization of FULLY_CONNECTED (a constant: two copies are compiled).
 */
TFUAV_INLINE void matmul_body(const int8_t *a, int32_t rows, int32_t a_stride, const int8_t *w,
                              int32_t n_out, int32_t depth, int32_t row_tile,
                              const tfuav_rq_t *rq, int32_t k0, int8_t *out, int32_t out_stride,
                              const int use_scale)
{
    const int32_t pairs = n_out >> 1;
    const int32_t pair_bytes = 2 * depth;
    const out_range_t range = out_range(rq);
    const int32_t *qs = rq->q + 3 * k0;
    const double *sc = use_scale ? rq->scale + k0 : NULL;
    int32_t r0;
    if (row_tile < 2) {
        row_tile = rows;
    }
    for (r0 = 0; r0 < rows; r0 += row_tile) {
        const int32_t r1 = r0 + row_tile < rows ? r0 + row_tile : rows;
        int32_t pr, r;
        for (pr = 0; pr < pairs; pr++) {
            const int32_t k = 2 * pr;
            const int32_t *q = qs + 3 * k;
            const int8_t *wp = w + pr * pair_bytes;
            const int32_t b0 = q[0], b1 = q[3];
            const tfuav_requant_t c0 = tfuav_requant_setup(q[1], q[2]);
            const tfuav_requant_t c1 = tfuav_requant_setup(q[4], q[5]);
            const double f0 = use_scale ? sc[k] : 0.0, f1 = use_scale ? sc[k + 1] : 0.0;
            for (r = r0; r + 2 <= r1; r += 2) {
                const int8_t *a0 = a + r * a_stride;
                int8_t *o0 = out + r * out_stride + k;
                int32_t s[4];
                s[0] = b0;
                s[1] = b1;
                s[2] = b0;
                s[3] = b1;
                dot_2x2(a0, a0 + a_stride, wp, depth, s);
                if (use_scale) {
                    o0[0] = requant_float(s[0], f0, range);
                    o0[1] = requant_float(s[1], f1, range);
                    o0[out_stride] = requant_float(s[2], f0, range);
                    o0[out_stride + 1] = requant_float(s[3], f1, range);
                } else {
                    o0[0] = requant_int(s[0], &c0, range);
                    o0[1] = requant_int(s[1], &c1, range);
                    o0[out_stride] = requant_int(s[2], &c0, range);
                    o0[out_stride + 1] = requant_int(s[3], &c1, range);
                }
            }
            if (r < r1) {
                int8_t *o0 = out + r * out_stride + k;
                int32_t s[2];
                s[0] = b0;
                s[1] = b1;
                dot_1x2(a + r * a_stride, wp, depth, s);
                if (use_scale) {
                    o0[0] = requant_float(s[0], f0, range);
                    o0[1] = requant_float(s[1], f1, range);
                } else {
                    o0[0] = requant_int(s[0], &c0, range);
                    o0[1] = requant_int(s[1], &c1, range);
                }
            }
        }
        if (n_out & 1) {
            const int32_t k = n_out - 1;
            const int32_t *q = qs + 3 * k;
            const int8_t *wk = w + pairs * pair_bytes;
            const tfuav_requant_t c = tfuav_requant_setup(q[1], q[2]);
            for (r = r0; r < r1; r++) {
                const int32_t acc = dot_1x1(a + r * a_stride, wk, depth, q[0]);
                out[r * out_stride + k] = use_scale ? requant_float(acc, sc[k], range)
                                                    : requant_int(acc, &c, range);
            }
        }
    }
}

static void matmul_s8(const int8_t *a, int32_t rows, int32_t a_stride, const int8_t *w,
                      int32_t n_out, int32_t depth, int32_t row_tile, const tfuav_rq_t *rq,
                      int32_t k0, int8_t *out, int32_t out_stride)
{
    matmul_body(a, rows, a_stride, w, n_out, depth, row_tile, rq, k0, out, out_stride, 0);
}

static void matmul_float_rq_s8(const int8_t *a, int32_t rows, int32_t a_stride,
                               const int8_t *w, int32_t n_out, int32_t depth, int32_t row_tile,
                               const tfuav_rq_t *rq, int8_t *out, int32_t out_stride)
{
    matmul_body(a, rows, a_stride, w, n_out, depth, row_tile, rq, 0, out, out_stride, 1);
}

/* ---- CONV_2D ------------------------------------------------------------------------ */

void tfuav_conv_1x1_s8(const tfuav_conv_t *p, const int8_t *in, int8_t *out)
{
    const int32_t cin = p->in_c / p->groups;
    const int32_t cout = p->out_c / p->groups;
    int32_t g;
    for (g = 0; g < p->groups; g++) {
        const int8_t *w = p->w + g * cout * cin;
        if (p->stride_h == 1 && p->stride_w == 1) {
            matmul_s8(in + g * cin, p->out_h * p->out_w, p->in_c, w, cout, cin, p->tile,
                      &p->rq, g * cout, out + g * cout, p->out_c);
        } else {
            int32_t oy;
            for (oy = 0; oy < p->out_h; oy++) {
                const int8_t *row = in + (oy * p->stride_h * p->in_w) * p->in_c + g * cin;
                matmul_s8(row, p->out_w, p->stride_w * p->in_c, w, cout, cin, p->tile,
                          &p->rq, g * cout, out + oy * p->out_w * p->out_c + g * cout,
                          p->out_c);
            }
        }
    }
}

TFUAV_INLINE void copy_bytes(int8_t *dst, const int8_t *src, int32_t n)
{
    while (n-- > 0) {
        *dst++ = *src++;
    }
}

TFUAV_INLINE void fill_bytes(int8_t *dst, int8_t v, int32_t n)
{
    while (n-- > 0) {
        *dst++ = v;
    }
}

/* One im2col column: the receptive field of output (oy, ox) for group g, padded positions
 * set to the input zero point. */
static void im2col(const tfuav_conv_t *p, const int8_t *in, int32_t oy, int32_t ox, int32_t g,
                   int8_t *col)
{
    const int32_t cin = p->in_c / p->groups;
    const int32_t iy0 = oy * p->stride_h - p->pad_t;
    const int32_t ix0 = ox * p->stride_w - p->pad_l;
    const int8_t zp = (int8_t)p->in_zp;
    int32_t ky, kx;
    for (ky = 0; ky < p->k_h; ky++) {
        const int32_t iy = iy0 + ky * p->dil_h;
        if (iy < 0 || iy >= p->in_h) {
            fill_bytes(col, zp, p->k_w * cin);
            col += p->k_w * cin;
            continue;
        }
        if (p->dil_w == 1 && p->groups == 1 && ix0 >= 0 && ix0 + p->k_w <= p->in_w) {
            copy_bytes(col, in + (iy * p->in_w + ix0) * p->in_c, p->k_w * cin);
            col += p->k_w * cin;
            continue;
        }
        for (kx = 0; kx < p->k_w; kx++) {
            const int32_t ix = ix0 + kx * p->dil_w;
            if (ix < 0 || ix >= p->in_w) {
                fill_bytes(col, zp, cin);
            } else {
                copy_bytes(col, in + (iy * p->in_w + ix) * p->in_c + g * cin, cin);
            }
            col += cin;
        }
    }
}

void tfuav_conv_s8(const tfuav_conv_t *p, const int8_t *in, int8_t *out, void *work)
{
    const int32_t cin = p->in_c / p->groups;
    const int32_t cout = p->out_c / p->groups;
    const int32_t depth = p->k_h * p->k_w * cin;
    const int32_t pixels = p->out_h * p->out_w;
    const int32_t batch = p->tile >= 2 ? p->tile : 2;
    int8_t *cols = (int8_t *)work;
    int32_t g, pix;
    for (g = 0; g < p->groups; g++) {
        const int8_t *w = p->w + g * cout * depth;
        int32_t oy = 0, ox = 0;
        for (pix = 0; pix < pixels; pix += batch) {
            const int32_t n = pix + batch <= pixels ? batch : pixels - pix;
            int32_t i;
            for (i = 0; i < n; i++) {
                im2col(p, in, oy, ox, g, cols + i * depth);
                if (++ox == p->out_w) {
                    ox = 0;
                    oy++;
                }
            }
            matmul_s8(cols, n, depth, w, cout, depth, 0, &p->rq, g * cout,
                      out + pix * p->out_c + g * cout, p->out_c);
        }
    }
}

/* ---- DEPTHWISE_CONV_2D ---------------------------------------------------------------- */

/* First and one-past-last filter taps that land inside [0, size) from origin o. */
TFUAV_INLINE void tap_range(int32_t o, int32_t dil, int32_t k, int32_t size, int32_t *lo,
                            int32_t *hi)
{
    int32_t a = 0, b = k;
    if (o < 0) {
        a = (-o + dil - 1) / dil;
    }
    if (o + (k - 1) * dil >= size) {
        b = size - o > 0 ? (size - o + dil - 1) / dil : 0;
    }
    *lo = a;
    *hi = b > a ? b : a;
}

/* Any depth multiplier: output channel oc reads input channel oc / depth_mult. */
static void dw_generic(const tfuav_conv_t *p, const int8_t *in, int8_t *out)
{
    const out_range_t range = out_range(&p->rq);
    const int32_t off = -p->in_zp;
    int32_t oy, ox, oc, ky, kx;
    for (oy = 0; oy < p->out_h; oy++) {
        const int32_t iy0 = oy * p->stride_h - p->pad_t;
        int32_t ky0, ky1;
        tap_range(iy0, p->dil_h, p->k_h, p->in_h, &ky0, &ky1);
        for (ox = 0; ox < p->out_w; ox++) {
            const int32_t ix0 = ox * p->stride_w - p->pad_l;
            int32_t kx0, kx1;
            tap_range(ix0, p->dil_w, p->k_w, p->in_w, &kx0, &kx1);
            for (oc = 0; oc < p->out_c; oc++) {
                const int32_t *q = p->rq.q + 3 * oc;
                int32_t s = p->bias_raw[oc];
                for (ky = ky0; ky < ky1; ky++) {
                    const int32_t iy = iy0 + ky * p->dil_h;
                    for (kx = kx0; kx < kx1; kx++) {
                        const int32_t ix = ix0 + kx * p->dil_w;
                        s += p->w[(ky * p->k_w + kx) * p->out_c + oc] *
                             (in[(iy * p->in_w + ix) * p->in_c + oc / p->depth_mult] + off);
                    }
                }
                *out++ = clamp8(tfuav_mbqm(s, q[1], q[2]), range);
            }
        }
    }
}

#if TFUAV_DSP
TFUAV_INLINE uint32_t sadd16(uint32_t a, uint32_t b)
{
    uint32_t r;
    __asm__("sadd16 %0, %1, %2" : "=r"(r) : "r"(a), "r"(b));
    return r;
}

TFUAV_INLINE int32_t smlabb(uint32_t a, uint32_t b, int32_t acc)
{
    int32_t r;
    __asm__("smlabb %0, %1, %2, %3" : "=r"(r) : "r"(a), "r"(b), "r"(acc));
    return r;
}

TFUAV_INLINE int32_t smlatt(uint32_t a, uint32_t b, int32_t acc)
{
    int32_t r;
    __asm__("smlatt %0, %1, %2, %3" : "=r"(r) : "r"(a), "r"(b), "r"(acc));
    return r;
}
#endif

/*
 * One output pixel, depth multiplier 1.  The taps that land inside the input are the same
 * for every channel: tap_off lists their byte offsets from the window origin `base`, tap_idx
 * their numbers (all taps, in order, when edge is 0).  Channels go four at a time with the
 * accumulators in registers; the weights of a block of four channels are [taps][4] int16 so
 * one pointer walks them.  edge == 0: all taps inside, and the bias has the input offset
 * folded in; edge == 1: the input offset is added per tap, as the reference kernel does.
 */
TFUAV_INLINE void dw_pixel(const tfuav_conv_t *p, const int8_t *in, int32_t base,
                           const int32_t *tap_off, const int32_t *tap_idx, int32_t taps,
                           const int edge, int8_t *o, out_range_t range,
                           const tfuav_requant_t *rc)
{
    const int32_t C = p->out_c;
    const int32_t c4 = C & ~3;
    const int32_t n_taps = p->k_h * p->k_w;
    const int32_t off = edge ? -p->in_zp : 0;
    const int32_t *bias = edge ? p->bias_raw : NULL;
    const int8_t *x = in + base;
    int32_t c, t;
#if TFUAV_DSP
    const uint32_t off2 = ((uint32_t)(uint16_t)off << 16) | (uint16_t)off;
#endif
    for (c = 0; c < c4; c += 4) {
        const int32_t *q = p->rq.q + 3 * c;
        const int16_t *wb = p->w16 + c * n_taps;
        int32_t s0 = edge ? bias[c] : q[0], s1 = edge ? bias[c + 1] : q[3];
        int32_t s2 = edge ? bias[c + 2] : q[6], s3 = edge ? bias[c + 3] : q[9];
        for (t = 0; t < taps; t++) {
            const int8_t *xp = x + tap_off[t] + c;
            const int16_t *wp = edge ? wb + 4 * tap_idx[t] : wb + 4 * t;
#if TFUAV_DSP
            uint32_t xv, xe, xo, we, wo;
            memcpy(&xv, xp, 4);
            memcpy(&we, wp, 4);
            memcpy(&wo, wp + 2, 4);
            xe = sxtb16(xv);
            xo = sxtb16_ror8(xv);
            if (edge) {
                xe = sadd16(xe, off2);
                xo = sadd16(xo, off2);
            }
            s0 = smlabb(xe, we, s0);
            s2 = smlatt(xe, we, s2);
            s1 = smlabb(xo, wo, s1);
            s3 = smlatt(xo, wo, s3);
#else
            s0 += wp[0] * (xp[0] + off);
            s2 += wp[1] * (xp[2] + off);
            s1 += wp[2] * (xp[1] + off);
            s3 += wp[3] * (xp[3] + off);
#endif
        }
        o[c] = requant_int(s0, rc + c, range);
        o[c + 1] = requant_int(s1, rc + c + 1, range);
        o[c + 2] = requant_int(s2, rc + c + 2, range);
        o[c + 3] = requant_int(s3, rc + c + 3, range);
    }
    for (; c < C; c++) {
        const int16_t *wt = p->w16 + c * n_taps;
        int32_t s = edge ? bias[c] : p->rq.q[3 * c];
        for (t = 0; t < taps; t++) {
            s += wt[edge ? tap_idx[t] : t] * (x[tap_off[t] + c] + off);
        }
        o[c] = requant_int(s, rc + c, range);
    }
}

/* work: out_c requantization set-ups, then 3 * k_h * k_w int32 (tap lists). */
void tfuav_depthwise_s8(const tfuav_conv_t *p, const int8_t *in, int8_t *out, void *work)
{
    const int32_t n_taps = p->k_h * p->k_w;
    tfuav_requant_t *rc = (tfuav_requant_t *)work;
    int32_t *all_off = (int32_t *)(rc + p->out_c);
    int32_t *tap_off = all_off + n_taps, *tap_idx = all_off + 2 * n_taps;
    const out_range_t range = out_range(&p->rq);
    const int32_t C = p->in_c;
    int32_t oy, ox, ky, kx, n_all = 0;
    if (p->depth_mult != 1) {
        dw_generic(p, in, out);
        return;
    }
    for (ox = 0; ox < p->out_c; ox++) {
        rc[ox] = tfuav_requant_setup(p->rq.q[3 * ox + 1], p->rq.q[3 * ox + 2]);
    }
    for (ky = 0; ky < p->k_h; ky++) {
        for (kx = 0; kx < p->k_w; kx++) {
            all_off[n_all++] = (ky * p->dil_h * p->in_w + kx * p->dil_w) * C;
        }
    }
    for (oy = 0; oy < p->out_h; oy++) {
        const int32_t iy0 = oy * p->stride_h - p->pad_t;
        int32_t ky0, ky1;
        tap_range(iy0, p->dil_h, p->k_h, p->in_h, &ky0, &ky1);
        for (ox = 0; ox < p->out_w; ox++) {
            const int32_t ix0 = ox * p->stride_w - p->pad_l;
            const int32_t base = (iy0 * p->in_w + ix0) * C;
            int8_t *o = out + (oy * p->out_w + ox) * p->out_c;
            int32_t kx0, kx1;
            tap_range(ix0, p->dil_w, p->k_w, p->in_w, &kx0, &kx1);
            if (ky0 == 0 && kx0 == 0 && ky1 == p->k_h && kx1 == p->k_w) {
                dw_pixel(p, in, base, all_off, NULL, n_all, 0, o, range, rc);
            } else {
                int32_t n = 0;
                for (ky = ky0; ky < ky1; ky++) {
                    for (kx = kx0; kx < kx1; kx++) {
                        tap_off[n] = (ky * p->dil_h * p->in_w + kx * p->dil_w) * C;
                        tap_idx[n++] = ky * p->k_w + kx;
                    }
                }
                dw_pixel(p, in, base, tap_off, tap_idx, n, 1, o, range, rc);
            }
        }
    }
}

/* ---- FULLY_CONNECTED ------------------------------------------------------------------ */

void tfuav_fully_connected_s8(const tfuav_fc_t *p, const int8_t *in, int8_t *out)
{
    if (p->rq.scale != NULL) {
        matmul_float_rq_s8(in, p->rows, p->depth, p->w, p->units, p->depth, p->row_tile, &p->rq,
                           out, p->units);
    } else {
        matmul_s8(in, p->rows, p->depth, p->w, p->units, p->depth, p->row_tile, &p->rq, 0, out,
                  p->units);
    }
}

/* ---- TRANSPOSE_CONV ------------------------------------------------------------------ */

void tfuav_transpose_conv_s8(const tfuav_tconv_t *p, const int8_t *in, int8_t *out,
                             int32_t *work)
{
    const int32_t n_out = p->out_h * p->out_w * p->out_c;
    int32_t iy, ix, i;
    memset(work, 0, (size_t)n_out * sizeof(int32_t));
    for (iy = 0; iy < p->in_h; iy++) {
        for (ix = 0; ix < p->in_w; ix++) {
            const int8_t *x = in + (iy * p->in_w + ix) * p->in_c;
            const int32_t oy0 = iy * p->stride_h - p->pad_t;
            const int32_t ox0 = ix * p->stride_w - p->pad_l;
            int32_t ky, kx, oc, ic;
            for (ky = 0; ky < p->k_h; ky++) {
                const int32_t oy = oy0 + ky;
                if (oy < 0 || oy >= p->out_h) {
                    continue;
                }
                for (kx = 0; kx < p->k_w; kx++) {
                    const int32_t ox = ox0 + kx;
                    int32_t *acc;
                    if (ox < 0 || ox >= p->out_w) {
                        continue;
                    }
                    acc = work + (oy * p->out_w + ox) * p->out_c;
                    for (oc = 0; oc < p->out_c; oc++) {
                        const int8_t *w = p->w + ((oc * p->k_h + ky) * p->k_w + kx) * p->in_c;
                        int32_t s = 0;
                        for (ic = 0; ic < p->in_c; ic++) {
                            s += (x[ic] + p->in_offset) * w[ic];
                        }
                        acc[oc] += s;
                    }
                }
            }
        }
    }
    for (i = 0; i < n_out; i++) {
        const int32_t oc = i % p->out_c;
        const int32_t *q = p->rq.q + 3 * oc;
        out[i] = requant(&p->rq, q, oc, work[i] + q[0]);
    }
}

/* ---- BATCH_MATMUL -------------------------------------------------------------------- */

void tfuav_batch_matmul_s8(const tfuav_bmm_t *p, const int8_t *lhs, const int8_t *rhs,
                           int8_t *out)
{
    int32_t b, r, c, d;
    for (b = 0; b < p->batches; b++) {
        const int8_t *l = lhs + b * p->lhs_batch_stride;
        const int8_t *h = rhs + b * p->rhs_batch_stride;
        for (r = 0; r < p->rows; r++) {
            for (c = 0; c < p->cols; c++) {
                int32_t acc = 0, v;
                for (d = 0; d < p->depth; d++) {
                    acc += (l[r * p->lhs_row_stride + d * p->lhs_depth_stride] + p->lhs_offset) *
                           (h[d * p->rhs_depth_stride + c * p->rhs_col_stride] + p->rhs_offset);
                }
                v = tfuav_mbqm(acc, p->mult, p->shift) + p->out_zp;
                *out++ = (int8_t)tfuav_clamp(v, p->act_min, p->act_max);
            }
        }
    }
}
