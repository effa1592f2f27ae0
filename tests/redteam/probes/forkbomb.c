/* Attack: fork until the kernel says no (bounded at MAX children, each parked on a pipe and
 * killed by alarm() at the latest), then release them all.
 * usage: forkbomb MAX       reports "children" reached and the errno that stopped us. */
#include "probe.h"
#include <signal.h>
#include <sys/wait.h>

int main(int argc, char **argv)
{
    long max = argc > 1 ? atol(argv[1]) : 64;
    int gate[2];
    if (pipe(gate) < 0)
        return 1;
    long n = 0;
    int err = 0;
    for (; n < max; n++) {
        pid_t pid = fork();
        if (pid < 0) {
            err = errno;
            break;
        }
        if (pid == 0) {
            char c;
            alarm(30);
            close(gate[1]);
            (void)!read(gate[0], &c, 1); /* EOF once the parent closes its end */
            _exit(0);
        }
    }
    close(gate[1]);
    while (wait(NULL) > 0)
        ;
    char extra[64];
    snprintf(extra, sizeof extra, "\"children\":%ld,\"max\":%ld", n, max);
    ar_emit("forkbomb", "fork", err ? -1 : n, err, extra);
    return 0;
}
