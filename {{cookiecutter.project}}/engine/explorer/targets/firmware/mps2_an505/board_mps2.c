/* board.h for QEMU's mps2-an505 (Arm MPS2+ FPGA image AN505: a Cortex-M33 in an SSE-200).
 *
 * Link: CMSDK APB UART0 (Secure alias 0x50200000) on QEMU's `-serial`; while waiting for a
 * byte the CPU sleeps in WFI, woken by the (masked) UART0 RX interrupt, IRQ 32.
 *
 * Cost: QEMU models no time, so the cost is an instruction count, not a time. With
 * `-icount shift=ICOUNT_SHIFT` each executed guest instruction advances virtual time by exactly
 * 2^ICOUNT_SHIFT ns; the SSE-200's CMSDK APB timer 0 (Secure alias 0x50000000, a 32-bit
 * down-counter on the 20 MHz MAINCLK) ticks every 50 ns of virtual time; so
 * instructions = round(ticks * 50 / 2^shift). With shift 8 one instruction is 5.12 ticks, the
 * +-1 tick of a pair of reads is 0.2 instruction, and the rounded count is exact. Every Thumb
 * instruction counts 1, whatever its cycles on silicon (a divide or a load as much as an add;
 * soft-float helpers count their own instructions). board_init checks the arithmetic on a loop
 * of known length and refuses to measure (error line) when QEMU runs without that setting.
 */
#include <stdint.h>

#include "board.h"

#ifndef ICOUNT_SHIFT
#define ICOUNT_SHIFT 8
#endif
#define TICK_NS 50u /* 20 MHz */
#define TEXT(x) #x
#define SHIFT_TEXT(x) TEXT(x)

#define REG(address) (*(volatile uint32_t *)(address))
#define UART0 0x50200000u
#define UART_DATA REG(UART0 + 0x0)
#define UART_STATE REG(UART0 + 0x4) /* bit 0: TX full, bit 1: RX full */
#define UART_CTRL REG(UART0 + 0x8)  /* bit 0: TX enable, bit 1: RX enable */
#define UART_BAUDDIV REG(UART0 + 0x10)
#define UART_INTCLEAR REG(UART0 + 0xC)
#define NVIC_ISER1 REG(0xE000E104u)
#define NVIC_ICPR1 REG(0xE000E284u)
#define TIMER0 0x50000000u
#define TIMER_CTRL REG(TIMER0 + 0x0)
#define TIMER_VALUE REG(TIMER0 + 0x4)
#define TIMER_RELOAD REG(TIMER0 + 0x8)

const char board_name[] = "mps2-an505";
const char board_cost_field[] = "instructions";

/* Exactly 2 * n instructions (n >= 1): subs, bne per round. */
__attribute__((noinline)) static void spin(uint32_t n)
{
    __asm volatile(".syntax unified\n1:\tsubs %0, %0, #1\n\tbne 1b" : "+l"(n) : : "cc");
}

static uint64_t instructions(uint32_t ticks)
{
    return ((uint64_t)ticks * TICK_NS + (1u << (ICOUNT_SHIFT - 1))) >> ICOUNT_SHIFT;
}

/* Not inlined: the same instructions surround spin() whatever n is. */
__attribute__((noinline)) static uint32_t ticks_of_spin(uint32_t n)
{
    uint32_t before = TIMER_VALUE;
    spin(n);
    return before - TIMER_VALUE;
}

const char *board_init(void)
{
    uint64_t small, large;
    UART_BAUDDIV = 16;
    __asm volatile("cpsid i");
    UART_CTRL = 0x3 | 0x8; /* TX, RX, RX interrupt (wakes WFI in board_getc) */
    NVIC_ISER1 = 1u;       /* IRQ 32: UART0 RX on the AN505 */
    TIMER_CTRL = 0;
    TIMER_RELOAD = 0xFFFFFFFFu;
    TIMER_VALUE = 0xFFFFFFFFu;
    TIMER_CTRL = 0x1;
    ticks_of_spin(1);
    small = instructions(ticks_of_spin(1000));
    large = instructions(ticks_of_spin(3000));
    if (large - small != 4000u)
        return "instruction counter check failed: run QEMU with -icount shift=" SHIFT_TEXT(ICOUNT_SHIFT);
    return 0;
}

int board_getc(void)
{
    /* Sleep until a byte comes instead of spinning: QEMU then idles instead of burning a host
     * core, and hands bytes over faster. The RX interrupt is enabled but masked (PRIMASK), so
     * it only wakes WFI; it stays pending until cleared, so no byte is missed. */
    while (!(UART_STATE & 0x2u)) {
        __asm volatile("wfi");
        UART_INTCLEAR = 0x2u;
        NVIC_ICPR1 = 1u;
    }
    return (int)(UART_DATA & 0xFFu);
}

void board_write(const char *s, unsigned n)
{
    while (n--) {
        while (UART_STATE & 0x1u)
            ;
        UART_DATA = (uint32_t)(unsigned char)*s++;
    }
}

void board_flush(void)
{
}

uint64_t board_now(void)
{
    return TIMER_VALUE;
}

/* `before` and `after` are timer values (it counts down); one wrap is 214 s of virtual time,
 * 838 million instructions, far above any model here. */
uint64_t board_cost(uint64_t before, uint64_t after)
{
    return instructions((uint32_t)before - (uint32_t)after);
}
