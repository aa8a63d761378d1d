package helm

import (
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// checkServiceMonitor: one ServiceMonitor whose selector matches every
// Service of the chart, scraping /metrics on the http port.
func checkServiceMonitor(t *testing.T, r *rendered) {
	t.Helper()
	if len(r.custom) != 1 || r.custom[0].GetKind() != "ServiceMonitor" {
		t.Fatalf("want one ServiceMonitor, have %d custom resources", len(r.custom))
	}
	sm := r.custom[0]
	if sm.GetAPIVersion() != "monitoring.coreos.com/v1" || sm.GetName() == "" {
		t.Errorf("ServiceMonitor: apiVersion %s, name %q", sm.GetAPIVersion(), sm.GetName())
	}
	selector, _, err := unstructured.NestedStringMap(sm.Object, "spec", "selector", "matchLabels")
	if err != nil || len(selector) == 0 {
		t.Fatalf("ServiceMonitor spec.selector.matchLabels: %v %v", selector, err)
	}
	for name, svc := range r.services {
		for k, v := range selector {
			if svc.Labels[k] != v {
				t.Errorf("ServiceMonitor does not select Service %s (label %s=%s)", name, k, v)
			}
		}
	}
	endpoints, _, err := unstructured.NestedSlice(sm.Object, "spec", "endpoints")
	if err != nil || len(endpoints) != 1 {
		t.Fatalf("ServiceMonitor spec.endpoints: %v %v", endpoints, err)
	}
	ep, ok := endpoints[0].(map[string]any)
	if !ok || ep["port"] != "http" || ep["path"] != "/metrics" {
		t.Errorf("ServiceMonitor endpoint %v: want port http, path /metrics", endpoints[0])
	}
	for k := range ep {
		if k != "port" && k != "path" && k != "interval" {
			t.Errorf("ServiceMonitor endpoint: unexpected field %s", k)
		}
	}
}

// checkIngress: the Ingress publishes the gateway only (contract §1).
func checkIngress(t *testing.T, r *rendered) {
	t.Helper()
	if len(r.ingresses) != 1 {
		t.Fatalf("production: %d Ingresses, want 1", len(r.ingresses))
	}
	gateway := r.services["gateway"]
	for _, rule := range r.ingresses[0].Spec.Rules {
		for _, p := range rule.HTTP.Paths {
			if p.Backend.Service == nil || gateway == nil || p.Backend.Service.Name != gateway.Name {
				t.Errorf("Ingress path %s: backend %+v, want the gateway's Service", p.Path, p.Backend)
			}
		}
	}
}
