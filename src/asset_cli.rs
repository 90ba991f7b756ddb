//! How `assetgate assets …` shows the admin API's answers to a person: a line per thing, then
//! a summary (`--json` prints the answer as it came).

use serde_json::Value;

/// The report of `POST /v1/assets/gc`: each expired asset with the rule that found it, then
/// what was deleted.
pub fn gc_report(answer: &Value) -> String {
    let mut out = String::new();
    let dry = answer["dry_run"].as_bool().unwrap_or(false);
    let expired = answer["expired"].as_array().map_or(&[][..], Vec::as_slice);
    for e in expired {
        out.push_str(&format!(
            "{} {}  {}/{} ({})  rule: {}\n",
            if dry { "would delete" } else { "deleted" },
            text(&e["id"]),
            text(&e["owner"]),
            text(&e["module"]),
            text(&e["visibility"]),
            text(&e["rule"]),
        ));
    }
    for p in answer["problems"].as_array().map_or(&[][..], Vec::as_slice) {
        out.push_str(&format!("problem: {}\n", text(p)));
    }
    match dry {
        true => out.push_str(&format!(
            "{} asset(s) expired; dry run: nothing deleted",
            expired.len()
        )),
        false => out.push_str(&format!(
            "{} asset(s) expired, {} deleted, {} object(s) left to a retry job",
            expired.len(),
            answer["deleted"].as_u64().unwrap_or(0),
            answer["left_behind"].as_u64().unwrap_or(0)
        )),
    }
    out
}

/// The report of `POST /v1/assets/reconcile`: each mismatch, then the counts and the drift.
pub fn reconcile_report(answer: &Value) -> String {
    let mut out = String::new();
    for m in answer["mismatches"]
        .as_array()
        .map_or(&[][..], Vec::as_slice)
    {
        let sizes = match m.get("sizes") {
            Some(s) => format!("  (row says {} bytes, stored {})", s["row"], s["stored"]),
            None => String::new(),
        };
        let hash = match text(&m["hash"]) {
            h if h.is_empty() => String::new(),
            h => format!("  blob {h}"),
        };
        out.push_str(&format!(
            "{:<8} {}:{}{hash}{sizes}  → {}\n",
            text(&m["kind"]),
            text(&m["backend"]),
            text(&m["key"]),
            text(&m["action"]),
        ));
    }
    for p in answer["problems"].as_array().map_or(&[][..], Vec::as_slice) {
        out.push_str(&format!("problem: {}\n", text(p)));
    }
    let n = |field: &str| answer[field].as_u64().unwrap_or(0);
    out.push_str(&format!(
        "checked {} row(s) and {} object(s): {} missing, {} orphan(s), {} size mismatch(es), \
         {} restored; drift {:.4}%",
        n("rows_checked"),
        n("objects_checked"),
        n("missing"),
        n("orphans"),
        n("size_mismatches"),
        n("restored"),
        answer["drift_ratio"].as_f64().unwrap_or(0.0) * 100.0
    ));
    out
}

/// A page of `GET /v1/assets`: a line per asset, then where the next page starts.
pub fn asset_list(answer: &Value) -> String {
    let mut out = String::new();
    for a in answer["assets"].as_array().map_or(&[][..], Vec::as_slice) {
        out.push_str(&format!(
            "{}  {}/{}  {:<13}  {}  {}:{}\n",
            text(&a["id"]),
            text(&a["owner"]),
            text(&a["module"]),
            text(&a["visibility"]),
            text(&a["hash"]),
            text(&a["backend"]),
            text(&a["key"]),
        ));
    }
    match answer["next"].as_str() {
        Some(next) => out.push_str(&format!("more: --after {next}")),
        None => out.push_str("(end)"),
    }
    out
}

/// `value` percent-encoded for a query string.
pub fn query_value(value: &str) -> String {
    percent_encoding::utf8_percent_encode(value, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// A JSON string's text, or the value as JSON.
fn text(v: &Value) -> String {
    v.as_str().map_or_else(|| v.to_string(), str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gc_report_names_each_asset_and_sums_up() {
        let answer = serde_json::json!({
            "dry_run": true,
            "expired": [{"id": "a1", "owner": "u", "module": "drafts", "visibility": "private",
                         "rule": "all assets of module drafts, 30d after they were added"}],
            "deleted": 0, "left_behind": 0, "problems": [],
        });
        assert_eq!(
            gc_report(&answer),
            "would delete a1  u/drafts (private)  rule: all assets of module drafts, 30d after they were added\n\
             1 asset(s) expired; dry run: nothing deleted"
        );
    }
}
