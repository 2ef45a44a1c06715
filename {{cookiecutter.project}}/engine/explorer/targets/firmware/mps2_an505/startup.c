/* Start-up of a bare-metal Cortex-M image: vector table, .data copy, .bss zeroing, FPU on.
 *
 * QEMU's mps2-an505 boots the Cortex-M33 in the Secure state with VTOR at 0x10000000, where the
 * linker script puts .vectors. The same file serves the compile-only size checks for the
 * Cortex-M0+ (RP2040) and Cortex-M33 (RP2350). A fault prints an error line and stops, so the
 * host sees why instead of a silent board.
 */
#include <stdint.h>

#include "board.h"

extern uint32_t __data_load, __data_start, __data_end, __bss_start, __bss_end, __stack_top;
extern int main(void);

void reset_handler(void);
void fault_handler(void);

__attribute__((section(".vectors"), used)) static void (*const vectors[16])(void) = {
    (void (*)(void))(uintptr_t)&__stack_top,
    reset_handler,
    fault_handler, /* NMI */
    fault_handler, /* HardFault */
    fault_handler, /* MemManage */
    fault_handler, /* BusFault */
    fault_handler, /* UsageFault */
    fault_handler, /* SecureFault */
};

void reset_handler(void)
{
    uint32_t *src = &__data_load, *dst = &__data_start;
    while (dst < &__data_end)
        *dst++ = *src++;
    for (dst = &__bss_start; dst < &__bss_end;)
        *dst++ = 0;
#if defined(__ARM_FP)
    /* CPACR: full access to CP10 and CP11 (the FPU) before any float instruction runs. */
    *(volatile uint32_t *)0xE000ED88u |= 0xFu << 20;
    __asm volatile("dsb\n\tisb" ::: "memory");
#endif
    main();
    for (;;)
        ;
}

void fault_handler(void)
{
    static const char line[] = "{\"event\":\"error\",\"message\":\"CPU fault (HardFault or another exception)\"}\n";
    board_write(line, sizeof line - 1);
    board_flush();
    for (;;)
        ;
}
