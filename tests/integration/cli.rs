//! The command line: `check` reports every problem with its key path; `run` refuses bad configs.

use std::process::Command;

fn assetgate() -> Command {
    Command::new(env!("CARGO_BIN_EXE_assetgate"))
}

fn check(config: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(&path, config).unwrap();
    check_file(&path, &std::env::current_dir().unwrap())
}

/// Asserts that `text` (what `check` printed) names every one of `expected`.
fn assert_reports(text: &str, expected: &[&str]) {
    for e in expected {
        assert!(text.contains(e), "missing `{e}` in:\n{text}");
    }
}

/// `assetgate check -c PATH` run from `cwd`: success and everything it printed.
fn check_file(path: &std::path::Path, cwd: &std::path::Path) -> (bool, String) {
    let out = assetgate()
        .current_dir(cwd)
        .args(["check", "-c"])
        .arg(path)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout),
    )
}

#[test]
fn quickstart_config_is_valid() {
    let out = assetgate()
        .args([
            "check",
            "-c",
            concat!(env!("CARGO_MANIFEST_DIR"), "/conf/quickstart.toml"),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).ends_with(": ok\n"));
}

#[test]
fn every_problem_is_reported_with_its_key_path() {
    let (ok, text) = check(
        r#"
[[listeners]]
address = "127.0.0.1:notaport"

[[listeners]]
address = "127.0.0.1:8443"
[listeners.tls]
cert = "typo.pem"

[admin]
address = "127.0.0.1:9999"

[log]
format = "xml"

[backends.s3]
kind = "s3"
bucket = "Not_A_Bucket"
endpoint = "ftp://x"
credentials = { from = "static", access_key_id = { env = "ASSETGATE_TEST_UNSET_VAR" } }

[backends.files]
kind = "dir"
root = "/definitely/not/here"
bucket = "oops"

[backends.weird]
kind = "ftp"

[[hosts]]
names = ["cdn.example.com"]

[[hosts.routes]]
path = "/img"
backend = "s3"
methods = ["GET", "PUT"]

[[hosts.routes]]
path = "/x/../y"
backend = "imgs"

[[hosts.routes]]
path = "/z"
backend = "files"
[hosts.routes.cors]
allow_origin = ["https://app.example.com"]

[[hosts]]
names = ["cdn.example.com", "bad host"]

[[hosts.routes]]
path = "/"
backend = "files"
bakend = "typo"
"#,
    );
    assert!(!ok, "{text}");
    assert_reports(
        &text,
        &[
            "listeners[0].address: \"127.0.0.1:notaport\" is not an IP:port address",
            "log.format: \"xml\" is not a format",
            "backends.s3.endpoint: \"ftp://x\" must start with http:// or https://",
            "backends.files.bucket: is not a key of dir backends",
            "backends.files.root: cannot open /definitely/not/here",
            "backends.weird.kind: unknown backend kind \"ftp\"",
            "hosts[0].routes[1].path: \"/x/../y\": dot segment in path",
            "hosts[0].routes[1].backend: unknown backend \"imgs\"",
            "listeners[1].tls: unknown field `cert`",
            "hosts[0].routes[2].cors: unknown field `allow_origin`",
            "hosts[1].names[0]: \"cdn.example.com\" is already used by another host",
            "hosts[1].names[1]: \"bad host\" is not a host name",
            "hosts[1].routes[0]: unknown field `bakend`",
        ],
    );
}

#[test]
fn s3_problems_are_reported_together() {
    let (ok, text) = check(
        r#"
[[listeners]]
address = "127.0.0.1:8080"

[backends.s3]
kind = "s3"
bucket = "Not_A_Bucket"
access_denied_status = 500
credentials = { from = "static", access_key_id = { env = "ASSETGATE_TEST_UNSET_VAR" } }

[[hosts]]
names = ["*"]
[[hosts.routes]]
path = "/img"
backend = "s3"
methods = ["GET", "PUT"]
[hosts.routes.cors]
allow_origins = ["*"]
allow_credentials = true
"#,
    );
    assert!(!ok);
    assert_reports(
        &text,
        &[
            "backends.s3.bucket: \"Not_A_Bucket\" is not a bucket name",
            "backends.s3.access_denied_status: must be 404 or 403",
            "backends.s3.credentials.access_key_id: environment variable ASSETGATE_TEST_UNSET_VAR is not set",
            "backends.s3.credentials.secret_access_key: required with from = \"static\"",
            "hosts[0].routes[0].methods: PUT is not allowed: backend \"s3\" is read-only",
            "hosts[0].routes[0].cors.allow_credentials: cannot be true with allow_origins = [\"*\"]",
        ],
    );
}

#[test]
fn syntax_errors_and_empty_configs_fail() {
    let (ok, text) = check("[[listeners]\naddress = 1");
    assert!(!ok);
    assert!(text.contains("problem"), "{text}");
    let (ok, text) = check("");
    assert!(!ok);
    assert!(
        text.contains("listeners: at least one [[listeners]] entry is required"),
        "{text}"
    );
    assert!(
        text.contains("hosts: at least one [[hosts]] entry is required"),
        "{text}"
    );
}

#[test]
fn run_refuses_an_invalid_config() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "[[listeners]]\naddress = \"nowhere\"\n").unwrap();
    let out = assetgate().args(["run", "-c"]).arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("listeners[0].address"));
}

#[test]
fn version_and_help() {
    let out = assetgate().arg("--version").output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("assetgate {}", env!("CARGO_PKG_VERSION"))
    );
    for sub in [&["--help"][..], &["run", "--help"], &["check", "--help"]] {
        let out = assetgate().args(sub).output().unwrap();
        assert!(out.status.success(), "{sub:?}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Usage:"),
            "{sub:?}"
        );
    }
}

#[test]
fn systemd_unit_verifies() {
    let systemd_analyze =
        crate::harness::require_binary("systemd-analyze", "apt-get install systemd");
    let unit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/systemd/assetgate.service"
    ))
    .unwrap();
    assert!(
        unit.contains("ExecStart=/usr/local/bin/assetgate run -c /etc/assetgate/assetgate.toml")
    );
    // Verify a copy whose ExecStart points at the binary under test (verify checks it exists).
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("assetgate.service");
    std::fs::write(
        &copy,
        unit.replace("/usr/local/bin/assetgate", env!("CARGO_BIN_EXE_assetgate")),
    )
    .unwrap();
    let out = Command::new(systemd_analyze)
        .args(["verify", "--man=no"])
        .arg(&copy)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let relevant: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("assetgate.service"))
        .collect();
    assert!(
        out.status.success() && relevant.is_empty(),
        "systemd-analyze verify:\n{stderr}"
    );
}

#[test]
fn example_config_has_only_environment_problems() {
    // The example names files, env vars and directories of a production host; everything else
    // in it (every key, every value) must be valid, so it cannot drift from the code.
    let out = assetgate()
        .args([
            "check",
            "-c",
            concat!(env!("CARGO_MANIFEST_DIR"), "/conf/example.toml"),
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    for line in stderr.lines().skip(1) {
        let line = line.trim();
        assert!(
            line.contains("cannot read")
                || line.contains("is not set")
                || line.contains("cannot open"),
            "unexpected problem in conf/example.toml: {line}"
        );
    }
}

#[test]
fn relative_secret_files_resolve_against_the_config_folder() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("secrets")).unwrap();
    std::fs::write(
        dir.path().join("secrets/id"),
        "GK0123456789abcdef01234567\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("secrets/key"), "s3cr3t\n").unwrap();
    let path = dir.path().join("gateway.toml");
    std::fs::write(
        &path,
        r#"
[[listeners]]
address = "127.0.0.1:8080"
[backends.s3]
kind = "s3"
bucket = "assets"
[backends.s3.credentials]
from = "static"
access_key_id = { file = "secrets/id" }
secret_access_key = { file = "secrets/key" }
[[hosts]]
names = ["*"]
[[hosts.routes]]
path = "/"
backend = "s3"
"#,
    )
    .unwrap();
    // Run from another folder: the paths must not depend on the working directory.
    let elsewhere = tempfile::tempdir().unwrap();
    let (ok, text) = check_file(&path, elsewhere.path());
    assert!(ok, "{text}");
}

#[test]
fn trusted_proxies_and_cache_control_are_checked() {
    let (ok, text) = check(
        r#"
[server]
trusted_proxies = ["10.0.0.0/8", "not-a-net", "10.0.0.0/40"]
[[listeners]]
address = "127.0.0.1:8080"
[backends.d]
kind = "dir"
root = "/"
[[hosts]]
names = ["*"]
[[hosts.routes]]
path = "/"
backend = "d"
cache_control = "public, max-age=1y"
"#,
    );
    assert!(!ok);
    assert_reports(
        &text,
        &[
            "server.trusted_proxies[1]: \"not-a-net\" is not an address or CIDR",
            "server.trusted_proxies[2]: \"10.0.0.0/40\" is not an address or CIDR",
            "hosts[0].routes[0].cache_control: max-age=1y: is not a whole number of seconds",
        ],
    );
}

#[test]
fn access_policy_problems_are_reported_together() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("short.key"), "too-short").unwrap();
    std::fs::write(dir.path().join("good.key"), "x".repeat(32)).unwrap();
    std::fs::write(dir.path().join("revoked.txt"), "tokens t-1\n").unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(
        &path,
        r#"
[[listeners]]
address = "127.0.0.1:8080"
[auth]
clock_skew = "a while"
revocation_file = "revoked.txt"
max_token_lifetime = "7x"
[auth.hmac]
retired = ["k1"]
[[auth.hmac.keys]]
id = "k1"
secret = { file = "good.key" }
[[auth.hmac.keys]]
id = "k1"
secret = { file = "short.key" }
[[auth.hmac.keys]]
id = "bad id"
secret = { file = "good.key" }
[backends.files]
kind = "dir"
root = "."
[[hosts]]
names = ["*"]
[[hosts.routes]]
path = "/a"
backend = "files"
access = ["public", "hmac"]
[[hosts.routes]]
path = "/b"
backend = "files"
access = "kerberos"
[[hosts.routes]]
path = "/c"
backend = "files"
access = "hmac"
owner_prefix = "/elsewhere"
[[hosts.routes]]
path = "/d"
backend = "files"
max_token_lifetime = "1h"
"#,
    )
    .unwrap();
    let (ok, text) = check_file(&path, dir.path());
    assert!(!ok);
    assert_reports(
        &text,
        &[
            "auth.clock_skew:",
            "auth.revocation_file: ",
            "line 1: unknown kind \"tokens\"",
            "auth.max_token_lifetime:",
            "auth.hmac.keys[1].id: \"k1\" is used twice",
            "auth.hmac.keys[1].secret: is 9 bytes",
            "auth.hmac.keys[2].id: \"bad id\" is not a key id",
            "auth.hmac.retired[0]: \"k1\" is also an active key",
            "hosts[0].routes[0].access: \"public\" cannot be combined",
            "hosts[0].routes[1].access: \"kerberos\" is not an access scheme",
            "hosts[0].routes[2].owner_prefix: must lie inside the route's path",
            "hosts[0].routes[3].max_token_lifetime: has no effect on a public route",
        ],
    );
}

#[test]
fn admin_and_resolve_problems_are_reported_together() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), "t".repeat(40)).unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(
        &path,
        r#"
[[listeners]]
address = "127.0.0.1:8080"
[admin]
address = "127.0.0.1:9090"
presign_ttl = "8d"
[[admin.tokens]]
id = "ops"
secret = { file = "token" }
[resolve]
public_base = "cdn.example.com"
private_scheme = "jwt"
admin_backend = "files"
[backends.files]
kind = "dir"
root = "."
[[hosts]]
names = ["*"]
[[hosts.routes]]
path = "/"
backend = "files"
access = "admin"
"#,
    )
    .unwrap();
    let (ok, text) = check_file(&path, dir.path());
    assert!(!ok);
    assert_reports(
        &text,
        &[
            "admin.audit_log: is required with admin tokens",
            "admin.presign_ttl: is longer than S3's limit",
            "resolve.public_base: \"cdn.example.com\" is not a base URL",
            "resolve.private_scheme: \"jwt\" cannot sign URLs",
            "resolve.admin_backend: \"files\" is not an s3 backend",
            "hosts[0].routes[0].access: admin redirects to an S3 presigned URL",
        ],
    );
}

#[test]
fn steering_errors_are_reported_with_their_key_paths() {
    let (ok, text) = check(
        r#"
[[listeners]]
address = "127.0.0.1:8080"
[backends.a]
kind = "http"
addresses = ["127.0.0.1:9"]
[groups.web]
weights = { a = 0, ghost = 5 }
[groups.zero]
weights = { a = 0 }
[groups.neg]
weights = { a = -1 }
[[hosts]]
names = ["*"]
[[hosts.rules]]
header = { name = "X-A", matches = "([a-z" }
group = "web"
[[hosts.rules]]
cookie = { name = "beta", equals = "1" }
group = "nowhere"
[[hosts.rules]]
header = [{ name = "X-B", equals = "1", present = true }]
group = "web"
[[hosts.routes]]
path = "/"
group = "missing"
backup = "gone"
"#,
    );
    assert!(!ok);
    assert_reports(
        &text,
        &[
            "groups.web.weights.ghost: unknown backend \"ghost\"",
            "groups.zero.weights: needs at least one backend with a positive weight",
            "groups.neg.weights.a: must be 0 (drained) or a positive integer",
            "hosts[0].rules[0].header.matches: invalid regular expression \"([a-z\"",
            "hosts[0].rules[1].group: unknown group \"nowhere\"",
            "hosts[0].rules[2].header[0]: give exactly one of `equals`, `matches` or `present`",
            "hosts[0].routes[0].group: unknown group \"missing\"",
            "hosts[0].routes[0].backup: unknown backend \"gone\"",
        ],
    );
}

#[test]
fn a_rule_no_request_can_reach_is_a_warning_not_an_error() {
    let (ok, text) = check(
        r#"
[[listeners]]
address = "127.0.0.1:8080"
[backends.a]
kind = "http"
addresses = ["127.0.0.1:9"]
[groups.g]
weights = { a = 1 }
[[hosts]]
names = ["*"]
[[hosts.rules]]
name = "all-api"
path_prefix = "/api"
group = "g"
[[hosts.rules]]
name = "dev-api"
path_prefix = "/api/v2"
header = { name = "X-Dev-Mode", equals = "true" }
group = "g"
[[hosts.routes]]
path = "/"
backend = "a"
"#,
    );
    assert!(ok, "{text}");
    assert!(
        text.contains(
            "warning: hosts[0].rules[1]: can never match: the earlier rule \"all-api\" (hosts[0].rules[0])"
        ),
        "{text}"
    );
    assert!(text.contains("ok, 1 warning(s)"), "{text}");
}

#[test]
fn the_shipped_steering_example_is_valid_without_warnings() {
    let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let (ok, text) = check_file(&manifest.join("conf/steering.toml"), manifest);
    assert!(ok, "{text}");
    assert!(text.ends_with(": ok\n"), "{text}");
}

/// A config whose one route on an http backend has `route_cache` as its cache table, after
/// `cache` (the `[cache]` section).
fn cached_route(cache: &str, route_cache: &str) -> String {
    format!(
        r#"
[[listeners]]
address = "127.0.0.1:8080"
{cache}
[backends.a]
kind = "http"
addresses = ["127.0.0.1:9"]
[[hosts]]
names = ["*"]
[[hosts.routes]]
path = "/"
backend = "a"
[hosts.routes.cache]
{route_cache}
"#
    )
}

#[test]
fn cache_problems_are_reported_with_their_key_paths() {
    let (ok, text) = check(&cached_route(
        "[cache]\nlock_timeout = \"soon\"\ntag_headers = [\"Surrogate Key\"]\n[cache.memory]\nsize = \"12 parsecs\"",
        "tiers = [\"memory\"]",
    ));
    assert!(!ok, "{text}");
    assert_reports(
        &text,
        &[
            "cache.lock_timeout: \"soon\"",
            "cache.tag_headers: \"Surrogate Key\" is not a header name",
            "cache.memory.size: \"12 parsecs\" has an unknown unit",
            // The memory tier was refused, so the route names no configured tier.
            "hosts[0].routes[0].cache: no cache tiers are configured",
        ],
    );
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
    let (ok, text) = check(&cached_route(
        &format!("[cache.disk]\npath = \"{file}\"\nsize = \"1GiB\"\nmax_entry = \"2GiB\"\nmin_free = \"lots\""),
        "tiers = [\"disk\"]",
    ));
    assert!(!ok, "{text}");
    assert_reports(
        &text,
        &[
            "cache.disk.path: ",
            "Cargo.toml exists and is not a folder",
            "cache.disk.max_entry: must be at most the tier's size",
            "cache.disk.min_free: \"lots\"",
        ],
    );
    let (ok, text) = check(&cached_route(
        "[cache.redis]\nurl = \"http://cache:6379\"\npassword = { file = \"/nonexistent/redis.pass\" }\ntimeout = \"0ms\"",
        "tiers = [\"redis\"]",
    ));
    assert!(!ok, "{text}");
    assert_reports(
        &text,
        &[
            "cache.redis.url: ",
            "use redis://host:port/db or rediss://host:port/db",
            "cache.redis.password: cannot read /nonexistent/redis.pass",
            "cache.redis.timeout: must be greater than zero",
        ],
    );
    let (ok, text) = check(&cached_route(
        "[cache.object]\nbackend = \"a\"\nmax_entry = \"huge\"",
        "tiers = [\"object\"]",
    ));
    assert!(!ok, "{text}");
    assert_reports(
        &text,
        &[
            "cache.object.backend: \"a\" is a http backend; the object tier needs an s3 backend",
            "cache.object.max_entry: \"huge\"",
        ],
    );
    let (ok, text) = check(&cached_route(
        "[cache.memory]\nsize = \"64MiB\"\nmax_entry = \"1GiB\"",
        "surprise = true",
    ));
    assert!(!ok, "{text}");
    assert_reports(
        &text,
        &[
            "cache.memory.max_entry: must be at most the tier's size",
            "hosts[0].routes[0].cache: unknown field `surprise`",
        ],
    );
    let (ok, text) = check(&cached_route(
        "[cache.memory]\nsize = \"64MiB\"",
        "tiers = [\"memory\", \"disk\", \"floppy\", \"memory\", \"redis\"]\nttl = \"forever\"\nmax_size = \"0B\"",
    ));
    assert!(!ok, "{text}");
    assert_reports(
        &text,
        &[
            "hosts[0].routes[0].cache.tiers[1]: the disk tier is not configured in [cache]",
            "hosts[0].routes[0].cache.tiers[4]: the redis tier is not configured in [cache]",
            "hosts[0].routes[0].cache.tiers[2]: \"floppy\" is not a cache tier",
            "hosts[0].routes[0].cache.tiers[3]: listed twice",
            "hosts[0].routes[0].cache.ttl: \"forever\"",
            "hosts[0].routes[0].cache.max_size: must be greater than zero",
        ],
    );
}

/// Checking a config changes nothing on disk: the audit log it names is not created (only
/// `run` opens it), while a log in a folder that does not exist is still reported.
#[test]
fn check_creates_no_audit_log() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), "t".repeat(40)).unwrap();
    let config = |audit: &str| {
        format!(
            r#"
[[listeners]]
address = "127.0.0.1:8080"
[admin]
address = "127.0.0.1:9090"
audit_log = "{audit}"
[[admin.tokens]]
id = "ops"
secret = {{ file = "token" }}
[backends.files]
kind = "dir"
root = "."
[[hosts]]
names = ["*"]
[[hosts.routes]]
path = "/"
backend = "files"
"#
        )
    };
    let path = dir.path().join("c.toml");
    std::fs::write(&path, config("audit.log")).unwrap();
    let (ok, text) = check_file(&path, dir.path());
    assert!(ok, "{text}");
    assert!(
        !dir.path().join("audit.log").exists(),
        "check created the audit log"
    );
    std::fs::write(&path, config("missing/audit.log")).unwrap();
    let (ok, text) = check_file(&path, dir.path());
    assert!(!ok);
    assert_reports(&text, &["admin.audit_log: cannot open audit log"]);
    assert!(!dir.path().join("missing").exists());
}
