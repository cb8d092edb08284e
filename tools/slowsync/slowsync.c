/* slowsync: an LD_PRELOAD shim that makes some fsync/fdatasync calls of the
 * process stall, to measure how a server copes with a disk whose flushes
 * sometimes take hundreds of milliseconds (BENCHMARKS.md, issue 18).
 *
 *   SLOWSYNC_PERIOD_MS=P  the first call in each period of P ms of wall time
 *                         stalls (default 5000; 0 = never). Stalls are spread
 *                         in time, not per call, so a build that fsyncs less
 *                         often does not also stall less often.
 *   SLOWSYNC_MS=M         the stall, in milliseconds (default 200), before the
 *                         real call runs
 *
 * Build: cc -O2 -shared -fPIC -o slowsync.so slowsync.c -ldl
 * Use:   LD_PRELOAD=$PWD/slowsync.so SLOWSYNC_PERIOD_MS=5000 SLOWSYNC_MS=200 hubbub ... */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

static atomic_ulong last_period;

static void maybe_stall(void) {
    const char *p = getenv("SLOWSYNC_PERIOD_MS");
    const char *m = getenv("SLOWSYNC_MS");
    unsigned long period = p ? strtoul(p, NULL, 10) : 5000;
    unsigned long ms = m ? strtoul(m, NULL, 10) : 200;
    if (period == 0) return;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    unsigned long this_period = ((unsigned long)now.tv_sec * 1000 + (unsigned long)now.tv_nsec / 1000000) / period;
    unsigned long seen = atomic_load(&last_period);
    if (seen == this_period || !atomic_compare_exchange_strong(&last_period, &seen, this_period)) return;
    struct timespec t = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };
    while (nanosleep(&t, &t) != 0) {}
}

int fsync(int fd) {
    static int (*real)(int);
    if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    maybe_stall();
    return real(fd);
}

int fdatasync(int fd) {
    static int (*real)(int);
    if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    maybe_stall();
    return real(fd);
}
