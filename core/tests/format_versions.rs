//! The format versions the docs promise are the ones the code writes.
//!
//! `docs/reference/compatibility.md` and `CHANGELOG.md` each hold a table of
//! every persisted or wire format with its version, between
//! `<!-- format-versions-start -->` and `<!-- format-versions-end -->`. This
//! test reads every `pub const …_VERSION: <integer type> = N;` in `core/src`
//! and requires both tables to list exactly those constants, with their file
//! and value. It also compares the entry kinds the decoder accepts with the
//! kinds table of the compatibility page. So a new format, a version bump or a
//! new entry kind fails here until the docs say so.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("core/ has a parent")
        .to_path_buf()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable source directory") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// (constant, file relative to the repository, value) of every integer
/// `pub const …_VERSION` in core/src.
fn versions_in_code() -> BTreeSet<(String, String, u64)> {
    let root = repo();
    let mut files = Vec::new();
    rust_files(&root.join("core/src"), &mut files);
    let mut found = BTreeSet::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("readable source file");
        let relative = file
            .strip_prefix(&root)
            .expect("inside the repository")
            .to_string_lossy()
            .replace('\\', "/");
        for line in text.lines() {
            let Some(rest) = line.trim().strip_prefix("pub const ") else {
                continue;
            };
            let Some((name, rest)) = rest.split_once(':') else {
                continue;
            };
            let Some((_, value)) = rest.split_once('=') else {
                continue;
            };
            let value = value.trim().trim_end_matches(';');
            if name.ends_with("VERSION") {
                if let Ok(value) = value.parse::<u64>() {
                    found.insert((name.to_owned(), relative.clone(), value));
                }
            }
        }
    }
    // The store's schema version counts its migrations, so it is read from
    // the crate rather than from a literal.
    found.insert((
        "SCHEMA_VERSION".to_owned(),
        "core/src/store.rs".to_owned(),
        u64::try_from(careledger::store::SCHEMA_VERSION).expect("a positive schema version"),
    ));
    found
}

/// The rows between `<!-- {marker}-start -->` and `<!-- {marker}-end -->`,
/// as cells, header and separator rows left out.
fn table(doc: &str, marker: &str) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(repo().join(doc)).unwrap_or_default();
    let start = format!("<!-- {marker}-start -->");
    let end = format!("<!-- {marker}-end -->");
    let Some(after) = text.split_once(&start).map(|(_, after)| after) else {
        panic!("{doc} has no {start} table");
    };
    let body = after
        .split_once(&end)
        .unwrap_or_else(|| panic!("{doc}: {start} without {end}"))
        .0;
    body.lines()
        .filter(|line| line.trim_start().starts_with('|'))
        .skip(2)
        .map(|line| {
            line.trim()
                .trim_matches('|')
                .split('|')
                .map(|cell| cell.trim().to_owned())
                .collect()
        })
        .collect()
}

/// (constant, file, value) of a format table's rows: `| what | N | `file` `CONST` |`.
fn versions_in(doc: &str) -> BTreeSet<(String, String, u64)> {
    table(doc, "format-versions")
        .into_iter()
        .map(|cells| {
            let value = cells[1]
                .parse::<u64>()
                .unwrap_or_else(|_| panic!("{doc}: version {:?} is not a number", cells[1]));
            let code: Vec<&str> = cells[2]
                .split('`')
                .filter(|s| !s.trim().is_empty())
                .collect();
            assert_eq!(
                code.len(),
                2,
                "{doc}: write `file` `CONSTANT`, not {:?}",
                cells[2]
            );
            (code[1].to_owned(), code[0].to_owned(), value)
        })
        .collect()
}

#[test]
fn every_format_version_is_documented_with_its_value() {
    let code = versions_in_code();
    assert!(
        code.iter().any(|(name, _, _)| name == "ENTRY_VERSION"),
        "the scan found the entry format: {code:?}"
    );
    for doc in ["docs/reference/compatibility.md", "CHANGELOG.md"] {
        let documented = versions_in(doc);
        let missing: Vec<_> = code.difference(&documented).collect();
        let stale: Vec<_> = documented.difference(&code).collect();
        assert!(
            missing.is_empty() && stale.is_empty(),
            "{doc}'s format table differs from the code.\n  in the code, not in {doc}: {missing:?}\n  \
             in {doc}, not in the code: {stale:?}\nUpdate the table (and say what changed in the \
             CHANGELOG)."
        );
    }
}

#[test]
fn every_entry_kind_is_documented_with_its_code() {
    use careledger::entry::EntryKind;
    let code: BTreeSet<(u8, String)> = (0..=u8::MAX)
        .filter_map(|n| EntryKind::from_code(n).map(|kind| (n, kind.name().replace('-', " "))))
        .collect();
    let documented: BTreeSet<(u8, String)> =
        table("docs/reference/compatibility.md", "entry-kinds")
            .into_iter()
            .map(|cells| {
                let n = cells[1].parse::<u8>().expect("a kind code");
                (n, cells[0].clone())
            })
            .collect();
    assert_eq!(
        documented, code,
        "docs/reference/compatibility.md's entry kinds differ from EntryKind::from_code"
    );
}
