//! Key paths such as `routes[0].weights.canary`: how errors name the place they are about.

use std::collections::HashMap;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// Appends a table key to `parent`, quoting keys that are not bare TOML keys.
pub(crate) fn child(parent: &str, key: &str) -> String {
    let bare = !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    let key = if bare { key.to_owned() } else { format!("{key:?}") };
    if parent.is_empty() {
        key
    } else {
        format!("{parent}.{key}")
    }
}

/// Appends an array index to `parent`.
pub(crate) fn index(parent: &str, i: usize) -> String {
    format!("{parent}[{i}]")
}

/// The key path of the smallest key or value in a parsed document that contains byte `offset`; empty if none.
pub(crate) fn at_offset(root: &Spanned<DeTable<'_>>, offset: usize) -> String {
    let mut best: Option<(usize, String)> = None;
    walk_table(root.get_ref(), "", offset, &mut best);
    best.map(|(_, path)| path).unwrap_or_default()
}

fn consider(span: std::ops::Range<usize>, path: &str, offset: usize, best: &mut Option<(usize, String)>) {
    // An empty span (end of input) still counts when the offset sits on it.
    let contains = span.contains(&offset) || (span.is_empty() && span.start == offset);
    if contains && best.as_ref().is_none_or(|(len, _)| span.len() <= *len) {
        *best = Some((span.len(), path.to_owned()));
    }
}

fn walk_table(table: &DeTable<'_>, path: &str, offset: usize, best: &mut Option<(usize, String)>) {
    for (key, value) in table {
        let path = child(path, key.get_ref());
        consider(key.span(), &path, offset, best);
        walk_value(value, &path, offset, best);
    }
}

fn walk_value(value: &Spanned<DeValue<'_>>, path: &str, offset: usize, best: &mut Option<(usize, String)>) {
    consider(value.span(), path, offset, best);
    match value.get_ref() {
        DeValue::Table(table) => walk_table(table, path, offset, best),
        DeValue::Array(array) => {
            for (i, item) in array.iter().enumerate() {
                walk_value(item, &index(path, i), offset, best);
            }
        }
        _ => {}
    }
}

/// A best guess at the key path for a syntax error at byte `offset`, from the table headers and `key =` lines
/// before it, for text that does not parse into a tree.
pub(crate) fn from_lines(text: &str, offset: usize) -> String {
    let mut table = String::new();
    let mut array_counts: HashMap<String, usize> = HashMap::new();
    let mut line_start = 0;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim();
        let header = if let Some(name) = trimmed.strip_prefix("[[").and_then(|rest| rest.split_once("]]")) {
            let name = name.0.trim().to_owned();
            let count = array_counts.entry(name.clone()).or_default();
            *count += 1;
            Some(index(&name, *count - 1))
        } else {
            trimmed
                .strip_prefix('[')
                .and_then(|rest| rest.split_once(']'))
                .map(|(name, _)| name.trim().to_owned())
        };
        let is_error_line = offset < line_start + line.len() || line_start + line.len() == text.len();
        if let Some(header) = header {
            table = header;
            if is_error_line {
                return table;
            }
        } else if is_error_line {
            return match trimmed.split_once('=') {
                Some((key, _)) if !key.trim().is_empty() => {
                    let key = key.trim();
                    if table.is_empty() {
                        key.to_owned()
                    } else {
                        format!("{table}.{key}")
                    }
                }
                _ => table,
            };
        }
        line_start += line.len();
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn child_quotes_odd_keys() {
        assert_eq!(child("", "upstreams"), "upstreams");
        assert_eq!(child("upstreams", "blue"), "upstreams.blue");
        assert_eq!(child("upstreams", "a.b"), "upstreams.\"a.b\"");
    }

    #[test]
    fn from_lines_uses_headers_and_keys() {
        let text = "[listen]\nhttp = []\n[[routes]]\nname = 'a'\n[[routes]]\nweights = {\n";
        let at = |needle: &str| text.find(needle).expect("needle in text");
        assert_eq!(from_lines(text, at("http")), "listen.http");
        assert_eq!(from_lines(text, at("name")), "routes[0].name");
        assert_eq!(from_lines(text, at("weights")), "routes[1].weights");
        assert_eq!(from_lines(text, text.len()), "routes[1].weights");
    }

    #[test]
    fn at_offset_finds_array_items() {
        let text = "[upstreams.blue]\nservers = ['a:1', 'b:2']\n";
        let tree = DeTable::parse(text).expect("valid TOML");
        assert_eq!(
            at_offset(&tree, text.find("'b").expect("b")),
            "upstreams.blue.servers[1]"
        );
        assert_eq!(
            at_offset(&tree, text.find("servers").expect("key")),
            "upstreams.blue.servers"
        );
    }
}
