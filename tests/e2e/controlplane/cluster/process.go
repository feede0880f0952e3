package main

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// pidsFile lists "NAME PID" for every process group up started, one a line, each
// written as soon as the process starts so that down can stop a partial up.
const pidsFile = "pids"

// etcdDataFile lists the etcd data directories up made (one per start attempt), for down.
const etcdDataFile = "etcd-data"

// start runs a component in a process group of its own (so down can stop it with
// whatever it forked), its output appended to DIR/logs/NAME.log.
func start(dir, name, binary string, args []string) (*exec.Cmd, error) {
	logPath := filepath.Join(dir, "logs", name+".log")
	log, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer log.Close()
	cmd := exec.Command(binary, args...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	pids, err := os.OpenFile(filepath.Join(dir, pidsFile), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer pids.Close()
	if _, err := fmt.Fprintf(pids, "%s %d\n", name, cmd.Process.Pid); err != nil {
		return nil, err
	}
	return cmd, nil
}

// freePort asks the kernel for a free loopback port. The port is closed again before
// the component binds it, so another process may take it first: callers retry.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// errPortTaken says a component exited because another process took its port.
var errPortTaken = errors.New("port taken")

// waitFor polls ready until it succeeds, the process exits or the time runs out.
// An exit whose log says the address is in use is errPortTaken.
func waitFor(name string, cmd *exec.Cmd, dir string, timeout time.Duration, ready func() error) error {
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			tail := logTail(dir, name)
			if strings.Contains(tail, "address already in use") {
				return errPortTaken
			}
			return fmt.Errorf("%s exited (%v) before it was ready; the end of logs/%s.log:\n%s", name, err, name, tail)
		case <-time.After(250 * time.Millisecond):
		}
		if last = ready(); last == nil {
			return nil
		}
	}
	return fmt.Errorf("%s not ready after %s (last check: %v); see %s", name, timeout, last,
		filepath.Join(dir, "logs", name+".log"))
}

func logTail(dir, name string) string {
	data, err := os.ReadFile(filepath.Join(dir, "logs", name+".log"))
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > 15 {
		lines = lines[len(lines)-15:]
	}
	return strings.Join(lines, "\n")
}

type started struct {
	name string
	pid  int
}

func readPids(dir string) ([]started, error) {
	f, err := os.Open(filepath.Join(dir, pidsFile))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []started
	scanner := bufio.NewScanner(f)
	for scanner.Scan() {
		fields := strings.Fields(scanner.Text())
		if len(fields) != 2 {
			continue
		}
		pid, err := strconv.Atoi(fields[1])
		if err != nil || pid <= 1 {
			continue
		}
		out = append(out, started{name: fields[0], pid: pid})
	}
	return out, scanner.Err()
}

// alive says whether the process up started is still running: its pid names a
// live process (not a zombie left unreaped) whose command is that component's.
func alive(p started) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.pid))
	if err != nil {
		return false
	}
	// "PID (COMM) STATE ...": COMM may hold spaces and parentheses, STATE follows the last ")".
	text := string(stat)
	close := strings.LastIndexByte(text, ')')
	open := strings.IndexByte(text, '(')
	if open < 0 || close < open || len(text) < close+3 {
		return false
	}
	comm, state := text[open+1:close], text[close+2]
	return state != 'Z' && state != 'X' && strings.HasPrefix(p.name, comm)
}
