# Shared by the comparison scripts (sourced, not run): free ports, config rendering, waiting for
# listeners, and the wrk loop that measures every contender on every size in alternating order.
#
# A script sets DIR (scratch folder), fills CONTENDERS with "name=port" entries (the first is the
# one the ratios describe; one named nginx is the reference), then calls:
#   run_matrix SIZE...   # wrk each contender on /SIZE.bin, RUNS times, and print the summary

BENCH_LIB=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
RUNS=${RUNS:-3}
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
WORKERS=${WORKERS:-2}

require_tools() {
  for tool in "$@"; do
    command -v "$tool" >/dev/null || { echo "missing $tool: apt-get install nginx-light wrk python3 curl" >&2; exit 1; }
  done
}

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# render TEMPLATE OUT: replaces __NAME__ with the value of shell variable NAME.
render() {
  python3 - "$1" "$2" <<'PY'
import os, re, sys
text = open(sys.argv[1]).read()
text = re.sub(r"__([A-Z0-9_]+)__", lambda m: os.environ[m.group(1)], text)
open(sys.argv[2], "w").write(text)
PY
}

wait_port() {
  for _ in $(seq 100); do (echo > "/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done
  echo "nothing listens on port $1" >&2; exit 1
}

run_matrix() {
  local results="$DIR/results.txt" names=() ports=()
  for c in "${CONTENDERS[@]}"; do names+=("${c%%=*}"); ports+=("${c##*=}"); done
  for p in "${ports[@]}"; do wait_port "$p"; done
  for size in "$@"; do
    for p in "${ports[@]}"; do curl -fsS "http://127.0.0.1:$p/$size.bin" -o /dev/null; done
  done
  echo "wrk -t$THREADS -c$CONNECTIONS -d$DURATION, $WORKERS workers each, median of $RUNS runs"
  for size in "$@"; do
    for run in $(seq "$RUNS"); do
      local order=("${!names[@]}")
      # Alternate who goes first so nobody always runs on a warmer machine.
      if [ $((run % 2)) -eq 0 ]; then order=($(printf '%s\n' "${order[@]}" | tac)); fi
      for i in "${order[@]}"; do
        wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency \
          "http://127.0.0.1:${ports[$i]}/$size.bin" > "$DIR/wrk.out"
        python3 "$BENCH_LIB/wrk_stats.py" parse "$DIR/wrk.out" "${names[$i]}" "$size" >> "$results"
      done
    done
  done
  python3 "$BENCH_LIB/wrk_stats.py" summary "$results" "${names[@]}"
}

# setup_dir: scratch folder with the 1 KiB and 100 KiB files, removed (with every process
# started by start_bg) on exit.
setup_dir() {
  export DIR=$(mktemp -d /tmp/assetgate-bench.XXXXXX) WORKERS
  mkdir -p "$DIR/files" "$DIR/tmp"
  head -c 1024 /dev/urandom > "$DIR/files/1k.bin"
  head -c 102400 /dev/urandom > "$DIR/files/100k.bin"
  chmod -R a+rX "$DIR"   # nginx workers run as an unprivileged user
  PIDS=()
  CONTENDERS=()
  trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$DIR"' EXIT
}

# start_bg LOG COMMAND...: runs COMMAND in the background, stderr to $DIR/LOG.
start_bg() {
  local log=$1; shift
  "$@" 2>"$DIR/$log" & PIDS+=($!)
}

# start_assetgate NAME BINARY TEMPLATE: renders TEMPLATE on fresh ports, starts BINARY on it and
# adds it to CONTENDERS as NAME.
start_assetgate() {
  export ASSETGATE_PORT=$(port) ADMIN_PORT=$(port) INSTANCE=$1
  render "$3" "$DIR/$1.toml"
  start_bg "$1.log" "$2" run -c "$DIR/$1.toml"
  CONTENDERS+=("$1=$ASSETGATE_PORT")
}
