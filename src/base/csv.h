/* csv.h - the pure-C CSV reader: dialect, row-boundary automaton,
 * tokenizer into per-column large-utf8 pieces, type classification and
 * conversion into typed columns.
 *
 * Plain C (no Python.h): any thread, no locks, no global state. Every
 * position is a byte offset into the caller's input buffer, so errors come
 * back as (code, position, field) for the caller to turn into a line and a
 * message. Memory is raw malloc (base.h); a piece is owned by its chunk.
 *
 * The grammar is the one of Python's csv module (strict=False): a quote
 * opens a quoted field only at the start of a field; inside one, a doubled
 * quote is a quote (doublequote) and a closing quote followed by other
 * text continues the field unquoted; CR, LF and CRLF end a row outside
 * quotes; a blank line is no row; a comment character at the start of a
 * row makes the line a comment. The same automaton (mg_csv_step) decides
 * where rows start for the parallel split and drives the tokenizer, so a
 * split at computed row starts parses exactly like the whole input.
 */
#ifndef MG_CSV_H
#define MG_CSV_H

#include "base.h"

#include <stddef.h>
#include <stdint.h>

/* ---- dialect and row-boundary automaton (csv_tok.c) ---- */

typedef struct mg_csv_dialect {
    unsigned char delim;
    unsigned char quote;   /* used when has_quote */
    unsigned char escape;  /* used when has_escape */
    unsigned char comment; /* used when has_comment */
    unsigned char has_quote, has_escape, has_comment, doublequote;
} mg_csv_dialect;

/* States of the automaton: where the byte before a position left us. */
enum {
    MG_CSV_S_ROW = 0, /* at the start of a row (after a terminator) */
    MG_CSV_S_FIELD,   /* after a delimiter: at the start of a field */
    MG_CSV_S_UNQ,     /* inside an unquoted field */
    MG_CSV_S_Q,       /* inside a quoted field */
    MG_CSV_S_QQ,      /* a quote inside a quoted field: closing or doubled */
    MG_CSV_S_ESC,     /* after an escape character, unquoted */
    MG_CSV_S_QESC,    /* after an escape character, quoted */
    MG_CSV_S_COMMENT, /* inside a comment line */
    MG_CSV_S_CR,      /* after a CR that ended a row (an LF may follow) */
    MG_CSV_NSTATES
};

/* The transition table of a dialect: next = t[state][byte]. */
typedef struct mg_csv_dfa {
    uint8_t next[MG_CSV_NSTATES][256];
    /* 1 for bytes that may change a state other than by the move that
     * every ordinary byte makes (delimiter, quote, CR, LF, escape,
     * comment); a run of ordinary bytes acts like its first byte. */
    uint8_t special[256];
    unsigned char ordinary; /* one ordinary byte */
} mg_csv_dfa;

void mg_csv_dfa_init(mg_csv_dfa *t, const mg_csv_dialect *d);

/* Runs the automaton over buf[0, len) from every state at once: out[s] is
 * the state after the bytes when entered in state s. */
void mg_csv_scan(const mg_csv_dfa *t, const char *buf, size_t len,
                 uint8_t out[MG_CSV_NSTATES]);

/* The first row start at or after pos (< end), entered in state s: the
 * first position whose state is ROW, or CR not followed by LF; end when
 * none. */
size_t mg_csv_next_row(const mg_csv_dfa *t, const char *buf, size_t pos,
                       size_t end, int s);

/* The 1-based physical line of byte pos: 1 + the LFs and lone CRs before
 * it (the line numbers of a text editor and of csv.reader.line_num). */
size_t mg_csv_line_of(const char *buf, size_t pos);

/* ---- tokenizer (csv_tok.c) ---- */

/* One column of one chunk in Arrow large-utf8 layout: n cells, cell i is
 * data[offs[i], offs[i+1]). offs has n + 1 entries, offs[0] == 0. */
typedef struct mg_csv_piece {
    char *data;
    size_t len, cap;
    int64_t *offs;
    size_t n, ncap;
    int data_mapped, offs_mapped; /* mg_csv_mem_alloc's flags */
} mg_csv_piece;

/* Scratch memory (csv_mem.c): large buffers are reserved with mmap and
 * huge pages, small ones malloc'd; *mapped says which, for grow / free. */
void *mg_csv_mem_alloc(size_t n, int *mapped);
void *mg_csv_mem_grow(void *p, size_t old, size_t n, int *mapped);
void mg_csv_mem_free(void *p, size_t n, int mapped);
/* Asks for huge pages over a large mapping made elsewhere (a block). */
void mg_csv_mem_advise(void *p, size_t n);

/* Error codes of the reader, with the position they refer to. */
typedef enum mg_csv_code {
    MG_CSV_OK = 0,
    MG_CSV_ENOMEM,
    MG_CSV_ERAGGED,     /* a row with another number of fields */
    MG_CSV_EQUOTE,      /* end of input inside a quoted field */
    MG_CSV_EESCAPE,     /* end of input right after an escape character */
    MG_CSV_EUTF8,       /* invalid UTF-8 in a cell */
    MG_CSV_ETYPE,       /* a cell that does not fit its forced type */
} mg_csv_code;

/* Where one error happened: byte position of the row start, 0-based field
 * index, number of fields the row had (ragged rows). */
typedef struct mg_csv_error {
    mg_csv_code code;
    size_t pos;
    size_t field;
    size_t nfields;
} mg_csv_error;

enum { MG_CSV_BAD_ERROR = 0, MG_CSV_BAD_SKIP = 1 };

/* Rows of every MG_CSV_CHECKPOINT-th row start are kept, so that an error
 * found later by row index can be given a position again. */
#define MG_CSV_CHECKPOINT 4096

/* What tokenizing one byte range produced. */
typedef struct mg_csv_chunk {
    size_t ncols;          /* output columns (pieces) */
    mg_csv_piece *pieces;  /* ncols */
    size_t nrows;
    size_t *checkpoints;   /* start of row k * MG_CSV_CHECKPOINT */
    size_t ncheck, checkcap;
    size_t nskipped;       /* bad rows skipped (MG_CSV_BAD_SKIP) */
    size_t first_skipped;  /* position of the first one */
    size_t stop;           /* where tokenizing stopped */
    size_t last_row;       /* start of the last row kept */
    mg_csv_error err;
} mg_csv_chunk;

/* Tokenizer options. keep[i] is the output column of field i, or -1 to
 * drop it; nfields is the number of fields every row must have. */
typedef struct mg_csv_tokopts {
    const mg_csv_dialect *dialect;
    const mg_csv_dfa *dfa;
    size_t nfields;
    const int *keep;
    size_t ncols;
    int bad_lines;
    size_t max_rows; /* stop after this many rows; SIZE_MAX: no limit */
} mg_csv_tokopts;

/* Tokenizes the rows of buf[start, end) (start is a row start, end a row
 * start or the end of the input) into out, which it initializes. Returns
 * MG_CSV_OK or the code also stored in out->err. */
mg_csv_code mg_csv_tokenize(const mg_csv_tokopts *o, const char *buf,
                            size_t start, size_t end, mg_csv_chunk *out);
/* Parses the next row at or after pos (a row start; blank and comment
 * lines are skipped) into out (initialized here; the caller frees it with
 * mg_csv_piece_free): one cell per field. Returns the number of fields,
 * 0 at the end of the input, -1 on error (err filled); *next: the
 * following row start. Used for headers and skipped rows. */
long mg_csv_row(const mg_csv_dialect *d, const mg_csv_dfa *t,
                const char *buf, size_t pos, size_t end, mg_csv_piece *out,
                size_t *next, mg_csv_error *err);
void mg_csv_piece_free(mg_csv_piece *p);
void mg_csv_chunk_free(mg_csv_chunk *c);
/* Drops the last k rows of the chunk (skip_footer, n_rows). */
void mg_csv_chunk_truncate(mg_csv_chunk *c, size_t nrows);
/* Position of row k (< c->nrows) of a chunk tokenized from start. */
size_t mg_csv_row_pos(const mg_csv_tokopts *o, const char *buf,
                      const mg_csv_chunk *c, size_t start, size_t end,
                      size_t k);

/* ---- types: classification and conversion (csv_conv.c) ---- */

typedef enum mg_csv_type {
    MG_CSV_INT = 0,   /* int64 */
    MG_CSV_FLOAT = 1, /* float64 */
    MG_CSV_BOOL = 2,  /* one byte 0/1 */
    MG_CSV_DATE = 3,  /* int32 days since 1970-01-01 */
    MG_CSV_TS = 4,    /* int64 microseconds since 1970-01-01T00:00:00 */
    MG_CSV_STR = 5,   /* large-utf8 */
    MG_CSV_NTYPES
} mg_csv_type;

/* A small set of strings (null, true, false values). */
#define MG_CSV_SET_MAX 32
typedef struct mg_csv_strset {
    size_t n;
    const char *s[MG_CSV_SET_MAX];
    size_t len[MG_CSV_SET_MAX];
} mg_csv_strset;

typedef struct mg_csv_values {
    mg_csv_strset nulls, trues, falses;
} mg_csv_values;

/* What one piece's cells can be: bit t set while every non-null cell
 * parses as type t; first_bad[t]: the first row where it stopped. */
typedef struct mg_csv_class {
    unsigned mask;
    size_t nulls;
    size_t first_bad[MG_CSV_NTYPES];
    size_t bad_utf8_row; /* SIZE_MAX when the text is valid UTF-8 */
    /* The cells' values as parsed while classifying (n items; raw
     * malloc, mg_csv_class_free), of spec_type INT or FLOAT, or NULL. */
    union mg_csv_num {
        int64_t i;
        double f;
    } *spec;
    int spec_type;
    int spec_mapped;
    size_t spec_bytes;
} mg_csv_class;

void mg_csv_classify(const mg_csv_piece *p, const mg_csv_values *v,
                     unsigned want, mg_csv_class *out);
void mg_csv_class_free(mg_csv_class *c);
/* The type of a column from the AND of its pieces' masks and whether any
 * cell was non-null: int, else float, bool, date, timestamp, else string. */
mg_csv_type mg_csv_unify(unsigned mask, int any_value);
/* 1 if s[0, n) is valid UTF-8. */
int mg_csv_utf8_ok(const char *s, size_t n);
/* 1 if the cell is one of the set. */
int mg_csv_in_set(const mg_csv_strset *set, const char *s, size_t n);

/* Where a converted column goes: values (itemsize per row), validity
 * bitmap (Arrow bit order; NULL when the column has no nulls, else
 * zeroed by the caller), and for strings the offsets (nrows + 1) and
 * bytes. row0 / byte0: where this piece's first row / byte lands. */
typedef struct mg_csv_out {
    void *values;
    uint8_t *validity;
    int64_t *offsets;
    char *bytes;
    size_t row0;
    int64_t byte0;
} mg_csv_out;

/* Converts every cell of p into type t at out (cells were classified to
 * fit; a null cell gets validity 0 and value 0 / NaN). Validity bytes at
 * the piece's edges are shared with neighbours: set with atomic OR. */
void mg_csv_convert(const mg_csv_piece *p, const mg_csv_values *v,
                    const mg_csv_class *c, mg_csv_type t,
                    const mg_csv_out *out);

/* Parsers of one cell; 1 and the value on success, else 0. */
int mg_csv_parse_int(const char *s, size_t n, int64_t *out);
int mg_csv_parse_float(const char *s, size_t n, double *out);
int mg_csv_parse_date(const char *s, size_t n, int32_t *out);
int mg_csv_parse_ts(const char *s, size_t n, int64_t *out);

/* ---- parallel fan-out (csv_par.c) ---- */

/* Calls fn(ctx, i) for i in [0, n) on up to nthreads threads (the calling
 * thread is one of them). Returns 0, or MG_ESYS when no thread could be
 * started (then every call ran on the calling thread). */
int mg_csv_parallel(size_t n, int nthreads, void (*fn)(void *, size_t),
                    void *ctx);

#endif /* MG_CSV_H */
