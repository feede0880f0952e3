// Command apiload measures admission latency through a real API server: it creates
// Pods at a fixed concurrency and prints each creation's latency, or scales a
// Deployment and prints how long until all its Pods exist. Used by bench/apiserver.sh.
//
//	apiload pods  -kubeconfig-dir DIR -namespace NS -count N -concurrency C -body POD.json
//	apiload scale -kubeconfig-dir DIR -namespace NS -deployment NAME -replicas N
//
// DIR holds the harness's pki/ (admin client certificate) and env (API_SERVER).
package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "apiload: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("usage: apiload pods|scale FLAGS")
	}
	flags := flag.NewFlagSet(args[0], flag.ContinueOnError)
	dir := flags.String("kubeconfig-dir", "", "the cluster directory of tests/e2e/cluster up")
	namespace := flags.String("namespace", "", "namespace")
	count := flags.Int("count", 100, "pods: creations")
	concurrency := flags.Int("concurrency", 4, "pods: creations in flight")
	body := flags.String("body", "", "pods: a Pod as JSON, with metadata.generateName")
	deployment := flags.String("deployment", "", "scale: the Deployment")
	replicas := flags.Int("replicas", 200, "scale: replicas to scale to")
	if err := flags.Parse(args[1:]); err != nil {
		return err
	}
	api, err := newAPI(*dir)
	if err != nil {
		return err
	}
	switch args[0] {
	case "pods":
		pod, err := os.ReadFile(*body)
		if err != nil {
			return err
		}
		return createPods(api, *namespace, pod, *count, *concurrency)
	case "scale":
		return scale(api, *namespace, *deployment, *replicas)
	default:
		return fmt.Errorf("unknown mode %q", args[0])
	}
}

type api struct {
	url    string
	client *http.Client
}

func newAPI(dir string) (*api, error) {
	env, err := os.ReadFile(filepath.Join(dir, "env"))
	if err != nil {
		return nil, err
	}
	var url string
	for _, line := range strings.Split(string(env), "\n") {
		if value, ok := strings.CutPrefix(line, "API_SERVER="); ok {
			url = strings.Trim(value, "'")
		}
	}
	pki := filepath.Join(dir, "pki")
	caPEM, err := os.ReadFile(filepath.Join(pki, "ca.crt"))
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	cert, err := tls.LoadX509KeyPair(filepath.Join(pki, "admin.crt"), filepath.Join(pki, "admin.key"))
	if err != nil {
		return nil, err
	}
	// HTTP/2 as client-go speaks it: one connection, many streams.
	transport := &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}},
		ForceAttemptHTTP2: true,
	}
	return &api{url: url, client: &http.Client{Transport: transport, Timeout: 30 * time.Second}}, nil
}

func (a *api) do(method, path, contentType string, body []byte) ([]byte, error) {
	req, err := http.NewRequest(method, a.url+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 300 {
		return nil, fmt.Errorf("%s %s: %s %s", method, path, resp.Status, out)
	}
	return out, nil
}

// createPods prints one latency in microseconds a line; any failed creation fails the run.
func createPods(a *api, namespace string, pod []byte, count, concurrency int) error {
	path := "/api/v1/namespaces/" + namespace + "/pods"
	jobs := make(chan struct{})
	latencies := make(chan time.Duration, count)
	errs := make(chan error, count)
	var workers sync.WaitGroup
	for range concurrency {
		workers.Add(1)
		go func() {
			defer workers.Done()
			for range jobs {
				began := time.Now()
				if _, err := a.do(http.MethodPost, path, "application/json", pod); err != nil {
					errs <- err
					continue
				}
				latencies <- time.Since(began)
			}
		}()
	}
	for range count {
		jobs <- struct{}{}
	}
	close(jobs)
	workers.Wait()
	close(latencies)
	close(errs)
	for err := range errs {
		return err
	}
	for latency := range latencies {
		fmt.Println(latency.Microseconds())
	}
	return nil
}

// scale sets the Deployment's replicas and prints the seconds until that many of its
// Pods exist (listed by its selector's app label).
func scale(a *api, namespace, deployment string, replicas int) error {
	patch := fmt.Sprintf(`{"spec":{"replicas":%d}}`, replicas)
	began := time.Now()
	if _, err := a.do(http.MethodPatch, "/apis/apps/v1/namespaces/"+namespace+"/deployments/"+deployment+"/scale",
		"application/merge-patch+json", []byte(patch)); err != nil {
		return err
	}
	list := "/api/v1/namespaces/" + namespace + "/pods?labelSelector=app%3D" + deployment
	for time.Since(began) < 5*time.Minute {
		out, err := a.do(http.MethodGet, list, "", nil)
		if err != nil {
			return err
		}
		var pods struct {
			Items []json.RawMessage `json:"items"`
		}
		if err := json.Unmarshal(out, &pods); err != nil {
			return err
		}
		if len(pods.Items) >= replicas {
			fmt.Printf("%.3f\n", time.Since(began).Seconds())
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s/%s: fewer than %d Pods after 5 minutes", namespace, deployment, replicas)
}
