//! The environment is read in one place (issue 12, item 9): `src/config.rs` reads it and hands
//! on what others need (the ECS metadata endpoint, the call recorder, the host name), so every
//! setting the tool obeys is one the configuration documents and `validate` reports. This scans
//! the sources, outside their unit-test modules, for any other read.

use std::path::{Path, PathBuf};

/// Calls that read the process environment at run time.
const READS: [&str; 6] = [
    "env::var(",
    "env::var_os(",
    "env::vars(",
    "env::vars_os(",
    "env::temp_dir(",
    "env::home_dir(",
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The lines of `text` that read the environment, outside a trailing `#[cfg(test)]` module.
fn reads(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut lines = text.lines().enumerate().peekable();
    while let Some((i, line)) = lines.next() {
        if line.trim() == "#[cfg(test)]"
            && lines
                .peek()
                .is_some_and(|(_, next)| next.trim_start().starts_with("mod tests"))
        {
            break;
        }
        let code = line.split("//").next().unwrap_or_default();
        if READS.iter().any(|r| code.contains(r)) {
            out.push((i + 1, line.trim().to_string()));
        }
    }
    out
}

#[test]
fn issue_12_the_environment_is_read_in_the_configuration_only() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    files.sort();
    assert!(files.len() > 20, "the sources were found: {files:?}");
    let config = root.join("src").join("config.rs");
    let mut found = Vec::new();
    let mut in_config = 0;
    for f in &files {
        let hits = reads(&std::fs::read_to_string(f).unwrap());
        if *f == config {
            in_config += hits.len();
        } else {
            found.extend(
                hits.into_iter()
                    .map(|(n, l)| format!("{}:{n}: {l}", f.strip_prefix(root).unwrap().display())),
            );
        }
    }
    assert!(
        found.is_empty(),
        "the environment is read outside src/config.rs:\n{}",
        found.join("\n")
    );
    assert!(in_config > 0, "src/config.rs reads the environment");
}

#[test]
fn the_scan_sees_a_read_and_skips_comments_and_test_modules() {
    let text = "fn a() {\n    let x = std::env::var(\"XX_MODE\");\n}\n// std::env::var(\"NO\")\n#[cfg(test)]\nmod tests {\n    fn b() { std::env::var(\"T\"); }\n}\n";
    assert_eq!(
        reads(text),
        vec![(2, "let x = std::env::var(\"XX_MODE\");".to_string())]
    );
}
