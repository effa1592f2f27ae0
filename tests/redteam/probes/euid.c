/* Attack: gain privileges through a set-user-ID executable; reports real and effective ids.
 * The test installs a copy owned by another user with mode 4755. */
#include "probe.h"

int main(void)
{
    char extra[64];
    snprintf(extra, sizeof extra, "\"uid\":%d,\"euid\":%d", (int)getuid(), (int)geteuid());
    ar_emit("euid", "geteuid", geteuid(), 0, extra);
    return 0;
}
