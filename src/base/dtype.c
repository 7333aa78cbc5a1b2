/* dtype.c - the dtype table of SharedArray and its lookups (see dtype.h).
 *
 * Owns: the one static, read-only table below. No Python API, no mutable
 * state, so it is safe from every interpreter and thread.
 * Locks: none. Never: add mutable state here.
 */
#include "dtype.h"

#include <string.h>

static const mg_dtype dtypes[] = {
    {'?', "b1", "bool", 1, MG_KIND_BOOL, "?", "b"},
    {'b', "i1", "int8", 1, MG_KIND_INT, "b", "c"},
    {'h', "i2", "int16", 2, MG_KIND_INT, "h", "s"},
    {'i', "i4", "int32", 4, MG_KIND_INT, "i", "i"},
    {'q', "i8", "int64", 8, MG_KIND_INT, "q", "l"},
    {'B', "u1", "uint8", 1, MG_KIND_UINT, "B", "C"},
    {'H', "u2", "uint16", 2, MG_KIND_UINT, "H", "S"},
    {'I', "u4", "uint32", 4, MG_KIND_UINT, "I", "I"},
    {'Q', "u8", "uint64", 8, MG_KIND_UINT, "Q", "L"},
    {'f', "f4", "float32", 4, MG_KIND_FLOAT, "f", "f"},
    {'d', "f8", "float64", 8, MG_KIND_FLOAT, "d", "g"},
};

#define NDTYPES (sizeof(dtypes) / sizeof(dtypes[0]))

const mg_dtype *
mg_dtype_from_code(char code)
{
    for (size_t i = 0; i < NDTYPES; i++) {
        if (dtypes[i].code == code) {
            return &dtypes[i];
        }
    }
    return NULL;
}

/* 'l' and 'L' are C long: 8 bytes on the LP64 platforms we support. */
static char
alias_code(char c)
{
    if (c == 'l') {
        return sizeof(long) == 8 ? 'q' : 'i';
    }
    if (c == 'L') {
        return sizeof(long) == 8 ? 'Q' : 'I';
    }
    return c;
}

const mg_dtype *
mg_dtype_from_name(const char *name)
{
    if (name == NULL || name[0] == '\0') {
        return NULL;
    }
    if (name[1] == '\0') {
        return mg_dtype_from_code(alias_code(name[0]));
    }
    for (size_t i = 0; i < NDTYPES; i++) {
        if (strcmp(dtypes[i].name, name) == 0
            || strcmp(dtypes[i].longname, name) == 0) {
            return &dtypes[i];
        }
    }
    return NULL;
}

const mg_dtype *
mg_dtype_from_format(const char *format, size_t itemsize)
{
    if (format == NULL) {
        format = "B";
    }
    /* Native or standard byte order prefixes are fine on little-endian
     * hosts for the fixed-size codes we accept; '!' and '>' are not. */
    if (format[0] == '@' || format[0] == '=' || format[0] == '<') {
        format++;
    }
    if (format[0] == '\0' || format[1] != '\0') {
        return NULL;
    }
    const mg_dtype *dt = mg_dtype_from_code(alias_code(format[0]));
    if (dt == NULL || dt->itemsize != itemsize) {
        return NULL;
    }
    return dt;
}

const char *
mg_dtype_valid_names(void)
{
    return "b1 i1 i2 i4 i8 u1 u2 u4 u8 f4 f8, the struct codes "
           "? b h i q B H I Q f d (and l L for 8-byte integers), or the "
           "names bool int8 int16 int32 int64 uint8 uint16 uint32 uint64 "
           "float32 float64";
}
