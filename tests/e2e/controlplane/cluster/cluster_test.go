package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestShellQuoteSurvivesQuotes(t *testing.T) {
	for in, want := range map[string]string{
		"/tmp/dir":   "'/tmp/dir'",
		"it's here":  `'it'\''s here'`,
		"a b $HOME;": "'a b $HOME;'",
	} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestPidsFileSkipsBadLines(t *testing.T) {
	dir := t.TempDir()
	text := "etcd 123\n\ngarbage\nkube-apiserver x\nkube-controller-manager 456\ninit 1\n"
	if err := os.WriteFile(filepath.Join(dir, pidsFile), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	pids, err := readPids(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(pids) != 2 || pids[0] != (started{"etcd", 123}) || pids[1] != (started{"kube-controller-manager", 456}) {
		t.Errorf("readPids = %v", pids)
	}
}

func TestAliveChecksTheCommand(t *testing.T) {
	self := os.Getpid()
	comm, err := os.ReadFile("/proc/self/comm")
	if err != nil {
		t.Skip("no /proc")
	}
	name := strings.TrimSpace(string(comm))
	if !alive(started{name, self}) {
		t.Errorf("this process (%s) is not alive", name)
	}
	if alive(started{"etcd", self}) {
		t.Error("a pid whose command is not the component's counts as alive")
	}
	if alive(started{"etcd", 1 << 30}) {
		t.Error("a pid that does not exist counts as alive")
	}
}

func TestDownOfANeverStartedDirectory(t *testing.T) {
	if err := down(t.TempDir()); err != nil {
		t.Errorf("down of an empty directory: %v", err)
	}
}
