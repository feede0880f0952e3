package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Attempts per component when another process takes a picked port first.
const bindAttempts = 5

type layout struct {
	dir, bin, pki   string
	etcdURL, apiURL string
}

func up(dir, bin string) error {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	if bin, err = filepath.Abs(bin); err != nil {
		return err
	}
	if running := runningIn(dir); len(running) > 0 {
		return fmt.Errorf("%s is already up (%s still running): run `tests/e2e/cluster down %s` first",
			dir, strings.Join(running, ", "), dir)
	}
	for _, stale := range []string{pidsFile, "env"} {
		if err := os.Remove(filepath.Join(dir, stale)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, "logs"), 0o755); err != nil {
		return err
	}
	l := layout{dir: dir, bin: bin, pki: filepath.Join(dir, "pki")}
	if err := l.bringUp(); err != nil {
		if stopErr := down(dir); stopErr != nil {
			err = fmt.Errorf("%w (and stopping what started: %v)", err, stopErr)
		}
		return err
	}
	fmt.Printf("control plane up: . %s\n", filepath.Join(dir, "env"))
	return nil
}

func (l *layout) bringUp() error {
	began := time.Now()
	if err := makePKI(l.pki); err != nil {
		return err
	}
	if err := l.startEtcd(); err != nil {
		return err
	}
	if err := l.startAPIServer(); err != nil {
		return err
	}
	for _, id := range identities {
		if err := writeKubeconfig(l.kubeconfig(id), l.apiURL, l.caFile(), l.pki, id); err != nil {
			return err
		}
	}
	if err := l.startControllerManager(); err != nil {
		return err
	}
	if err := l.writeEnv(); err != nil {
		return err
	}
	fmt.Printf("ready in %.1fs\n", time.Since(began).Seconds())
	return nil
}

func (l *layout) caFile() string                { return filepath.Join(l.pki, "ca.crt") }
func (l *layout) kubeconfig(id identity) string { return filepath.Join(l.dir, id.file+".kubeconfig") }

// withPorts starts a component on freshly picked ports, again on new ones when it
// reports a taken port (kube-apiserver cannot bind port 0 and say which it got).
func withPorts(count int, attempt func(ports []int) error) error {
	for try := 1; ; try++ {
		ports := make([]int, count)
		for i := range ports {
			p, err := freePort()
			if err != nil {
				return err
			}
			ports[i] = p
		}
		err := attempt(ports)
		if !errors.Is(err, errPortTaken) || try == bindAttempts {
			return err
		}
	}
}

func (l *layout) startEtcd() error {
	// tmpfs and no fsync: a test cluster's data is thrown away with it.
	parent := "/dev/shm"
	if info, err := os.Stat(parent); err != nil || !info.IsDir() {
		parent = l.dir
	}
	return withPorts(2, func(ports []int) error {
		// A fresh data directory per attempt: one that an etcd on other ports started
		// would hold that member's peer URLs.
		data, err := os.MkdirTemp(parent, "deployguard-e2e-etcd-")
		if err != nil {
			return err
		}
		if err := appendLine(filepath.Join(l.dir, etcdDataFile), data); err != nil {
			return err
		}
		client := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
		peer := fmt.Sprintf("http://127.0.0.1:%d", ports[1])
		cmd, err := start(l.dir, "etcd", filepath.Join(l.bin, "etcd"), []string{
			"--name=e2e", "--data-dir=" + data,
			"--listen-client-urls=" + client, "--advertise-client-urls=" + client,
			"--listen-peer-urls=" + peer, "--initial-advertise-peer-urls=" + peer,
			"--initial-cluster=e2e=" + peer,
			"--unsafe-no-fsync=true", "--log-level=warn",
		})
		if err != nil {
			return err
		}
		l.etcdURL = client
		return waitFor("etcd", cmd, l.dir, 60*time.Second, func() error {
			return httpReady(client+"/health", nil)
		})
	})
}

// appendLine adds a line to a file of the run's directory.
func appendLine(path, line string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = fmt.Fprintln(f, line)
	return err
}

func (l *layout) startAPIServer() error {
	return withPorts(1, func(ports []int) error {
		port := strconv.Itoa(ports[0])
		cmd, err := start(l.dir, "kube-apiserver", filepath.Join(l.bin, "kube-apiserver"), []string{
			"--etcd-servers=" + l.etcdURL,
			"--bind-address=127.0.0.1", "--secure-port=" + port,
			// 1.37 checks the advertise address against the default endpoint reconciler.
			"--advertise-address=127.0.0.1", "--endpoint-reconciler-type=none",
			"--tls-cert-file=" + filepath.Join(l.pki, "apiserver.crt"),
			"--tls-private-key-file=" + filepath.Join(l.pki, "apiserver.key"),
			"--client-ca-file=" + l.caFile(),
			"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
			"--service-account-key-file=" + filepath.Join(l.pki, "sa.pub"),
			"--service-account-signing-key-file=" + filepath.Join(l.pki, "sa.key"),
			"--service-cluster-ip-range=" + serviceClusterIPRange,
			"--authorization-mode=RBAC",
			"--enable-admission-plugins=NamespaceLifecycle,LimitRanger,ServiceAccount," +
				"MutatingAdmissionWebhook,ValidatingAdmissionWebhook,ValidatingAdmissionPolicy,ResourceQuota",
			"--allow-privileged=true",
			"--profiling=false",
			"--v=1",
		})
		if err != nil {
			return err
		}
		l.apiURL = "https://127.0.0.1:" + port
		client, err := l.adminClient()
		if err != nil {
			return err
		}
		return waitFor("kube-apiserver", cmd, l.dir, 120*time.Second, func() error {
			return httpReady(l.apiURL+"/readyz", client)
		})
	})
}

func (l *layout) startControllerManager() error {
	kubeconfig := l.kubeconfig(controller)
	err := withPorts(1, func(ports []int) error {
		port := strconv.Itoa(ports[0])
		cmd, err := start(l.dir, "kube-controller-manager", filepath.Join(l.bin, "kube-controller-manager"), []string{
			"--kubeconfig=" + kubeconfig,
			"--authentication-kubeconfig=" + kubeconfig, "--authorization-kubeconfig=" + kubeconfig,
			"--bind-address=127.0.0.1", "--secure-port=" + port,
			"--leader-elect=false",
			// Each controller acts as its own ServiceAccount, so the Pods a ReplicaSet
			// makes arrive as system:serviceaccount:kube-system:replicaset-controller.
			"--use-service-account-credentials=true",
			"--service-account-private-key-file=" + filepath.Join(l.pki, "sa.key"),
			"--root-ca-file=" + l.caFile(),
			"--cluster-signing-cert-file=" + l.caFile(),
			"--cluster-signing-key-file=" + filepath.Join(l.pki, "ca.key"),
			"--controllers=*",
			// The defaults (20/30) throttle a large scale-up.
			"--kube-api-qps=500", "--kube-api-burst=1000",
			"--v=1",
		})
		if err != nil {
			return err
		}
		return waitFor("kube-controller-manager", cmd, l.dir, 120*time.Second, func() error {
			return httpReady("https://127.0.0.1:"+port+"/healthz", insecureClient())
		})
	})
	if err != nil {
		return err
	}
	return l.waitForControllers()
}

// waitForControllers waits until the controllers have run once: the service-account
// controller made default/default and the replicaset controller has its own account.
func (l *layout) waitForControllers() error {
	client, err := l.adminClient()
	if err != nil {
		return err
	}
	deadline := time.Now().Add(120 * time.Second)
	for _, path := range []string{
		"/api/v1/namespaces/default/serviceaccounts/default",
		"/api/v1/namespaces/kube-system/serviceaccounts/replicaset-controller",
	} {
		for {
			err := httpReady(l.apiURL+path, client)
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("kube-controller-manager's controllers not running after 120s (%s: %v); see %s",
					path, err, filepath.Join(l.dir, "logs", "kube-controller-manager.log"))
			}
			time.Sleep(250 * time.Millisecond)
		}
	}
	return nil
}

func (l *layout) writeEnv() error {
	values := [][2]string{
		{"KUBECONFIG", l.kubeconfig(admin)},
		{"ALICE_KUBECONFIG", l.kubeconfig(alice)},
		{"API_SERVER", l.apiURL},
		{"KUBECTL", filepath.Join(l.bin, "kubectl")},
		{"CLUSTER_CA", l.caFile()},
	}
	var b strings.Builder
	for _, kv := range values {
		fmt.Fprintf(&b, "%s=%s\n", kv[0], shellQuote(kv[1]))
	}
	return os.WriteFile(filepath.Join(l.dir, "env"), []byte(b.String()), 0o644)
}

// shellQuote single-quotes a value for POSIX sh.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// runningIn names the processes of an earlier up in dir that are still alive.
func runningIn(dir string) []string {
	pids, err := readPids(dir)
	if err != nil {
		return nil
	}
	var names []string
	for _, p := range pids {
		if alive(p) {
			names = append(names, fmt.Sprintf("%s pid %d", p.name, p.pid))
		}
	}
	return names
}
