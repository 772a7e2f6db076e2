/*
 * cycles.c -- DWT cycle counter for ARMv7-M (Cortex-M4/M7), plain C99.
 *
 * Registers (ARMv7-M ARM, debug chapter; Cortex-M7 TRM for the lock):
 *   DEMCR      0xE000EDFC  bit 24 TRCENA: enables the DWT and ITM blocks
 *   DWT_CTRL   0xE0001000  bit 0 CYCCNTENA; bit 25 NOCYCCNT (1 = no cycle counter)
 *   DWT_CYCCNT 0xE0001004  32-bit up-counter of core clock cycles
 *   DWT_LAR    0xE0001FB0  CoreSight lock access; writing 0xC5ACCE55 unlocks software
 *                          writes on Cortex-M7 (ignored where no lock is implemented)
 *
 * Safety on emulators.  QEMU 7.2's mps2 machines (checked: mps2-an386, mps2-an500)
 * do not model DEMCR or the DWT: DEMCR reads 0 and ignores writes ("NVIC: Bad read
 * offset 0xdfc" with -d guest_errors), and the DWT range is RAZ/WI for privileged
 * code (no fault).  We therefore set TRCENA and read DEMCR back before touching the
 * DWT at all: if TRCENA does not stick there is no trace/debug block to use and the
 * DWT is never accessed.  Then the counter must actually advance over a short busy
 * loop, otherwise tfuav_cycles_available() reports 0.
 * (Guarding the access with CCR.BFHFNMIGN + FAULTMASK is not an option: QEMU 7.2
 * ignores BFHFNMIGN and locks up on a BusFault taken at priority -1.)
 */
#include <stdint.h>

#include "port.h"

#ifdef __cplusplus
extern "C" { /* also builds when a harness compiles every file with g++ */
#endif

#define TFUAV_DEMCR (*(volatile uint32_t *)0xE000EDFCu)
#define TFUAV_DEMCR_TRCENA (1u << 24)

#define TFUAV_DWT_CTRL (*(volatile uint32_t *)0xE0001000u)
#define TFUAV_DWT_CTRL_CYCCNTENA (1u << 0)
#define TFUAV_DWT_CTRL_NOCYCCNT (1u << 25)
#define TFUAV_DWT_CYCCNT (*(volatile uint32_t *)0xE0001004u)
#define TFUAV_DWT_LAR (*(volatile uint32_t *)0xE0001FB0u)
#define TFUAV_DWT_LAR_KEY 0xC5ACCE55u

/* -1: not probed yet, 0: no usable counter, 1: counter runs. */
static int tfuav_cycles_state = -1;

static int tfuav_cycles_probe(void)
{
    uint32_t before;
    uint32_t after;
    volatile uint32_t spin;

    if ((TFUAV_DWT_CTRL & TFUAV_DWT_CTRL_NOCYCCNT) != 0u) {
        return 0;
    }
    before = TFUAV_DWT_CYCCNT;
    for (spin = 0u; spin < 64u; spin++) {
    }
    after = TFUAV_DWT_CYCCNT;
    return after != before;
}

void tfuav_cycles_start(void)
{
    TFUAV_DEMCR |= TFUAV_DEMCR_TRCENA;
    __asm__ volatile("dsb 0xF" ::: "memory");
    if ((TFUAV_DEMCR & TFUAV_DEMCR_TRCENA) == 0u) {
        /* DEMCR not implemented (QEMU): leave the DWT alone. */
        tfuav_cycles_state = 0;
        return;
    }
    TFUAV_DWT_LAR = TFUAV_DWT_LAR_KEY;
    TFUAV_DWT_CYCCNT = 0u;
    TFUAV_DWT_CTRL |= TFUAV_DWT_CTRL_CYCCNTENA;
    __asm__ volatile("dsb 0xF" ::: "memory");
    tfuav_cycles_state = tfuav_cycles_probe();
    if (tfuav_cycles_state) {
        TFUAV_DWT_CYCCNT = 0u;
    }
}

uint32_t tfuav_cycles_now(void)
{
    if (tfuav_cycles_state <= 0) {
        return 0u;
    }
    return TFUAV_DWT_CYCCNT;
}

int tfuav_cycles_available(void)
{
    if (tfuav_cycles_state < 0) {
        tfuav_cycles_start();
    }
    return tfuav_cycles_state;
}

#ifdef __cplusplus
} /* extern "C" */
#endif
