# Garage for the upload and sync comparisons (sourced after common.sh): start_garage runs a
# single-node Garage in $DIR with one bucket, `assets`, and the key $KEY_ID / $SECRET, on
# $S3_PORT, and writes the key files and admin token the assetgate-upload.toml template reads.
KEY_ID=GK0123456789abcdef01234567
SECRET=5f6e7d8c9b0a1f2e3d4c5b6a7988776655443322110ffeeddccbbaa998877665
TOKEN=bench-admin-token-0123456789abcdef0123456789

start_garage() {
  export S3_PORT=$(port) RPC_PORT=$(port)
  cat > "$DIR/garage.toml" <<TOML
metadata_dir = "$DIR/garage/meta"
data_dir = "$DIR/garage/data"
db_engine = "sqlite"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:$RPC_PORT"
rpc_public_addr = "127.0.0.1:$RPC_PORT"
rpc_secret = "4425f5c26c5e11581d3223904324dcb5b5d5dfb14e5e7f35e38c595424f5f1e6"
[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:$S3_PORT"
root_domain = ".s3.garage.localhost"
TOML
  GARAGE_DEFAULT_ACCESS_KEY=$KEY_ID GARAGE_DEFAULT_SECRET_KEY=$SECRET GARAGE_DEFAULT_BUCKET=assets \
    RUST_LOG=garage=warn start_bg garage.log garage -c "$DIR/garage.toml" server --single-node --default-bucket
  printf '%s' "$KEY_ID" > "$DIR/s3.key"
  printf '%s' "$SECRET" > "$DIR/s3.secret"
  printf '%s' "$TOKEN" > "$DIR/admin.token"
  for _ in $(seq 300); do (echo > "/dev/tcp/127.0.0.1/$S3_PORT") 2>/dev/null && break; sleep 0.1; done
  # The default bucket exists once Garage answers for it.
  for _ in $(seq 100); do
    curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$S3_PORT/assets" | grep -qv '^000$' && break
    sleep 0.2
  done
  sleep 1
}
