//! Embeds the shipped rules (`correlation-rules/*.yaml`) and lists
//! (`correlation-rules/lists/*.yaml`) in the binary, so `correlate` works with no files beside
//! it; `--rules DIR` replaces the rules and edits the lists at run time.
//!
//! Also sets `cfg(shared_corpus)` when the real-data corpus lies beside the repository
//! (`../shared/realdata` and `../shared/samples`, as on the developers' machines and in CI):
//! the tests that read it are compiled as ignored without it, so a plain clone reports them as
//! skipped rather than failing (or passing) them. `tests/run.sh` sets
//! `CORRELATOR_SHARED_CORPUS` to what it found, so that the corpus appearing or going away
//! between two of its runs re-runs this script.

use std::fmt::Write as _;
use std::path::Path;

fn main() {
    let dir = manifest_dir().join("correlation-rules");
    embed(&dir, "rules", "builtin_rules.rs");
    embed(&dir.join("lists"), "lists", "builtin_lists.rs");
    corpus();
}

/// Embeds the YAML files of `dir` (not of its sub-folders), sorted by name, as `BUILTIN:
/// &[(file name, text)]` in `OUT_DIR/out_file`: the shipped rules
/// (`correlation-rules/*.yaml`) and lists (`correlation-rules/lists/*.yaml`).
fn embed(dir: &Path, what: &str, out_file: &str) {
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| {
            e.unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
                .path()
        })
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    // A binary without its rules would read everything and find nothing.
    assert!(!files.is_empty(), "no {what} (*.yaml) in {}", dir.display());
    files.sort();
    let mut out = format!(
        "/// Built-in {what}: (file name, text).\npub const BUILTIN: &[(&str, &str)] = &[\n"
    );
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
        let name = f.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let _ = writeln!(
            out,
            "    ({name:?}, include_str!({:?})),",
            f.display().to_string()
        );
    }
    out.push_str("];\n");
    let dest = Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join(out_file);
    std::fs::write(dest, out).unwrap_or_else(|e| panic!("writing {out_file}: {e}"));
}

/// `cfg(shared_corpus)` when `../shared/realdata` and `../shared/samples` are folders.
fn corpus() {
    println!("cargo::rustc-check-cfg=cfg(shared_corpus)");
    println!("cargo:rerun-if-env-changed=CORRELATOR_SHARED_CORPUS");
    let shared = manifest_dir().join("..").join("shared");
    let dirs = [shared.join("realdata"), shared.join("samples")];
    if dirs.iter().all(|d| d.is_dir()) {
        println!("cargo:rustc-cfg=shared_corpus");
        // Watching a missing path would re-run this script (and rebuild the crate) on every
        // build of a plain clone, so only a present corpus is watched: its removal re-runs it.
        for d in &dirs {
            println!("cargo:rerun-if-changed={}", d.display());
        }
    }
}

/// The package's folder, as Cargo says when it runs this script: not `env!`, which is fixed
/// when the script is compiled, and a script compiled for a checkout elsewhere (another
/// worktree sharing the target folder) would then read that checkout's rules, or none.
fn manifest_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .expect("cargo sets CARGO_MANIFEST_DIR")
        .into()
}
