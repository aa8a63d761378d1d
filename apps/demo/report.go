package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ordersaga/ordersaga/libs/gatewayclient"
)

// console writes the walkthrough. On a terminal a progress line is redrawn
// in place below the printed lines; elsewhere (a pipe, a log, CI) progress
// is a plain line each time its label changes.
type console struct {
	w    io.Writer
	live bool
	// shown is set while a live progress line is on screen.
	shown bool
	frame int
	// label is the last progress label printed (not live).
	label string
}

var spinner = []string{"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"}

// isTerminal reports whether w is a terminal that understands "\r" and
// erase-line; TERM=dumb opts out.
func isTerminal(w io.Writer, term string) bool {
	f, ok := w.(*os.File)
	if !ok || term == "dumb" {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

const eraseLine = "\r\033[K"

// printf prints above the progress line, which the next progress call
// redraws.
func (c *console) printf(format string, args ...any) {
	if c.shown {
		fmt.Fprint(c.w, eraseLine)
		c.shown = false
	}
	fmt.Fprintf(c.w, format, args...)
}

// progress shows what is being waited for and for how long.
func (c *console) progress(label string, elapsed time.Duration) {
	if c.live {
		c.frame++
		fmt.Fprintf(c.w, "%s  %s %s  %s", eraseLine, spinner[c.frame%len(spinner)], label, seconds(elapsed))
		c.shown = true
		return
	}
	if label != c.label {
		fmt.Fprintf(c.w, "  %s (%s)\n", label, seconds(elapsed))
		c.label = label
	}
}

// endProgress removes the progress line.
func (c *console) endProgress() {
	if c.shown {
		fmt.Fprint(c.w, eraseLine)
		c.shown = false
	}
	c.label = ""
}

// step prints the heading of step n of total.
func (c *console) step(n, total int, title string) {
	c.printf("\n▸ %d/%d  %s\n", n, total, title)
}

// seconds is a duration as the progress line shows it: "1.2s".
func seconds(d time.Duration) string { return fmt.Sprintf("%.1fs", d.Seconds()) }

// offset is a time since a start as event lines show it: "+1.024s".
func offset(d time.Duration) string { return fmt.Sprintf("+%.3fs", d.Seconds()) }

// short is the first block of a UUID, enough to tell the demo's orders
// apart.
func short(id string) string {
	if i := strings.IndexByte(id, '-'); i > 0 {
		return id[:i]
	}
	return id
}

func orNone(s, none string) string {
	if s == "" {
		return none
	}
	return s
}

// writeResults prints the results table: one row per scenario, its
// expected outcome, what it ended as, and OK or FAIL.
func writeResults(w io.Writer, orders []*tracked) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  ORDER\tSCENARIO\tEXPECTED (order · payment)\tORDER STATUS\tCANCEL REASON\tPAYMENT\tRESULT")
	for _, t := range orders {
		result := "OK"
		if !t.OK() {
			result = "FAIL"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\t%s\n", short(t.ID), t.Name, t.Want,
			orNone(string(t.Order.Status), "none"), orNone(reasonOf(t.Order), "-"), orNone(t.Payment, "none"), result)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, t := range orders {
		if t.Failure != "" {
			fmt.Fprintf(w, "  %s: FAIL: %s\n", t.Name, t.Failure)
		} else if !t.OK() {
			fmt.Fprintf(w, "  %s: FAIL: ended %s, expected %s\n", t.Name, state(t.Order, t.Payment), t.Want)
		}
		if t.Note != "" {
			fmt.Fprintf(w, "  %s: %s\n", t.Name, t.Note)
		}
	}
	return nil
}

// writeTimeline prints one order's timeline, times relative to its first
// entry.
func writeTimeline(w io.Writer, t *tracked, entries []gatewayclient.TimelineEvent) error {
	fmt.Fprintf(w, "\n  %s · order %s · %s\n", t.Name, t.ID, state(t.Order, t.Payment))
	if len(entries) == 0 {
		_, err := fmt.Fprintln(w, "    (no entries)")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	start := entries[0].At
	for _, e := range entries {
		fmt.Fprintf(tw, "    %s\t%s\t%s\t%s\n", offset(e.At.Sub(start)), e.Service, e.Type, e.Detail)
	}
	return tw.Flush()
}

// cancelNote explains how a cancellation that the contract lets end in two
// ways ended, from the order's timeline: whether the cancel found the order
// still waiting for its payment, and what became of the payment.
func cancelNote(t *tracked, entries []gatewayclient.TimelineEvent) string {
	previous := ""
	for _, e := range entries {
		if e.Service == "order-service" && e.Type == "order.cancelled" && strings.HasPrefix(e.Detail, "emitted") {
			if _, after, ok := strings.Cut(e.Detail, "previousStatus="); ok {
				previous, _, _ = strings.Cut(after, " ")
			}
		}
	}
	switch {
	case previous == statusPending && t.Payment == paymentCancelled:
		return "the cancel found the order PENDING_PAYMENT; its payment was CANCELLED before any money moved"
	case previous == statusPending && t.Payment == paymentRefunded:
		return "the cancel found the order PENDING_PAYMENT, but its payment had been approved meanwhile: REFUNDED"
	case previous == statusPaid:
		return "the cancel came after the order was PAID (a longer PAYMENT_LATENCY catches it pending); its payment was REFUNDED"
	case previous == "":
		return "no order.cancelled in its timeline"
	default:
		return fmt.Sprintf("the cancel found the order %s; its payment is %s", previous, orNone(t.Payment, "none"))
	}
}
