/* Attack: enter the i386 syscall table with `int $0x80` from a 64-bit process (audit arch
 * I386), where syscall numbers differ and a filter keyed on x86_64 numbers means nothing.
 * Expected in the sandbox: killed by SIGSYS. */
#include "probe.h"

int main(void)
{
    ar_started("int80");
    long eax = 20; /* __NR_getpid on i386 */
    __asm__ volatile("int $0x80" : "+a"(eax) : : "memory");
    long ret = eax < 0 && eax > -4096 ? -1 : eax;
    ar_emit("int80", "getpid_i386", ret, eax < 0 ? (int)-eax : 0, "");
    return 0;
}
