/* What main_mcu.c needs from a board: a byte link, a cost counter, a name.
 *
 * One file per board implements it: mps2_an505/board_mps2.c (QEMU's Cortex-M33 machine, CMSDK
 * UART0 and timer), pico/board_pico.c (pico-sdk stdio over USB CDC), host/board_host.c (stdin and
 * stdout of a POSIX process, so the same protocol code also runs, and is checked, on the host).
 */
#ifndef EXPLORER_BOARD_H
#define EXPLORER_BOARD_H

#include <stdint.h>

/* The board's name in the ready line, and the name of the cost field of each result line:
 * "instructions" on a simulator (a count, not a time), "time_ns" on real hardware. */
extern const char board_name[];
extern const char board_cost_field[];

/* Bring the link and the counter up; NULL when ready, else one line saying why not. */
const char *board_init(void);

/* The next byte from the host, blocking; a negative value when the link has ended. */
int board_getc(void);

/* Send n bytes to the host (buffering allowed until board_flush). */
void board_write(const char *s, unsigned n);
void board_flush(void);

/* The counter, read before and after a call; board_cost converts a pair to the cost unit. */
uint64_t board_now(void);
uint64_t board_cost(uint64_t before, uint64_t after);

#endif
