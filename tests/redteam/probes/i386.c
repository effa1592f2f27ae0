/* Attack: a genuine 32-bit (i386) process calling getpid; built with -m32 -static.
 * Expected in the sandbox: killed by SIGSYS (foreign architecture). */
#include "probe.h"
#include <sys/syscall.h>

int main(void)
{
    ar_started("i386");
    errno = 0;
    long ret = syscall(SYS_getpid);
    ar_emit("i386", "getpid_i386_process", ret, errno, "");
    return 0;
}
