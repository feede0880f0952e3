// The end-to-end tests' control-plane harness (tests/e2e/cluster calls it): PKI,
// free loopback ports, process groups, readiness waits and the env file. Standard
// library only; the binaries it starts come from the kube/ and etcd/ modules.
module deployguard.invalid/e2e/controlplane

go 1.26.0
