#!/usr/bin/env bash
# MQTT publish throughput of `beacon broker` with telemetry on and off, and of Debian's
# mosquitto as a reference, all in one run: QoS 0 and QoS 1, 64-byte payloads, fan-out 1
# (PAIRS publisher/subscriber pairs, each publisher on its own topic).
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

declare -A results
for round in $(seq 1 "$ROUNDS"); do
  for qos in 0 1; do
    for target in beacon-telemetry-off beacon-telemetry-on mosquitto; do
      case "$target" in
        beacon-telemetry-off) start_beacon off ;;
        beacon-telemetry-on) start_beacon on ;;
        mosquitto) start_mosquitto ;;
      esac
      run_to_end "$work/load.out" "$LOAD" --port "$port" --qos "$qos" --pairs "$PAIRS" --messages "$MESSAGES"
      stop "$server_pid"
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
for target in beacon-telemetry-off beacon-telemetry-on mosquitto; do
  printf '%-22s %12s %12s %22s\n' "$target" \
    "$(median <<<"${results[$target/0]}")" "$(median <<<"${results[$target/1]}")" \
    "$(median <<<"${results[$target/1/delivered]}")"
done
# Ratios are taken per round (on and off ran back to back) and their median printed: the
# machine's load drifts between rounds far more than between two neighbouring runs.
for qos in 0 1; do
  read -r -a offs <<<"${results[beacon-telemetry-off/$qos]}"
  read -r -a ons <<<"${results[beacon-telemetry-on/$qos]}"
  ratios=""
  for i in "${!offs[@]}"; do
    ratios+="$(python3 -c "print(f'{${ons[$i]}/${offs[$i]}:.3f}')") "
  done
  echo "QoS $qos: telemetry on / off, per round: $ratios-> median $(median <<<"$ratios")"
done
