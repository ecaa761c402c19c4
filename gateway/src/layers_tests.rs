//! The crate's layers, read from its own `use` lines: dependencies run one way, binary → data plane
//! (`proxy`) → authorization server (`oauth`) → the routes' policies (`policy`) → identity providers
//! (`idp`) → `tokens` → `store` → `config`, so that each layer can be read, tested and changed without the ones above it.

use std::collections::BTreeSet;
use std::path::Path;

/// The layers, lowest first; a module may use only modules of lower layers (and itself).
const LAYERS: &[&str] = &[
    "config", "store", "tokens", "idp", "policy", "oauth", "proxy",
];
/// Leaves any layer may use: the clock, the cache type, the rate limiter, and the telemetry every part
/// reports to (metrics, logs, audit, trace spans).
const LEAVES: &[&str] = &[
    "clock",
    "cache",
    "rate_limit",
    "metrics",
    "access_log",
    "audit",
    "log_writer",
    "trace",
];

/// The crate modules `source` names in code (`crate::<module>`), comments left out.
fn used_modules(source: &str) -> BTreeSet<String> {
    source
        .lines()
        .map(|line| line.split("//").next().unwrap_or_default())
        .flat_map(|code| {
            code.match_indices("crate::")
                .map(move |(at, _)| &code[at + "crate::".len()..])
        })
        .map(|rest| {
            rest.chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect()
        })
        .collect()
}

/// Every `.rs` file under `dir`.
fn sources(dir: &Path, files: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("a source directory") {
        let path = entry.expect("an entry").path();
        if path.is_dir() {
            sources(&path, files);
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
}

#[test]
fn dependencies_run_one_way() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut violations = Vec::new();
    for (rank, layer) in LAYERS.iter().enumerate() {
        let mut files = Vec::new();
        sources(&src.join(layer), &mut files);
        assert!(!files.is_empty(), "the {layer} layer has no sources");
        for file in files {
            let text = std::fs::read_to_string(&file).expect("a source file");
            for used in used_modules(&text) {
                let allowed = used == *layer
                    || LAYERS[..rank].contains(&used.as_str())
                    || (rank > 0 && LEAVES.contains(&used.as_str()));
                if !allowed {
                    violations.push(format!("{} uses crate::{used}", file.display()));
                }
            }
        }
    }
    for leaf in LEAVES {
        // A leaf is a file, or a directory of them.
        let mut files = Vec::new();
        match src.join(format!("{leaf}.rs")) {
            file if file.is_file() => files.push(file),
            _ => sources(&src.join(leaf), &mut files),
        }
        for file in files {
            let text = std::fs::read_to_string(&file).expect("a leaf");
            for used in used_modules(&text) {
                if used != *leaf && !LEAVES.contains(&used.as_str()) {
                    violations.push(format!("the leaf {leaf} uses crate::{used}"));
                }
            }
        }
    }
    assert!(violations.is_empty(), "{violations:#?}");
}

#[test]
fn comments_are_not_dependencies() {
    let used =
        used_modules("use crate::config::Route; // see crate::proxy\nlet x = crate::clock::now();");
    assert_eq!(
        used.into_iter().collect::<Vec<_>>(),
        vec!["clock".to_owned(), "config".to_owned()]
    );
}
