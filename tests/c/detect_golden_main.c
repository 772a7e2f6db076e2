/*
 * Runs an exported detector folder's box check (detect_golden.c) on its own golden outputs,
 * without TFLM: decodes every g_golden_output on the target and compares with the golden
 * boxes; prints PASS or FAIL and exits with 0 or 1.
 */
#include <stdint.h>

#include "detect_golden.h"
#include "golden_data.h"
#include "port.h"

int main(void)
{
    int failures = 0;
    int g;
    tfuav_port_init();
    for (g = 0; g < GOLDEN_COUNT; ++g) {
        if (tfuav_detect_check_golden(g, (const int8_t *)g_golden_output[g]) != 0) {
            ++failures;
        }
    }
    tfuav_port_write(failures == 0 ? "PASS\n" : "FAIL\n");
    tfuav_port_exit(failures == 0 ? 0 : 1);
}
