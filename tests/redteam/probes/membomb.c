/* Attack: allocate and touch memory in 16 MiB steps, bounded at MAX MiB.
 * usage: membomb MAX_MIB    reports "mib" reached and the errno that stopped us. */
#include "probe.h"

int main(int argc, char **argv)
{
    long max = argc > 1 ? atol(argv[1]) : 64;
    const size_t step = 16UL << 20;
    long mib = 0;
    int err = 0;
    while (mib < max) {
        errno = 0;
        char *p = malloc(step);
        if (!p) {
            err = errno ? errno : ENOMEM;
            break;
        }
        memset(p, 0xA5, step); /* touch every page: resident, not just reserved */
        mib += 16;
    }
    char extra[64];
    snprintf(extra, sizeof extra, "\"mib\":%ld,\"max\":%ld", mib, max);
    ar_emit("membomb", "malloc", err ? -1 : mib, err, extra);
    return 0;
}
