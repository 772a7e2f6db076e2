/*
 * port.h -- tfuav platform port layer (plain C99, usable from C and C++).
 *
 * Two implementations ship with tfuav:
 *   port_semihosting.c   QEMU / debugger semihosting (link with --specs=rdimon.specs)
 *   port_uart_template.c real boards: text goes through a weak tfuav_uart_putc()
 *                        that you override (link with --specs=nosys.specs)
 * Link exactly one of them, plus cycles.c and startup_cortex_m.c.
 */
#ifndef TFUAV_PORT_H
#define TFUAV_PORT_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define TFUAV_NORETURN __attribute__((noreturn))
#else
#define TFUAV_NORETURN
#endif

/* Call once at the start of main(), before any output. */
void tfuav_port_init(void);

/* Write the NUL-terminated string s as is (no newline is added: end lines with
 * "\n").  Output is flushed before returning. */
void tfuav_port_write(const char *s);

/* Stop the program with status `code` (0 = success).  Semihosting: QEMU exits
 * with this status.  Real boards: the template parks the CPU.  Never returns. */
TFUAV_NORETURN void tfuav_port_exit(int code);

/* ---- cycle counter (cycles.c: DWT CYCCNT, ARMv7-M) -------------------------- */

/* Enable and reset the DWT cycle counter; also probes whether it really counts. */
void tfuav_cycles_start(void);

/* Current 32-bit cycle count (wraps; use unsigned subtraction of two readings).
 * Reads 0 where the counter does not exist (e.g. QEMU). */
uint32_t tfuav_cycles_now(void);

/* 1 if the counter was seen to advance, 0 if not (QEMU: 0).  Calls
 * tfuav_cycles_start() first if it has not been called yet. */
int tfuav_cycles_available(void);

#ifdef __cplusplus
}
#endif

#endif /* TFUAV_PORT_H */
