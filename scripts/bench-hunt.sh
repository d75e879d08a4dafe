#!/usr/bin/env bash
# Benchmark: tcpreset-hunt against DuckDB at its best on the same generated Suricata EVE logs.
#
# For each size, the same records in two shapes:
#   compact: as Suricata writes them (no spaces, Suricata's key order)
#   spaced:  as other tools write them (a space after `:` and `,`, keys in reverse order)
# and on each a nested Top (engid -> srcip) in a 24 h window, the 10 busiest signatures and in
# each the 100 busiest source addresses, with two query filters:
#   A: event_type is alert and alert.severity <= 2  (tcpreset-hunt can prefilter lines on "alert")
#   B: alert.severity <= 2                          (no text to prefilter on: every line is parsed)
# at one thread (tcpreset-hunt --threads 1, DuckDB SET threads=1) and at all cores. DuckDB reads
# with read_json(..., columns={...}): told the exact columns and types, its fastest form.
# Optional cases (BENCH_CASES): gz (the compact file gzip-compressed, query A, all cores) and zeek
# (a Zeek conn.log in TSV: half-opened connections, top sources -> destination ports).
#
# Usage: scripts/bench-hunt.sh [RECORDS...]      (default: 2000000)
# Env:   BENCH_DIR (default /tmp/tcpreset-hunt-bench), CARGO_TARGET_DIR (default ./target),
#        HUNT_BIN (a tcpreset-hunt binary to measure instead of building one, e.g. an older build),
#        BENCH_CASES (default "compact spaced"; add gz, zeek), BENCH_THREADS (default "1 $(nproc)"),
#        BENCH_RUNS (default 3), HUNT_BASE_BIN (another tcpreset-hunt, e.g. the build before a
#        change: measured in the same rounds and shown as "base"; both need `run --threads`)
# Prints a Markdown table (best wall time of the rounds, its CPU time, highest peak RSS) and
# whether both engines gave the same rows.
set -euo pipefail

cd "$(dirname "$0")/.."
COUNTS=("${@:-2000000}")
read -r -a COUNTS <<<"${COUNTS[*]}"
DIR=${BENCH_DIR:-/tmp/tcpreset-hunt-bench}
TARGET=${CARGO_TARGET_DIR:-$PWD/target}
mkdir -p "$DIR"
LOAD_BEFORE=$(cut -d" " -f1-3 /proc/loadavg)

command -v /usr/bin/time >/dev/null || { apt-get install -y time >/dev/null; }
command -v bc >/dev/null || { apt-get install -y bc >/dev/null; }
python3 -c 'import duckdb' 2>/dev/null || pip install --quiet duckdb 2>/dev/null ||
  pip install --quiet --break-system-packages duckdb
DUCKDB_VERSION=$(python3 -c 'import duckdb; print(duckdb.__version__)')

if [ -n "${HUNT_BIN:-}" ]; then
  HUNT=$HUNT_BIN
else
  cargo build --release --bin tcpreset-hunt >&2
  HUNT="$TARGET/release/tcpreset-hunt"
fi

generate_eve() { # generate_eve N COMPACT_FILE SPACED_FILE: the same records in two shapes
  python3 - "$1" "$2" "$3" <<'PY'
import json, random, sys
n, compact_path, spaced_path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
rng = random.Random(42)
base = 1748736000  # 2025-06-01T00:00:00Z
sigs = [(2000000 + i, f"ET SIGNATURE number {i}", 1 + i % 3) for i in range(300)]
weights = [1.0 / (i + 1) for i in range(len(sigs))]
srcs = [f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}" for i in range(20000)]

def reordered(value):
    # Keys in another order than Suricata's, at every level (as jq -S or a re-serialiser writes).
    if isinstance(value, dict):
        return {k: reordered(value[k]) for k in sorted(value, reverse=True)}
    return value

with open(compact_path, "w") as compact, open(spaced_path, "w") as spaced:
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
        compact.write(json.dumps(rec, separators=(",", ":")))
        compact.write("\n")
        spaced.write(json.dumps(reordered(rec), separators=(", ", ": ")))
        spaced.write("\n")
PY
}

generate_zeek() { # generate_zeek N FILE
  python3 - "$1" "$2" <<'PY'
import random, sys
n, path = int(sys.argv[1]), sys.argv[2]
rng = random.Random(7)
base = 1748736000  # 2025-06-01T00:00:00Z
srcs = [f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}" for i in range(20000)]
ports = [22, 23, 25, 53, 80, 110, 135, 139, 143, 443, 445, 993, 1433, 3306, 3389, 5432, 5900, 8080, 8443]
states = ["SF", "S0", "REJ", "RSTO", "RSTR", "SH", "S1", "RSTOS0", "OTH"]
state_weights = [40, 25, 10, 6, 6, 4, 5, 2, 2]
fields = ["ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "proto", "service", "duration",
          "orig_bytes", "resp_bytes", "conn_state", "local_orig", "local_resp", "missed_bytes", "history",
          "orig_pkts", "orig_ip_bytes", "resp_pkts", "resp_ip_bytes", "tunnel_parents"]
types = ["time", "string", "addr", "port", "addr", "port", "enum", "string", "interval", "count", "count",
         "string", "bool", "bool", "count", "string", "count", "count", "count", "count", "set[string]"]
with open(path, "w") as out:
    out.write("#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tconn\n")
    out.write("#open\t2025-06-01-00-00-00\n")
    out.write("#fields\t" + "\t".join(fields) + "\n#types\t" + "\t".join(types) + "\n")
    for i in range(n):
        t = base + rng.random() * 2 * 86400
        src = srcs[min(int(rng.paretovariate(1.2)) - 1, len(srcs) - 1)] if rng.random() < 0.7 else rng.choice(srcs)
        state = rng.choices(states, state_weights)[0]
        port = ports[min(int(rng.paretovariate(1.0)) - 1, len(ports) - 1)]
        done = state in ("SF", "RSTO", "RSTR", "S1")
        row = [f"{t:.6f}", f"C{rng.getrandbits(64):016x}", src, str(rng.randint(1024, 65535)),
               f"192.168.{rng.randint(0, 255)}.{rng.randint(1, 254)}", str(port), "tcp",
               "http" if port == 80 and done else "-", f"{rng.random() * 5:.6f}" if done else "-",
               str(rng.randint(0, 9000)) if done else "-", str(rng.randint(0, 90000)) if done else "-",
               state, "T", "F", "0", "ShADadFf" if done else "S", str(rng.randint(1, 50)),
               str(rng.randint(40, 9000)), str(rng.randint(0, 50)), str(rng.randint(0, 90000)), "(empty)"]
        out.write("\t".join(row))
        out.write("\n")
    out.write("#close\t2025-06-03-00-00-00\n")
PY
}

# playbook FILE FORMAT QUERY_YAML OUTER INNER > yaml: a nested Top OUTER (10) -> INNER (100),
# printed one result a line through a webhook dry run.
playbook() {
  cat <<YAML
name: bench nested top
schedule:
  interval_minutes: 60
  lookback: 24h
source:
  paths: [$1]
  format: $2
  max_filtered: 100
query:
  all:
$3
calculations:
  - name: outer
    type: top
    field: $4
    size: 10
    subgroups:
      - name: inner
        type: top
        field: $5
        size: 100
conditions:
  - name: any
    type: compare_value
    operator: greater
    value: 0
actions:
  - name: print
    trigger: any
    for_each: inner
    webhook:
      url: http://127.0.0.1:9/
      body: '{"outer": "{{$4}}", "inner": "{{$5}}", "n": {{doc_count}}}'
YAML
}

# nested_top_sql FROM OUTER INNER WHERE: the same nested Top in SQL.
nested_top_sql() {
  cat <<SQL
WITH f AS (SELECT $2 AS outer_key, $3 AS inner_key FROM $1 WHERE $4),
top_outer AS (
  SELECT outer_key, count(*) AS n FROM f GROUP BY outer_key ORDER BY n DESC, outer_key LIMIT 10
), per_inner AS (
  SELECT f.outer_key, inner_key, count(*) AS n,
         row_number() OVER (PARTITION BY f.outer_key ORDER BY count(*) DESC, inner_key) AS rank
  FROM f JOIN top_outer USING (outer_key) GROUP BY f.outer_key, inner_key
)
SELECT t.outer_key, t.n, p.inner_key, p.n FROM top_outer t JOIN per_inner p USING (outer_key)
WHERE p.rank <= 100 ORDER BY t.n DESC, t.outer_key, p.n DESC, p.inner_key
SQL
}

measure() { # measure CMD... -> prints "seconds peak_kb cpu_seconds"
  local log="$DIR/time.log"
  /usr/bin/time -v "$@" >"$DIR/out.txt" 2>"$log"
  awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; wall=s}
    /Maximum resident set size/ {kb=$2} /User time/ {u=$2} /System time/ {sy=$2}
    END {print wall, kb, u + sy}' "$log"
}

# DuckDB's own times (wall and CPU) are of the query alone (its Python start and import left
# out, in its favour), printed after the rows.
DUCKDB_RUN='import duckdb, json, sys, time
con = duckdb.connect()
con.execute("SET enable_progress_bar=false")
con.execute(f"SET threads={int(sys.argv[2])}")
start, cpu = time.perf_counter(), time.process_time()
rows = con.sql(sys.argv[1]).fetchall()
took, cpu = time.perf_counter() - start, time.process_time() - cpu
print(json.dumps(rows))
print(took, cpu)'

# compare N LABEL THREADS PLAYBOOK SQL: BENCH_RUNS rounds, each running every engine once in
# turn (so that all see the same load); prints the best wall time (DuckDB: of its query), the
# CPU time of that run (tcpreset-hunt: the whole process; DuckDB: its query) and the highest
# peak RSS of each, the ratio of both, and whether both gave the same (outer, inner, count) rows.
compare() {
  local n=$1 label=$2 threads=$3 yaml=$4 sql=$5
  printf '%s\n' "$yaml" >"$DIR/bench.yaml"
  local hs=999999 hc=0 hk=0 ds=999999 dc=0 dk=0 bs=999999 bc=0 bk=0 s k c
  local run=(run "$DIR/bench.yaml" --now 2025-06-02T12:00:00Z --dry-run --json --threads "$threads")
  for _ in $(seq "${BENCH_RUNS:-3}"); do
    if [ -n "${HUNT_BASE_BIN:-}" ]; then
      read -r s k c < <(measure "$HUNT_BASE_BIN" "${run[@]}")
      cp "$DIR/out.txt" "$DIR/base.json"
      if (($(echo "$s < $bs" | bc -l))); then bs=$s bc=$c; fi; bk=$((k > bk ? k : bk))
    fi
    read -r s k c < <(measure "$HUNT" "${run[@]}")
    cp "$DIR/out.txt" "$DIR/hunt.json"
    if (($(echo "$s < $hs" | bc -l))); then hs=$s hc=$c; fi; hk=$((k > hk ? k : hk))
    read -r _ k _ < <(measure python3 -c "$DUCKDB_RUN" "$sql" "$threads")
    head -n 1 "$DIR/out.txt" >"$DIR/duckdb.txt"
    read -r s c < <(tail -n 1 "$DIR/out.txt")
    if (($(echo "$s < $ds" | bc -l))); then ds=$s dc=$c; fi; dk=$((k > dk ? k : dk))
  done
  local same
  same=$(python3 - "$DIR/hunt.json" "$DIR/duckdb.txt" <<'PY'
import json, sys
hunt = json.load(open(sys.argv[1]))
rows = set()
for line in hunt["actions"][0]["output"]:
    body = json.loads(line.split(": ", 1)[1])
    rows.add((body["outer"], body["inner"], body["n"]))
duck = {(str(o), str(i), n) for o, _, i, n in json.load(open(sys.argv[2]))}
print(f"{'same' if rows == duck else 'DIFFERENT'} ({len(rows)} rows)")
PY
)
  row() { # row ENGINE SECONDS CPU KB
    printf '| %s | %s | %s | %s | %.2f | %.2f | %.0f | %s |\n' "$n" "$label" "$threads" "$1" "$2" "$3" \
      "$(echo "$4 / 1024" | bc -l)" "$5"
  }
  [ -z "${HUNT_BASE_BIN:-}" ] || row base "$bs" "$bc" "$bk" ""
  row tcpreset-hunt "$hs" "$hc" "$hk" "$(printf '%.2f× less wall time, %.2f× less CPU; %s' \
    "$(echo "$ds / $hs" | bc -l)" "$(echo "$dc / $hc" | bc -l)" "$same")"
  row "duckdb $DUCKDB_VERSION" "$ds" "$dc" "$dk" ""
}

EVE_WINDOW="\"timestamp\" >= TIMESTAMPTZ '2025-06-01 12:00:00+00'
  AND \"timestamp\" < TIMESTAMPTZ '2025-06-02 12:00:00+00'"
# The fastest form DuckDB offers: told the exact columns (and types) it needs, nothing inferred.
EVE_COLUMNS="{'timestamp': 'TIMESTAMPTZ', 'event_type': 'VARCHAR', 'src_ip': 'VARCHAR',
  'alert': 'STRUCT(signature_id BIGINT, severity BIGINT)'}"
QUERY_A='    - field: event_type
      is: alert
    - field: alert.severity
      less_or_equal: 2'
QUERY_B='    - field: alert.severity
      less_or_equal: 2'
eve_sql() { # eve_sql FILE FILTER
  nested_top_sql "read_json('$1', format='newline_delimited', columns=$EVE_COLUMNS)" \
    "CAST(alert.signature_id AS VARCHAR)" src_ip "$2 alert.severity <= 2 AND $EVE_WINDOW"
}

CASES=" ${BENCH_CASES:-compact spaced} "
ALL_CORES=$(nproc)
THREADS=("${BENCH_THREADS:-1 $ALL_CORES}")
read -r -a THREADS <<<"${THREADS[*]}"
echo "| records | shape, filter | threads | engine | wall s | CPU s | peak RSS MB | |"
echo "|---:|:---|---:|---|---:|---:|---:|---|"
for n in "${COUNTS[@]}"; do
  compact="$DIR/eve-$n.ndjson" spaced="$DIR/eve-$n-spaced.ndjson"
  [ -s "$compact" ] && [ -s "$spaced" ] || generate_eve "$n" "$compact" "$spaced"
  for shape in compact spaced; do
    [[ $CASES == *" $shape "* ]] || continue
    file=$compact
    [ "$shape" = compact ] || file=$spaced
    cat "$file" >/dev/null # in the page cache for both engines
    for threads in "${THREADS[@]}"; do
      compare "$n" "$shape A" "$threads" "$(playbook "$file" suricata "$QUERY_A" engid srcip)" \
        "$(eve_sql "$file" "event_type = 'alert' AND")"
      compare "$n" "$shape B" "$threads" "$(playbook "$file" suricata "$QUERY_B" engid srcip)" \
        "$(eve_sql "$file" "")"
    done
  done
done

n=${COUNTS[0]}
if [[ $CASES == *" gz "* ]]; then
  gz="$DIR/eve-$n.ndjson.gz"
  [ -s "$gz" ] || gzip -c "$DIR/eve-$n.ndjson" >"$gz"
  cat "$gz" >/dev/null
  compare "$n" "gz A" "$ALL_CORES" "$(playbook "$gz" suricata "$QUERY_A" engid srcip)" \
    "$(eve_sql "$gz" "event_type = 'alert' AND")"
fi

zeek="$DIR/conn-$n.log"
if [[ $CASES == *" zeek "* ]]; then
  [ -s "$zeek" ] || generate_zeek "$n" "$zeek"
  cat "$zeek" >/dev/null
  ZEEK_COLUMNS="{'ts': 'DOUBLE', 'uid': 'VARCHAR', 'id.orig_h': 'VARCHAR', 'id.orig_p': 'INTEGER',
    'id.resp_h': 'VARCHAR', 'id.resp_p': 'INTEGER', 'proto': 'VARCHAR', 'service': 'VARCHAR',
    'duration': 'DOUBLE', 'orig_bytes': 'BIGINT', 'resp_bytes': 'BIGINT', 'conn_state': 'VARCHAR',
    'local_orig': 'VARCHAR', 'local_resp': 'VARCHAR', 'missed_bytes': 'BIGINT', 'history': 'VARCHAR',
    'orig_pkts': 'BIGINT', 'orig_ip_bytes': 'BIGINT', 'resp_pkts': 'BIGINT', 'resp_ip_bytes': 'BIGINT',
    'tunnel_parents': 'VARCHAR'}"
  QUERY_Z='    - field: state
      is: HalfOpened'
  compare "$n" "zeek Z" "$ALL_CORES" "$(playbook "$zeek" zeek "$QUERY_Z" srcip dstport)" "$(nested_top_sql \
    "read_csv('$zeek', auto_detect=false, delim='\t', quote='', escape='', header=false, comment='#', nullstr='-', columns=$ZEEK_COLUMNS)" \
    '"id.orig_h"' '"id.resp_p"' \
    "conn_state IN ('S0', 'SH', 'RSTOS0') AND ts >= 1748779200 AND ts < 1748865600")"
fi

echo
echo "machine: $(nproc) cores, $(uname -r); duckdb $DUCKDB_VERSION (python, read_json with columns, SET threads as the row says; its time is the query alone); best of ${BENCH_RUNS:-3} rounds, engines interleaved, file in page cache; load average before: $LOAD_BEFORE, after: $(cut -d" " -f1-3 /proc/loadavg)"
