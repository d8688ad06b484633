# Shared by the envs/*.sh scripts: a venv outside the checkout, rebuilt only when its pins change.
#   new_venv VENV PINS  -> exit status 0 when VENV was (re)made empty and needs its packages installed,
#                          1 when VENV already holds PINS; a path that is not a venv is refused.
#   mark_venv VENV PINS -> records that VENV now holds PINS.
#   lock_file NAME      -> the constraints file that pins every package of venv NAME to the versions the
#                          tests last passed with (envs/constraints-NAME.txt; envs/update-constraints.sh
#                          points $CDSYNTH_CONSTRAINTS_DIR at empty ones to resolve afresh).
#   lock_pins NAME PINS -> PINS plus the lock file's digest, so that a new lock rebuilds the venv.
new_venv() {
    if [[ -e "$1" && ! -f "$1/pyvenv.cfg" ]]; then
        echo "$0: $1 exists and is not a venv; give another path" >&2
        exit 1
    fi
    [[ "$(cat "$1/.cdsynth-pins" 2>/dev/null)" == "$2" ]] && return 1
    rm -rf "$1"
    python3 -m venv "$1"
}

mark_venv() {
    echo "$2" >"$1/.cdsynth-pins"
}

lock_file() {
    echo "${CDSYNTH_CONSTRAINTS_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)}/constraints-$1.txt"
}

lock_pins() {
    echo "$2 lock $(sha256sum <"$(lock_file "$1")" | cut -c1-16)"
}
