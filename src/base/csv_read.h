/* csv_read.h - one whole CSV read over a list of input segments (the
 * files, or one buffer), parallel over chunks: mg_csv_read (csv_read.c).
 *
 * Plain C (no Python.h). The job names the inputs and options; the result
 * is one typed column per kept field, in mg_blocks the caller takes.
 */
#ifndef MG_CSV_READ_H
#define MG_CSV_READ_H

#include "block.h"
#include "csv.h"

/* Rows of buf[start, end); start is a row start (after any header). */
typedef struct mg_csv_segment {
    const char *buf;
    size_t start, end;
    /* buf is a read-only file mapping: the pages of each parsed chunk are
     * dropped from the process (the page cache keeps them), so a big file
     * does not stay resident in the reader. */
    int droppable;
} mg_csv_segment;

/* One result column. INT/FLOAT/BOOL/DATE/TS: values holds nrows items of
 * 8/8/1/4/8 bytes. STR: values holds nrows + 1 int64 offsets into bytes.
 * validity: Arrow bitmap, or NULL when the column has no nulls. */
typedef struct mg_csv_colout {
    mg_csv_type type;
    size_t nulls;
    mg_block *values;
    mg_block *bytes;
    mg_block *validity;
} mg_csv_colout;

typedef struct mg_csv_job {
    /* inputs */
    const mg_csv_dialect *dialect;
    const mg_csv_segment *segs;
    size_t nsegs;
    size_t nfields;     /* fields every row has */
    const int *keep;    /* nfields: output column of each field, or -1 */
    size_t ncols;
    const int *forced;  /* ncols: mg_csv_type, or -1 to infer */
    mg_csv_values values;
    int bad_lines;      /* MG_CSV_BAD_ERROR / MG_CSV_BAD_SKIP */
    size_t n_rows;      /* SIZE_MAX: all */
    size_t skip_footer;
    size_t chunk_size;
    /* Bytes after a chunk boundary in which the automaton's states must
     * converge (mg_csv_sync); else the whole input is scanned. 0: a
     * default. */
    size_t sync_window;
    int nthreads;
    /* Every cell through the per-cell path, none through the run loops
     * (csv_col.c): the fuzz target's reference for them. 0 normally. */
    int plain_cells;
    /* outputs */
    size_t nrows;
    mg_csv_colout *cols; /* ncols; freed by mg_csv_job_free */
    size_t nskipped, first_skipped_seg, first_skipped_pos;
    mg_csv_error err;    /* err.pos is a position in segs[err_seg].buf */
    size_t err_seg;
} mg_csv_job;

/* Runs the job: MG_CSV_OK with the outputs filled, or an error code with
 * err / err_seg (and no outputs). */
mg_csv_code mg_csv_read(mg_csv_job *j);
/* Drops the output blocks still held by the job. */
void mg_csv_job_free(mg_csv_job *j);

#endif /* MG_CSV_READ_H */
