/* codec_impl.h - internals shared by codec.c (values) and codefn.c
 * (functions): the wire tags, the encoder and decoder contexts and the
 * primitive readers and writers. Not part of the transport's interface
 * (that is codec.h).
 *
 * Wire format, version 2 (see docs/codec.md):
 *   header  'M' 'G' 'C' <version byte>
 *   value   <tag byte> <payload>
 * Lengths and counts are unsigned LEB128 varints; fixed-size numbers are
 * little-endian machine words (the buffer never leaves the process).
 */
#ifndef MG_CODEC_IMPL_H
#define MG_CODEC_IMPL_H

#include "core.h"
#include "buf.h"

#define MG_CODEC_VERSION 2
#define MG_CODEC_HEADER_SIZE 4
/* Deepest nesting of containers (and functions) either side accepts. */
#define MG_CODEC_MAX_DEPTH 1000
/* Worker-side caches (functions by reference, code objects) are cleared
 * past this size. */
#define MG_CODEC_CACHE_MAX 4096
/* Code whose marshal is larger than this is not cached. */
#define MG_CODEC_CACHE_RECORD_MAX 65536

enum mg_tag {
    TAG_NONE = 'N',
    TAG_TRUE = 'T',
    TAG_FALSE = 'F',
    TAG_INT8 = 'j',      /* int8 */
    TAG_INT32 = 'k',     /* int32 */
    TAG_INT64 = 'I',     /* int64 */
    TAG_BIGINT = 'L',    /* varint n, n bytes two's complement LE */
    TAG_FLOAT = 'D',     /* 8 bytes, the exact bits */
    TAG_COMPLEX = 'C',   /* 16 bytes */
    TAG_STR1 = 'a',      /* varint nchars, nchars bytes (latin-1 kind) */
    TAG_STR2 = 'w',      /* varint nchars, 2*nchars bytes (UCS-2) */
    TAG_STR4 = 'W',      /* varint nchars, 4*nchars bytes (UCS-4) */
    TAG_BYTES = 'B',     /* varint n, n bytes */
    TAG_BYTEARRAY = 'Y',
    TAG_TUPLE = 't',     /* varint count, values */
    TAG_LIST = 'l',
    TAG_DICT = 'd',      /* varint count, key value pairs */
    TAG_SET = 'S',
    TAG_FROZENSET = 'Z',
    TAG_HANDLE = 'H',    /* varint kind, varint index, varint n, n bytes */
    TAG_PICKLE = 'P',    /* varint n, a pickle of n bytes, 8-byte MAC */
    TAG_MODULE = 'M',    /* a module, imported by name: str value */
    TAG_FNREF = 'R',     /* u32 n, body: function imported by name */
    TAG_FNCODE = 'X',    /* u32 n, body: function sent as code */
    TAG_FNBACK = 'r',    /* varint index of a function of this record */
    TAG_PARTIAL = 'p',   /* func, args tuple, keywords dict */
    TAG_METHOD = 'm',    /* func, self */
    TAG_MEMO_REF = 'G',  /* varint index: a value already in this message */
};

/* Values that get an index in the message's identity memo (in the order
 * their tags are written): list, dict, set, frozenset, tuple, bytearray
 * and pickled objects. A second mention of the same object is a
 * TAG_MEMO_REF. Lists and dicts take their index before their items, so
 * they may contain themselves; a tuple, frozenset or pickle is only
 * available once complete. */
#define MG_MEMO_INLINE 8

/* Encoder memo (codec_memo.c): address -> index, strong references. */
typedef struct mg_enc_memo {
    PyObject **objs;            /* by index, owned references */
    unsigned char *open;        /* 1 while that container is being written */
    size_t n, cap;
    size_t *table;              /* open addressing: index + 1, 0 = empty */
    size_t tcap;                /* power of two, 2 * cap */
    PyObject *objs_inline[MG_MEMO_INLINE];
    unsigned char open_inline[MG_MEMO_INLINE];
    size_t table_inline[2 * MG_MEMO_INLINE];
} mg_enc_memo;

/* Decoder memo slot: the value (NULL until complete) and its hash weight,
 * the number of nodes hashing it visits (1 but for tuples). */
typedef struct mg_dec_slot {
    PyObject *obj;
    uint64_t weight;
} mg_dec_slot;

/* Weights saturate here; a decode may spend at most
 * MG_HASH_BUDGET_BASE + MG_HASH_BUDGET_PER_BYTE * len hashing tuple keys
 * (a few shared tuples can otherwise describe a key that takes 2**60
 * steps to hash). */
#define MG_WEIGHT_MAX ((uint64_t)1 << 62)
#define MG_HASH_BUDGET_BASE ((uint64_t)1 << 24)
#define MG_HASH_BUDGET_PER_BYTE 64

/* Encoder state for one mg_codec_encode call. */
typedef struct mg_enc {
    mg_state *st;
    mg_buf *out;                /* borrowed */
    int depth;                  /* current nesting */
    mg_enc_memo memo;           /* containers written so far */
    /* Functions sent as code within the outermost one (cycles and shared
     * references become TAG_FNBACK). NULL outside a function record. */
    PyObject *fn_memo;          /* owned dict: id(fn) -> index */
    PyObject *ns_memo;          /* owned dict: id(globals) -> [index, set] */
    int fn_nesting;
    int err_wrapped;            /* a function already described the error */
    char bad_type[128];         /* innermost value that could not cross */
} mg_enc;

/* Decoder state for one mg_codec_decode call. */
typedef struct mg_dec {
    mg_state *st;
    const mg_buf *in;           /* borrowed; in->data is untrusted */
    const unsigned char *p;     /* next byte */
    const unsigned char *end;
    int depth;
    PyObject *fn_table;         /* owned list: functions of the record */
    PyObject *ns_table;         /* owned list: their globals dicts */
    int fn_nesting;
    mg_dec_slot *memo;          /* owned: values by memo index */
    size_t nmemo, memo_cap;
    uint64_t weight;            /* hash weight of the last value decoded */
    uint64_t hash_budget;       /* hashing steps left for tuple keys */
    PyObject *keys[64];         /* owned: recently decoded short strs */
} mg_dec;

/* ---- identity memo (codec_memo.c) ---- */
void mg_enc_memo_init(mg_enc_memo *m);
/* The index of obj, or -1 if it is not in the memo. */
Py_ssize_t mg_enc_memo_find(mg_enc_memo *m, PyObject *obj);
/* Adds obj (open) and returns its index; -1 with MemoryError. */
Py_ssize_t mg_enc_memo_add(mg_enc_memo *m, PyObject *obj);
void mg_enc_memo_clear(mg_enc_memo *m);
/* The next memo index, its value to be filled in later; -1 with
 * MemoryError. */
Py_ssize_t mg_dec_memo_reserve(mg_dec *d);
void mg_dec_memo_fill(mg_dec *d, Py_ssize_t index, PyObject *obj,
                      uint64_t weight);
/* Decodes a TAG_MEMO_REF payload (validated) into a new reference. */
PyObject *mg_dec_memo_ref(mg_dec *d);
/* Charges the hash of a key of this weight to the budget; -1 with
 * ValueError when it is spent. */
int mg_dec_charge_hash(mg_dec *d, uint64_t weight);
void mg_dec_memo_clear(mg_dec *d);

/* ---- writers (codec.c); each returns 0, or -1 with MemoryError ---- */
int mg_enc_bytes(mg_enc *e, const void *p, size_t n);
int mg_enc_byte(mg_enc *e, unsigned char b);
int mg_enc_varint(mg_enc *e, uint64_t v);
/* Any value, with the fast paths, fallbacks and limits. */
int mg_enc_value(mg_enc *e, PyObject *obj);
/* A str as TAG_STR*; obj must be an exact str. */
int mg_enc_str(mg_enc *e, PyObject *obj);
/* Records that a value of type tp could not cross (for messages). */
void mg_enc_note_bad(mg_enc *e, PyTypeObject *tp);
/* Raises NotShareableError for obj, chaining the current exception. */
int mg_enc_not_shareable(mg_enc *e, PyObject *obj, const char *why);

/* SipHash-2-4 of p[0:n] under this process's random key, derived per
 * domain (the tag of the record the payload belongs to): the MAC that
 * guards pickles, marshalled code, function references and modules. */
uint64_t mg_codec_mac(int domain, const unsigned char *p, size_t n);
/* A signed payload: varint length, the n bytes at p, then their 8-byte
 * MAC under domain. */
int mg_enc_signed(mg_enc *e, int domain, const void *p, size_t n);
/* Reads a signed payload and checks its MAC under domain; *p and *n give
 * the bytes (inside the message). what names it in errors. -1 with
 * ValueError on a truncated payload or a bad MAC. */
int mg_dec_signed(mg_dec *d, int domain, const char *what,
                  const unsigned char **p, Py_ssize_t *n);

/* ---- readers (codec.c); NULL / -1 with ValueError on bad input ---- */
int mg_dec_need(mg_dec *d, size_t n, const char *what);
int mg_dec_varint(mg_dec *d, uint64_t *v, const char *what);
/* A count or length that must fit in the bytes left (each element takes
 * at least min_size bytes). */
int mg_dec_count(mg_dec *d, Py_ssize_t *n, size_t min_size,
                 const char *what);
PyObject *mg_dec_value(mg_dec *d);
PyObject *mg_dec_corrupt(mg_dec *d, const char *fmt, ...);

/* ---- functions (codefn.c) ---- */
/* 1 if obj was encoded as a function-like value, 0 if it is not one this
 * file handles (the caller falls back to pickle), -1 with an exception. */
int mg_codefn_encode(mg_enc *e, PyObject *obj);
/* Decodes the function-like value after tag (already consumed). */
PyObject *mg_codefn_decode(mg_dec *d, int tag);
int mg_codefn_state_init(mg_state *st);

#endif /* MG_CODEC_IMPL_H */
