/* Attack: leave an executable with the set-user-ID (or set-group-ID) bit in a writable dir, for
 * a host user to run as the file's owner later (root's, for a root-started full-tier job whose
 * writable binds are id-mapped; the operator's otherwise).
 *
 * usage: setid DIR CALL MODE   CALL: chmod, fchmod, fchmodat, fchmodat2; MODE in octal
 * Copies its own executable to DIR/setid-CALL (so the file has content: a write clears the
 * bits), then sets MODE with CALL; "ok" when the file has MODE afterwards.
 */
#include "probe.h"
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#ifndef SYS_fchmodat2
#define SYS_fchmodat2 452
#endif

static int copy_self(const char *to)
{
    char buf[65536];
    int in = open("/proc/self/exe", O_RDONLY);
    int out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0755);
    ssize_t n;
    if (in < 0 || out < 0)
        return -1;
    while ((n = read(in, buf, sizeof buf)) > 0)
        if (write(out, buf, (size_t)n) != n)
            return -1;
    close(in);
    return out;
}

int main(int argc, char **argv)
{
    char path[4096], extra[64];
    struct stat st;
    long ret;
    int fd, err;
    mode_t mode;
    if (argc != 4)
        return 2;
    mode = (mode_t)strtol(argv[3], NULL, 8);
    snprintf(path, sizeof path, "%s/setid-%s", argv[1], argv[2]);
    unlink(path);
    fd = copy_self(path);
    if (fd < 0) {
        ar_emit("setid", "copy", -1, errno, NULL);
        return 1;
    }
    if (!strcmp(argv[2], "chmod"))
        ret = chmod(path, mode);
    else if (!strcmp(argv[2], "fchmod"))
        ret = fchmod(fd, mode);
    else if (!strcmp(argv[2], "fchmodat"))
        ret = syscall(SYS_fchmodat, AT_FDCWD, path, mode);
    else if (!strcmp(argv[2], "fchmodat2"))
        ret = syscall(SYS_fchmodat2, AT_FDCWD, path, mode, 0);
    else
        return 2;
    err = errno;
    close(fd);
    if (stat(path, &st) != 0)
        st.st_mode = 0;
    snprintf(extra, sizeof extra, "\"mode\":\"%o\"", (unsigned)(st.st_mode & 07777));
    /* it worked only if the file really has the mode asked for */
    ar_emit("setid", argv[2], (ret == 0 && (st.st_mode & 07777) == mode) ? 0 : -1, ret ? err : 0,
            extra);
    return 0;
}
