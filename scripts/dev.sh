#!/usr/bin/env bash
# Install what LearnHub needs into ./.venv (idempotent), then run it or its tests.
#   scripts/dev.sh run    start the hub with SQLite, local learner servers and the demo LMS
#   scripts/dev.sh test   run the whole test suite (extra pytest arguments are passed on)
#   scripts/dev.sh images build the learner, grader and hub images (needs a Docker engine; no registry)
#   scripts/dev.sh labextension  rebuild extensions/labextension from its TypeScript source
#                 (npm ci from the lockfile, tsc, JupyterLab's builder); commit the result
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=.venv
CHP_VERSION=5.3.0
# axe-core: the accessibility checker the browser tests inject into LearnHub's pages.
AXE_VERSION=4.11.0

need() { command -v "$1" >/dev/null 2>&1; }

install_system_packages() {
    # Node.js/npm for configurable-http-proxy; for the tests also Debian's Chromium (the
    # browser tests drive it; Playwright never downloads a browser). The rest is PyPI.
    local extras=$1
    local missing=()
    need npm || missing+=(nodejs npm)
    if [ "$extras" = test ] && [ ! -x /usr/bin/chromium ]; then missing+=(chromium); fi
    "$PYTHON" -c "import venv, ensurepip" 2>/dev/null || missing+=(python3-venv)
    if [ ${#missing[@]} -gt 0 ]; then
        if [ "$(id -u)" = 0 ] && need apt-get; then
            apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
        else
            echo "error: please install: ${missing[*]}" >&2
            exit 1
        fi
    fi
}

install() {
    local extras=$1
    install_system_packages "$extras"
    [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
    # Reinstall only when the project's declared dependencies changed.
    local stamp="$VENV/.learnhub-installed-$extras"
    local digest
    digest=$(sha256sum pyproject.toml | cut -c1-16)
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$digest" ]; then
        "$VENV/bin/pip" install --quiet --disable-pip-version-check --upgrade pip
        "$VENV/bin/pip" install --quiet --disable-pip-version-check -e ".[hub,$extras]"
        echo "$digest" > "$stamp"
    fi
    if [ ! -x "$VENV/node_modules/.bin/configurable-http-proxy" ]; then
        npm install --silent --no-audit --no-fund --prefix "$VENV" "configurable-http-proxy@$CHP_VERSION"
    fi
    if [ "$extras" = test ] && [ ! -f "$VENV/node_modules/axe-core/axe.min.js" ]; then
        npm install --silent --no-audit --no-fund --prefix "$VENV" "axe-core@$AXE_VERSION"
    fi
}

case "${1:-}" in
    run)
        shift
        install hub
        exec "$VENV/bin/learnhub" run --demo "$@"
        ;;
    test)
        shift
        install test
        exec "$VENV/bin/python" -m pytest "$@"
        ;;
    images)
        shift
        install test
        exec "$VENV/bin/learnhub" images build --no-pull --hub "$@"
        ;;
    labextension)
        shift
        install hub
        # jupyter-builder, the builder's Python side, comes with jupyterlab in the venv.
        cd extensions/labextension-src
        if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
            npm ci --no-audit --no-fund
        fi
        PATH="$PWD/../../$VENV/bin:$PATH" exec npm run build
        ;;
    *)
        echo "usage: scripts/dev.sh run|test|images|labextension [args]" >&2
        exit 2
        ;;
esac
