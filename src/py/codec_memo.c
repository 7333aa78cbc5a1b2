/* codec_memo.c - the identity memo of one message (shared references).
 *
 * Owns: the encoder's table of containers already written (by identity,
 * each with its index and whether it is still being written) and the
 * decoder's table of values by index, with the hash weight of each (see
 * codec_impl.h). A container seen twice in one message is written once;
 * the second time it is a TAG_MEMO_REF to its index, and the decoder
 * returns the same object, so `r[0] is r[1]` survives and `a = [a, a]`
 * nested n deep costs n records, not 2**n.
 *
 * Both tables belong to one encode or decode call in one interpreter
 * (PyMem_* memory, strong references, released at the end of the call);
 * no locks. Indices are given in the order tags are written and read:
 * a container's index is taken before its items are, on both sides.
 * Never: trust an index read from a message before checking its range.
 */
#include "codec_impl.h"

#include <string.h>

/* ---- encoder: object address -> index ---- */

static size_t
memo_hash(PyObject *obj, size_t mask)
{
    uintptr_t x = (uintptr_t)obj >> 4;
    return (size_t)((x * 0x9e3779b97f4a7c15ULL) >> 17) & mask;
}

Py_ssize_t
mg_enc_memo_find(mg_enc_memo *m, PyObject *obj)
{
    if (m->n == 0) {
        return -1;
    }
    size_t mask = m->tcap - 1;
    for (size_t i = memo_hash(obj, mask);; i = (i + 1) & mask) {
        size_t slot = m->table[i];
        if (slot == 0) {
            return -1;
        }
        if (m->objs[slot - 1] == obj) {
            return (Py_ssize_t)(slot - 1);
        }
    }
}

static void
memo_insert(size_t *table, size_t tcap, PyObject *obj, size_t index)
{
    size_t mask = tcap - 1;
    size_t i = memo_hash(obj, mask);
    while (table[i] != 0) {
        i = (i + 1) & mask;
    }
    table[i] = index + 1;
}

/* Doubles the index arrays and the table (kept at most half full). */
static int
memo_grow(mg_enc_memo *m)
{
    size_t cap = m->cap * 2, tcap = m->tcap * 2;
    PyObject **objs = PyMem_Malloc(cap * sizeof(*objs));
    unsigned char *open = PyMem_Malloc(cap);
    size_t *table = PyMem_Calloc(tcap, sizeof(*table));
    if (objs == NULL || open == NULL || table == NULL || cap < m->cap) {
        PyMem_Free(objs);
        PyMem_Free(open);
        PyMem_Free(table);
        PyErr_NoMemory();
        return -1;
    }
    memcpy(objs, m->objs, m->n * sizeof(*objs));
    memcpy(open, m->open, m->n);
    for (size_t i = 0; i < m->n; i++) {
        memo_insert(table, tcap, objs[i], i);
    }
    if (m->objs != m->objs_inline) {
        PyMem_Free(m->objs);
        PyMem_Free(m->open);
        PyMem_Free(m->table);
    }
    m->objs = objs;
    m->open = open;
    m->table = table;
    m->cap = cap;
    m->tcap = tcap;
    return 0;
}

void
mg_enc_memo_init(mg_enc_memo *m)
{
    memset(m, 0, sizeof(*m));
    m->objs = m->objs_inline;
    m->open = m->open_inline;
    m->table = m->table_inline;
    m->cap = MG_MEMO_INLINE;
    m->tcap = 2 * MG_MEMO_INLINE;
}

Py_ssize_t
mg_enc_memo_add(mg_enc_memo *m, PyObject *obj)
{
    if (m->n == m->cap && memo_grow(m) < 0) {
        return -1;
    }
    size_t index = m->n++;
    m->objs[index] = Py_NewRef(obj); /* pinned: its address stays unique */
    m->open[index] = 1;
    memo_insert(m->table, m->tcap, obj, index);
    return (Py_ssize_t)index;
}

void
mg_enc_memo_clear(mg_enc_memo *m)
{
    for (size_t i = 0; i < m->n; i++) {
        Py_DECREF(m->objs[i]);
    }
    if (m->objs != m->objs_inline) {
        PyMem_Free(m->objs);
        PyMem_Free(m->open);
        PyMem_Free(m->table);
    }
    mg_enc_memo_init(m);
}

/* ---- decoder: index -> value ---- */

Py_ssize_t
mg_dec_memo_reserve(mg_dec *d)
{
    if (d->nmemo == d->memo_cap) {
        size_t cap = d->memo_cap ? d->memo_cap * 2 : 16;
        mg_dec_slot *p = PyMem_Realloc(d->memo, cap * sizeof(*p));
        if (p == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        d->memo = p;
        d->memo_cap = cap;
    }
    d->memo[d->nmemo].obj = NULL;
    d->memo[d->nmemo].weight = 1;
    return (Py_ssize_t)d->nmemo++;
}

void
mg_dec_memo_fill(mg_dec *d, Py_ssize_t index, PyObject *obj,
                 uint64_t weight)
{
    d->memo[index].obj = Py_NewRef(obj);
    d->memo[index].weight = weight;
}

PyObject *
mg_dec_memo_ref(mg_dec *d)
{
    uint64_t i;
    if (mg_dec_varint(d, &i, "a back-reference") < 0) {
        return NULL;
    }
    if (i >= d->nmemo) {
        return mg_dec_corrupt(d, "back-reference to value %llu, but only "
                                 "%zu came before it",
                              (unsigned long long)i, d->nmemo);
    }
    if (d->memo[i].obj == NULL) {
        return mg_dec_corrupt(d, "back-reference to value %llu, a tuple, "
                                 "frozenset or pickle not decoded yet",
                              (unsigned long long)i);
    }
    d->weight = d->memo[i].weight;
    return Py_NewRef(d->memo[i].obj);
}

int
mg_dec_charge_hash(mg_dec *d, uint64_t weight)
{
    if (weight <= 1) {
        return 0;
    }
    if (weight > d->hash_budget) {
        mg_dec_corrupt(d, "a dict key or set item is a tuple whose shared "
                          "parts would take more than %llu steps to hash",
                       (unsigned long long)d->hash_budget);
        return -1;
    }
    d->hash_budget -= weight;
    return 0;
}

void
mg_dec_memo_clear(mg_dec *d)
{
    for (size_t i = 0; i < d->nmemo; i++) {
        Py_XDECREF(d->memo[i].obj);
    }
    PyMem_Free(d->memo);
    d->memo = NULL;
    d->nmemo = d->memo_cap = 0;
}
