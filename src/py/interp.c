/* interp.c - create, set up and end one worker interpreter.
 *
 * Owns: the interpreter configuration (own GIL, own allocator, no fork or
 * exec, no daemon threads), setting up a new interpreter (sys.path, the
 * core), ending it, and the per-version workarounds around both.
 * Locks (process-global, never nested with any other lock):
 *   create_mu (3.12 only): held from Py_NewInterpreterFromConfig until the
 *     new interpreter has imported the core (mg_interp_created). It covers
 *     no user code: initializers run after it is released.
 *   end_mu (3.14 only): held around Py_EndInterpreter alone, after the
 *     interpreter's user exit code (threads, atexit hooks) has already run
 *     outside it, so no user code (a nested pool's shutdown, say) ever
 *     runs while it is held.
 * Never: hold a lock across user code; call PyGILState_*.
 */
#include "interp.h"
#include "excinfo.h"

#include <stdio.h>
#include <string.h>

#if !MG_PY313
/* CPython 3.12 gives immutable types their version tags from one global
 * counter with a plain `++` (assign_version_tag in Objects/typeobject.c),
 * so interpreters that start at the same time (each creating the heap
 * types of the modules it imports) can hand two types the same tag, and
 * method lookups then return another type's method (seen here as "failed
 * to get the Python codec of the filesystem encoding" while creating an
 * interpreter). On 3.12, workers create their interpreter and import the
 * core one at a time. 3.13 made the counter atomic. */
static pthread_mutex_t create_mu = PTHREAD_MUTEX_INITIALIZER;
#define CREATE_LOCK() pthread_mutex_lock(&create_mu)
#define CREATE_UNLOCK() pthread_mutex_unlock(&create_mu)
#else
#define CREATE_LOCK() ((void)0)
#define CREATE_UNLOCK() ((void)0)
#endif

#if MG_PY314
/* CPython 3.14: interpreters that finalize at the same time race in module
 * teardown (gh-136423, _datetime). Py_EndInterpreter alone is serialised;
 * the user code it would run comes first, outside the lock. */
static pthread_mutex_t end_mu = PTHREAD_MUTEX_INITIALIZER;
#define END_LOCK() pthread_mutex_lock(&end_mu)
#define END_UNLOCK() pthread_mutex_unlock(&end_mu)
#else
#define END_LOCK() ((void)0)
#define END_UNLOCK() ((void)0)
#endif

PyThreadState *
mg_interp_create(int (*skip)(void *), void *arg, char **err)
{
    PyInterpreterConfig cfg = {
        .use_main_obmalloc = 0,
        .allow_fork = 0,
        .allow_exec = 0,
        .allow_threads = 1,
        .allow_daemon_threads = 0,
        .check_multi_interp_extensions = 1,
        .gil = PyInterpreterConfig_OWN_GIL,
    };
    PyThreadState *ts = NULL;
    *err = NULL;
    CREATE_LOCK(); /* released by mg_interp_created, or below */
    if (skip != NULL && skip(arg)) {
        CREATE_UNLOCK();
        return NULL;
    }
    PyStatus status = Py_NewInterpreterFromConfig(&ts, &cfg);
    if (PyStatus_Exception(status) || ts == NULL) {
        CREATE_UNLOCK();
        char msg[512];
        snprintf(msg, sizeof(msg), "could not create its interpreter: %s",
                 status.err_msg ? status.err_msg : "unknown error");
        *err = mg_utf8_dup(msg, sizeof(msg));
        return NULL;
    }
    return ts;
}

void
mg_interp_created(void)
{
    CREATE_UNLOCK();
}

mg_state *
mg_interp_setup(char *const *sys_path, Py_ssize_t n)
{
    PyObject *path = PyList_New(n);
    if (path == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *s = PyUnicode_DecodeFSDefault(sys_path[i]);
        if (s == NULL) {
            Py_DECREF(path);
            return NULL;
        }
        PyList_SET_ITEM(path, i, s);
    }
    int rc = PySys_SetObject("path", path);
    Py_DECREF(path);
    if (rc < 0) {
        return NULL;
    }
    return mg_state_current();
}

/* Calls module.name() if module is already imported (or always, with
 * import_it); reports failures as unraisable. */
static void
call_exit_function(const char *module, const char *name, int import_it)
{
    PyObject *mod;
    if (import_it) {
        mod = PyImport_ImportModule(module);
    }
    else {
        PyObject *modname = PyUnicode_FromString(module);
        mod = modname ? PyImport_GetModule(modname) : NULL;
        Py_XDECREF(modname);
    }
    if (mod == NULL) {
        PyErr_Clear();
        return;
    }
    PyObject *r = PyObject_CallMethod(mod, name, NULL);
    if (r == NULL) {
        PyErr_WriteUnraisable(mod);
    }
    Py_XDECREF(r);
    Py_DECREF(mod);
}

/* 3.13+: the worker thread is a _DummyThread of its interpreter's
 * threading (once anything asked for current_thread(): logging does);
 * the object that removes it lives in a threading.local freed only after
 * the modules are torn down, where it fails and prints "Exception ignored
 * in _DeleteDummyThreadOnDel". Free it now, while threading works. */
static void
drop_dummy_thread(void)
{
    PyObject *name = PyUnicode_FromString("threading");
    PyObject *mod = name ? PyImport_GetModule(name) : NULL;
    Py_XDECREF(name);
    PyObject *info = mod ? PyObject_GetAttrString(mod, "_thread_local_info")
                         : NULL;
    if (info != NULL
        && PyObject_DelAttrString(info, "_track_dummy_thread_ref") < 0) {
        PyErr_Clear(); /* not a dummy thread, or another version */
    }
    PyErr_Clear();
    Py_XDECREF(info);
    Py_XDECREF(mod);
}

void
mg_interp_end(PyThreadState *ts)
{
    (void)ts;
#if MG_PY313
    /* Joins the interpreter's non-daemon threads. Py_EndInterpreter does
     * it again, finding nothing left. (3.12's threading._shutdown cannot
     * run twice in a subinterpreter, and 3.12 takes no lock below.) */
    call_exit_function("threading", "_shutdown", 0);
#endif
    /* Runs and clears the interpreter's atexit hooks: multigil's own hook
     * ends the pools this interpreter created (nested pools). */
    call_exit_function("atexit", "_run_exitfuncs", 1);
    drop_dummy_thread();
    END_LOCK();
    Py_EndInterpreter(ts);
    END_UNLOCK();
}
