#!/usr/bin/env bash
# Real nats-server processes for the NATS relay tests, on loopback only:
# one JetStream server and a 3-node JetStream cluster.
#
#   servers.sh install          apt-get install nats-server if missing
#   servers.sh start            start whatever is not running; prints the
#                               `export` lines the tests read (eval them)
#   servers.sh stop             stop every server started here
#   servers.sh stop-node NAME   stop one (single | c1 | c2 | c3), store kept
#   servers.sh kill-node NAME   the same with SIGKILL (a crash)
#   servers.sh start-node NAME  start one again on the same store
#
# State (configs, stores, logs, pid files) lives in $CARELEDGER_NATS_DIR
# (default /tmp/careledger-nats-$UID). Ports: single 14222, cluster clients
# 14223-14225, cluster routes 16223-16225.
set -euo pipefail
dir=${CARELEDGER_NATS_DIR:-/tmp/careledger-nats-$(id -u)}
nodes=(single c1 c2 c3)

port_of() {
    case $1 in
        single) echo 14222 ;; c1) echo 14223 ;; c2) echo 14224 ;; c3) echo 14225 ;;
        *) echo "unknown server $1" >&2; exit 2 ;;
    esac
}

write_config() {
    local name=$1 port
    port=$(port_of "$name")
    mkdir -p "$dir/$name"
    {
        echo "server_name: $name"
        echo "listen: 127.0.0.1:$port"
        # max_payload stays at the 1 MB default: larger entries travel in chunks.
        echo "pid_file: \"$dir/$name.pid\""
        echo "jetstream { store_dir: \"$dir/$name\" }"
        if [ "$name" != single ]; then
            local route=$((port + 2000))
            echo "cluster {"
            echo "  name: careledger-test"
            echo "  listen: 127.0.0.1:$route"
            echo "  routes: [nats-route://127.0.0.1:16223, nats-route://127.0.0.1:16224, nats-route://127.0.0.1:16225]"
            echo "}"
        fi
    } >"$dir/$name.conf"
}

running() {
    local pid_file="$dir/$1.pid"
    [ -f "$pid_file" ] && kill -0 "$(cat "$pid_file")" 2>/dev/null
}

wait_port() {
    local port=$1 i
    for i in $(seq 1 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    echo "nats-server on port $port did not start; see $dir/*.log" >&2
    return 1
}

start_node() {
    local name=$1
    if running "$name"; then return 0; fi
    command -v nats-server >/dev/null || { echo "nats-server not installed (servers.sh install)" >&2; exit 1; }
    mkdir -p "$dir"
    write_config "$name"
    if (exec 3<>"/dev/tcp/127.0.0.1/$(port_of "$name")") 2>/dev/null; then
        echo "port $(port_of "$name") is taken by another process (servers from another" \
             "CARELEDGER_NATS_DIR?); stop them first" >&2
        exit 1
    fi
    nohup nats-server -c "$dir/$name.conf" >>"$dir/$name.log" 2>&1 &
    wait_port "$(port_of "$name")"
}

stop_node() {
    local name=$1 pid
    running "$name" || return 0
    pid=$(cat "$dir/$name.pid")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$dir/$name.pid"
}

case ${1:-} in
    install)
        if ! command -v nats-server >/dev/null; then
            (apt-get update -qq && apt-get install -y -qq nats-server) >&2
        fi
        nats-server --version >&2
        ;;
    start)
        for name in "${nodes[@]}"; do start_node "$name"; done
        echo "export CARELEDGER_NATS_DIR=$dir"
        echo "export CARELEDGER_NATS_URL=nats://127.0.0.1:14222"
        echo "export CARELEDGER_NATS_CLUSTER=nats://127.0.0.1:14223,nats://127.0.0.1:14224,nats://127.0.0.1:14225"
        ;;
    stop)
        for name in "${nodes[@]}"; do stop_node "$name"; done
        ;;
    stop-node) stop_node "${2:?server name}" ;;
    kill-node)
        if running "${2:?server name}"; then
            kill -9 "$(cat "$dir/$2.pid")"
            for _ in $(seq 1 50); do running "$2" || break; sleep 0.1; done
            rm -f "$dir/$2.pid"
        fi
        ;;
    start-node) start_node "${2:?server name}" ;;
    *) sed -n '2,15p' "$0"; exit 2 ;;
esac
