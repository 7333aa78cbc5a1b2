/* engine.h - the C pool: worker threads, each owning one own-GIL
 * interpreter, fed by one task queue, completing the caller's futures. */
#ifndef MG_ENGINE_H
#define MG_ENGINE_H

#include "core.h"
#include "taskq.h"

typedef struct mg_pool mg_pool;

typedef enum mg_worker_status {
    MG_WORKER_NEW = 0,      /* thread not started */
    MG_WORKER_RUNNING = 1,  /* thread started (maybe still creating) */
    MG_WORKER_EXITED = 2,   /* thread is done with Python; about to return */
    MG_WORKER_JOINING = 3,  /* one joiner is in pthread_join on it */
    MG_WORKER_JOINED = 4,
    MG_WORKER_DETACHED = 5, /* orphaned pool: nobody will join it */
} mg_worker_status;

/* Counters for Pool.stats(), kept for the pool's whole life (recycled
 * interpreters included). Only the worker thread writes them (a relaxed
 * load and store, no read-modify-write); anyone reads them, relaxed: a
 * snapshot of several counters is not taken at one instant. */
typedef struct mg_worker_stats {
    _Atomic uint64_t done;     /* tasks finished, failed ones included */
    _Atomic uint64_t failed;   /* ... that raised (a chunk: any item) */
    _Atomic uint64_t busy_ns;  /* monotonic time spent running them */
} mg_worker_stats;

typedef struct mg_worker {
    mg_pool *pool;             /* the thread holds a reference */
    int index;
    int status;                /* mg_worker_status, under pool->mu */
    pthread_t thread;          /* under pool->mu, valid once have_thread */
    int have_thread;           /* under pool->mu */
    unsigned long ident;       /* PyThread ident; written by the worker
                                  before its first task, under pool->mu */
    /* Under pool->mu: the worker's interpreter while it may run a task.
     * Cleared before the worker retakes its GIL to end the interpreter, so
     * an interrupter holding pool->mu never races with teardown. */
    PyInterpreterState *interp;
    atomic_int busy;           /* 1 while running a task */
    atomic_uint task_seq;      /* bumped before each task starts */
    atomic_int interrupt_sent; /* an interrupter raised in this thread */
    int interrupters;          /* under pool->mu: helper threads holding a
                                  thread state of interp (see interrupt) */
    PyThreadState *owner_ts;   /* worker thread only: a thread state of the
                                  owner interpreter bound to this thread */
    long tasks_done;           /* worker thread only: since the last
                                  recycle (max_tasks) */
    mg_worker_stats stats;     /* written by the worker thread only */
} mg_worker;

struct mg_pool {
    /* References: the owner's Pool object (until it is freed or the pool
     * is orphaned), each started worker thread (dropped as its very last
     * act), the registry (while registered) and any joiner or wrapper.
     * The last one frees the pool. */
    atomic_int refcnt;
    mg_taskq q;
    pthread_mutex_t mu;        /* protects the fields marked "under mu" */
    pthread_cond_t cv;         /* signalled when an interrupter is done */
    mg_wait life;              /* bumped when a worker has created its
                                  interpreter, exits or is joined: the
                                  start-up wait and joins wait on it */
    int nworkers;
    int nstarted;              /* under mu: threads created */
    int nexited;               /* under mu */
    int ncreated;              /* under mu: workers whose interpreter
                                  exists (or failed, or was skipped) */
    int orphaned;              /* under mu: no owner object any more */
    int abandoned;             /* under mu: start-up was interrupted;
                                  workers that have not created their
                                  interpreter yet exit at once */
    int unregistered;          /* under mu: left the registry */
    atomic_int broken;
    char *broken_msg;          /* under mu, set once (malloc'd UTF-8) */
    mg_wait completed;         /* bumped (and waiters woken) after each
                                  completion */
    mg_spinner result_spin;    /* callers' spin policy (Pool.spin), paired
                                  with the workers' (q.spin) */
    mg_worker *workers;        /* owned array */
    /* Submitting ("owner") interpreter. Only touched with its GIL held. */
    PyInterpreterState *owner_interp;
    int64_t owner_id;          /* its id, for the registry */
    mg_state *owner_st;        /* lives as long as the owner's module */
    mg_pool *reg_prev, *reg_next; /* under the registry's lock */
    /* Start-up configuration, plain C. */
    char **sys_path;           /* owned, file-system encoding */
    Py_ssize_t nsys_path;
    mg_buf init_payload;       /* (initializer, initargs) or empty */
    long max_tasks;            /* 0 = unlimited */
    int64_t spin_ns;
    char name[48];
    struct mg_out *out;        /* output channel (output.c), or NULL:
                                  workers write to the process's fds */
};

/* Creates the pool, registers it, starts its threads and waits (Ctrl-C
 * honoured) until every worker's interpreter exists. Owner GIL held. The
 * caller owns one reference. NULL with an exception set on failure.
 * forward_output: workers' sys.stdout/sys.stderr and logging records
 * (from log_level up) reach the owner's (output.h). */
mg_pool *mg_pool_start(mg_state *st, int nworkers, PyObject *sys_path,
                       mg_buf *init_payload, long max_tasks, int64_t spin_ns,
                       const char *name, int forward_output, int log_level);
void mg_pool_incref(mg_pool *p);
/* Drops a reference; the last one frees the pool (any thread, no GIL
 * needed: what is left then is plain C). */
void mg_pool_decref(mg_pool *p);
/* Waits up to timeout_ns (< 0: forever) for every worker thread to be done
 * with Python, GIL released, Ctrl-C honoured; safe from any number of
 * threads at once. 1 when all are done, 0 on timeout, -1 with an exception
 * (KeyboardInterrupt). */
int mg_pool_join(mg_pool *p, int64_t timeout_ns);
/* 1 once every worker thread is done with Python. */
int mg_pool_done(mg_pool *p);
/* Asks for SystemExit in every worker that is running a task, from helper
 * threads, so the caller never waits for a worker's GIL. Returns how many
 * requests were started. */
int mg_pool_interrupt(mg_pool *p);
/* The owner object lets go of the pool without joining it (it is being
 * freed on one of the pool's own workers, or start-up was abandoned):
 * close the queue; the last worker to exit unregisters the pool. Drops
 * the owner's reference. */
void mg_pool_orphan(mg_pool *p);
/* The pool whose worker thread calls this, or NULL. */
mg_pool *mg_pool_current(void);
/* How many workers are running a task now. */
int mg_pool_busy(mg_pool *p);
/* How many worker threads are alive and not running a task (some may
 * still be starting: they take a task next). */
int mg_pool_idle(mg_pool *p);
/* Worker i's counters (relaxed reads) and whether it runs a task now. */
void mg_pool_worker_stats(mg_pool *p, int i, uint64_t *done,
                          uint64_t *failed, uint64_t *busy_ns, int *running);
/* Why the pool is broken, as a new str (None when it is not). */
PyObject *mg_pool_broken_str(mg_pool *p);

/* ---- registry.c: every live pool, by owner interpreter ---- */
void mg_registry_add(mg_pool *p);     /* takes a reference */
void mg_registry_remove(mg_pool *p);  /* drops it; idempotent */
/* New references to the pools owned by interpreter id, in creation
 * order, as a malloc'd array (*n entries); NULL when there are none. */
mg_pool **mg_registry_snapshot(int64_t owner_id, size_t *n);

#endif
