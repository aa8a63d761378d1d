package helm

import (
	"fmt"
	"net/url"
	"path"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// The values files rendered: the defaults (a trial install) and a
// production-like one.
func TestChartDefaults(t *testing.T) {
	r := render(t, "")
	c := readContract(t)
	checkChart(t, r, c, false)
	if len(r.custom) != 0 {
		t.Errorf("defaults: %d custom resources; the ServiceMonitor needs the Prometheus Operator's CRDs and is off by default", len(r.custom))
	}
	if !strings.Contains(r.notes, "WARNING") {
		t.Error("defaults: NOTES.txt does not warn about the demo credentials and the generated JWT key")
	}
}

func TestChartProduction(t *testing.T) {
	r := render(t, "values-production.yaml")
	c := readContract(t)
	checkChart(t, r, c, true)
	checkServiceMonitor(t, r)
	if len(r.hpas) == 0 {
		t.Error("production: no HorizontalPodAutoscaler")
	}
	for _, h := range r.hpas {
		if !hasDeploymentNamed(r, h.Spec.ScaleTargetRef.Name) {
			t.Errorf("HPA %s scales %s, which is not a Deployment of the chart", h.Name, h.Spec.ScaleTargetRef.Name)
		}
	}
	// Nothing secret in production values: every credential from a Secret
	// made outside the chart.
	if len(r.secrets) != 0 {
		t.Errorf("production: the chart rendered %d Secrets; want none (existingSecret everywhere)", len(r.secrets))
	}
	checkIngress(t, r)
	// A real signing key: users-service reads it from the JWT Secret.
	users := r.deployments["users-service"]
	if users == nil || !hasEnv(users, "JWT_SIGNING_KEY_FILE") {
		t.Error("production: users-service has no JWT_SIGNING_KEY_FILE")
	}
}

func hasEnv(d *appsv1.Deployment, name string) bool {
	for _, e := range d.Spec.Template.Spec.Containers[0].Env {
		if e.Name == name {
			return true
		}
	}
	return false
}

// checkChart holds one render against the contract.
func checkChart(t *testing.T, r *rendered, c *contract, production bool) {
	t.Helper()
	if len(r.deployments) != len(c.services) {
		t.Errorf("%d Deployments, contract §1 has %d services", len(r.deployments), len(c.services))
	}
	for name, port := range c.participants {
		if d := r.deployments[name]; d == nil {
			t.Errorf("participant %s of saga/saga.conf: no Deployment (add it to the chart's values.yaml services)", name)
		} else if p := containerPort(d); p != port {
			t.Errorf("participant %s: container port %d, saga.conf says %d", name, p, port)
		}
	}
	for _, s := range c.services {
		t.Run(s.name, func(t *testing.T) {
			d := r.deployments[s.name]
			if d == nil {
				t.Fatalf("contract §1 service %s: no Deployment", s.name)
			}
			checkDeployment(t, r, d, s)
			checkService(t, r, s)
			checkPDB(t, r, d)
			env := environment(t, r, d)
			checkVariables(t, c, s, env, production)
			checkURLs(t, r, c, s, env)
		})
	}
}

func containerPort(d *appsv1.Deployment) int {
	cs := d.Spec.Template.Spec.Containers
	if len(cs) != 1 || len(cs[0].Ports) != 1 {
		return -1
	}
	return int(cs[0].Ports[0].ContainerPort)
}

func hasDeploymentNamed(r *rendered, name string) bool {
	for _, d := range r.deployments {
		if d.Name == name {
			return true
		}
	}
	return false
}

// checkDeployment: the port, the probes, the resources and the security
// context of contract §1 and the issue.
func checkDeployment(t *testing.T, r *rendered, d *appsv1.Deployment, s service) {
	t.Helper()
	if p := containerPort(d); p != s.port {
		t.Errorf("container port %d, want %d", p, s.port)
	}
	c := d.Spec.Template.Spec.Containers[0]
	probe := func(what string, p *corev1.Probe, path string) {
		switch {
		case p == nil || p.HTTPGet == nil:
			t.Errorf("%s: no HTTP probe", what)
		case p.HTTPGet.Path != path:
			t.Errorf("%s: path %s, want %s", what, p.HTTPGet.Path, path)
		case p.HTTPGet.Port != intstr.FromString("http") && p.HTTPGet.Port != intstr.FromInt32(int32(s.port)):
			t.Errorf("%s: port %s, want http (%d)", what, p.HTTPGet.Port.String(), s.port)
		}
	}
	probe("readiness", c.ReadinessProbe, "/readyz")
	probe("liveness", c.LivenessProbe, "/healthz")
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Errorf("resources: want cpu and memory requests and a memory limit, have %+v", c.Resources)
	}
	pod := d.Spec.Template.Spec.SecurityContext
	if pod == nil || pod.RunAsNonRoot == nil || !*pod.RunAsNonRoot {
		t.Error("pod securityContext: runAsNonRoot is not true")
	}
	sc := c.SecurityContext
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Error("container securityContext: readOnlyRootFilesystem is not true")
	}
	if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Error("container securityContext: allowPrivilegeEscalation is not false")
	}
	if !strings.HasSuffix(c.Image, "/"+s.name+":"+imageTag(c.Image)) {
		t.Errorf("image %s: want <repository>/%s:<tag>", c.Image, s.name)
	}
	checkVolumes(t, d)
	for k, v := range d.Spec.Selector.MatchLabels {
		if d.Spec.Template.Labels[k] != v {
			t.Errorf("the selector's %s=%s is not a label of the pods", k, v)
		}
	}
}

// checkVolumes: every mount names a volume of the pod, and a file variable
// (…_FILE) lies in a mounted Secret.
func checkVolumes(t *testing.T, d *appsv1.Deployment) {
	t.Helper()
	volumes := map[string]corev1.Volume{}
	for _, v := range d.Spec.Template.Spec.Volumes {
		volumes[v.Name] = v
	}
	c := d.Spec.Template.Spec.Containers[0]
	secretDirs := map[string]bool{}
	for _, m := range c.VolumeMounts {
		v, ok := volumes[m.Name]
		if !ok {
			t.Errorf("volume mount %s: no such volume", m.Name)
			continue
		}
		if v.Secret != nil {
			secretDirs[m.MountPath] = true
		}
	}
	for _, e := range c.Env {
		if strings.HasSuffix(e.Name, "_FILE") && !secretDirs[path.Dir(e.Value)] {
			t.Errorf("%s=%s: not in a mounted Secret", e.Name, e.Value)
		}
	}
}

func imageTag(image string) string {
	i := strings.LastIndex(image, ":")
	if i < 0 || strings.Contains(image[i:], "/") || image[i+1:] == "" || image[i+1:] == "latest" {
		return "\x00" // no tag, or latest: matches nothing
	}
	return image[i+1:]
}

// checkService: a ClusterIP Service on the contract's port, selecting the
// Deployment's pods (only the gateway is published, by the Ingress).
func checkService(t *testing.T, r *rendered, s service) {
	t.Helper()
	svc := r.services[s.name]
	if svc == nil {
		t.Fatal("no Service")
	}
	if svc.Spec.Type != corev1.ServiceTypeClusterIP {
		t.Errorf("Service type %s, want ClusterIP", svc.Spec.Type)
	}
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != int32(s.port) || svc.Spec.Ports[0].Name != "http" {
		t.Errorf("Service ports %+v, want http %d", svc.Spec.Ports, s.port)
	}
	pods := r.deployments[s.name].Spec.Template.Labels
	for k, v := range svc.Spec.Selector {
		if pods[k] != v {
			t.Errorf("Service selector %s=%s does not select the pods", k, v)
		}
	}
}

// checkPDB: a PodDisruptionBudget selects the Deployment's pods.
func checkPDB(t *testing.T, r *rendered, d *appsv1.Deployment) {
	t.Helper()
	for _, p := range r.pdbs {
		if p.Spec.Selector == nil || len(p.Spec.Selector.MatchLabels) == 0 {
			continue
		}
		all := true
		for k, v := range p.Spec.Selector.MatchLabels {
			all = all && d.Spec.Template.Labels[k] == v
		}
		if all {
			return
		}
	}
	t.Error("no PodDisruptionBudget selects its pods")
}

// envValue is one variable of a container: its value when the chart knows
// it (a ConfigMap, a literal, a Secret it rendered), and where from.
type envValue struct {
	value    string
	known    bool
	secret   string // the Secret it comes from, if any
	optional bool
}

// environment is the container's variables, from env and envFrom.
func environment(t *testing.T, r *rendered, d *appsv1.Deployment) map[string]envValue {
	t.Helper()
	c := d.Spec.Template.Spec.Containers[0]
	env := map[string]envValue{}
	for _, from := range c.EnvFrom {
		if from.ConfigMapRef == nil {
			t.Errorf("envFrom %+v: want ConfigMaps only (credentials by secretKeyRef)", from)
			continue
		}
		cm := r.configMaps[from.ConfigMapRef.Name]
		if cm == nil {
			t.Errorf("envFrom: ConfigMap %s is not rendered", from.ConfigMapRef.Name)
			continue
		}
		for k, v := range cm.Data {
			env[k] = envValue{value: v, known: true}
		}
	}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			env[e.Name] = envValue{value: e.Value, known: true}
		case e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			v := envValue{secret: ref.Name, optional: ref.Optional != nil && *ref.Optional}
			if s := r.secrets[ref.Name]; s != nil {
				v.value, v.known = s.StringData[ref.Key], true
				if _, ok := s.StringData[ref.Key]; !ok {
					t.Errorf("%s: Secret %s rendered without key %s", e.Name, ref.Name, ref.Key)
				}
			}
			env[e.Name] = v
		default:
			t.Errorf("%s: a source other than a Secret key", e.Name)
		}
	}
	return env
}

// credentials are variables that carry a password: from a Secret only.
var credentials = map[string]bool{"AMQP_URL": true, "DATABASE_URL": true, "ADMIN_PASSWORD": true, "SMTP_URL": true}

// checkVariables: every variable of contract §1 that s reads is set
// (those whose default is "unset" may be absent but from production, where
// they are optional keys of its Secret), credentials from Secrets.
func checkVariables(t *testing.T, c *contract, s service, env map[string]envValue, production bool) {
	t.Helper()
	for _, v := range c.variables {
		if !contains(c.usedBy(t, v), s.name) {
			continue
		}
		e, ok := env[v.name]
		switch {
		case !ok && v.unset && !production:
		case !ok:
			t.Errorf("contract §1 variable %s (used by %s) is not set", v.name, v.usedBy)
		case credentials[v.name] && e.secret == "":
			t.Errorf("%s carries a credential: want it from a Secret, not in plain configuration", v.name)
		}
	}
	if e := env["HTTP_ADDR"]; e.value != ":"+strconv.Itoa(s.port) {
		t.Errorf("HTTP_ADDR %q, want :%d", e.value, s.port)
	}
	if s.database != "" && !production {
		e := env["DATABASE_URL"]
		u, err := url.Parse(e.value)
		if err != nil || strings.TrimPrefix(u.Path, "/") != s.database || u.User.Username() != strings.ReplaceAll(s.name, "-", "_") {
			t.Errorf("DATABASE_URL %q: want database %s as role %s", e.value, s.database, strings.ReplaceAll(s.name, "-", "_"))
		}
	}
	// On Kubernetes the broker is a cluster: the retry tiers are quorum
	// queues there (README: clusters), in every process that declares them.
	if _, amqp := env["AMQP_URL"]; amqp && env["RABBITMQ_QUORUM_RETRY_TIERS"].value != "true" {
		t.Errorf("RABBITMQ_QUORUM_RETRY_TIERS %q, want true beside AMQP_URL", env["RABBITMQ_QUORUM_RETRY_TIERS"].value)
	}
	if e := env["AMQP_URL"]; !production {
		u, err := url.Parse(e.value)
		if err != nil || u.User.Username() != s.name {
			t.Errorf("AMQP_URL %q: want the broker user %s (deploy/rabbitmq/definitions.json)", e.value, s.name)
		}
	}
}

// upstreams are the <NAME>_URL variables of contract §1's prose: the gateway
// reaches every other service, notification-service reaches invoice-service.
func upstreams(c *contract, s service) []string {
	var out []string
	for _, o := range c.services {
		if s.name == "gateway" && o.name != "gateway" {
			out = append(out, o.name)
		}
	}
	if s.name == "notification-service" {
		out = append(out, "invoice-service")
	}
	return out
}

// checkURLs: each <NAME>_URL s needs names the Service of NAME on its port.
func checkURLs(t *testing.T, r *rendered, c *contract, s service, env map[string]envValue) {
	t.Helper()
	for _, up := range upstreams(c, s) {
		v := strings.ToUpper(strings.ReplaceAll(up, "-", "_")) + "_URL"
		svc := r.services[up]
		if svc == nil {
			t.Errorf("%s: no Service %s", v, up)
			continue
		}
		want := fmt.Sprintf("http://%s:%d", svc.Name, svc.Spec.Ports[0].Port)
		if got := env[v].value; got != want {
			t.Errorf("%s = %q, want %q", v, got, want)
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
