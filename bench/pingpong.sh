#!/usr/bin/env bash
# Pingpong throughput: net's examples (muduo's pingpong, ported) against the
# tokio comparator in bench/, same arguments as muduo's pingpong.
#
#   bench/pingpong.sh [SECONDS_PER_RUN] [RUNS] [IMPLS]
#
# For 1 and 2 threads (server and client alike), 16 KiB blocks, and 10, 100
# and 1,000 sessions, runs each implementation RUNS times and prints a
# markdown table with every run and the median, in MiB/s. IMPLS defaults to
# "net tokio"; add "muduo" and set MUDUO_BIN to the bin/ folder of a muduo
# build of your own (its pingpong_server and pingpong_client) to run the C++
# original in the same table. The implementations alternate within each row,
# so background noise hits them alike. Everything runs on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."

secs=${1:-10}
runs=${2:-3}
impls=${3:-net tokio}
block=16384
port=33333

cargo build --release -q -p net --example pingpong_server --example pingpong_client
case " $impls " in *" tokio "*) cargo build --release -q -p chat-bench --features tokio-comparator --bin pingpong_tokio ;; esac
bin=target/release

server_cmd() { # impl threads
  case $1 in
    net) echo "$bin/examples/pingpong_server 127.0.0.1 $port $2" ;;
    tokio) echo "$bin/pingpong_tokio server 127.0.0.1 $port $2" ;;
    muduo) echo "${MUDUO_BIN:?set MUDUO_BIN}/pingpong_server 127.0.0.1 $port $2" ;;
  esac
}
client_cmd() { # impl threads sessions
  case $1 in
    net) echo "$bin/examples/pingpong_client 127.0.0.1 $port $2 $block $3 $secs" ;;
    tokio) echo "$bin/pingpong_tokio client 127.0.0.1 $port $2 $block $3 $secs" ;;
    muduo) echo "${MUDUO_BIN:?set MUDUO_BIN}/pingpong_client 127.0.0.1 $port $2 $block $3 $secs" ;;
  esac
}

run_once() { # impl threads sessions -> "MiB/s:server-MiB-per-CPU-second"
  $(server_cmd "$1" "$2") >/dev/null 2>&1 &
  local spid=$!
  for _ in $(seq 1 50); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
  local out ticks
  # muduo logs its result on stderr, ours print it on stdout: read both.
  out=$(timeout $((secs + 30)) $(client_cmd "$1" "$2" "$3") 2>&1 | awk '/MiB\/s throughput/ {for (i = 1; i < NF; i++) if ($(i+1) == "MiB/s") print $i}' | tail -1)
  # Server CPU time (user + system) from /proc: a figure background load
  # disturbs far less than wall-clock throughput.
  ticks=$(awk '{print $14 + $15}' "/proc/$spid/stat")
  kill "$spid" 2>/dev/null; wait "$spid" 2>/dev/null || true
  awk -v mibs="${out:-0}" -v t="$ticks" -v hz="$(getconf CLK_TCK)" -v s="$secs" \
    'BEGIN { cpu = t / hz; printf "%.0f:%.0f", mibs, (cpu > 0 ? mibs * s / cpu : 0) }'
}

median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

echo "| impl | threads | sessions | runs (MiB/s) | median MiB/s | median MiB per server CPU-second |"
echo "|---|---|---|---|---|---|"
for threads in 1 2; do
  for sessions in 10 100 1000; do
    declare -A results=()
    for _ in $(seq 1 "$runs"); do
      for impl in $impls; do results[$impl]+="$(run_once "$impl" "$threads" "$sessions") "; done
    done
    for impl in $impls; do
      local_runs=${results[$impl]% }
      tput_runs=$(for r in $local_runs; do printf '%s ' "${r%%:*}"; done)
      eff_runs=$(for r in $local_runs; do printf '%s ' "${r##*:}"; done)
      # shellcheck disable=SC2086
      echo "| $impl | $threads | $sessions | ${tput_runs% } | $(median $tput_runs) | $(median $eff_runs) |"
    done
    unset results
  done
done
