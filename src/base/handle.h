/* handle.h - the handle protocol: a process-global, atomically refcounted
 * object with a kind and a destroy function.
 *
 * Every object that several interpreters share (a memory block now;
 * queues, events and tables later) embeds an mg_handle as its FIRST
 * member, so an mg_handle * is also a pointer to the object. A buffer
 * (buf.h) carries references to handles of any kind; each interpreter
 * wraps a handle in its own Python object (src/py/handles.h). Plain C:
 * any thread, with or without an interpreter attached.
 */
#ifndef MG_HANDLE_H
#define MG_HANDLE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

typedef struct mg_handle mg_handle;

typedef struct mg_handle_kind {
    const char *name;               /* "block", "queue", ... */
    uint32_t id;                    /* stable small number, unique per kind */
    void (*destroy)(mg_handle *h);  /* called once, by the last decref, any thread */
} mg_handle_kind;

struct mg_handle {
    atomic_size_t refcnt;
    const mg_handle_kind *kind;
};

void mg_handle_init(mg_handle *h, const mg_handle_kind *kind);  /* refcnt = 1 */
void mg_handle_incref(mg_handle *h);
void mg_handle_decref(mg_handle *h);                             /* NULL-safe */
size_t mg_handle_refcnt(const mg_handle *h);

#endif /* MG_HANDLE_H */
