#!/usr/bin/env bash
# HTTP caching conformance: runs the public test suite (npm http-cache-tests, the one
# cache-tests.fyi publishes results for Squid, Apache, ATS, nginx, Varnish and Fastly from)
# through assetgate — one route with the default cache configuration over the memory tier,
# default compression — and, side by side, through nginx proxy_cache and Varnish in front of
# the same suite server. Prints each one's required/optional pass counts.
#
#   benches/conformance.sh               # assetgate, nginx, Varnish
#   PEERS= benches/conformance.sh        # assetgate only
#   LIST=1 benches/conformance.sh        # and every test assetgate does not pass, with why
#   ID=freshness-max-age-age benches/conformance.sh   # one test, with its requests dumped
#   PROFILE=debug benches/conformance.sh  # the debug build (behaviour, not speed, is measured)
#
# Needs: node + npm (the suite is installed once into target/http-cache-tests), nginx,
# varnishd (apt-get install nodejs npm nginx-light varnish), a release build.
set -euo pipefail
cd "$(dirname "$0")/.."
source benches/lib/common.sh
PEERS=${PEERS-nginx varnish}
require_tools node npm python3 curl
for peer in $PEERS; do
  case $peer in nginx) require_tools nginx ;; varnish) require_tools varnishd ;; esac
done
SUITE_VERSION=0.4.5
SUITE_HOME=$PWD/target/http-cache-tests
SUITE=$SUITE_HOME/node_modules/http-cache-tests
if [ "$(node -p "require('$SUITE/package.json').version" 2>/dev/null)" != "$SUITE_VERSION" ]; then
  mkdir -p "$SUITE_HOME"
  npm install --prefix "$SUITE_HOME" --no-audit --no-fund --loglevel=error \
    "http-cache-tests@$SUITE_VERSION"
fi
PROFILE=${PROFILE:-release}
if [ "$PROFILE" = release ]; then cargo build --release --quiet --bin assetgate
else cargo build --quiet --bin assetgate; fi
BIN=$PWD/target/$PROFILE/assetgate

setup_dir
export SUITE_PORT=$(port) NGINX_PORT=$(port) VARNISH_PORT=$(port)
# The suite's server reads its settings from npm's environment.
( cd "$SUITE" && npm_config_protocol=http npm_config_port=$SUITE_PORT \
    npm_config_pidfile="$DIR/suite.pid" exec node server/server.mjs ) > "$DIR/suite.log" 2>&1 &
PIDS+=($!)
start_assetgate assetgate "$BIN" benches/peers/assetgate-conformance.toml
for peer in $PEERS; do
  case $peer in
    nginx)
      render benches/peers/nginx-conformance.conf "$DIR/nginx.conf"
      mkdir -p "$DIR/nginx-cache"; chmod a+rwx "$DIR/nginx-cache" "$DIR/tmp"
      start_bg nginx.log nginx -c "$DIR/nginx.conf" -p "$DIR"
      CONTENDERS+=("nginx=$NGINX_PORT") ;;
    varnish)
      render benches/peers/varnish-conformance.vcl "$DIR/varnish.vcl"
      start_bg varnish.log varnishd -F -n "$DIR/varnish" -a "127.0.0.1:$VARNISH_PORT" \
        -f "$DIR/varnish.vcl" -s malloc,64m
      CONTENDERS+=("varnish=$VARNISH_PORT") ;;
    *) echo "unknown peer $peer (nginx, varnish)" >&2; exit 1 ;;
  esac
done
wait_port "$SUITE_PORT"

# run_suite NAME PORT: the whole suite (or test $ID) through the cache on PORT.
run_suite() {
  wait_port "$2"
  ( cd "$SUITE" && npm run --silent cli --base="http://127.0.0.1:$2" --id="${ID:-}" )
}
if [ -n "${ID:-}" ]; then
  run_suite assetgate "$ASSETGATE_PORT"
  exit 0
fi
echo "http-cache-tests $SUITE_VERSION (required: RFC 9111 MUSTs; optional: SHOULDs and optimisations)"
for c in "${CONTENDERS[@]}"; do
  name=${c%%=*}
  run_suite "$name" "${c##*=}" > "$DIR/$name.json"
  printf '%-10s ' "$name"
  list=
  if [ "$name" = assetgate ] && [ -n "${LIST:-}" ]; then list=--list; fi
  node benches/conformance/score.mjs "$SUITE" "$DIR/$name.json" $list
done
