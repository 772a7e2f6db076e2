/*
 * detect_golden.h -- the firmware harness's box check for a detector (plain C99): decodes
 * an output with tfuav_detect, prints the boxes as JSON lines and compares them with the
 * golden boxes (golden_data.h), which tfuav's numpy decoder computed on the host.
 */
#ifndef TFUAV_DETECT_GOLDEN_H
#define TFUAV_DETECT_GOLDEN_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Decodes `output` (the model's int8 output, MODEL_OUTPUT_BYTES) with the parameters of
 * model_config.h, prints one line per box,
 *   {"event":"box","golden":G,"rank":R,"class":C,"label":"...","score":S,"x":X,"y":Y,"w":W,"h":H}
 * then {"event":"boxes","golden":G,"count":N,"expected":E,"mismatches":M,"decode_cycles":D}
 * and returns M: the number of ranks at which the boxes differ from golden boxes number G
 * (0: exactly the same boxes, scores and classes). */
int tfuav_detect_check_golden(int golden, const int8_t *output);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* TFUAV_DETECT_GOLDEN_H */
