#!/usr/bin/env bash
# pythons.sh - print one interpreter path per line: every CPython >= 3.12
# (GIL build) on this machine, from pyenv, PATH and /opt/py3*/bin.
set -u
cands=()
if command -v pyenv >/dev/null 2>&1; then
    for v in $(pyenv versions --bare 2>/dev/null); do
        p="$(pyenv prefix "$v" 2>/dev/null)/bin/python3"
        [ -x "$p" ] && cands+=("$p")
    done
fi
for d in "$HOME"/.pyenv/versions/*/bin /opt/py3*/bin /usr/local/bin /usr/bin; do
    for p in "$d"/python3.1[2-9] "$d"/python3; do
        [ -x "$p" ] && cands+=("$p")
    done
done
for n in python3.12 python3.13 python3.14 python3.15 python3; do
    p=$(command -v "$n" 2>/dev/null) && cands+=("$p")
done
seen=""
for p in "${cands[@]}"; do
    info=$("$p" -c 'import sys, sysconfig, os
ok = sys.version_info >= (3, 12) and not sysconfig.get_config_var("Py_GIL_DISABLED") and sys.implementation.name == "cpython"
print(("ok " if ok else "no ") + os.path.realpath(sys.executable))' 2>/dev/null) || continue
    case "$info" in
        ok\ *) real=${info#ok }
               case " $seen " in *" $real "*) ;; *) seen="$seen $real"; echo "$p";; esac ;;
    esac
done
