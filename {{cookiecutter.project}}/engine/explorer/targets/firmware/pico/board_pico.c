/* board.h for a real Raspberry Pi Pico (RP2040) or Pico 2 (RP2350) with pico-sdk: the protocol
 * over USB CDC (stdio_usb), the cost as wall time from the 1 MHz system timer (time_us_64), so
 * "time_ns" has a resolution of 1000 ns. Compiles only in the pico toolchain image (pico-sdk);
 * untested in this repository's tests, which run the mps2-an505 board layer in QEMU instead. */
#include <stdio.h>

#include "pico/stdlib.h"

#include "board.h"

#if defined(PICO_RP2350)
const char board_name[] = "pico2-rp2350";
#else
const char board_name[] = "pico-rp2040";
#endif
const char board_cost_field[] = "time_ns";

const char *board_init(void)
{
    stdio_init_all();
    return NULL;
}

int board_getc(void)
{
    int c;
    do
        c = getchar_timeout_us(1000000);
    while (c == PICO_ERROR_TIMEOUT);
    return c < 0 ? -1 : c;
}

void board_write(const char *s, unsigned n)
{
    fwrite(s, 1, n, stdout);
}

void board_flush(void)
{
    fflush(stdout);
}

uint64_t board_now(void)
{
    return time_us_64();
}

uint64_t board_cost(uint64_t before, uint64_t after)
{
    return (after - before) * 1000u;
}
