/* dtype.h - the element types of SharedArray.
 *
 * Owns: the table of dtypes (struct-module code, canonical name, aliases,
 * item size, buffer-protocol format, Arrow format) and lookups into it.
 * Plain C: no Python API, so the codec and kernels may use it anywhere.
 */
#ifndef MG_DTYPE_H
#define MG_DTYPE_H

#include <stddef.h>

typedef enum mg_kind {
    MG_KIND_BOOL = 0,
    MG_KIND_INT = 1,   /* signed integer */
    MG_KIND_UINT = 2,  /* unsigned integer */
    MG_KIND_FLOAT = 3,
} mg_kind;

typedef struct mg_dtype {
    char code;          /* struct-module code: ? b h i q B H I Q f d */
    const char *name;   /* canonical short name: b1 i1 ... f8 */
    const char *longname; /* bool int8 ... float64 */
    size_t itemsize;
    mg_kind kind;
    const char *format; /* buffer-protocol format string */
    const char *arrow;  /* Arrow C data interface format string */
} mg_dtype;

/* The dtype for a canonical code, or NULL if code is not one of ours. */
const mg_dtype *mg_dtype_from_code(char code);
/* The dtype for a user spelling ("f8", "d", "float64", "l", ...), or NULL. */
const mg_dtype *mg_dtype_from_name(const char *name);
/* The dtype for a buffer-protocol format ("d", "<i", "=q", "l", NULL = "B")
 * of the given item size, or NULL when it is not a plain native number. */
const mg_dtype *mg_dtype_from_format(const char *format, size_t itemsize);
/* "b1, i1, ..., f8" plus aliases, for error messages. */
const char *mg_dtype_valid_names(void);

#endif
