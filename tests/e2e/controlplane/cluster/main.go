// Command cluster starts and stops the control plane the end-to-end tests run
// against: etcd, kube-apiserver and kube-controller-manager on loopback, with a
// PKI made for the run. No kubelet and no scheduler: Pods stay Pending.
//
//	cluster up DIR --bin BINDIR   start, wait until ready, write DIR/env, return
//	cluster down DIR              stop what up started (idempotent)
package main

import (
	"fmt"
	"os"
)

const usage = "usage: cluster up DIR --bin BINDIR | cluster down DIR"

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "cluster: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	switch {
	case len(args) == 4 && args[0] == "up" && args[2] == "--bin":
		return up(args[1], args[3])
	case len(args) == 2 && args[0] == "down":
		return down(args[1])
	default:
		return fmt.Errorf("%s", usage)
	}
}
