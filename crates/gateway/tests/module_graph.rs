//! Modules inside the gateway import in one direction only: this reads
//! src/ and fails on any loop of `crate::`, `super::` or child references.
//!
//! A module is a file (`x.rs`, `x/mod.rs`); lib.rs is the face and is left
//! out, and a path through one of its `pub use` names counts as a path to
//! the module it re-exports. Inline `#[cfg(test)] mod tests` are left out.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Module = Vec<String>;

#[test]
fn modules_import_in_one_direction() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = Graph::read(&src);
    if std::env::var_os("CANDOR_MODULE_GRAPH").is_some() {
        for (from, targets) in &graph.edges {
            for (to, why) in targets {
                println!("{from} -> {to}  ({why})");
            }
        }
    }
    let loops = graph.loops();
    assert!(
        loops.is_empty(),
        "modules that import each other (move the shared item down, or into a module of its own):\n{}",
        loops.join("\n")
    );
}

/// Every module and, for each, the modules it names with the line that does.
struct Graph {
    edges: BTreeMap<String, BTreeMap<String, String>>,
}

impl Graph {
    fn read(src: &Path) -> Graph {
        let mut files = Vec::new();
        walk(src, &mut files);
        let modules: BTreeMap<Module, PathBuf> = files
            .iter()
            .map(|file| (module_of(src, file), file.clone()))
            .collect();
        let reexports = reexports(&code(&read(&src.join("lib.rs"))));
        let mut edges: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for (module, file) in &modules {
            if module.is_empty() {
                continue;
            }
            let name = module.join("::");
            let targets = edges.entry(name.clone()).or_default();
            let text = code(&read(file));
            let children: BTreeSet<&str> = modules
                .keys()
                .filter(|m| m.len() == module.len() + 1 && m.starts_with(module))
                .map(|m| m[module.len()].as_str())
                .collect();
            let inline = inline_modules(&text);
            for (at, path) in paths(&text, &children) {
                let depth = inline.iter().filter(|r| r.contains(&at)).count();
                let Some(target) = resolve(module, depth, &path, &modules, &reexports) else {
                    continue;
                };
                if target.is_empty() || &target == module {
                    continue;
                }
                let line = text[..at].matches('\n').count() + 1;
                let rel = file.strip_prefix(src).unwrap_or(file).display();
                targets
                    .entry(target.join("::"))
                    .or_insert_with(|| format!("{rel}:{line} {}", path.join("::")));
            }
        }
        Graph { edges }
    }

    /// Each strongly connected group of more than one module, with the
    /// references that tie it.
    fn loops(&self) -> Vec<String> {
        let names: Vec<&String> = self.edges.keys().collect();
        let index: BTreeMap<&String, usize> =
            names.iter().enumerate().map(|(i, n)| (*n, i)).collect();
        let adj: Vec<Vec<usize>> = names
            .iter()
            .map(|n| {
                self.edges[*n]
                    .keys()
                    .filter_map(|t| index.get(t).copied())
                    .collect()
            })
            .collect();
        let mut out = Vec::new();
        for group in components(&adj) {
            if group.len() < 2 {
                continue;
            }
            let members: BTreeSet<&String> = group.iter().map(|&i| names[i]).collect();
            let mut text = format!(
                "loop: {}",
                members
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            for from in &members {
                for (to, why) in &self.edges[*from] {
                    if members.contains(to) {
                        text.push_str(&format!("\n    {from} -> {to}  ({why})"));
                    }
                }
            }
            out.push(text);
        }
        out
    }
}

/// Tarjan's strongly connected components, iteratively.
fn components(adj: &[Vec<usize>]) -> Vec<Vec<usize>> {
    let n = adj.len();
    let (mut index, mut low, mut on) = (vec![usize::MAX; n], vec![0; n], vec![false; n]);
    let (mut stack, mut out, mut next) = (Vec::new(), Vec::new(), 0);
    for root in 0..n {
        if index[root] != usize::MAX {
            continue;
        }
        let mut work = vec![(root, 0usize)];
        while let Some(&mut (v, ref mut edge)) = work.last_mut() {
            if *edge == 0 {
                index[v] = next;
                low[v] = next;
                next += 1;
                stack.push(v);
                on[v] = true;
            }
            if let Some(&w) = adj[v].get(*edge) {
                *edge += 1;
                if index[w] == usize::MAX {
                    work.push((w, 0));
                } else if on[w] {
                    low[v] = low[v].min(index[w]);
                }
                continue;
            }
            work.pop();
            if let Some(&(parent, _)) = work.last() {
                low[parent] = low[parent].min(low[v]);
            }
            if low[v] == index[v] {
                let mut group = Vec::new();
                while let Some(w) = stack.pop() {
                    on[w] = false;
                    group.push(w);
                    if w == v {
                        break;
                    }
                }
                out.push(group);
            }
        }
    }
    out
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("src/ is readable")
        .map(|e| e.expect("a directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            walk(&path, files);
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
}

fn read(file: &Path) -> String {
    std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
}

/// `x/y.rs` and `x/y/mod.rs` are `[x, y]`; lib.rs is `[]`.
fn module_of(src: &Path, file: &Path) -> Module {
    let rel = file.strip_prefix(src).expect("a file under src/");
    let mut parts: Module = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().unwrap_or_default();
    match last.as_str() {
        "lib.rs" | "mod.rs" => {}
        other => parts.push(other.trim_end_matches(".rs").to_owned()),
    }
    parts
}

/// The source with comments, string and char literals blanked (lines
/// kept) and inline test modules removed.
fn code(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let blank = |out: &mut String, s: &[u8]| {
        for &c in s {
            out.push(if c == b'\n' { '\n' } else { ' ' });
        }
    };
    while i < b.len() {
        let rest = &b[i..];
        let end = if rest.starts_with(b"//") {
            rest.iter().position(|&c| c == b'\n').unwrap_or(rest.len())
        } else if rest.starts_with(b"r#\"") || rest.starts_with(b"br#\"") {
            let open = rest.iter().position(|&c| c == b'"').unwrap_or(0) + 1;
            open + find(&rest[open..], b"\"#").map_or(rest.len() - open, |e| e + 2)
        } else if rest[0] == b'"' {
            let mut j = 1;
            while j < rest.len() && rest[j] != b'"' {
                j += if rest[j] == b'\\' { 2 } else { 1 };
            }
            (j + 1).min(rest.len())
        } else if rest[0] == b'\'' && rest.get(1) == Some(&b'\\') {
            rest[2..]
                .iter()
                .position(|&c| c == b'\'')
                .map_or(1, |e| e + 3)
        } else if rest[0] == b'\'' && rest.get(2) == Some(&b'\'') {
            3
        } else {
            0
        };
        if end == 0 {
            out.push(rest[0] as char);
            i += 1;
        } else {
            blank(&mut out, &rest[..end]);
            i += end;
        }
    }
    drop_test_modules(&out)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn drop_test_modules(text: &str) -> String {
    let mut out = text.to_owned();
    while let Some(start) = out.find("#[cfg(test)]") {
        let after = &out[start + "#[cfg(test)]".len()..];
        let trimmed = after.trim_start();
        if !trimmed.starts_with("mod ") {
            // Not a module: blank the attribute alone.
            out.replace_range(start..start + 12, &" ".repeat(12));
            continue;
        }
        let open = start + 12 + (after.len() - trimmed.len()) + trimmed.find('{').unwrap_or(0);
        let mut depth = 0;
        let mut end = out.len();
        for (j, c) in out[open..].char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = open + j + 1;
                        break;
                    }
                }
                _ => {}
            }
        }
        let blanked: String = out[start..end]
            .chars()
            .map(|c| if c == '\n' { '\n' } else { ' ' })
            .collect();
        out.replace_range(start..end, &blanked);
    }
    out
}

/// Every path that starts at `crate`, `super`, `self` or a child module,
/// with `{...}` groups expanded, and where it starts.
fn paths(text: &str, children: &BTreeSet<&str>) -> Vec<(usize, Vec<String>)> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if !is_ident(b[i]) || (i > 0 && (is_ident(b[i - 1]) || b[i - 1] == b':')) {
            i += 1;
            continue;
        }
        let word_end = i + b[i..].iter().take_while(|&&c| is_ident(c)).count();
        let word = &text[i..word_end];
        let root = matches!(word, "crate" | "super" | "self") || children.contains(word);
        if root && text[word_end..].starts_with("::") {
            let mut found = Vec::new();
            let end = path_at(text, i, Vec::new(), &mut found);
            out.extend(found.into_iter().map(|p| (i, p)));
            i = end.max(word_end);
        } else {
            i = word_end;
        }
    }
    out
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// Reads `a::b::{c, d::e}` at `at`; returns where it ends.
fn path_at(
    text: &str,
    mut at: usize,
    mut prefix: Vec<String>,
    found: &mut Vec<Vec<String>>,
) -> usize {
    let b = text.as_bytes();
    let skip_space = |mut at: usize| {
        while at < b.len() && b[at].is_ascii_whitespace() {
            at += 1;
        }
        at
    };
    loop {
        at = skip_space(at);
        if at < b.len() && b[at] == b'{' {
            at += 1;
            loop {
                at = skip_space(at);
                if at >= b.len() || b[at] == b'}' {
                    return at + 1;
                }
                at = path_at(text, at, prefix.clone(), found);
                at = skip_space(at);
                if at < b.len() && b[at] == b',' {
                    at += 1;
                }
            }
        }
        let len = b[at..].iter().take_while(|&&c| is_ident(c)).count();
        if len == 0 {
            // `*` or the end of the path.
            if at < b.len() && b[at] == b'*' {
                at += 1;
            }
            found.push(prefix);
            return at;
        }
        let segment = &text[at..at + len];
        at += len;
        if segment != "self" || prefix.is_empty() {
            prefix.push(segment.to_owned());
        }
        let next = skip_space(at);
        if text[next..].starts_with("::") {
            at = next + 2;
        } else {
            // `x as y`: the alias is not a path.
            if text[next..].starts_with("as ") {
                at = next + 3;
                at = skip_space(at);
                at += b[at..].iter().take_while(|&&c| is_ident(c)).count();
            }
            found.push(prefix);
            return at;
        }
    }
}

/// The module a path lands in: its longest prefix that is a module, looked
/// through lib.rs's `pub use` names.
fn resolve(
    from: &Module,
    depth: usize,
    path: &[String],
    modules: &BTreeMap<Module, PathBuf>,
    reexports: &BTreeMap<String, Module>,
) -> Option<Module> {
    let mut segments = path.iter().peekable();
    let mut at: Module = match segments.peek().map(|s| s.as_str()) {
        Some("crate") => {
            segments.next();
            Vec::new()
        }
        Some("self") => {
            segments.next();
            from.clone()
        }
        Some("super") => {
            // Inside an inline module, the first `super`s stay in the file.
            let mut at = from.clone();
            let mut inside = depth;
            while segments.peek().is_some_and(|s| *s == "super") {
                segments.next();
                if inside > 0 {
                    inside -= 1;
                } else {
                    at.pop()?;
                }
            }
            at
        }
        _ => from.clone(),
    };
    let rest: Vec<&String> = segments.collect();
    if at.is_empty()
        && let Some(first) = rest.first()
        && let Some(target) = reexports.get(first.as_str())
    {
        return Some(target.clone());
    }
    let mut best = modules.contains_key(&at).then(|| at.clone());
    for segment in rest {
        at.push(segment.clone());
        if modules.contains_key(&at) {
            best = Some(at.clone());
        } else {
            break;
        }
    }
    best
}

/// Where each inline `mod name { ... }` spans.
fn inline_modules(text: &str) -> Vec<std::ops::Range<usize>> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(found) = text[from..].find("mod ") {
        let start = from + found;
        from = start + 4;
        if start > 0 && is_ident(b[start - 1]) {
            continue;
        }
        let name_len = b[from..].iter().take_while(|&&c| is_ident(c)).count();
        let after = text[from + name_len..].trim_start();
        if name_len == 0 || !after.starts_with('{') {
            continue;
        }
        let open = text.len() - after.len();
        let mut depth = 0;
        for (j, c) in text[open..].char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        out.push(open..open + j + 1);
                        break;
                    }
                }
                _ => {}
            }
        }
    }
    out
}

/// lib.rs's `pub use a::b::{X, Y}`: each name to the module it comes from.
fn reexports(lib: &str) -> BTreeMap<String, Module> {
    let mut out = BTreeMap::new();
    for statement in lib.split(';') {
        let Some(at) = statement.find("pub use ") else {
            continue;
        };
        let mut found = Vec::new();
        path_at(statement, at + "pub use ".len(), Vec::new(), &mut found);
        for mut path in found {
            if let Some(name) = path.pop() {
                out.insert(name, path);
            }
        }
    }
    out
}
