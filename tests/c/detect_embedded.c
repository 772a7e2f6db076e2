/*
 * Target test driver for tfuav_detect: decodes the int8 outputs embedded in detect_case.h
 * (written by the test) and prints the boxes through the port layer in detect_cli.c's
 * format, floats as IEEE-754 bit patterns.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "detect_case.h"
#include "port.h"
#include "tfuav_detect.h"

static uint32_t work[TFUAV_DETECT_WORK_WORDS(CASE_TOP_K)];
static tfuav_detect_box boxes[CASE_TOP_K];
static char line[128];

static float float_from_bits(uint32_t bits)
{
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static unsigned long bits_of(float f)
{
    uint32_t bits;
    memcpy(&bits, &f, sizeof bits);
    return (unsigned long)bits;
}

int main(void)
{
    tfuav_detect_config cfg;
    int t;
    tfuav_port_init();
    cfg.height = CASE_H;
    cfg.width = CASE_W;
    cfg.num_classes = CASE_C;
    cfg.stride = CASE_STRIDE;
    cfg.scale = float_from_bits(CASE_SCALE_BITS);
    cfg.zero_point = CASE_ZERO_POINT;
    cfg.score_threshold = float_from_bits(CASE_THRESHOLD_BITS);
    cfg.top_k = CASE_TOP_K;
    snprintf(line, sizeof line, "min_q %d\n", tfuav_detect_min_q(&cfg));
    tfuav_port_write(line);
    for (t = 0; t < CASE_COUNT; ++t) {
        const int n = tfuav_detect_decode(&cfg, kCaseOutputs[t], work,
                                          sizeof work / sizeof work[0], boxes);
        int i;
        snprintf(line, sizeof line, "tensor %d %d\n", t, n);
        tfuav_port_write(line);
        for (i = 0; i < n; ++i) {
            snprintf(line, sizeof line, "box %d %08lx %08lx %08lx %08lx %08lx\n",
                     boxes[i].class_id, bits_of(boxes[i].score), bits_of(boxes[i].x),
                     bits_of(boxes[i].y), bits_of(boxes[i].w), bits_of(boxes[i].h));
            tfuav_port_write(line);
        }
    }
    tfuav_port_exit(0);
}
