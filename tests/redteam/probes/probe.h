/* Shared by the red-team probes: one JSON object per line on stdout, errno by name.
 *
 * A probe attempts one attack and reports what the kernel answered. "ok" means the attack
 * worked; "errno" names the error (EPERM from seccomp, EACCES from Landlock, ...) so the tests
 * can tell which control stopped it. Markers (bad fd/pointer arguments) fail harmlessly with
 * EBADF/EFAULT/EINVAL when a call reaches the kernel, and with the filter's errno when not.
 */
#ifndef AR_PROBE_H
#define AR_PROBE_H
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *ar_errname(int e)
{
    const char *name = e ? strerrorname_np(e) : NULL;
    return name ? name : "";
}

/* A line saying the probe is alive, so a later kill (SIGSYS) is told apart from "never ran". */
__attribute__((unused)) static void ar_started(const char *probe)
{
    printf("{\"probe\":\"%s\",\"stage\":\"started\"}\n", probe);
    fflush(stdout);
}

/* ret < 0 means failure with errno err; anything else is success. */
static void ar_emit(const char *probe, const char *call, long ret, int err, const char *extra)
{
    printf("{\"probe\":\"%s\",\"call\":\"%s\",\"ok\":%s,\"ret\":%ld,\"errno\":\"%s\"%s%s}\n",
           probe, call, ret < 0 ? "false" : "true", ret, ret < 0 ? ar_errname(err) : "",
           extra && *extra ? "," : "", extra ? extra : "");
    fflush(stdout);
}

#endif
