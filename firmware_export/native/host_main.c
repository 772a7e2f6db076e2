/*
 * host_main.c -- runs the compiled model on a PC (gcc/clang, C99 + POSIX clock_gettime).
 *
 *   ./model_host < inputs.bin > outputs.bin
 *       reads MODEL_INPUT_BYTES per inference until end of input and writes
 *       MODEL_OUTPUT_BYTES per inference;
 *   ./model_host --bench N < input.bin
 *       runs N inferences on the first input and prints the mean time in nanoseconds.
 */
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "native_model.h"

static uint8_t scratch[NATIVE_SCRATCH_BYTES] TFUAV_ALIGNED(16);
static int8_t input[NATIVE_INPUT_BYTES > 0 ? NATIVE_INPUT_BYTES : 1];
static int8_t output[NATIVE_OUTPUT_BYTES];

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--bench") == 0) {
        const long runs = strtol(argv[2], NULL, 10);
        long i;
        double start;
        if (runs <= 0 || fread(input, 1, sizeof(input), stdin) != sizeof(input)) {
            fprintf(stderr, "usage: %s --bench N < one_input.bin\n", argv[0]);
            return 2;
        }
        NATIVE_INVOKE(input, output, scratch); /* warm up */
        start = now_ns();
        for (i = 0; i < runs; i++) {
            NATIVE_INVOKE(input, output, scratch);
        }
        printf("%.1f\n", (now_ns() - start) / (double)runs);
        return 0;
    }
    while (fread(input, 1, sizeof(input), stdin) == sizeof(input)) {
        NATIVE_INVOKE(input, output, scratch);
        if (fwrite(output, 1, sizeof(output), stdout) != sizeof(output)) {
            return 1;
        }
    }
    return 0;
}
