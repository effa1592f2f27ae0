/* Attack: get at another process's memory: ptrace(PTRACE_SEIZE), process_vm_readv, or
 * open /proc/<pid>/mem. Seizing does not stop the tracee; exiting detaches.
 *
 * usage: attach ptrace|vm_readv|proc_mem child|parent|PID
 *   child   a child forked here (always permitted without a sandbox: it is our descendant)
 *   parent  getppid() (the supervisor or launcher inside a sandbox)
 *   PID     any pid, e.g. a host process the test started
 */
#include "probe.h"
#include <fcntl.h>
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>

static char secret[16] = "ar-secret-bytes";

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: attach ptrace|vm_readv|proc_mem child|parent|PID\n");
        return 2;
    }
    pid_t child = 0, target;
    if (!strcmp(argv[2], "child")) {
        child = fork();
        if (child == 0) {
            alarm(20); /* bounded even if the parent dies first */
            pause();
            _exit(0);
        }
        target = child;
    } else if (!strcmp(argv[2], "parent")) {
        target = getppid();
    } else {
        target = (pid_t)atol(argv[2]);
    }

    long ret;
    errno = 0;
    if (!strcmp(argv[1], "ptrace")) {
        ret = ptrace(PTRACE_SEIZE, target, NULL, NULL);
    } else if (!strcmp(argv[1], "vm_readv")) {
        char buf[16];
        struct iovec local = {buf, sizeof buf}, remote = {secret, sizeof secret};
        ret = syscall(SYS_process_vm_readv, target, &local, 1, &remote, 1, 0);
    } else {
        char path[64];
        snprintf(path, sizeof path, "/proc/%d/mem", (int)target);
        ret = open(path, O_RDONLY | O_CLOEXEC);
    }
    int err = errno;
    if (child > 0) {
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
    }
    /* EFAULT from process_vm_readv: the permission check passed, only our guessed address
     * is not mapped in the target, so the memory was reachable. */
    int access = ret >= 0 || (!strcmp(argv[1], "vm_readv") && err == EFAULT);
    char extra[64];
    snprintf(extra, sizeof extra, "\"target\":%d,\"access\":%s", (int)target,
             access ? "true" : "false");
    ar_emit("attach", argv[1], ret, err, extra);
    return 0;
}
