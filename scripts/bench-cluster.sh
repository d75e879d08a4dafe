#!/usr/bin/env bash
# Benchmark, for the record: the nested Top of the shipped TCP-reset playbook (the busiest
# signatures, in each the busiest sources, of its query; its lookback widened to 24 h) over the
# same generated Suricata EVE records, by the local engine on the file and by the cluster
# backend against osmem-server (in-memory OpenSearch-compatible, on 127.0.0.1) holding them.
# Both must render the same actions. The cluster's speed is osmem's, not ours.
#
# Usage: scripts/bench-cluster.sh [RECORDS]      (default 2000000)
# Env:   BENCH_DIR (default /tmp/tcpreset-cluster-bench), CARGO_TARGET_DIR, HUNT_BIN,
#        BENCH_RUNS (default 3), BENCH_MAPPING (all: every field indexed, as dynamic mapping
#        does; queried: only the five fields the playbook reads are indexed, `dynamic: false`,
#        the records kept whole in _source, as an index template for this playbook would; the
#        default for more than 500,000 records, since osmem holding 2,000,000 records with every
#        field indexed ran out of this machine's 24 GiB)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-2000000}
DIR=${BENCH_DIR:-/tmp/tcpreset-cluster-bench}
TARGET=${CARGO_TARGET_DIR:-$PWD/target}
RUNS=${BENCH_RUNS:-3}
if [ "$N" -gt 500000 ]; then MAPPING=${BENCH_MAPPING:-queried}; else MAPPING=${BENCH_MAPPING:-all}; fi
mkdir -p "$DIR"
if [ -n "${HUNT_BIN:-}" ]; then HUNT=$HUNT_BIN; else
  cargo build --release --bin tcpreset-hunt >&2
  HUNT="$TARGET/release/tcpreset-hunt"
fi
python3 -c 'import osmem_server' 2>/dev/null || pip install --quiet osmem-server 2>/dev/null ||
  pip install --quiet --break-system-packages osmem-server
OSMEM=$(python3 -c 'import osmem_server; print(osmem_server.resolve_binary())')
LOAD_BEFORE=$(cut -d" " -f1-3 /proc/loadavg)

EVE="$DIR/eve-$N.json"
if [ ! -s "$EVE" ]; then
  echo "== generating $N EVE records (the generator of scripts/bench-hunt.sh)" >&2
  # shellcheck disable=SC1090
  source <(sed -n '/^generate_eve()/,/^}/p' scripts/bench-hunt.sh)
  generate_eve "$N" "$EVE" "$DIR/eve-$N-spaced.json"
  rm -f "$DIR/eve-$N-spaced.json"
fi

coproc OS { exec "$OSMEM" --addr 127.0.0.1:0 --no-ja; }
trap 'kill "${OS_PID:-}" 2>/dev/null || true' EXIT
read -r READY <&"${OS[0]}"
URL=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["url"])' "$READY")
echo "== osmem-server at $URL; loading $N records" >&2
echo "== mapping: $MAPPING" >&2
LOAD_S=$(python3 - "$URL" "$EVE" "$MAPPING" <<'PY'
import json, sys, time, urllib.request
url, path, which = sys.argv[1], sys.argv[2], sys.argv[3]
def call(method, p, body, ctype="application/json"):
    req = urllib.request.Request(url + p, data=body, method=method, headers={"Content-Type": ctype})
    with urllib.request.urlopen(req, timeout=600) as r:
        return json.loads(r.read() or b"{}")
mapping = {"mappings": {"dynamic_templates": [
    {"strings": {"match_mapping_type": "string", "mapping": {"type": "keyword"}}},
    {"integers": {"match_mapping_type": "long", "mapping": {"type": "double"}}},
    {"fractions": {"match_mapping_type": "double", "mapping": {"type": "double"}}}],
    "properties": {"timestamp": {"type": "date"}}}}
if which == "queried":
    mapping = {"mappings": {"dynamic": False, "properties": {
        "timestamp": {"type": "date"}, "event_type": {"type": "keyword"},
        "src_ip": {"type": "keyword"},
        "alert": {"properties": {"severity": {"type": "double"},
                                 "signature_id": {"type": "double"}}}}}}
call("PUT", "/suricata", json.dumps(mapping).encode())
start = time.time()
chunk = []
def flush():
    body = "".join('{"index":{"_index":"suricata"}}\n' + l for l in chunk).encode()
    answer = call("POST", "/_bulk", body, "application/x-ndjson")
    assert not answer.get("errors"), str(answer)[:500]
    chunk.clear()
with open(path) as f:
    for line in f:
        chunk.append(line)
        if len(chunk) == 5000:
            flush()
if chunk:
    flush()
call("POST", "/suricata/_refresh", b"{}")
print(f"{time.time() - start:.1f}")
PY
)
echo "== loaded in $LOAD_S s" >&2

playbook() { # playbook SOURCE_YAML: the shipped reset playbook, its schedule and source replaced
  python3 - "$1" playbooks/reset-after-high-severity-alerts.yaml <<'PY'
import sys
source, path = sys.argv[1], sys.argv[2]
out, skipping = [], False
for line in open(path):
    if line.startswith(("schedule:", "source:")):
        skipping = True
        continue
    if skipping and (line.startswith(" ") or not line.strip()):
        continue
    skipping = False
    out.append(line)
print("".join(out) + "schedule: {interval_minutes: 60, lookback: 24h}\nsource: " + source)
PY
}
playbook "{paths: [$EVE], format: suricata, max_filtered: 100}" >"$DIR/local.yaml"
playbook "{format: suricata, max_filtered: 100, opensearch: {url: \"$URL\", index: suricata, timeout: 600s}}" >"$DIR/cluster.yaml"

measure() { # measure NAME -> prints seconds, leaves $DIR/NAME.json
  local start end
  start=$(date +%s.%N)
  "$HUNT" run "$DIR/$1.yaml" --now 2025-06-02T12:00:00Z --dry-run --json >"$DIR/$1.json" || true
  end=$(date +%s.%N)
  echo "$end - $start" | bc
}
declare -A best
for _ in $(seq "$RUNS"); do
  for engine in local cluster; do
    s=$(measure "$engine")
    if [ -z "${best[$engine]:-}" ] || (($(echo "$s < ${best[$engine]}" | bc))); then best[$engine]=$s; fi
  done
done
python3 - "$DIR/local.json" "$DIR/cluster.json" <<'PY'
import json, sys
def parts(p):
    s = json.load(open(p))
    s = s[0] if isinstance(s, list) else s
    assert not s.get("error"), s.get("error")
    return s["search"]["hits"], s["conditions"], s["actions"]
local, cluster = parts(sys.argv[1]), parts(sys.argv[2])
assert local == cluster, "the engines differ"
print(f"both engines: {local[0]} hits, {len(local[2][0]['output'])} rendered lines, identical", file=sys.stderr)
PY
printf 'mapping %s  records %s  load %s s  local %.2f s  cluster %.2f s  (best of %s; load average before: %s)\n' \
  "$MAPPING" "$N" "$LOAD_S" "${best[local]}" "${best[cluster]}" "$RUNS" "$LOAD_BEFORE"
