//! Embeds the built-in detection pack (`queries/`) so `trawl detect` needs no files beside the binary.
//!
//! A generated list of `include_str!`s rather than a crate such as include_dir: the pack is a
//! handful of text files, and a dozen lines here avoid another dependency and its proc-macro build.

use std::fs;
use std::path::Path;

fn main() {
    // Read when the script runs, not baked in when it is compiled: cargo gives a path package the
    // same hash in every checkout, so a target dir shared by two worktrees reuses one compiled
    // script, which would otherwise embed the other checkout's queries (or none, once it is gone).
    let manifest = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let root = Path::new(&manifest).join("queries");
    println!("cargo:rerun-if-changed={}", root.display());
    let mut files = Vec::new();
    collect(&root, &root, &mut files);
    files.sort();
    let mut out = String::from("/// The built-in pack's files: path relative to `queries/`, contents.\n");
    out.push_str("pub static BUILTIN_FILES: &[(&str, &str)] = &[\n");
    for rel in &files {
        let abs = root.join(rel);
        println!("cargo:rerun-if-changed={}", abs.display());
        out.push_str(&format!("    ({rel:?}, include_str!({:?})),\n", abs.display().to_string()));
    }
    out.push_str("];\n");
    let dest = Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("builtin_pack.rs");
    fs::write(dest, out).expect("OUT_DIR is writable");
}

/// Detections (`*.sql`) at the top and lists (`lists/*.txt`, `lists/*.csv`): what a pack folder holds.
fn collect(root: &Path, dir: &Path, files: &mut Vec<String>) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            println!("cargo:rerun-if-changed={}", path.display());
            collect(root, &path, files);
            continue;
        }
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        if matches!(ext, "sql" | "txt" | "csv") {
            let rel = path.strip_prefix(root).expect("under root").to_string_lossy().replace('\\', "/");
            files.push(rel);
        }
    }
}
