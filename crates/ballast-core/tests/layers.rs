//! The core's modules depend on one another without a cycle (issue [9]: "no import cycles"):
//! every `crate::MODULE` path a module's code names (doc comments and tests aside) is an
//! edge, and the graph must be acyclic.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

fn code_of(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    // Test modules and doc comments may name anything.
    let body = text.split("#[cfg(test)]").next().unwrap_or("");
    body.lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n")
}

#[test]
fn the_core_modules_form_no_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for e in std::fs::read_dir(&src).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_stem().unwrap().to_string_lossy().to_string();
        if name == "lib" || name == "fixtures" {
            continue;
        }
        let mut files = vec![];
        if p.is_dir() {
            for f in std::fs::read_dir(&p).unwrap() {
                let f = f.unwrap().path();
                if !f.file_name().unwrap().to_string_lossy().contains("tests") {
                    files.push(f);
                }
            }
        } else {
            files.push(p.clone());
        }
        let deps = edges.entry(name.clone()).or_default();
        for f in files {
            let code = code_of(&f);
            for part in code.split("crate::").skip(1) {
                let m: String = part.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                if !m.is_empty() && m != name {
                    deps.insert(m);
                }
            }
        }
    }
    // Depth-first search for a back edge.
    fn visit(
        n: &str,
        g: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        path: &mut Vec<String>,
    ) {
        match state.get(n) {
            Some(2) => return,
            Some(1) => panic!("an import cycle: {} → {n}", path.join(" → ")),
            _ => {}
        }
        state.insert(n.to_string(), 1);
        path.push(n.to_string());
        for d in g.get(n).into_iter().flatten() {
            visit(d, g, state, path);
        }
        path.pop();
        state.insert(n.to_string(), 2);
    }
    let mut state = BTreeMap::new();
    for n in edges.keys() {
        visit(n, &edges, &mut state, &mut vec![]);
    }
    assert!(edges.contains_key("jobs") && edges["jobs"].contains("plan"), "{edges:?}");
}
