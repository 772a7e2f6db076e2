/*
 * Host test driver for tfuav_detect: decodes every int8 output tensor of a file and prints
 * the boxes with their floats as IEEE-754 bit patterns (exact).
 *
 *   detect_cli FILE H W C STRIDE SCALE_BITS ZERO_POINT THRESHOLD_BITS TOP_K [WORK_WORDS]
 *
 * FILE holds one or more tensors of H * W * (C + 4) int8 values back to back. SCALE_BITS
 * and THRESHOLD_BITS are float bit patterns in hex. Prints "min_q Q", then per tensor
 * "tensor I N" (N boxes, or a negative error code) and N lines
 * "box CLASS SCORE X Y W H" (hex bit patterns).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tfuav_detect.h"

#define MAX_TOP_K 4096

static float float_from_bits(const char *hex)
{
    uint32_t bits = (uint32_t)strtoul(hex, NULL, 16);
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

int main(int argc, char **argv)
{
    static uint32_t work[TFUAV_DETECT_WORK_WORDS(MAX_TOP_K)];
    static tfuav_detect_box boxes[MAX_TOP_K];
    tfuav_detect_config cfg;
    size_t tensor_bytes;
    size_t work_words;
    int8_t *tensor;
    FILE *file;
    int index = 0;

    if (argc != 10 && argc != 11) {
        fprintf(stderr, "usage: %s FILE H W C STRIDE SCALE_BITS ZERO_POINT THRESHOLD_BITS TOP_K "
                        "[WORK_WORDS]\n", argv[0]);
        return 2;
    }
    cfg.height = atoi(argv[2]);
    cfg.width = atoi(argv[3]);
    cfg.num_classes = atoi(argv[4]);
    cfg.stride = atoi(argv[5]);
    cfg.scale = float_from_bits(argv[6]);
    cfg.zero_point = atoi(argv[7]);
    cfg.score_threshold = float_from_bits(argv[8]);
    cfg.top_k = atoi(argv[9]);
    work_words = argc == 11 ? (size_t)atol(argv[10]) : TFUAV_DETECT_WORK_WORDS(cfg.top_k);
    if (cfg.top_k > MAX_TOP_K || work_words > TFUAV_DETECT_WORK_WORDS(MAX_TOP_K) ||
        cfg.height < 1 || cfg.width < 1 || cfg.num_classes < 1) {
        fprintf(stderr, "sizes out of the driver's range\n");
        return 2;
    }
    tensor_bytes = (size_t)cfg.height * (size_t)cfg.width * (size_t)(cfg.num_classes + 4);
    tensor = (int8_t *)malloc(tensor_bytes);
    file = fopen(argv[1], "rb");
    if (tensor == NULL || file == NULL) {
        fprintf(stderr, "cannot read %s\n", argv[1]);
        return 2;
    }
    printf("min_q %d\n", tfuav_detect_min_q(&cfg));
    while (fread(tensor, 1, tensor_bytes, file) == tensor_bytes) {
        const int n = tfuav_detect_decode(&cfg, tensor, work, work_words, boxes);
        int i;
        printf("tensor %d %d\n", index++, n);
        for (i = 0; i < n; ++i) {
            printf("box %d %08lx %08lx %08lx %08lx %08lx\n", boxes[i].class_id,
                   bits_of(boxes[i].score), bits_of(boxes[i].x), bits_of(boxes[i].y),
                   bits_of(boxes[i].w), bits_of(boxes[i].h));
        }
    }
    fclose(file);
    free(tensor);
    return 0;
}
