/* board.h for a POSIX process: the protocol over stdin/stdout, wall time from CLOCK_MONOTONIC.
 * Built with the same main_mcu.c and model sources, it is the host reference of a firmware. */
#define _POSIX_C_SOURCE 199309L

#include <stdio.h>
#include <time.h>

#include "board.h"

const char board_name[] = "host";
const char board_cost_field[] = "time_ns";

const char *board_init(void)
{
    return NULL;
}

int board_getc(void)
{
    int c = getchar();
    return c == EOF ? -1 : c;
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
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t board_cost(uint64_t before, uint64_t after)
{
    return after - before;
}
