package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// How long a component gets to exit after SIGTERM before SIGKILL.
const stopGrace = 10 * time.Second

// down stops every process group up started in dir, newest first, and removes the
// etcd data. Idempotent: a dir with nothing running (or never up) is fine.
func down(dir string) error {
	pids, err := readPids(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	for i := len(pids) - 1; i >= 0; i-- {
		stop(pids[i])
	}
	for _, file := range []string{pidsFile, "env"} {
		if err := os.Remove(filepath.Join(dir, file)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	data, err := os.ReadFile(filepath.Join(dir, etcdDataFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, path := range strings.Fields(string(data)) {
		// Only what up made: a data directory named by the harness.
		if strings.HasPrefix(filepath.Base(path), "deployguard-e2e-etcd-") {
			if err := os.RemoveAll(path); err != nil {
				return err
			}
		}
	}
	return os.Remove(filepath.Join(dir, etcdDataFile))
}

func stop(p started) {
	if !alive(p) {
		return
	}
	_ = syscall.Kill(-p.pid, syscall.SIGTERM)
	deadline := time.Now().Add(stopGrace)
	for alive(p) && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if alive(p) {
		fmt.Fprintf(os.Stderr, "cluster: %s (pid %d) still running %s after SIGTERM: killed\n", p.name, p.pid, stopGrace)
		_ = syscall.Kill(-p.pid, syscall.SIGKILL)
	}
}
