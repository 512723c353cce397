#!/usr/bin/env bash
# Counts the gateway's instructions per request on the public gateways benchmark's query, under
# callgrind: deterministic, so it compares builds on a busy machine where timings cannot.
#
# usage: bench/gateway-callgrind.sh GATEWAYS_BENCH_DIR [GATEWAY_BIN] [REQUESTS]
#   GATEWAYS_BENCH_DIR: prepared by ../shared/tools/gateways-bench/setup.sh (its subgraphs
#   binary, supergraph and query). Ports 4300 (subgraphs) and 4100 (gateway), so it can run
#   beside the benchmark itself. Requests are sequential, sharing off: every request does all
#   of its subgraph fetches.
set -euo pipefail
W=$(realpath "$1")
BIN=$(realpath "${2:-target/release/gateway}")
N=${3:-40}
OUT=$(mktemp -d)
trap 'kill $GW $SUB 2>/dev/null || true; rm -rf "$OUT"' EXIT
sed 's#127.0.0.1:4200#127.0.0.1:4300#g' "$W/scripts/supergraph.graphql" > "$OUT/supergraph.graphql"
HOST=127.0.0.1 PORT=4300 "$W/bench/target/release/subgraphs" > "$OUT/subgraphs.log" 2>&1 &
SUB=$!
curl -s --retry 40 --retry-connrefused --retry-delay 0 --max-time 1 http://127.0.0.1:4300/health > /dev/null
valgrind --tool=callgrind --callgrind-out-file="$OUT/cg.out" "$BIN" --supergraph "$OUT/supergraph.graphql" \
  --listen 127.0.0.1:4100 --dedupe-subgraph-requests false > "$OUT/gateway.log" 2>&1 &
GW=$!
post() { curl -s -o "$OUT/response.json" -H 'content-type: application/json' --data-binary @"$W/scripts/query.json" http://127.0.0.1:4100/graphql; }
for _ in $(seq 240); do
  [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 -H 'content-type: application/json' \
      -d '{"query":"{ __typename }"}' http://127.0.0.1:4100/graphql)" = 200 ] && break
  sleep 0.5
done
for _ in 1 2 3 4 5; do post; done   # caches warm: documents, plans, connections
callgrind_control -z "$GW" > /dev/null 2>&1
for _ in $(seq "$N"); do post; done
callgrind_control -d "$GW" > /dev/null 2>&1
sleep 1
total=$(callgrind_annotate "$OUT/cg.out.1" 2> /dev/null | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1 }')
echo "$N requests, $(wc -c < "$OUT/response.json") bytes each: $((total / N)) instructions per request"
