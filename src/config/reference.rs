//! The configuration key reference (`docs/reference/config-keys.md`), made from the doc
//! comments of the structs the config file is read into ([`super::raw`]), so the reference
//! cannot drift from what the gateway accepts: a test fails when the file differs from what
//! [`markdown`] makes, and `ASSETGATE_WRITE_DOCS=1 cargo test config_keys_reference` writes
//! it anew.

/// The sources the reference is made from: the application's own sections, then each
/// domain's, in the order the reference lists them.
const SOURCES: &[&str] = &[
    include_str!("raw.rs"),
    include_str!("../../crates/limits/src/config.rs"),
    include_str!("../../crates/origins/src/config.rs"),
    include_str!("../../crates/access/src/config.rs"),
    include_str!("../../crates/routing/src/config.rs"),
    include_str!("../../crates/cache/src/config.rs"),
    include_str!("../../crates/media/src/config.rs"),
];

/// One struct of [`super::raw`]: its doc comment and its keys.
struct Section {
    /// The struct's doc comment, lines joined.
    doc: String,
    /// Each field: key, value type as a user writes it, required, doc comment.
    keys: Vec<(String, String, bool, String)>,
}

/// The reference as Markdown: one section per struct of the config file, in source order.
pub fn markdown() -> String {
    let mut out = String::from(
        "# Configuration keys\n\n\
         Every key the configuration file takes, section by section, with the type it is \
         written as. This page is generated from the doc comments of the structs the file is \
         read into (`src/config/raw.rs` and each domain crate's `config.rs`); `cargo test` fails when it is out of date, and \
         `ASSETGATE_WRITE_DOCS=1 cargo test config_keys_reference` writes it anew. Defaults and \
         examples in context are in the [configuration guide](../configuration.md); \
         `assetgate check -c FILE` reports every unknown or invalid key with its path.\n",
    );
    for section in sections() {
        let (title, rest) = split_title(&section.doc);
        out.push_str(&format!("\n## {title}\n\n"));
        if !rest.is_empty() {
            out.push_str(&format!("{}\n\n", plain(&rest)));
        }
        if section.keys.is_empty() {
            out.push_str("No keys.\n");
            continue;
        }
        out.push_str("| key | written as | |\n| --- | --- | --- |\n");
        for (key, kind, required, doc) in &section.keys {
            let required = if *required { " (required)" } else { "" };
            out.push_str(&format!(
                "| `{key}` | {kind}{required} | {} |\n",
                plain(doc).replace('|', "\\|")
            ));
        }
    }
    out
}

/// A struct's doc comment as a heading and the rest: what comes before the first `: `
/// (`` `[server]` ``, `` `[backends.NAME]` with `kind = "s3"` ``), or the whole comment when it
/// is one short sentence.
fn split_title(doc: &str) -> (String, String) {
    match doc.split_once(": ") {
        Some((title, rest)) if title.len() < 80 => (title.to_string(), capitalise(rest)),
        _ if doc.len() < 80 => (doc.trim_end_matches('.').to_string(), String::new()),
        _ => (String::from("More keys"), doc.to_string()),
    }
}

/// A doc comment without rustdoc's link brackets (`` [`RawTls`] `` reads `` `RawTls` ``).
fn plain(doc: &str) -> String {
    doc.replace("[`", "`").replace("`]", "`")
}

fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The `Raw…` structs of the sources, which the file is read into, in order (the whole file's
/// `RawConfig`, which only holds the sections, is left out).
fn sections() -> Vec<Section> {
    let mut out = Vec::new();
    let mut doc: Vec<&str> = Vec::new();
    let mut default = false;
    let mut current: Option<Section> = None;
    for line in SOURCES.iter().flat_map(|source| source.lines()) {
        let trimmed = line.trim();
        if let Some(text) = trimmed.strip_prefix("///") {
            doc.push(text.trim());
            continue;
        }
        if trimmed.starts_with("#[serde(default") {
            default = true;
            continue;
        }
        if trimmed.starts_with("#[") || trimmed.starts_with("//") {
            continue;
        }
        if let Some(rest) = line.strip_prefix("pub struct ") {
            let name = rest.split([' ', '{']).next().unwrap_or_default();
            let section = Section {
                doc: doc.join(" "),
                keys: Vec::new(),
            };
            // Only what the file is read into (`Raw…`): a source's checked settings are not
            // keys anyone writes.
            if name.starts_with("Raw") && name != "RawConfig" {
                current = Some(section);
            }
            if rest.trim_end().ends_with("{}") {
                out.extend(current.take());
            }
        } else if line.starts_with('}') {
            out.extend(current.take());
        } else if let (Some(section), Some(field)) =
            (current.as_mut(), trimmed.strip_prefix("pub "))
        {
            if let Some((key, ty)) = field.split_once(": ") {
                let ty = ty.trim_end_matches(',');
                let required = !ty.starts_with("Option<") && !default;
                section
                    .keys
                    .push((key.to_string(), written_as(ty), required, doc.join(" ")));
            }
        }
        doc.clear();
        default = false;
    }
    out
}

/// How a user writes a value of the Rust type `ty`.
fn written_as(ty: &str) -> String {
    let ty = ty
        .strip_prefix("Option<")
        .and_then(|t| t.strip_suffix('>'))
        .unwrap_or(ty);
    if let Some(inner) = ty.strip_prefix("Vec<").and_then(|t| t.strip_suffix('>')) {
        return match inner {
            "toml::Value" => "array of tables".to_string(),
            t if t.starts_with("Raw") => "array of tables".to_string(),
            t => format!("array of {}", plural(&written_as(t))),
        };
    }
    if ty.starts_with("BTreeMap<String, ") {
        return match ty
            .trim_start_matches("BTreeMap<String, ")
            .trim_end_matches('>')
        {
            "i64" => "table of integers by name".to_string(),
            _ => "table of tables by name".to_string(),
        };
    }
    match ty {
        "String" => "text",
        "bool" => "true or false",
        "u8" | "u16" | "u32" | "u64" | "usize" | "i64" => "integer",
        "f64" => "number",
        "PathBuf" => "path (relative to the file's folder)",
        "RawSecret" => "secret: `{ env = \"VAR\" }` or `{ file = \"PATH\" }`",
        "RawRate" => "`{ rate = N, burst = N }`",
        "toml::Value" => "table",
        t if t.starts_with("Raw") => "table",
        other => other,
    }
    .to_string()
}

fn plural(word: &str) -> String {
    match word {
        "text" => "texts".to_string(),
        "integer" => "integers".to_string(),
        "path (relative to the file's folder)" => {
            "paths (relative to the file's folder)".to_string()
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference in the repository is the one the structs make.
    #[test]
    fn config_keys_reference() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/reference/config-keys.md");
        let made = markdown();
        if std::env::var_os("ASSETGATE_WRITE_DOCS").is_some() {
            std::fs::create_dir_all(std::path::Path::new(path).parent().unwrap()).unwrap();
            std::fs::write(path, &made).unwrap();
        }
        let written = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            written == made,
            "{path} is out of date: run ASSETGATE_WRITE_DOCS=1 cargo test config_keys_reference"
        );
    }

    #[test]
    fn every_key_of_a_kind_is_in_the_reference() {
        let made = markdown();
        for key in [
            "bucket",
            "addresses",
            "root",
            "health_check_path",
            "key_prefix",
        ] {
            assert!(made.contains(&format!("| `{key}` |")), "{key}");
        }
        assert!(
            made.contains("## `[backends.NAME]` with `kind = \"s3\"`"),
            "{made}"
        );
        assert!(made.contains("## `[backends.NAME]` with `kind = \"variants\"`"));
        // Checked settings beside the raw structs (the declared key counts, `[assets]` as
        // validated) are no keys anyone writes.
        for internal in [
            "hmac_keys",
            "placement_backends",
            "lookup_entries` | integer (required)",
        ] {
            assert!(!made.contains(&format!("| `{internal}")), "{internal}");
        }
    }
}
