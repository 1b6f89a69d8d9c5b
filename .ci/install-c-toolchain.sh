# shellcheck shell=bash
# Installs what building a guest in C needs — Debian's clang, wasm-ld, compiler-rt for wasm32
# and wasi-libc — if it is missing, and exports COVENANT_REQUIRE_C_TOOLCHAIN=1 so that the C
# guest test (crates/cli/tests/cli/c_guest.rs) runs instead of skipping. Sourced by .ci/run;
# needs root or sudo, as CI has. Returns non-zero if the toolchain cannot be installed.

covenant_install_c_toolchain() {
    local packages=(clang-14 lld-14 wasi-libc libclang-rt-14-dev-wasm32)
    if [ ! -f /usr/lib/wasm32-wasi/libc.a ] || ! command -v clang-14 >/dev/null; then
        echo "install-c-toolchain: installing ${packages[*]} from Debian's packages" >&2
        local sudo=()
        if [ "$(id -u)" -ne 0 ]; then sudo=(sudo); fi
        DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get update -qq >/dev/null &&
            DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${packages[@]}" >/dev/null ||
            { echo "install-c-toolchain: apt-get failed" >&2; return 1; }
    fi
    export COVENANT_REQUIRE_C_TOOLCHAIN=1
}

covenant_install_c_toolchain
