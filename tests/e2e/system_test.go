package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ordersaga/ordersaga/libs/gatewayclient"
	"github.com/ordersaga/ordersaga/libs/testinfra"
	"github.com/ordersaga/ordersaga/libs/testinfra/containers"
	"github.com/ordersaga/ordersaga/saga"
)

// binDir holds the gateway's and every participant's binary, built once
// per test binary.
var binDir string

// gatewayService is the one service that is not a participant (no
// database).
const gatewayService = "gateway"

func TestMain(m *testing.M) {
	// Where only Docker is there, the suite starts its servers in containers.
	containers.Register()
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "ordersaga-e2e-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	root, err := repoRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	// -race: the end-to-end runs double as a race detector for the services.
	args := []string{"build", "-race", "-o", dir + "/"}
	args = append(args, "./apps/"+gatewayService)
	for _, p := range saga.Participants() {
		args = append(args, "./apps/"+p.Name)
	}
	cmd := exec.Command("go", args...)
	cmd.Dir = root
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build services:", err)
		return 1
	}
	binDir = dir
	return m.Run()
}

func repoRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOWORK").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOWORK: %w", err)
	}
	work := strings.TrimSpace(string(out))
	if work == "" || work == "off" {
		return "", fmt.Errorf("not inside the go.work workspace")
	}
	return filepath.Dir(work), nil
}

// System is the gateway and every participant (saga.Participants)
// running against one test's own databases and vhost.
type System struct {
	t      testing.TB
	Broker testinfra.Broker
	// DB is each participant's database URL, by name.
	DB map[string]string
	// URL is each service's base URL, by name, the gateway's included.
	URL        map[string]string
	GatewayURL string
	// API is the gateway's generated client (api_test.go).
	API *gatewayclient.ClientWithResponses
	// order-service's and payment-service's database and base URL, for
	// the tests about them.
	OrderDB, PaymentDB   string
	OrderURL, PaymentURL string
	envs                 map[string][]string
	// Mail is the SMTP server notification-service sends to, where it is
	// a participant (nil otherwise).
	Mail  *mailSink
	mu    sync.Mutex
	procs map[string]*proc
}

type proc struct {
	cmd  *exec.Cmd
	log  *bytes.Buffer
	done chan struct{}
}

// Start runs the system with env added to every service's environment.
func Start(t testing.TB, env map[string]string) *System {
	t.Helper()
	return start(t, testinfra.VHost(t), env)
}

// StartPrivate runs the system on a RabbitMQ node of its own, for faults
// that hit the whole broker (a restart, a resource alarm): never on the
// machine's broker, which other tests and users share.
func StartPrivate(t testing.TB, env map[string]string) (*System, *testinfra.RabbitNode) {
	t.Helper()
	node := testinfra.StartRabbitNode(t)
	return start(t, node.Broker(), env), node
}

func start(t testing.TB, broker testinfra.Broker, env map[string]string) *System {
	t.Helper()
	participants := saga.Participants()
	s := &System{
		t:      t,
		Broker: broker,
		DB:     map[string]string{},
		URL:    map[string]string{},
		envs:   map[string][]string{},
		procs:  map[string]*proc{},
	}
	common := []string{"AMQP_URL=" + s.Broker.AMQPURL, "LOG_LEVEL=debug"}
	for k, v := range env {
		common = append(common, k+"="+v)
	}
	ports := freePorts(t, len(participants)+1)
	gatewayEnv := []string{fmt.Sprintf("HTTP_ADDR=127.0.0.1:%d", ports[0])}
	s.URL[gatewayService] = fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	for i, p := range participants {
		s.DB[p.Name] = testinfra.Database(t)
		s.URL[p.Name] = fmt.Sprintf("http://127.0.0.1:%d", ports[i+1])
		s.envs[p.Name] = append([]string{fmt.Sprintf("HTTP_ADDR=127.0.0.1:%d", ports[i+1]), "DATABASE_URL=" + s.DB[p.Name]}, common...)
		gatewayEnv = append(gatewayEnv, p.URLVar()+"="+s.URL[p.Name])
	}
	s.envs[gatewayService] = append(gatewayEnv, common...)
	s.wireMail(t, common)
	s.GatewayURL = s.URL[gatewayService]
	s.API = newAPI(t, s.GatewayURL)
	s.OrderDB, s.OrderURL = s.DB["order-service"], s.URL["order-service"]
	s.PaymentDB, s.PaymentURL = s.DB["payment-service"], s.URL["payment-service"]
	t.Cleanup(s.stopAll)
	// The gateway last: its /readyz checks every participant.
	for _, p := range participants {
		s.StartService(p.Name)
	}
	s.StartService(gatewayService)
	return s
}

// StartService starts one service and waits until it is ready.
func (s *System) StartService(name string) {
	s.t.Helper()
	s.startProcess(name, name, s.URL[name], s.envs[name])
}

// StartInstance starts another instance of service under the name
// instance, on a port of its own, sharing the service's database and vhost.
func (s *System) StartInstance(service, instance string) {
	s.t.Helper()
	port := freePorts(s.t, 1)[0]
	env := append(append([]string{}, s.envs[service]...), fmt.Sprintf("HTTP_ADDR=127.0.0.1:%d", port))
	s.startProcess(instance, service, fmt.Sprintf("http://127.0.0.1:%d", port), env)
}

func (s *System) startProcess(name, binary, url string, env []string) {
	s.t.Helper()
	cmd := exec.Command(filepath.Join(binDir, binary))
	cmd.Env = append(os.Environ(), env...)
	logs := &bytes.Buffer{}
	w := &lockedWriter{buf: logs}
	cmd.Stdout, cmd.Stderr = w, w
	require.NoError(s.t, cmd.Start(), "start %s", name)
	p := &proc{cmd: cmd, log: logs, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.done) }()
	s.mu.Lock()
	s.procs[name] = p
	s.mu.Unlock()
	deadline := time.Now().Add(60 * time.Second)
	for {
		// Ready, and it is this process that answers: it logs "started"
		// once it listens. A process that could not bind its port exits,
		// and is reported below, never mistaken for whatever holds it.
		resp, err := http.Get(url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if out := w.String(); resp.StatusCode == http.StatusOK && (strings.Contains(out, `"msg":"started"`) || strings.Contains(out, "msg=started")) {
				return
			}
		}
		select {
		case <-p.done:
			s.t.Fatalf("%s exited during start-up:\n%s", name, w.String())
		default:
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("%s not ready after 60s:\n%s", name, w.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop sends SIGTERM to a service and waits for it to exit.
func (s *System) Stop(name string) { s.signal(name, syscall.SIGTERM) }

// Kill SIGKILLs a service.
func (s *System) Kill(name string) { s.signal(name, syscall.SIGKILL) }

func (s *System) signal(name string, sig syscall.Signal) {
	s.mu.Lock()
	p := s.procs[name]
	delete(s.procs, name)
	s.mu.Unlock()
	if p == nil {
		return
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
		s.t.Errorf("%s did not stop within 30s of %v", name, sig)
	}
	if sig == syscall.SIGTERM && p.cmd.ProcessState.ExitCode() != 0 {
		s.t.Errorf("%s exited %d after SIGTERM:\n%s", name, p.cmd.ProcessState.ExitCode(), tail(p))
	}
	if s.t.Failed() {
		s.t.Logf("%s log:\n%s", name, tail(p))
	}
}

func (s *System) stopAll() {
	s.mu.Lock()
	var names []string
	for name := range s.procs {
		names = append(names, name)
	}
	s.mu.Unlock()
	for _, name := range names {
		s.Stop(name)
	}
}

func tail(p *proc) string {
	w := p.cmd.Stdout.(*lockedWriter)
	out := w.String()
	if len(out) > 20000 {
		out = "…" + out[len(out)-20000:]
	}
	return out
}

type lockedWriter struct {
	mu  sync.Mutex
	buf *bytes.Buffer
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

func (w *lockedWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// freePorts reserves n ports for the test's services (testinfra.ReservePorts):
// nobody else is given them until the test ends, however long a service
// takes to bind its port or stays down while the test restarts it.
func freePorts(t testing.TB, n int) []int { return testinfra.ReservePorts(t, n) }

// Do sends a raw request to the gateway and decodes a successful JSON
// answer into out: for the checks of the wire itself (api_test.go says
// which); every other call goes through s.API.
func (s *System) Do(method, path string, body any, headers map[string]string, out any) *http.Response {
	s.t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(s.t, err)
		r = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, s.GatewayURL+path, r)
	require.NoError(s.t, err)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(s.t, err, "%s %s", method, path)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(s.t, err)
	if out != nil && len(data) > 0 && resp.StatusCode < 300 {
		require.NoError(s.t, json.Unmarshal(data, out), "decode %s %s: %s", method, path, data)
	}
	return resp
}
