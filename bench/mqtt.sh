#!/usr/bin/env bash
# MQTT publish throughput of `beacon broker` with telemetry on and off, of a three-node
# Beacon cluster with telemetry on and off, and of Debian's mosquitto as a reference, all
# in one run: QoS 0 and QoS 1, 64-byte payloads, fan-out 1 (PAIRS publisher/subscriber
# pairs, each publisher on its own topic). In the cluster the publishers connect to node 3
# and the subscribers to node 1, so every message crosses the cluster (rmqtt's raft
# cluster forwards a publish to the nodes whose routes match).
#
#   bash bench/mqtt.sh          # ROUNDS=4 PAIRS=4 MESSAGES=150000 CLUSTER_MESSAGES=50000
#
# One node's runs send each subscriber more messages (MESSAGES) than its queue holds (both
# brokers queue up to 100,000 per subscriber here; Beacon's default, like EMQX's, is 1,000,
# after which QoS 1 messages to a slow subscriber are dropped); the cluster's runs last
# about 30 s, during which the cluster's flow control holds every publisher back. The
# clock stops when the last message is delivered.
# "Telemetry on" is the worst case: the node reports every 2 s (initial delay 0) to a
# local collector over HTTP during the whole run. Each round measures off then on, or on
# then off (alternating between rounds, so that a drift within a round cancels out); the
# median of the rounds is printed, and the on/off ratio as the median and the geometric
# mean of the per-round ratios. The cluster is started once per round and QoS and switched at runtime through
# node 1's REST API (`PUT /api/v5/telemetry/status`, which reaches every node): both runs
# of a pair share the processes, their raft leader and their memory, which differ far more
# between two starts than telemetry costs. Everything runs on 127.0.0.1 on free ports.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
source bench/lib.sh

ROUNDS="${ROUNDS:-4}"
PAIRS="${PAIRS:-4}"
MESSAGES="${MESSAGES:-150000}"
# Cross-node delivery is about 20 times slower than one node's: fewer messages per cluster
# run keep it near 30 s, still with every publisher held back by the cluster's flow control.
CLUSTER_MESSAGES="${CLUSTER_MESSAGES:-50000}"

apt_install mosquitto
MOSQUITTO="$(command -v mosquitto || echo /usr/sbin/mosquitto)"

build_release beacon-node mqtt_load

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# A collector for the "telemetry on" runs.
BEACON_LOG=warn "$BEACON" collector --listen 127.0.0.1:0 --console-listen 127.0.0.1:0 \
  --db "sqlite://$work/collector.db" \
  >"$work/collector.out" 2>"$work/collector.err" &
started $!
collector_url="$(wait_line "$work/collector.out" '^beacon collector listening on \([^ ]*\).*' $!)"

# start_broker DIR LOG_LEVEL [VAR=VALUE...]: a `beacon broker` in the background ($! is
# its pid) with what every node of this bench shares (free ports, reports every 2 s to the
# local collector, 100,000-message queues) and the settings given.
start_broker() {
  local dir="$1" level="$2"
  shift 2
  env EMQX_LISTENERS__TCP__DEFAULT__BIND="127.0.0.1:0" \
    EMQX_DASHBOARD__LISTENERS__HTTP__BIND="127.0.0.1:0" \
    EMQX_TELEMETRY__URL="$collector_url/api/telemetry" \
    EMQX_TELEMETRY__INTERVAL=2s EMQX_TELEMETRY__INITIAL_DELAY=0s \
    EMQX_MQTT__MAX_MQUEUE_LEN=100000 BEACON_LOG="$level" "$@" \
    "$BEACON" broker --config /dev/null --data-dir "$dir/data" \
    >"$dir/broker.out" 2>"$dir/broker.err" &
}

start_beacon() { # telemetry=on|off -> sets port and server_pid
  local dir="$work/beacon-$RANDOM"
  mkdir -p "$dir"
  local enable=true
  [ "$1" = off ] && enable=false
  start_broker "$dir" error EMQX_TELEMETRY__ENABLE="$enable"
  server_pid=$!
  started "$server_pid"
  port="$(wait_line "$dir/broker.out" '^beacon broker: MQTT listening on 127.0.0.1:\([0-9]*\)' "$server_pid")"
}

start_mosquitto() {
  port="$(free_port)"
  printf 'listener %s 127.0.0.1\nallow_anonymous true\nmax_queued_messages 100000\n' "$port" >"$work/mosquitto.conf"
  "$MOSQUITTO" -c "$work/mosquitto.conf" >"$work/mosquitto.log" 2>&1 &
  server_pid=$!
  started "$server_pid"
  for _ in $(seq 1 50); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0; sleep 0.1; done
  die "mosquitto did not start"
}

# Three free cluster ports P, each with P + 1000 (raft's) free too.
cluster_ports() {
  python3 -c '
import socket
held, ports = [], []
while len(ports) < 3:
    s = socket.socket(); s.bind(("127.0.0.1", 0)); held.append(s)
    p = s.getsockname()[1]
    r = socket.socket()
    try:
        r.bind(("127.0.0.1", p + 1000)); held.append(r); ports.append(p)
    except OSError:
        pass
print(" ".join(map(str, ports)))'
}

DASHBOARD_PASSWORD="bench-$$-$RANDOM"

start_cluster() { # -> sets port (node 3), sub_port (node 1), dashboards, tokens, cluster_pids
  local seeds="" i p dir
  read -r -a cports <<<"$(cluster_ports)"
  for i in 1 2 3; do seeds+="${seeds:+,}beacon$i@127.0.0.1:${cports[$((i - 1))]}"; done
  cluster_pids=()
  local dirs=()
  for i in 1 2 3; do
    dir="$work/cluster-$RANDOM-$i"
    mkdir -p "$dir"
    dirs+=("$dir")
    start_broker "$dir" "${CLUSTER_LOG:-error}" EMQX_NODE__NAME="beacon$i@127.0.0.1" \
      EMQX_CLUSTER__DISCOVERY_STRATEGY=static EMQX_CLUSTER__STATIC__SEEDS="$seeds" \
      EMQX_DASHBOARD__DEFAULT_PASSWORD="$DASHBOARD_PASSWORD"
    cluster_pids+=($!)
    started $!
  done
  local ports=()
  for i in 0 1 2; do
    p="$(wait_line "${dirs[$i]}/broker.out" '^beacon broker: MQTT listening on 127.0.0.1:\([0-9]*\)' "${cluster_pids[$i]}")"
    ports+=("$p")
  done
  sub_port="${ports[0]}"
  port="${ports[2]}"
  dashboards=()
  tokens=()
  for i in 0 1 2; do
    p="$(wait_line "${dirs[$i]}/broker.out" '^beacon broker: dashboard on \(http:[^ ]*\)' "${cluster_pids[$i]}")"
    dashboards+=("$p")
    tokens+=("$(curl -fsS -X POST "$p/api/v5/login" -H 'content-type: application/json' \
      -d "{\"username\":\"admin\",\"password\":\"$DASHBOARD_PASSWORD\"}" | jq -er .token)")
  done
  # Ready when a message published on node 3 reaches a subscriber on node 1.
  for _ in $(seq 1 30); do
    run_to_end "$work/probe.out" "$LOAD" --port "$port" --sub-port "$sub_port" --qos 1 \
      --pairs 1 --messages 10 --timeout 5 2>/dev/null || true
    grep -q 'delivered=10 ' "$work/probe.out" && return 0
    sleep 1
  done
  die "the cluster did not route node 3 -> node 1"
}

# switch_cluster on|off: telemetry switched at runtime on node 1, and so on every node;
# returns once all three nodes say so.
switch_cluster() {
  local enable=true i
  [ "$1" = off ] && enable=false
  # Putting the state a node already has is refused (400, as in EMQX).
  if [ "$(api GET 0 /api/v5/telemetry/status | jq -r .enable)" != "$enable" ]; then
    api PUT 0 /api/v5/telemetry/status "{\"enable\":$enable}" >/dev/null
  fi
  for _ in $(seq 1 100); do
    for i in 0 1 2; do
      [ "$(api GET "$i" /api/v5/telemetry/status | jq -r .enable)" = "$enable" ] || continue 2
    done
    return 0
  done
  die "the cluster did not switch telemetry $1"
}

# api METHOD NODE PATH [BODY]: a REST call to node NODE (0-based) of the cluster.
api() {
  curl -fsS -X "$1" "${dashboards[$2]}$3" -H "authorization: Bearer ${tokens[$2]}" \
    -H 'content-type: application/json' ${4:+-d "$4"}
}

stop_cluster() {
  local pid
  for pid in "${cluster_pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${cluster_pids[@]}"; do stop "$pid"; done
}

TARGETS=(beacon-telemetry-off beacon-telemetry-on cluster-telemetry-off cluster-telemetry-on mosquitto)
declare -A results

# measure TARGET QOS MESSAGES: one load run against $port (and $sub_port), recorded under
# TARGET.
measure() {
  run_to_end "$work/load.out" "$LOAD" --port "$port" ${sub_port:+--sub-port "$sub_port"} \
    --qos "$2" --pairs "$PAIRS" --messages "$3"
  local line rate delivered
  line="$(cat "$work/load.out")"
  rate="$(sed -n 's/.*per_second=\([0-9]*\).*/\1/p' <<<"$line")"
  delivered="$(sed -n 's/.*delivered=\([0-9]*\).*/\1/p' <<<"$line")"
  results["$1/$2/delivered"]+="$delivered "
  results["$1/$2"]+="$rate "
  echo "round $round qos $2 $1: $line" >&2
}

for round in $(seq 1 "$ROUNDS"); do
  # Odd rounds measure off first, even rounds on first.
  if ((round % 2)); then order=(off on); else order=(on off); fi
  for qos in 0 1; do
    sub_port=""
    for telemetry in "${order[@]}"; do
      start_beacon "$telemetry"
      measure "beacon-telemetry-$telemetry" "$qos" "$MESSAGES"
      stop "$server_pid"
    done
    start_cluster
    # Not recorded: a cluster's first run is 2 to 2.5 times as fast as every later one (see
    # BENCHMARKS.md), so both measured runs come after it.
    run_to_end "$work/load.out" "$LOAD" --port "$port" --sub-port "$sub_port" --qos "$qos" \
      --pairs "$PAIRS" --messages "$CLUSTER_MESSAGES"
    for telemetry in "${order[@]}"; do
      switch_cluster "$telemetry"
      measure "cluster-telemetry-$telemetry" "$qos" "$CLUSTER_MESSAGES"
    done
    stop_cluster
    sub_port=""
    start_mosquitto
    measure mosquitto "$qos" "$MESSAGES"
    stop "$server_pid"
  done
done

# The middle value, or the mean of the two middle ones.
median() {
  tr ' ' '\n' | grep -v '^$' | sort -g |
    awk '{ a[NR] = $1 } END { m = int((NR + 1) / 2); if (NR % 2) print a[m]; else print (a[m] + a[m + 1]) / 2 }'
}
echo
printf '%-22s %12s %12s %16s\n' target "QoS 0 msg/s" "QoS 1 msg/s" "QoS 1 delivered"
for target in "${TARGETS[@]}"; do
  sent=$((PAIRS * MESSAGES))
  case "$target" in cluster-*) sent=$((PAIRS * CLUSTER_MESSAGES)) ;; esac
  printf '%-22s %12s %12s %16s\n' "$target" \
    "$(median <<<"${results[$target/0]}")" "$(median <<<"${results[$target/1]}")" \
    "$(median <<<"${results[$target/1/delivered]}") of $sent"
done
geomean() {
  tr ' ' '\n' | grep -v '^$' | awk '{ s += log($1) } END { printf "%.3f\n", exp(s / NR) }'
}

# Ratios are taken per round (on and off ran back to back) and their median printed: the
# machine's load drifts between rounds far more than between two neighbouring runs.
for kind in beacon cluster; do
  for qos in 0 1; do
    read -r -a offs <<<"${results[$kind-telemetry-off/$qos]}"
    read -r -a ons <<<"${results[$kind-telemetry-on/$qos]}"
    ratios=""
    for i in "${!offs[@]}"; do
      ratios+="$(python3 -c "print(f'{${ons[$i]}/${offs[$i]}:.3f}')") "
    done
    # Rounds alternate which of the pair runs first, so over an even number of rounds the
    # geometric mean cancels a drift between a pair's first and second run.
    echo "$kind QoS $qos: telemetry on / off, per round: $ratios-> median $(median <<<"$ratios"), geometric mean $(geomean <<<"$ratios")"
  done
done
