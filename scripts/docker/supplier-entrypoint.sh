#!/bin/sh
# Entry point of the gcn supplier image (Dockerfile.supplier).
#
# Runs `gcn supplier` in place of this shell (exec), so node is PID 1 of the
# container and `docker stop`'s SIGTERM reaches it directly: the supplier
# stops gracefully and exits 0. It writes and generates nothing itself; every
# setting comes from GCN_* environment variables (`gcn supplier --help` lists
# them all), and arguments given to the container are passed on as flags,
# which beat the environment.
#
#   GCN_APP_DIR   where the app lives (default /app; the tests point it at a checkout)
#   GCN_DATA_DIR  keys, the model and state (default /data, the image's volume)
#
# `docker run IMAGE claim ...` runs `gcn supplier claim ...` with the same data
# directory (its evm.key), to claim a settled day's earnings.
set -eu

app_dir="${GCN_APP_DIR:-/app}"
data_dir="${GCN_DATA_DIR:-/data}"

if [ "${1:-}" = claim ]; then
  shift
  exec node "$app_dir/packages/cli/bin/gcn.js" supplier claim --data-dir "$data_dir" "$@"
fi
exec node "$app_dir/packages/cli/bin/gcn.js" supplier --data-dir "$data_dir" "$@"
