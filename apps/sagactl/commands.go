package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os/user"
	"runtime"
	"strings"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/ordersaga/ordersaga/libs/buildinfo"
	"github.com/ordersaga/ordersaga/libs/events"
	"github.com/ordersaga/ordersaga/libs/rabbit"
	"github.com/ordersaga/ordersaga/libs/rabbit/mgmt"
	"github.com/ordersaga/ordersaga/libs/settings"
	"github.com/ordersaga/ordersaga/libs/tracing"
	"github.com/ordersaga/ordersaga/saga"

	"github.com/ordersaga/ordersaga/apps/sagactl/internal/ops"
)

const (
	// connectTimeout bounds the wait for the broker: an operator wants an
	// answer, not the services' patient reconnecting.
	connectTimeout = 10 * time.Second
	// publishTimeout bounds the wait for the confirm of one replayed message.
	publishTimeout = 5 * time.Second
)

// usageError is a malformed command line, or a request for help; run
// prints msg and usage.
type usageError struct {
	msg   string // empty for -h: usage on stdout, exit 0
	usage string
}

func (e *usageError) Error() string { return e.msg }

const usageMain = `sagactl is the operator CLI of ordersaga: dead-letter queues, replay, topology.

Usage:
  sagactl dlq list [--json]
  sagactl dlq groups [-n N] [--json]
  sagactl dlq show QUEUE [-n N] [--json]
  sagactl dlq replay QUEUE (--id MESSAGE_ID | --group TYPE/FINGERPRINT | --all) [--dry-run] [--rate N] [--json]
  sagactl dlq purge QUEUE --yes [--json]
  sagactl dlq audit [-n N] [--json]
  sagactl topology [--declare | --migrate] [--json]
  sagactl console [--addr HOST:PORT]
  sagactl --version [--json]
  sagactl --help

Every command but console takes --json: its result as JSON on stdout
(errors stay one line on stderr).

QUEUE is a dead-letter queue of the saga topology, with or without its .dlq
suffix: order-service.commands.dlq, order-service.payment-events.dlq,
payment-service.order-events.dlq.

Exit status: 0 success, 1 failure (one line on stderr), 2 usage error.
"sagactl dlq show -h" and the like describe each command.
`

// mainUsage is usageMain and the variables sagactl reads, from their tags.
func mainUsage() string {
	var b strings.Builder
	b.WriteString(usageMain + "\nEnvironment:\n")
	if err := settings.Usage(&b, &config{}); err != nil {
		fmt.Fprintf(&b, "  (%v)\n", err)
	}
	return b.String()
}

const usageDLQ = `Usage:
  sagactl dlq list [--json]
  sagactl dlq groups [-n N] [--json]
  sagactl dlq show QUEUE [-n N] [--json]
  sagactl dlq replay QUEUE (--id MESSAGE_ID | --group TYPE/FINGERPRINT | --all) [--dry-run] [--rate N] [--json]
  sagactl dlq purge QUEUE --yes [--json]
  sagactl dlq audit [-n N] [--json]

Replays and purges, here and in the console, are recorded in the audit log
(SAGACTL_STATE_DIR/audit.jsonl).

"sagactl dlq COMMAND -h" describes a command.
`

const usageList = `Usage: sagactl dlq list [--json]

Lists every queue of the vhost whose name ends in .dlq, with its message
count (exact, read over AMQP; the queues are found with the management API).

Flags:
  --json   print JSON: [{"queue": ..., "messages": ...}]
`

const usageShow = `Usage: sagactl dlq show QUEUE [-n N] [--json]

Prints the first N messages of a dead-letter queue WITHOUT removing them:
message_id, type, correlation_id, app_id, timestamp, the error headers the
consumer added (x-error-kind, x-error, x-attempts, x-original-queue), the
other headers, and the body (at most 2 KiB; as text when it is UTF-8, else
base64).

The messages are fetched with basic.get and returned to the queue by
closing the channel without acknowledging them. The dead-letter queues are
quorum queues, which count that as a redelivery: afterwards the messages
are flagged redelivered and their x-delivery-count header grows. Nothing
else about them changes.

Flags:
  -n N     how many messages to show (default 10)
  --json   print JSON
`

const usageGroups = `Usage: sagactl dlq groups [-n N] [--json]

Groups the dead letters of every dead-letter queue by queue, message type
and error fingerprint (a hash of the x-error header with its ids, quoted
values and numbers left out), with counts, first and last seen, as the
console's Dead letters page does. The messages are read as "sagactl dlq show"
reads them, at most N a queue.

Flags:
  -n N     how many messages to read per queue (default 1000)
  --json   print JSON
`

const usageAudit = `Usage: sagactl dlq audit [-n N] [--json]

Prints the last N entries of the audit log (newest first): every replay,
dry run and purge made with sagactl or the console.

Flags:
  -n N     how many entries (default 20)
  --json   print JSON
`

const usageReplay = `Usage: sagactl dlq replay QUEUE (--id MESSAGE_ID | --group TYPE/FINGERPRINT | --all) [--dry-run] [--rate N] [--json]

Moves dead-lettered messages back to their work queue (QUEUE without .dlq)
for another try. Each message is republished through the default exchange,
mandatory and confirmed, with every property and header it had except the
failure record (x-error, x-error-kind, x-attempts, x-last-error,
x-failed-at), so the consumer starts with a fresh attempt budget, and with
a new header x-replayed-at. Only once the broker confirmed the copy is the
message removed from the dead-letter queue: a failure in between leaves it
in both, which the services' idempotency makes harmless.

Messages not selected are returned to the dead-letter queue untouched (the
quorum queue counts a redelivery, see "sagactl dlq show -h"). Replay looks
at most at the messages present when it starts.

Flags:
  --id MESSAGE_ID   replay the message with this message_id (every copy of
                    it); an error when there is none
  --group TYPE/FINGERPRINT
                    replay the messages of a group of "sagactl dlq groups"
  --all             replay every message
  --dry-run         only say what would be replayed; nothing changes
  --rate N          republish at most N messages a second (default 20)
  --json            print JSON: {"queue", "workQueue", "replayed", "dryRun"} (also
                    before an error, with what was replayed until then)
`

const usagePurge = `Usage: sagactl dlq purge QUEUE --yes [--json]

Deletes every message of a dead-letter queue, for good, and prints how many.
Without --yes it refuses.

Flags:
  --yes    confirm the deletion
  --json   print JSON: {"queue", "purged"}
`

const usageTopology = `Usage: sagactl topology [--declare | --migrate] [--json]

Prints the saga's RabbitMQ topology (contract §4): the exchanges, and each
work queue with its bindings, its retry (delay) queues and its dead-letter
queue.

Flags:
  --declare   also declare it all on the broker of AMQP_URL (idempotent, as
              every service does at start-up)
  --migrate   declare it, then move every classic retry tier (<queue>.retry.1s,
              from before the quorum tiers) to its quorum tier
              (<queue>.retry.1s.quorum) and delete it; run it once every
              service runs a version with quorum tiers (README: upgrades)
  --json      print JSON
`

func dispatch(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) == 0 {
		return &usageError{msg: "missing command", usage: mainUsage()}
	}
	if buildinfo.Asked(args) {
		return version(args[1:], stdout)
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		return &usageError{usage: mainUsage()}
	case "dlq":
		return dlqCommand(ctx, args[1:], getenv, stdout)
	case "topology":
		return topologyCommand(ctx, args[1:], getenv, stdout)
	case "console":
		return consoleCommand(ctx, args[1:], getenv, stdout)
	default:
		return &usageError{msg: fmt.Sprintf("unknown command %q", args[0]), usage: mainUsage()}
	}
}

func dlqCommand(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) == 0 {
		return &usageError{msg: "missing dlq command", usage: usageDLQ}
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		return &usageError{usage: usageDLQ}
	case "list":
		return dlqList(ctx, args[1:], getenv, stdout)
	case "groups":
		return dlqGroups(ctx, args[1:], getenv, stdout)
	case "audit":
		return dlqAudit(args[1:], getenv, stdout)
	case "show":
		return dlqShow(ctx, args[1:], getenv, stdout)
	case "replay":
		return dlqReplay(ctx, args[1:], getenv, stdout)
	case "purge":
		return dlqPurge(ctx, args[1:], getenv, stdout)
	default:
		return &usageError{msg: fmt.Sprintf("unknown dlq command %q", args[0]), usage: usageDLQ}
	}
}

func dlqList(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := flag.NewFlagSet("dlq list", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "")
	if _, err := parse(fs, usageList, args, 0); err != nil {
		return err
	}
	dlq, closeDLQ, err := openDLQ(ctx, getenv)
	if err != nil {
		return err
	}
	defer closeDLQ()
	qs, err := dlq.List(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(stdout, nonNil(qs))
	}
	return writeList(stdout, qs)
}

func dlqShow(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := flag.NewFlagSet("dlq show", flag.ContinueOnError)
	n := fs.Int("n", 10, "")
	asJSON := fs.Bool("json", false, "")
	pos, err := parse(fs, usageShow, args, 1)
	if err != nil {
		return err
	}
	if *n < 1 {
		return &usageError{msg: fmt.Sprintf("-n %d: want at least 1", *n), usage: usageShow}
	}
	dlq, closeDLQ, err := openDLQ(ctx, getenv)
	if err != nil {
		return err
	}
	defer closeDLQ()
	p, err := dlq.Show(ctx, pos[0], *n)
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(stdout, peekJSON(p))
	}
	return writePeek(stdout, p)
}

func dlqReplay(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := flag.NewFlagSet("dlq replay", flag.ContinueOnError)
	var sel ops.Selection
	var opt ops.ReplayOptions
	picked := 0
	fs.Func("id", "", func(v string) error {
		if v == "" {
			return errors.New("empty message id")
		}
		sel.ID = v
		picked++
		return nil
	})
	fs.Func("group", "", func(v string) error {
		typ, fp, ok := strings.Cut(v, "/")
		if !ok || typ == "" || fp == "" {
			return errors.New("want TYPE/FINGERPRINT, as sagactl dlq groups prints it")
		}
		sel.Type, sel.Fingerprint = typ, fp
		picked++
		return nil
	})
	fs.BoolVar(&sel.All, "all", false, "")
	fs.BoolVar(&opt.DryRun, "dry-run", false, "")
	fs.Float64Var(&opt.Rate, "rate", ops.DefaultRate, "")
	asJSON := fs.Bool("json", false, "")
	pos, err := parse(fs, usageReplay, args, 1)
	if err != nil {
		return err
	}
	if sel.All {
		picked++
	}
	if picked != 1 {
		return &usageError{msg: "give exactly one of --id MESSAGE_ID, --group TYPE/FINGERPRINT and --all", usage: usageReplay}
	}
	if opt.Rate <= 0 {
		return &usageError{msg: fmt.Sprintf("--rate %g: want more than 0", opt.Rate), usage: usageReplay}
	}
	op, closeOp, err := openOperator(ctx, getenv)
	if err != nil {
		return err
	}
	defer closeOp()
	res, err := op.Replay(ctx, actor(getenv), pos[0], sel, opt)
	switch {
	case *asJSON && (err == nil || res.Replayed > 0):
		if jerr := writeJSON(stdout, replayJSON(res)); err == nil {
			return jerr
		}
	case err != nil && res.Replayed > 0 && !res.DryRun:
		fmt.Fprintf(stdout, "replayed %s from %s to %s before the error\n", messages(res.Replayed), res.Queue, res.WorkQueue)
	case err == nil:
		_, err = fmt.Fprintln(stdout, res.Summary())
	}
	return err
}

func dlqPurge(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := flag.NewFlagSet("dlq purge", flag.ContinueOnError)
	yes := fs.Bool("yes", false, "")
	asJSON := fs.Bool("json", false, "")
	pos, err := parse(fs, usagePurge, args, 1)
	if err != nil {
		return err
	}
	op, closeOp, err := openOperator(ctx, getenv)
	if err != nil {
		return err
	}
	defer closeOp()
	if !*yes {
		qc, err := op.DLQ.Count(ctx, pos[0])
		if err != nil {
			return err
		}
		return fmt.Errorf("refusing to purge %s (%s) without --yes: the messages would be deleted for good",
			qc.Queue, messages(qc.Messages))
	}
	qc, err := op.Purge(ctx, actor(getenv), pos[0])
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(stdout, purgeJSON{Queue: qc.Queue, Purged: qc.Messages})
	}
	_, err = fmt.Fprintf(stdout, "purged %s from %s\n", messages(qc.Messages), qc.Queue)
	return err
}

func dlqGroups(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := flag.NewFlagSet("dlq groups", flag.ContinueOnError)
	n := fs.Int("n", 1000, "")
	asJSON := fs.Bool("json", false, "")
	if _, err := parse(fs, usageGroups, args, 0); err != nil {
		return err
	}
	if *n < 1 {
		return &usageError{msg: fmt.Sprintf("-n %d: want at least 1", *n), usage: usageGroups}
	}
	dlq, closeDLQ, err := openDLQ(ctx, getenv)
	if err != nil {
		return err
	}
	defer closeDLQ()
	scan, err := dlq.Scan(ctx, *n)
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(stdout, scan)
	}
	return writeGroups(stdout, scan)
}

func dlqAudit(args []string, getenv func(string) string, stdout io.Writer) error {
	fs := flag.NewFlagSet("dlq audit", flag.ContinueOnError)
	n := fs.Int("n", 20, "")
	asJSON := fs.Bool("json", false, "")
	if _, err := parse(fs, usageAudit, args, 0); err != nil {
		return err
	}
	if *n < 1 {
		return &usageError{msg: fmt.Sprintf("-n %d: want at least 1", *n), usage: usageAudit}
	}
	cfg, err := parseConfig(getenv)
	if err != nil {
		return err
	}
	audit, err := ops.OpenAudit(cfg.StateDir)
	if err != nil {
		return err
	}
	entries, err := audit.Recent(*n)
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(stdout, entries)
	}
	return writeAudit(stdout, entries)
}

// actor is who the audit log names for a sagactl command: the OS user.
func actor(getenv func(string) string) string {
	if u := getenv("USER"); u != "" {
		return u
	}
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return "unknown user"
}

func topologyCommand(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := flag.NewFlagSet("topology", flag.ContinueOnError)
	declare := fs.Bool("declare", false, "")
	migrate := fs.Bool("migrate", false, "")
	asJSON := fs.Bool("json", false, "")
	if _, err := parse(fs, usageTopology, args, 0); err != nil {
		return err
	}
	if *declare && *migrate {
		return &usageError{msg: "--declare and --migrate exclude each other (--migrate declares too)", usage: usageTopology}
	}
	out := topologyJSON{Layout: ops.Describe(saga.Topology())}
	if *migrate {
		cfg, err := parseConfig(getenv)
		if err != nil {
			return err
		}
		if err := probe(cfg); err != nil {
			return err
		}
		migrations, err := ops.MigrateRetries(ctx, cfg.AMQPURL, saga.Topology())
		out.Declared, out.VHost, out.Migrated = err == nil || len(migrations) > 0, cfg.VHost, migrations
		if err != nil {
			return fmt.Errorf("migrate retry tiers in vhost %q: %w", cfg.VHost, err)
		}
	}
	if *declare {
		cfg, err := parseConfig(getenv)
		if err != nil {
			return err
		}
		if err := probe(cfg); err != nil {
			return err
		}
		dctx, cancel := context.WithTimeout(ctx, connectTimeout)
		defer cancel()
		if err := ops.Declare(dctx, cfg.AMQPURL, saga.Topology()); err != nil {
			return fmt.Errorf("declare topology in vhost %q: %w", cfg.VHost, err)
		}
		out.Declared, out.VHost = true, cfg.VHost
	}
	if *asJSON {
		return writeJSON(stdout, out)
	}
	if err := writeTopology(stdout, out); err != nil {
		return err
	}
	if *migrate && len(out.Migrated) == 0 {
		_, err := fmt.Fprintln(stdout, "no classic retry tiers to migrate")
		return err
	}
	return nil
}

// parse parses args with fs, flags and positional arguments in any order
// ("show QUEUE -n 3" as well as "show -n 3 QUEUE"), and returns the
// positional arguments, of which there must be exactly want.
func parse(fs *flag.FlagSet, usage string, args []string, want int) ([]string, error) {
	fs.SetOutput(io.Discard) // run prints our own usage
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, &usageError{usage: usage}
			}
			return nil, &usageError{msg: err.Error(), usage: usage}
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			pos = append(pos, rest...)
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	switch {
	case len(pos) < want:
		return nil, &usageError{msg: "missing QUEUE", usage: usage}
	case len(pos) > want:
		return nil, &usageError{msg: fmt.Sprintf("unexpected argument %q", pos[want]), usage: usage}
	}
	return pos, nil
}

// openDLQ connects to the broker of the configuration in getenv and returns
// the operator of its dead-letter queues, and how to disconnect.
func openDLQ(ctx context.Context, getenv func(string) string) (*ops.DLQ, func(), error) {
	cfg, err := parseConfig(getenv)
	if err != nil {
		return nil, nil, err
	}
	api, err := mgmt.New(cfg.ManagementURL)
	if err != nil {
		return nil, nil, err
	}
	if err := probe(cfg); err != nil {
		return nil, nil, err
	}
	dctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	// An empty topology: the dlq commands work on what exists and never
	// create queues, so that a wrong vhost is an error rather than new queues.
	conn, err := rabbit.Dial(dctx, cfg.AMQPURL, "sagactl", events.Topology{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		return nil, nil, fmt.Errorf("vhost %q: %w", cfg.VHost, err)
	}
	pub := rabbit.NewPublisher(conn, "sagactl", publishTimeout)
	// A replay is recorded in the saga's trace when OTEL_* configure an
	// exporter (rabbit.ReplaySpan).
	stopTracing, err := tracing.Setup(ctx, "sagactl", getenv)
	if err != nil {
		_ = pub.Close()
		_ = conn.Close()
		return nil, nil, err
	}
	closeAll := func() {
		_ = pub.Close()
		_ = conn.Close()
		tracing.Stop(ctx, stopTracing, slog.New(slog.NewTextHandler(io.Discard, nil)))
	}
	return ops.NewDLQ(conn, pub, api, cfg.VHost, saga.Topology()), closeAll, nil
}

// openOperator is openDLQ with the audit log of the configuration: the
// dead-letter actions that change something go through it.
func openOperator(ctx context.Context, getenv func(string) string) (*ops.Operator, func(), error) {
	cfg, err := parseConfig(getenv)
	if err != nil {
		return nil, nil, err
	}
	audit, err := ops.OpenAudit(cfg.StateDir)
	if err != nil {
		return nil, nil, err
	}
	dlq, closeDLQ, err := openDLQ(ctx, getenv)
	if err != nil {
		return nil, nil, err
	}
	return &ops.Operator{DLQ: dlq, Audit: audit, Via: "sagactl"}, closeDLQ, nil
}

// probe connects to the broker once. rabbit.Dial retries every failure
// until its deadline, as a service should; an operator wants a refused
// login, a missing vhost or a broker that is down reported at once.
// With several nodes, the first that accepts will do.
func probe(cfg config) error {
	urls, err := rabbit.ParseURLs(cfg.AMQPURL)
	if err != nil {
		return err
	}
	var errs []error
	for _, u := range urls {
		conn, err := amqp.DialConfig(u, amqp.Config{Dial: amqp.DefaultDial(connectTimeout)})
		if err == nil {
			return conn.Close()
		}
		errs = append(errs, err)
	}
	return fmt.Errorf("connect to broker, vhost %q: %w", cfg.VHost, errors.Join(errs...))
}

// version answers --version: the version line, or with --json the same
// facts as JSON.
func version(args []string, stdout io.Writer) error {
	switch {
	case len(args) == 0:
		return buildinfo.Write(stdout)
	case len(args) == 1 && args[0] == "--json":
		return writeJSON(stdout, versionJSON{Version: buildinfo.Version, Commit: buildinfo.Commit, Go: runtime.Version()})
	default:
		return &usageError{msg: fmt.Sprintf("--version: unexpected argument %q", args[0]), usage: mainUsage()}
	}
}

// messages is "1 message" or "n messages".
func messages(n int) string {
	if n == 1 {
		return "1 message"
	}
	return fmt.Sprintf("%d messages", n)
}
