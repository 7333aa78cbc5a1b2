/* thread.c - detached helper threads with signals blocked (thread.h).
 * Locks: none, no global state; any thread.
 * Never: start a thread that runs user code or Python this way (nobody
 * joins it, and it could not take a signal).
 */
#include "base.h"
#include "thread.h"

#include <pthread.h>
#include <signal.h>

int
mg_thread_start_quiet(void *(*fn)(void *), void *arg, size_t stack)
{
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old); /* the new thread inherits */
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    if (stack > 0) {
        pthread_attr_setstacksize(&a, stack);
    }
    pthread_t t;
    int rc = pthread_create(&t, &a, fn, arg);
    pthread_attr_destroy(&a);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
}
