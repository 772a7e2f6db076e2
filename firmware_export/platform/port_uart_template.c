/*
 * port_uart_template.c -- tfuav port for real boards (plain C99).
 * Link with --specs=nano.specs --specs=nosys.specs (no semihosting).
 *
 * All text (tfuav_port_write, printf/puts through newlib's _write) ends up in
 * tfuav_uart_putc().  The defaults below are weak and do nothing, so this file
 * compiles and links as is; to see output on a board, define in your own file:
 *
 *     void tfuav_uart_init(void)   { ... clocks, GPIO alternate function, baud ... }
 *     void tfuav_uart_putc(char c) { while (!(USARTx->ISR & TXE)) {} USARTx->TDR = c; }
 *
 * (use your vendor's register names; nothing else here has to change).
 * Also provided (weak, override if you need something else): the newlib system
 * calls _write, _read, _close, _fstat, _isatty, _lseek, _sbrk (bounded by the
 * linker symbols __heap_start/__heap_end), _exit, _kill, _getpid, so no
 * "... is not implemented and will always fail" warnings come from libnosys.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "port.h"

#ifdef __cplusplus
extern "C" { /* also builds when a harness compiles every file with g++ */
#endif

#define TFUAV_WEAK __attribute__((weak))

/* ---- the two functions a board port fills in ------------------------------ */

/* Bring up the UART (clock, pins, baud rate).  Default: nothing. */
TFUAV_WEAK void tfuav_uart_init(void)
{
}

/* Send one byte, blocking until the transmitter accepts it.  Default: drop it. */
TFUAV_WEAK void tfuav_uart_putc(char c)
{
    (void)c;
}

/* ---- port API -------------------------------------------------------------- */

void tfuav_main_returned(int code); /* start-up hook (weak there) */

void tfuav_port_init(void)
{
    tfuav_uart_init();
}

/* "\n" goes out as "\r\n" so serial terminals show proper lines. */
static void tfuav_uart_puts_n(const char *s, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) {
        if (s[i] == '\n') {
            tfuav_uart_putc('\r');
        }
        tfuav_uart_putc(s[i]);
    }
}

void tfuav_port_write(const char *s)
{
    size_t n = 0;
    while (s[n] != '\0') {
        n++;
    }
    tfuav_uart_puts_n(s, n);
}

/* Real boards have nowhere to return to: mask interrupts and park the core
 * (a debugger can read `code` from r0/the stack).  Override if your board has
 * a better way to report the end of a run. */
TFUAV_WEAK void tfuav_port_exit(int code)
{
    (void)code;
    __asm__ volatile("cpsid i" ::: "memory");
    for (;;) {
        __asm__ volatile("wfi");
    }
}

void tfuav_main_returned(int code)
{
    tfuav_port_exit(code);
}

/* ---- newlib system calls (retarget) -------------------------------------- */

TFUAV_WEAK int _write(int fd, const char *buf, int len)
{
    if (fd != 1 && fd != 2) {
        errno = EBADF;
        return -1;
    }
    if (len > 0) {
        tfuav_uart_puts_n(buf, (size_t)len);
    }
    return len;
}

TFUAV_WEAK int _read(int fd, char *buf, int len)
{
    (void)fd;
    (void)buf;
    (void)len;
    return 0; /* end of file */
}

TFUAV_WEAK int _close(int fd)
{
    (void)fd;
    return -1;
}

TFUAV_WEAK int _fstat(int fd, struct stat *st)
{
    (void)fd;
    st->st_mode = S_IFCHR; /* a terminal: stdout becomes line-buffered */
    return 0;
}

TFUAV_WEAK int _isatty(int fd)
{
    (void)fd;
    return 1;
}

TFUAV_WEAK int _lseek(int fd, int offset, int whence)
{
    (void)fd;
    (void)offset;
    (void)whence;
    return 0;
}

TFUAV_WEAK int _getpid(void)
{
    return 1;
}

TFUAV_WEAK int _kill(int pid, int sig)
{
    (void)pid;
    (void)sig;
    errno = EINVAL;
    return -1;
}

TFUAV_WEAK void _exit(int code)
{
    tfuav_port_exit(code);
}

/* Heap for malloc (newlib's stdio allocates its buffers there): from the
 * linker script's __heap_start up to __heap_end, never beyond. */
extern char __heap_start;
extern char __heap_end;

TFUAV_WEAK void *_sbrk(ptrdiff_t increment)
{
    static char *brk = NULL;
    char *previous;

    if (brk == NULL) {
        brk = &__heap_start;
    }
    if (increment > 0 && (size_t)(&__heap_end - brk) < (size_t)increment) {
        errno = ENOMEM;
        return (void *)-1;
    }
    if (increment < 0 && (size_t)(brk - &__heap_start) < (size_t)(-increment)) {
        errno = ENOMEM;
        return (void *)-1;
    }
    previous = brk;
    brk += increment;
    return previous;
}

#ifdef __cplusplus
} /* extern "C" */
#endif
