/* worker.h - the C pool: worker threads, each owning one own-GIL
 * interpreter, fed by one task queue. */
#ifndef MG_WORKER_H
#define MG_WORKER_H

#include "core.h"
#include "taskq.h"

typedef struct mg_pool mg_pool;

typedef enum mg_worker_status {
    MG_WORKER_NEW = 0,     /* thread not started */
    MG_WORKER_RUNNING = 1, /* thread started (maybe still creating) */
    MG_WORKER_EXITED = 2,  /* thread finished; may be joined */
    MG_WORKER_JOINED = 3,
} mg_worker_status;

typedef struct mg_worker {
    mg_pool *pool;             /* borrowed; outlives the thread */
    int index;
    pthread_t thread;
    int status;                /* mg_worker_status, under pool->mu */
    unsigned long ident;       /* PyThread ident of the worker thread */
    /* Under pool->mu: the worker's interpreter while it may run a task.
     * Cleared before the worker retakes its GIL to end the interpreter, so
     * an interrupter holding pool->mu never races with teardown. */
    PyInterpreterState *interp;
    atomic_int busy;           /* 1 while running a task */
    atomic_uint task_seq;      /* bumped before each task starts */
    atomic_int interrupt_sent; /* an interrupter raised in this thread */
    int interrupters;          /* under pool->mu: helper threads holding a
                                  thread state of interp (see interrupt) */
    PyThreadState *owner_ts;   /* owned; tstate of the submitting
                                  interpreter, bound to this thread */
    long tasks_done;           /* since the interpreter was created */
    int64_t interp_id;         /* under pool->mu */
} mg_worker;

struct mg_pool {
    mg_taskq q;
    pthread_mutex_t mu;        /* worker status, broken_msg */
    pthread_cond_t cv;         /* signalled when a worker starts or exits */
    int nworkers;
    int nworkers_started;      /* threads created; < nworkers only when
                                  starting failed */
    mg_worker *workers;        /* owned array */
    int nexited;               /* under mu */
    int ncreated;              /* under mu: created (or failed) and imported
                                  the core, counted once per creation */
    atomic_int broken;
    int orphaned;              /* under mu: the owner object is gone; the
                                  last worker to exit frees the pool */
    char broken_msg[1024];     /* under mu, set once */
    mg_wait completed;         /* bumped after each completion (seq) */
    mg_spinner result_spin;    /* callers' spin for a completion */
    /* Submitting ("owner") interpreter. Only touched with its GIL held. */
    PyInterpreterState *owner_interp;
    mg_state *owner_st;        /* kept alive by the Pool object's type */
    /* Start-up configuration, plain C. */
    char **sys_path;           /* owned UTF-8 strings */
    Py_ssize_t nsys_path;
    mg_buf init_payload;       /* (initializer, initargs) or empty */
    long max_tasks;            /* 0 = unlimited */
    int64_t spin_ns;
    char name[48];
};

/* Creates the pool and starts its threads. Called in the owner interpreter
 * with its GIL held. NULL with an exception set on failure. */
mg_pool *mg_pool_start(mg_state *st, int nworkers, PyObject *sys_path,
                       mg_buf *init_payload, long max_tasks, int64_t spin_ns,
                       const char *name);
/* Waits up to timeout_ns (< 0: forever) for every worker thread to exit,
 * with the GIL released and Ctrl-C honoured. 1 when all exited, 0 on
 * timeout, -1 with an exception (KeyboardInterrupt). */
int mg_pool_join(mg_pool *p, int64_t timeout_ns);
/* Asks for SystemExit in every worker that is running a task, from helper
 * threads, so the caller never waits for a worker's GIL. Returns how many
 * requests were started. */
int mg_pool_interrupt(mg_pool *p);
/* The owner object is being freed on one of the pool's own worker threads
 * (a done-callback dropped the last reference): close the queue and let
 * the last worker to exit free the pool. */
void mg_pool_orphan(mg_pool *p);
/* 1 if the calling thread is one of p's workers. */
int mg_pool_on_worker_thread(mg_pool *p);
/* Frees the pool; every thread must have been joined. */
void mg_pool_free(mg_pool *p);

#endif
