/*
 * native_requant_check.c -- reads (x, multiplier, shift) int32 triples from stdin and writes
 * (tfuav_mbqm, tfuav_mbqm_reference, tfuav_srdhm(x, m), tfuav_rdbp(x, shift & 31)) per triple,
 * so the test can hold the folded requantization to TFLite's two rounding steps.
 */
#include <stdio.h>

#include "tfuav_nn.h"

int main(void)
{
    int32_t v[3];
    while (fread(v, sizeof(int32_t), 3, stdin) == 3) {
        int32_t out[4];
        out[0] = tfuav_mbqm(v[0], v[1], v[2]);
        out[1] = tfuav_mbqm_reference(v[0], v[1], v[2]);
        out[2] = tfuav_srdhm(v[0], v[1]);
        out[3] = tfuav_rdbp(v[0], v[2] & 31);
        if (fwrite(out, sizeof(int32_t), 4, stdout) != 4) {
            return 1;
        }
    }
    return 0;
}
