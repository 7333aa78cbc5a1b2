/* main.c - runs every registered C test (see ctest.h) and prints one line
 * per test and a closing "ctest: N passed, M failed" line; exit status 1
 * if any failed. Usage: ctest [substring] runs only matching tests.
 * A test that hangs (a lost wake-up, say) fails after CTEST_TIMEOUT_S
 * seconds and ends the run. */
#include "ctest.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CTEST_TIMEOUT_S 120

#define CTEST_MAX 256

static struct {
    const char *name;
    ctest_fn fn;
} tests[CTEST_MAX];
static int ntests;
static atomic_int failures; /* in the running test, from any thread */
static const char *volatile running;

static void
on_timeout(int sig)
{
    (void)sig;
    /* Only async-signal-safe calls here. */
    static const char msg[] = "FAIL (timed out: hangs) ";
    ssize_t rc = write(STDOUT_FILENO, msg, sizeof(msg) - 1);
    const char *name = running ? running : "?";
    rc = write(STDOUT_FILENO, name, strlen(name));
    rc = write(STDOUT_FILENO, "\n", 1);
    (void)rc;
    _exit(1);
}

void
ctest_register(const char *name, ctest_fn fn)
{
    if (ntests == CTEST_MAX) {
        fprintf(stderr, "ctest: too many tests\n");
        abort();
    }
    tests[ntests].name = name;
    tests[ntests].fn = fn;
    ntests++;
}

void
ctest_fail(const char *file, int line, const char *what)
{
    atomic_fetch_add(&failures, 1);
    fprintf(stderr, "  FAIL %s:%d: %s\n", file, line, what);
}

int
ctest_slow(void)
{
#if defined(__SANITIZE_THREAD__)
    return 1;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
    return 1;
#else
    return 0;
#endif
#else
    return 0;
#endif
}

int
main(int argc, char **argv)
{
    const char *only = argc > 1 ? argv[1] : NULL;
    const char *label = getenv("CTEST_LABEL");
    int passed = 0, failed = 0;
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGALRM, on_timeout);
    for (int i = 0; i < ntests; i++) {
        if (only != NULL && strstr(tests[i].name, only) == NULL) {
            continue;
        }
        atomic_store(&failures, 0);
        running = tests[i].name;
        alarm(CTEST_TIMEOUT_S);
        tests[i].fn();
        alarm(0);
        int ok = atomic_load(&failures) == 0;
        printf("%s %s\n", ok ? "ok  " : "FAIL", tests[i].name);
        if (ok) {
            passed++;
        }
        else {
            failed++;
        }
    }
    printf("%s: %d passed, %d failed\n", label ? label : "ctest", passed,
           failed);
    return failed ? 1 : 0;
}
