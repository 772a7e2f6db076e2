/*
 * port_semihosting.c -- tfuav port over Arm semihosting (QEMU, or a debug probe
 * with semihosting enabled).  Link with --specs=rdimon.specs (newlib's rdimon
 * library implements stdio over semihosting); plain C99.
 *
 * Semihosting calls on M-profile: BKPT 0xAB with the operation in r0 and the
 * argument (block pointer or value) in r1; the result comes back in r0
 * (Arm "Semihosting for AArch32 and AArch64", version 2).
 *
 * Exit status (checked on QEMU 7.2, `-semihosting` or
 * `-semihosting-config enable=on,target=native`):
 *   - SYS_EXIT (0x18) on AArch32 carries only a reason code: QEMU exits 0 for
 *     ADP_Stopped_ApplicationExit and 1 for anything else;
 *   - SYS_EXIT_EXTENDED (0x20, optional, advertised in the ":semihosting-features"
 *     file) carries {reason, code}: QEMU exits with `code`.
 * tfuav_port_exit() uses SYS_EXIT_EXTENDED when the host advertises it, else
 * SYS_EXIT (0 -> 0, non-zero -> 1).
 *
 * WARNING: without a debugger/emulator attached, BKPT faults on real hardware.
 */
#include <stdint.h>
#include <stdio.h>

#include "port.h"

#ifdef __cplusplus
extern "C" { /* also builds when a harness compiles every file with g++ */
#endif

extern void initialise_monitor_handles(void); /* newlib librdimon */
void tfuav_main_returned(int code);           /* start-up hooks (weak there) */
void tfuav_unhandled_exception(uint32_t exception_number);

#define TFUAV_SYS_OPEN 0x01
#define TFUAV_SYS_CLOSE 0x02
#define TFUAV_SYS_WRITE0 0x04
#define TFUAV_SYS_READ 0x06
#define TFUAV_SYS_EXIT 0x18
#define TFUAV_SYS_EXIT_EXTENDED 0x20
#define TFUAV_ADP_STOPPED_APPLICATION_EXIT 0x20026u
#define TFUAV_ADP_STOPPED_RUNTIME_ERROR_UNKNOWN 0x20023u

static int tfuav_semihost(int op, void *arg)
{
    register int r0 __asm__("r0") = op;
    register void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

/* Feature byte 0, bit 0 of ":semihosting-features" = SH_EXT_EXIT_EXTENDED. */
static int tfuav_host_has_exit_extended(void)
{
    static const char name[] = ":semihosting-features";
    unsigned char buf[5];
    uint32_t open_args[3];
    uint32_t rw_args[3];
    int handle;
    int not_read;

    open_args[0] = (uint32_t)(uintptr_t)name;
    open_args[1] = 1u; /* mode "rb" */
    open_args[2] = (uint32_t)(sizeof(name) - 1u);
    handle = tfuav_semihost(TFUAV_SYS_OPEN, open_args);
    if (handle == -1) {
        return 0;
    }
    rw_args[0] = (uint32_t)handle;
    rw_args[1] = (uint32_t)(uintptr_t)buf;
    rw_args[2] = (uint32_t)sizeof(buf);
    not_read = tfuav_semihost(TFUAV_SYS_READ, rw_args); /* returns bytes NOT read */
    rw_args[0] = (uint32_t)handle;
    (void)tfuav_semihost(TFUAV_SYS_CLOSE, rw_args);
    if (not_read != 0) {
        return 0;
    }
    return buf[0] == 'S' && buf[1] == 'H' && buf[2] == 'F' && buf[3] == 'B' && (buf[4] & 1u);
}

void tfuav_port_init(void)
{
    initialise_monitor_handles();
}

void tfuav_port_write(const char *s)
{
    fputs(s, stdout);
    fflush(stdout);
}

void tfuav_port_exit(int code)
{
    fflush(stdout);
    fflush(stderr);
    if (tfuav_host_has_exit_extended()) {
        uint32_t block[2];
        block[0] = TFUAV_ADP_STOPPED_APPLICATION_EXIT;
        block[1] = (uint32_t)code;
        (void)tfuav_semihost(TFUAV_SYS_EXIT_EXTENDED, block);
    }
    (void)tfuav_semihost(TFUAV_SYS_EXIT,
                         (void *)(uintptr_t)(code == 0 ? TFUAV_ADP_STOPPED_APPLICATION_EXIT
                                                       : TFUAV_ADP_STOPPED_RUNTIME_ERROR_UNKNOWN));
    for (;;) {
    }
}

/* Unhandled exception (HardFault, ...): say so on the host console and end the
 * run with status 128 + exception number (HardFault: 131), instead of spinning
 * until an outer timeout.  Uses raw semihosting only (no stdio in fault context). */
void tfuav_unhandled_exception(uint32_t exception_number)
{
    char msg[] = "\ntfuav: unhandled exception 000 (3=HardFault 4=MemManage 5=BusFault "
                 "6=UsageFault, 16+n=IRQn)\n";
    char *digits = msg + 28;
    uint32_t block[2];

    digits[0] = (char)('0' + (exception_number / 100u) % 10u);
    digits[1] = (char)('0' + (exception_number / 10u) % 10u);
    digits[2] = (char)('0' + exception_number % 10u);
    (void)tfuav_semihost(TFUAV_SYS_WRITE0, msg);
    block[0] = TFUAV_ADP_STOPPED_APPLICATION_EXIT;
    block[1] = 128u + exception_number;
    if (tfuav_host_has_exit_extended()) {
        (void)tfuav_semihost(TFUAV_SYS_EXIT_EXTENDED, block);
    }
    (void)tfuav_semihost(TFUAV_SYS_EXIT, (void *)(uintptr_t)TFUAV_ADP_STOPPED_RUNTIME_ERROR_UNKNOWN);
}

/* Returning from main() ends the QEMU run with main's return value. */
void tfuav_main_returned(int code)
{
    tfuav_port_exit(code);
}

#ifdef __cplusplus
} /* extern "C" */
#endif
