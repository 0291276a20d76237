# Shared helpers for scripts/run and scripts/test.

# The cargo target dir lives outside the clone so fresh clones reuse builds.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/hangar/target}"

# need_packages PKG...: installs the Debian packages that are missing.
need_packages() {
    local missing=()
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "==> installing Debian packages: ${missing[*]}"
        local sudo=""
        [ "$(id -u)" -eq 0 ] || sudo="sudo"
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
}

# build_ui: installs the dashboard's npm packages (exactly package-lock.json)
# when they changed, and builds ui/dist when its sources changed; the agent
# embeds it (release) or reads it from disk (debug).
build_ui() {
    command -v npm >/dev/null || need_packages nodejs npm
    (
        cd ui
        if [ ! package-lock.json -ot node_modules/.package-lock.json ]; then
            echo "==> npm ci (ui/)"
            npm ci --no-audit --no-fund --loglevel=error
        fi
        # Rebuilt only when its sources changed: a fresh dist (new mtimes)
        # makes cargo rebuild the agent that embeds it.
        if [ -f dist/index.html ] && [ -z "$(find src public index.html package-lock.json \
            vite.config.ts svelte.config.js tsconfig.json -newer dist/index.html -print -quit)" ]; then
            echo "==> the dashboard (ui/dist) is up to date"
        else
            echo "==> building the dashboard (ui/dist)"
            npm run build --silent >/dev/null
        fi
    )
}
