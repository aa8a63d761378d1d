// Package helm checks the Helm chart deploy/helm/ordersaga: rendered with
// Helm's own library, strictly decoded into Kubernetes API types, and held
// against the contract's services, probes, ports and variables.
package helm
