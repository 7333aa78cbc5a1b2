/* csv.h - the pure-C CSV reader: dialect, row-boundary automaton and
 * boundary sync, row parser into field spans, per-chunk columns that
 * classify and convert each cell as it is read, and their emission into
 * the final typed columns.
 *
 * Plain C (no Python.h): any thread, no locks, no global state. Every
 * position is a byte offset into the caller's input buffer, so errors come
 * back as (code, position, field) for the caller to turn into a line and a
 * message. Memory is raw malloc or mmap (base.h, csv_mem.c); a column buffer is
 * owned by its chunk.
 *
 * The grammar is the one of Python's csv module (strict=False): a quote
 * opens a quoted field only at the start of a field; inside one, a doubled
 * quote is a quote (doublequote) and a closing quote followed by other
 * text continues the field unquoted; CR, LF and CRLF end a row outside
 * quotes; a blank line is no row; a comment character at the start of a
 * row makes the line a comment. The automaton decides where rows start for
 * the parallel split and the row parser follows the same grammar, so a
 * split at computed row starts parses exactly like the whole input (the
 * fuzz target checks it).
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

/* The first row start at or after a position where every automaton
 * state that the dialect can reach has converged to one state, searching
 * at most window bytes from pos; SIZE_MAX when they did not converge (the
 * caller falls back to mg_csv_scan). Exact whatever state pos is really
 * in: the split of csv_read.c needs no pass over the whole input. */
size_t mg_csv_sync(const mg_csv_dfa *t, const mg_csv_dialect *d,
                   const char *buf, size_t pos, size_t end, size_t window);

/* ---- row parser (csv_tok.c) ---- */

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

/* A row parser over buf[0, end): it finds the special bytes (delimiter,
 * quote, CR, LF, escape) 64 at a time as a bit mask and cuts each row into
 * fields. A field's text is a span of the input where it needs no
 * unescaping, else a copy in the parser's scratch buffer: cell[i] /
 * clen[i] for the first maxf fields, valid until the next row. */
typedef struct mg_csv_rowp {
    const mg_csv_dialect *d;
    const char *buf;
    size_t end;
    size_t base;    /* the mask covers buf[base, base + 64) */
    uint64_t mask;  /* special bytes there not yet passed */
    char *scratch;
    size_t slen, scap;
    size_t maxf;
    const char **cell;  /* maxf: the row's cells (a slot of the tape) */
    size_t *clen;       /* maxf */
    size_t *off;        /* maxf: span start, scratch spans flagged */
    /* The tape: tape_rows slots of maxf cells, row after row, so that a
     * caller can keep several rows' cells and use them column by column
     * (mg_csv_rowp_slot picks the slot the next row is cut into). A cell
     * in the scratch buffer lasts only until the next row is parsed. */
    const char **tape_cell;
    size_t *tape_clen;
    size_t tape_rows;
    /* The structural fast path (csv_fast.c): on while the dialect allows
     * it and no block has made it give up (set fast = 0 to parse with the
     * byte-wise parser only). fseps: the separators outside quotes of the
     * block at fbase not yet passed; fcarry: ~0 when the block before ends
     * inside quotes; fprev: the byte before the block is a separator, a
     * line end or a quote (or the block starts a row). */
    int fast;
    int wide; /* blocks with AVX-512BW and PCLMUL (mg_csv_fast_wide) */
    int fhave, fprev, fpvalid;
    size_t fbase;
    uint64_t fseps, fquotes, fcarry; /* fquotes: the block's quote bits */
    uint64_t fpquotes; /* the block before's, when fpvalid */
} mg_csv_rowp;

/* off[] entries that point into the scratch buffer. */
#define MG_CSV_SCRATCH_FLAG ((size_t)1 << (sizeof(size_t) * 8 - 1))

/* 0, or -1 when out of memory. */
int mg_csv_rowp_init(mg_csv_rowp *p, const mg_csv_dialect *d,
                     const char *buf, size_t end, size_t maxf);
void mg_csv_rowp_free(mg_csv_rowp *p);
/* The next row's cells go to slot r (< tape_rows) of the tape. */
static inline void
mg_csv_rowp_slot(mg_csv_rowp *p, size_t r)
{
    size_t w = p->maxf ? p->maxf : 1;
    p->cell = p->tape_cell + r * w;
    p->clen = p->tape_clen + r * w;
}
/* The first row start with content at or after pos (a row start): blank
 * and comment lines skipped; end when none. */
size_t mg_csv_skip_blank(const mg_csv_dialect *d, const char *buf,
                         size_t pos, size_t end);
/* Parses the row at pos (a row start with content, < end). Returns the
 * number of fields (the first maxf in cell / clen) and the next row
 * start in *next, or -1 with err. */
long mg_csv_rowp_parse(mg_csv_rowp *p, size_t pos, size_t *next,
                       mg_csv_error *err);

/* Appends s[0, n) to the parser's scratch buffer; -1 when out of memory. */
int mg_csv_scratch_put(mg_csv_rowp *p, const char *s, size_t n);
/* Points cell[i] of the first nf fields that live in scratch there. */
void mg_csv_rowp_resolve(mg_csv_rowp *p, size_t nf);

/* The structural fast path (csv_fast.c). 1 if the dialect allows it. */
int mg_csv_fast_dialect(const mg_csv_dialect *d);
/* 1 when this CPU runs the fast path's wide block loader. */
int mg_csv_fast_wide(void);
/* mg_csv_rowp_parse on the fast path; MG_CSV_FAST_GIVEUP when this row
 * must be parsed by the byte-wise parser (fast is then 0 for good). */
#define MG_CSV_FAST_GIVEUP (-2)
long mg_csv_fast_parse(mg_csv_rowp *p, size_t pos, size_t *next,
                       mg_csv_error *err);

/* One row's cells in Arrow large-utf8 layout (headers, error cells): n
 * cells, cell i is data[offs[i], offs[i+1]). */
typedef struct mg_csv_piece {
    char *data;
    int64_t *offs;
    size_t n;
} mg_csv_piece;

/* Parses the next row at or after pos (a row start; blank and comment
 * lines are skipped) into out (freed with mg_csv_piece_free, also on
 * error): one cell per field. Returns the number of fields, 0 at the end
 * of the input, -1 on error (err filled); *next: the following row
 * start. Used for headers and skipped rows. */
long mg_csv_row(const mg_csv_dialect *d, const char *buf, size_t pos,
                size_t end, mg_csv_piece *out, size_t *next,
                mg_csv_error *err);
void mg_csv_piece_free(mg_csv_piece *p);

/* Scratch memory (csv_mem.c): large buffers are reserved with mmap and
 * huge pages, small ones malloc'd; *mapped says which, for grow / free. */
void *mg_csv_mem_alloc(size_t n, int *mapped);
void *mg_csv_mem_grow(void *p, size_t old, size_t n, int *mapped);
void mg_csv_mem_free(void *p, size_t n, int mapped);
/* Asks for huge pages over a large mapping made elsewhere (a block). */
void mg_csv_mem_advise(void *p, size_t n);
/* Drops the whole pages of p[0, n), a read-only file mapping, from this
 * process (they come back from the page cache when read again). */
void mg_csv_mem_drop(const void *p, size_t n);

enum { MG_CSV_BAD_ERROR = 0, MG_CSV_BAD_SKIP = 1 };

/* Rows of every MG_CSV_CHECKPOINT-th row start are kept, so that an error
 * found later by row index can be given a position again. */
#define MG_CSV_CHECKPOINT 4096

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

/* Bytes per value of a non-string output column: 1 (bool), 4 (date),
 * else 8. */
size_t mg_csv_type_size(mg_csv_type t);
/* The type of a column from the AND of its chunks' masks and whether any
 * cell was non-null: int, else float, bool, date, timestamp, else string. */
mg_csv_type mg_csv_unify(unsigned mask, int any_value);
/* 1 if s[0, n) is valid UTF-8. */
int mg_csv_utf8_ok(const char *s, size_t n);
/* The length of the ASCII prefix of s[0, n). */
size_t mg_csv_ascii_len(const char *s, size_t n);
/* 1 if the cell is one of the set. */
int mg_csv_in_set(const mg_csv_strset *set, const char *s, size_t n);

/* ---- one column of one chunk (csv_col.c) ---- */

/* A union of the values a column stores while it is parsed. DATE is kept
 * as int64 days, BOOL as 0/1; both narrowed when emitted. */
typedef union mg_csv_num {
    int64_t i;
    double f;
} mg_csv_num;

/* The cells of one column of one chunk, converted as they are read: the
 * types all its non-null cells still fit (mask; first_bad[t]: the first
 * row where type t stopped fitting), and the values of the type it
 * stores: store is the best type of mask (or STR when none is left), or
 * -1 when the values were given up (the type changed in a way the stored
 * values cannot follow: the chunk's column is parsed again once the final
 * type is known). Buffers are reserved for the worst case (max rows, the
 * chunk's bytes) and only touched pages count. */
typedef struct mg_csv_col {
    const mg_csv_values *v;
    int store;
    unsigned mask;
    size_t first_bad[MG_CSV_NTYPES];
    size_t n, nulls, maxrows, maxbytes;
    int negzero;      /* an int cell "-0" (as float it is -0.0) */
    int inferred;     /* every type wanted: STR when none is left */
    int null_empty;   /* "" is a null value */
    int null_other;   /* another null value is set */
    mg_csv_num *vals;
    char *data;
    int64_t *offs;    /* n + 1 */
    uint8_t *valid;   /* bitmap (valbuf), NULL until the first null */
    size_t len;       /* string bytes */
    /* The buffers' capacities (rows, bytes, rows, rows), kept for the
     * next use of the column (mg_csv_col_init). */
    size_t vcap, dcap, ocap, valcap;
    uint8_t *valbuf;
    int vmapped, dmapped, omapped, valmapped;
} mg_csv_col;

/* want: the types to try (bit t); 0: string. c is zeroed, or a column
 * used before: its buffers are kept where large enough (their pages are
 * touched already). */
void mg_csv_col_init(mg_csv_col *c, const mg_csv_values *v, unsigned want,
                     size_t maxrows, size_t maxbytes);
void mg_csv_col_free(mg_csv_col *c);
/* Adds the cells of nrows rows (the next rows of each column), row r's
 * field i at cell[r * nfields + i], to cols[dest[i]] (dest[i] < 0: not
 * kept), one column after another. [lo, hi): bytes that may be read,
 * the input the cells were cut from (a cell outside it, in the parser's
 * scratch buffer, is read only to its end). plain: every cell through
 * the per-cell path. -1 when out of memory. */
int mg_csv_col_add_rows(mg_csv_col *cols, const int *dest, size_t nfields,
                        const char *const *cell, const size_t *clen,
                        size_t nrows, const char *lo, const char *hi,
                        int plain);
/* 1 if the values stored can be emitted as type t. */
int mg_csv_col_can_emit(const mg_csv_col *c, mg_csv_type t);

/* Where a converted column goes: values (itemsize per row), validity
 * bitmap (Arrow bit order; NULL when the column has no nulls, else
 * zeroed by the caller), and for strings the offsets (nrows + 1) and
 * bytes. row0 / byte0: where this chunk's first row / byte lands. */
typedef struct mg_csv_out {
    void *values;
    uint8_t *validity;
    int64_t *offsets;
    char *bytes;
    size_t row0;
    int64_t byte0;
    /* The memfd behind values / offsets / bytes (mapped at those
     * addresses from offset 0), or -1. Where there is one, emission
     * writes through it (pwrite) instead of the mapping: the kernel then
     * fills the page cache without a page fault and a zeroing per page,
     * and the pages written are mapped afterwards in one call. */
    int values_fd, offsets_fd, bytes_fd;
} mg_csv_out;

/* Writes the chunk's column as type t (mg_csv_col_can_emit) at out.
 * Validity bytes at the chunk's edges are shared with neighbours: set
 * with atomic OR. The last use of the chunk's column: a string column's
 * offsets are moved to the output's in place (init makes them anew). */
void mg_csv_col_emit(mg_csv_col *c, mg_csv_type t,
                     const mg_csv_out *out);
/* The first row whose string is not valid UTF-8 (store STR), or
 * SIZE_MAX. */
size_t mg_csv_col_bad_utf8(const mg_csv_col *c);

/* ---- rows of a byte range into columns (csv_chunk.c) ---- */

/* Options of a range parse. keep[i] is the output column of field i, or
 * -1 to drop it; nfields is the number of fields every row must have;
 * want[k]: the types column k tries (mg_csv_col_init). */
typedef struct mg_csv_parseopts {
    const mg_csv_dialect *dialect;
    const mg_csv_values *values;
    size_t nfields;
    const int *keep;
    size_t ncols;
    const unsigned *want;
    int bad_lines;
    int plain_cells; /* mg_csv_job.plain_cells */
} mg_csv_parseopts;

/* What parsing one byte range produced. */
typedef struct mg_csv_chunk {
    size_t ncols;
    mg_csv_col *cols;      /* ncols */
    size_t nrows;
    size_t *checkpoints;   /* start of row k * MG_CSV_CHECKPOINT */
    size_t ncheck, checkcap;
    size_t nskipped;       /* bad rows skipped (MG_CSV_BAD_SKIP) */
    size_t first_skipped;  /* position of the first one */
    size_t last_row;       /* start of the last row kept */
    mg_csv_error err;
} mg_csv_chunk;

/* Parses the rows of buf[start, end) (start is a row start, end a row
 * start or the end of the input), at most max_rows of them, into out
 * (initialized here; with reuse, out is a chunk parsed before whose
 * buffers are used again). only >= 0: fill only that column (the others
 * are not kept); the column then tries only want_only. Returns MG_CSV_OK
 * or the code also stored in out->err. */
mg_csv_code mg_csv_parse(const mg_csv_parseopts *o, const char *buf,
                         size_t start, size_t end, size_t max_rows,
                         long only, unsigned want_only, mg_csv_chunk *out,
                         int reuse);
void mg_csv_chunk_free(mg_csv_chunk *c);
/* Position of kept row k (< c->nrows) of a chunk parsed from start. */
size_t mg_csv_row_pos(const mg_csv_parseopts *o, const char *buf,
                      const mg_csv_chunk *c, size_t start, size_t end,
                      size_t k);

/* Parsers of one cell; 1 and the value on success, else 0. */
int mg_csv_cell_fits(const mg_csv_values *v, int t, const char *s, size_t n);
int mg_csv_parse_int(const char *s, size_t n, int64_t *out);
int mg_csv_parse_float(const char *s, size_t n, double *out);
int mg_csv_parse_date(const char *s, size_t n, int32_t *out);
int mg_csv_parse_ts(const char *s, size_t n, int64_t *out);

/* ---- parallel fan-out (csv_par.c) ---- */

/* A team of threads for one read (csv_par.c): helpers started once and
 * kept until freed, each stage's tasks taken by them and the caller.
 * mg_csv_team_new starts up to nthreads - 1 helpers (fewer when a thread
 * cannot start; NULL when out of memory, and a NULL team runs every task
 * on the calling thread). mg_csv_team_run calls fn(ctx, i) for i in
 * [0, n) and returns when all calls returned. mg_csv_team_size: the
 * threads that take tasks, the caller included. */
typedef struct mg_csv_team mg_csv_team;
mg_csv_team *mg_csv_team_new(int nthreads);
void mg_csv_team_run(mg_csv_team *t, size_t n, void (*fn)(void *, size_t),
                     void *ctx);
int mg_csv_team_size(const mg_csv_team *t);
/* The calling thread's index in the team whose task it runs: 0 for the
 * thread that called mg_csv_team_run (and outside any team), 1 to
 * size - 1 for the helpers. */
int mg_csv_team_member(void);
void mg_csv_team_free(mg_csv_team *t);

#endif /* MG_CSV_H */
