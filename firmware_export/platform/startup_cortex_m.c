/*
 * startup_cortex_m.c -- minimal bare-metal start-up for ARMv7-M (Cortex-M4/M7).
 *
 * Part of the tfuav firmware export platform layer. Plain C99, no CMSIS, no TFLM.
 * Written from the ARMv7-M Architecture Reference Manual (exception model, vector
 * table layout, CPACR) and the GNU ld/newlib start-up conventions.
 *
 * What it provides
 *   - the vector table in section .isr_vector (the linker scripts put it first in
 *     FLASH): initial SP (__stack_top), Reset, NMI, HardFault, MemManage, BusFault,
 *     UsageFault, SVC, DebugMon, PendSV, SysTick;
 *   - an optional table of TFUAV_NUM_IRQS external interrupt vectors in section
 *     .isr_vector.irqs (placed right after the core table).  Every entry is a weak
 *     alias IRQ<n>_Handler -> Default_Handler, so a user overrides one IRQ simply by
 *     defining e.g. `void IRQ37_Handler(void) { ... }`.  Build with
 *     -DTFUAV_NO_DEFAULT_IRQ_TABLE and provide your own array in
 *     __attribute__((section(".isr_vector.irqs"))) to use vendor handler names;
 *   - Default_Handler (all weak handlers alias it): calls the weak hook
 *     tfuav_unhandled_exception(exception number), then spins;
 *   - Reset_Handler: FPU enable (when built with __ARM_FP), VTOR set, weak
 *     tfuav_system_init() hook, .data copy, .bss zero, C++ constructors through
 *     newlib's __libc_init_array(), main(), weak tfuav_main_returned(rc) hook, then
 *     an endless loop;
 *   - empty weak _init/_fini (needed by __libc_init_array when linking with
 *     -nostartfiles, which drops crti.o/crtn.o).
 *
 * Linker symbols used (defined by every tfuav platform .ld script):
 *   __stack_top, __isr_vector_start, __data_load_start, __data_start, __data_end,
 *   __bss_start__, __bss_end__.
 */
#include <stdint.h>

#ifdef __cplusplus
extern "C" { /* also builds when a harness compiles every file with g++ */
#endif

#ifndef TFUAV_NUM_IRQS
#define TFUAV_NUM_IRQS 160 /* rounded up to a multiple of 10; STM32H743 has 150 */
#endif

typedef void (*tfuav_handler_t)(void);

typedef union {
    tfuav_handler_t handler;
    const void *address;
} tfuav_vector_t;

/* ---- linker script symbols ------------------------------------------------- */
extern uint32_t __stack_top;
extern const uint32_t __isr_vector_start;
extern const uint32_t __data_load_start;
extern uint32_t __data_start;
extern uint32_t __data_end;
extern uint32_t __bss_start__;
extern uint32_t __bss_end__;

/* ---- external functions ---------------------------------------------------- */
extern int main(void);
extern void __libc_init_array(void);

/* ---- hooks (weak, the user or the port may override) ------------------------ */
void tfuav_system_init(void);
void tfuav_main_returned(int code);
void tfuav_unhandled_exception(uint32_t exception_number);

/* Called from Reset_Handler after the FPU is enabled but BEFORE .data/.bss are
 * initialised: do clock / cache / memory-controller set-up here, without touching
 * global variables.  Default: does nothing. */
__attribute__((weak)) void tfuav_system_init(void)
{
}

/* Called with main()'s return value; the semihosting port overrides it to exit
 * QEMU with that status.  Default: returns, and Reset_Handler then loops. */
__attribute__((weak)) void tfuav_main_returned(int code)
{
    (void)code;
}

/* newlib's __libc_init_array() calls _init() between .preinit_array and
 * .init_array; crti.o normally provides it.  Empty and weak here. */
__attribute__((weak)) void _init(void)
{
}

__attribute__((weak)) void _fini(void)
{
}

/* ---- exception handlers --------------------------------------------------- */
void Reset_Handler(void);
void Default_Handler(void);

/* Called by Default_Handler with the exception number (IPSR: 2 NMI, 3 HardFault,
 * 4 MemManage, 5 BusFault, 6 UsageFault, 11 SVC, 14 PendSV, 15 SysTick, 16+n IRQn)
 * of any exception nobody handles.  Default: returns, and Default_Handler spins so a
 * debugger shows where we are.  The semihosting port overrides it to report the
 * exception and end the QEMU run with status 128 + number. */
__attribute__((weak)) void tfuav_unhandled_exception(uint32_t exception_number)
{
    (void)exception_number;
}

void Default_Handler(void)
{
    uint32_t ipsr;
    __asm__ volatile("mrs %0, ipsr" : "=r"(ipsr));
    tfuav_unhandled_exception(ipsr & 0x1FFu);
    for (;;) {
    }
}

#define TFUAV_WEAK_ALIAS __attribute__((weak, alias("Default_Handler")))

void NMI_Handler(void) TFUAV_WEAK_ALIAS;
void HardFault_Handler(void) TFUAV_WEAK_ALIAS;
void MemManage_Handler(void) TFUAV_WEAK_ALIAS;
void BusFault_Handler(void) TFUAV_WEAK_ALIAS;
void UsageFault_Handler(void) TFUAV_WEAK_ALIAS;
void SVC_Handler(void) TFUAV_WEAK_ALIAS;
void DebugMon_Handler(void) TFUAV_WEAK_ALIAS;
void PendSV_Handler(void) TFUAV_WEAK_ALIAS;
void SysTick_Handler(void) TFUAV_WEAK_ALIAS;

/* ---- core vector table (ARMv7-M: 16 words) -------------------------------- */
__attribute__((section(".isr_vector"), used))
const tfuav_vector_t tfuav_core_vectors[16] = {
    {.address = &__stack_top}, /* 0: initial main stack pointer */
    {.handler = Reset_Handler},      /* 1 */
    {.handler = NMI_Handler},        /* 2 */
    {.handler = HardFault_Handler},  /* 3 */
    {.handler = MemManage_Handler},  /* 4 */
    {.handler = BusFault_Handler},   /* 5 */
    {.handler = UsageFault_Handler}, /* 6 */
    {.address = 0},                  /* 7: reserved */
    {.address = 0},                  /* 8: reserved */
    {.address = 0},                  /* 9: reserved */
    {.address = 0},                  /* 10: reserved */
    {.handler = SVC_Handler},        /* 11 */
    {.handler = DebugMon_Handler},   /* 12 */
    {.address = 0},                  /* 13: reserved */
    {.handler = PendSV_Handler},     /* 14 */
    {.handler = SysTick_Handler},    /* 15 */
};

/* ---- external interrupt vectors (optional) -------------------------------- */
#if !defined(TFUAV_NO_DEFAULT_IRQ_TABLE) && (TFUAV_NUM_IRQS > 0)

#define TFUAV_IRQ_DECL(n) void IRQ##n##_Handler(void) TFUAV_WEAK_ALIAS;
#define TFUAV_IRQ_ENTRY(n) {.handler = IRQ##n##_Handler},
#define TFUAV_DECADE(X, d) \
    X(d##0) X(d##1) X(d##2) X(d##3) X(d##4) X(d##5) X(d##6) X(d##7) X(d##8) X(d##9)

/* Declarations of IRQ0_Handler .. IRQ239_Handler (only those placed in the table
 * end up in the image). */
TFUAV_DECADE(TFUAV_IRQ_DECL, )
TFUAV_DECADE(TFUAV_IRQ_DECL, 1)
TFUAV_DECADE(TFUAV_IRQ_DECL, 2)
TFUAV_DECADE(TFUAV_IRQ_DECL, 3)
TFUAV_DECADE(TFUAV_IRQ_DECL, 4)
TFUAV_DECADE(TFUAV_IRQ_DECL, 5)
TFUAV_DECADE(TFUAV_IRQ_DECL, 6)
TFUAV_DECADE(TFUAV_IRQ_DECL, 7)
TFUAV_DECADE(TFUAV_IRQ_DECL, 8)
TFUAV_DECADE(TFUAV_IRQ_DECL, 9)
TFUAV_DECADE(TFUAV_IRQ_DECL, 10)
TFUAV_DECADE(TFUAV_IRQ_DECL, 11)
TFUAV_DECADE(TFUAV_IRQ_DECL, 12)
TFUAV_DECADE(TFUAV_IRQ_DECL, 13)
TFUAV_DECADE(TFUAV_IRQ_DECL, 14)
TFUAV_DECADE(TFUAV_IRQ_DECL, 15)
TFUAV_DECADE(TFUAV_IRQ_DECL, 16)
TFUAV_DECADE(TFUAV_IRQ_DECL, 17)
TFUAV_DECADE(TFUAV_IRQ_DECL, 18)
TFUAV_DECADE(TFUAV_IRQ_DECL, 19)
TFUAV_DECADE(TFUAV_IRQ_DECL, 20)
TFUAV_DECADE(TFUAV_IRQ_DECL, 21)
TFUAV_DECADE(TFUAV_IRQ_DECL, 22)
TFUAV_DECADE(TFUAV_IRQ_DECL, 23)

__attribute__((section(".isr_vector.irqs"), used))
const tfuav_vector_t tfuav_irq_vectors[] = {
    TFUAV_DECADE(TFUAV_IRQ_ENTRY, )
#if TFUAV_NUM_IRQS > 10
    TFUAV_DECADE(TFUAV_IRQ_ENTRY, 1)
#endif
#if TFUAV_NUM_IRQS > 20
    TFUAV_DECADE(TFUAV_IRQ_ENTRY, 2)
#endif
#if TFUAV_NUM_IRQS > 30
    TFUAV_DECADE(TFUAV_IRQ_ENTRY, 3)
#endif
#if TFUAV_NUM_IRQS > 40
    TFUAV_DECADE(TFUAV_IRQ_ENTRY, 4)
#endif
#if TFUAV_NUM_IRQS > 50
    TFUAV_DECADE(TFUAV_IRQ_ENTRY, 5)
#endif
#if TFUAV_NUM_IRQS > 60
    TFUAV_DECADE(TFUAV_IRQ_ENTRY, 6)
#endif
#if TFUAV_NUM_IRQS > 70
    TFUAV_DECADE(TFUAV_IRQ_ENTRY, 7)
#endif
#if TFUAV_NUM_IRQS > 80
    TFUAV_DECADE(TFUAV_IRQ_ENTRY, 8)
#endif
#if TFUAV_NUM_IRQS > 90
    TFUAV_DECADE(TFUAV_IRQ_ENTRY, 9)
#endif
#if TFUAV_NUM_IRQS > 100
    TFUAV_DECADE(TFUAV_IRQ_ENTRY, 10)
#endif
#if TFUAV_NUM_IRQS > 110
    TFUAV_DECADE(TFUAV_IRQ_ENTRY, 11)
#endif
#if TFUAV_NUM_IRQS > 120
    TFUAV_DECADE(TFUAV_IRQ_ENTRY, 12)
#endif
#if TFUAV_NUM_IRQS > 130
    TFUAV_DECADE(TFUAV_IRQ_ENTRY, 13)
#endif
#if TFUAV_NUM_IRQS > 140
    TFUAV_DECADE(TFUAV_IRQ_ENTRY, 14)
#endif
#if TFUAV_NUM_IRQS > 150
    TFUAV_DECADE(TFUAV_IRQ_ENTRY, 15)
#endif
#if TFUAV_NUM_IRQS > 160
    TFUAV_DECADE(TFUAV_IRQ_ENTRY, 16)
#endif
#if TFUAV_NUM_IRQS > 170
    TFUAV_DECADE(TFUAV_IRQ_ENTRY, 17)
#endif
#if TFUAV_NUM_IRQS > 180
    TFUAV_DECADE(TFUAV_IRQ_ENTRY, 18)
#endif
#if TFUAV_NUM_IRQS > 190
    TFUAV_DECADE(TFUAV_IRQ_ENTRY, 19)
#endif
#if TFUAV_NUM_IRQS > 200
    TFUAV_DECADE(TFUAV_IRQ_ENTRY, 20)
#endif
#if TFUAV_NUM_IRQS > 210
    TFUAV_DECADE(TFUAV_IRQ_ENTRY, 21)
#endif
#if TFUAV_NUM_IRQS > 220
    TFUAV_DECADE(TFUAV_IRQ_ENTRY, 22)
#endif
#if TFUAV_NUM_IRQS > 230
    TFUAV_DECADE(TFUAV_IRQ_ENTRY, 23)
#endif
};
#endif /* default IRQ table */

/* ---- reset ---------------------------------------------------------------- */
#define TFUAV_SCB_VTOR (*(volatile uint32_t *)0xE000ED08u)
#define TFUAV_SCB_CPACR (*(volatile uint32_t *)0xE000ED88u)

/* Keep GCC from turning the copy/zero loops into memcpy/memset calls: they run
 * before the C library may be used. */
#if defined(__GNUC__) && !defined(__clang__)
#define TFUAV_NO_LIBCALLS __attribute__((optimize("no-tree-loop-distribute-patterns")))
#else
#define TFUAV_NO_LIBCALLS
#endif

__attribute__((noreturn, used)) TFUAV_NO_LIBCALLS void Reset_Handler(void)
{
#if defined(__ARM_FP)
    /* CPACR: CP10 and CP11 full access (bits 23:20 = 0b1111), then make sure
     * the new setting is seen before the first floating-point instruction. */
    TFUAV_SCB_CPACR |= (0xFu << 20);
    __asm__ volatile("dsb 0xF" ::: "memory");
    __asm__ volatile("isb 0xF" ::: "memory");
#endif

    /* Point VTOR at our table (STM32 boots through an alias of flash at 0;
     * QEMU's MPS2 images have the table at 0 already).  Harmless either way. */
    TFUAV_SCB_VTOR = (uint32_t)(uintptr_t)&__isr_vector_start;
    __asm__ volatile("dsb 0xF" ::: "memory");

    tfuav_system_init();

    /* .data: copy initial values from their load address (FLASH) to RAM. */
    {
        const uint32_t *src = &__data_load_start;
        uint32_t *dst = &__data_start;
        while (dst < &__data_end) {
            *dst++ = *src++;
        }
    }

    /* .bss: zero. */
    {
        uint32_t *dst = &__bss_start__;
        while (dst < &__bss_end__) {
            *dst++ = 0u;
        }
    }

    /* C++ static constructors and C __attribute__((constructor)) functions. */
    __libc_init_array();

    tfuav_main_returned(main());

    for (;;) {
    }
}

#ifdef __cplusplus
} /* extern "C" */
#endif
