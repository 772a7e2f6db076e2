/*
 * tfuav_detect.h -- decoding of a tfuav detector's int8 output (plain C99, no malloc,
 * no libm, usable from C and C++).
 *
 * The detector has one output tensor [1, H, W, C + 4], int8, every channel a sigmoid
 * (TFLite LOGISTIC: scale 1/256, zero point -128), on a grid `stride` times smaller than
 * the input image:
 *   channels [0, C)       class-centre heatmap
 *   channels [C, C + 2)   box width and height as fractions of the input image's width
 *                         and height
 *   channels [C + 2, C + 4) the centre's sub-cell offset (dx, dy)
 *
 * A detection is a heatmap value that is >= each of its (up to) 8 neighbours in its own
 * class (equal neighbours all survive; cells outside the grid do not count), whose score
 * (q - zero_point) * scale is >= score_threshold.  Detections are ranked by score, best
 * first, ties broken by the flattened (y, x, class) index, lowest first, and the first
 * top_k are kept.  Peaks, ranking and threshold are decided on the int8 values: the
 * dequantised score is a strictly increasing function of them.
 *
 * Box of the detection at cell (x, y): centre ((x + dx) * stride, (y + dy) * stride),
 * size (width_fraction * W * stride, height_fraction * H * stride), in input-image
 * pixels, clipped to the image [0, W * stride] x [0, H * stride].
 *
 * Arithmetic: every value is computed in float, one rounding per operation, in the
 * order written in tfuav_detect.c; tfuav.runtime's numpy decoder (decode_head_int8)
 * does the same operations in float32.  With a power-of-two scale (every LOGISTIC
 * output) all of them are exact, so both give bit-identical boxes on any compiler.
 * With another scale they are identical as long as the compiler does not fuse a
 * multiply and an add (GCC: -std=c99 or -ffp-contract=off, as the firmware's Makefile
 * builds it).
 */
#ifndef TFUAV_DETECT_H
#define TFUAV_DETECT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int height;            /* H: rows of the output grid */
    int width;             /* W: columns of the output grid */
    int num_classes;       /* C: heatmap channels (the tensor has C + 4) */
    int stride;            /* input pixels per grid cell */
    float scale;           /* output tensor quantization: real = (q - zero_point) * scale */
    int zero_point;
    float score_threshold; /* keep scores >= this */
    int top_k;             /* keep at most this many boxes */
} tfuav_detect_config;

typedef struct {
    float x;      /* left edge, input-image pixels */
    float y;      /* top edge */
    float w;      /* width */
    float h;      /* height */
    float score;  /* dequantised heatmap value */
    int class_id; /* 0 .. C - 1 */
} tfuav_detect_box;

/* The work buffer tfuav_detect_decode needs for top_k = k: 2 words per candidate. */
#define TFUAV_DETECT_WORK_WORDS(k) (2u * (size_t)(k))
#define TFUAV_DETECT_WORK_BYTES(k) (4u * TFUAV_DETECT_WORK_WORDS(k))

#define TFUAV_DETECT_ERROR_CONFIG (-1) /* a size < 1, scale <= 0, or a grid too large */
#define TFUAV_DETECT_ERROR_WORK (-2)   /* work buffer smaller than TFUAV_DETECT_WORK_WORDS */

/* The smallest int8 value whose score passes the threshold, computed as the decoder
 * compares: (float)(q - zero_point) * scale >= score_threshold.  128 when none does. */
int tfuav_detect_min_q(const tfuav_detect_config *config);

/* Decodes `output` (H * W * (C + 4) int8 values, NHWC) into `boxes` (room for top_k),
 * best first.  `work` holds TFUAV_DETECT_WORK_WORDS(top_k) words (work_words says how
 * many it has).  Returns the number of boxes (0 .. top_k) or a TFUAV_DETECT_ERROR_*. */
int tfuav_detect_decode(const tfuav_detect_config *config, const int8_t *output,
                        uint32_t *work, size_t work_words, tfuav_detect_box *boxes);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* TFUAV_DETECT_H */
