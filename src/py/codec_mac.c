/* codec_mac.c - the integrity check of pickles and code in a message.
 *
 * Owns: the process-wide random key and mg_codec_mac (SipHash-2-4, written
 * from the published algorithm). Plain C: no Python API, no PyObject; the
 * key is written once under pthread_once and only read afterwards, so any
 * interpreter and thread may call it.
 *
 * Everything in a message that makes the decoder import a module, fetch an
 * attribute, unpickle or unmarshal (TAG_PICKLE, TAG_FNCODE's code,
 * TAG_FNREF, TAG_MODULE) is signed, each kind under its own derived key.
 *
 * pickle and marshal trust their input: a corrupted pickle can call any
 * importable callable or ask for huge memory, and corrupted code can crash
 * the interpreter. So each pickle and each marshalled code object in a
 * message carries a SipHash-2-4 MAC under a random key made once per
 * process (plain C data shared by every interpreter, written once under
 * pthread_once): bytes that this process's encoder did not make never
 * reach pickle or marshal.
 * Locks: only pthread_once for the key. Never: let unsigned bytes reach
 * pickle or marshal. */
#include "codec_impl.h"

#include <pthread.h>
#include <string.h>
#include <sys/random.h> /* getrandom */
#include <time.h>

static uint64_t code_key[2];
static pthread_once_t code_key_once = PTHREAD_ONCE_INIT;

static void
code_key_init(void)
{
    ssize_t got = getrandom(code_key, sizeof(code_key), 0);
    if (got != (ssize_t)sizeof(code_key)) {
        /* No entropy source: still unpredictable enough to stop accidental
         * corruption, which is what the check is for. */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        code_key[0] = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ULL;
        code_key[1] = (uint64_t)ts.tv_sec ^ (uint64_t)(uintptr_t)&ts;
    }
}

#define ROTL64(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                            \
    do {                                                                    \
        v0 += v1; v1 = ROTL64(v1, 13); v1 ^= v0; v0 = ROTL64(v0, 32);       \
        v2 += v3; v3 = ROTL64(v3, 16); v3 ^= v2;                            \
        v0 += v3; v3 = ROTL64(v3, 21); v3 ^= v0;                            \
        v2 += v1; v1 = ROTL64(v1, 17); v1 ^= v2; v2 = ROTL64(v2, 32);       \
    } while (0)

uint64_t
mg_codec_mac(int domain, const unsigned char *in, size_t len)
{
    pthread_once(&code_key_once, code_key_init);
    /* One key per domain (the record's tag): a signed payload of one kind
     * never verifies as another. */
    uint64_t k0 = code_key[0] ^ ((uint64_t)(unsigned char)domain
                                 * 0x9e3779b97f4a7c15ULL);
    uint64_t k1 = code_key[1];
    uint64_t v0 = 0x736f6d6570736575ULL ^ k0, v1 = 0x646f72616e646f6dULL ^ k1;
    uint64_t v2 = 0x6c7967656e657261ULL ^ k0, v3 = 0x7465646279746573ULL ^ k1;
    uint64_t b = (uint64_t)len << 56, m;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        memcpy(&m, in + i, 8); /* little-endian machine */
        v3 ^= m;
        SIPROUND;
        SIPROUND;
        v0 ^= m;
    }
    for (size_t j = 0; i + j < len; j++) {
        b |= (uint64_t)in[i + j] << (8 * j);
    }
    v3 ^= b;
    SIPROUND;
    SIPROUND;
    v0 ^= b;
    v2 ^= 0xff;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}
