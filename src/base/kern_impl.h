/* kern_impl.h - private to the kernel loop files (kern_*.c): the typed-loop
 * macros and the gather/copy helpers they share. Not for other callers. */
#ifndef MG_KERN_IMPL_H
#define MG_KERN_IMPL_H

#include "kern.h"

/* Item i of view v as a T lvalue. */
#define AT(T, v, i) (*(T *)((v)->base + (i) * (v)->stride))

/* Each C type once, as (C type, is-float, is-signed). Bool is stored as
 * uint8 holding 0 or 1 and runs the uint8 loops. */
#define MG_TYPES(X)                                                          \
    X(int8_t, 0, 1) X(int16_t, 0, 1) X(int32_t, 0, 1) X(int64_t, 0, 1)       \
    X(uint8_t, 0, 0) X(uint16_t, 0, 0) X(uint32_t, 0, 0)                     \
    X(uint64_t, 0, 0) X(float, 1, 1) X(double, 1, 1)

/* return FN##_<ctype>(args) for the dtype code: every code of dtype.c is
 * listed, and any other is MG_EDTYPE, never another dtype's loop. */
#define MG_DISPATCH(code, FN, ...)                                           \
    switch (code) {                                                          \
    case 'b': return FN##_int8_t(__VA_ARGS__);                               \
    case 'h': return FN##_int16_t(__VA_ARGS__);                              \
    case 'i': return FN##_int32_t(__VA_ARGS__);                              \
    case 'q': return FN##_int64_t(__VA_ARGS__);                              \
    case '?':                                                                \
    case 'B': return FN##_uint8_t(__VA_ARGS__);                              \
    case 'H': return FN##_uint16_t(__VA_ARGS__);                             \
    case 'I': return FN##_uint32_t(__VA_ARGS__);                             \
    case 'Q': return FN##_uint64_t(__VA_ARGS__);                             \
    case 'f': return FN##_float(__VA_ARGS__);                                \
    case 'd': return FN##_double(__VA_ARGS__);                               \
    default: return MG_EDTYPE;                                               \
    }

/* 1 if the items of a and b share any byte. */
int mg_kern_views_overlap(const mg_view *a, const mg_view *b);
/* dst[i] = src[i] bytewise (same itemsize and n, not overlapping). */
void mg_kern_copy_items(const mg_view *dst, const mg_view *src);
/* A contiguous malloc'd copy of v described by *out (free with free()), or
 * NULL when out of memory. */
char *mg_kern_gather(const mg_view *v, mg_view *out);

#endif /* MG_KERN_IMPL_H */
