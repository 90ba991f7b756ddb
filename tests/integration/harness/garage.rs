//! Garage, the S3-compatible server of the suite (strict SigV4), started once per test
//! binary, and S3 clients for it.

use super::*;

/// Access key and secret of the Garage test server.
pub const GARAGE_KEY_ID: &str = "GK0123456789abcdef01234567";
/// Secret of [`GARAGE_KEY_ID`].
pub const GARAGE_SECRET: &str = "5f6e7d8c9b0a1f2e3d4c5b6a7988776655443322110ffeeddccbbaa998877665";
/// The bucket Garage creates at start.
pub const GARAGE_BUCKET: &str = "assets";

/// A Garage server shared by the tests of this binary; it exits when the test binary does.
pub struct Garage {
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    dir: PathBuf,
    bin: PathBuf,
    /// The watchdog shell; it outlives the test process only long enough to stop Garage.
    _watchdog: Child,
}

/// The shared Garage server (started on first use).
pub async fn garage() -> &'static Garage {
    static GARAGE: OnceLock<Garage> = OnceLock::new();
    static START: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    START
        .get_or_init(|| async {
            let g = tokio::task::spawn_blocking(start_garage)
                .await
                .expect("start garage");
            wait_for_bucket(&g.client()).await;
            let _ = GARAGE.set(g);
        })
        .await;
    GARAGE.get().expect("garage started")
}

fn start_garage() -> Garage {
    let bin = require_binary(
        "garage",
        "cargo install garage --locked --no-default-features --features bundled-libs,sqlite",
    );
    let dir = std::env::temp_dir().join(format!("assetgate-garage-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("garage dir");
    let rpc = free_port();
    let s3 = free_port();
    let conf = dir.join("garage.toml");
    std::fs::write(
        &conf,
        format!(
            r#"metadata_dir = "{d}/meta"
data_dir = "{d}/data"
db_engine = "sqlite"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:{rpc}"
rpc_public_addr = "127.0.0.1:{rpc}"
rpc_secret = "4425f5c26c5e11581d3223904324dcb5b5d5dfb14e5e7f35e38c595424f5f1e6"

[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:{s3}"
root_domain = ".s3.garage.localhost"
"#,
            d = dir.display()
        ),
    )
    .expect("garage config");
    let log = std::fs::File::create(dir.join("garage.log")).expect("garage log");
    // A watchdog shell stops Garage when this test process exits, however it exits, and
    // removes its data (the suite stores a 256 MiB object).
    let script = format!(
        "\"$0\" -c \"$1\" server --single-node --default-bucket & g=$!; \
         while kill -0 {me} 2>/dev/null && kill -0 $g 2>/dev/null; do sleep 0.5; done; \
         kill $g 2>/dev/null; wait $g; rm -rf \"$2\"",
        me = std::process::id()
    );
    let watchdog = Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg(&bin)
        .arg(&conf)
        .arg(&dir)
        .env("GARAGE_DEFAULT_ACCESS_KEY", GARAGE_KEY_ID)
        .env("GARAGE_DEFAULT_SECRET_KEY", GARAGE_SECRET)
        .env("GARAGE_DEFAULT_BUCKET", GARAGE_BUCKET)
        .env("RUST_LOG", "garage=warn")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn garage");
    let endpoint = format!("http://127.0.0.1:{s3}");
    Garage {
        endpoint,
        dir,
        bin,
        _watchdog: watchdog,
    }
}

/// An SDK client for Garage.
pub fn s3_client(endpoint: &str, key: &str, secret: &str) -> aws_sdk_s3::Client {
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new("garage"))
        .endpoint_url(endpoint)
        .force_path_style(true)
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            key, secret, None, None, "test",
        ))
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

async fn wait_for_bucket(client: &aws_sdk_s3::Client) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match client.head_bucket().bucket(GARAGE_BUCKET).send().await {
            Ok(_) => return,
            Err(e) if Instant::now() > deadline => {
                panic!("garage did not become ready: {e:?}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

impl Garage {
    /// An SDK client with full access, for seeding objects. A new one per use: a client's
    /// pooled connections belong to the runtime of the test that opened them, and each
    /// `#[tokio::test]` drops its runtime when it ends.
    pub fn client(&self) -> aws_sdk_s3::Client {
        s3_client(&self.endpoint, GARAGE_KEY_ID, GARAGE_SECRET)
    }

    /// Object keys under `prefix` in the bucket.
    pub async fn keys(&self, prefix: &str) -> Vec<String> {
        let out = self
            .client()
            .list_objects_v2()
            .bucket(GARAGE_BUCKET)
            .prefix(prefix)
            .send()
            .await
            .unwrap();
        out.contents()
            .iter()
            .filter_map(|o| o.key().map(str::to_string))
            .collect()
    }

    /// Stores `body` at `key`.
    pub async fn put(&self, key: &str, body: impl Into<Vec<u8>>, content_type: &str) {
        self.client()
            .put_object()
            .bucket(GARAGE_BUCKET)
            .key(key)
            .content_type(content_type)
            .body(aws_sdk_s3::primitives::ByteStream::from(body.into()))
            .send()
            .await
            .unwrap_or_else(|e| panic!("put {key}: {e:?}"));
    }

    /// Creates an access key with no permission on any bucket (idempotent).
    pub fn import_key(&self, key_id: &str, secret: &str) {
        let out = Command::new(&self.bin)
            .arg("-c")
            .arg(self.dir.join("garage.toml"))
            .args(["key", "import", "--yes", "-n", key_id, key_id, secret])
            .output()
            .expect("run garage key import");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() || stderr.contains("already exists"),
            "garage key import failed: {stderr}"
        );
    }

    /// A `[backends.NAME]` table pointing at this Garage with the harness's key and `secret`.
    pub fn backend_toml(&self, name: &str, key_prefix: &str, secret: &str) -> String {
        self.backend_toml_with_key(name, key_prefix, GARAGE_KEY_ID, secret)
    }

    /// A `[backends.NAME]` table pointing at this Garage with the given key id and secret, both
    /// read from files as an operator would.
    pub fn backend_toml_with_key(
        &self,
        name: &str,
        key_prefix: &str,
        key_id: &str,
        secret: &str,
    ) -> String {
        format!(
            r#"
[backends.{name}]
kind = "s3"
bucket = "{GARAGE_BUCKET}"
region = "garage"
endpoint = "{endpoint}"
path_style = true
key_prefix = "{key_prefix}"
read_timeout = "5s"
[backends.{name}.credentials]
from = "static"
access_key_id = {{ file = "{key_file}" }}
secret_access_key = {{ file = "{secret_file}" }}
"#,
            endpoint = self.endpoint,
            key_file = secret_file(key_id).display(),
            secret_file = secret_file(secret).display(),
        )
    }
}
