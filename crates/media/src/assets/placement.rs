//! Where an asset's bytes live, decided by the server and never by the client: a backend and a
//! key template whose fields the gateway fills in — the owner, the module, the content hash
//! (whole or a slice of it, for fan-out), the extension of the sniffed type, a post id and a
//! sanitised file name.
//!
//! `{hash:2}/{hash:2:2}/{hash}` is the content-addressed layout (`9f/86/9f86d0…`): two owners
//! of the same bytes share one object. A template that names `{user}` gives each owner their
//! own object, e.g. `private/{user}/{module}/{hash}.{ext}`.

use super::Visibility;
use std::fmt;

/// The content-addressed layout, the default placement's key.
pub const CONTENT_ADDRESSED: &str = "{hash:2}/{hash:2:2}/{hash}";

/// Longest key a template may render (S3 allows 1024 bytes).
const MAX_KEY_LEN: usize = 1024;

/// Longest `{name}` after sanitising.
const MAX_NAME_LEN: usize = 128;

/// One field of a template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    User,
    Module,
    /// `len` hex digits of the hash from `start` (`None`: to the end).
    Hash {
        start: usize,
        len: Option<usize>,
    },
    Ext,
    Post,
    Name,
}

/// A part of a template: literal text or a field.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Field(Field),
}

/// A parsed key template such as `private/{user}/{module}/{hash}.{ext}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyTemplate {
    source: String,
    parts: Vec<Part>,
}

/// What the server knows when it places an asset: every field a template may name.
#[derive(Debug, Clone, Default)]
pub struct PlacementFields<'a> {
    /// The owner (from the credential, never from the client's path or body).
    pub user: &'a str,
    /// The module (from the route or a claim).
    pub module: &'a str,
    /// SHA-256 of the bytes, 64 lower-case hex digits.
    pub hash: &'a str,
    /// The media type sniffed from the bytes (its extension is `{ext}`).
    pub media_type: &'a str,
    /// A post or object id the caller supplied (checked to be one safe segment).
    pub post: Option<&'a str>,
    /// The file name the client gave (sanitised before use).
    pub name: Option<&'a str>,
}

/// Why a template could not be rendered for an asset.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlacementError {
    /// A field the template names has no value, or a value that is not one safe segment.
    #[error("{field}: {reason}")]
    Field {
        /// The field, e.g. `user`.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The rendered key is too long.
    #[error("the key would be {0} bytes long; at most {MAX_KEY_LEN} are allowed")]
    TooLong(usize),
}

impl KeyTemplate {
    /// Parses `text`; the message says what is wrong (for the config's problems list).
    pub fn parse(text: &str) -> Result<KeyTemplate, String> {
        if text.is_empty() {
            return Err("must not be empty".into());
        }
        if text.starts_with('/') || text.ends_with('/') {
            return Err("must not start or end with `/`".into());
        }
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find(['{', '}']) {
            if rest.as_bytes()[open] == b'}' {
                return Err("has a `}` without a `{`".into());
            }
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_string()));
            }
            let close = rest[open..]
                .find('}')
                .ok_or_else(|| "has a `{` without a `}`".to_string())?;
            parts.push(Part::Field(field(&rest[open + 1..open + close])?));
            rest = &rest[open + close + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_string()));
        }
        // The template's shape, each field standing as one non-empty, dot-free word.
        let mut shape = String::new();
        for part in &parts {
            match part {
                Part::Text(t) => {
                    literal(t)?;
                    shape.push_str(t);
                }
                Part::Field(_) => shape.push('f'),
            }
        }
        if shape.contains("//") {
            return Err("must not hold an empty segment (`//`)".into());
        }
        if shape.split('/').any(|s| s == "." || s == "..") {
            return Err("must not hold `.` or `..` segments".into());
        }
        if !parts
            .iter()
            .any(|p| matches!(p, Part::Field(Field::Hash { .. } | Field::Name)))
        {
            return Err(
                "must name {hash} or {name}, or every asset would be written to one key".into(),
            );
        }
        Ok(KeyTemplate {
            source: text.to_string(),
            parts,
        })
    }

    /// The template as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether the key depends only on the bytes (no owner, module, post or name): then every
    /// owner of the same bytes shares one object.
    pub fn content_addressed(&self) -> bool {
        self.parts.iter().all(|p| match p {
            Part::Text(_) => true,
            Part::Field(f) => matches!(f, Field::Hash { .. } | Field::Ext),
        })
    }

    /// The object key for `fields`.
    pub fn render(&self, fields: &PlacementFields<'_>) -> Result<String, PlacementError> {
        let mut key = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => key.push_str(t),
                Part::Field(f) => key.push_str(&value(*f, fields)?),
            }
        }
        if key.len() > MAX_KEY_LEN {
            return Err(PlacementError::TooLong(key.len()));
        }
        Ok(key)
    }
}

impl fmt::Display for KeyTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

/// The field `{inner}` names.
fn field(inner: &str) -> Result<Field, String> {
    let mut words = inner.split(':');
    let name = words.next().unwrap_or_default();
    let numbers: Vec<&str> = words.collect();
    let plain = |f: Field| {
        if numbers.is_empty() {
            Ok(f)
        } else {
            Err(format!("{{{name}}} takes no `:` arguments"))
        }
    };
    match name {
        "user" => plain(Field::User),
        "module" => plain(Field::Module),
        "ext" => plain(Field::Ext),
        "post" => plain(Field::Post),
        "name" => plain(Field::Name),
        "hash" => {
            let n = |t: &str| {
                t.parse::<usize>()
                    .ok()
                    .filter(|n| *n <= 64)
                    .ok_or_else(|| format!("`{t}` in {{{inner}}} is not a number from 0 to 64"))
            };
            let (start, len) = match numbers.as_slice() {
                [] => (0, None),
                [len] => (0, Some(n(len)?)),
                [start, len] => (n(start)?, Some(n(len)?)),
                _ => {
                    return Err(format!(
                        "{{{inner}}}: use {{hash}}, {{hash:LEN}} or {{hash:START:LEN}}"
                    ))
                }
            };
            if len == Some(0) || start + len.unwrap_or(1) > 64 {
                return Err(format!("{{{inner}}} is not a slice of the 64 hex digits"));
            }
            Ok(Field::Hash { start, len })
        }
        other => Err(format!(
            "{{{other}}} is not a field; use {{user}}, {{module}}, {{hash}}, {{hash:2}}, \
             {{hash:2:2}}, {{ext}}, {{post}} or {{name}}"
        )),
    }
}

/// Checks a template's literal text: key characters only.
fn literal(text: &str) -> Result<(), String> {
    match text
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "/-_.=+".contains(*c)))
    {
        Some(c) => Err(format!(
            "`{c}` is not allowed in a key template; use letters, digits and / - _ . = +"
        )),
        None => Ok(()),
    }
}

/// The text of `f` for `fields`.
fn value(f: Field, fields: &PlacementFields<'_>) -> Result<String, PlacementError> {
    match f {
        Field::User => segment("user", Some(fields.user)),
        Field::Module => segment("module", Some(fields.module)),
        Field::Post => segment("post", fields.post),
        Field::Hash { start, len } => {
            let hash = fields.hash;
            if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(PlacementError::Field {
                    field: "hash",
                    reason: "is not a SHA-256 in hex".into(),
                });
            }
            let end = len.map_or(64, |l| start + l);
            Ok(hash[start..end].to_ascii_lowercase())
        }
        Field::Ext => Ok(extension(fields.media_type).to_string()),
        Field::Name => Ok(sanitised_name(fields.name.unwrap_or_default())),
    }
}

/// Checks that an owner's or module's name (`field`) could stand as one key segment, whether
/// or not the placement names it: so the same names are valid under every placement.
pub fn check_segment(field: &'static str, value: &str) -> Result<(), PlacementError> {
    segment(field, Some(value)).map(|_| ())
}

/// `value` as one key segment: present, not empty, no `/`, no `.`/`..`, key characters only.
fn segment(field: &'static str, value: Option<&str>) -> Result<String, PlacementError> {
    let bad = |reason: &str| PlacementError::Field {
        field,
        reason: reason.to_string(),
    };
    let value = value.ok_or_else(|| bad("is required by the placement's key template"))?;
    if value.is_empty() {
        return Err(bad("must not be empty"));
    }
    if value == "." || value == ".." {
        return Err(bad("must not be `.` or `..`"));
    }
    if value.len() > MAX_NAME_LEN {
        return Err(bad("is longer than 128 bytes"));
    }
    if !value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-_.=+@".contains(&b))
    {
        return Err(bad(
            "may hold only letters, digits and - _ . = + @ (it is one segment of a key)",
        ));
    }
    Ok(value.to_string())
}

/// A client's file name made safe as one key segment: the last path component, letters,
/// digits, `.`, `-` and `_` kept, runs of anything else become one `-`, no leading dot, at
/// most 128 bytes, never empty (`file`).
pub fn sanitised_name(name: &str) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let mut out = String::new();
    for c in last.chars() {
        if c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-' {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let trimmed = out.trim_start_matches(['.', '-']).trim_end_matches('-');
    let mut name: String = trimmed.chars().take(MAX_NAME_LEN).collect();
    while name.ends_with('.') {
        name.pop();
    }
    if name.is_empty() {
        "file".into()
    } else {
        name
    }
}

/// The file extension of a media type (`bin` for one without a usual extension).
pub fn extension(media_type: &str) -> &'static str {
    match media_type {
        "image/jpeg" => "jpg",
        "image/png" => "png",
        "image/gif" => "gif",
        "image/webp" => "webp",
        "image/avif" => "avif",
        "image/svg+xml" => "svg",
        "application/pdf" => "pdf",
        "text/plain" => "txt",
        "application/json" => "json",
        "video/mp4" => "mp4",
        _ => "bin",
    }
}

/// One placement: the backend an asset's bytes are written to and the key template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// The `s3` or `dir` backend.
    pub backend: String,
    /// The key inside it.
    pub key: KeyTemplate,
}

/// A placement and what it applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlacementRule {
    /// The visibility it places.
    pub visibility: Visibility,
    /// The module it is for (`None`: any).
    pub module: Option<String>,
    /// Where those assets go.
    pub placement: Placement,
}

/// Every placement of the store: the rules in the order written, then the default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placements {
    /// `[[assets.placements]]`, first match wins.
    pub rules: Vec<PlacementRule>,
    /// `[assets] originals` with `[assets] key`.
    pub default: Placement,
}

impl Placements {
    /// Only the default placement.
    pub fn single(default: Placement) -> Placements {
        Placements {
            rules: Vec::new(),
            default,
        }
    }

    /// The placement of an asset of `module` with `visibility`: the first rule for that
    /// visibility whose module is the same or unset, else the default.
    pub fn choose(&self, visibility: Visibility, module: &str) -> &Placement {
        self.rules
            .iter()
            .find(|r| r.visibility == visibility && r.module.as_deref().is_none_or(|m| m == module))
            .map_or(&self.default, |r| &r.placement)
    }

    /// Every backend a placement writes to, the default's first, each once.
    pub fn backends(&self) -> Vec<&str> {
        let mut out = vec![self.default.backend.as_str()];
        for r in &self.rules {
            if !out.contains(&r.placement.backend.as_str()) {
                out.push(&r.placement.backend);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    fn fields() -> PlacementFields<'static> {
        PlacementFields {
            user: "alice",
            module: "avatars",
            hash: HASH,
            media_type: "image/png",
            post: Some("p-17"),
            name: Some("../My Holiday (1).PNG"),
        }
    }

    #[test]
    fn the_content_addressed_layout_fans_out_by_the_hash() {
        let t = KeyTemplate::parse(CONTENT_ADDRESSED).unwrap();
        assert!(t.content_addressed());
        assert_eq!(t.render(&fields()).unwrap(), format!("9f/86/{HASH}"));
    }

    #[test]
    fn server_fields_fill_the_template() {
        let t = KeyTemplate::parse("private/{user}/{module}/{hash}.{ext}").unwrap();
        assert!(!t.content_addressed());
        assert_eq!(
            t.render(&fields()).unwrap(),
            format!("private/alice/avatars/{HASH}.png")
        );
        let t = KeyTemplate::parse("public/shared/{user}/{post}/{name}").unwrap();
        assert_eq!(
            t.render(&fields()).unwrap(),
            "public/shared/alice/p-17/My-Holiday-1-.PNG"
        );
    }

    #[test]
    fn names_are_made_one_safe_segment() {
        assert_eq!(sanitised_name("../../etc/passwd"), "passwd");
        assert_eq!(sanitised_name("C:\\x\\a b.jpg"), "a-b.jpg");
        assert_eq!(sanitised_name(".."), "file");
        assert_eq!(sanitised_name(".hidden"), "hidden");
        assert_eq!(sanitised_name("日本.png"), "png");
        assert_eq!(sanitised_name(""), "file");
        assert_eq!(sanitised_name(&"x".repeat(500)).len(), 128);
    }

    #[test]
    fn fields_that_could_leave_the_placement_are_refused() {
        let t = KeyTemplate::parse("private/{user}/{hash}").unwrap();
        for user in ["", "..", "a/b", "a b", "ä"] {
            let mut f = fields();
            f.user = user;
            assert!(
                matches!(
                    t.render(&f),
                    Err(PlacementError::Field { field: "user", .. })
                ),
                "{user:?}"
            );
        }
        let t = KeyTemplate::parse("{post}/{hash}").unwrap();
        let mut f = fields();
        f.post = None;
        assert!(t.render(&f).is_err());
        let mut f = fields();
        f.hash = "zz";
        assert!(KeyTemplate::parse("{hash}").unwrap().render(&f).is_err());
    }

    #[test]
    fn bad_templates_say_what_is_wrong() {
        for (text, says) in [
            ("", "empty"),
            ("/{hash}", "start or end"),
            ("{hash}/", "start or end"),
            ("a/{hash", "without a `}`"),
            ("a}/{hash}", "without a `{`"),
            ("{owner}/{hash}", "not a field"),
            ("{user:2}/{hash}", "no `:`"),
            ("{hash:65}", "0 to 64"),
            ("{hash:63:2}", "slice"),
            ("{hash:0}", "slice"),
            ("{hash:1:2:3}", "START:LEN"),
            ("a//{hash}", "empty segment"),
            ("../{hash}", "`..`"),
            ("a/./{hash}", "`..`"),
            ("{hash}/..", "`..`"),
            ("a b/{hash}", "not allowed"),
            ("{user}/{module}", "{hash} or {name}"),
        ] {
            let e = KeyTemplate::parse(text).unwrap_err();
            assert!(e.contains(says), "{text}: {e}");
        }
    }

    #[test]
    fn the_first_matching_rule_places_else_the_default() {
        let p = |b: &str, k: &str| Placement {
            backend: b.into(),
            key: KeyTemplate::parse(k).unwrap(),
        };
        let placements = Placements {
            rules: vec![
                PlacementRule {
                    visibility: Visibility::Private,
                    module: Some("avatars".into()),
                    placement: p("avatars", "{user}/{hash}"),
                },
                PlacementRule {
                    visibility: Visibility::Private,
                    module: None,
                    placement: p("private", "private/{user}/{module}/{hash}.{ext}"),
                },
                PlacementRule {
                    visibility: Visibility::AdminPrivate,
                    module: None,
                    placement: p("admin", CONTENT_ADDRESSED),
                },
            ],
            default: p("originals", CONTENT_ADDRESSED),
        };
        assert_eq!(
            placements.choose(Visibility::Private, "avatars").backend,
            "avatars"
        );
        assert_eq!(
            placements.choose(Visibility::Private, "docs").backend,
            "private"
        );
        assert_eq!(
            placements.choose(Visibility::AdminPrivate, "x").backend,
            "admin"
        );
        assert_eq!(
            placements.choose(Visibility::Public, "avatars").backend,
            "originals"
        );
        assert_eq!(
            placements.backends(),
            vec!["originals", "avatars", "private", "admin"]
        );
    }
}
