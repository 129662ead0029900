#!/usr/bin/env bash
# One command from a fresh Debian 12 machine to a running hemsd on embedded defaults:
# installs what is missing, builds (Release), and runs hemsd in the foreground with its data
# under ./data, CWMP on 127.0.0.1:7547 and the admin API on 127.0.0.1:7557.
set -euo pipefail
cd "$(dirname "$0")/.."
ops/install-deps.sh
cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release -DHM_TESTS=OFF >/dev/null
cmake --build build-release -j"$(nproc)"
cat <<'MSG'

hemsd is starting with its embedded defaults (data in ./data). Next:
  open http://127.0.0.1:7557/               # the dashboard (devices, sessions, alarms, PM)
  curl http://127.0.0.1:7557/healthz        # liveness (also on the CWMP port)
  curl http://127.0.0.1:7557/metrics        # Prometheus metrics
  point a HeNB's ManagementServer.URL at http://<this host>:7547/cwmp
  build-release/hems-loadgen --target 127.0.0.1:7547 --scenario boot --devices 1000
                                            # 1,000 simulated HeNBs register (hemsctl devices)
  build-release/hemsd --print-config        # every setting, documented
  build-release/hemsd --help                # command-line options
Stop with Ctrl-C (graceful: in-flight requests finish).

MSG
dm=$(ls "$PWD"/ops/datamodels/*.xml | paste -sd, -)
exec build-release/hemsd --set "datamodel.files=$dm" "$@"
