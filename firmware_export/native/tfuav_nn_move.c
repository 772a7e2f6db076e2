/*
 * tfuav_nn_move.c -- data movement: strided block copies (CONCATENATION, SPLIT, SLICE,
 * STRIDED_SLICE, PAD, TRANSPOSE are all made of these), GATHER on a constant index list,
 * RESIZE_NEAREST_NEIGHBOR through precomputed source indices.
 */
#include <string.h>

#include "tfuav_nn.h"

void tfuav_copy(const tfuav_copy_t *p, const int8_t *src, int8_t *dst)
{
    int32_t i0, i1, i2, i3;
    src += p->src_offset;
    dst += p->dst_offset;
    for (i0 = 0; i0 < p->dims[0]; i0++) {
        for (i1 = 0; i1 < p->dims[1]; i1++) {
            for (i2 = 0; i2 < p->dims[2]; i2++) {
                const int8_t *s = src + i0 * p->src_stride[0] + i1 * p->src_stride[1] +
                                  i2 * p->src_stride[2];
                int8_t *d = dst + i0 * p->dst_stride[0] + i1 * p->dst_stride[1] +
                            i2 * p->dst_stride[2];
                if (p->run > 32) {
                    for (i3 = 0; i3 < p->dims[3]; i3++) {
                        memmove(d + i3 * p->dst_stride[3], s + i3 * p->src_stride[3],
                                (size_t)p->run);
                    }
                } else if (p->run > 1) {
                    /* short runs (channel groups): a byte loop beats a library call */
                    const int32_t ss = p->src_stride[3], ds = p->dst_stride[3], n = p->run;
                    for (i3 = 0; i3 < p->dims[3]; i3++) {
                        const int8_t *sp = s + i3 * ss;
                        int8_t *dp = d + i3 * ds;
                        int32_t k;
                        for (k = 0; k < n; k++) {
                            dp[k] = sp[k];
                        }
                    }
                } else {
                    const int32_t ss = p->src_stride[3], ds = p->dst_stride[3];
                    for (i3 = 0; i3 < p->dims[3]; i3++) {
                        d[i3 * ds] = s[i3 * ss];
                    }
                }
            }
        }
    }
}

void tfuav_fill(int8_t *dst, int32_t n, int8_t value)
{
    memset(dst, value, (size_t)n);
}

void tfuav_gather(const tfuav_gather_t *p, const int8_t *in, int8_t *out)
{
    int32_t o, j;
    for (o = 0; o < p->outer; o++) {
        const int8_t *src = in + o * p->axis_in * p->inner;
        if (p->inner == 1) {
            for (j = 0; j < p->axis_out; j++) {
                *out++ = src[p->index[j]];
            }
        } else {
            for (j = 0; j < p->axis_out; j++) {
                memcpy(out, src + p->index[j] * p->inner, (size_t)p->inner);
                out += p->inner;
            }
        }
    }
}

void tfuav_resize_nearest(const tfuav_resize_t *p, const int8_t *in, int8_t *out)
{
    int32_t b, y, x;
    for (b = 0; b < p->batches; b++) {
        const int8_t *img = in + b * p->in_h * p->in_w * p->depth;
        for (y = 0; y < p->out_h; y++) {
            const int8_t *row = img + p->src_y[y] * p->in_w * p->depth;
            for (x = 0; x < p->out_w; x++) {
                memcpy(out, row + p->src_x[x] * p->depth, (size_t)p->depth);
                out += p->depth;
            }
        }
    }
}
