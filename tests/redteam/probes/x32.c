/* Attack: call getpid through the x32 ABI (nr | 0x40000000), which a filter that checks only
 * the x86_64 numbers would wave through. Expected in the sandbox: killed by SIGSYS. */
#include "probe.h"
#include <sys/syscall.h>

int main(void)
{
    ar_started("x32");
    errno = 0;
    long ret = syscall(0x40000000L | SYS_getpid);
    ar_emit("x32", "getpid_x32", ret, errno, ret < 0 ? "\"reached_kernel\":true" : "");
    return 0;
}
