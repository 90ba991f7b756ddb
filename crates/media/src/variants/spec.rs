//! The variant URL grammar: `/{content_hash}/{w}x{h}/{q}.{ext}`, with an optional fit mode
//! after the size (`/{hash}/{w}x{h}-contain/{q}.webp`), parsed once into a [`VariantSpec`].
//!
//! `ext` is `webp`, `jpeg` (or `jpg`), `png`, `avif`, or `auto`: the format is then chosen
//! from the request's `Accept` by [`negotiate`], and the chosen one, never the raw header, is
//! part of the variant's key.

use super::limits::VariantLimits;
use super::VariantError;
use std::fmt;

/// Length of a content hash in the URL: SHA-256 as 64 lower-case hex digits.
pub const HASH_LEN: usize = 64;

/// An output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Format {
    /// Lossy WebP (libwebp).
    Webp,
    /// Baseline JPEG, 4:2:0, optimised Huffman tables (mozjpeg).
    Jpeg,
    /// PNG.
    Png,
    /// AVIF (rav1e).
    Avif,
}

impl Format {
    /// Every output format, in the order `auto` prefers them when the client accepts several.
    pub const ALL: [Format; 4] = [Format::Avif, Format::Webp, Format::Jpeg, Format::Png];

    /// The extension and metric label (`jpeg` for JPEG).
    pub fn name(self) -> &'static str {
        match self {
            Format::Webp => "webp",
            Format::Jpeg => "jpeg",
            Format::Png => "png",
            Format::Avif => "avif",
        }
    }

    /// The `Content-Type` of this format.
    pub fn mime(self) -> &'static str {
        match self {
            Format::Webp => "image/webp",
            Format::Jpeg => "image/jpeg",
            Format::Png => "image/png",
            Format::Avif => "image/avif",
        }
    }

    /// The format an extension names (`jpg` is JPEG); `None` for `auto` and anything else.
    pub fn from_ext(ext: &str) -> Option<Format> {
        match ext {
            "webp" => Some(Format::Webp),
            "jpeg" | "jpg" => Some(Format::Jpeg),
            "png" => Some(Format::Png),
            "avif" => Some(Format::Avif),
            _ => None,
        }
    }
}

/// How the source is fitted into `w`×`h`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Fit {
    /// Fill the box exactly, cropping the centre (the default, as sharp's `cover`).
    #[default]
    Cover,
    /// Fit inside the box and pad to exactly `w`×`h` (transparent where the format has alpha,
    /// white otherwise).
    Contain,
    /// Fit inside the box, keeping the aspect ratio; the output may be smaller than the box.
    Inside,
}

impl Fit {
    /// The name written in URLs.
    pub fn name(self) -> &'static str {
        match self {
            Fit::Cover => "cover",
            Fit::Contain => "contain",
            Fit::Inside => "inside",
        }
    }

    fn parse(text: &str) -> Option<Fit> {
        match text {
            "cover" => Some(Fit::Cover),
            "contain" => Some(Fit::Contain),
            "inside" => Some(Fit::Inside),
            _ => None,
        }
    }
}

/// What the URL asked for, before `auto` is resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asked {
    /// One named format.
    Exactly(Format),
    /// Whatever the client accepts best (`auto`).
    Auto,
}

/// One variant: which original, the box, the fit, quality and output format.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct VariantSpec {
    /// The original's content hash (64 lower-case hex digits).
    pub hash: String,
    /// Box width in pixels.
    pub width: u32,
    /// Box height in pixels.
    pub height: u32,
    /// How the source fits the box.
    pub fit: Fit,
    /// Encoder quality, 1–100.
    pub quality: u8,
    /// Output format (already negotiated for `auto`).
    pub format: Format,
    /// Whether the URL said `auto` (the answer then carries `Vary: Accept`).
    pub negotiated: bool,
}

impl VariantSpec {
    /// The canonical path of this variant, as the in-process origin is asked for it: always
    /// the concrete format, the fit spelled out, so two spellings of one variant (`jpg` and
    /// `jpeg`, no fit and `-cover`) are one cache entry and one computation.
    pub fn canonical_path(&self) -> String {
        format!(
            "/{}/{}x{}-{}/{}.{}",
            self.hash,
            self.width,
            self.height,
            self.fit.name(),
            self.quality,
            self.format.name()
        )
    }

    /// A strong entity tag derived from the variant key alone: the same variant of the same
    /// bytes is the same representation on every gateway.
    pub fn etag(&self) -> String {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(self.canonical_path().as_bytes());
        let mut tag = String::with_capacity(34);
        tag.push('"');
        kit::hex::push(&mut tag, &digest[..16]);
        tag.push('"');
        tag
    }
}

impl fmt::Display for VariantSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.canonical_path())
    }
}

/// The parts of a variant path, each checked for shape only (the allowlists come later).
struct Parts<'a> {
    hash: &'a str,
    width: &'a str,
    height: &'a str,
    fit: Option<&'a str>,
    quality: &'a str,
    ext: &'a str,
}

fn split(path: &str) -> Result<Parts<'_>, VariantError> {
    let grammar = || VariantError::Grammar;
    let mut segments = path.trim_start_matches('/').split('/');
    let (Some(hash), Some(size), Some(file), None) = (
        segments.next(),
        segments.next(),
        segments.next(),
        segments.next(),
    ) else {
        return Err(grammar());
    };
    let (dims, fit) = match size.split_once('-') {
        Some((dims, fit)) => (dims, Some(fit)),
        None => (size, None),
    };
    let (width, height) = dims.split_once('x').ok_or_else(grammar)?;
    let (quality, ext) = file.split_once('.').ok_or_else(grammar)?;
    Ok(Parts {
        hash,
        width,
        height,
        fit,
        quality,
        ext,
    })
}

fn number(text: &str) -> Option<u32> {
    if text.is_empty() || text.len() > 5 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// A variant path taken apart and checked for shape (not yet against any allowlist).
struct Shape {
    hash: String,
    width: u32,
    height: u32,
    fit: Fit,
    quality: u32,
    asked: Asked,
}

impl Shape {
    fn spec(self, format: Format) -> VariantSpec {
        VariantSpec {
            negotiated: self.asked == Asked::Auto,
            hash: self.hash,
            width: self.width,
            height: self.height,
            fit: self.fit,
            quality: self.quality as u8,
            format,
        }
    }
}

fn shape(path: &str) -> Result<Shape, VariantError> {
    let parts = split(path)?;
    if parts.hash.len() != HASH_LEN
        || !parts
            .hash
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(VariantError::BadHash);
    }
    let width = number(parts.width).ok_or(VariantError::Grammar)?;
    let height = number(parts.height).ok_or(VariantError::Grammar)?;
    let quality = number(parts.quality).ok_or(VariantError::Grammar)?;
    if width == 0 || height == 0 || !(1..=100).contains(&quality) {
        return Err(VariantError::Grammar);
    }
    let fit = match parts.fit {
        None => Fit::Cover,
        Some(text) => Fit::parse(text).ok_or(VariantError::BadFit)?,
    };
    let asked = match parts.ext {
        "auto" => Asked::Auto,
        ext => Asked::Exactly(Format::from_ext(ext).ok_or(VariantError::BadFormat)?),
    };
    Ok(Shape {
        hash: parts.hash.to_string(),
        width,
        height,
        fit,
        quality,
        asked,
    })
}

/// Parses a variant path (relative to the route: `/{hash}/{w}x{h}[-fit]/{q}.{ext}`) and checks
/// it against the route's `limits`; `accept` is the request's `Accept`, used only for `auto`.
pub fn parse(
    path: &str,
    limits: &VariantLimits,
    accept: Option<&str>,
) -> Result<VariantSpec, VariantError> {
    let s = shape(path)?;
    limits.check(s.width, s.height, s.quality, s.asked)?;
    let format = match s.asked {
        Asked::Exactly(f) => f,
        Asked::Auto => negotiate(accept, &limits.auto_formats()),
    };
    Ok(s.spec(format))
}

/// Parses a canonical path ([`VariantSpec::canonical_path`]: a concrete format), as the
/// in-process origin is asked for it after the proxy checked the route's allowlists.
pub fn parse_canonical(path: &str) -> Result<VariantSpec, VariantError> {
    let s = shape(path)?;
    let Asked::Exactly(format) = s.asked else {
        return Err(VariantError::BadFormat);
    };
    Ok(s.spec(format))
}

/// What a path on a variants route asks for: a variant, or the original itself
/// (`/{hash}/original`, where the route allows it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A variant of the original.
    Variant(VariantSpec),
    /// The original's own bytes.
    Original {
        /// Its content hash.
        hash: String,
    },
}

impl Target {
    /// The original's content hash.
    pub fn hash(&self) -> &str {
        match self {
            Target::Variant(spec) => &spec.hash,
            Target::Original { hash } => hash,
        }
    }

    /// Whether the answer depends on `Accept` (`auto`).
    pub fn negotiated(&self) -> bool {
        matches!(self, Target::Variant(spec) if spec.negotiated)
    }

    /// The path the in-process origin is asked for (and the cache key holds).
    pub fn canonical_path(&self) -> String {
        match self {
            Target::Variant(spec) => spec.canonical_path(),
            Target::Original { hash } => format!("/{hash}/{ORIGINAL}"),
        }
    }

    /// The entity tag of the answer: the variant's, or the content hash itself.
    pub fn etag(&self) -> String {
        match self {
            Target::Variant(spec) => spec.etag(),
            Target::Original { hash } => format!("\"{hash}\""),
        }
    }
}

/// The last segment that names the original itself.
const ORIGINAL: &str = "original";

/// The hash of an original path (`/{hash}/original`).
fn original_of(path: &str) -> Option<String> {
    let rest = path.strip_suffix(ORIGINAL)?.strip_suffix('/')?;
    let hash = hash_of(rest)?;
    (rest.trim_start_matches('/') == hash).then(|| hash.to_ascii_lowercase())
}

/// [`parse`], or the original itself when the route's `limits` allow serving originals.
pub fn parse_target(
    path: &str,
    limits: &VariantLimits,
    accept: Option<&str>,
) -> Result<Target, VariantError> {
    match original_of(path) {
        Some(_) if !limits.originals => Err(VariantError::NotAllowed(
            "this route serves variants only, not originals".into(),
        )),
        Some(hash) => Ok(Target::Original { hash }),
        None => parse(path, limits, accept).map(Target::Variant),
    }
}

/// [`parse_canonical`], or the original itself (the proxy checked that the route allows it).
pub fn parse_canonical_target(path: &str) -> Result<Target, VariantError> {
    match original_of(path) {
        Some(hash) => Ok(Target::Original { hash }),
        None => parse_canonical(path).map(Target::Variant),
    }
}

/// The content hash a variant path names, without checking the rest (for the access check,
/// which runs before the path is parsed whole). `None` when the first segment is not a hash.
pub fn hash_of(path: &str) -> Option<&str> {
    let hash = path.trim_start_matches('/').split('/').next()?;
    (hash.len() == HASH_LEN && hash.bytes().all(|b| b.is_ascii_hexdigit())).then_some(hash)
}

/// The best of `offered` (in preference order) that `Accept` allows, by RFC 9110 §12.5.1
/// quality values with `type/*` and `*/*` wildcards; JPEG when nothing offered is acceptable
/// or there is no `Accept` (every image client decodes JPEG).
pub fn negotiate(accept: Option<&str>, offered: &[Format]) -> Format {
    let fallback = if offered.contains(&Format::Jpeg) {
        Format::Jpeg
    } else {
        offered.last().copied().unwrap_or(Format::Jpeg)
    };
    let Some(accept) = accept else {
        return fallback;
    };
    let mut best: Option<(u16, usize, Format)> = None;
    for (rank, format) in offered.iter().enumerate() {
        let q = accept_quality(accept, format.mime());
        if q == 0 {
            continue;
        }
        // Higher q wins; on a tie the earlier (preferred) format.
        let better = match best {
            None => true,
            Some((bq, brank, _)) => q > bq || (q == bq && rank < brank),
        };
        if better {
            best = Some((q, rank, *format));
        }
    }
    best.map_or(fallback, |(_, _, f)| f)
}

/// The quality (0–1000) `Accept` gives `mime`: the most specific matching range decides.
fn accept_quality(accept: &str, mime: &str) -> u16 {
    let (top, _) = mime.split_once('/').unwrap_or((mime, ""));
    let mut found: Option<(u8, u16)> = None; // (specificity, q)
    for range in accept.split(',') {
        let mut params = range.split(';');
        let media = params.next().unwrap_or("").trim().to_ascii_lowercase();
        let specificity = if media == mime {
            2
        } else if media.strip_suffix("/*") == Some(top) {
            1
        } else if media == "*/*" {
            0
        } else {
            continue;
        };
        let q = params
            .filter_map(|p| p.trim().strip_prefix("q=").or(p.trim().strip_prefix("Q=")))
            .find_map(parse_qvalue)
            .unwrap_or(1000);
        if found.is_none_or(|(s, _)| specificity > s) {
            found = Some((specificity, q));
        }
    }
    found.map_or(0, |(_, q)| q)
}

fn parse_qvalue(text: &str) -> Option<u16> {
    let text = text.trim();
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let digits: String = format!("{frac:0<3}");
    match whole {
        "0" => digits.parse().ok(),
        "1" if digits.bytes().all(|b| b == b'0') => Some(1000),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    fn limits() -> VariantLimits {
        VariantLimits::default()
    }

    #[test]
    fn parses_the_grammar() {
        let v = parse(&format!("/{HASH}/640x480/80.webp"), &limits(), None).unwrap();
        assert_eq!((v.width, v.height, v.quality), (640, 480, 80));
        assert_eq!(
            (v.format, v.fit, v.negotiated),
            (Format::Webp, Fit::Cover, false)
        );
        let c = parse(&format!("/{HASH}/640x480-contain/80.jpg"), &limits(), None).unwrap();
        assert_eq!((c.format, c.fit), (Format::Jpeg, Fit::Contain));
    }

    #[test]
    fn spellings_of_one_variant_share_a_key() {
        let a = parse(&format!("/{HASH}/640x480/80.jpg"), &limits(), None).unwrap();
        let b = parse(&format!("/{HASH}/640x480-cover/80.jpeg"), &limits(), None).unwrap();
        assert_eq!(a.canonical_path(), b.canonical_path());
        assert_eq!(a.etag(), b.etag());
        let webp = parse(&format!("/{HASH}/640x480/80.webp"), &limits(), None).unwrap();
        assert_ne!(a.canonical_path(), webp.canonical_path());
        assert_ne!(a.etag(), webp.etag());
    }

    #[test]
    fn refuses_what_is_not_the_grammar() {
        for bad in [
            format!("/{HASH}/640x480"),
            format!("/{HASH}/640x480/80.webp/extra"),
            format!("/{HASH}/640/80.webp"),
            format!("/{HASH}/640x480/80"),
            format!("/{HASH}/+640x480/80.webp"),
            format!("/{HASH}/640x480/080000000.webp"),
        ] {
            assert_eq!(
                parse(&bad, &limits(), None),
                Err(VariantError::Grammar),
                "{bad}"
            );
        }
        assert_eq!(
            parse("/abc/640x480/80.webp", &limits(), None),
            Err(VariantError::BadHash)
        );
        let upper = HASH.to_ascii_uppercase();
        assert_eq!(
            parse(&format!("/{upper}/640x480/80.webp"), &limits(), None),
            Err(VariantError::BadHash)
        );
        assert_eq!(
            parse(&format!("/{HASH}/640x480/80.gif"), &limits(), None),
            Err(VariantError::BadFormat)
        );
        assert_eq!(
            parse(&format!("/{HASH}/640x480-stretch/80.webp"), &limits(), None),
            Err(VariantError::BadFit)
        );
    }

    #[test]
    fn auto_follows_accept() {
        let all = Format::ALL;
        assert_eq!(negotiate(None, &all), Format::Jpeg);
        assert_eq!(negotiate(Some("image/webp,*/*"), &all), Format::Avif);
        assert_eq!(
            negotiate(Some("image/avif;q=0,image/webp,image/*;q=0.8"), &all),
            Format::Webp
        );
        assert_eq!(negotiate(Some("image/png"), &all), Format::Png);
        assert_eq!(negotiate(Some("text/html"), &all), Format::Jpeg);
        assert_eq!(
            negotiate(Some("image/webp;q=0.5, image/jpeg;q=0.9"), &all),
            Format::Jpeg
        );
        let v = parse(
            &format!("/{HASH}/640x480/80.auto"),
            &limits(),
            Some("image/webp"),
        )
        .unwrap();
        assert_eq!((v.format, v.negotiated), (Format::Webp, true));
        assert!(v.canonical_path().ends_with(".webp"));
    }

    #[test]
    fn canonical_paths_parse_back() {
        let v = parse(&format!("/{HASH}/640x480-inside/80.jpg"), &limits(), None).unwrap();
        assert_eq!(parse_canonical(&v.canonical_path()).unwrap(), v);
        assert!(parse_canonical(&format!("/{HASH}/640x480/80.auto")).is_err());
        assert!(parse_canonical(&format!("/{HASH}/0x480/80.png")).is_err());
        assert!(parse_canonical(&format!("/{HASH}/640x480/101.png")).is_err());
    }

    #[test]
    fn finds_the_hash() {
        assert_eq!(hash_of(&format!("/{HASH}/640x480/80.webp")), Some(HASH));
        assert_eq!(hash_of("/nothash/640x480/80.webp"), None);
    }

    #[test]
    fn originals_are_asked_for_by_hash_where_the_route_allows() {
        let hash = "ab".repeat(32);
        let path = format!("/{hash}/original");
        let mut limits = VariantLimits::default();
        assert!(matches!(
            parse_target(&path, &limits, None),
            Err(VariantError::NotAllowed(_))
        ));
        limits.originals = true;
        let target = parse_target(&path, &limits, None).unwrap();
        assert_eq!(target, Target::Original { hash: hash.clone() });
        assert_eq!(target.canonical_path(), path);
        assert_eq!(target.etag(), format!("\"{hash}\""));
        assert_eq!(parse_canonical_target(&path).unwrap(), target);
        // Anything else is the variant grammar, as before.
        for other in [
            format!("/{hash}/originals"),
            format!("/{hash}/x/original"),
            "/zz/original".to_string(),
        ] {
            assert!(
                !matches!(
                    parse_target(&other, &limits, None),
                    Ok(Target::Original { .. })
                ),
                "{other}"
            );
        }
        let v = parse_target(&format!("/{hash}/640x480/80.webp"), &limits, None).unwrap();
        assert!(matches!(v, Target::Variant(_)));
    }
}
