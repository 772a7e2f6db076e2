/*
 * main.c -- harness for a model compiled by the tfuav native engine, on QEMU or a board.
 *
 * Runs every golden input, prints the output bytes in hex and whether they equal the
 * outputs of the TFLite reference kernels, then measures one inference:
 *   - instructions, on QEMU mps2 machines run with `-icount shift=0` (one guest instruction
 *     per nanosecond of virtual time) and built with -DTFUAV_MPS2_TIMER: the CMSDK APB timer 0
 *     counts at 25 MHz, so one tick is 40 instructions;
 *   - cycles, where the DWT cycle counter exists (real Cortex-M4/M7);
 *   - the stack the inference used (the stack below main's frame is painted first).
 * Ends with PASS (exit 0) or FAIL (exit 1).  Plain C99 plus the tfuav platform port.
 */
#include <stdio.h>
#include <string.h>

#include "golden.h"
#include "native_model.h"
#include "port.h"

static uint8_t scratch[NATIVE_SCRATCH_BYTES] TFUAV_ALIGNED(16);
static int8_t output[NATIVE_OUTPUT_BYTES];

#if defined(TFUAV_MPS2_TIMER)
#define TFUAV_TIMER0_CTRL (*(volatile uint32_t *)0x40000000u)
#define TFUAV_TIMER0_VALUE (*(volatile uint32_t *)0x40000004u)
#define TFUAV_TIMER0_RELOAD (*(volatile uint32_t *)0x40000008u)
#define TFUAV_INSTRUCTIONS_PER_TICK 40u
#endif

#define TFUAV_STACK_PAINT 0xA5A5A5A5u
#define TFUAV_STACK_GUARD 256u /* bytes left unpainted below the current frame */

extern uint32_t __stack_limit;

#if defined(TFUAV_PROFILE) && defined(TFUAV_MPS2_TIMER)
/* Instructions per op of one profiled inference (printed after it). */
#define TFUAV_PROFILE_MAX 2048
static uint32_t profile_ticks[TFUAV_PROFILE_MAX];
static uint32_t profile_last;
static int32_t profile_count;

void tfuav_profile_op(int32_t op_index)
{
    const uint32_t now = TFUAV_TIMER0_VALUE;
    if (op_index >= 0 && op_index < TFUAV_PROFILE_MAX) {
        profile_ticks[op_index] += profile_last - now;
        if (op_index >= profile_count) {
            profile_count = op_index + 1;
        }
    }
    profile_last = TFUAV_TIMER0_VALUE;
}

static void profile_print(void)
{
    char line[48];
    int32_t i;
    for (i = 0; i < profile_count; i++) {
        snprintf(line, sizeof(line), "op %ld %lu\n", (long)i,
                 (unsigned long)(profile_ticks[i] * TFUAV_INSTRUCTIONS_PER_TICK));
        tfuav_port_write(line);
    }
}
#endif

static uint32_t *stack_paint(void)
{
    uint32_t sp;
    uint32_t *p = &__stack_limit;
    __asm__ volatile("mov %0, sp" : "=r"(sp));
    while ((uint32_t)(uintptr_t)p < sp - TFUAV_STACK_GUARD) {
        *p++ = TFUAV_STACK_PAINT;
    }
    return (uint32_t *)(uintptr_t)sp;
}

static uint32_t stack_used(const uint32_t *top)
{
    const uint32_t *p = &__stack_limit;
    while (p < top && *p == TFUAV_STACK_PAINT) {
        p++;
    }
    return (uint32_t)((uintptr_t)top - (uintptr_t)p);
}

static void print_hex(const char *label, int index, const int8_t *data, int n)
{
    static const char digits[] = "0123456789abcdef";
    char line[80];
    int i, k = 0;
    snprintf(line, sizeof(line), "%s %d ", label, index);
    tfuav_port_write(line);
    for (i = 0; i < n; i++) {
        line[k++] = digits[((uint8_t)data[i]) >> 4];
        line[k++] = digits[((uint8_t)data[i]) & 15];
        if (k >= 64 || i == n - 1) {
            line[k] = '\0';
            tfuav_port_write(line);
            k = 0;
        }
    }
    tfuav_port_write("\n");
}

int main(void)
{
    char line[160];
    int i, failures = 0;
    uint32_t *top;
    uint32_t stack;

    tfuav_port_init();
    tfuav_cycles_start();
    snprintf(line, sizeof(line), "model %s: input %d B, output %d B, scratch %d B\n",
             NATIVE_MODEL_NAME, (int)NATIVE_INPUT_BYTES, (int)NATIVE_OUTPUT_BYTES,
             (int)NATIVE_SCRATCH_BYTES);
    tfuav_port_write(line);

    for (i = 0; i < GOLDEN_COUNT; i++) {
        int match;
        NATIVE_INVOKE((const int8_t *)g_golden_input[i], output, scratch);
        print_hex("output", i, output, NATIVE_OUTPUT_BYTES);
        match = memcmp(output, g_golden_output[i], NATIVE_OUTPUT_BYTES) == 0;
        failures += !match;
        snprintf(line, sizeof(line), "golden %d %s\n", i, match ? "match" : "MISMATCH");
        tfuav_port_write(line);
    }

    top = stack_paint();
    {
#if defined(TFUAV_MPS2_TIMER)
        uint32_t before, after;
        TFUAV_TIMER0_CTRL = 0u;
        TFUAV_TIMER0_RELOAD = 0xFFFFFFFFu;
        TFUAV_TIMER0_VALUE = 0xFFFFFFFFu;
        TFUAV_TIMER0_CTRL = 1u;
        before = TFUAV_TIMER0_VALUE;
#if defined(TFUAV_PROFILE)
        profile_last = before;
#endif
        NATIVE_INVOKE((const int8_t *)g_golden_input[0], output, scratch);
        after = TFUAV_TIMER0_VALUE;
        stack = stack_used(top);
        snprintf(line, sizeof(line), "instructions %lu\n",
                 (unsigned long)((before - after) * TFUAV_INSTRUCTIONS_PER_TICK));
        tfuav_port_write(line);
#if defined(TFUAV_PROFILE)
        profile_print();
#endif
#else
        const uint32_t start = tfuav_cycles_now();
        NATIVE_INVOKE((const int8_t *)g_golden_input[0], output, scratch);
        const uint32_t cycles = tfuav_cycles_now() - start;
        stack = stack_used(top);
        if (tfuav_cycles_available()) {
            snprintf(line, sizeof(line), "cycles %lu\n", (unsigned long)cycles);
            tfuav_port_write(line);
        }
#endif
    }
    snprintf(line, sizeof(line), "stack %lu\n", (unsigned long)stack);
    tfuav_port_write(line);
    tfuav_port_write(failures ? "FAIL\n" : "PASS\n");
    return failures ? 1 : 0;
}
