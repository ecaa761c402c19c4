//! The crate's layers, read from its own `use` lines. Its rooms (the modules at its root) are
//! ranked, and dependencies run one way, down: `server` → data plane (`proxy`) → MCP (`mcp`) →
//! authorization server (`oauth`) → the routes' policies (`policy`) → identity providers (`idp`)
//! → `tokens` → `store` → `telemetry` → `config` → the leaves, so that each room can be read,
//! tested and changed without the ones above it. Nothing uses the root (`lib.rs` only wires), and no files import each other
//! in a circle, inside a room or across rooms.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The rooms, lowest first; a room may use only rooms of lower rank (and itself). The binary's
/// commands (`admin`, `cli`) sit on top, beside the server.
const ROOMS: &[&str] = &[
    "clock",
    "file_stamp",
    "outbound",
    "cache",
    "config",
    "telemetry",
    "rate_limit",
    "store",
    "tokens",
    "idp",
    "connections",
    "policy",
    "oauth",
    "mcp",
    "proxy",
    "server",
    "admin",
    "cli",
];

/// Code of `source` without its comments (a line's `//` onwards; doc comments included).
fn code(source: &str) -> impl Iterator<Item = &str> {
    source
        .lines()
        .map(|line| line.split("//").next().unwrap_or_default())
}

/// The crate paths `source` names in code: each `crate::a::b` (and each item of a `crate::{a, b}`
/// or `crate::a::{b, c}` group) as its segments.
fn crate_paths(source: &str) -> Vec<Vec<String>> {
    code(source)
        .flat_map(|line| paths_after(line, "crate::"))
        .collect()
}

/// The paths `line` names after each `prefix` (`crate::`, `super::`), groups spread out.
fn paths_after(line: &str, prefix: &str) -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    for (at, _) in line.match_indices(prefix) {
        // `self::super::` and `super::super::` are read from their first `super`.
        if prefix == "super::" && line[..at].ends_with("super::") {
            continue;
        }
        let mut rest = &line[at + prefix.len()..];
        let mut supers = Vec::new();
        while let Some(more) = rest.strip_prefix("super::") {
            supers.push("super".to_owned());
            rest = more;
        }
        for mut path in group(rest) {
            let mut whole = supers.clone();
            whole.append(&mut path);
            paths.push(whole);
        }
    }
    paths
}

/// The paths at the start of `rest`: `a::b::c`, or `a::{b, c::d}` as `a::b` and `a::c::d`.
fn group(rest: &str) -> Vec<Vec<String>> {
    let mut segments = Vec::new();
    let mut rest = rest;
    loop {
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if name.is_empty() {
            break;
        }
        rest = &rest[name.len()..];
        segments.push(name);
        match rest.strip_prefix("::") {
            Some(more) => rest = more,
            None => return vec![segments],
        }
    }
    let Some(inner) = rest.strip_prefix('{') else {
        return vec![segments];
    };
    // The group's items at its own depth; a nested group's first level is enough for modules.
    let mut items = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => {
                items.push(&inner[start..i]);
                break;
            }
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items
        .into_iter()
        .flat_map(|item| group(item.trim_start()))
        .map(|tail| segments.iter().cloned().chain(tail).collect())
        .collect()
}

/// Every `.rs` file under `dir`.
fn sources(dir: &Path, files: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("a source directory") {
        let path = entry.expect("an entry").path();
        if path.is_dir() {
            sources(&path, files);
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
}

/// The crate's production files, by module path (`oauth/authorize.rs` is `oauth::authorize`),
/// with their text; tests left out, as they may reach anywhere.
fn modules() -> BTreeMap<Vec<String>, String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    files
        .into_iter()
        .filter_map(|file| {
            let relative = file.strip_prefix(&src).expect("under src");
            let mut path: Vec<String> = relative
                .with_extension("")
                .iter()
                .map(|s| s.to_string_lossy().into_owned())
                .collect();
            if path.last().is_some_and(|last| last == "mod") {
                path.pop();
            }
            let is_test = path.iter().any(|segment| segment.contains("tests"));
            if is_test || path == ["main"] {
                return None;
            }
            let mut text = std::fs::read_to_string(&file).expect("a source file");
            // A file's own tests, which by custom close it, are left out too.
            if let Some(at) = text.find("#[cfg(test)]\nmod ") {
                text.truncate(at);
            }
            Some((path, text))
        })
        .collect()
}

/// The longest module among `modules` that `path` starts with.
fn resolve<'a>(
    modules: &'a BTreeMap<Vec<String>, String>,
    path: &[String],
) -> Option<&'a Vec<String>> {
    (1..=path.len())
        .rev()
        .find_map(|n| modules.get_key_value(&path[..n]).map(|(k, _)| k))
}

/// The modules `module`'s code uses, by `crate::` and `super::` paths.
fn uses(
    modules: &BTreeMap<Vec<String>, String>,
    module: &[String],
    source: &str,
) -> BTreeSet<Vec<String>> {
    let mut used = BTreeSet::new();
    for path in crate_paths(source) {
        if let Some(target) = resolve(modules, &path) {
            used.insert(target.clone());
        }
    }
    for path in code(source).flat_map(|line| paths_after(line, "super::")) {
        // `super` of a file is its parent module, one more per extra `super`.
        let ups = 1 + path.iter().take_while(|s| *s == "super").count();
        let Some(base) = module.len().checked_sub(ups) else {
            continue;
        };
        let absolute: Vec<String> = module[..base]
            .iter()
            .cloned()
            .chain(path.into_iter().skip(ups - 1))
            .collect();
        if let Some(target) = resolve(modules, &absolute) {
            used.insert(target.clone());
        }
    }
    used.remove(module);
    used
}

#[test]
fn rooms_use_only_the_rooms_below_them_and_nothing_uses_the_root() {
    let modules = modules();
    let mut violations = Vec::new();
    for (module, source) in &modules {
        let Some(room) = module.first().filter(|_| module != &["lib"]) else {
            continue;
        };
        let rank = ROOMS.iter().position(|r| r == room);
        let Some(rank) = rank else {
            violations.push(format!("{room} is not a ranked room"));
            continue;
        };
        for path in crate_paths(source) {
            let used = &path[0];
            if !modules.keys().any(|m| m.first() == Some(used)) {
                violations.push(format!(
                    "{} uses the root: crate::{used}",
                    module.join("::")
                ));
            } else if used != room && !ROOMS[..rank].contains(&used.as_str()) {
                violations.push(format!("{} uses crate::{used}", module.join("::")));
            }
        }
        let top = module.len() == 1;
        if top && code(source).any(|line| line.contains("super::")) {
            violations.push(format!("{room} uses the root through super::"));
        }
    }
    assert!(violations.is_empty(), "{violations:#?}");
}

/// Each circle of imports among `modules`, as the modules along it.
fn circles(modules: &BTreeMap<Vec<String>, String>) -> Vec<String> {
    // A file may use its ancestors' façades (`super::Thing` from a module's `mod.rs`), and a
    // façade its own children: that is how a module is made, not a circle between files.
    let edges: BTreeMap<&Vec<String>, BTreeSet<Vec<String>>> = modules
        .iter()
        .map(|(module, source)| {
            let used = uses(modules, module, source)
                .into_iter()
                .filter(|target| !module.starts_with(target) && !target.starts_with(module))
                .collect();
            (module, used)
        })
        .collect();
    let mut circles = Vec::new();
    for start in edges.keys() {
        // Depth-first from `start`, looking for a way back to it.
        let mut stack = vec![(vec![(*start).clone()], (*start).clone())];
        let mut seen = BTreeSet::new();
        while let Some((trail, at)) = stack.pop() {
            for next in edges.get(&at).into_iter().flatten() {
                if next == *start {
                    let names: Vec<String> = trail.iter().map(|m| m.join("::")).collect();
                    circles.push(names.join(" -> "));
                } else if seen.insert(next.clone()) {
                    let mut longer = trail.clone();
                    longer.push(next.clone());
                    stack.push((longer, next.clone()));
                }
            }
        }
    }
    circles
}

#[test]
fn no_files_import_each_other_in_a_circle() {
    let circles = circles(&modules());
    assert!(circles.is_empty(), "{circles:#?}");
}

#[test]
fn paths_are_read_from_code_and_groups() {
    let source = "use crate::config::Route; // see crate::proxy\n\
                  use crate::{clock, telemetry::{metrics, trace::SPANS}};\n\
                  use super::super::pending;";
    let crate_paths: Vec<String> = crate_paths(source).iter().map(|p| p.join("::")).collect();
    assert_eq!(
        crate_paths,
        [
            "config::Route",
            "clock",
            "telemetry::metrics",
            "telemetry::trace::SPANS"
        ]
    );
    let supers: Vec<Vec<String>> = code(source)
        .flat_map(|line| paths_after(line, "super::"))
        .collect();
    assert_eq!(supers, [vec!["super".to_owned(), "pending".to_owned()]]);
}

#[test]
fn a_circle_is_seen() {
    // The check above would pass on a tree with no edges at all: make sure it reads these.
    let mut modules = BTreeMap::new();
    let a = vec!["oauth".to_owned(), "authorize".to_owned()];
    let b = vec!["oauth".to_owned(), "pending".to_owned()];
    modules.insert(a.clone(), "use super::pending::auth_cookie;".to_owned());
    modules.insert(
        b.clone(),
        "let r = crate::oauth::authorize::route_for();".to_owned(),
    );
    assert_eq!(
        uses(&modules, &a, &modules[&a]),
        BTreeSet::from([b.clone()])
    );
    assert_eq!(
        uses(&modules, &b, &modules[&b]),
        BTreeSet::from([a.clone()])
    );
    assert_eq!(
        circles(&modules),
        [
            "oauth::authorize -> oauth::pending",
            "oauth::pending -> oauth::authorize"
        ]
    );
}

/// The rows of the README's map (`## Where things live`): each row's folder under `gateway/src`
/// (from its first path) and its text.
fn map_rows() -> Vec<(String, String)> {
    let readme = Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md");
    let readme = std::fs::read_to_string(readme).expect("the README");
    let map = readme
        .split("## Where things live")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("the README's map");
    map.lines()
        .filter_map(|row| {
            let first = row.strip_prefix("| `gateway/src/")?;
            let path = &first[..first.find('`')?];
            let folder = &path[..path.rfind('/').map_or(0, |at| at + 1)];
            Some((folder.to_owned(), row.to_owned()))
        })
        .collect()
}

#[test]
fn the_readme_map_names_every_file() {
    let rows = map_rows();
    assert!(rows.len() > 10, "the map was not read: {rows:#?}");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let unnamed: Vec<String> = files
        .iter()
        .map(|file| {
            file.strip_prefix(&src)
                .expect("under src")
                .display()
                .to_string()
        })
        .filter(|file| !file.contains("tests"))
        .filter(|file| {
            !rows.iter().any(|(folder, row)| {
                row.contains(&format!("`gateway/src/{file}`"))
                    || file
                        .strip_prefix(folder.as_str())
                        .is_some_and(|name| row.contains(&format!("`{name}`")))
            })
        })
        .collect();
    assert!(
        unnamed.is_empty(),
        "the README's map does not name {unnamed:#?}"
    );
}
