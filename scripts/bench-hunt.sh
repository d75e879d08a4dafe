#!/usr/bin/env bash
# Benchmark: tcpreset-hunt vs DuckDB on the same generated Suricata EVE NDJSON file.
#
# Both compute a nested Top (engid -> srcip) in a 24 h window: the 10 busiest signatures, and in
# each the 100 busiest source addresses, with two query filters:
#   A: event_type is alert and alert.severity <= 2  (tcpreset-hunt can prefilter lines on "alert")
#   B: alert.severity <= 2                          (no text to prefilter on: every line is parsed)
#
# Usage: scripts/bench-hunt.sh [RECORDS...]      (default: 2000000 8000000)
# Env:   BENCH_DIR (default /tmp/tcpreset-hunt-bench), CARGO_TARGET_DIR (default ./target)
set -euo pipefail

cd "$(dirname "$0")/.."
COUNTS=("${@:-2000000 8000000}")
read -r -a COUNTS <<<"${COUNTS[*]}"
DIR=${BENCH_DIR:-/tmp/tcpreset-hunt-bench}
TARGET=${CARGO_TARGET_DIR:-$PWD/target}
mkdir -p "$DIR"

command -v /usr/bin/time >/dev/null || { apt-get install -y time >/dev/null; }
python3 -c 'import duckdb' 2>/dev/null || pip install --quiet duckdb
DUCKDB_VERSION=$(python3 -c 'import duckdb; print(duckdb.__version__)')

cargo build --release --bin tcpreset-hunt >&2
HUNT="$TARGET/release/tcpreset-hunt"

generate() { # generate N FILE
  python3 - "$1" "$2" <<'PY'
import json, random, sys
n, path = int(sys.argv[1]), sys.argv[2]
rng = random.Random(42)
base = 1748736000  # 2025-06-01T00:00:00Z
sigs = [(2000000 + i, f"ET SIGNATURE number {i}", 1 + i % 3) for i in range(300)]
weights = [1.0 / (i + 1) for i in range(len(sigs))]
srcs = [f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}" for i in range(20000)]
with open(path, "w") as out:
    for i in range(n):
        t = base + rng.random() * 2 * 86400
        secs = int(t)
        ts = f"2025-06-{1 + (secs - base) // 86400:02d}T{(secs % 86400) // 3600:02d}:{(secs % 3600) // 60:02d}:{secs % 60:02d}.{int((t % 1) * 1e6):06d}+0000"
        src = srcs[min(int(rng.paretovariate(1.2)) - 1, len(srcs) - 1)] if rng.random() < 0.7 else rng.choice(srcs)
        rec = {"timestamp": ts, "flow_id": rng.getrandbits(50), "in_iface": "eth1",
               "src_ip": src, "src_port": rng.randint(1024, 65535),
               "dest_ip": f"192.168.{rng.randint(0, 255)}.{rng.randint(1, 254)}", "dest_port": rng.choice([22, 80, 443, 445, 3389, 8080]),
               "proto": "TCP"}
        if rng.random() < 0.6:
            sid, sig, sev = rng.choices(sigs, weights)[0]
            rec["event_type"] = "alert"
            rec["alert"] = {"action": "allowed", "gid": 1, "signature_id": sid, "rev": 3, "signature": sig,
                            "category": "Attempted Information Leak", "severity": sev}
        else:
            rec["event_type"] = "flow"
            rec["flow"] = {"pkts_toserver": rng.randint(1, 50), "pkts_toclient": rng.randint(0, 50),
                           "bytes_toserver": rng.randint(60, 90000), "bytes_toclient": rng.randint(0, 90000),
                           "start": ts, "end": ts, "age": 0, "state": "closed", "reason": "timeout", "alerted": False}
            rec["tcp"] = {"tcp_flags": "1b", "syn": True, "fin": True, "psh": True, "ack": True, "state": "closed"}
        out.write(json.dumps(rec, separators=(",", ":")))
        out.write("\n")
PY
}

playbook() { # playbook FILE QUERY(A|B) > yaml
  cat <<YAML
name: bench nested top
schedule:
  interval_minutes: 60
  lookback: 24h
source:
  paths: [$1]
  format: suricata
  max_filtered: 100
query:
  all:
$(if [ "$2" = A ]; then printf '    - field: event_type\n      is: alert\n'; fi)
    - field: alert.severity
      less_or_equal: 2
calculations:
  - name: find_unique_engid
    type: top
    field: engid
    size: 10
    subgroups:
      - name: find_unique_srcip
        type: top
        field: srcip
        size: 100
conditions:
  - name: any
    type: compare_value
    operator: greater
    value: 0
actions:
  - name: print
    trigger: any
    for_each: find_unique_srcip
    webhook:
      url: http://127.0.0.1:9/
      body: '{"engid": "{{engid}}", "srcip": "{{srcip}}", "n": {{doc_count}}}'
YAML
}

SQL_TEMPLATE="
WITH f AS (
  SELECT CAST(alert.signature_id AS VARCHAR) AS engid, src_ip AS srcip
  FROM read_ndjson_auto('FILE')
  WHERE FILTER alert.severity <= 2
    AND CAST(\"timestamp\" AS TIMESTAMPTZ) >= TIMESTAMPTZ '2025-06-01 12:00:00+00'
    AND CAST(\"timestamp\" AS TIMESTAMPTZ) <  TIMESTAMPTZ '2025-06-02 12:00:00+00'
), top_engid AS (
  SELECT engid, count(*) AS n FROM f GROUP BY engid ORDER BY n DESC, engid LIMIT 10
), per_src AS (
  SELECT f.engid, srcip, count(*) AS n,
         row_number() OVER (PARTITION BY f.engid ORDER BY count(*) DESC, srcip) AS rank
  FROM f JOIN top_engid USING (engid) GROUP BY f.engid, srcip
)
SELECT t.engid, t.n, p.srcip, p.n FROM top_engid t JOIN per_src p USING (engid)
WHERE p.rank <= 100 ORDER BY t.n DESC, t.engid, p.n DESC, p.srcip"

measure() { # measure LABEL CMD... -> prints "seconds peak_kb"
  shift
  local log="$DIR/time.log"
  /usr/bin/time -v "$@" >"$DIR/out.txt" 2>"$log"
  local secs kb
  secs=$(awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; print s}' "$log")
  kb=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$log")
  echo "$secs $kb"
}

printf '%-10s %-6s %-16s %9s %12s %12s\n' records query engine seconds records/s "peak RSS MB"
for n in "${COUNTS[@]}"; do
  file="$DIR/eve-$n.ndjson"
  [ -s "$file" ] || generate "$n" "$file"
  # Warm the page cache so both read from memory.
  cat "$file" >/dev/null
  for q in A B; do
    playbook "$file" "$q" >"$DIR/bench.yaml"
    filter=""
    [ "$q" = A ] && filter="event_type = 'alert' AND"
    sql=${SQL_TEMPLATE//FILE/$file}
    sql=${sql//FILTER/$filter}
    # Three runs each, alternating; the best time and the highest peak RSS are reported.
    hs=999999; hk=0; ds=999999; dk=0
    for _ in 1 2 3; do
      read -r s k < <(measure hunt "$HUNT" run "$DIR/bench.yaml" --now 2025-06-02T12:00:00Z --dry-run --json)
      cp "$DIR/out.txt" "$DIR/hunt-$n-$q.json"
      hs=$(echo "if ($s < $hs) $s else $hs" | bc -l); hk=$(( k > hk ? k : hk ))
      read -r s k < <(measure duckdb python3 -c "import duckdb,sys,json; con=duckdb.connect(); con.execute('SET enable_progress_bar=false'); print(json.dumps(con.sql(sys.argv[1]).fetchall()))" "$sql")
      cp "$DIR/out.txt" "$DIR/duckdb-$n-$q.txt"
      ds=$(echo "if ($s < $ds) $s else $ds" | bc -l); dk=$(( k > dk ? k : dk ))
    done
    printf '%-10s %-6s %-16s %9.2f %12.0f %12.0f\n' "$n" "$q" tcpreset-hunt "$hs" "$(echo "$n / $hs" | bc -l)" "$(echo "$hk / 1024" | bc -l)"
    printf '%-10s %-6s %-16s %9.2f %12.0f %12.0f\n' "$n" "$q" "duckdb $DUCKDB_VERSION" "$ds" "$(echo "$n / $ds" | bc -l)" "$(echo "$dk / 1024" | bc -l)"
    # Same answer: every (engid, srcip, count) row of the nested Top agrees.
    python3 - "$DIR/hunt-$n-$q.json" "$DIR/duckdb-$n-$q.txt" <<'PY'
import json, sys
hunt = json.load(open(sys.argv[1]))
rows = set()
for line in hunt["actions"][0]["output"]:
    body = json.loads(line.split(": ", 1)[1])
    rows.add((body["engid"], body["srcip"], body["n"]))
duck = {(e, s, n) for e, _, s, n in json.load(open(sys.argv[2]))}
print(f"                  same result: {rows == duck} ({len(rows)} rows, {hunt['search']['hits']} hits)")
PY
  done
done
echo "machine: $(nproc) cores, $(uname -r); duckdb $DUCKDB_VERSION (python, default threads); best of 3 runs, file in page cache"
