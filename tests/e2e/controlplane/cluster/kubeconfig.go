package main

import (
	"fmt"
	"os"
	"path/filepath"
)

// writeKubeconfig writes a kubeconfig that reaches apiURL as id, with absolute paths
// to the run's CA and the identity's client certificate.
func writeKubeconfig(path, apiURL, caFile, pki string, id identity) error {
	config := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: e2e
  cluster:
    server: %s
    certificate-authority: %s
users:
- name: %s
  user:
    client-certificate: %s
    client-key: %s
contexts:
- name: %s
  context:
    cluster: e2e
    user: %s
current-context: %s
`, apiURL, caFile, id.user,
		filepath.Join(pki, id.file+".crt"), filepath.Join(pki, id.file+".key"),
		id.file, id.user, id.file)
	return os.WriteFile(path, []byte(config), 0o600)
}
