/* Attack: poison the one-file build's unpacked files (PyInstaller's _MEIxxxxxx dir), which
 * every later re-exec of the executable loads.
 * usage: meiwrite TARGET_FILE SECONDS
 * Waits (at most SECONDS) until TARGET_FILE names the unpacked dir (the test writes it once it
 * has found the dir from the host), then tries to create a file there and reports. */
#include "probe.h"
#include <fcntl.h>

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: meiwrite TARGET_FILE SECONDS\n");
        return 2;
    }
    int seconds = atoi(argv[2]) > 60 ? 60 : atoi(argv[2]);
    char dir[4096] = "";
    for (int i = 0; i < seconds * 10 && !dir[0]; i++) {
        FILE *fh = fopen(argv[1], "r");
        if (fh) {
            if (!fgets(dir, sizeof dir, fh))
                dir[0] = 0;
            fclose(fh);
            dir[strcspn(dir, "\n")] = 0;
        }
        if (!dir[0])
            usleep(100000);
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/ar-redteam-poison", dir);
    errno = 0;
    int fd = dir[0] ? open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644) : -1;
    int err = dir[0] ? errno : ETIMEDOUT;
    if (fd >= 0) {
        close(fd);
        unlink(path);
    }
    ar_emit("meiwrite", "open_creat", fd >= 0 ? 0 : -1, err, "");
    return 0;
}
