#!/usr/bin/env bash
# Runs every fuzz target (or the ones named) for SECONDS each, one after the other.
#
#   fuzz/run.sh [SECONDS] [TARGET...]        # default: 300 seconds, every target
#
# Installs cargo-fuzz when it is missing. cargo-fuzz passes nightly-only flags to rustc
# (-Zsanitizer=address, sanitizer coverage); RUSTC_BOOTSTRAP=1 lets the stable toolchain accept
# them, so no nightly is needed (set FUZZ_TOOLCHAIN=nightly to use one anyway).
#
# Each target runs on a scratch corpus (fuzz/target/corpus-run/<target>, seeded from the
# checked-in fuzz/corpus/<target>), so the checked-in corpus changes only on purpose. A crash
# is written to fuzz/artifacts/<target>/ and stops that target; the script goes on with the
# next and exits 1 at the end. Logs: fuzz/target/logs/<target>.log.
#
# After a crash: `cargo fuzz tmin <target> <artifact>` minimises it; fix the bug, copy the
# minimised input to fuzz/regressions/<target>/, and `cargo test --test fuzz_corpus` replays it.
set -euo pipefail

cd "$(dirname "$0")"
seconds="${1:-300}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(request_path zone_name config manifests upstream_reply)
fi

if ! command -v cargo-fuzz >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

export RUSTC_BOOTSTRAP=1
# build.rs embeds the git commit and, without this, re-runs on every build in a git worktree
# (where .git is a file), rebuilding clusterdns before each target.
export CLUSTERDNS_GIT_COMMIT="${CLUSTERDNS_GIT_COMMIT:-fuzz}"
cargo=(cargo)
if [ -n "${FUZZ_TOOLCHAIN:-}" ]; then
    cargo=(cargo "+${FUZZ_TOOLCHAIN}")
fi

# One build for every target, then one run at a time (the runs below only re-check it).
"${cargo[@]}" fuzz build

mkdir -p target/logs
failed=()
for target in "${targets[@]}"; do
    scratch="target/corpus-run/${target}"
    mkdir -p "${scratch}" "artifacts/${target}"
    dict=()
    if [ -f "dict/${target}.dict" ]; then
        dict=("-dict=dict/${target}.dict")
    fi
    echo "== ${target}: ${seconds}s"
    if ! "${cargo[@]}" fuzz run "${target}" "${scratch}" "corpus/${target}" -- \
        -max_total_time="${seconds}" -print_final_stats=1 "${dict[@]}" \
        >"target/logs/${target}.log" 2>&1; then
        failed+=("${target}")
    fi
    # The last status line: executions, coverage, features, corpus size.
    grep -E '^#[0-9]+' "target/logs/${target}.log" | tail -n 1 || true
    grep -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb):' \
        "target/logs/${target}.log" || true
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "crashed: ${failed[*]} (inputs in fuzz/artifacts/, logs in fuzz/target/logs/)" >&2
    exit 1
fi
echo "no crashes"
