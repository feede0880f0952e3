package main

// The in-range address the API server gives the `kubernetes` Service.
const (
	serviceClusterIPRange = "10.0.0.0/24"
	serviceClusterIP      = "10.0.0.1"
)

// identity is a user that authenticates with a client certificate of the run's CA.
type identity struct {
	file   string // base name of its certificate, key and kubeconfig
	user   string
	groups []string
}

var (
	admin      = identity{file: "admin", user: "admin", groups: []string{"system:masters"}}
	controller = identity{file: "kube-controller-manager", user: "system:kube-controller-manager"}
	// alice may only edit in the namespaces the tests bind her to.
	alice      = identity{file: "alice", user: "alice"}
	identities = []identity{admin, controller, alice}
)
