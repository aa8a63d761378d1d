package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/ordersaga/ordersaga/libs/rabbit/mgmt"
)

// Service names, in start order: the gateway's /readyz checks the others.
const (
	Gateway          = "gateway"
	OrderService     = "order-service"
	PaymentService   = "payment-service"
	InventoryService = "inventory-service"
	InvoiceService   = "invoice-service"
)

// Services lists every service the tool can run, in start order.
var Services = []string{OrderService, PaymentService, InventoryService, InvoiceService, Gateway}

// CoreServices are those an order placed with a total needs: the system
// of the figures of record, without the participants added since
// (-inventory=false, -invoices=false).
var CoreServices = []string{OrderService, PaymentService, Gateway}

// Running lists the services of a run, in start order: the core ones and
// each optional participant that is switched on.
func Running(optional map[string]bool) []string {
	var out []string
	for _, name := range Services {
		if on, ok := optional[name]; ok && !on {
			continue
		}
		out = append(out, name)
	}
	return out
}

// Names of databases and vhosts the tool may drop must start with this, so
// that a typo in a flag can never drop a developer's data.
const scratchPrefix = "bench"

// Scratch checks that name is one the tool may drop and recreate.
func Scratch(kind, name string) error {
	if !strings.HasPrefix(name, scratchPrefix) {
		return fmt.Errorf("%s %q: the tool drops and recreates it, so its name must start with %q", kind, name, scratchPrefix)
	}
	for _, r := range name {
		allowed := r == '_' || r == '-' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'
		if !allowed {
			return fmt.Errorf("%s %q: only letters, digits, _ and -", kind, name)
		}
	}
	return nil
}

// Endpoints are where the system under test answers.
type Endpoints struct {
	Gateway, Order, Payment, Inventory, Invoice string // base URLs
}

// URL returns a service's base URL.
func (e Endpoints) URL(name string) string {
	if u := e.fields()[name]; u != nil {
		return *u
	}
	return ""
}

// fields are the base URLs by service name.
func (e *Endpoints) fields() map[string]*string {
	return map[string]*string{Gateway: &e.Gateway, OrderService: &e.Order, PaymentService: &e.Payment,
		InventoryService: &e.Inventory, InvoiceService: &e.Invoice}
}

// Trim drops the base URLs' trailing slashes.
func (e *Endpoints) Trim() {
	for _, u := range e.fields() {
		*u = strings.TrimSuffix(*u, "/")
	}
}

// Infra is where the servers are and which scratch resources are ours.
type Infra struct {
	AMQPURL     string // any vhost; ours replaces it
	VHost       string
	MgmtURL     string // management API, credentials included
	PGAdminURL  string // a connection allowed to create databases
	OrderDB     string
	PaymentDB   string
	InventoryDB string
	InvoiceDB   string
	FloorDB     string
}

// DB is the database of a service, "" for the gateway.
func (in Infra) DB(service string) string {
	return map[string]string{OrderService: in.OrderDB, PaymentService: in.PaymentDB,
		InventoryService: in.InventoryDB, InvoiceService: in.InvoiceDB}[service]
}

// VHostURL is AMQPURL on our vhost.
func (in Infra) VHostURL() (string, error) {
	u, err := amqp.ParseURI(in.AMQPURL)
	if err != nil {
		return "", fmt.Errorf("amqp url: %w", err)
	}
	u.Vhost = in.VHost
	return u.String(), nil
}

// DatabaseURL is PGAdminURL pointed at database db.
func (in Infra) DatabaseURL(db string) (string, error) {
	u, err := url.Parse(in.PGAdminURL)
	if err != nil {
		return "", fmt.Errorf("postgres url: %w", err)
	}
	u.Path = "/" + db
	return u.String(), nil
}

// RecreateDatabase drops db (closing its connections) and creates it empty.
func (in Infra) RecreateDatabase(ctx context.Context, db string) error {
	return in.resetDatabase(ctx, db, true)
}

// DropDatabase drops db if it exists.
func (in Infra) DropDatabase(ctx context.Context, db string) error {
	return in.resetDatabase(ctx, db, false)
}

// resetDatabase drops scratch database db, and creates it again if create.
func (in Infra) resetDatabase(ctx context.Context, db string, create bool) error {
	if err := Scratch("database", db); err != nil {
		return err
	}
	conn, err := pgx.Connect(ctx, in.PGAdminURL)
	if err != nil {
		return fmt.Errorf("connect to postgres: %w", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `DROP DATABASE IF EXISTS "`+db+`" WITH (FORCE)`); err != nil {
		return fmt.Errorf("drop database %s: %w", db, err)
	}
	if create {
		if _, err := conn.Exec(ctx, `CREATE DATABASE "`+db+`"`); err != nil {
			return fmt.Errorf("create database %s: %w", db, err)
		}
	}
	return nil
}

// RecreateVHost deletes our vhost (and everything in it) and creates it
// with full permissions for the AMQP user.
func (in Infra) RecreateVHost(ctx context.Context) error {
	if err := Scratch("vhost", in.VHost); err != nil {
		return err
	}
	if err := in.DeleteVHost(ctx); err != nil {
		return err
	}
	api, err := mgmt.New(in.MgmtURL)
	if err != nil {
		return err
	}
	if err := api.CreateVHost(ctx, in.VHost); err != nil {
		return err
	}
	u, err := amqp.ParseURI(in.AMQPURL)
	if err != nil {
		return fmt.Errorf("amqp url: %w", err)
	}
	return api.GrantAll(ctx, in.VHost, u.Username)
}

// DeleteVHost deletes our vhost if it exists.
func (in Infra) DeleteVHost(ctx context.Context) error {
	if err := Scratch("vhost", in.VHost); err != nil {
		return err
	}
	api, err := mgmt.New(in.MgmtURL)
	if err != nil {
		return err
	}
	if err := api.DeleteVHost(ctx, in.VHost); err != nil && !errors.Is(err, mgmt.ErrNotFound) {
		return err
	}
	return nil
}

// System is the services running as our child processes.
type System struct {
	names  []string // the services it runs, in start order
	bin    string
	logDir string
	end    Endpoints
	env    map[string][]string // per service, without extras
	extra  []string            // KEY=VAL for every service

	mu    sync.Mutex
	procs map[string]*child
}

type child struct {
	cmd  *exec.Cmd
	done chan struct{}
	log  *os.File
}

// SystemConfig is how to start the services.
type SystemConfig struct {
	BinDir    string
	LogDir    string
	Endpoints Endpoints
	AMQPURL   string // of our vhost
	// Services are those to run, in start order (see Running).
	Services []string
	// DBs are the database URLs of the services but the gateway.
	DBs      map[string]string
	LogLevel string
	Extra    []string // KEY=VAL for every service
}

// NewSystem prepares the services' environments; nothing runs yet.
func NewSystem(c SystemConfig) (*System, error) {
	addr := func(base string) (string, error) {
		u, err := url.Parse(base)
		if err != nil || u.Host == "" {
			return "", fmt.Errorf("service url %q: want http://HOST:PORT", base)
		}
		return u.Host, nil
	}
	names := c.Services
	env := map[string][]string{}
	for _, name := range names {
		a, err := addr(c.Endpoints.URL(name))
		if err != nil {
			return nil, err
		}
		// A clean environment: nothing from the developer's shell (such as
		// PAYMENT_DECLINE_RATE) changes what is measured unless passed
		// explicitly with -service-env.
		e := []string{"HTTP_ADDR=" + a, "AMQP_URL=" + c.AMQPURL, "LOG_LEVEL=" + c.LogLevel, "LOG_FORMAT=json"}
		switch name {
		case Gateway:
			// Our participants' addresses even when they do not run: never
			// another system's on the default ports.
			for _, p := range Services {
				if p != Gateway {
					e = append(e, strings.ToUpper(strings.ReplaceAll(p, "-", "_"))+"_URL="+c.Endpoints.URL(p))
				}
			}
		case PaymentService:
			e = append(e, "DATABASE_URL="+c.DBs[name], "PAYMENT_LATENCY=0s")
		default:
			e = append(e, "DATABASE_URL="+c.DBs[name])
		}
		env[name] = e
	}
	return &System{names: names, bin: c.BinDir, logDir: c.LogDir, end: c.Endpoints, env: env, extra: c.Extra, procs: map[string]*child{}}, nil
}

// Prepare fails when something already listens on a service's port (an
// old copy would answer our readiness checks and be measured instead) or a
// binary is missing; then it starts fresh logs. Restarts within the run
// append to them.
func (s *System) Prepare() error {
	for _, name := range s.names {
		u, _ := url.Parse(s.end.URL(name))
		c, err := net.DialTimeout("tcp", u.Host, time.Second)
		if err == nil {
			c.Close()
			return fmt.Errorf("%s's address %s is already in use (another loadgen, or choose other ports with -gateway/-order-url/-payment-url/-inventory-url/-invoice-url)", name, u.Host)
		}
	}
	for _, name := range s.names {
		if _, err := os.Stat(filepath.Join(s.bin, name)); err != nil {
			return fmt.Errorf("%s binary: %w (run make build, or set -bin)", name, err)
		}
	}
	if err := os.MkdirAll(s.logDir, 0o755); err != nil {
		return fmt.Errorf("log dir: %w", err)
	}
	for _, name := range s.names {
		if err := os.WriteFile(filepath.Join(s.logDir, name+".log"), nil, 0o644); err != nil {
			return fmt.Errorf("log dir: %w", err)
		}
	}
	return nil
}

// Start starts a service with extra environment (later entries win) and
// waits until its /readyz answers 200.
func (s *System) Start(ctx context.Context, name string, env ...string) error {
	logPath := filepath.Join(s.logDir, name+".log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("log of %s: %w", name, err)
	}
	cmd := exec.Command(filepath.Join(s.bin, name))
	cmd.Env = append(append(append([]string{}, s.env[name]...), s.extra...), env...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{
		// Its own process group: a Ctrl-C in the terminal reaches only us,
		// and we stop the services in order.
		Setpgid: true,
		// Should we be SIGKILLed, the services do not outlive us.
		Pdeathsig: syscall.SIGTERM,
	}
	if err := cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("start %s: %w", name, err)
	}
	c := &child{cmd: cmd, done: make(chan struct{}), log: f}
	go func() { _ = cmd.Wait(); close(c.done) }()
	s.mu.Lock()
	s.procs[name] = c
	s.mu.Unlock()

	deadline := time.Now().Add(60 * time.Second)
	for {
		if ready(ctx, s.end.URL(name)) {
			return nil
		}
		select {
		case <-c.done:
			s.forget(name)
			return fmt.Errorf("%s exited during start-up (%s); last lines of %s:\n%s", name, cmd.ProcessState, logPath, tailFile(logPath, 15))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after 60s; last lines of %s:\n%s", name, logPath, tailFile(logPath, 15))
		}
	}
}

func ready(ctx context.Context, base string) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/readyz", nil)
	if err != nil {
		return false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func (s *System) forget(name string) *child {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.procs[name]
	delete(s.procs, name)
	if c != nil {
		c.log.Close()
	}
	return c
}

// StartAll starts the services in order.
func (s *System) StartAll(ctx context.Context) error {
	for _, name := range s.names {
		if err := s.Start(ctx, name); err != nil {
			return err
		}
	}
	return nil
}

// Stop sends SIGTERM and waits for the exit (30 s, then SIGKILL).
func (s *System) Stop(name string) error {
	c := s.forget(name)
	if c == nil {
		return nil
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(30 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.done
		return fmt.Errorf("%s did not stop within 30s of SIGTERM; killed", name)
	}
	if code := c.cmd.ProcessState.ExitCode(); code != 0 {
		return fmt.Errorf("%s exited %d after SIGTERM", name, code)
	}
	return nil
}

// StopAll stops every running service, the gateway first.
func (s *System) StopAll() error {
	var errs []error
	for i := len(s.names) - 1; i >= 0; i-- {
		errs = append(errs, s.Stop(s.names[i]))
	}
	return errors.Join(errs...)
}

// PIDs returns the running services' process ids.
func (s *System) PIDs() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for name, c := range s.procs {
		out[name] = c.cmd.Process.Pid
	}
	return out
}

// Exited lists services that died on their own.
func (s *System) Exited() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for name, c := range s.procs {
		select {
		case <-c.done:
			out = append(out, fmt.Sprintf("%s (%s)", name, c.cmd.ProcessState))
		default:
		}
	}
	return out
}

func tailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
