package testinfra

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// RabbitNode is a RabbitMQ node of one test's own, for faults that hit the
// whole broker (a restart, a resource alarm): the machine's broker is shared
// with every other test and every other user, so such faults never touch it.
// The node runs RabbitMQ's own scripts directly (no service manager), with
// its own node name, ports, Erlang cookie and directories under a temporary
// directory; it registers with the machine's epmd like any node.
type RabbitNode struct {
	// Name is the Erlang node name, e.g. ordersaga-test-1a2b3c4d@localhost.
	Name string
	// AMQPURL connects to the node's default vhost as guest.
	AMQPURL string
	// ManagementURL is the node's management API base URL with credentials.
	ManagementURL string

	amqpAddr string
	dir      string
	scripts  string
	env      []string
	cmd      *exec.Cmd
	exited   chan struct{}
	output   *syncBuffer
}

// StartRabbitNode starts a private RabbitMQ node for t, waits until it
// answers AMQP and its management API, and stops and removes it when the
// test ends. Without RabbitMQ's scripts it fails the test under CI and skips
// it elsewhere (RABBITMQ_SCRIPTS_DIR names the directory holding
// rabbitmq-server and rabbitmqctl when they are not where Debian puts them).
func StartRabbitNode(t testing.TB) *RabbitNode {
	t.Helper()
	scripts, err := rabbitScripts()
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("test dependency missing (CI is set, so this fails): %v", err)
		}
		t.Skipf("test dependency missing: %v", err)
	}
	// Free ports are found by listening and closing, so another process
	// may take one before the node binds it: try again with fresh ports.
	return startWithRetries(t, scripts, strings.ToUpper(randomHex(10)))
}

// startWithRetries starts a node with the Erlang cookie given, trying
// fresh ports when another process took one first.
func startWithRetries(t testing.TB, scripts, cookie string) *RabbitNode {
	t.Helper()
	var errs []error
	for range 3 {
		n, err := startRabbitNode(t, scripts, cookie)
		if err == nil {
			return n
		}
		errs = append(errs, err)
	}
	t.Fatalf("start private rabbitmq node: %v", errors.Join(errs...))
	return nil
}

// StartRabbitCluster starts a private RabbitMQ cluster of size nodes for t,
// like StartRabbitNode: the nodes share an Erlang cookie, and each after the
// first joins the first. Quorum queues declared afterwards get a member on
// every node. Its Broker's AMQPURL names every node (rabbit.ParseURLs), its
// ManagementURL is the last node's.
func StartRabbitCluster(t testing.TB, size int) []*RabbitNode {
	t.Helper()
	scripts, err := rabbitScripts()
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("test dependency missing (CI is set, so this fails): %v", err)
		}
		t.Skipf("test dependency missing: %v", err)
	}
	cookie := strings.ToUpper(randomHex(10))
	nodes := []*RabbitNode{startWithRetries(t, scripts, cookie)}
	for range size - 1 {
		n := startWithRetries(t, scripts, cookie)
		n.MustCtl(t, "stop_app")
		n.MustCtl(t, "join_cluster", nodes[0].Name)
		n.MustCtl(t, "start_app")
		n.MustCtl(t, "await_startup", "--timeout", "60")
		nodes = append(nodes, n)
	}
	out := nodes[0].MustCtl(t, "cluster_status", "--formatter", "json")
	for _, n := range nodes {
		if !strings.Contains(out, n.Name) {
			t.Fatalf("%s is not in the cluster: %s", n.Name, out)
		}
	}
	return nodes
}

// ClusterBroker is the default vhost of a cluster as a Broker: every node in
// its AMQP URL, in order, and the last node's management API.
func ClusterBroker(nodes []*RabbitNode) Broker {
	hosts := make([]string, len(nodes))
	for i, n := range nodes {
		hosts[i] = n.amqpAddr
	}
	return Broker{
		AMQPURL:       "amqp://guest:guest@" + strings.Join(hosts, ",") + "/",
		VHost:         "/",
		ManagementURL: nodes[len(nodes)-1].ManagementURL,
	}
}

// rabbitScripts finds the directory of rabbitmq-server and rabbitmqctl. On
// Debian the ones on PATH are wrappers that switch to the rabbitmq user and
// drop the environment that makes a node private; the real scripts live in
// /usr/lib/rabbitmq/bin.
func rabbitScripts() (string, error) {
	candidates := []string{os.Getenv("RABBITMQ_SCRIPTS_DIR"), "/usr/lib/rabbitmq/bin"}
	if p, err := exec.LookPath("rabbitmq-server"); err == nil {
		candidates = append(candidates, filepath.Dir(p))
	}
	for _, dir := range candidates {
		if dir == "" {
			continue
		}
		if isFile(filepath.Join(dir, "rabbitmq-server")) && isFile(filepath.Join(dir, "rabbitmqctl")) {
			return dir, nil
		}
	}
	return "", errors.New("rabbitmq-server not found (install rabbitmq-server or set RABBITMQ_SCRIPTS_DIR)")
}

func isFile(path string) bool {
	info, err := os.Stat(path)
	return err == nil && info.Mode().IsRegular()
}

func startRabbitNode(t testing.TB, scripts, cookie string) (*RabbitNode, error) {
	t.Helper()
	dir, err := os.MkdirTemp("", "ordersaga-rabbit-")
	if err != nil {
		return nil, fmt.Errorf("make node directory: %w", err)
	}
	ports, err := freeTCPPorts(3)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	amqpPort, distPort, mgmtPort := ports[0], ports[1], ports[2]
	name := "ordersaga-test-" + randomHex(4) + "@localhost"
	n := &RabbitNode{
		Name:          name,
		AMQPURL:       fmt.Sprintf("amqp://guest:guest@127.0.0.1:%d/", amqpPort),
		amqpAddr:      fmt.Sprintf("127.0.0.1:%d", amqpPort),
		ManagementURL: fmt.Sprintf("http://guest:guest@127.0.0.1:%d", mgmtPort),
		dir:           dir,
		scripts:       scripts,
		exited:        make(chan struct{}),
		output:        &syncBuffer{},
	}
	if err := n.writeFiles(amqpPort, mgmtPort, cookie); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	n.env = n.environment(amqpPort, distPort)
	n.cmd = exec.Command(filepath.Join(scripts, "rabbitmq-server"))
	n.cmd.Dir = dir
	n.cmd.Env = n.env
	n.cmd.Stdout, n.cmd.Stderr = n.output, n.output
	n.cmd.SysProcAttr = nodeProcAttr()
	started := make(chan error)
	go func() {
		// On Linux the node gets SIGTERM when the thread that started it
		// ends (not the process): keep this thread until the node is gone.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		err := n.cmd.Start()
		started <- err
		if err == nil {
			_ = n.cmd.Wait()
		}
		close(n.exited)
	}()
	if err := <-started; err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start %s: %w", name, err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if err := n.waitUp(ctx); err != nil {
		n.stop()
		return nil, fmt.Errorf("%s: %w\n%s", name, err, n.tail())
	}
	t.Cleanup(n.stop)
	return n, nil
}

// Broker is the node's default vhost, as a Broker.
func (n *RabbitNode) Broker() Broker {
	return Broker{AMQPURL: n.AMQPURL, VHost: "/", ManagementURL: n.ManagementURL}
}

// writeFiles writes the node's configuration, plugins and Erlang cookie.
func (n *RabbitNode) writeFiles(amqpPort, mgmtPort int, cookie string) error {
	conf := fmt.Sprintf(`listeners.tcp.default = 127.0.0.1:%d
management.tcp.ip = 127.0.0.1
management.tcp.port = %d
loopback_users = none
`, amqpPort, mgmtPort)
	files := []struct {
		name string
		body string
		mode os.FileMode
	}{
		{"rabbitmq.conf", conf, 0o644},
		{"enabled_plugins", "[rabbitmq_management].\n", 0o644},
		// An empty environment file: the machine's own
		// (/etc/rabbitmq/rabbitmq-env.conf) may name its node.
		{"rabbitmq-env.conf", "", 0o644},
		// rabbitmqctl finds the cookie in $HOME, as the node does: both
		// get this directory as their home.
		{".erlang.cookie", cookie, 0o400},
	}
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(n.dir, f.name), []byte(f.body), f.mode); err != nil {
			return fmt.Errorf("write %s: %w", f.name, err)
		}
	}
	for _, sub := range []string{"mnesia", "log"} {
		if err := os.Mkdir(filepath.Join(n.dir, sub), 0o755); err != nil {
			return fmt.Errorf("make %s: %w", sub, err)
		}
	}
	return nil
}

// environment is the node's and rabbitmqctl's environment: the caller's,
// without anything that would point RabbitMQ or Erlang elsewhere.
func (n *RabbitNode) environment(amqpPort, distPort int) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "RABBITMQ_") || strings.HasPrefix(kv, "ERL_") || strings.HasPrefix(kv, "HOME=") {
			continue
		}
		env = append(env, kv)
	}
	in := func(name string) string { return filepath.Join(n.dir, name) }
	return append(env,
		"HOME="+n.dir,
		"RABBITMQ_NODENAME="+n.Name,
		fmt.Sprintf("RABBITMQ_NODE_PORT=%d", amqpPort),
		fmt.Sprintf("RABBITMQ_DIST_PORT=%d", distPort),
		"RABBITMQ_CONF_ENV_FILE="+in("rabbitmq-env.conf"),
		"RABBITMQ_CONFIG_FILE="+in("rabbitmq.conf"),
		"RABBITMQ_ADVANCED_CONFIG_FILE="+in("advanced.config"),
		"RABBITMQ_ENABLED_PLUGINS_FILE="+in("enabled_plugins"),
		"RABBITMQ_MNESIA_BASE="+in("mnesia"),
		"RABBITMQ_LOG_BASE="+in("log"),
		"RABBITMQ_PID_FILE="+in("rabbitmq.pid"),
		// Erlang distribution on loopback only.
		"RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=-kernel inet_dist_use_interface {127,0,0,1}",
	)
}

// waitUp returns once the node answers AMQP and its management API.
func (n *RabbitNode) waitUp(ctx context.Context) error {
	var last error
	for {
		if last = amqpAnswers(ctx, n.amqpAddr); last == nil {
			if last = Management(n.ManagementURL, http.MethodGet, "/api/overview", ""); last == nil {
				return nil
			}
		}
		select {
		case <-n.exited:
			return fmt.Errorf("node exited during start-up")
		case <-ctx.Done():
			return fmt.Errorf("not answering: %w", last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// amqpAnswers sends the AMQP 0-9-1 protocol header and expects the broker's
// first frame, a method frame (connection.start): a listening socket alone
// may still belong to a booting node.
func amqpAnswers(ctx context.Context, addr string) error {
	d := net.Dialer{Timeout: 2 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write([]byte("AMQP\x00\x00\x09\x01")); err != nil {
		return err
	}
	frameType := make([]byte, 1)
	if _, err := io.ReadFull(conn, frameType); err != nil {
		return fmt.Errorf("read connection.start: %w", err)
	}
	if frameType[0] != 1 {
		return fmt.Errorf("unexpected first frame type %d", frameType[0])
	}
	return nil
}

// Ctl runs rabbitmqctl against the node and returns its combined output.
func (n *RabbitNode) Ctl(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(n.scripts, "rabbitmqctl"), append([]string{"-n", n.Name}, args...)...)
	cmd.Dir = n.dir
	cmd.Env = n.env
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("rabbitmqctl %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// MustCtl runs rabbitmqctl against the node and fails t if it fails.
func (n *RabbitNode) MustCtl(t testing.TB, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := n.Ctl(ctx, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// SetMemoryAlarm lowers the node's memory watermark to one byte: the node
// raises its memory alarm at once and blocks every publishing connection.
func (n *RabbitNode) SetMemoryAlarm(t testing.TB) {
	t.Helper()
	n.MustCtl(t, "set_vm_memory_high_watermark", "absolute", "1")
}

// ClearMemoryAlarm restores the default watermark (40% of the memory), which
// clears the alarm.
func (n *RabbitNode) ClearMemoryAlarm(t testing.TB) {
	t.Helper()
	n.MustCtl(t, "set_vm_memory_high_watermark", "0.4")
}

// stop halts the node, kills whatever it left and removes its directory.
func (n *RabbitNode) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, _ = n.Ctl(ctx, "stop")
	select {
	case <-n.exited:
	case <-time.After(15 * time.Second):
	}
	killGroup(n.cmd.Process)
	<-n.exited
	_ = os.RemoveAll(n.dir)
}

// tail is the end of the node's console output, for start-up failures.
func (n *RabbitNode) tail() string {
	out := n.output.String()
	if len(out) > 4000 {
		out = "…" + out[len(out)-4000:]
	}
	return out
}

func freeTCPPorts(n int) ([]int, error) {
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free port: %w", err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func randomHex(bytes int) string {
	b := make([]byte, bytes)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// syncBuffer is the node's console output, read while the node writes it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
