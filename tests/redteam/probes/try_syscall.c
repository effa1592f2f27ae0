/* Attack: call one dangerous system call, named by argv, and report the kernel's answer.
 *
 * usage: try_syscall [--userns] CALL
 *   --userns  first enter fresh user+mount+net+uts+ipc namespaces (unprivileged users can on
 *             this class of host), so the unsandboxed control holds the capabilities the call
 *             needs; inside the sandbox that step is itself refused and the call is tried anyway.
 * Calls named "*_marker" pass bad fds/pointers: reaching the kernel gives EBADF/EFAULT/EINVAL,
 * a seccomp denial gives EPERM or ENOSYS. The others are the real attack, made harmless
 * (process-private keyring, private mount namespace, child exits at once).
 */
#include "probe.h"
#include <fcntl.h>
#include <linux/keyctl.h>
#include <linux/perf_event.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#define BAD_PTR ((void *)1)

struct ar_handle {
    unsigned int handle_bytes;
    int handle_type;
    unsigned char f_handle[128];
};

static long child_exits(long pid)
{
    if (pid == 0)
        _exit(0);
    if (pid > 0)
        waitpid((pid_t)pid, NULL, __WALL);
    return pid;
}

static char scratch_dir[64] = "/tmp/ar-mnt-XXXXXX";

static long call(const char *name)
{
    if (!strcmp(name, "keyctl")) /* read the id of our user keyring */
        return syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_USER_KEYRING, 0);
    if (!strcmp(name, "add_key")) /* key lives in the process keyring, gone on exit */
        return syscall(SYS_add_key, "user", "ar-redteam", "x", 1, KEY_SPEC_PROCESS_KEYRING);
    if (!strcmp(name, "request_key_marker")) /* allowed: ENOKEY */
        return syscall(SYS_request_key, "user", "ar-redteam-absent", NULL, 0);
    if (!strcmp(name, "bpf_marker")) /* allowed: EFAULT copying the attr */
        return syscall(SYS_bpf, 0, BAD_PTR, 8);
    if (!strcmp(name, "perf_event_open")) { /* count our own user-space cpu clock */
        struct perf_event_attr attr;
        memset(&attr, 0, sizeof attr);
        attr.size = sizeof attr;
        attr.type = PERF_TYPE_SOFTWARE;
        attr.config = PERF_COUNT_SW_TASK_CLOCK;
        attr.exclude_kernel = 1;
        attr.exclude_hv = 1;
        return syscall(SYS_perf_event_open, &attr, 0, -1, -1, 0);
    }
    if (!strcmp(name, "userfaultfd")) /* UFFD_USER_MODE_ONLY works without privileges */
        return syscall(SYS_userfaultfd, O_CLOEXEC | 1);
    if (!strcmp(name, "io_uring_setup")) {
        unsigned char params[120];
        memset(params, 0, sizeof params);
        return syscall(SYS_io_uring_setup, 4, params);
    }
    if (!strcmp(name, "name_to_handle_at")) {
        struct ar_handle h = {.handle_bytes = sizeof h.f_handle};
        int mount_id;
        return syscall(SYS_name_to_handle_at, AT_FDCWD, "/", &h, &mount_id, 0);
    }
    if (!strcmp(name, "open_by_handle_at_marker")) /* allowed: EBADF or EFAULT */
        return syscall(SYS_open_by_handle_at, -1, BAD_PTR, O_RDONLY);
    if (!strcmp(name, "unshare_user"))
        return syscall(SYS_unshare, CLONE_NEWUSER);
    if (!strcmp(name, "clone_newuser"))
        return child_exits(syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0));
    if (!strcmp(name, "clone3_newuser")) {
        struct clone_args args;
        memset(&args, 0, sizeof args);
        args.flags = CLONE_NEWUSER;
        args.exit_signal = SIGCHLD;
        return child_exits(syscall(SYS_clone3, &args, sizeof args));
    }
    if (!strcmp(name, "clone3_plain")) {
        struct clone_args args;
        memset(&args, 0, sizeof args);
        args.exit_signal = SIGCHLD;
        return child_exits(syscall(SYS_clone3, &args, sizeof args));
    }
    if (!strcmp(name, "setns_marker")) /* allowed: EBADF */
        return syscall(SYS_setns, -1, 0);
    if (!strcmp(name, "mount_marker")) /* allowed: EFAULT copying the fs type */
        return syscall(SYS_mount, BAD_PTR, BAD_PTR, BAD_PTR, 0, NULL);
    if (!strcmp(name, "mount_tmpfs")) {
        if (!mkdtemp(scratch_dir))
            return -1;
        long r = syscall(SYS_mount, "none", scratch_dir, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m");
        int e = errno;
        if (r == 0)
            umount2(scratch_dir, MNT_DETACH);
        rmdir(scratch_dir);
        errno = e;
        return r;
    }
    if (!strcmp(name, "umount_marker")) /* allowed: EFAULT */
        return syscall(SYS_umount2, BAD_PTR, 0);
    if (!strcmp(name, "pivot_root_marker")) /* allowed with CAP_SYS_ADMIN: EFAULT */
        return syscall(SYS_pivot_root, BAD_PTR, BAD_PTR);
    if (!strcmp(name, "chroot"))
        return syscall(SYS_chroot, ".");
    if (!strcmp(name, "fsopen"))
        return syscall(SYS_fsopen, "tmpfs", 1 /* FSOPEN_CLOEXEC */);
    if (!strcmp(name, "open_tree"))
        return syscall(SYS_open_tree, AT_FDCWD, "/", 1 /* OPEN_TREE_CLONE */ | 0x8000 /* AT_RECURSIVE */ | O_CLOEXEC);
    if (!strcmp(name, "fspick"))
        return syscall(SYS_fspick, AT_FDCWD, "/", 1 /* FSPICK_CLOEXEC */);
    if (!strcmp(name, "fsmount_marker")) /* allowed: EBADF */
        return syscall(SYS_fsmount, -1, 0, 0);
    if (!strcmp(name, "move_mount_marker")) /* allowed: EBADF or ENOENT */
        return syscall(SYS_move_mount, -1, "", -1, "", 0);
    if (!strcmp(name, "mount_setattr_marker")) /* allowed: EINVAL or EBADF */
        return syscall(SYS_mount_setattr, -1, "", 0, NULL, 0);
    if (!strcmp(name, "personality_no_aslr"))
        return syscall(SYS_personality, PER_LINUX | ADDR_NO_RANDOMIZE);
    if (!strcmp(name, "personality_query"))
        return syscall(SYS_personality, 0xffffffffUL);
    if (!strcmp(name, "getpid"))
        return syscall(SYS_getpid);
    errno = EINVAL;
    fprintf(stderr, "try_syscall: unknown call %s\n", name);
    exit(2);
}

int main(int argc, char **argv)
{
    char extra[96] = "";
    int i = 1;
    if (i < argc && !strcmp(argv[i], "--userns")) {
        long r = syscall(SYS_unshare, CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWUTS |
                                          CLONE_NEWIPC);
        snprintf(extra, sizeof extra, "\"userns\":\"%s\"", r == 0 ? "ok" : ar_errname(errno));
        if (r == 0)
            mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL);
        i++;
    }
    if (i >= argc) {
        fprintf(stderr, "usage: try_syscall [--userns] CALL\n");
        return 2;
    }
    errno = 0;
    long ret = call(argv[i]);
    ar_emit("try_syscall", argv[i], ret, errno, extra);
    return 0;
}
