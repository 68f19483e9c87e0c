#!/usr/bin/env bash
# The two cross-thread send paths side by side: CrossThreadSend::Direct
# (write under the connection's output lock, the default) against
# CrossThreadSend::Queue (muduo's queueInLoop(sendInLoop)).
#
#   net/bench/cross_thread_send.sh [RUNS] [CLIENTS] [MESSAGES] [SECONDS]
#
# Two loads, both on a server with 2 I/O threads:
# * broadcast: the copy-on-write asio chat server. Each message is
#   broadcast from the sender's loop to every connection, half of them on
#   the other loop. asio_chat_loadtest connects CLIENTS clients, one of
#   them sends MESSAGES messages at once, and it reports the fan-out
#   latency.
# * pingpong: pingpong_server with every reply sent from the other loop
#   (one cross-thread send per message, point to point); pingpong_client
#   runs 100 sessions of 1 KiB blocks for SECONDS.
# The server's CPU time (user + system, from /proc/PID/stat) divided by the
# messages delivered gives the cost per message. The two paths alternate
# within each round, so background load hits them alike; the tables show
# every run and the medians. Loopback only.
set -euo pipefail
cd "$(dirname "$0")/../.."

runs=${1:-3}
clients=${2:-1000}
messages=${3:-500}
secs=${4:-5}
threads=2
port=23611

cargo build --release -q -p net --example asio_chat_server_threaded_efficient \
  --example asio_chat_loadtest --example pingpong_server --example pingpong_client
bin=target/release/examples
hz=$(getconf CLK_TCK)

wait_for_port() {
  for _ in $(seq 1 50); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
}

broadcast() { # mode -> "cpu_us_per_delivery p50_us p99_us"
  RUST_LOG=warn $bin/asio_chat_server_threaded_efficient $port $threads "$1" >/dev/null 2>&1 &
  local spid=$! out ticks
  wait_for_port
  out=$($bin/asio_chat_loadtest 127.0.0.1 $port $threads "$clients" "$messages")
  ticks=$(awk '{print $14 + $15}' "/proc/$spid/stat")
  kill "$spid" 2>/dev/null; wait "$spid" 2>/dev/null || true
  echo "$out" | awk -v t="$ticks" -v hz="$hz" -v n=$((clients * messages)) '
    /messages received/ { got = $3 }
    /fan-out latency/ { p50 = $5; p99 = $9 }
    END { if (got != n) { print "incomplete run: " got " of " n > "/dev/stderr"; exit 1 }
          printf "%.2f %s %s\n", t / hz * 1e6 / n, p50, p99 }'
}

pingpong() { # mode -> "cpu_us_per_message MiB/s"
  $bin/pingpong_server 127.0.0.1 $port $threads "$1" >/dev/null 2>&1 &
  local spid=$! out ticks
  wait_for_port
  out=$($bin/pingpong_client 127.0.0.1 $port 1 1024 100 "$secs")
  ticks=$(awk '{print $14 + $15}' "/proc/$spid/stat")
  kill "$spid" 2>/dev/null; wait "$spid" 2>/dev/null || true
  echo "$out" | awk -v t="$ticks" -v hz="$hz" '
    /total messages read/ { n = $1 }
    /MiB\/s throughput/ { mibs = $1 }
    END { printf "%.2f %.1f\n", (n > 0 ? t / hz * 1e6 / n : 0), mibs }'
}

median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

declare -A cpu p50 p99 ppcpu ppmibs
for _ in $(seq 1 "$runs"); do
  for mode in direct queue; do
    read -r c a b < <(broadcast $mode)
    cpu[$mode]+="$c "; p50[$mode]+="$a "; p99[$mode]+="$b "
    read -r c m < <(pingpong $mode)
    ppcpu[$mode]+="$c "; ppmibs[$mode]+="$m "
  done
done

# shellcheck disable=SC2086
{
echo "broadcast: $clients clients, $messages messages at once, $threads server threads, $runs runs each"
echo
echo "| send path | server CPU µs per delivery (runs) | median | fan-out p50 µs (median) | p99 µs (median) |"
echo "|---|---|---|---|---|"
for mode in direct queue; do
  echo "| $mode | ${cpu[$mode]% } | $(median ${cpu[$mode]}) | $(median ${p50[$mode]}) | $(median ${p99[$mode]}) |"
done
echo
echo "pingpong, reply from the other loop: 100 sessions, 1 KiB, ${secs} s, $threads server threads, $runs runs each"
echo
echo "| send path | server CPU µs per message (runs) | median | MiB/s (runs) | median |"
echo "|---|---|---|---|---|"
for mode in direct queue; do
  echo "| $mode | ${ppcpu[$mode]% } | $(median ${ppcpu[$mode]}) | ${ppmibs[$mode]% } | $(median ${ppmibs[$mode]}) |"
done
}
