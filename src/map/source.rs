//! Rust source read as text, for the map's checks: the `mod` declarations of a file, its code
//! without comments, strings and test module, its `use` trees expanded into paths, and the paths
//! it writes inline. No parsing beyond what the checks need; nothing here runs the code.

/// `mod name;` declarations outside `#[cfg(test)]`, with a `#[path = "…"]` when given.
pub(super) fn declared_modules(text: &str) -> Vec<(String, Option<String>)> {
    let mut declared = Vec::new();
    let mut attributes: Vec<&str> = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with("#[") {
            attributes.push(line);
            continue;
        }
        let declaration = line.strip_prefix("pub(crate) ").or(line.strip_prefix("pub ")).unwrap_or(line);
        if let Some(name) = declaration.strip_prefix("mod ").and_then(|r| r.strip_suffix(';')) {
            let for_tests = attributes.iter().any(|a| a.contains("cfg(test)"));
            let path = attributes
                .iter()
                .find_map(|a| a.strip_prefix("#[path = \"").and_then(|p| p.strip_suffix("\"]")))
                .map(str::to_string);
            if !for_tests {
                declared.push((name.trim().to_string(), path));
            }
        }
        attributes.clear();
    }
    declared
}

/// A file's code: up to its test module, without comments and the insides of string literals.
pub(super) fn code_of(text: &str) -> String {
    let mut code = String::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let trimmed = line.trim();
        if trimmed == "#[cfg(test)]" && lines.peek().is_some_and(|next| next.trim_start().starts_with("mod tests")) {
            break;
        }
        code.push_str(&strip_line(line));
        code.push('\n');
    }
    code
}

/// One line without its comment and with its strings emptied.
pub(super) fn strip_line(line: &str) -> String {
    let mut out = String::new();
    let mut chars = line.chars().peekable();
    let mut in_string = false;
    while let Some(c) = chars.next() {
        match (in_string, c) {
            (true, '\\') => {
                chars.next();
            }
            (true, '"') => {
                in_string = false;
                out.push(c);
            }
            (true, _) => {}
            (false, '"') => {
                in_string = true;
                out.push(c);
            }
            (false, '/') if chars.peek() == Some(&'/') => break,
            (false, _) => out.push(c),
        }
    }
    out
}

/// Whether `code` defines `name` itself (an item or a module).
pub(super) fn defines(code: &str, name: &str) -> bool {
    const KINDS: [&str; 10] =
        ["struct", "enum", "fn", "trait", "type", "const", "static", "mod", "union", "macro_rules!"];
    code.lines().any(|line| {
        let mut words = line.split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '!'));
        let mut previous = "";
        words.any(|word| {
            let found = word == name && KINDS.contains(&previous);
            if !word.is_empty() {
                previous = word;
            }
            found
        })
    })
}

/// The statements `use …;` of a file, each as its text after `use`, and whether it is public.
pub(super) fn use_statements(code: &str) -> Vec<(bool, String)> {
    let mut statements = Vec::new();
    let mut rest = code;
    while let Some(at) = find_word(rest, "use") {
        let before = rest[..at].trim_end();
        let public = before.ends_with("pub") || before.ends_with(')') && before.contains("pub(");
        let after = &rest[at + 3..];
        let end = after.find(';').unwrap_or(after.len());
        statements.push((public, after[..end].to_string()));
        rest = &after[end..];
    }
    statements
}

/// Where `word` stands as a whole word at the start of a statement in `text`.
pub(super) fn find_word(text: &str, word: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    text.match_indices(word).map(|(at, _)| at).find(|&at| {
        let before = text[..at].trim_end_matches([' ', '\t']);
        let starts = before.is_empty()
            || before.ends_with(['\n', ';', '{', '}'])
            || before.ends_with("pub")
            || before.ends_with(')') && before.rsplit('\n').next().is_some_and(|l| l.trim_start().starts_with("pub("));
        let after = bytes.get(at + word.len()).copied();
        starts && after.is_some_and(|b| b == b' ' || b == b'\n')
    })
}

/// The paths named by the file's `use` trees (`a::{b, c::d}` -> `a::b`, `a::c::d`).
pub(super) fn use_paths(code: &str) -> Vec<Vec<String>> {
    use_statements(code).into_iter().flat_map(|(_, tree)| expand(&tree)).collect()
}

/// The paths the file re-exports (`pub use …`), with a renamed one under its new name.
pub(super) fn reexports(code: &str) -> Vec<Vec<String>> {
    use_statements(code).into_iter().filter(|(public, _)| *public).flat_map(|(_, tree)| expand(&tree)).collect()
}

/// Expands a use tree into its paths; `x as y` keeps the path to `x` with `y` appended when the
/// alias differs, so that a re-export under a new name is found by that name.
pub(super) fn expand(tree: &str) -> Vec<Vec<String>> {
    let tokens = tokenize(tree);
    let mut paths = Vec::new();
    expand_from(&tokens, &mut 0, &mut Vec::new(), &mut paths);
    paths
}

pub(super) fn tokenize(tree: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut word = String::new();
    for c in tree.chars() {
        if c.is_alphanumeric() || c == '_' || c == '*' {
            word.push(c);
            continue;
        }
        if !word.is_empty() {
            tokens.push(std::mem::take(&mut word));
        }
        if matches!(c, '{' | '}' | ',') {
            tokens.push(c.to_string());
        }
    }
    if !word.is_empty() {
        tokens.push(word);
    }
    tokens
}

/// One list of a use tree, from `tokens[*at]` to its closing brace or the end.
pub(super) fn expand_from(tokens: &[String], at: &mut usize, prefix: &mut Vec<String>, paths: &mut Vec<Vec<String>>) {
    let depth = prefix.len();
    let mut grouped = false;
    let flush = |prefix: &mut Vec<String>, grouped: bool, paths: &mut Vec<Vec<String>>| {
        if prefix.len() > depth && !grouped {
            paths.push(prefix.clone());
        }
        prefix.truncate(depth);
    };
    while *at < tokens.len() {
        let token = tokens[*at].clone();
        *at += 1;
        match token.as_str() {
            "{" => {
                expand_from(tokens, at, prefix, paths);
                grouped = true;
            }
            "}" => return flush(prefix, grouped, paths),
            "," => {
                flush(prefix, grouped, paths);
                grouped = false;
            }
            "as" => {
                if let Some(alias) = tokens.get(*at) {
                    *at += 1;
                    if prefix.last() != Some(alias) && alias != "_" {
                        paths.push(prefix.clone());
                        prefix.pop();
                        prefix.push(alias.clone());
                    }
                }
            }
            _ => prefix.push(token),
        }
    }
    flush(prefix, grouped, paths);
}

/// Paths written in code outside `use` statements: `crate::…`, `super::…`, `self::…`, and
/// `name::…` (kept whole; [`Crate::absolute`] drops those that name no child module).
pub(super) fn inline_paths(code: &str) -> Vec<Vec<String>> {
    let mut without_uses = String::new();
    let mut rest = code;
    while let Some(at) = find_word(rest, "use") {
        without_uses.push_str(&rest[..at]);
        let end = rest[at..].find(';').map_or(rest.len(), |e| at + e + 1);
        rest = &rest[end..];
    }
    without_uses.push_str(rest);
    let mut paths = Vec::new();
    let chars: Vec<char> = without_uses.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let starts_word = i == 0 || !(chars[i - 1].is_alphanumeric() || chars[i - 1] == '_' || chars[i - 1] == ':');
        if !(starts_word && (chars[i].is_ascii_lowercase() || chars[i] == '_')) {
            i += 1;
            continue;
        }
        let mut path = Vec::new();
        let mut j = i;
        loop {
            let start = j;
            while j < chars.len() && (chars[j].is_alphanumeric() || chars[j] == '_') {
                j += 1;
            }
            path.push(chars[start..j].iter().collect::<String>());
            if j + 2 < chars.len() && chars[j] == ':' && chars[j + 1] == ':' && chars[j + 2] != '<' {
                j += 2;
            } else {
                break;
            }
        }
        if path.len() > 1 {
            paths.push(path);
        }
        i = j.max(i + 1);
    }
    paths
}
