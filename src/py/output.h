/* output.h - a pool's output channel: worker print() output and logging
 * records reach the owner interpreter's sys.stdout, sys.stderr and
 * logging, tagged with the worker, whole lines in order per worker. */
#ifndef MG_OUTPUT_H
#define MG_OUTPUT_H

#include "core.h"

typedef struct mg_out mg_out;

/* Creates the channel of a pool of nworkers named pool_name and starts
 * its delivery thread; owner GIL held. Workers' logging records below
 * log_level are dropped in the worker. NULL with an exception set. Every
 * worker must call mg_out_worker_done once, and the creator
 * mg_out_starter_done once; the last of them stops and joins the thread
 * (after delivering everything), then mg_out_free may be called. */
mg_out *mg_out_new(mg_state *owner_st, const char *pool_name, int nworkers,
                   int log_level);
void mg_out_free(mg_out *o);
/* The creator is done starting workers, and `unstarted` of them never
 * started (each counts as done). Owner GIL held. */
void mg_out_starter_done(mg_out *o, int unstarted);
/* Worker GIL held, in the worker interpreter just set up: makes its
 * sys.stdout and sys.stderr forward to the owner, and arranges for its
 * logging records to be forwarded. 0, or -1 with an exception set. */
int mg_out_install(mg_out *o, int index, unsigned long ident);
/* Worker GIL held, after a task: pushes the lines it left without a
 * newline. Returns the sequence number to deliver before the task's
 * outcome is, or 0 when the worker wrote nothing since the last call. */
uint64_t mg_out_task_end(mg_out *o, int index);
/* Owner GIL held (a worker's owner thread state): delivers the output up
 * to seq, waiting (owner GIL released) when another thread delivers it. */
void mg_out_deliver(mg_out *o, uint64_t seq);
/* No GIL held, the worker's interpreter ended: pushes what it left
 * without a newline; counts the worker out (see mg_out_new). */
void mg_out_worker_done(mg_out *o, int index);

#endif
