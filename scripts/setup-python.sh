#!/usr/bin/env bash
# Creates .venv (gitignored) with the pinned stomp.py suite dependencies.
# Idempotent: reinstalls only when clients/python/requirements.txt changed (stamp file holds
# its hash), so a warm run costs a sha256sum.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=.venv
requirements=clients/python/requirements.txt
stamp="$venv/.requirements.sha256"
python="${PYTHON:-python3}"

want="$(sha256sum "$requirements" | cut -d' ' -f1)"
if "$venv/bin/python" -c '' 2>/dev/null && [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    echo "setup-python: $venv up to date"
    exit 0
fi

echo "setup-python: installing $requirements into $venv"
if ! "$venv/bin/python" -c '' 2>/dev/null; then
    # Missing, or left broken by a removed interpreter: start over.
    "$python" -m venv --clear "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
    --requirement "$requirements"
echo "$want" > "$stamp"
