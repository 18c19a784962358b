#!/usr/bin/env bash
# MQTT publish throughput of `beacon broker` with telemetry on and off, of a three-node
# Beacon cluster with telemetry on and off, and of Debian's mosquitto as a reference, all
# in one run: QoS 0 and QoS 1, 64-byte payloads, fan-out 1 (PAIRS publisher/subscriber
# pairs, each publisher on its own topic). In the cluster the publishers connect to node 3
# and the subscribers to node 1, so every message crosses the cluster (rmqtt's raft
# cluster forwards a publish to the nodes whose routes match).
#
#   bash bench/mqtt.sh                       # ROUNDS=3 PAIRS=4 MESSAGES=20000
#
# Both brokers queue up to 100,000 messages per subscriber (Beacon's default, like
# EMQX's, is 1,000, after which QoS 1 messages to a slow subscriber are dropped).
# "Telemetry on" is the worst case: the node reports every 2 s (initial delay 0) to a
# local collector over HTTP during the whole run. Rounds alternate the targets; the median
# of the rounds is printed, and the on/off ratio is the median of the per-round ratios.
# Everything runs on 127.0.0.1 on free ports.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
source bench/lib.sh

ROUNDS="${ROUNDS:-3}"
PAIRS="${PAIRS:-4}"
MESSAGES="${MESSAGES:-20000}"

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

start_beacon() { # telemetry=on|off -> sets port and server_pid
  local dir="$work/beacon-$RANDOM"
  mkdir -p "$dir"
  local enable=true
  [ "$1" = off ] && enable=false
  EMQX_LISTENERS__TCP__DEFAULT__BIND="127.0.0.1:0" \
    EMQX_DASHBOARD__LISTENERS__HTTP__BIND="127.0.0.1:0" \
    EMQX_TELEMETRY__ENABLE="$enable" \
    EMQX_TELEMETRY__URL="$collector_url/api/telemetry" \
    EMQX_TELEMETRY__INTERVAL=2s EMQX_TELEMETRY__INITIAL_DELAY=0s \
    EMQX_MQTT__MAX_MQUEUE_LEN=100000 \
    BEACON_LOG=error "$BEACON" broker --config /dev/null --data-dir "$dir/data" \
    >"$dir/broker.out" 2>"$dir/broker.err" &
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

start_cluster() { # telemetry=on|off -> sets port (node 3), sub_port (node 1), cluster_pids
  local enable=true seeds="" i p dir
  [ "$1" = off ] && enable=false
  read -r -a cports <<<"$(cluster_ports)"
  for i in 1 2 3; do seeds+="${seeds:+,}beacon$i@127.0.0.1:${cports[$((i - 1))]}"; done
  cluster_pids=()
  local dirs=()
  for i in 1 2 3; do
    dir="$work/cluster-$RANDOM-$i"
    mkdir -p "$dir"
    dirs+=("$dir")
    EMQX_NODE__NAME="beacon$i@127.0.0.1" \
      EMQX_CLUSTER__DISCOVERY_STRATEGY=static EMQX_CLUSTER__STATIC__SEEDS="$seeds" \
      EMQX_LISTENERS__TCP__DEFAULT__BIND="127.0.0.1:0" \
      EMQX_DASHBOARD__LISTENERS__HTTP__BIND="127.0.0.1:0" \
      EMQX_TELEMETRY__ENABLE="$enable" \
      EMQX_TELEMETRY__URL="$collector_url/api/telemetry" \
      EMQX_TELEMETRY__INTERVAL=2s EMQX_TELEMETRY__INITIAL_DELAY=0s \
      EMQX_MQTT__MAX_MQUEUE_LEN=100000 \
      BEACON_LOG=error "$BEACON" broker --config /dev/null --data-dir "$dir/data" \
      >"$dir/broker.out" 2>"$dir/broker.err" &
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
  # Ready when a message published on node 3 reaches a subscriber on node 1.
  for _ in $(seq 1 30); do
    run_to_end "$work/probe.out" "$LOAD" --port "$port" --sub-port "$sub_port" --qos 1 \
      --pairs 1 --messages 10 --timeout 5 2>/dev/null || true
    grep -q 'delivered=10 ' "$work/probe.out" && return 0
    sleep 1
  done
  die "the cluster did not route node 3 -> node 1"
}

stop_cluster() {
  local pid
  for pid in "${cluster_pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${cluster_pids[@]}"; do stop "$pid"; done
}

TARGETS=(beacon-telemetry-off beacon-telemetry-on cluster-telemetry-off cluster-telemetry-on mosquitto)
declare -A results
for round in $(seq 1 "$ROUNDS"); do
  for qos in 0 1; do
    for target in "${TARGETS[@]}"; do
      sub_port=""
      case "$target" in
        beacon-telemetry-off) start_beacon off ;;
        beacon-telemetry-on) start_beacon on ;;
        cluster-telemetry-off) start_cluster off ;;
        cluster-telemetry-on) start_cluster on ;;
        mosquitto) start_mosquitto ;;
      esac
      run_to_end "$work/load.out" "$LOAD" --port "$port" ${sub_port:+--sub-port "$sub_port"} \
        --qos "$qos" --pairs "$PAIRS" --messages "$MESSAGES"
      case "$target" in
        cluster-*) stop_cluster ;;
        *) stop "$server_pid" ;;
      esac
      line="$(cat "$work/load.out")"
      rate="$(sed -n 's/.*per_second=\([0-9]*\).*/\1/p' <<<"$line")"
      delivered="$(sed -n 's/.*delivered=\([0-9]*\).*/\1/p' <<<"$line")"
      results["$target/$qos/delivered"]+="$delivered "
      echo "round $round qos $qos $target: $line" >&2
      results["$target/$qos"]+="$rate "
    done
  done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo
expected=$((PAIRS * MESSAGES))
printf '%-22s %12s %12s %22s\n' target "QoS 0 msg/s" "QoS 1 msg/s" "QoS 1 delivered (of $expected)"
for target in "${TARGETS[@]}"; do
  printf '%-22s %12s %12s %22s\n' "$target" \
    "$(median <<<"${results[$target/0]}")" "$(median <<<"${results[$target/1]}")" \
    "$(median <<<"${results[$target/1/delivered]}")"
done
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
    echo "$kind QoS $qos: telemetry on / off, per round: $ratios-> median $(median <<<"$ratios")"
  done
done
