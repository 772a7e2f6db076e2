/*
 * detect_golden.c -- the firmware harness's box check for a detector; see detect_golden.h.
 * Plain C99 (also compiles as C++); no float printf (newlib-nano has none by default).
 */
#include <stdio.h>

#include "detect_golden.h"
#include "golden_data.h"
#include "model_config.h"
#include "port.h"
#include "tfuav_detect.h"

#ifdef __cplusplus
extern "C" {
#endif

static const tfuav_detect_config kDetectConfig = {
    MODEL_DETECT_GRID_HEIGHT, MODEL_DETECT_GRID_WIDTH, MODEL_DETECT_NUM_CLASSES,
    MODEL_DETECT_STRIDE,      MODEL_OUTPUT_SCALE,      MODEL_OUTPUT_ZERO_POINT,
    MODEL_DETECT_SCORE_THRESHOLD, MODEL_DETECT_TOP_K};

static uint32_t g_detect_work[TFUAV_DETECT_WORK_WORDS(MODEL_DETECT_TOP_K)];
static tfuav_detect_box g_detect_boxes[MODEL_DETECT_TOP_K];
static char g_detect_line[256];

#define TFUAV_DECIMAL_CHARS 24

/* v (0 <= v < 2^32) in decimal: exact for values with at most 9 binary fraction digits
 * (every score and box value of a LOGISTIC output), else cut after 9 decimals. */
static const char *tfuav_decimal(char *buf, float v)
{
    uint32_t whole;
    uint32_t frac;
    int n;
    int digits = 0;

    if (!(v >= 0.0f)) {
        v = 0.0f;
    }
    whole = (uint32_t)v;
    /* the fraction as a 24-bit fixed-point number; v - whole is exact */
    frac = (uint32_t)((v - (float)whole) * 16777216.0f);
    n = snprintf(buf, TFUAV_DECIMAL_CHARS, "%lu", (unsigned long)whole);
    if (frac != 0u) {
        buf[n++] = '.';
        while (frac != 0u && digits < 9) {
            frac *= 10u;
            buf[n++] = (char)('0' + (frac >> 24));
            frac &= 0xFFFFFFu;
            ++digits;
        }
        buf[n] = '\0';
    }
    return buf;
}

static int tfuav_same_box(const tfuav_detect_box *a, const tfuav_detect_box *b)
{
    return a->class_id == b->class_id && a->score == b->score && a->x == b->x &&
           a->y == b->y && a->w == b->w && a->h == b->h;
}

int tfuav_detect_check_golden(int golden, const int8_t *output)
{
    char s[TFUAV_DECIMAL_CHARS], x[TFUAV_DECIMAL_CHARS], y[TFUAV_DECIMAL_CHARS];
    char w[TFUAV_DECIMAL_CHARS], h[TFUAV_DECIMAL_CHARS];
    const int expected = g_golden_box_count[golden];
    const int have_cycles = tfuav_cycles_available();
    uint32_t start;
    uint32_t cycles;
    int count;
    int rank;
    int mismatches = 0;

    start = tfuav_cycles_now();
    count = tfuav_detect_decode(&kDetectConfig, output, g_detect_work,
                                sizeof(g_detect_work) / sizeof(g_detect_work[0]),
                                g_detect_boxes);
    cycles = tfuav_cycles_now() - start;
    if (count < 0) {
        snprintf(g_detect_line, sizeof(g_detect_line),
                 "{\"event\":\"error\",\"stage\":\"boxes\",\"detail\":\"decoder error %d\"}\n",
                 count);
        tfuav_port_write(g_detect_line);
        return expected > 0 ? expected : 1;
    }
    for (rank = 0; rank < count; ++rank) {
        const tfuav_detect_box *box = &g_detect_boxes[rank];
        const int known = box->class_id >= 0 && box->class_id < MODEL_LABEL_COUNT;
        snprintf(g_detect_line, sizeof(g_detect_line),
                 "{\"event\":\"box\",\"golden\":%d,\"rank\":%d,\"class\":%d,\"label\":\"%s\","
                 "\"score\":%s,\"x\":%s,\"y\":%s,\"w\":%s,\"h\":%s}\n",
                 golden, rank, box->class_id, known ? kModelLabels[box->class_id] : "",
                 tfuav_decimal(s, box->score), tfuav_decimal(x, box->x),
                 tfuav_decimal(y, box->y), tfuav_decimal(w, box->w), tfuav_decimal(h, box->h));
        tfuav_port_write(g_detect_line);
    }
    for (rank = 0; rank < count || rank < expected; ++rank) {
        if (rank >= count || rank >= expected ||
            !tfuav_same_box(&g_detect_boxes[rank], &g_golden_boxes[golden][rank])) {
            ++mismatches;
        }
    }
    if (have_cycles) {
        snprintf(g_detect_line, sizeof(g_detect_line),
                 "{\"event\":\"boxes\",\"golden\":%d,\"count\":%d,\"expected\":%d,"
                 "\"mismatches\":%d,\"decode_cycles\":%lu}\n",
                 golden, count, expected, mismatches, (unsigned long)cycles);
    } else {
        snprintf(g_detect_line, sizeof(g_detect_line),
                 "{\"event\":\"boxes\",\"golden\":%d,\"count\":%d,\"expected\":%d,"
                 "\"mismatches\":%d,\"decode_cycles\":null}\n",
                 golden, count, expected, mismatches);
    }
    tfuav_port_write(g_detect_line);
    return mismatches;
}

#ifdef __cplusplus
} /* extern "C" */
#endif
