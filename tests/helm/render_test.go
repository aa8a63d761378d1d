package helm

import (
	"fmt"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/chart/common/util"
	"helm.sh/helm/v4/pkg/chart/loader"
	"helm.sh/helm/v4/pkg/engine"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// root is the repository's root, from this package's directory.
const root = "../.."

var chartDir = filepath.Join(root, "deploy", "helm", "ordersaga")

const (
	release   = "shop"
	namespace = "ordersaga"
)

// rendered is one render of the chart: every object, decoded strictly.
type rendered struct {
	deployments  map[string]*appsv1.Deployment // by app.kubernetes.io/name
	services     map[string]*corev1.Service
	configMaps   map[string]*corev1.ConfigMap // by object name
	secrets      map[string]*corev1.Secret
	pdbs         []*policyv1.PodDisruptionBudget
	hpas         []*autoscalingv2.HorizontalPodAutoscaler
	ingresses    []*networkingv1.Ingress
	custom       []*unstructured.Unstructured
	notes        string
	objectsTotal int
}

// render renders the chart as `helm template` would, with the chart's
// values overridden by valuesFile (empty: the defaults), in strict mode (a
// template that reads a value that does not exist fails).
func render(t *testing.T, valuesFile string) *rendered {
	t.Helper()
	chrt, err := loader.Load(chartDir)
	if err != nil {
		t.Fatalf("load the chart: %v", err)
	}
	overrides := map[string]any{}
	if valuesFile != "" {
		v, err := common.ReadValuesFile(filepath.Join(chartDir, valuesFile))
		if err != nil {
			t.Fatalf("read %s: %v", valuesFile, err)
		}
		overrides = v
	}
	opts := common.ReleaseOptions{Name: release, Namespace: namespace, Revision: 1, IsInstall: true}
	vals, err := util.ToRenderValues(chrt, overrides, opts, nil)
	if err != nil {
		t.Fatalf("values: %v", err)
	}
	files, err := engine.Engine{Strict: true}.RenderWithContext(t.Context(), chrt, vals)
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	r := &rendered{
		deployments: map[string]*appsv1.Deployment{}, services: map[string]*corev1.Service{},
		configMaps: map[string]*corev1.ConfigMap{}, secrets: map[string]*corev1.Secret{},
	}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if strings.HasSuffix(name, "NOTES.txt") {
			r.notes = files[name]
			continue
		}
		for i, doc := range splitDocuments(files[name]) {
			if err := r.add(doc); err != nil {
				t.Errorf("%s, document %d: %v\n%s", name, i+1, err, doc)
			}
		}
	}
	return r
}

var separator = regexp.MustCompile(`(?m)^---[ \t]*$`)

// splitDocuments splits a rendered template into its YAML documents,
// leaving out empty ones (a comment only, or nothing).
func splitDocuments(s string) []string {
	var docs []string
	for _, d := range separator.Split(s, -1) {
		empty := true
		for _, line := range strings.Split(d, "\n") {
			if l := strings.TrimSpace(line); l != "" && !strings.HasPrefix(l, "#") {
				empty = false
				break
			}
		}
		if !empty {
			docs = append(docs, d)
		}
	}
	return docs
}

// customKinds are the custom resources the chart may render, checked as
// unstructured objects; any other kind must be one of add's core kinds.
var customKinds = map[string]bool{"monitoring.coreos.com/v1/ServiceMonitor": true}

// add decodes one document strictly into its k8s.io/api type: a field the
// type does not have, or a value of the wrong type, is an error.
func (r *rendered) add(doc string) error {
	var head struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
	}
	if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
		return err
	}
	r.objectsTotal++
	var err error
	switch head.APIVersion + "/" + head.Kind {
	case "apps/v1/Deployment":
		var o appsv1.Deployment
		if err = yaml.UnmarshalStrict([]byte(doc), &o); err == nil {
			name := o.Labels["app.kubernetes.io/name"]
			if r.deployments[name] != nil {
				return fmt.Errorf("a second Deployment of %q", name)
			}
			r.deployments[name] = &o
		}
	case "v1/Service":
		var o corev1.Service
		if err = yaml.UnmarshalStrict([]byte(doc), &o); err == nil {
			name := o.Labels["app.kubernetes.io/name"]
			if r.services[name] != nil {
				return fmt.Errorf("a second Service of %q", name)
			}
			r.services[name] = &o
		}
	case "v1/ConfigMap":
		var o corev1.ConfigMap
		if err = yaml.UnmarshalStrict([]byte(doc), &o); err == nil {
			r.configMaps[o.Name] = &o
		}
	case "v1/Secret":
		var o corev1.Secret
		if err = yaml.UnmarshalStrict([]byte(doc), &o); err == nil {
			r.secrets[o.Name] = &o
		}
	default:
		return r.addOther(head.APIVersion+"/"+head.Kind, doc)
	}
	return err
}

// addOther decodes the kinds of which a render may hold several unnamed.
func (r *rendered) addOther(kind, doc string) error {
	switch kind {
	case "policy/v1/PodDisruptionBudget":
		var o policyv1.PodDisruptionBudget
		err := yaml.UnmarshalStrict([]byte(doc), &o)
		r.pdbs = append(r.pdbs, &o)
		return err
	case "autoscaling/v2/HorizontalPodAutoscaler":
		var o autoscalingv2.HorizontalPodAutoscaler
		err := yaml.UnmarshalStrict([]byte(doc), &o)
		r.hpas = append(r.hpas, &o)
		return err
	case "networking.k8s.io/v1/Ingress":
		var o networkingv1.Ingress
		err := yaml.UnmarshalStrict([]byte(doc), &o)
		r.ingresses = append(r.ingresses, &o)
		return err
	}
	if !customKinds[kind] {
		return fmt.Errorf("kind %s: neither a core kind this test decodes nor a known custom resource", kind)
	}
	var m map[string]any
	if err := yaml.Unmarshal([]byte(doc), &m); err != nil {
		return err
	}
	r.custom = append(r.custom, &unstructured.Unstructured{Object: m})
	return nil
}
