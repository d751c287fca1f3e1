// Package deploy holds no code: its tests check the deployment files at the
// repository root (Dockerfile, docker-compose.yml, Makefile) without Docker,
// so that a change to one of them that breaks a promise the README makes
// (static non-root image, Redis with AOF and a healthcheck, ports on
// loopback only, no literal token, the image's build flags equal to
// `make docker-build-local`) fails `go test ./...`.
package deploy
