package participant

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/gin-gonic/gin"

	"github.com/ordersaga/ordersaga/db"
	"github.com/ordersaga/ordersaga/libs/events"
	"github.com/ordersaga/ordersaga/libs/lifecycle"
	"github.com/ordersaga/ordersaga/libs/logging"
	"github.com/ordersaga/ordersaga/libs/settings"
	"github.com/ordersaga/ordersaga/libs/tracing"
)

// Service describes a participant's binary to Main and Run: everything but
// its wiring is the same for every participant, and lives here once.
type Service[C any] struct {
	// Intro opens the usage that -h and --help print.
	Intro string
	// Config is the configuration before the environment is read: a struct
	// embedding Config, made with Defaults.
	Config C
	// Schema is the participant's migrations; Topology what it declares
	// (saga.TopologyOf).
	Schema   db.Migrations
	Topology events.Topology
	// Wire registers the participant's handlers (p.Handle), background
	// loops (p.Go) and routes on engine, from the parsed configuration.
	Wire func(p *Participant, cfg *C, engine *gin.Engine) error
}

// Main runs s as the process: until SIGINT or SIGTERM, with the command
// line and environment of the process; a failure is the one line and the
// non-zero exit that contract §1 promises.
func Main[C any, PC interface {
	*C
	Base() *Config
}](s Service[C]) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := Run[C, PC](ctx, s, os.Args[1:], os.Getenv, os.Stdout)
	stop()
	if err != nil {
		Fail(PC(&s.Config).Base().Name, err)
	}
}

// Run runs s until ctx ends: -h or --help prints its usage and the
// variables it reads, --version its build, and does nothing else; otherwise it reads the
// configuration from getenv (every bad variable at once), starts the
// participant, wires it and runs it.
func Run[C any, PC interface {
	*C
	Base() *Config
}](ctx context.Context, s Service[C], args []string, getenv func(string) string, stdout io.Writer) error {
	cfg := s.Config
	if help, err := settings.Help(args, stdout, s.Intro, &cfg); help || err != nil {
		return err
	}
	if err := settings.Parse(getenv, &cfg); err != nil {
		return err
	}
	base := PC(&cfg).Base()
	if err := lifecycle.StopWithParent(base.StopWithParent); err != nil {
		return err
	}
	log, err := logging.New(stdout, base.Name, base.LogLevel, base.LogFormat)
	if err != nil {
		return err
	}
	stopTracing, err := tracing.Setup(ctx, base.Name, getenv)
	if err != nil {
		return err
	}
	defer tracing.Stop(ctx, stopTracing, log)
	p, err := Start(ctx, *base, log, s.Schema, s.Topology)
	if err != nil {
		return err
	}
	engine := p.Engine()
	if err := s.Wire(p, &cfg, engine); err != nil {
		p.Close()
		return err
	}
	return p.Run(ctx, engine)
}
