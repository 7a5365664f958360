#!/usr/bin/env bash
# Issue 12's own table, measured its way: `wrk` (1 thread, 16 connections) against `dtc sim` hit
# directly (the floor: one hop) and against `POST /v1/connections/ops/actions/send_text` through
# `dtc serve` (release, SQLite, rate limits off), the simulator's limits off; the two take
# turns, ROUNDS rounds of SECONDS each; medians, the ratio, and `dtc serve`'s CPU seconds per
# 10,000 sends and RSS. Other builds given (earlier commits, say) take turns too, each its own
# `dtc serve` on the same simulator; the first build runs the simulator.
#
#   [WRK_SECONDS=10] [WRK_ROUNDS=3] bench/wrk-table.sh target/release/dtc [other-dtc …]
#
# `dtc serve` logs at `warn` (WRK_DTC_LOG sets another level for all); a build given as
# PATH@LEVEL runs at LEVEL (`target/release/dtc@info target/release/dtc@warn` compares the two).
#
# WRK_PERF=FILE also records a profile of the first build's `dtc serve` under its last round
# (`perf record --call-graph dwarf` into FILE; read it with `perf report -i FILE`).
# WRK_PERF_CALLGRAPH=dwarf,65528 unwinds deeper (async stacks outgrow the default 8 KB copy).
#
# WRK_RELAY=PATH adds the ceiling the peer suite measures, taking turns too: a bare relay (axum in
# front of the `dingtalk` crate, two hops, none of dtc's work) — PATH is the peer suite's bench
# executable, which `cargo bench -p dtc --bench peers` prints as it starts ("Running …").
#
# Needs `wrk` (Debian package `wrk`) and `curl`. Everything binds 127.0.0.1.
set -euo pipefail

BUILDS=()
LEVELS=()
for b in "$@"; do
  BUILDS+=("$(realpath "${b%@*}")")
  if [[ $b == *@* ]]; then LEVELS+=("${b##*@}"); else LEVELS+=("${WRK_DTC_LOG:-warn}"); fi
done
DTC=${BUILDS[0]}
SECONDS_PER=${WRK_SECONDS:-10}
ROUNDS=${WRK_ROUNDS:-3}
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 2; }

WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_up() { for _ in $(seq 200); do curl -fs "$1" >/dev/null 2>&1 && return 0; sleep 0.1; done; echo "$1 did not answer" >&2; exit 1; }

KEY=dingsandbox0000000001
SECRET=SandboxSecret000000000000000000000000000000000000000000000000001
GROUP='cidSandboxOps0000000000=='
cat >"$WORK/fixture.json" <<EOF
{"apps":[{"app_key":"$KEY","app_secret":"$SECRET","robot_code":"$KEY",
  "groups":[{"open_conversation_id":"$GROUP","title":"Ops"}]}],
 "webhook_robots":[],
 "limits":{"app_api_qps":0,"webhook_per_minute":0,"token_ttl_secs":7200}}
EOF
SIM_PORT=$(port)
DTC_LOG=warn "$DTC" sim --listen "127.0.0.1:$SIM_PORT" --fixture "$WORK/fixture.json" >"$WORK/sim.log" 2>&1 &
PIDS+=($!)
SIM="http://127.0.0.1:$SIM_PORT"
wait_up "$SIM/_sim/stats"
TOKEN=$(curl -fs -X POST "$SIM/v1.0/oauth2/accessToken" -H 'Content-Type: application/json' \
  -d "{\"appKey\":\"$KEY\",\"appSecret\":\"$SECRET\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["accessToken"])')

API_TOKEN=wrk-table-token-0123456789abcdef
# serve NAME BINARY LEVEL: starts `dtc serve` logging at LEVEL, creates connection `ops`, sets
# URL_<NAME> and PID_<NAME>.
serve() {
  local p dir
  p=$(port); dir="$WORK/data-$1"; mkdir -p "$dir"
  DTC_API_TOKEN=$API_TOKEN DTC_LOG=$3 DTC_ENFORCE_RATE_LIMITS=false \
    "$2" serve --listen "127.0.0.1:$p" --data-dir "$dir" \
    --dingtalk-api-base "$SIM" --dingtalk-oapi-base "$SIM" >"$dir/log" 2>&1 &
  PIDS+=($!)
  printf -v "PID_$1" %s "$!"
  printf -v "URL_$1" %s "http://127.0.0.1:$p"
  wait_up "http://127.0.0.1:$p/healthz"
  curl -fs -X POST "http://127.0.0.1:$p/v1/connections" -H "Authorization: Bearer $API_TOKEN" \
    -H 'Content-Type: application/json' \
    -d "{\"name\":\"ops\",\"app_key\":\"$KEY\",\"app_secret\":\"$SECRET\",\"robot_code\":\"$KEY\"}" >/dev/null
}
for i in "${!BUILDS[@]}"; do serve "b$i" "${BUILDS[$i]}" "${LEVELS[$i]}"; done
if [ -n "${WRK_RELAY:-}" ]; then
  RELAY_PORT=$(port)
  "$WRK_RELAY" --relay "$SIM" "$RELAY_PORT" >"$WORK/relay.log" 2>&1 &
  PIDS+=($!)
  RELAY_PID=$!
  RELAY="http://127.0.0.1:$RELAY_PORT/send"
  # Up once it answers at all (a GET of a POST route is 405).
  for _ in $(seq 200); do curl -s -o /dev/null "$RELAY" && break; sleep 0.1; done
fi

# lua FILE HEADER VALUE BODY: a wrk script POSTing BODY as JSON with one more header.
lua() {
  printf 'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\nwrk.headers["%s"] = "%s"\nwrk.body = [[%s]]\n' \
    "$2" "$3" "$4" >"$1"
}
lua "$WORK/sim.lua" x-acs-dingtalk-access-token "$TOKEN" \
  "{\"robotCode\":\"$KEY\",\"openConversationId\":\"$GROUP\",\"msgKey\":\"sampleText\",\"msgParam\":\"{\\\"content\\\":\\\"peer benchmark\\\"}\"}"
lua "$WORK/dtc.lua" Authorization "Bearer $API_TOKEN" "{\"group_chat_id\":\"$GROUP\",\"content\":\"peer benchmark\"}"

cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss() { awk '/VmRSS/ {print $2 / 1024}' "/proc/$1/status"; }
# run CASE URL SCRIPT [PID]: one wrk round; appends "rate cpu_s_per_10k rss" to $WORK/CASE.
run() {
  local before after out rate non2xx
  [ -n "${4:-}" ] && before=$(cpu "$4")
  out=$(wrk -t1 -c16 -d"${SECONDS_PER}s" -s "$3" "$2")
  rate=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
  if [ -n "$non2xx" ]; then echo "$1: $non2xx answers were not 2xx" >&2; exit 1; fi
  if [ -n "${4:-}" ]; then
    after=$(cpu "$4")
    local tck; tck=$(getconf CLK_TCK)
    echo "$rate $(awk -v a="$after" -v b="$before" -v r="$rate" -v s="$SECONDS_PER" -v t="$tck" \
      'BEGIN {printf "%.2f", (a - b) / t / (r * s) * 10000}') $(rss "$4")" >>"$WORK/$1"
  else
    echo "$rate - -" >>"$WORK/$1"
  fi
}
# Warm up each path once, then take turns.
wrk -t1 -c16 -d2s -s "$WORK/sim.lua" "$SIM/v1.0/robot/groupMessages/send" >/dev/null
url() { local v="URL_b$1"; echo "${!v}/v1/connections/ops/actions/send_text"; }
pid() { local v="PID_b$1"; echo "${!v}"; }
for i in "${!BUILDS[@]}"; do wrk -t1 -c16 -d2s -s "$WORK/dtc.lua" "$(url "$i")" >/dev/null; done
[ -z "${RELAY:-}" ] || wrk -t1 -c16 -d2s -s "$WORK/dtc.lua" "$RELAY" >/dev/null
for r in $(seq "$ROUNDS"); do
  run floor "$SIM/v1.0/robot/groupMessages/send" "$WORK/sim.lua"
  for i in "${!BUILDS[@]}"; do
    PERF=
    if [ -n "${WRK_PERF:-}" ] && [ "$i" = 0 ] && [ "$r" = "$ROUNDS" ]; then
      perf record -q --call-graph "${WRK_PERF_CALLGRAPH:-dwarf}" -F 499 -p "$(pid 0)" -o "$WRK_PERF" -- sleep "$SECONDS_PER" \
        2>/dev/null &
      PERF=$!
    fi
    run "b$i" "$(url "$i")" "$WORK/dtc.lua" "$(pid "$i")"
    [ -z "$PERF" ] || wait "$PERF"
  done
  [ -z "${RELAY:-}" ] || run relay "$RELAY" "$WORK/dtc.lua" "$RELAY_PID"
  echo "round $r of $ROUNDS done" >&2
done

median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
FLOOR=$(cut -d' ' -f1 "$WORK/floor" | median)
echo "| path | sends/s (median of $ROUNDS × ${SECONDS_PER} s) | ratio to floor | CPU s / 10,000 | RSS MB |"
echo "|---|---|---|---|---|"
printf "| the simulator hit directly (one hop, the floor) | %.0f | 1.000 | — | — |\n" "$FLOOR"
for i in "${!BUILDS[@]}"; do
  c="b$i"
  rate=$(cut -d' ' -f1 "$WORK/$c" | median)
  name="POST /v1/connections/ops/actions/send_text through \`dtc serve\` (${BUILDS[$i]}, logs at ${LEVELS[$i]})"
  printf "| %s | %.0f | %.3f | %s | %s |\n" "$name" "$rate" "$(awk -v a="$rate" -v b="$FLOOR" 'BEGIN {print a / b}')" \
    "$(cut -d' ' -f2 "$WORK/$c" | median)" "$(cut -d' ' -f3 "$WORK/$c" | median)"
done
if [ -n "${RELAY:-}" ]; then
  rate=$(cut -d' ' -f1 "$WORK/relay" | median)
  printf "| ceiling: a bare relay (axum + the dingtalk crate, two hops, nothing else) | %.0f | %.3f | %s | %s |\n" \
    "$rate" "$(awk -v a="$rate" -v b="$FLOOR" 'BEGIN {print a / b}')" \
    "$(cut -d' ' -f2 "$WORK/relay" | median)" "$(cut -d' ' -f3 "$WORK/relay" | median)"
fi
