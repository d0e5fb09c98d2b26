//! The architecture map of `lib.rs`, checked against the code: every import between top-level
//! modules goes down the floors the map lists, and no files import each other in a circle (inside
//! a folder or across). The floors are read from `lib.rs` itself, so the map cannot drift from what
//! this test enforces.
//!
//! Imports are read as text, tests left out: `use` trees (`crate::`, `super::`, `self::` and child
//! modules) and paths written inline in code. A name is attributed to the file that defines it,
//! through `pub use` re-exports, so a folder's `mod.rs` that only hands names on makes no circle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

mod source;

use source::{code_of, declared_modules, defines, inline_paths, reexports, use_paths};

/// A module's path from the crate root (`["emulator", "server"]`); the root is empty.
type ModulePath = Vec<String>;

/// The crate's source files (path under `src/` -> code, tests cut off) and their module tree.
struct Crate {
    code: BTreeMap<String, String>,
    modules: BTreeMap<ModulePath, String>,
}

/// One import of a file: the file it names and the names taken.
type Edges = BTreeMap<(String, String), BTreeSet<String>>;

impl Crate {
    /// Reads every `.rs` file under `src`.
    fn read(src: &Path) -> Crate {
        let mut files = BTreeMap::new();
        let mut folders = vec![src.to_path_buf()];
        while let Some(folder) = folders.pop() {
            for entry in std::fs::read_dir(&folder).expect("src is readable") {
                let path = entry.expect("src is readable").path();
                if path.is_dir() {
                    folders.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    let relative = path.strip_prefix(src).expect("under src").to_string_lossy().replace('\\', "/");
                    files.insert(relative, std::fs::read_to_string(&path).expect("a source file is UTF-8"));
                }
            }
        }
        Crate::from_files(files)
    }

    /// The module tree declared from `lib.rs` down (`mod name;`, `#[path]` honoured; modules
    /// declared under `#[cfg(test)]` left out), each file's code without comments, strings and
    /// its test module.
    fn from_files(files: BTreeMap<String, String>) -> Crate {
        let mut modules = BTreeMap::new();
        let mut pending = vec![(ModulePath::new(), "lib.rs".to_string())];
        while let Some((module, file)) = pending.pop() {
            let Some(text) = files.get(&file) else { continue };
            let folder = match file.rsplit_once('/') {
                Some((dir, name)) if name == "mod.rs" || name == "lib.rs" => format!("{dir}/"),
                Some((dir, name)) => format!("{dir}/{}/", name.trim_end_matches(".rs")),
                None if file == "lib.rs" => String::new(),
                None => format!("{}/", file.trim_end_matches(".rs")),
            };
            let beside = file.rsplit_once('/').map(|(dir, _)| format!("{dir}/")).unwrap_or_default();
            for (name, path_attribute) in declared_modules(text) {
                let child = match path_attribute {
                    Some(path) => format!("{beside}{path}"),
                    None if files.contains_key(&format!("{folder}{name}.rs")) => format!("{folder}{name}.rs"),
                    None => format!("{folder}{name}/mod.rs"),
                };
                let mut path = module.clone();
                path.push(name);
                pending.push((path, child));
            }
            modules.insert(module, file);
        }
        let code = modules.values().map(|file| (file.clone(), code_of(&files[file]))).collect();
        Crate { code, modules }
    }

    /// The imports that can close a circle: all but a file's use of what an enclosing module
    /// defines (`super::…`), which Rust's module tree is made for; the parent's own imports of
    /// its children still count.
    fn circle_edges(&self, edges: &Edges) -> Edges {
        let encloses = |from: &str, to: &str| {
            let (inner, outer) = (self.module_of(from), self.module_of(to));
            outer.len() < inner.len() && inner.starts_with(outer)
        };
        edges.iter().filter(|((from, to), _)| !encloses(from, to)).map(|(k, v)| (k.clone(), v.clone())).collect()
    }

    fn module_of(&self, file: &str) -> &ModulePath {
        self.modules.iter().find(|(_, f)| f.as_str() == file).map(|(m, _)| m).expect("a file of the tree")
    }

    /// Every file-to-file import, with the names taken.
    fn edges(&self) -> Edges {
        let mut edges = Edges::new();
        for (file, code) in &self.code {
            let module = self.module_of(file).clone();
            for path in use_paths(code).into_iter().chain(inline_paths(code)) {
                let Some(absolute) = self.absolute(&module, &path) else { continue };
                if let Some((target, name)) = self.resolve(&absolute, 0) {
                    if target != *file {
                        edges.entry((file.clone(), target)).or_default().insert(name);
                    }
                }
            }
        }
        edges
    }

    /// A path as written in `module`, from the crate root; `None` for another crate's.
    fn absolute(&self, module: &[String], path: &[String]) -> Option<ModulePath> {
        let mut base = module.to_vec();
        let mut rest = path;
        match rest.first().map(String::as_str) {
            Some("crate") => {
                base.clear();
                rest = &rest[1..];
            }
            Some("self") => rest = &rest[1..],
            Some("super") => {
                while rest.first().is_some_and(|s| s == "super") {
                    base.pop()?;
                    rest = &rest[1..];
                }
            }
            Some(first) => {
                let mut child = module.to_vec();
                child.push(first.to_string());
                if !self.modules.contains_key(&child) {
                    return None;
                }
            }
            None => return None,
        }
        base.extend(rest.iter().filter(|s| s.as_str() != "self").cloned());
        Some(base)
    }

    /// The file that defines what `absolute` names, and the name (a module's own file for a
    /// module), following `pub use` re-exports.
    fn resolve(&self, absolute: &ModulePath, depth: usize) -> Option<(String, String)> {
        let deepest = (0..=absolute.len()).rev().find(|n| self.modules.contains_key(&absolute[..*n]))?;
        let module = &absolute[..deepest];
        let file = self.modules[module].clone();
        let Some(name) = absolute.get(deepest) else {
            return Some((file, module.last().cloned().unwrap_or_default()));
        };
        if depth < 8 && !defines(&self.code[&file], name) {
            for exported in reexports(&self.code[&file]) {
                let named = exported.last().is_some_and(|last| last == name || last == "*");
                if !named {
                    continue;
                }
                let mut path = exported.clone();
                if path.last().is_some_and(|last| last == "*") {
                    path.pop();
                    path.push(name.clone());
                }
                if let Some(found) = self.absolute(module, &path).and_then(|a| self.resolve(&a, depth + 1)) {
                    return Some(found);
                }
            }
        }
        Some((file, name.clone()))
    }
}

/// The floors of `lib.rs`'s map, top first: the lines `//! N  module, module   what they do`
/// between `# Floors` and the end of its block.
fn floors(lib: &str) -> Vec<(u32, Vec<String>)> {
    let mut floors = Vec::new();
    let mut inside = false;
    for line in lib.lines() {
        let Some(doc) = line.strip_prefix("//!") else { continue };
        if doc.trim_start().starts_with("# Floors") {
            inside = true;
            continue;
        }
        if inside && doc.trim_start().starts_with('#') {
            break;
        }
        let doc = doc.trim_start();
        let Some((number, rest)) = doc.split_once(char::is_whitespace) else { continue };
        let (Ok(number), true) = (number.parse::<u32>(), inside) else { continue };
        let names = rest.trim_start().split("  ").next().unwrap_or_default();
        let modules = names.split(',').map(|m| m.trim().to_string()).filter(|m| !m.is_empty()).collect();
        floors.push((number, modules));
    }
    floors
}

/// The imports between top-level modules that do not go down a floor.
fn upward_imports(krate: &Crate, edges: &Edges, floors: &[(u32, Vec<String>)]) -> Vec<String> {
    let floor_of = |file: &str| {
        let top = krate.module_of(file).first().cloned().unwrap_or_default();
        floors.iter().find(|(_, modules)| modules.contains(&top)).map(|(n, _)| (*n, top))
    };
    let mut wrong = Vec::new();
    for ((from, to), names) in edges {
        let (Some((from_floor, from_top)), Some((to_floor, to_top))) = (floor_of(from), floor_of(to)) else {
            continue;
        };
        if from_top != to_top && from_floor <= to_floor {
            wrong.push(format!("{from} (floor {from_floor}) -> {to} (floor {to_floor}): {names:?}"));
        }
    }
    wrong
}

/// The circles: strongly connected groups of two files or more, each with the imports that tie it.
fn circles(edges: &Edges) -> Vec<Vec<String>> {
    let mut next: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (from, to) in edges.keys() {
        next.entry(from).or_default().push(to);
        next.entry(to).or_default();
    }
    let reach = |start: &str| {
        let mut seen = BTreeSet::from([start.to_string()]);
        let mut stack = vec![start];
        while let Some(at) = stack.pop() {
            for &to in &next[at] {
                if seen.insert(to.to_string()) {
                    stack.push(to);
                }
            }
        }
        seen
    };
    let reaches: BTreeMap<&str, BTreeSet<String>> = next.keys().map(|&f| (f, reach(f))).collect();
    let mut groups: Vec<Vec<String>> = Vec::new();
    for &file in next.keys() {
        let group: Vec<String> =
            reaches[file].iter().filter(|other| reaches[other.as_str()].contains(file)).cloned().collect();
        if group.len() > 1 && !groups.contains(&group) {
            groups.push(group);
        }
    }
    groups
        .into_iter()
        .map(|group| {
            edges
                .iter()
                .filter(|((from, to), _)| group.contains(from) && group.contains(to))
                .map(|((from, to), names)| format!("{from} -> {to}: {names:?}"))
                .collect()
        })
        .collect()
}

fn src() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

#[test]
fn every_import_between_top_level_modules_goes_down_a_floor() {
    let krate = Crate::read(&src());
    let lib = std::fs::read_to_string(src().join("lib.rs")).expect("lib.rs is readable");
    let floors = floors(&lib);
    let edges = krate.edges();
    assert!(edges.len() > 200, "the scan finds imports: {} edges", edges.len());
    let wrong = upward_imports(&krate, &edges, &floors);
    assert!(wrong.is_empty(), "imports that do not go down lib.rs's floors:\n{}", wrong.join("\n"));
}

#[test]
fn no_files_import_each_other_in_a_circle() {
    let krate = Crate::read(&src());
    let circles = circles(&krate.circle_edges(&krate.edges()));
    let text: Vec<String> = circles.iter().map(|c| c.join("\n  ")).collect();
    assert!(circles.is_empty(), "files that import each other in a circle:\n  {}", text.join("\n\n  "));
}

#[test]
fn every_top_level_module_stands_on_exactly_one_floor() {
    let krate = Crate::read(&src());
    let lib = std::fs::read_to_string(src().join("lib.rs")).expect("lib.rs is readable");
    let floors = floors(&lib);
    let declared: BTreeSet<String> = krate.modules.keys().filter(|m| m.len() == 1).map(|m| m[0].clone()).collect();
    let listed: Vec<String> = floors.iter().flat_map(|(_, modules)| modules.clone()).collect();
    let once: BTreeSet<String> = listed.iter().cloned().collect();
    assert_eq!(once.len(), listed.len(), "a module stands on two floors: {listed:?}");
    assert_eq!(once, declared, "lib.rs's floors and its `mod` lines name the same modules");
    let numbers: Vec<u32> = floors.iter().map(|(n, _)| *n).collect();
    assert!(numbers.windows(2).all(|w| w[0] > w[1]), "floors are listed from the top down: {numbers:?}");
}

#[cfg(test)]
mod tests {
    use super::source::expand;
    use super::*;

    fn planted(files: &[(&str, &str)]) -> Crate {
        Crate::from_files(files.iter().map(|(p, t)| (p.to_string(), t.to_string())).collect())
    }

    const LIB: &str =
        "//! # Floors\n//! 2  top  the top\n//! 1  low  a leaf\n//!\n//! # Rules\npub mod top;\npub mod low;\n";

    #[test]
    fn an_import_up_the_floors_is_found() {
        let krate = planted(&[
            ("lib.rs", LIB),
            ("top.rs", "use crate::low::Thing;\n"),
            ("low.rs", "pub struct Thing;\nfn f() { crate::top::go(); }\n"),
        ]);
        let wrong = upward_imports(&krate, &krate.edges(), &floors(LIB));
        assert_eq!(wrong.len(), 1, "{wrong:?}");
        assert!(wrong[0].starts_with("low.rs (floor 1) -> top.rs (floor 2)"), "{wrong:?}");
    }

    #[test]
    fn a_circle_through_a_folder_is_found_and_a_face_makes_none() {
        let krate = planted(&[
            ("lib.rs", LIB),
            ("top.rs", "mod a;\nmod b;\npub use a::Alpha;\npub use b::{Beta as B};\n"),
            ("top/a.rs", "use super::B;\npub struct Alpha;\n"),
            (
                "top/b.rs",
                "pub struct Beta;\nfn f() -> super::Alpha { todo!() }\n#[cfg(test)]\nmod tests {\n use super::super::top;\n}\n",
            ),
            ("low.rs", "pub struct Thing;\n"),
        ]);
        let edges = krate.edges();
        assert!(edges.contains_key(&("top/a.rs".to_string(), "top/b.rs".to_string())), "{edges:?}");
        assert!(!edges.keys().any(|(from, to)| from == "top/b.rs" && to == "top.rs"), "{edges:?}");
        let found = circles(&edges);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].len(), 2, "{found:?}");
    }

    #[test]
    fn use_trees_expand_to_every_path() {
        let paths = expand("crate::{a::{self, B}, c::D as E, f::*}");
        let text: Vec<String> = paths.iter().map(|p| p.join("::")).collect();
        assert_eq!(text, ["crate::a::self", "crate::a::B", "crate::c::D", "crate::c::E", "crate::f::*"]);
    }

    #[test]
    fn comments_strings_and_tests_are_not_code() {
        let code = code_of("use a; // crate::x\nlet s = \"crate::y\";\n#[cfg(test)]\nmod tests {\n use crate::z;\n}\n");
        assert!(!code.contains("crate::x") && !code.contains("crate::y") && !code.contains("crate::z"), "{code}");
        assert!(code.contains("use a;"));
    }

    #[test]
    fn floors_are_read_from_the_map() {
        assert_eq!(floors(LIB), [(2, vec!["top".to_string()]), (1, vec!["low".to_string()])]);
    }
}
