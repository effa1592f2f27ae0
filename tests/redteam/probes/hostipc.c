/* Attack: read what another process of the job's uid left in SysV shared memory or a POSIX
 * message queue (another job's, as host nobody; the operator's applications' otherwise). Without
 * an IPC namespace these objects are the host's, named by a number or in the kernel's own
 * mqueue mount, where no path rule reaches.
 *
 * usage: hostipc create shm|mq NAME SECRET   leave SECRET (shm: prints the segment's id)
 *        hostipc read shm|mq ID|NAME SECRET  "ok" when the object is read and holds SECRET
 *        hostipc remove shm|mq ID|NAME
 * Objects are created mode 0600: only the same uid (or root) may open them.
 */
#include "probe.h"
#include <fcntl.h>
#include <mqueue.h>
#include <sys/ipc.h>
#include <sys/shm.h>

static int create(const char *kind, const char *name, const char *secret)
{
    if (!strcmp(kind, "shm")) {
        int id = shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0600);
        char *mem = id < 0 ? (char *)-1 : shmat(id, NULL, 0);
        if (mem == (char *)-1) {
            ar_emit("hostipc", "shmget", -1, errno, NULL);
            return 1;
        }
        snprintf(mem, 4096, "%s", secret);
        printf("{\"probe\":\"hostipc\",\"id\":%d}\n", id);
        return 0;
    }
    struct mq_attr attr = {.mq_maxmsg = 1, .mq_msgsize = 256};
    mqd_t q = mq_open(name, O_CREAT | O_EXCL | O_WRONLY, 0600, &attr);
    if (q == (mqd_t)-1 || mq_send(q, secret, strlen(secret), 0) != 0) {
        ar_emit("hostipc", "mq_open", -1, errno, NULL);
        return 1;
    }
    printf("{\"probe\":\"hostipc\",\"id\":0}\n");
    return 0;
}

static void read_back(const char *kind, const char *name, const char *secret)
{
    char buf[257] = {0};
    if (!strcmp(kind, "shm")) {
        char *mem = shmat(atoi(name), NULL, SHM_RDONLY);
        if (mem == (char *)-1) {
            ar_emit("hostipc", "shmat", -1, errno, NULL);
            return;
        }
        snprintf(buf, sizeof buf, "%s", mem);
    } else {
        mqd_t q = mq_open(name, O_RDONLY | O_NONBLOCK);
        if (q == (mqd_t)-1 || mq_receive(q, buf, 256, NULL) < 0) {
            ar_emit("hostipc", "mq_open", -1, errno, NULL);
            return;
        }
    }
    ar_emit("hostipc", kind, strstr(buf, secret) ? 0 : -1, 0, NULL);
}

int main(int argc, char **argv)
{
    if (argc >= 5 && !strcmp(argv[1], "create"))
        return create(argv[2], argv[3], argv[4]);
    if (argc >= 5 && !strcmp(argv[1], "read")) {
        read_back(argv[2], argv[3], argv[4]);
        return 0;
    }
    if (argc >= 4 && !strcmp(argv[1], "remove"))
        return !strcmp(argv[2], "shm") ? shmctl(atoi(argv[3]), IPC_RMID, NULL) != 0
                                       : mq_unlink(argv[3]) != 0;
    return 2;
}
