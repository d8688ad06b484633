# Shared by the envs/*.sh scripts: a venv outside the checkout, rebuilt only when its pins change.
#   new_venv VENV PINS  -> exit status 0 when VENV was (re)made empty and needs its packages installed,
#                          1 when VENV already holds PINS; a path that is not a venv is refused.
#   mark_venv VENV PINS -> records that VENV now holds PINS.
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
